//! fault-init-panic: `init` panics (a trap). For the host's push path: the push must be
//! rejected with a clear error and the tenant must keep its previous chain. The other
//! functions never run in practice; they pass through.

use weir_guest::{CueEvent, Guest, PluginInfo, RequestContext};

struct FaultInitPanic;

impl Guest for FaultInitPanic {
    fn init(_config: String) -> Result<PluginInfo, String> {
        panic!("fault-init-panic: deliberate panic in init")
    }

    fn transform_media_playlist(
        _ctx: RequestContext,
        _cues: Vec<CueEvent>,
        playlist: String,
    ) -> Result<String, String> {
        Ok(playlist)
    }

    fn transform_multivariant_playlist(
        _ctx: RequestContext,
        playlist: String,
    ) -> Result<String, String> {
        Ok(playlist)
    }

    fn resolve_asset_list(_ctx: RequestContext, _cue_id: u32) -> Result<String, String> {
        Err("fault-init-panic inserts no interstitials".into())
    }
}

weir_guest::export!(FaultInitPanic);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "deliberate panic in init")]
    fn init_panics() {
        let _ = FaultInitPanic::init(String::new());
    }
}
