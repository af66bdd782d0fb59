//! Issue 12 hardening e2e tests: hardening_srt (being written).
