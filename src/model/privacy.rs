//! Privacy by schema: prompts, model outputs and credentials are never stored.
//!
//! Two rules, applied to step metadata at every depth and to failure messages:
//! - **content keys**: a metadata key one of whose words (split on `_ - .`, spaces and camelCase)
//!   is a content word and none a measurement or identity word. `user_input` is content;
//!   `input_tokens` and `gen_ai.response.model` are not. A content key only counts when its value
//!   carries text (a string, or a list or object holding one): `{"prompt": {"tokens": 5}}` is fine.
//! - **secret values**: strings that carry a credential (API keys, AWS key ids, GitHub tokens,
//!   JWTs, `Bearer …`, `password=…` assignments, PEM private keys, URLs with a password).
//!
//! `reject` reports each violation (by key path and rule, never the value); `redact` replaces
//! the value, or just the secret inside it, with `"[REDACTED]"`; `compat` (the default) rejects
//! only what the original service refused too — a top-level key containing `prompt`,
//! `response`, `output`, `input`, `content` or `text` that the content-key rule flags — and
//! redacts every other violation, so a drop-in never loses a run the original stored; `off` does
//! nothing.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use serde_json::Value;

use crate::config::PrivacyMode;

pub const REDACTED: &str = "[REDACTED]";

/// Words that make a key content…
const CONTENT_WORDS: &[&str] = &[
    "prompt",
    "prompts",
    "response",
    "responses",
    "completion",
    "completions",
    "message",
    "messages",
    "content",
    "contents",
    "text",
    "texts",
    "input",
    "inputs",
    "output",
    "outputs",
    "query",
    "queries",
    "answer",
    "answers",
    "reasoning",
    "thought",
    "thoughts",
    "instruction",
    "instructions",
    "question",
    "questions",
    "reply",
    "replies",
    "transcript",
    "transcripts",
    "utterance",
    "utterances",
    "msg",
    "msgs",
    "body",
    "bodies",
    "history",
    "conversation",
    "conversations",
    "chat",
    "dialog",
    "dialogue",
    "args",
    "arguments",
    "rationale",
    "explanation",
    "document",
    "documents",
];

/// Words that name a credential: a string under such a key is a secret, whatever it looks like.
const CREDENTIAL_WORDS: &[&str] = &[
    "password",
    "passwords",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "secrets",
    "token",
    "apikey",
    "authorization",
    "credential",
    "credentials",
    "cookie",
    "cookies",
];

/// Adjacent words that name a credential together.
const CREDENTIAL_PAIRS: &[(&str, &str)] = &[
    ("api", "key"),
    ("private", "key"),
    ("access", "key"),
    ("secret", "key"),
    ("session", "key"),
    ("signing", "key"),
    ("encryption", "key"),
    ("auth", "header"),
];

/// …unless one of these says the value is a measurement or an identity.
const MEASURE_WORDS: &[&str] = &[
    // (Not "token": alone it names a credential; counts say "tokens".)
    "tokens",
    "count",
    "counts",
    "length",
    "len",
    "size",
    "bytes",
    "byte",
    "chars",
    "char",
    "characters",
    "ms",
    "id",
    "ids",
    "uuid",
    "hash",
    "type",
    "types",
    "kind",
    "format",
    "version",
    "name",
    "names",
    "model",
    "models",
    "reason",
    "reasons",
    "role",
    "roles",
    "status",
    "code",
    "codes",
    "num",
    "number",
    "total",
    "limit",
    "latency",
    "duration",
    "score",
    "cost",
    "language",
    "encoding",
    "index",
    "truncated",
];

/// Which rule a violation broke; the `rule` label of `privacy_violations_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    ContentKey,
    SecretValue,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ContentKey => "content_key",
            Rule::SecretValue => "secret_value",
        }
    }
}

/// One violation: where, which rule, and a description that never includes the value.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    pub loc: Vec<Value>,
    pub rule: Rule,
    pub what: String,
}

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

/// Characters that render as nothing (zero-width spaces and joiners, the soft hyphen, word
/// joiners, invisible operators, the byte-order mark, variation selectors, tags): stripped from
/// a key before its words are split, so `pro\u{200B}mpt` is `prompt`.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// A key as its reader sees it: NFKC (full-width and other compatibility forms become plain
/// letters) with the invisible characters removed.
fn normalized(key: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    key.nfkc().filter(|&c| !invisible(c)).collect()
}

/// A word folded to its confusable skeleton (Unicode TR39): Cyrillic `р`, `о` and the like
/// compare equal to the Latin letters they imitate.
fn folded(word: &str) -> String {
    unicode_security::skeleton(word)
        .collect::<String>()
        .to_lowercase()
}

fn folded_set(words: &[&str]) -> std::collections::HashSet<String> {
    words.iter().map(|w| folded(w)).collect()
}

static CONTENT: LazyLock<std::collections::HashSet<String>> =
    LazyLock::new(|| folded_set(CONTENT_WORDS));
static MEASURE: LazyLock<std::collections::HashSet<String>> =
    LazyLock::new(|| folded_set(MEASURE_WORDS));
static CREDENTIAL: LazyLock<std::collections::HashSet<String>> =
    LazyLock::new(|| folded_set(CREDENTIAL_WORDS));
static CREDENTIAL_PAIR: LazyLock<Vec<(String, String)>> = LazyLock::new(|| {
    CREDENTIAL_PAIRS
        .iter()
        .map(|(a, b)| (folded(a), folded(b)))
        .collect()
});

/// Splits a key into lowercase words on `_ - .`, spaces, digits and camelCase humps, after
/// normalising it (NFKC, invisible characters removed).
pub fn key_words(key: &str) -> Vec<String> {
    let key = normalized(key);
    let chars: Vec<char> = key.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        let boundary = match prev {
            Some(p) if p.is_alphanumeric() => {
                (c.is_uppercase() && (p.is_lowercase() || p.is_ascii_digit()))
                    || (c.is_uppercase()
                        && p.is_uppercase()
                        && next.is_some_and(char::is_lowercase))
                    || (c.is_ascii_digit() != p.is_ascii_digit())
            }
            _ => false,
        };
        if boundary && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// What a key's words say about its value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyClass {
    /// The content word it holds, if any (`prompt`, `user_input`, `model_input`).
    pub content: Option<String>,
    /// Whether it also holds a measurement or identity word (`tokens`, `id`, `name`, `type`):
    /// such a key exempts numbers, booleans and short enum-like strings, never prose.
    pub measured: bool,
    /// Whether it names a credential (`password`, `api_key`, `authorization`).
    pub credential: bool,
}

/// Classifies a key by its words (normalised and folded).
///
/// Metadata keys repeat across steps and runs, so answers for short keys are kept per thread
/// (a bounded cache, emptied when full): splitting a key into words is most of the privacy
/// check's cost otherwise.
pub fn classify(key: &str) -> KeyClass {
    use std::cell::RefCell;
    use std::collections::HashMap;
    const MAX_KEY: usize = 64;
    const MAX_ENTRIES: usize = 4096;
    thread_local! {
        static CACHE: RefCell<HashMap<String, KeyClass>> = RefCell::new(HashMap::new());
    }
    if key.len() > MAX_KEY {
        return classify_uncached(key);
    }
    if let Some(hit) = CACHE.with_borrow(|cache| cache.get(key).cloned()) {
        return hit;
    }
    let found = classify_uncached(key);
    CACHE.with_borrow_mut(|cache| {
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(key.to_owned(), found.clone());
    });
    found
}

fn classify_uncached(key: &str) -> KeyClass {
    let words: Vec<String> = key_words(key).iter().map(|w| folded(w)).collect();
    let pair = words.windows(2).any(|w| {
        CREDENTIAL_PAIR
            .iter()
            .any(|(a, b)| w[0] == *a && w[1] == *b)
    });
    KeyClass {
        content: words.iter().find(|w| CONTENT.contains(*w)).cloned(),
        measured: words.iter().any(|w| MEASURE.contains(w)),
        credential: pair || words.iter().any(|w| CREDENTIAL.contains(w)),
    }
}

/// The content word that makes `key` a content key whatever its value (no measurement or
/// identity word beside it), if it is one.
pub fn content_word(key: &str) -> Option<String> {
    let class = classify(key);
    class.content.filter(|_| !class.measured)
}

pub fn is_content_key(key: &str) -> bool {
    content_word(key).is_some()
}

/// A short enum-like string (`json_object`, `tmpl-7`, `gpt-4o`): what a measurement or
/// identity word may exempt. Prose — whitespace, or longer than 64 characters — is not.
fn enum_like(text: &str) -> bool {
    text.chars().count() <= 64 && !text.chars().any(char::is_whitespace)
}

/// Whether a value holds prose anywhere inside it.
fn holds_prose(value: &Value) -> bool {
    match value {
        Value::String(s) => !enum_like(s),
        Value::Array(items) => items.iter().any(holds_prose),
        Value::Object(map) => map.values().any(holds_prose),
        _ => false,
    }
}

/// Which rule `value` under `key` breaks by its key alone, if any: content (a content word, not
/// exempted — or exempted by a measurement word but holding prose), or a credential (a key
/// naming one, holding a string that is not exempted the same way).
pub fn key_rule(key: &str, value: &Value) -> Option<(Rule, String)> {
    let class = classify(key);
    if !holds_text(value) {
        return None;
    }
    let exempt = class.measured && !holds_prose(value);
    if let Some(word) = class.content
        && !exempt
    {
        return Some((Rule::ContentKey, format!("content word `{word}`")));
    }
    if class.credential && !exempt {
        return Some((
            Rule::SecretValue,
            "a credential under a key naming one".to_owned(),
        ));
    }
    None
}

struct SecretPattern {
    what: &'static str,
    regex: &'static str,
}

/// Credentials; where a pattern has a `secret` group, only that group is the secret.
const SECRET_PATTERNS: &[SecretPattern] = &[
    SecretPattern {
        what: "an API key (sk-…)",
        regex: r"\bsk-[A-Za-z0-9_\-]{20,}",
    },
    SecretPattern {
        what: "an AWS access key id",
        regex: r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b",
    },
    SecretPattern {
        what: "a GitHub token",
        regex: r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
    },
    SecretPattern {
        what: "a Google API key",
        regex: r"\bAIza[0-9A-Za-z_\-]{35}",
    },
    SecretPattern {
        what: "a Slack token",
        regex: r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",
    },
    SecretPattern {
        what: "a JWT",
        regex: r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}",
    },
    SecretPattern {
        what: "a bearer token",
        regex: r"(?i)\bbearer\s+(?P<secret>[A-Za-z0-9\-._~+/]{16,}=*)",
    },
    SecretPattern {
        what: "a credential assignment",
        regex: r#"(?i)\b(?:password|passwd|pwd|secret|client[_\-]?secret|api[_\-]?key|apikey|access[_\-]?key|secret[_\-]?key|access[_\-]?token|auth[_\-]?token|private[_\-]?key|aws[_\-]?secret[_\-]?access[_\-]?key|secret[_\-]?access[_\-]?key)["']?\s*[:=]\s*["']?(?P<secret>[^\s"',;&]{4,})"#,
    },
    SecretPattern {
        what: "a Stripe key",
        regex: r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
    },
    SecretPattern {
        what: "basic credentials",
        regex: r"(?i)\bbasic\s+(?P<secret>[A-Za-z0-9+/]{12,}={0,2})",
    },
    SecretPattern {
        what: "a PEM private key",
        regex: r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|[\s\S]*)",
    },
    SecretPattern {
        what: "a URL with a password",
        regex: r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@]+:(?P<secret>[^/\s@]+)@",
    },
];

struct Secrets {
    set: RegexSet,
    each: Vec<Regex>,
}

static SECRETS: LazyLock<Secrets> = LazyLock::new(|| {
    // The patterns are constants covered by the tests below; failing here is a build defect.
    let set =
        RegexSet::new(SECRET_PATTERNS.iter().map(|p| p.regex)).unwrap_or_else(|e| panic!("{e}"));
    let each = SECRET_PATTERNS
        .iter()
        .map(|p| Regex::new(p.regex).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    Secrets { set, each }
});

/// An assignment's value must look like a credential, not a word: "password: incorrect" is
/// prose, "password=hunter2" is not.
fn credential_like(value: &str) -> bool {
    value.len() >= 16 || value.chars().any(|c| !c.is_ascii_alphabetic())
}

/// The first credential found in `text`, described (never quoted).
pub fn find_secret(text: &str) -> Option<&'static str> {
    let secrets = &*SECRETS;
    secrets.set.matches(text).iter().find_map(|i| {
        let regex = &secrets.each[i];
        let real = regex
            .captures_iter(text)
            .any(|caps| match caps.name("secret") {
                Some(m) if SECRET_PATTERNS[i].what == "a credential assignment" => {
                    credential_like(m.as_str())
                }
                _ => true,
            });
        real.then_some(SECRET_PATTERNS[i].what)
    })
}

/// Replaces every credential in `text` with `[REDACTED]`; returns how many it replaced.
pub fn redact_secrets(text: &mut String) -> u32 {
    let secrets = &*SECRETS;
    let matched: Vec<usize> = secrets.set.matches(text).into_iter().collect();
    let mut count = 0;
    for i in matched {
        let regex = &secrets.each[i];
        let is_assignment = SECRET_PATTERNS[i].what == "a credential assignment";
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for caps in regex.captures_iter(text) {
            let Some(whole) = caps.get(0) else { continue };
            let target = caps.name("secret").unwrap_or(whole);
            if is_assignment && !credential_like(target.as_str()) {
                continue;
            }
            out.push_str(&text[last..target.start()]);
            out.push_str(REDACTED);
            last = target.end();
            count += 1;
        }
        if last > 0 {
            out.push_str(&text[last..]);
            *text = out;
        }
    }
    count
}

fn holds_text(value: &Value) -> bool {
    match value {
        Value::String(_) => true,
        Value::Array(items) => items.iter().any(holds_text),
        Value::Object(map) => map.values().any(holds_text),
        _ => false,
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

    fn walk(&mut self, value: &mut Value, mode: PrivacyMode, loc: &mut Vec<Value>, top: bool) {
        if mode == PrivacyMode::Off {
            return;
        }
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    loc.push(Value::String(key.clone()));
                    match key_rule(key, child) {
                        Some((rule, what)) => {
                            let refused = rule == Rule::ContentKey && top && original_refused(key);
                            let verdict = verdict(mode, refused);
                            self.found(verdict, loc, rule, || what);
                            if verdict == Verdict::Redact {
                                *child = Value::String(REDACTED.into());
                            }
                        }
                        None => self.walk(child, mode, loc, false),
                    }
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
                self.found(Verdict::Reject, loc, Rule::SecretValue, || what.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_design_examples_of_content_keys() {
        for key in [
            "prompt",
            "user_input",
            "response_text",
            "gen_ai.input.messages",
            "systemPrompt",
            "completion",
            "reasoning",
            "llm.output_messages",
        ] {
            assert!(is_content_key(key), "{key} should be content");
        }
        for key in [
            "input_tokens",
            "output_length",
            "context_length",
            "prompt_template_id",
            "gen_ai.response.model",
            "gen_ai.response.finish_reasons",
            "promptTokens",
            "model",
            "tool_name",
            "temperature",
            "message_count",
            "HTTPResponseCode",
            "contextual",
            "inputs_hash",
        ] {
            assert!(!is_content_key(key), "{key} should not be content");
        }
    }

    #[test]
    fn key_words_split_on_separators_and_camel_case() {
        assert_eq!(
            key_words("gen_ai.response.finish-reasons"),
            ["gen", "ai", "response", "finish", "reasons"]
        );
        assert_eq!(key_words("HTTPResponseCode"), ["http", "response", "code"]);
        assert_eq!(key_words("userInput2"), ["user", "input", "2"]);
        assert_eq!(key_words("context length"), ["context", "length"]);
    }

    #[test]
    fn secrets_are_found_and_prose_is_not() {
        for text in [
            "key sk-proj-abcdefghijklmnopqrstuvwx1234",
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "Authorization: Bearer abcdef0123456789abcdef",
            "password=hunter2",
            "api_key: 'A1b2C3d4'",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
            "postgresql://app:s3cr3t@db:5432/x",
        ] {
            assert!(find_secret(text).is_some(), "{text} should be a secret");
        }
        for text in [
            "Prompt exceeds 128k token limit",
            "invalid password: incorrect",
            "Bearer token expired",
            "tool returned 429 rate limited",
            "see https://example.com/docs",
            "task-1234 failed",
        ] {
            assert_eq!(find_secret(text), None, "{text} should not be a secret");
        }
    }

    #[test]
    fn redaction_replaces_only_the_secret() {
        let mut text = "login failed with password=hunter2 for user bob".to_owned();
        assert_eq!(redact_secrets(&mut text), 1);
        assert_eq!(text, "login failed with password=[REDACTED] for user bob");
        let mut text =
            "two keys sk-aaaaaaaaaaaaaaaaaaaaaaaa and sk-bbbbbbbbbbbbbbbbbbbbbbbbb".to_owned();
        assert_eq!(redact_secrets(&mut text), 2);
        assert_eq!(text, "two keys [REDACTED] and [REDACTED]");
    }

    #[test]
    fn reject_mode_reports_paths_without_values() {
        let mut meta = json!({
            "model": "gpt-4o",
            "input_tokens": 12,
            "prompt": "tell me a secret",
            "nested": {"deep": [{"user_input": "hi"}], "auth": "Bearer abcdefabcdefabcdef12"},
            "response": {"tokens": 5}
        });
        let before = meta.clone();
        let mut scan = Scan::default();
        scan.metadata(&mut meta, PrivacyMode::Reject, &mut vec![json!("metadata")]);
        assert_eq!(meta, before, "reject mode changes nothing");
        let mut found: Vec<(String, Rule)> = scan
            .violations
            .iter()
            .map(|v| (serde_json::to_string(&v.loc).unwrap_or_default(), v.rule))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            found,
            [
                (
                    r#"["metadata","nested","auth"]"#.to_owned(),
                    Rule::SecretValue
                ),
                (
                    r#"["metadata","nested","deep",0,"user_input"]"#.to_owned(),
                    Rule::ContentKey
                ),
                (r#"["metadata","prompt"]"#.to_owned(), Rule::ContentKey),
            ]
        );
        for v in &scan.violations {
            assert!(
                !v.what.contains("tell me") && !v.what.contains("abcdef"),
                "{}",
                v.what
            );
        }
    }

    #[test]
    fn redact_mode_replaces_values_and_counts() {
        let mut meta =
            json!({"prompt": "hi", "note": "key sk-aaaaaaaaaaaaaaaaaaaaaaaa", "input_tokens": 3});
        let mut scan = Scan::default();
        scan.metadata(&mut meta, PrivacyMode::Redact, &mut vec![]);
        assert_eq!(
            meta,
            json!({"prompt": "[REDACTED]", "note": "key [REDACTED]", "input_tokens": 3})
        );
        assert_eq!(scan.redacted, 2);
        assert!(scan.violations.is_empty());
    }

    /// `compat` loses no run the original stored: it rejects a top-level key the original's
    /// substring check refused (and our rule flags); everything else is redacted and kept.
    #[test]
    fn compat_mode_rejects_only_what_the_original_refused() {
        let mut meta = json!({
            "query": "refund",
            "answer": "yes",
            "reasoning": "because",
            "details": {"input": "x"},
            "auth": "Bearer abcdefabcdefabcdef12",
            "input_tokens": 3,
            "context_length": 8
        });
        let mut scan = Scan::default();
        scan.metadata(&mut meta, PrivacyMode::Compat, &mut vec![]);
        assert!(scan.violations.is_empty(), "{:?}", scan.violations);
        assert_eq!(
            meta,
            json!({
                "query": "[REDACTED]", "answer": "[REDACTED]", "reasoning": "[REDACTED]",
                "details": {"input": "[REDACTED]"}, "auth": "Bearer [REDACTED]",
                "input_tokens": 3, "context_length": 8
            })
        );
        assert_eq!(scan.redacted, 5);
        for key in [
            "prompt",
            "user_input",
            "response_text",
            "systemPrompt",
            "outputs",
        ] {
            let mut meta = json!({ key: "a whole prompt", "other": "password=hunter2" });
            let mut scan = Scan::default();
            scan.metadata(&mut meta, PrivacyMode::Compat, &mut vec![json!("metadata")]);
            let locs: Vec<&Value> = scan.violations.iter().flat_map(|v| &v.loc).collect();
            assert_eq!(locs, [&json!("metadata"), &json!(key)], "{key}");
            assert_eq!(scan.violations[0].rule, Rule::ContentKey);
            assert_eq!(scan.redacted, 1, "the secret beside it is redacted");
        }
        // Our rule lets these through, so compat does too (the original refused them).
        let mut meta = json!({"input_tokens": 1, "prompt": {"tokens": 5}, "context_length": 2});
        let before = meta.clone();
        let mut scan = Scan::default();
        scan.metadata(&mut meta, PrivacyMode::Compat, &mut vec![]);
        assert_eq!((meta, scan.redacted, scan.violations.len()), (before, 0, 0));
    }

    /// What an adversarial review stored verbatim: disguised keys, content under an exempting
    /// word, unlisted content names, credentials as key-value pairs, new secret formats.
    #[test]
    fn privacy_cannot_be_walked_around() {
        let prose = "Please summarise the customer's complaint about their refund";
        for key in [
            "\u{FF50}\u{FF52}\u{FF4F}\u{FF4D}\u{FF50}\u{FF54}", // full-width prompt
            "pro\u{200B}mpt",                                   // zero-width space
            "pro\u{00AD}mpt",                                   // soft hyphen
            "user_in\u{200D}put",                               // zero-width joiner
            "\u{0440}r\u{043E}mpt",                             // Cyrillic р, о
            "\u{0440}rompt",
            "model_input",
            "modelResponse",
            "prompt_name",
            "response_format",
            "user_message_type",
            "msg",
            "body",
            "history",
            "conversation",
            "args",
        ] {
            let mut meta = json!({ key: prose });
            let mut scan = Scan::quiet();
            scan.metadata(&mut meta, PrivacyMode::Reject, &mut vec![]);
            assert_eq!(scan.violations.len(), 1, "{key:?} holding prose is content");
            assert_eq!(scan.violations[0].rule, Rule::ContentKey, "{key:?}");
        }
        // Measurement and identity words still exempt what is not prose.
        for (key, value) in [
            ("prompt_name", json!("support-triage-v2")),
            ("response_format", json!("json_object")),
            ("user_message_type", json!("text")),
            ("input_tokens", json!(812)),
            ("prompt_template_id", json!("tmpl-7")),
            ("gen_ai.response.finish_reasons", json!(["stop"])),
            ("token_count", json!("12")),
        ] {
            assert_eq!(key_rule(key, &value), None, "{key}: {value}");
        }
        for (key, value) in [
            ("password", json!("hunter2")),
            ("db_password", json!("correct horse")),
            ("api_key", json!("abc123")),
            ("apiKey", json!("abc123")),
            ("x-api-key", json!("abc123")),
            ("Authorization", json!("Basic dXNlcjpwYXNzd29yZA==")),
            (
                "aws_secret_access_key",
                json!("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            ),
            ("client_secret", json!("s3cr3t")),
            ("session_token", json!("opaque")),
            ("private_key", json!("...")),
        ] {
            let found = key_rule(key, &value);
            assert_eq!(found.map(|f| f.0), Some(Rule::SecretValue), "{key}");
        }
        for text in [
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "Authorization: Basic dXNlcjpwYXNzd29yZA==",
            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ] {
            assert!(find_secret(text).is_some(), "{text}");
        }
        // Redacted, nothing of it is left.
        let mut meta =
            json!({"auth": {"password": "hunter2", "user": "bob"}, "modelResponse": prose});
        let mut scan = Scan::quiet();
        scan.metadata(&mut meta, PrivacyMode::Redact, &mut vec![]);
        assert_eq!(
            meta,
            json!({"auth": {"password": "[REDACTED]", "user": "bob"}, "modelResponse": "[REDACTED]"})
        );
    }

    #[test]
    fn off_mode_keeps_everything() {
        let mut meta = json!({"prompt": "hi", "note": "password=hunter2"});
        let before = meta.clone();
        let mut scan = Scan::default();
        scan.metadata(&mut meta, PrivacyMode::Off, &mut vec![]);
        assert_eq!((meta, scan.redacted, scan.violations.len()), (before, 0, 0));
    }
}
