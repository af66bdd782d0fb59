//! weir-origin integration tests, one module per area.
#![allow(clippy::unwrap_used)] // tests assert by unwrapping
#![allow(clippy::disallowed_methods)] // tests and benches drive real peers on the real clock

mod api;
mod blocking;
mod limits;
mod query;
mod ranges;
mod server;
mod signed;
mod streaming;
mod support;
mod tls;
mod window;
