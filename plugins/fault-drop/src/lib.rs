//! fault-drop: returns the media playlist with its last segment URI line removed, an
//! output that still starts with `#EXTM3U` but drops media. For the host's
//! fault-isolation tests: the contract says output keeps every segment, part, preload hint
//! and map of the input, so the host must reject this and answer with its failure policy
//! (pass-through here). The multivariant playlist passes through unchanged.

use weir_guest::{CueEvent, FailurePolicy, Guest, PluginInfo, RequestContext};

struct FaultDrop;

impl Guest for FaultDrop {
    fn init(_config: String) -> Result<PluginInfo, String> {
        Ok(PluginInfo {
            varies_on: Vec::new(),
            failure_policy: FailurePolicy::PassThrough,
        })
    }

    fn transform_media_playlist(
        _ctx: RequestContext,
        _cues: Vec<CueEvent>,
        playlist: String,
    ) -> Result<String, String> {
        Ok(drop_last_segment_line(&playlist))
    }

    fn transform_multivariant_playlist(
        _ctx: RequestContext,
        playlist: String,
    ) -> Result<String, String> {
        Ok(playlist)
    }

    fn resolve_asset_list(_ctx: RequestContext, _cue_id: u32) -> Result<String, String> {
        Err("fault-drop inserts no interstitials".into())
    }
}

weir_guest::export!(FaultDrop);

/// The text without its last URI line (the last complete segment's URI).
pub fn drop_last_segment_line(text: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let last_uri = lines.iter().rposition(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    });
    lines
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != last_uri)
        .map(|(_, l)| *l)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = include_str!("../../../guest-sdk/tests/data/media_full.m3u8");

    #[test]
    fn drops_the_last_segment_uri() {
        let out = drop_last_segment_line(FULL);
        assert!(!out.contains("seg46.m4s"));
        assert!(out.contains("seg45.m4s\n"));
        assert_eq!(out.len(), FULL.len() - "seg46.m4s\n".len());
        assert!(out.starts_with("#EXTM3U\n"));
    }
}
