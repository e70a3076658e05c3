//! Top Shot's events as an access node sends them, JSON-CDC (see
//! `fastbreak_flow::topshot::fuzz_chain_events`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fastbreak_flow::topshot::fuzz_chain_events(data));
