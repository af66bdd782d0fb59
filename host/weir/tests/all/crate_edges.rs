//! The dependency rules between Weir's crates (ARCHITECTURE.md's invariants), checked on
//! `cargo metadata` instead of only written down.
//!
//! Every kind of dependency is an edge: normal, build and dev. A dev-dependency is not in the
//! shipped library, but it still compiles the other stage into the crate's tests, lets those
//! tests lean on the other stage's internals, and, towards a crate that depends back on this
//! one, builds this crate twice with types that do not match. A rule that holds only outside
//! tests says little about where the crate's knowledge ends. (weir-encoder's dev-dependency
//! on weir-ingest, to read a real FLV capture, breaks no rule.)

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

/// `(crate, crates it must never depend on, why)`. A forbidden crate that does not exist
/// (weir-stream, before it lands) is simply never matched.
const FORBIDDEN: &[(&str, &[&str], &str)] = &[
    (
        "weir-origin",
        &[
            "weir-ingest",
            "weir-packager",
            "weir-encoder",
            "weir-stream",
        ],
        "the origin treats media as opaque bytes plus typed metadata",
    ),
    (
        "weir-cache",
        &[
            "weir-ingest",
            "weir-packager",
            "weir-encoder",
            "weir-stream",
        ],
        "the cache treats media as opaque bytes plus typed metadata",
    ),
    (
        "weir-packager",
        &["weir-origin"],
        "the packager is pure: it knows nothing of HTTP",
    ),
    (
        "weir-plugin-host",
        &["weir-encoder", "weir-ingest"],
        "plugins see playlists, never media or publishers",
    ),
    (
        "weir-ingest",
        &["weir-encoder"],
        "the encoder consumes ingest's output, never the other way",
    ),
];

/// Crates that depend on no workspace crate at all.
const LEAVES: &[(&str, &str)] = &[(
    "weir-media",
    "weir-media is the shared vocabulary every stage speaks",
)];

/// Every forbidden edge in `cargo metadata` output, as `from -> to (kind): why`.
fn violations(metadata: &Value) -> Vec<String> {
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let members: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut found = Vec::new();
    for package in &packages {
        let from = package["name"].as_str().unwrap_or_default();
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            // `name` is the package's name even when the dependency is renamed; a
            // workspace crate is a path dependency (no registry source).
            let to = dep["name"].as_str().unwrap_or_default();
            if !members.contains(to) || !dep["source"].is_null() {
                continue;
            }
            let kind = dep["kind"].as_str().unwrap_or("normal");
            let rules = FORBIDDEN
                .iter()
                .filter(|(crate_, banned, _)| *crate_ == from && banned.contains(&to))
                .map(|(_, _, why)| *why);
            let leaves = LEAVES
                .iter()
                .filter(|(crate_, _)| *crate_ == from)
                .map(|(_, why)| *why);
            for why in rules.chain(leaves) {
                found.push(format!("{from} -> {to} ({kind} dependency): {why}"));
            }
        }
    }
    found
}

fn workspace_metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("running {cargo} metadata: {e}"));
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

#[test]
fn no_forbidden_edge_between_workspace_crates() {
    let metadata = workspace_metadata();
    let names: BTreeSet<&str> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    // A renamed or removed crate would make its rules match nothing, silently.
    for (crate_, _, _) in FORBIDDEN {
        assert!(names.contains(crate_), "{crate_} is not in the workspace");
    }
    for (crate_, _) in LEAVES {
        assert!(names.contains(crate_), "{crate_} is not in the workspace");
    }
    let found = violations(&metadata);
    assert!(
        found.is_empty(),
        "forbidden dependencies between workspace crates:\n  {}",
        found.join("\n  ")
    );
}

/// A dependency as `cargo metadata` spells it: `kind` is null for a normal one, `source` null
/// for a path dependency.
fn dep(name: &str, kind: Option<&str>, registry: bool, rename: Option<&str>) -> Value {
    let source = registry.then_some("registry+https://github.com/rust-lang/crates.io-index");
    serde_json::json!({ "name": name, "kind": kind, "source": source, "rename": rename })
}

fn package(name: &str, dependencies: Vec<Value>) -> Value {
    serde_json::json!({ "name": name, "dependencies": dependencies })
}

/// The checker itself, on metadata that breaks the rules in each way cargo can spell it.
#[test]
fn the_checker_finds_dev_build_and_renamed_edges_and_ignores_registry_namesakes() {
    let metadata = serde_json::json!({ "packages": [
        package(
            "weir-media",
            vec![
                dep("bytes", None, true, None),
                dep("weir-cache", Some("build"), false, None),
            ],
        ),
        package(
            "weir-cache",
            vec![
                dep("weir-media", None, false, None),
                dep("weir-stream", Some("dev"), false, Some("stream")),
            ],
        ),
        // A crates.io crate that shares a member's name is not an edge.
        package("weir-ingest", vec![dep("weir-encoder", None, true, None)]),
        package("weir-encoder", vec![]),
        package("weir-stream", vec![dep("weir-ingest", None, false, None)]),
    ]});
    assert_eq!(
        violations(&metadata),
        [
            "weir-media -> weir-cache (build dependency): \
             weir-media is the shared vocabulary every stage speaks",
            "weir-cache -> weir-stream (dev dependency): \
             the cache treats media as opaque bytes plus typed metadata",
        ]
    );
}
