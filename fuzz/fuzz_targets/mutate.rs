//! Structure-aware: valid fixtures mutated in their field names, casings, number
//! and timestamp forms, nesting and order (`tests/common/mutate.rs`, shared with
//! `tests/robustness.rs`). Never a panic; a mutation that keeps the meaning
//! parses to the same event as the fixture it came from; every parsed event
//! round-trips, and what it kept serde_json reads again.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/mutate.rs"]
mod mutate;

fn fixtures() -> &'static [mutate::Fixture] {
    static FIXTURES: OnceLock<Vec<mutate::Fixture>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let mut paths: Vec<_> = ["", "encrypted"]
            .iter()
            .flat_map(|dir| std::fs::read_dir(root.join(dir)).unwrap())
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        let read = |path| mutate::Fixture::new(&std::fs::read_to_string(path).unwrap()).unwrap();
        paths.iter().map(read).collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, choices)) = data.split_first() else {
        return;
    };
    let fixtures = fixtures();
    let fixture = &fixtures[usize::from(pick) % fixtures.len()];
    mutate::check(&fixture.mutate(choices));
});
