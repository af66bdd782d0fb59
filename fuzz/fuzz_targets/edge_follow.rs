//! weir-edge on arbitrary upstream playlists: the Follower (two playlists in a row, so its
//! state is exercised) and the trim at every cut. Neither may panic, and a trim must keep
//! the playlist's first line.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_edge::{trim::trim, Follower};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mid = (0..=text.len() / 2)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let (a, b) = text.split_at(mid);
    let mut f = Follower::new();
    let _ = f.playlist(&text);
    let _ = f.playlist(a);
    let _ = f.playlist(b);
    let _ = f.next_request();
    f.restart_request();
    for (first, keep) in [(0, 0), (0, 1), (5, 7), (u64::MAX - 1, u64::MAX)] {
        let out = trim(&text, first, keep);
        if keep <= first {
            assert_eq!(out, text);
        }
    }
});
