//! Pictures the encoder makes itself: the live test pattern (colour bars, a moving marker,
//! the wall-clock time burnt in to the millisecond) and the default slate card, plus a tone.
//!
//! Drawn by hand into YUV 4:2:0 planes with a 5×7 bitmap font: a few dozen lines instead of
//! linking a text renderer (libavfilter's drawtext needs fontconfig/freetype at run time and
//! only prints whole seconds of wall-clock time).

use ffmpeg_next::format::Pixel;
use ffmpeg_next::frame;

/// BT.709 limited-range YUV colours.
#[derive(Clone, Copy)]
pub struct Yuv(pub u8, pub u8, pub u8);

pub const WHITE: Yuv = Yuv(235, 128, 128);
pub const BLACK: Yuv = Yuv(16, 128, 128);
const BARS: [Yuv; 7] = [
    Yuv(180, 128, 128), // white 75 %
    Yuv(168, 44, 136),  // yellow
    Yuv(145, 147, 44),  // cyan
    Yuv(133, 63, 52),   // green
    Yuv(63, 193, 204),  // magenta
    Yuv(51, 109, 212),  // red
    Yuv(28, 212, 120),  // blue
];
const SLATE_BG: Yuv = Yuv(40, 150, 120);

/// A new YUV 4:2:0 frame filled with one colour.
pub fn filled(width: u32, height: u32, c: Yuv) -> frame::Video {
    let mut f = frame::Video::new(Pixel::YUV420P, width, height);
    fill_rect(&mut f, 0, 0, width, height, c);
    f
}

/// Fills a rectangle, clipped to the frame. Coordinates are luma pixels.
pub fn fill_rect(f: &mut frame::Video, x: u32, y: u32, w: u32, h: u32, c: Yuv) {
    let (fw, fh) = (f.width(), f.height());
    let (x1, y1) = ((x + w).min(fw), (y + h).min(fh));
    if x >= x1 || y >= y1 {
        return;
    }
    for (plane, value, shift) in [(0, c.0, 0), (1, c.1, 1), (2, c.2, 1)] {
        let stride = f.stride(plane);
        let data = f.data_mut(plane);
        let (px0, px1) = (x >> shift, (x1 + shift) >> shift);
        for row in (y >> shift)..((y1 + shift) >> shift) {
            let start = row as usize * stride;
            if let Some(line) = data.get_mut(start + px0 as usize..start + px1 as usize) {
                line.fill(value);
            }
        }
    }
}

/// Draws `text` with its top-left at (x, y), each font pixel `scale` luma pixels square.
pub fn draw_text(f: &mut frame::Video, x: u32, y: u32, scale: u32, text: &str, c: Yuv) {
    for (i, ch) in text.chars().enumerate() {
        let gx = x + i as u32 * 6 * scale;
        for (row, bits) in glyph(ch).iter().enumerate() {
            for col in 0..5u32 {
                if bits & (0x10 >> col) != 0 {
                    fill_rect(f, gx + col * scale, y + row as u32 * scale, scale, scale, c);
                }
            }
        }
    }
}

/// Width in luma pixels of `text` drawn at `scale`.
pub fn text_width(text: &str, scale: u32) -> u32 {
    (text.chars().count() as u32 * 6).saturating_sub(1) * scale
}

/// Draws `text` centred horizontally with its top at `y`.
pub fn draw_centered(f: &mut frame::Video, y: u32, scale: u32, text: &str, c: Yuv) {
    let x = f.width().saturating_sub(text_width(text, scale)) / 2;
    draw_text(f, x, y, scale, text, c);
}

/// The static part of the test pattern: colour bars over the top two thirds, black below.
pub fn pattern_base(width: u32, height: u32) -> frame::Video {
    let mut f = filled(width, height, BLACK);
    let bar_h = height * 2 / 3;
    for (i, c) in BARS.iter().enumerate() {
        let x0 = width * i as u32 / 7;
        let x1 = width * (i as u32 + 1) / 7;
        fill_rect(&mut f, x0, 0, x1 - x0, bar_h, *c);
    }
    let scale = (height / 90).max(1);
    draw_centered(
        &mut f,
        bar_h / 2 - 4 * scale,
        scale,
        "WEIR TEST PATTERN",
        BLACK,
    );
    f
}

/// One frame of the live test pattern: `base` plus a marker that sweeps once a second and
/// the time of day (UTC) of this frame's program-date-time, to the millisecond.
pub fn pattern_frame(base: &frame::Video, unix_ms: u64, frame_no: u64) -> frame::Video {
    let mut f = base.clone();
    let (w, h) = (f.width(), f.height());
    let band_y = h * 2 / 3;
    let band_h = h - band_y;
    let marker = (h / 20).max(2);
    let x = ((unix_ms % 1000) * u64::from(w.saturating_sub(marker)) / 1000) as u32;
    fill_rect(&mut f, x, band_y + band_h / 12, marker, marker, WHITE);
    let secs = unix_ms / 1000;
    let clock = format!(
        "{:02}:{:02}:{:02}.{:03} UTC",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
        unix_ms % 1000
    );
    let scale = (h / 60).max(1);
    draw_centered(&mut f, band_y + band_h / 3, scale, &clock, WHITE);
    let counter = format!("FRAME {frame_no}");
    let small = (scale / 2).max(1);
    draw_text(&mut f, small * 4, h - 10 * small, small, &counter, WHITE);
    f
}

/// The built-in slate: "PLEASE STAND BY" on dark blue.
pub fn default_slate(width: u32, height: u32) -> frame::Video {
    let mut f = filled(width, height, SLATE_BG);
    let scale = (height / 40).max(1);
    draw_centered(
        &mut f,
        height / 2 - 7 * scale,
        scale,
        "PLEASE STAND BY",
        WHITE,
    );
    let small = (scale / 2).max(1);
    let sub = "THE PROGRAMME WILL RESUME SHORTLY";
    draw_centered(&mut f, height / 2 + 3 * scale, small, sub, WHITE);
    f
}

/// `n` samples of a 1 kHz tone at −20 dBFS, 48 kHz, continuing from sample `start`.
pub fn tone(start: u64, n: usize) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let t = (start + i) as f64 / 48_000.0;
            (0.1 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as f32
        })
        .collect()
}

/// The 5×7 glyph for `c` (rows top to bottom, bit 4 the leftmost column); blank for
/// characters the font lacks.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        _ => [0; 7],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luma_at(f: &frame::Video, x: u32, y: u32) -> u8 {
        f.data(0)[y as usize * f.stride(0) + x as usize]
    }

    #[test]
    fn bars_and_clock_are_drawn() {
        crate::init().unwrap();
        let base = pattern_base(640, 360);
        assert_eq!(luma_at(&base, 10, 10), 180);
        assert_eq!(luma_at(&base, 639, 10), 28);
        let a = pattern_frame(&base, 1_000, 0);
        let b = pattern_frame(&base, 2_500, 1);
        // Different times and marker positions give different lower bands; the bars stay.
        let band = |f: &frame::Video| {
            let s = f.stride(0);
            f.data(0)[s * 250..s * 359].to_vec()
        };
        assert_ne!(band(&a), band(&b));
        assert_eq!(luma_at(&a, 10, 10), 180);
    }

    #[test]
    fn clipped_drawing_stays_inside() {
        crate::init().unwrap();
        let mut f = filled(16, 16, BLACK);
        fill_rect(&mut f, 10, 10, 100, 100, WHITE);
        draw_text(&mut f, 14, 14, 3, "88:88", WHITE);
        assert_eq!(luma_at(&f, 15, 15), 235);
        assert_eq!(luma_at(&f, 0, 0), 16);
    }

    #[test]
    fn tone_is_continuous() {
        let a = tone(0, 96);
        let b = tone(48, 48);
        assert!((a[48] - b[0]).abs() < 1e-6);
        assert!(a.iter().all(|s| s.abs() <= 0.1001));
    }
}
