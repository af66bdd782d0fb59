//! fault-oom: both transforms try to allocate 4 GiB, 64 MiB at a time, keeping every chunk
//! and writing into it, until an allocation fails. For the host's fault-isolation tests:
//! the memory cap (StoreLimits) makes `memory.grow` fail, the allocator's failure aborts,
//! and the call traps; the host answers with its failure policy (pass-through here).
//! Without a cap, wasm32's 4 GiB address space ends it the same way.

use weir_guest::{CueEvent, FailurePolicy, Guest, PluginInfo, RequestContext};

const CHUNK: usize = 64 << 20;
const TARGET: u64 = 4 << 30;

struct FaultOom;

impl Guest for FaultOom {
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
        let held = hoard(TARGET, CHUNK);
        Err(format!("fault-oom: allocated {held} bytes without failing"))
    }

    fn transform_multivariant_playlist(
        _ctx: RequestContext,
        _playlist: String,
    ) -> Result<String, String> {
        let held = hoard(TARGET, CHUNK);
        Err(format!("fault-oom: allocated {held} bytes without failing"))
    }

    fn resolve_asset_list(_ctx: RequestContext, _cue_id: u32) -> Result<String, String> {
        Err("fault-oom inserts no interstitials".into())
    }
}

weir_guest::export!(FaultOom);

/// Allocates `chunk`-byte blocks until `target` bytes are held, filling each (with ones,
/// not zeros, so the allocator cannot hand out untouched fresh pages as already zeroed).
/// `black_box` keeps the optimiser from eliding allocations that are never read. Returns
/// how much it held (it only returns when nothing stopped it).
fn hoard(target: u64, chunk: usize) -> u64 {
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut total = 0u64;
    while total < target {
        let block: Vec<u8> = vec![1; chunk];
        total += std::hint::black_box(&block).len() as u64;
        held.push(block);
        std::hint::black_box(&held);
    }
    total
}

#[cfg(test)]
mod tests {
    #[test]
    fn hoard_keeps_what_it_allocates() {
        // Natively only a small amount: the real 4 GiB run belongs in the sandbox.
        assert_eq!(super::hoard(8 << 20, 1 << 20), 8 << 20);
    }
}
