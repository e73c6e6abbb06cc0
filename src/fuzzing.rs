//! What the fuzz targets (`fuzz/`, run by `scripts/fuzz.sh`) check, kept in the library so that
//! every input they ever found lands as a regression test (`fuzz/regressions/`, replayed by
//! this module's tests on stable Rust). Each function takes arbitrary bytes, decodes them as
//! the service does and panics when a property breaks; a panic is a finding.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::Value;

use crate::ingest::otlp::map::{Mapped, map_request};
use crate::model::input::{RawRun, Rules, Shape, json_size, parse_run};
use crate::model::privacy::{PrivacyMode, Scan};

/// Small limits, so that arbitrary inputs reach them.
fn rules(privacy: PrivacyMode) -> Rules {
    Rules {
        max_steps: 64,
        max_metadata_depth: 6,
        max_metadata_bytes: 2048,
        max_string_chars: 512,
        privacy,
    }
}

const MODES: [PrivacyMode; 4] = [
    PrivacyMode::Compat,
    PrivacyMode::Reject,
    PrivacyMode::Redact,
    PrivacyMode::Off,
];

fn no_nul(s: &str, what: &str) {
    assert!(!s.contains('\0'), "NUL in {what}");
}

/// A run's agent as it would be stored: no NUL, and each part within its length.
fn check_agent(agent_id: &str, agent_version: &str, environment: &str) {
    for (text, what, max) in [
        (agent_id, "agent_id", 255),
        (agent_version, "agent_version", 100),
        (environment, "environment", 50),
    ] {
        no_nul(text, what);
        assert!(text.chars().count() <= max, "{what} too long");
    }
}

/// A run's session and user ids as they would be stored: absent, or 1 to 255 characters
/// without NUL or control characters.
fn check_ids(session_id: Option<&str>, user_id: Option<&str>) {
    for (text, what) in [(session_id, "session_id"), (user_id, "user_id")] {
        if let Some(text) = text {
            no_nul(text, what);
            assert!((1..=255).contains(&text.chars().count()), "{what} length");
            assert!(!text.chars().any(char::is_control), "control in {what}");
        }
    }
}

fn metadata_within(meta: &Value, rules: &Rules) {
    assert!(meta.is_object(), "metadata is not an object");
    let shape = Shape::of(meta);
    assert!(!shape.nul, "NUL in metadata");
    assert!(shape.depth <= rules.max_metadata_depth, "metadata too deep");
    assert!(
        json_size(meta) <= rules.max_metadata_bytes,
        "metadata too large"
    );
}

/// `POST /v1/runs`: JSON decoding, then validation under each privacy mode. A valid run is one
/// PostgreSQL can store and the contract allows; an invalid one has errors located in the body.
pub fn run_body(data: &[u8]) {
    // As the service decodes it, and as a `Value`: the same text decodes both ways or neither,
    // and validates alike (src/model/input/raw.rs).
    let (raw, value) = (
        serde_json::from_slice::<RawRun>(data),
        serde_json::from_slice::<Value>(data),
    );
    let (raw, value) = match (raw, value) {
        (Ok(raw), Ok(value)) => (raw, value),
        (Err(a), Err(b)) => return assert_eq!(a.to_string(), b.to_string()),
        (raw, value) => panic!("decoded one way only: {raw:?} / {value:?}"),
    };
    for mode in MODES {
        let rules = rules(mode);
        let outcome = parse_run(raw.clone(), vec![Value::from("body")], &rules);
        let as_value = parse_run(value.clone(), vec![Value::from("body")], &rules);
        assert_eq!(
            without_new_ids(&outcome, data),
            without_new_ids(&as_value, data),
            "decoded as sent and as a Value, the run validates differently"
        );
        match outcome {
            Err(errors) => {
                assert!(!errors.is_empty(), "rejected without a reason");
                for e in &errors {
                    assert_eq!(e.loc.first(), Some(&Value::from("body")), "{e:?}");
                }
                let _ = serde_json::to_vec(&errors).expect("errors serialize");
            }
            Ok(parsed) => {
                let run = parsed.run;
                check_agent(&run.agent_id, &run.agent_version, &run.environment);
                check_ids(run.session_id.as_deref(), run.user_id.as_deref());
                assert!(run.steps.len() <= rules.max_steps);
                assert!(run.ended_at.is_none_or(|end| end >= run.started_at));
                for (i, step) in run.steps.iter().enumerate() {
                    assert_eq!(step.seq as usize, i, "seq is not 0..n-1");
                    no_nul(&step.name, "step name");
                    assert!((1..=255).contains(&step.name.chars().count()));
                    assert!(step.latency_ms >= 0 && step.ended_at >= step.started_at);
                    metadata_within(&step.metadata, &rules);
                    if mode == PrivacyMode::Reject {
                        let mut again = step.metadata.clone();
                        let mut scan = Scan::default();
                        scan.metadata(&mut again, PrivacyMode::Reject, &mut Vec::new());
                        assert!(scan.violations.is_empty(), "stored metadata breaks privacy");
                    }
                }
                let step_ids: Vec<_> = run.steps.iter().map(|s| s.step_id).collect();
                for f in &run.failures {
                    no_nul(&f.failure_code, "failure_code");
                    no_nul(&f.message, "message");
                    assert!(f.message.chars().count() <= rules.max_string_chars);
                    assert!(f.step_id.is_none_or(|id| step_ids.contains(&id)));
                }
            }
        }
    }
}

/// An outcome as text, each id the validator made up (none in `data`) blanked: two validations
/// of one body make up different ones.
fn without_new_ids(
    outcome: &Result<crate::model::input::Parsed, Vec<crate::model::FieldError>>,
    data: &[u8],
) -> String {
    let text = format!("{outcome:?}");
    let sent = String::from_utf8_lossy(data).to_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    // Ids print as hyphenated lowercase: 36 characters.
    while let Some(at) = rest.find(|c: char| c.is_ascii_hexdigit()) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match rest.get(..36).map(uuid::Uuid::try_parse) {
            Some(Ok(id)) if !sent.contains(&id.to_string()) => {
                out.push_str("(new id)");
                rest = &rest[36..];
            }
            _ => {
                let len = rest.chars().next().map_or(1, char::len_utf8);
                out.push_str(&rest[..len]);
                rest = &rest[len..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `POST /v1/traces`: protobuf and JSON decoding, then the mapping (docs/api.md, OpenTelemetry).
/// Every string that reaches the database is NUL-free and within its column, metadata within its
/// limits, and no span is counted twice.
pub fn otlp_body(data: &[u8]) {
    let decoded = [
        ExportTraceServiceRequest::decode(data).ok(),
        serde_json::from_slice::<ExportTraceServiceRequest>(data).ok(),
    ];
    let estimates = [
        Some(crate::ingest::otlp::wire::estimate_protobuf(data)),
        crate::ingest::otlp::wire::estimate_json(data),
    ];
    for (request, estimate) in decoded.into_iter().zip(estimates) {
        let Some(request) = request else { continue };
        // What decodes was walked, and its estimate covers at least its spans and attributes.
        let estimate = estimate.unwrap_or_else(|| panic!("decoded, but not estimated"));
        estimate_covers(&request, estimate);
        let spans = crate::ingest::otlp::span_count(&request);
        for mode in MODES {
            let rules = rules(mode);
            let mapped = map_request(&request, &rules);
            check_mapped(&mapped, spans, &rules);
        }
    }
}

/// The decoded-size estimate is at least what the request's spans and attributes take.
fn estimate_covers(request: &ExportTraceServiceRequest, estimate: usize) {
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use std::mem::size_of;
    let spans = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans);
    let (mut n_spans, mut n_attributes) = (0, 0);
    for span in spans {
        n_spans += 1;
        n_attributes += span.attributes.len()
            + span
                .events
                .iter()
                .map(|e| e.attributes.len())
                .sum::<usize>()
            + span.links.iter().map(|l| l.attributes.len()).sum::<usize>();
    }
    let floor = n_spans * size_of::<Span>() + n_attributes * size_of::<KeyValue>();
    assert!(estimate >= floor, "estimate {estimate} < {floor}");
}

fn check_mapped(mapped: &Mapped, spans: usize, rules: &Rules) {
    assert!(mapped.spans() + mapped.rejected_spans.max(0) as usize <= spans);
    for trace in &mapped.traces {
        for root in trace.root.iter().chain([&trace.fallback]) {
            check_agent(&root.agent_id, &root.agent_version, &root.environment);
            check_ids(root.session_id.as_deref(), root.user_id.as_deref());
            if let Some(f) = &root.failure {
                no_nul(&f.code, "failure code");
                no_nul(&f.message, "failure message");
                assert!(f.code.chars().count() <= 100);
                assert!(f.message.chars().count() <= rules.max_string_chars);
            }
        }
        for step in &trace.steps {
            no_nul(&step.name, "step name");
            assert!(
                (1..=255).contains(&step.name.chars().count()),
                "step name length"
            );
            assert!(step.latency_ms >= 0 && step.ended_at >= step.started_at);
            assert!(
                step.model
                    .as_ref()
                    .is_none_or(|m| !m.contains('\0') && m.chars().count() <= 255)
            );
            metadata_within(&step.metadata, rules);
            if let Some(f) = &step.failure {
                no_nul(&f.message, "failure message");
                assert!(f.message.chars().count() <= rules.max_string_chars);
                assert!(f.code.chars().count() <= 100);
            }
        }
    }
}

/// Query strings of `GET /v1/runs` and `/v1/stats` (and the stream's filters): parsing, then
/// the statements built from what parsed. A bad parameter is an error naming it; a good filter
/// gives SQL whose placeholders are exactly its binds, and a stats plan without overflow.
pub fn query_params(data: &[u8]) {
    use crate::error::ApiError;
    use crate::query::{filters, runs, stats};
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let pairs = filters::pairs(query);
    let named = |err: &ApiError| match err {
        ApiError::Validation(errors) => {
            assert!(!errors.is_empty(), "rejected without a reason");
            for e in errors {
                assert_eq!(e.loc.first(), Some(&Value::from("query")), "{e:?}");
                let name = e
                    .loc
                    .get(1)
                    .and_then(Value::as_str)
                    .expect("a parameter name");
                assert!(!name.is_empty());
            }
        }
        other => panic!("a query parameter error that is not a 422: {other:?}"),
    };
    let placeholders = |sql: &str| {
        let mut max = 0;
        let bytes = sql.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'$' {
                let digits: String = sql[i + 1..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(n) = digits.parse::<usize>() {
                    max = max.max(n);
                }
            }
        }
        max
    };
    match filters::parse_list(&pairs) {
        Ok((filter, paging)) => {
            assert!((1..=100).contains(&paging.page_size));
            let (sql, binds) = runs::list_sql(&filter, &paging);
            assert_eq!(placeholders(&sql), binds.len(), "{sql}");
        }
        Err(err) => named(&err),
    }
    match filters::parse_filter(&pairs, false) {
        Ok(filter) => {
            let (sql, binds) = stats::stats_sql(&filter);
            assert_eq!(placeholders(&sql), binds.len(), "{sql}");
        }
        Err(err) => named(&err),
    }
}

/// The OTLP/gRPC export path after the key check: a gRPC message frame (compressed flag and
/// length, then the message, gzip when flagged), inflated within the message limit as tonic
/// does, decoded and mapped. Before the frame, a length-prefixed key header, whose check must
/// answer without a panic and only ever accept the configured key.
pub fn grpc_export(data: &[u8]) {
    use std::io::Read;
    const LIMIT: usize = 64 * 1024;
    // [n][n bytes of a key header][the frame]
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (header, data) = rest.split_at((n as usize).min(rest.len()));
    {
        let value = String::from_utf8_lossy(header);
        const KEY: &str = "the-one-key-0123456789";
        let keys = crate::config::SecretList::new(vec![KEY.to_owned()]);
        for name in ["x-api-key", "authorization"] {
            if let Ok(v) = value.parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>() {
                let mut request = tonic::Request::new(());
                request.metadata_mut().insert(name, v);
                let accepted = crate::ingest::otlp::grpc::check_key(&keys, &request).is_ok();
                let presented = value.trim();
                let bearer = presented
                    .split_once(' ')
                    .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
                    .map(|(_, t)| t.trim());
                let is_key = match name {
                    "x-api-key" => presented == KEY,
                    _ => bearer == Some(KEY),
                };
                assert_eq!(accepted, is_key, "{name}: {value:?}");
            }
        }
    }
    if data.len() < 5 {
        return;
    }
    let (compressed, len) = (
        data[0],
        u32::from_be_bytes([data[1], data[2], data[3], data[4]]),
    );
    let body = &data[5..];
    if len as usize > LIMIT || body.len() < len as usize {
        return; // tonic refuses a frame over the limit, and waits for the rest of a short one
    }
    let body = &body[..len as usize];
    let message = match compressed {
        0 => body.to_vec(),
        1 => {
            let mut out = Vec::new();
            let read = flate2::read::GzDecoder::new(body)
                .take(LIMIT as u64 + 1)
                .read_to_end(&mut out);
            match read {
                Ok(n) if n <= LIMIT => out,
                _ => return,
            }
        }
        _ => return,
    };
    let estimate = crate::ingest::otlp::wire::estimate_protobuf(&message);
    let Ok(request) = ExportTraceServiceRequest::decode(message.as_slice()) else {
        return;
    };
    estimate_covers(&request, estimate);
    let spans = crate::ingest::otlp::span_count(&request);
    for mode in MODES {
        let rules = rules(mode);
        check_mapped(&map_request(&request, &rules), spans, &rules);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Replays the seed corpora and every input a fuzzer ever found (`fuzz/regressions/<target>/`).
    fn replay(target: &str, check: fn(&[u8])) -> usize {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut n = 0;
        for dir in ["seeds", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            for entry in entries.flatten() {
                let data = std::fs::read(entry.path()).expect("readable input");
                check(&data);
                n += 1;
            }
        }
        n
    }

    #[test]
    fn every_target_replays_its_corpus_and_regressions() {
        type Check = fn(&[u8]);
        let targets: [(&str, Check); 4] = [
            ("query_params", super::query_params),
            ("grpc_export", super::grpc_export),
            ("run_body", super::run_body),
            ("otlp_body", super::otlp_body),
        ];
        for (target, check) in targets {
            assert!(replay(target, check) > 0, "{target} has no inputs");
        }
    }

    /// Choices for a decision's or signal's fields, as JSON text: valid, null, of the wrong
    /// type, out of bounds, with a control character, a credential, an escape.
    const VALUES: &[&str] = &[
        r#""tool_selection""#,
        r#""fresh_data_required""#,
        r#""schema_valid""#,
        r#""full_match""#,
        r#""search_orders""#,
        r#""sk-aaaaaaaaaaaaaaaaaaaaaaaaaa""#,
        r#""a\u0007b""#,
        r#""se\u0061rch""#,
        r#""""#,
        "null",
        "true",
        "0",
        "1",
        "0.5",
        "1.5",
        "-1",
        r#""0.25""#,
        r#""yes""#,
        "1e400",
        r#"["a", "b"]"#,
        r#"["a", 1]"#,
        r#"{"budget_ms": 800}"#,
        r#"{"prompt": "x"}"#,
        r#"{"nested": {"a": 1}}"#,
        r#"{"k": "sk-aaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
        r#""11111111-1111-4111-8111-111111111111""#,
        r#""22222222-2222-4222-8222-222222222222""#,
        r#""not-a-uuid""#,
    ];

    /// Keys an item may carry: the known ones, spelled plainly or escaped, and unknown ones.
    const KEYS: &[&str] = &[
        "decision_id",
        "step_id",
        "decision_type",
        "selected",
        "reason_code",
        "candidates",
        "confidence",
        "metadata",
        "signal_id",
        "signal_type",
        "signal_code",
        "value",
        "weight",
        r"decision\u005ftype",
        "extra",
        "$serde",
    ];

    /// A small deterministic generator (no crate needed for this).
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) % n as u64) as usize
        }
    }

    fn item(rng: &mut Lcg, valid: &str) -> String {
        match rng.below(8) {
            0 => VALUES[rng.below(VALUES.len())].to_owned(),
            1..=3 => valid.to_owned(),
            _ => {
                // A valid item with fields changed, added, repeated or left out.
                let mut fields: Vec<String> = valid
                    .trim_matches(|c| c == '{' || c == '}')
                    .split(", ")
                    .filter(|_| rng.below(6) != 0)
                    .map(str::to_owned)
                    .collect();
                for _ in 0..rng.below(4) {
                    let key = KEYS[rng.below(KEYS.len())];
                    let value = VALUES[rng.below(VALUES.len())];
                    fields.insert(rng.below(fields.len() + 1), format!(r#""{key}": {value}"#));
                }
                format!("{{{}}}", fields.join(", "))
            }
        }
    }

    fn list(rng: &mut Lcg, valid: &str) -> String {
        match rng.below(10) {
            0 => VALUES[rng.below(VALUES.len())].to_owned(),
            _ => {
                let items: Vec<String> = (0..rng.below(4)).map(|_| item(rng, valid)).collect();
                format!("[{}]", items.join(", "))
            }
        }
    }

    /// Runs with decisions and signals of every shape validate alike decoded as sent
    /// (`model::input::RawRun`, their items into slots) and decoded as a `Value` ([`run_body`]
    /// panics when they do not), in every privacy mode.
    #[test]
    fn items_validate_alike_decoded_into_slots_or_as_values() {
        let decision = r#"{"decision_type": "tool_selection", "selected": "search_orders", "reason_code": "fresh_data_required", "candidates": ["search_orders","cache"], "confidence": 0.82, "step_id": "11111111-1111-4111-8111-111111111111", "metadata": {"budget_ms": 800}}"#;
        let signal = r#"{"signal_type": "schema_valid", "signal_code": "full_match", "value": true, "weight": 0.9, "step_id": "11111111-1111-4111-8111-111111111111", "metadata": {"tokens": 1840}}"#;
        let mut rng = Lcg(17);
        let mut stored_with_items = 0;
        for _ in 0..2000 {
            let mut fields = vec![
                r#""agent_id": "a", "agent_version": "1", "status": "success""#.to_owned(),
                r#""started_at": "2024-01-01T00:00:00Z""#.to_owned(),
                r#""steps": [{"step_id": "11111111-1111-4111-8111-111111111111", "seq": 0, "step_type": "llm", "name": "s", "latency_ms": 1, "started_at": "2024-01-01T00:00:00Z", "ended_at": "2024-01-01T00:00:01Z"}]"#.to_owned(),
            ];
            for _ in 0..rng.below(4) {
                let (key, valid) = match rng.below(2) {
                    0 => ("decisions", decision),
                    _ => ("quality_signals", signal),
                };
                fields.push(format!(r#""{key}": {}"#, list(&mut rng, valid)));
            }
            let body = format!("{{{}}}", fields.join(", "));
            super::run_body(body.as_bytes());
            let rules = crate::model::input::Rules {
                max_steps: 10,
                max_metadata_depth: 4,
                max_metadata_bytes: 1000,
                max_string_chars: 500,
                privacy: crate::model::privacy::PrivacyMode::Reject,
            };
            // (Some bodies are no JSON: a number out of range.)
            let raw = serde_json::from_str::<crate::model::input::RawRun>(&body);
            if let Ok(Ok(p)) = raw.map(|raw| crate::model::input::parse_run(raw, vec![], &rules)) {
                stored_with_items +=
                    usize::from(!p.run.decisions.is_empty() || !p.run.quality_signals.is_empty());
            }
        }
        // The generator reaches valid items as well as every kind of refusal.
        assert!(
            stored_with_items > 100,
            "{stored_with_items} valid runs with items"
        );
    }
}
