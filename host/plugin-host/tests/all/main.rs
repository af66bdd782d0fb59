//! The plugin host against real components: the plugins in `plugins/` built by
//! `scripts/build-plugins.sh` into `plugins/dist/`.

mod support;

mod faults;
mod languages;
mod reload;
