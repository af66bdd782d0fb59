//! The wasmtime side: one [`Engine`] (pooling allocator, epoch interruption), components
//! compiled once into an `InstancePre`, and a fresh [`Store`] with limits for every call.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter,
    Store, StoreLimits, StoreLimitsBuilder, Trap,
};

use crate::{Failure, Limits};

wasmtime::component::bindgen!({
    world: "manifest-plugin",
    path: "../../wit",
});

pub use weir::plugin::types::{CueKind, FailurePolicy, Level, VariantAttribute};

/// The imports a plugin may have: the host interface, and the types-only interface that
/// every guest's bindings import because the world `use`s it. Anything else is refused at
/// push time.
const ALLOWED_IMPORTS: [&str; 2] = ["weir:plugin/host@0.1.", "weir:plugin/types@0.1."];
/// Log lines one call may write, so a chatty guest cannot flood the host's log.
const MAX_LOG_LINES_PER_CALL: u32 = 16;
const MAX_LOG_LINE: usize = 1024;
/// What is kept of a guest's `err` text.
const MAX_ERR_MESSAGE: usize = 512;

/// A guest's text made safe for a log line: at most `max` bytes (cut at a character
/// boundary, marked with `…`), control characters escaped (`\n`, `\u{1b}`), so a plugin can
/// neither forge log lines nor drive a terminal.
pub(crate) fn guest_text(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + 8);
    for c in text[..end].chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if end < text.len() {
        out.push('…');
    }
    out
}

/// The host's own cap on what a call returns. wasmtime has already lifted the string into
/// host memory by now (bindgen's typed call copies it and runs the guest's post-return
/// before it returns, so a lazily lifted `WasmStr` could read freed guest memory); that
/// copy is bounded by the instance's memory cap. This check drops it before anything else
/// (validation, caching, cloning) touches it.
fn capped(limit: usize, r: Result<String, Failure>) -> Result<String, Failure> {
    match r {
        Ok(s) if s.len() > limit => Err(Failure::OutputTooLarge {
            bytes: s.len(),
            limit,
        }),
        r => r,
    }
}

/// Per-store state: the limits and who is calling, for log lines.
pub(crate) struct HostState {
    limiter: Limiter,
    tenant: Arc<str>,
    plugin: Arc<str>,
    log_lines: u32,
    /// Set while the host re-runs `init` before a call: its log lines were already
    /// written when the plugin was pushed.
    quiet: bool,
}

/// [`StoreLimits`] plus a note of whether a growth was refused, so that a guest that dies
/// (or answers `err`) after hitting its cap is counted as a memory failure.
struct Limiter {
    inner: StoreLimits,
    denied: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = self.inner.memory_growing(current, desired, maximum)?;
        self.denied |= !ok;
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = self.inner.table_growing(current, desired, maximum)?;
        self.denied |= !ok;
        Ok(ok)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

impl weir::plugin::types::Host for HostState {}

impl weir::plugin::host::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        if self.quiet {
            return;
        }
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES_PER_CALL {
            return;
        }
        let message = guest_text(&message, MAX_LOG_LINE);
        let (tenant, plugin) = (&*self.tenant, &*self.plugin);
        match level {
            Level::Error => tracing::error!(tenant, plugin, "{message}"),
            Level::Warn => tracing::warn!(tenant, plugin, "{message}"),
            Level::Info => tracing::info!(tenant, plugin, "{message}"),
            Level::Debug => tracing::debug!(tenant, plugin, "{message}"),
            Level::Trace => tracing::trace!(tenant, plugin, "{message}"),
        }
    }
}

/// Bytes of a linear memory's pool slot that are reset in place when its instance is
/// dropped, and so stay resident for the next call (see [`engine_config`]). A call of the
/// Rust scte35 plugin on a 4 KB playlist writes 8 pages of memory and tables (the top of
/// its stack, its data, the heap it used), the JavaScript cue-out plugin ~540 KiB; what a
/// call writes beyond this is given back as before.
const MEMORY_KEEP_RESIDENT: usize = 1 << 20;
/// The same for tables (a Rust guest's function table is a few hundred bytes).
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// The engine's configuration: epoch interruption, and the pooling allocator sized by
/// `limits`.
///
/// Every call instantiates its component in a fresh store, and dropping the store resets
/// the instance's pool slots to their initial contents. By default wasmtime does that with
/// `madvise(MADV_DONTNEED)` over everything the call touched: a system call with a TLB
/// shootdown on every call, and then every page the next call touches faults again (a zeroed
/// page, or a copy-on-write copy of the data segment): 8 minor faults and ~60 % of a Rust
/// guest's call on this 2-core machine, and its p99 (issue 17). Where Linux has the
/// `PAGEMAP_SCAN` ioctl (6.7+), wasmtime instead finds the pages the call wrote and copies
/// their initial contents back, up to [`MEMORY_KEEP_RESIDENT`] bytes per memory (the rest
/// is still given back with `madvise`): no fault, no TLB shootdown, and the next instance
/// sees exactly the initial memory, as before. Without the ioctl, keeping memory resident
/// would mean `memset`ting the whole kept range on every call (slower than the faults for
/// these guests, measured), so the defaults stay.
fn engine_config(limits: &Limits) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    // Stores alive at once: one per worker call, plus pushes being validated.
    pool.total_component_instances(limits.max_concurrent_instances)
        .total_memories(limits.max_concurrent_instances.saturating_mul(4))
        .total_tables(limits.max_concurrent_instances.saturating_mul(8))
        .max_memory_size(limits.memory_bytes);
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT);
    } else {
        tracing::info!(
            "no PAGEMAP_SCAN (Linux < 6.7): plugin memory is reset with madvise, each call \
             page-faults its memory in again"
        );
    }
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// The epoch ticker: a thread that advances the engine's epoch every `epoch_tick` while a
/// call is in flight, so a guest past its deadline traps. With no call in flight for
/// [`IDLE_TICKS_BEFORE_PARK`] ticks it parks, and the next call wakes it: an idle host
/// takes no timer wake-ups (it took 1,000 a second).
struct Ticker {
    stop: AtomicBool,
    /// Calls in flight.
    active: AtomicUsize,
    /// Set by the ticker just before it parks.
    parked: AtomicBool,
}

const IDLE_TICKS_BEFORE_PARK: u32 = 100;

impl Ticker {
    fn run(&self, engine: &Engine, tick: Duration) {
        let mut idle = 0;
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(tick);
            if self.active.load(Ordering::SeqCst) > 0 {
                engine.increment_epoch();
                idle = 0;
                continue;
            }
            idle += 1;
            if idle >= IDLE_TICKS_BEFORE_PARK {
                // Either a call's `enter` sees `parked` and unparks this thread, or this
                // load sees its call: both sides are SeqCst.
                self.parked.store(true, Ordering::SeqCst);
                if self.active.load(Ordering::SeqCst) == 0 && !self.stop.load(Ordering::SeqCst) {
                    std::thread::park();
                }
                self.parked.store(false, Ordering::SeqCst);
                idle = 0;
            }
        }
    }
}

/// A call in flight, for the [`Ticker`]: counted from before its store exists until after
/// it is dropped.
struct InFlight<'a>(&'a Runtime);

impl<'a> InFlight<'a> {
    fn enter(rt: &'a Runtime) -> Self {
        rt.ticker.active.fetch_add(1, Ordering::SeqCst);
        if rt.ticker.parked.load(Ordering::SeqCst) {
            rt.ticker_thread.unpark();
        }
        InFlight(rt)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.ticker.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The engine and linker every plugin shares, and the epoch ticker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Limits,
    deadline_ticks: u64,
    ticker: Arc<Ticker>,
    ticker_thread: std::thread::Thread,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.stop.store(true, Ordering::SeqCst);
        self.ticker_thread.unpark();
    }
}

impl Runtime {
    pub fn new(limits: Limits) -> wasmtime::Result<Self> {
        let engine = Engine::new(&engine_config(&limits))?;
        let mut linker = Linker::<HostState>::new(&engine);
        ManifestPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;

        let ticker = Arc::new(Ticker {
            stop: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
        });
        let (e, t, tick) = (engine.clone(), ticker.clone(), limits.epoch_tick);
        let ticker_thread = std::thread::Builder::new()
            .name("weir-plugin-epoch".to_owned())
            .spawn(move || t.run(&e, tick))?
            .thread()
            .clone();
        let tick_ms = limits.epoch_tick.as_micros().max(1);
        let deadline_ticks = u64::try_from(limits.call_timeout.as_micros().div_ceil(tick_ms))
            .unwrap_or(u64::MAX)
            .max(1);
        Ok(Self {
            engine,
            linker,
            limits,
            deadline_ticks,
            ticker,
            ticker_thread,
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes the pool keeps resident in memories and tables that no instance uses now
    /// (what [`MEMORY_KEEP_RESIDENT`] costs).
    pub fn pool_resident_bytes(&self) -> usize {
        self.engine.pooling_allocator_metrics().map_or(0, |m| {
            m.unused_memory_bytes_resident() + m.unused_table_bytes_resident()
        })
    }

    /// Compiles and links a component. Slow (milliseconds for Rust guests, seconds for
    /// JavaScript and Python): call it off the async runtime.
    pub fn compile(&self, bytes: &[u8]) -> Result<Compiled, String> {
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| format!("not a valid Wasm component: {e:#}"))?;
        let foreign: Vec<String> = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .filter(|name| !ALLOWED_IMPORTS.iter().any(|p| name.starts_with(p)))
            .collect();
        if !foreign.is_empty() {
            return Err(format!(
                "imports {} but weir grants only weir:plugin/host (no WASI: build JavaScript \
                 with `componentize-js -d stdio random clocks http fetch-event`, Python with \
                 `componentize-py … --stub-wasi`, Rust for wasm32-unknown-unknown)",
                foreign.join(", ")
            ));
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| format!("cannot link: {e:#}"))?;
        let pre = ManifestPluginPre::new(pre)
            .map_err(|e| format!("does not export the weir:plugin/manifest-plugin world: {e:#}"))?;
        Ok(Compiled { pre })
    }

    /// Instantiates in a fresh store and runs `f` under the call deadline and memory cap.
    ///
    /// A fresh store has none of the state `init` built, so for every call but `init` itself
    /// the host first runs `init(config)` again (quietly, with its own deadline). The
    /// contract stays stateless for the guest: its config is always there, and nothing
    /// else survives a call.
    fn call<R>(
        &self,
        compiled: &Compiled,
        who: (&Arc<str>, &Arc<str>),
        reinit: Option<&str>,
        f: impl FnOnce(&ManifestPlugin, &mut Store<HostState>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, Failure> {
        let _in_flight = InFlight::enter(self);
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .table_elements(self.limits.table_elements)
            .instances(self.limits.instances)
            .build();
        let state = HostState {
            limiter: Limiter {
                inner: limits,
                denied: false,
            },
            tenant: who.0.clone(),
            plugin: who.1.clone(),
            log_lines: 0,
            quiet: false,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(self.deadline_ticks);
        store.epoch_deadline_trap();
        let deadline = self.deadline_ticks;
        let result = compiled.pre.instantiate(&mut store).and_then(|plugin| {
            if let Some(config) = reinit {
                store.data_mut().quiet = true;
                if let Err(e) = plugin.call_init(&mut store, config)? {
                    return Ok(Err(format!("init failed on re-run: {e}")));
                }
                store.data_mut().quiet = false;
                store.set_epoch_deadline(deadline);
            }
            f(&plugin, &mut store)
        });
        let denied = store.data().limiter.denied;
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) if denied => Err(Failure::MemoryCap),
            // The guest's text goes into logs and metrics' neighbours: bounded and escaped.
            Ok(Err(message)) => Err(Failure::Err(guest_text(&message, MAX_ERR_MESSAGE))),
            Err(e) => Err(match e.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => Failure::Timeout(self.limits.call_timeout),
                _ if denied => Failure::MemoryCap,
                _ => Failure::Trap(format!("{e:#}")),
            }),
        }
    }

    pub fn init(
        &self,
        compiled: &Compiled,
        who: (&Arc<str>, &Arc<str>),
        config: &str,
    ) -> Result<PluginInfo, Failure> {
        self.call(compiled, who, None, |p, s| p.call_init(s, config))
    }

    pub fn transform_media(
        &self,
        compiled: &Compiled,
        who: (&Arc<str>, &Arc<str>),
        config: &str,
        ctx: &RequestContext,
        cues: &[CueEvent],
        playlist: &str,
    ) -> Result<String, Failure> {
        let r = self.call(compiled, who, Some(config), |p, s| {
            p.call_transform_media_playlist(s, ctx, cues, playlist)
        });
        capped(self.limits.output_bytes, r)
    }

    pub fn transform_multivariant(
        &self,
        compiled: &Compiled,
        who: (&Arc<str>, &Arc<str>),
        config: &str,
        ctx: &RequestContext,
        playlist: &str,
    ) -> Result<String, Failure> {
        let r = self.call(compiled, who, Some(config), |p, s| {
            p.call_transform_multivariant_playlist(s, ctx, playlist)
        });
        capped(self.limits.output_bytes, r)
    }

    pub fn resolve_asset_list(
        &self,
        compiled: &Compiled,
        who: (&Arc<str>, &Arc<str>),
        config: &str,
        ctx: &RequestContext,
        cue_id: u32,
    ) -> Result<String, Failure> {
        let r = self.call(compiled, who, Some(config), |p, s| {
            p.call_resolve_asset_list(s, ctx, cue_id)
        });
        capped(self.limits.output_bytes, r)
    }
}

/// A component compiled and linked once; instantiated per call.
#[derive(Clone)]
pub struct Compiled {
    pre: ManifestPluginPre<HostState>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").finish_non_exhaustive()
    }
}

/// Measures one call, for the latency histogram.
#[allow(clippy::disallowed_methods)] // measures a plugin call's cost (metrics), on the worker that runs it
pub(crate) fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let r = f();
    (r, start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with 20 pages of memory holding 42 at 1 MiB (a data segment) and zero
    /// elsewhere. `probe` returns mem[1 MiB] + mem[64 KiB] + mem[1 MiB + 192 KiB] +
    /// memory.size, so 62 in a fresh instance, then writes 7 over all three, grows the
    /// memory by a page and writes 9 in it. (Hand-encoded: wasmtime is built without `wat`.)
    const PROBE: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f,
        0x03, 0x02, 0x01, 0x00, 0x05, 0x03, 0x01, 0x00, 0x14, 0x07, 0x09, 0x01, 0x05, 0x70, 0x72,
        0x6f, 0x62, 0x65, 0x00, 0x00, 0x0a, 0x5a, 0x01, 0x58, 0x01, 0x01, 0x7f, 0x41, 0x80, 0x80,
        0xc0, 0x00, 0x28, 0x02, 0x00, 0x41, 0x80, 0x80, 0x04, 0x28, 0x02, 0x00, 0x6a, 0x21, 0x00,
        0x20, 0x00, 0x41, 0x80, 0x80, 0xcc, 0x00, 0x28, 0x02, 0x00, 0x6a, 0x21, 0x00, 0x20, 0x00,
        0x3f, 0x00, 0x6a, 0x21, 0x00, 0x41, 0x80, 0x80, 0xc0, 0x00, 0x41, 0x07, 0x36, 0x02, 0x00,
        0x41, 0x80, 0x80, 0x04, 0x41, 0x07, 0x36, 0x02, 0x00, 0x41, 0x80, 0x80, 0xcc, 0x00, 0x41,
        0x07, 0x36, 0x02, 0x00, 0x41, 0x01, 0x40, 0x00, 0x1a, 0x41, 0x80, 0x80, 0xd0, 0x00, 0x41,
        0x09, 0x36, 0x02, 0x00, 0x20, 0x00, 0x0b, 0x0b, 0x0d, 0x01, 0x00, 0x41, 0x80, 0x80, 0xc0,
        0x00, 0x0b, 0x04, 0x2a, 0x00, 0x00, 0x00,
    ];

    /// Pool slots are reset in place where the kernel allows it (see `engine_config`): a
    /// new instance in a reused slot must still see the initial memory, never what the last
    /// call wrote, and the initial size after a call grew it.
    #[test]
    fn a_reused_pool_slot_starts_from_the_initial_memory() {
        let engine = Engine::new(&engine_config(&Limits::default())).expect("engine");
        let module = wasmtime::Module::new(&engine, PROBE).expect("module");
        for _ in 0..50 {
            let mut store = Store::new(&engine, ());
            store.set_epoch_deadline(1_000);
            let instance = wasmtime::Instance::new(&mut store, &module, &[]).expect("instance");
            let probe = instance
                .get_typed_func::<(), i32>(&mut store, "probe")
                .expect("probe");
            assert_eq!(probe.call(&mut store, ()).expect("call"), 62);
        }
        let resident = engine
            .pooling_allocator_metrics()
            .map_or(0, |m| m.unused_memory_bytes_resident());
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            // The pages the probe wrote stayed (reset in place); the grown page did not.
            assert!(
                (3 * 4096..=MEMORY_KEEP_RESIDENT).contains(&resident),
                "{resident}"
            );
        } else {
            assert_eq!(resident, 0);
        }
    }

    /// Waits (up to 5 s) for the ticker's `parked` flag to be `want`.
    fn ticker_parked(rt: &Runtime, want: bool) -> bool {
        for _ in 0..500 {
            if rt.ticker.parked.load(Ordering::SeqCst) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn the_ticker_parks_when_idle_and_a_call_wakes_it() {
        let rt = Runtime::new(Limits::default()).expect("runtime");
        assert!(ticker_parked(&rt, true), "an idle ticker parks");
        let call = InFlight::enter(&rt);
        assert!(ticker_parked(&rt, false), "a call wakes it");
        drop(call);
        assert!(ticker_parked(&rt, true), "and it parks again");
    }

    #[test]
    fn guest_text_is_bounded_and_escaped() {
        assert_eq!(guest_text("ok", 10), "ok");
        assert_eq!(
            guest_text("line\nforged\u{1b}[31m", 100),
            "line\\nforged\\u{1b}[31m"
        );
        assert_eq!(guest_text("ééé", 3), "é…");
        assert_eq!(
            guest_text(&"x".repeat(1 << 20), 512).len(),
            512 + '…'.len_utf8()
        );
    }

    #[test]
    fn the_host_caps_what_a_call_returns() {
        assert_eq!(capped(4, Ok("1234".into())), Ok("1234".into()));
        assert_eq!(
            capped(4, Ok("12345".into())),
            Err(Failure::OutputTooLarge { bytes: 5, limit: 4 })
        );
        assert_eq!(capped(4, Err(Failure::MemoryCap)), Err(Failure::MemoryCap));
    }
}
