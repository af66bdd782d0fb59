//! Issue 12 hardening e2e tests: hardening_load (being written).
