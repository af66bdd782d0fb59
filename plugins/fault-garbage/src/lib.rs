//! fault-garbage: both transforms return `ok` with text that is not a playlist. For the
//! host's fault-isolation tests: the host must reject the output (it does not start with
//! `#EXTM3U`) and answer with its failure policy (pass-through here).

use weir_guest::{CueEvent, FailurePolicy, Guest, PluginInfo, RequestContext};

pub const GARBAGE: &str = "this is not a playlist";

struct FaultGarbage;

impl Guest for FaultGarbage {
    fn init(_config: String) -> Result<PluginInfo, String> {
        Ok(PluginInfo {
            varies_on: Vec::new(),
            failure_policy: FailurePolicy::PassThrough,
        })
    }

    fn transform_media_playlist(
        _ctx: RequestContext,
        _cues: Vec<CueEvent>,
        _playlist: String,
    ) -> Result<String, String> {
        Ok(GARBAGE.into())
    }

    fn transform_multivariant_playlist(
        _ctx: RequestContext,
        _playlist: String,
    ) -> Result<String, String> {
        Ok(GARBAGE.into())
    }

    fn resolve_asset_list(_ctx: RequestContext, _cue_id: u32) -> Result<String, String> {
        Ok(GARBAGE.into())
    }
}

weir_guest::export!(FaultGarbage);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_garbage() {
        let ctx = RequestContext {
            tenant: "t".into(),
            stream: "s".into(),
            rendition: "r".into(),
            country: None,
            headers: vec![],
            query: vec![],
            now_ms: 0,
        };
        let out = FaultGarbage::transform_media_playlist(ctx, vec![], "#EXTM3U\n".into());
        assert_eq!(out.unwrap(), GARBAGE);
        assert!(weir_guest::MediaPlaylist::parse(GARBAGE).is_err());
    }
}
