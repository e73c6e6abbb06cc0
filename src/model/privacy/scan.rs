//! The scan: both rules over a step's metadata at every depth, and the secret rule over a
//! string, with what each privacy mode does with a violation.

use serde_json::Value;

use super::keys::key_rule;
use super::mode::PrivacyMode;
use super::secrets::{REDACTED, find_secret, redact_secrets};
use super::violation::{Rule, Violation};

/// What a scan found: violations (in `reject` mode) and how many values it redacted.
#[derive(Debug, Default)]
pub struct Scan {
    pub violations: Vec<Violation>,
    pub redacted: u32,
    /// Counts nothing in `privacy_violations_total` (the caller counts what it does instead).
    pub quiet: bool,
}

impl Scan {
    /// A scan that leaves the counting to its caller.
    pub fn quiet() -> Scan {
        Scan {
            quiet: true,
            ..Scan::default()
        }
    }
}

/// The metadata keys the original refused (Phase 1): a top-level key containing one of these.
const ORIGINAL_REFUSED: &[&str] = &["prompt", "response", "output", "input", "content", "text"];

/// Whether the original refused a top-level metadata key (a substring match, case-insensitive).
fn original_refused(key: &str) -> bool {
    let key = key.to_lowercase();
    ORIGINAL_REFUSED.iter().any(|word| key.contains(word))
}

/// What a mode does with one violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Reject,
    Redact,
}

/// `compat` rejects only what the original refused too: a top-level content key the original's
/// substring check also caught. Everything else it redacts, so no run the original stored is lost.
fn verdict(mode: PrivacyMode, refused_by_original: bool) -> Verdict {
    match mode {
        PrivacyMode::Reject => Verdict::Reject,
        PrivacyMode::Compat if refused_by_original => Verdict::Reject,
        PrivacyMode::Compat | PrivacyMode::Redact | PrivacyMode::Off => Verdict::Redact,
    }
}

impl Scan {
    /// Applies both rules to a step's metadata object at every depth; `loc` is its location.
    pub fn metadata(&mut self, value: &mut Value, mode: PrivacyMode, loc: &mut Vec<Value>) {
        self.walk(value, mode, loc, true);
    }

    /// [`metadata`](Scan::metadata) for a decision's or a signal's metadata, with the
    /// original's own rule for them: a top-level key equal to one of `blocked` (without case)
    /// names text the agent wrote or read, and is refused as the original refused it.
    pub fn behaviour_metadata(
        &mut self,
        value: &mut Value,
        mode: PrivacyMode,
        loc: &mut Vec<Value>,
        blocked: &[&str],
    ) {
        if mode == PrivacyMode::Off {
            return;
        }
        let Value::Object(map) = value else { return };
        for (key, child) in map.iter_mut() {
            loc.push(Value::String(key.clone()));
            if blocked.iter().any(|b| key.eq_ignore_ascii_case(b)) {
                self.violation(mode, loc, child, Rule::ContentKey, true, key.to_lowercase());
            } else {
                self.entry(key, child, mode, loc, true);
            }
            loc.pop();
        }
    }

    /// A violation of `rule` at `loc`: refused, or `child` redacted, as `mode` says.
    fn violation(
        &mut self,
        mode: PrivacyMode,
        loc: &[Value],
        child: &mut Value,
        rule: Rule,
        refused_by_original: bool,
        what: String,
    ) {
        let verdict = verdict(mode, refused_by_original);
        self.found(verdict, loc, rule, || what);
        if verdict == Verdict::Redact {
            *child = Value::String(REDACTED.into());
        }
    }

    /// One key of an object and its value, at `loc`.
    fn entry(
        &mut self,
        key: &str,
        child: &mut Value,
        mode: PrivacyMode,
        loc: &mut Vec<Value>,
        top: bool,
    ) {
        match key_rule(key, child) {
            Some((rule, what)) => {
                let refused = rule == Rule::ContentKey && top && original_refused(key);
                self.violation(mode, loc, child, rule, refused, what);
            }
            None => self.walk(child, mode, loc, false),
        }
    }

    fn walk(&mut self, value: &mut Value, mode: PrivacyMode, loc: &mut Vec<Value>, top: bool) {
        if mode == PrivacyMode::Off {
            return;
        }
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    loc.push(Value::String(key.clone()));
                    self.entry(key, child, mode, loc, top);
                    loc.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter_mut().enumerate() {
                    loc.push(Value::from(i));
                    self.walk(child, mode, loc, false);
                    loc.pop();
                }
            }
            Value::String(text) => self.text(text, mode, loc),
            _ => {}
        }
    }

    /// Applies the secret-value rule to a string (a failure message, a metadata value).
    pub fn text(&mut self, text: &mut String, mode: PrivacyMode, loc: &[Value]) {
        self.text_at(text, mode, || loc.to_vec());
    }

    /// [`text`](Scan::text) with its location made only for a finding (most strings have none).
    pub fn text_at(
        &mut self,
        text: &mut String,
        mode: PrivacyMode,
        loc: impl FnOnce() -> Vec<Value>,
    ) {
        if mode == PrivacyMode::Off {
            return;
        }
        let Some(what) = find_secret(text) else {
            return;
        };
        match verdict(mode, false) {
            Verdict::Redact => {
                let n = redact_secrets(text);
                self.redacted += n;
                for _ in 0..n {
                    self.record(Rule::SecretValue, "redact");
                }
            }
            Verdict::Reject => {
                let loc = loc();
                self.found(Verdict::Reject, &loc, Rule::SecretValue, || what.to_owned())
            }
        }
    }

    fn record(&self, rule: Rule, action: &'static str) {
        if !self.quiet {
            metrics::counter!("privacy_violations_total", "rule" => rule.as_str(), "action" => action)
                .increment(1);
        }
    }

    fn found(
        &mut self,
        verdict: Verdict,
        loc: &[Value],
        rule: Rule,
        what: impl FnOnce() -> String,
    ) {
        match verdict {
            Verdict::Redact => {
                self.redacted += 1;
                self.record(rule, "redact");
            }
            Verdict::Reject => {
                self.record(rule, "reject");
                self.violations.push(Violation {
                    loc: loc.to_vec(),
                    rule,
                    what: what(),
                });
            }
        }
    }
}
