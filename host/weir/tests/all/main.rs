//! weir's integration tests: checks on the workspace as a whole that belong to no one crate.
//! (The end-to-end tests, which run this binary, are the weir-e2e crate in `tests/`.)

mod crate_edges;
