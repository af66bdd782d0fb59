//! weir-origin integration tests, one module per area.
#![allow(clippy::unwrap_used)] // tests assert by unwrapping

mod api;
mod blocking;
mod limits;
mod query;
mod server;
mod streaming;
mod support;
mod tls;
mod window;
