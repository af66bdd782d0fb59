//! The renditions a stream lists in its multivariant playlist, and each one's live edge for
//! the others' `EXT-X-RENDITION-REPORT`s.

use weir_packager::{MultivariantPlaylist, RenditionReport, Variant};

#[derive(Debug, Default)]
pub(crate) struct Ladder {
    entries: Vec<LadderEntry>,
}

#[derive(Debug)]
struct LadderEntry {
    name: String,
    variant: Option<Variant>,
    /// (LAST-MSN, LAST-PART) of its newest playlist.
    edge: Option<(u64, u32)>,
}

impl Ladder {
    /// Declares renditions (in multivariant order) before any of them publishes.
    pub(crate) fn declare(&mut self, names: &[&str]) {
        for n in names {
            self.entry(n);
        }
    }

    fn entry(&mut self, name: &str) -> &mut LadderEntry {
        let i = match self.entries.iter().position(|x| x.name == name) {
            Some(i) => i,
            None => {
                self.entries.push(LadderEntry {
                    name: name.to_owned(),
                    variant: None,
                    edge: None,
                });
                self.entries.len() - 1
            }
        };
        &mut self.entries[i]
    }

    /// Records `name`'s edge; returns the reports for its siblings.
    pub(crate) fn reports(&mut self, name: &str, edge: Option<(u64, u32)>) -> Vec<RenditionReport> {
        self.entry(name).edge = edge;
        self.entries
            .iter()
            .filter(|x| x.name != name)
            .filter_map(|x| {
                let (last_msn, last_part) = x.edge?;
                Some(RenditionReport {
                    uri: format!("../{}/index.m3u8", x.name),
                    last_msn,
                    last_part,
                })
            })
            .collect()
    }

    /// Sets `name`'s variant; returns the multivariant playlist of every known variant.
    pub(crate) fn multivariant(&mut self, name: &str, variant: Variant) -> MultivariantPlaylist {
        self.entry(name).variant = Some(variant);
        MultivariantPlaylist {
            variants: self
                .entries
                .iter()
                .filter_map(|x| x.variant.clone())
                .collect(),
        }
    }
}
