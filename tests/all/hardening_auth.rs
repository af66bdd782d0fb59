//! Issue 12 hardening e2e tests: hardening_auth (being written).
