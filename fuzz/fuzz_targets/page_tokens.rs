//! Page tokens as clients send them back (see `fastbreak_mesh::paging::fuzz_page_tokens`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fastbreak_mesh::paging::fuzz_page_tokens(data));
