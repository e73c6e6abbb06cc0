//! `GET /v1/runs` and `/v1/stats` query strings: parsing and the statements built from them
//! (see `agenttracer::fuzzing::query_params`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agenttracer::fuzzing::query_params(data));
