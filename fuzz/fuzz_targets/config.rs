//! The config file: any bytes as `weir.toml`, through the same parse (`toml` + serde with
//! `deny_unknown_fields`) and `Config::validate` the binary runs at startup and on SIGHUP.
//! A bad file must be an error that names what is wrong, never a panic or a hang.
//!
//! The config tree lives in the binary crate (`host/weir/src/config.rs`), which has no
//! library target; it is compiled into this target as a module. Its dependencies are the
//! crates whose config sections and checks it uses (packager, origin, ingest, plugin-host
//! without its runtime) and the encoder, for the ladder's defaults.
#![no_main]

#[allow(dead_code, unused_imports, clippy::all)]
#[path = "../../host/weir/src/config.rs"]
mod config;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = toml::from_str::<config::Config>(text) else {
        return;
    };
    if config.validate().is_ok() {
        // What the binary derives from a valid file must not panic either.
        let _ = config.allow_any_key();
        let _ = config.server.origin_limits();
        let _ = config.packager.settings();
        let per_ip = config.ingest.max_connections_per_ip;
        let _ = config.rtmp.settings(per_ip);
        let _ = config.srt.settings(&config.rtmp.app, per_ip);
        let _ = config.encoder.settings(
            &config.encoder.ladder,
            config.segment_target(),
            config.part_target(),
        );
    }
});
