//! The `last-good` failure policy: re-apply what a plugin did to an earlier playlist to a
//! newer one.
//!
//! A live playlist slides: the next version drops old segments and adds new ones, so the
//! last good *output* cannot be served as it is. Its *decisions* can: the lines it inserted
//! and the lines it replaced or removed, each anchored to a line of the input that names one
//! object (a segment URI, a part, a date). Those anchors are looked up in the new input;
//! where a segment is still listed, the plugin's edit is made again, and new segments pass
//! through untouched. A blackout plugin that fails mid-blackout therefore keeps the slate on
//! every segment it had already blacked out.
//!
//! The diff is `similar`'s line diff (Myers), which is exact for this: playlists are a few
//! hundred lines. Myers is O(N·D), quadratic for a plugin output that changed everything
//! (up to the host's output cap), and a replay can run on a request's path, so the diff has
//! a deadline ([`DIFF_TIMEOUT`]); past it `similar` returns a coarser (still correct) diff.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use similar::{DiffOp, TextDiff};

/// How long the diff of one replay may search for the smallest edit.
pub const DIFF_TIMEOUT: Duration = Duration::from_millis(5);

/// Edits of one input line, keyed by its text.
#[derive(Debug, Default)]
struct Edit<'a> {
    /// Lines inserted before it, with the lines that must come right before it in the new
    /// input for the insertion point to be the same (non-unique lines like `#EXTINF:2.000,`).
    before: Vec<(Vec<&'a str>, Vec<&'a str>)>,
    /// What it became (`Some(vec![])` for removed).
    replaced: Option<Vec<&'a str>>,
}

/// Applies the edits that turned `old_in` into `old_out` to `new_in`.
pub fn replay<'a>(old_in: &'a str, old_out: &'a str, new_in: &str) -> String {
    let old: Vec<&'a str> = old_in.split_inclusive('\n').collect();
    let out: Vec<&'a str> = old_out.split_inclusive('\n').collect();
    let unique: HashSet<&'a str> = {
        let mut seen: HashMap<&'a str, usize> = HashMap::new();
        for l in &old {
            *seen.entry(*l).or_default() += 1;
        }
        seen.into_iter()
            .filter(|(_, n)| *n == 1)
            .map(|(l, _)| l)
            .collect()
    };
    let mut edits: HashMap<&'a str, Edit<'a>> = HashMap::new();
    let mut at_end: Vec<&'a str> = Vec::new();
    // Inserts `lines` before old line `i`, anchored on the next unique line.
    let mut insert = |edits: &mut HashMap<&'a str, Edit<'a>>, i: usize, lines: Vec<&'a str>| {
        match (i..old.len()).find(|&j| unique.contains(old[j])) {
            Some(j) => edits
                .entry(old[j])
                .or_default()
                .before
                .push((old[i..j].to_vec(), lines)),
            None => at_end.extend(lines),
        }
    };
    let diff = TextDiff::configure()
        .timeout(DIFF_TIMEOUT)
        .diff_slices(&old, &out);
    for op in diff.ops() {
        match *op {
            DiffOp::Equal { .. } => {}
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => insert(
                &mut edits,
                old_index,
                out[new_index..new_index + new_len].to_vec(),
            ),
            DiffOp::Delete {
                old_index, old_len, ..
            } => {
                for l in &old[old_index..old_index + old_len] {
                    if unique.contains(l) {
                        edits.entry(*l).or_default().replaced = Some(Vec::new());
                    }
                }
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                let new_lines = &out[new_index..new_index + new_len];
                let old_lines = &old[old_index..old_index + old_len];
                if old_len == new_len {
                    for (o, n) in old_lines.iter().zip(new_lines) {
                        if unique.contains(o) {
                            edits.entry(*o).or_default().replaced = Some(vec![*n]);
                        }
                    }
                } else {
                    // Uneven: the new lines go before the first old one, which is removed.
                    insert(&mut edits, old_index, new_lines.to_vec());
                    for o in old_lines {
                        if unique.contains(o) {
                            edits.entry(*o).or_default().replaced = Some(Vec::new());
                        }
                    }
                }
            }
        }
    }

    let new: Vec<&str> = new_in.split_inclusive('\n').collect();
    // Insertion points first (by index in `new`), then the output in one pass.
    let mut inserts: HashMap<usize, Vec<&str>> = HashMap::new();
    for (j, line) in new.iter().enumerate() {
        let Some(edit) = edits.get(line) else {
            continue;
        };
        for (lead, lines) in &edit.before {
            if j >= lead.len() && new[j - lead.len()..j] == lead[..] {
                inserts
                    .entry(j - lead.len())
                    .or_default()
                    .extend(lines.iter().copied());
            }
        }
    }
    let mut result = String::with_capacity(new_in.len() + 256);
    for (j, line) in new.iter().enumerate() {
        if let Some(lines) = inserts.get(&j) {
            lines.iter().for_each(|l| result.push_str(l));
        }
        match edits.get(line).and_then(|e| e.replaced.as_ref()) {
            Some(replacement) => replacement.iter().for_each(|l| result.push_str(l)),
            None => result.push_str(line),
        }
    }
    at_end.iter().for_each(|l| result.push_str(l));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playlist(first: u64, last: u64) -> String {
        let mut s =
            format!("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-MAP:URI=\"init.mp4\"\n");
        for n in first..=last {
            s.push_str(&format!(
                "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T19:00:{:02}.000Z\n#EXTINF:2.000,\nseg{n}.m4s\n",
                n * 2
            ));
        }
        s
    }

    #[test]
    fn edits_follow_their_segments_as_the_window_slides() {
        let old_in = playlist(1, 4);
        // The plugin dated segment 3 and slated segment 4.
        let old_out = old_in
            .replace(
                "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T19:00:06.000Z\n",
                "#EXT-X-DATERANGE:ID=\"x\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T19:00:06.000Z\n",
            )
            .replace("seg4.m4s", "../slate/seg4.m4s");
        let new_in = playlist(3, 6);
        let replayed = replay(&old_in, &old_out, &new_in);
        let expected = new_in
            .replace(
                "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T19:00:06.000Z\n",
                "#EXT-X-DATERANGE:ID=\"x\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T19:00:06.000Z\n",
            )
            .replace("seg4.m4s", "../slate/seg4.m4s");
        assert_eq!(replayed, expected);
    }

    #[test]
    fn nothing_to_replay_is_the_identity() {
        let a = playlist(1, 3);
        let b = playlist(2, 5);
        assert_eq!(replay(&a, &a, &b), b);
    }

    #[test]
    fn edits_of_segments_gone_from_the_window_are_dropped() {
        let old_in = playlist(1, 2);
        let old_out = old_in.replace("seg1.m4s", "../slate/seg1.m4s");
        let new_in = playlist(2, 3);
        assert_eq!(replay(&old_in, &old_out, &new_in), new_in);
    }
}
