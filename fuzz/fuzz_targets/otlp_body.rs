//! `POST /v1/traces` bodies: OTLP protobuf and JSON decoding and the mapping to runs and steps
//! (see `agenttracer::fuzzing::otlp_body`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agenttracer::fuzzing::otlp_body(data));
