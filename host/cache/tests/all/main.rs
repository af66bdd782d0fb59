//! weir-cache integration tests, one module per area.
#![allow(clippy::unwrap_used)] // tests assert by unwrapping

mod eviction;
mod fill;
