//! The plugin host against real components: the plugins in `plugins/` built by
//! `scripts/build-plugins.sh` into `plugins/dist/`.

#![allow(clippy::disallowed_methods)]
// tests and benches drive real peers on the real clock

// Test support: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

mod containment;
mod faults;
mod languages;
mod reload;
