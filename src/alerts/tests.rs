//! The bodies against the original's, computed by its own formatting rules in Python for one
//! drift event (the JSON below is what `json.dumps(..., ensure_ascii=False,
//! separators=(",", ":"))` printed for it), byte for byte: fields, order and number formats.

use time::macros::datetime;
use uuid::uuid;

use super::body::{self, DriftEvent};

fn drift() -> DriftEvent {
    let delta = 0.46 - 0.65;
    DriftEvent {
        drift_id: uuid!("7d3f2a10-0000-4000-8000-000000000001"),
        baseline_id: uuid!("5b1e9c20-0000-4000-8000-000000000002"),
        agent_id: "support-bot".into(),
        agent_version: "1.4.2".into(),
        environment: "production".into(),
        drift_type: "decision".into(),
        metric: "tool_selection.search_api".into(),
        baseline_value: 0.65,
        observed_value: 0.46,
        delta,
        delta_percent: delta / 0.65 * 100.0,
        significance: 2.1e-36,
        test_method: "chi_square".into(),
        severity: "medium".into(),
        detected_at: datetime!(2026-12-01 10:15:30.25),
        observation_window_start: datetime!(2026-11-30 10:15),
        observation_window_end: datetime!(2026-12-01 10:15),
        observation_sample_size: 1200,
    }
}

fn compact(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| panic!("{e}"))
}

const SLACK: &str = r#"{"text":"⚠️ Behavioral Drift Detected","blocks":[{"type":"header","text":{"type":"plain_text","text":"⚠️ Behavioral Drift Detected"}},{"type":"section","fields":[{"type":"mrkdwn","text":"*Agent:*\nsupport-bot v1.4.2"},{"type":"mrkdwn","text":"*Environment:*\nproduction"},{"type":"mrkdwn","text":"*Metric:*\ntool_selection.search_api"},{"type":"mrkdwn","text":"*Severity:*\nmedium"}]},{"type":"section","text":{"type":"mrkdwn","text":"*Observed change:* 65.00% → 46.00% (-29.2%)\n*Statistical significance:* p=0.0000\n*Sample size:* 1200 runs"}},{"type":"context","elements":[{"type":"mrkdwn","text":"Detected at 2026-12-01 10:15:30 UTC"}]}]}"#;

/// The original's event, plus our `dedup_key` after `event_action`.
const PAGERDUTY: &str = r#"{"routing_key":"RK","event_action":"trigger","dedup_key":"7d3f2a10-0000-4000-8000-000000000001","payload":{"summary":"Behavioral drift detected: support-bot v1.4.2 - tool_selection.search_api","severity":"warning","source":"AgentTracer Drift Detection","custom_details":{"agent_id":"support-bot","agent_version":"1.4.2","environment":"production","metric":"tool_selection.search_api","baseline_value":0.65,"observed_value":0.46,"delta_percent":-29.230769230769234,"significance":2.1e-36,"baseline_id":"5b1e9c20-0000-4000-8000-000000000002","drift_id":"7d3f2a10-0000-4000-8000-000000000001"}}}"#;

const WEBHOOK: &str = r#"{"event":"drift_detected","drift_id":"7d3f2a10-0000-4000-8000-000000000001","baseline_id":"5b1e9c20-0000-4000-8000-000000000002","agent_id":"support-bot","agent_version":"1.4.2","environment":"production","drift_type":"decision","metric":"tool_selection.search_api","baseline_value":0.65,"observed_value":0.46,"delta":-0.19,"delta_percent":-29.230769230769234,"significance":2.1e-36,"test_method":"chi_square","severity":"medium","detected_at":"2026-12-01T10:15:30.250000","observation_window_start":"2026-11-30T10:15:00","observation_window_end":"2026-12-01T10:15:00","observation_sample_size":1200,"message":"Behavioral drift detected\n\nAgent: support-bot v1.4.2 (production)\nMetric: tool_selection.search_api\nChange: observed decrease from 65.00% to 46.00% (-29.2%)\nSeverity: medium\n\nBaseline: 5b1e9c20-0000-4000-8000-000000000002\nStatistical significance: p=0.0000\nTest method: chi_square\nDetected: 2026-12-01 10:15:30 UTC\n\nObservation window: 2026-11-30 10:15 to 2026-12-01 10:15 (1200 runs)\n"}"#;

#[test]
fn the_bodies_are_the_originals_byte_for_byte() {
    let d = drift();
    assert_eq!(compact(&body::slack(&d)), SLACK);
    assert_eq!(compact(&body::pagerduty(&d, "RK")), PAGERDUTY);
    assert_eq!(compact(&body::webhook(&d)), WEBHOOK);
    assert_eq!(
        d.log_line(),
        "DRIFT_DETECTED: support-bot v1.4.2 - tool_selection.search_api"
    );
}

#[test]
fn severity_signs_and_pagerduty_severities_follow_the_original() {
    for (severity, sign, pd) in [
        ("low", "\u{2139}\u{fe0f}", "info"),
        ("medium", "\u{26a0}\u{fe0f}", "warning"),
        ("high", "\u{1f514}", "error"),
    ] {
        let d = DriftEvent {
            severity: severity.into(),
            ..drift()
        };
        let slack = serde_json::to_value(body::slack(&d)).unwrap_or_default();
        assert_eq!(slack["text"], format!("{sign} Behavioral Drift Detected"));
        let event = serde_json::to_value(body::pagerduty(&d, "RK")).unwrap_or_default();
        assert_eq!(event["payload"]["severity"], pd);
    }
}

/// Python's formats on the cases where rounding or signs could differ (expected values printed
/// by CPython 3: `f"{x:.2%}"`, `f"{x:+.1f}"`, `f"{x:.4f}"`, `isoformat()`).
#[test]
fn numbers_and_times_print_as_python_prints_them() {
    let with = |baseline_value: f64, observed_value: f64, delta_percent: f64, significance| {
        let delta = observed_value - baseline_value;
        let d = DriftEvent {
            baseline_value,
            observed_value,
            delta,
            delta_percent,
            significance,
            ..drift()
        };
        let line = d.message().lines().nth(4).unwrap_or_default().to_owned();
        let p = d.message().lines().nth(8).unwrap_or_default().to_owned();
        (line, p)
    };
    let cases = [
        (
            0.125,
            0.00125,
            0.25,
            0.05,
            "12.50% to 0.12% (+0.2%)",
            "p=0.0500",
        ),
        (
            0.995,
            1.0,
            0.35,
            1e-10,
            "99.50% to 100.00% (+0.3%)",
            "p=0.0000",
        ),
        (
            0.02675,
            0.0,
            -0.05,
            0.35,
            "2.67% to 0.00% (-0.1%)",
            "p=0.3500",
        ),
        (
            0.1 + 0.2,
            0.33333,
            29.95,
            1.0,
            "30.00% to 33.33% (+29.9%)",
            "p=1.0000",
        ),
        (
            0.5,
            0.5,
            -0.0,
            -1e-10,
            "50.00% to 50.00% (-0.0%)",
            "p=-0.0000",
        ),
        (
            0.4,
            0.6,
            54.25,
            0.0,
            "40.00% to 60.00% (+54.2%)",
            "p=0.0000",
        ),
    ];
    for (b, o, pct, sig, change, p) in cases {
        let (line, p_line) = with(b, o, pct, sig);
        assert!(line.ends_with(change), "{line} vs {change}");
        assert_eq!(p_line, format!("Statistical significance: {p}"));
    }
    let verbs = [
        (0.4, 0.6, "increase"),
        (0.6, 0.4, "decrease"),
        (0.5, 0.5, ""),
    ];
    for (b, o, verb) in verbs {
        let (line, _) = with(b, o, 0.0, 0.0);
        let expected = match verb {
            "" => "Change: no change from".to_owned(),
            verb => format!("Change: observed {verb} from"),
        };
        assert!(line.starts_with(&expected), "{line}");
    }
    let on_the_second = DriftEvent {
        detected_at: datetime!(2026-12-01 10:15:30),
        ..drift()
    };
    let hook = serde_json::to_value(body::webhook(&on_the_second)).unwrap_or_default();
    assert_eq!(hook["detected_at"], "2026-12-01T10:15:30");
    let hook = serde_json::to_value(body::webhook(&drift())).unwrap_or_default();
    assert_eq!(hook["detected_at"], "2026-12-01T10:15:30.250000");
    assert!(hook.get("resolved_at").is_none() && hook.get("created_at").is_none());
}
