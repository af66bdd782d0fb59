//! fault-loop: both transforms spin forever. For the host's fault-isolation tests: epoch
//! interruption must stop the call at its deadline and the host must answer with its
//! failure policy (pass-through here).

use weir_guest::{CueEvent, FailurePolicy, Guest, PluginInfo, RequestContext};

struct FaultLoop;

impl Guest for FaultLoop {
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
        spin(u64::MAX);
        Ok(playlist)
    }

    fn transform_multivariant_playlist(
        _ctx: RequestContext,
        playlist: String,
    ) -> Result<String, String> {
        spin(u64::MAX);
        Ok(playlist)
    }

    fn resolve_asset_list(_ctx: RequestContext, _cue_id: u32) -> Result<String, String> {
        Err("fault-loop inserts no interstitials".into())
    }
}

weir_guest::export!(FaultLoop);

/// Counts to `limit` through `black_box`, so the optimiser can neither drop the loop nor
/// compute its result ahead of time. With `u64::MAX` that is forever, in practice.
fn spin(limit: u64) -> u64 {
    let mut n = 0u64;
    while std::hint::black_box(n) < limit {
        n = std::hint::black_box(n + 1);
    }
    n
}

#[cfg(test)]
mod tests {
    #[test]
    fn spin_really_counts() {
        assert_eq!(super::spin(1_000_000), 1_000_000);
    }
}
