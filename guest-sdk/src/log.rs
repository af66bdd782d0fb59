//! Logging through the host (`weir:plugin/host.log`). The host tags each line with the
//! tenant and plugin name, rate-limits, and truncates to 1 KiB; a guest has no stdout.
//!
//! Outside Wasm (unit tests of plugin logic) the lines go to stderr instead.

pub use crate::bindings::weir::plugin::types::Level;

/// Writes one line to the host's log.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::weir::plugin::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

pub fn error(message: &str) {
    log(Level::Error, message);
}

pub fn warn(message: &str) {
    log(Level::Warn, message);
}

pub fn info(message: &str) {
    log(Level::Info, message);
}

pub fn debug(message: &str) {
    log(Level::Debug, message);
}

pub fn trace(message: &str) {
    log(Level::Trace, message);
}
