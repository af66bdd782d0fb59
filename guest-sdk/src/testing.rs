//! Helpers for a plugin's native unit tests: real playlists from weir's packager, request
//! contexts and cues, and mangled playlists for robustness tests.
//!
//! ```
//! use weir_guest::testing::{self, MEDIA_FULL, T0};
//!
//! let ctx = testing::context(Some("US"));
//! let cues = [testing::splice_out(7, T0 + 9000, Some(30_000), None)];
//! for text in testing::mangled(MEDIA_FULL, 1, 50) {
//!     // my_plugin::transform(&config, &ctx, &cues, text) must not panic.
//!     let _ = (&ctx, &cues, text);
//! }
//! ```

use crate::{CueEvent, CueKind, RequestContext};

/// A live LL-HLS media playlist (2 s segments, 500 ms parts; msn 40-46 complete, 47 in
/// progress with one part; a preload hint; two rendition reports), from the packager's
/// golden files.
pub const MEDIA_FULL: &str = include_str!("../tests/data/media_full.m3u8");
/// The same playlist as a delta update (`EXT-X-SKIP`, one segment skipped).
pub const MEDIA_DELTA: &str = include_str!("../tests/data/media_delta.m3u8");
/// A multivariant playlist.
pub const MULTIVARIANT: &str = include_str!("../tests/data/multivariant.m3u8");
/// The date of the first segment of [`MEDIA_FULL`]: 2026-11-25T16:00:00.000Z.
pub const T0: u64 = 1_795_622_400_000;

/// A request context for tenant `default`, stream `demo`, rendition `720p`.
pub fn context(country: Option<&str>) -> RequestContext {
    RequestContext {
        tenant: "default".into(),
        stream: "demo".into(),
        rendition: "720p".into(),
        country: country.map(str::to_string),
        headers: Vec::new(),
        query: Vec::new(),
        now_ms: T0,
    }
}

/// A `splice_insert` out of network (an ad break starts), with a short section.
pub fn splice_out(
    id: u32,
    start_ms: u64,
    planned_ms: Option<u64>,
    end_ms: Option<u64>,
) -> CueEvent {
    CueEvent {
        id,
        kind: CueKind::SpliceInsert,
        out_of_network: true,
        start_ms,
        duration_ms: planned_ms,
        end_ms,
        segmentation_type: None,
        section: vec![0xFC, 0x30, 0x25, 0x00],
    }
}

/// The `splice_insert` that ends break `id` at `at_ms` (pair it with a
/// [`splice_out`] whose `end_ms` is `at_ms`, as the host does).
pub fn splice_in(id: u32, at_ms: u64) -> CueEvent {
    CueEvent {
        out_of_network: false,
        duration_ms: None,
        section: vec![0xFC, 0x30, 0x20, 0x00],
        ..splice_out(id, at_ms, None, None)
    }
}

/// `count` deterministic mutations of `text` (lines dropped, repeated, swapped, cut
/// short, given CRLF, replaced by odd tags; digits replaced by extreme values), for
/// checking that a plugin never panics on input it did not expect.
pub fn mangled(text: &str, seed: u64, count: usize) -> Vec<String> {
    let mut rng = Rng(seed | 1);
    (0..count).map(|_| mutate(&mut rng, text)).collect()
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const ODD_LINES: [&str; 8] = [
    "#EXT-X-UNKNOWN:A=1\n",
    "\n",
    "# comment\n",
    "#EXTINF:x,\n",
    "#EXT-X-PART:URI=\"p\"\n",
    "#EXT-X-PROGRAM-DATE-TIME:2026-02-30T00:00:00Z\n",
    "#EXT-X-STREAM-INF:BANDWIDTH=1\n",
    "é\n",
];
const ODD_NUMBERS: [&str; 6] = ["0", "9", "-1", "99999999999999999999", ".", ""];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    if lines.is_empty() {
        return String::new();
    }
    for _ in 0..1 + rng.below(4) {
        let i = rng.below(lines.len());
        match rng.below(7) {
            0 if lines.len() > 1 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            3 => {
                let l = &lines[i];
                let boundaries: Vec<usize> =
                    (0..=l.len()).filter(|c| l.is_char_boundary(*c)).collect();
                let cut = boundaries[rng.below(boundaries.len())];
                lines[i] = l[..cut].to_string();
            }
            4 => lines[i] = lines[i].replace('\n', "\r\n"),
            5 => lines.insert(i, ODD_LINES[rng.below(ODD_LINES.len())].to_string()),
            _ => {
                let n = ODD_NUMBERS[rng.below(ODD_NUMBERS.len())];
                lines[i] = lines[i].replacen(|c: char| c.is_ascii_digit(), n, 1);
            }
        }
    }
    lines.concat()
}
