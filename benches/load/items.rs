//! The decisions and quality signals an instrumented agent reports on a run: what the load bench
//! adds to every run of its "with" side, and `benches/ingest.rs` to its body with items
//! (issue 17's comparison; `benches/tools/ab_cpu.py` keeps a Python copy).

use serde_json::{Value, json};

/// What [`add_behaviour`] adds to a run, as the table names it.
pub const BEHAVIOUR: &str = "3 decisions, 3 signals";

/// Adds to a run body the decisions and quality signals an instrumented agent reports
/// (docs/behaviour.md): three of each, with candidates, confidences and flat metadata.
pub fn add_behaviour(body: &mut Value) {
    body["decisions"] = json!([
        {"decision_type": "tool_selection", "selected": "search_orders", "reason_code": "fresh_data_required",
         "candidates": ["search_orders", "order_cache"], "confidence": 0.82, "metadata": {"budget_ms": 800}},
        {"decision_type": "retrieval_strategy", "selected": "hybrid", "reason_code": "hybrid_approach_needed",
         "confidence": 0.7},
        {"decision_type": "response_mode", "selected": "streaming", "reason_code": "streaming_requested"}
    ]);
    body["quality_signals"] = json!([
        {"signal_type": "schema_valid", "signal_code": "full_match", "value": true, "weight": 0.9},
        {"signal_type": "tool_success", "signal_code": "first_attempt", "value": true},
        {"signal_type": "token_usage", "signal_code": "moderate_usage", "value": true,
         "metadata": {"tokens": 1840}}
    ]);
}
