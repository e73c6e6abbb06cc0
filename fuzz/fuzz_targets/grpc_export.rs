//! OTLP/gRPC exports: the key check, the message frame, gzip, decoding and mapping (see
//! `agenttracer::fuzzing::grpc_export`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agenttracer::fuzzing::grpc_export(data));
