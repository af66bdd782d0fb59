//! What one plugin call costs: a fresh store, instantiation, the `init` re-run and
//! `transform-media-playlist` on a ~4 KB live playlist, for the Rust scte35 plugin (target:
//! p99 < 100 µs). For scale it also times the same work with the plugin host taken out: the
//! playlist copied in and out as strings, which is what a call could cost at best.
//!
//!   scripts/build-plugins.sh && cargo bench -p weir-plugin-host --bench plugin_call
//!
//! Prints one JSON line. Iterations: `PLUGIN_CALL_ITERS` (default 20000).

#![allow(clippy::disallowed_methods)] // tests and benches drive real peers on the real clock

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_plugin_host::{CueEvent, CueKind, Limits, Runtime};

fn main() {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/dist");
    let name = std::env::var("PLUGIN").unwrap_or_else(|_| "scte35".to_owned());
    let bytes = std::fs::read(dist.join(format!("{name}.wasm")))
        .expect("plugins/dist/<plugin>.wasm: run scripts/build-plugins.sh first");
    let iters: usize = std::env::var("PLUGIN_CALL_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rt = Runtime::new(Limits {
        call_timeout: Duration::from_millis(100),
        ..Limits::default()
    })
    .expect("engine");
    let started = Instant::now();
    let compiled = rt.compile(&bytes).expect("compile");
    let compile = started.elapsed();
    let who: (Arc<str>, Arc<str>) = ("bench".into(), name.as_str().into());
    let config = "";
    rt.init(&compiled, (&who.0, &who.1), config).expect("init");

    let playlist = playlist_4k();
    let t0 = 1_795_633_200_000u64;
    let cues = vec![CueEvent {
        id: 7,
        kind: CueKind::SpliceInsert,
        out_of_network: true,
        start_ms: t0 + 4_000,
        duration_ms: Some(30_000),
        end_ms: None,
        segmentation_type: None,
        section: vec![0xfc, 0x30, 0x11],
    }];
    let ctx = weir_plugin_host::RequestContext {
        tenant: "bench".into(),
        stream: "demo".into(),
        rendition: "src".into(),
        country: None,
        headers: vec![],
        query: vec![],
        now_ms: t0,
    };
    let mut out_len = 0;
    let mut samples = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let out = rt
            .transform_media(&compiled, (&who.0, &who.1), config, &ctx, &cues, &playlist)
            .expect("transform");
        samples.push(t.elapsed());
        out_len = out.len();
    }
    // The floor: copying the playlist in and out, no Wasm at all.
    let mut floor = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let copy = std::hint::black_box(playlist.clone());
        let out = std::hint::black_box(copy.replace(
            "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T19:00:04",
            "#EXT-X-DATERANGE:ID=\"x\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T19:00:04",
        ));
        std::hint::black_box(out);
        floor.push(t.elapsed());
    }
    let q = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e6
    };
    let (p50, p99) = (q(&mut samples, 0.5), q(&mut samples, 0.99));
    let (f50, f99) = (q(&mut floor, 0.5), q(&mut floor, 0.99));
    println!(
        "{{\"plugin\":\"{name}\",\"playlist_bytes\":{},\"output_bytes\":{out_len},\"iters\":{iters},\"compile_ms\":{:.1},\"call_p50_us\":{p50:.1},\"call_p99_us\":{p99:.1},\"copy_p50_us\":{f50:.2},\"copy_p99_us\":{f99:.2},\"target_p99_us\":100}}",
        playlist.len(),
        compile.as_secs_f64() * 1e3
    );
}

/// A live playlist of about 4 KB: 2 s segments with PDT, the last one's parts, a hint.
fn playlist_4k() -> String {
    let mut s = String::from(
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500,CAN-SKIP-UNTIL=12.000\n\
         #EXT-X-PART-INF:PART-TARGET=0.50000\n#EXT-X-MEDIA-SEQUENCE:1795635200\n\
         #EXT-X-MAP:URI=\"init0.mp4\"\n",
    );
    let mut seg = 0u64;
    while s.len() < 3_700 {
        s.push_str(&format!(
            "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T19:00:{:02}.000Z\n#EXTINF:2.00000,\nseg{}.m4s\n",
            (seg * 2) % 60,
            1_795_635_200u64 + seg
        ));
        seg += 1;
    }
    for p in 0..3 {
        s.push_str(&format!(
            "#EXT-X-PART:DURATION=0.50000,URI=\"part{}.m4s\"{}\n",
            7_182_540_800u64 + p,
            if p == 0 { ",INDEPENDENT=YES" } else { "" }
        ));
    }
    s.push_str("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part7182540803.m4s\"\n");
    s
}
