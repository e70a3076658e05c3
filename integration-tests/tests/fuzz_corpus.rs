//! The corpus of every `cargo fuzz` target (`fuzz/corpus/<target>/`), replayed as ordinary
//! tests: each file the fuzzer kept (or someone pinned) is checked against its target's
//! property on every run.

fn replay(target: &str, property: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(files.len() >= 5, "the corpus at {} holds {} files", dir.display(), files.len());
    for file in &files {
        property(&std::fs::read(file).unwrap());
    }
    println!("{target}: {} corpus files replayed", files.len());
}

#[test]
fn the_page_tokens_corpus_replays_clean() {
    replay("page_tokens", fastbreak_mesh::paging::fuzz_page_tokens);
}

#[test]
fn the_chain_events_corpus_replays_clean() {
    replay("chain_events", fastbreak_flow::topshot::fuzz_chain_events);
}
