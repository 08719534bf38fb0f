//! Structure-aware: valid fixtures mutated in their field names, casings, number
//! and timestamp forms, nesting and order (`tests/common/mutate.rs`, shared with
//! `tests/robustness.rs`). Never a panic; a mutation that keeps the meaning
//! parses to the same event; every parsed event round-trips.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/mutate.rs"]
mod mutate;

fn fixtures() -> &'static [String] {
    static FIXTURES: OnceLock<Vec<String>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let mut paths: Vec<_> = ["", "encrypted"]
            .iter()
            .flat_map(|dir| std::fs::read_dir(root.join(dir)).unwrap())
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths.iter().map(|path| std::fs::read_to_string(path).unwrap()).collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, choices)) = data.split_first() else {
        return;
    };
    let fixtures = fixtures();
    let fixture = &fixtures[usize::from(pick) % fixtures.len()];
    if let Some(mutated) = mutate::mutate(fixture, choices) {
        mutate::check(&mutated);
    }
});
