//! weir-guest against the playlists weir's packager actually writes (tests/data/).

mod edits;
mod golden;
mod mutations;

use std::path::PathBuf;

fn data(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn media_files() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/data")
        .map(|e| {
            e.expect("a tests/data entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.starts_with("media_") && n.ends_with(".m3u8"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    files
        .into_iter()
        .map(|n| (data(&n), n))
        .map(|(t, n)| (n, t))
        .collect()
}

/// `2026-11-25T16:00:00.000Z`, the packager's golden-file epoch.
const T0: u64 = 1_795_622_400_000;
