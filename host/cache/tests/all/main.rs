//! weir-cache integration tests, one module per area.

mod eviction;
mod fill;
