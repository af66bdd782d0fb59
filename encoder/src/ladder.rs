//! The ABR ladder: which rungs a source gets, and at what size.

use std::fmt;

/// One rung as configured: a height and a bitrate. The width follows the source's aspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RungSpec {
    /// The rendition's name in URLs (`/live/<stream>/<name>/index.m3u8`).
    pub name: String,
    pub height: u32,
    /// Video bitrate, bits per second.
    pub bitrate: u64,
}

impl RungSpec {
    pub fn new(name: &str, height: u32, bitrate: u64) -> Self {
        Self {
            name: name.to_owned(),
            height,
            bitrate,
        }
    }
}

/// The default ladder: 1080p 6 Mbit/s, 720p 3 Mbit/s, 480p 1.2 Mbit/s, 360p 0.6 Mbit/s.
pub fn default_ladder() -> Vec<RungSpec> {
    vec![
        RungSpec::new("1080p", 1080, 6_000_000),
        RungSpec::new("720p", 720, 3_000_000),
        RungSpec::new("480p", 480, 1_200_000),
        RungSpec::new("360p", 360, 600_000),
    ]
}

/// A rung fixed for a stream's life: its name, picture size and bitrate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rung {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bitrate: u64,
}

impl fmt::Display for Rung {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}x{} {} kbit/s",
            self.name,
            self.width,
            self.height,
            self.bitrate / 1000
        )
    }
}

/// The rungs for a `width`×`height` source, highest first. A rung taller than the source is
/// left out (never upscale); when that leaves none, the source's own size is the one rung,
/// with the lowest configured rung's name and the highest bitrate that fits it. Widths keep
/// the source's aspect ratio and, like heights, are rounded to even numbers (4:2:0).
pub fn plan(specs: &[RungSpec], width: u32, height: u32) -> Vec<Rung> {
    let (width, height) = (width.max(2), height.max(2));
    let mut specs: Vec<&RungSpec> = specs.iter().collect();
    specs.sort_by_key(|s| std::cmp::Reverse(s.height));
    let mut rungs: Vec<Rung> = specs
        .iter()
        .filter(|s| s.height <= height && s.height >= 2)
        .map(|s| Rung {
            name: s.name.clone(),
            width: even(u64::from(s.height) * u64::from(width) / u64::from(height)),
            height: even(u64::from(s.height)),
            bitrate: s.bitrate,
        })
        .collect();
    rungs.dedup_by(|a, b| a.height == b.height);
    if rungs.is_empty() {
        if let Some(lowest) = specs.last() {
            rungs.push(Rung {
                name: lowest.name.clone(),
                width: even(u64::from(width)),
                height: even(u64::from(height)),
                bitrate: lowest.bitrate,
            });
        }
    }
    rungs
}

fn even(v: u64) -> u32 {
    let v = u32::try_from(v).unwrap_or(u32::MAX);
    (v & !1).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_ladder_for_1080p() {
        let r = plan(&default_ladder(), 1920, 1080);
        let sizes: Vec<_> = r.iter().map(|r| (r.width, r.height)).collect();
        assert_eq!(sizes, [(1920, 1080), (1280, 720), (852, 480), (640, 360)]);
    }

    #[test]
    fn never_upscales() {
        let r = plan(&default_ladder(), 1280, 720);
        let names: Vec<_> = r.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["720p", "480p", "360p"]);
    }

    #[test]
    fn tiny_source_gets_one_rung_at_its_own_size() {
        let r = plan(&default_ladder(), 321, 181);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].width, r[0].height, r[0].bitrate), (320, 180, 600_000));
    }

    #[test]
    fn portrait_keeps_aspect() {
        let r = plan(&default_ladder(), 1080, 1920);
        assert_eq!((r[0].width, r[0].height), (606, 1080));
    }
}
