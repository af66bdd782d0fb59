//! fault-trap: both transforms trap (a panic, which `panic = "abort"` turns into the Wasm
//! `unreachable` instruction). For the host's fault-isolation tests: the host must answer
//! with its failure policy (pass-through here) and count the failure.

use weir_guest::{CueEvent, FailurePolicy, Guest, PluginInfo, RequestContext};

struct FaultTrap;

impl Guest for FaultTrap {
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
        trap()
    }

    fn transform_multivariant_playlist(
        _ctx: RequestContext,
        _playlist: String,
    ) -> Result<String, String> {
        trap()
    }

    fn resolve_asset_list(_ctx: RequestContext, _cue_id: u32) -> Result<String, String> {
        Err("fault-trap inserts no interstitials".into())
    }
}

weir_guest::export!(FaultTrap);

fn trap() -> ! {
    panic!("fault-trap: deliberate trap")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "deliberate trap")]
    fn transform_traps() {
        let ctx = RequestContext {
            tenant: "t".into(),
            stream: "s".into(),
            rendition: "r".into(),
            country: None,
            headers: vec![],
            query: vec![],
            now_ms: 0,
        };
        let _ = FaultTrap::transform_media_playlist(ctx, vec![], "#EXTM3U\n".into());
    }

    #[test]
    fn init_declares_pass_through() {
        let info = FaultTrap::init(String::new()).unwrap();
        assert!(info.varies_on.is_empty());
        assert_eq!(info.failure_policy, FailurePolicy::PassThrough);
    }
}
