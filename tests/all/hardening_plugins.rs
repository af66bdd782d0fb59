//! Issue 12 hardening e2e tests: hardening_plugins (being written).
