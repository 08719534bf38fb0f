//! The bundled fixtures, for the integration tests.

#![allow(dead_code, reason = "each test uses what it needs")]
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "test helpers fail by panicking"
)]

use std::path::{Path, PathBuf};

#[cfg(all(feature = "verify", feature = "test-util"))]
pub mod deliveries;
pub mod ksuid;
pub mod mutate;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod strict;

/// The URL of a SQLite file of its own for this test process, `name`d, with
/// any left from an earlier run (and its WAL) removed.
pub fn sqlite_file(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("voyado-{name}-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    format!("sqlite://{}", path.display())
}

/// `tests/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture's bytes, by its path below `tests/fixtures`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `.json` fixtures directly in `tests/fixtures/{dir}` (`""` for the top), as
/// paths below `tests/fixtures`, in name order.
pub fn fixture_names(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().to_string_lossy().into_owned();
            let path = Path::new(dir).join(&name);
            name.ends_with(".json")
                .then(|| path.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

/// Every `.json` fixture, encrypted ones included.
pub fn all_fixture_names() -> Vec<String> {
    let mut names = fixture_names("");
    names.extend(fixture_names("encrypted"));
    names
}
