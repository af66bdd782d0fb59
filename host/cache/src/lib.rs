//! Weir's object cache: moka behind a small trait, with a per-key fill lock.
