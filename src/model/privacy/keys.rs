//! Content keys and credential keys: a metadata key normalised (NFKC, invisible characters
//! removed), split into words, folded to confusable skeletons, and classified by its words.

use std::sync::LazyLock;

use serde_json::Value;

use super::violation::Rule;

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
    // Measurement and configuration of a model call that the libraries file under `response`
    // and `reasoning` (issue 19): `openai.response.service_tier`,
    // `openai.response.system_fingerprint`, `gen_ai.request.reasoning_effort`. Like every word
    // here, they exempt only a short enum-like value, never prose.
    "tier",
    "fingerprint",
    "effort",
];

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

fn holds_text(value: &Value) -> bool {
    match value {
        Value::String(_) => true,
        Value::Array(items) => items.iter().any(holds_text),
        Value::Object(map) => map.values().any(holds_text),
        _ => false,
    }
}
