//! `POST /v1/runs` bodies: JSON decoding and validation (see `agenttracer::fuzzing::run_body`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agenttracer::fuzzing::run_body(data));
