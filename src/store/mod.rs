//! The write side's statements: what the ingest routes store, set-based (docs/architecture.md,
//! docs/performance.md). Below `ingest`, above `db`.
//!
//! - [`spans`]: what the OTLP path takes, per trace; the ids derived from trace and span ids.

pub mod spans;
