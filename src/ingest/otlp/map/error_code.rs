//! One failure code per error, whatever the library said (README, "Failure codes from OTLP").
//!
//! The same HTTP 429 reaches us as `error.type = <class 'openai.RateLimitError'>`,
//! `exception.type = openai.RateLimitError`, `error.type = RateLimitError`, or only a status
//! message `Error code: 429 - …`. A code is the class's own name (no repr wrapper, no module
//! path); a well-known provider error is one of our codes ([`KNOWN`]), from its class, the words
//! of its message, or its HTTP status.

/// Our codes for well-known provider errors, each with the class names (squashed: lower case,
/// without `_`, `-` and spaces) and HTTP statuses that mean it. Checked in this order.
pub const KNOWN: &[Known] = &[
    Known {
        code: "rate_limited",
        classes: &[
            "ratelimiterror",
            "ratelimitexception",
            "ratelimitexceeded",
            "ratelimitexceedederror",
            "ratelimited",
            "toomanyrequests",
            "toomanyrequestserror",
            "resourceexhausted",
            "throttlingexception",
        ],
        words: &["rate_limit_exceeded"],
        statuses: &[429],
    },
    Known {
        code: "timeout",
        classes: &[
            "apitimeouterror",
            "timeout",
            "timeouterror",
            "timeoutexception",
            "readtimeout",
            "readtimeouterror",
            "connecttimeout",
            "connecttimeouterror",
            "writetimeout",
            "pooltimeout",
            "sockettimeoutexception",
            "deadlineexceeded",
        ],
        words: &[],
        statuses: &[408, 504],
    },
    Known {
        code: "context_length_exceeded",
        classes: &[
            "contextwindowexceedederror",
            "contextlengthexceeded",
            "contextlengthexceedederror",
        ],
        words: &[
            "context_length_exceeded",
            "maximum context length",
            "context window",
            "prompt is too long",
        ],
        statuses: &[],
    },
    Known {
        code: "authentication_failed",
        classes: &[
            "authenticationerror",
            "permissiondeniederror",
            "unauthenticated",
            "permissiondenied",
            "unauthorized",
            "unauthorizederror",
            "accessdeniedexception",
            "invalidapikey",
        ],
        words: &["invalid_api_key", "incorrect api key"],
        statuses: &[401, 403],
    },
    Known {
        code: "content_filtered",
        classes: &[
            "contentfilterfinishreasonerror",
            "contentpolicyviolationerror",
            "contentfilter",
            "contentfiltered",
            "contentpolicyviolation",
        ],
        words: &[
            "content_filter",
            "content_policy_violation",
            "content management policy",
        ],
        statuses: &[],
    },
];

/// A well-known error: our code, and what means it.
pub struct Known {
    pub code: &'static str,
    pub classes: &'static [&'static str],
    /// Words of a message (lower case) that mean it whatever the class.
    pub words: &'static [&'static str],
    pub statuses: &'static [i64],
}

/// The class's own name in what a library sent as an error's type: `<class 'openai.X'>`,
/// `openai.X`, `openai::X` and `*openai.X` all give `X`. Anything else (`timeout`, `500`,
/// `_OTHER`, a sentence) is returned trimmed, as sent.
pub fn class_name(sent: &str) -> &str {
    let mut s = sent.trim();
    for (open, close) in [("<class '", "'>"), ("<class \"", "\">"), ("<type '", "'>")] {
        if let Some(inner) = s.strip_prefix(open).and_then(|r| r.strip_suffix(close)) {
            s = inner.trim();
        }
    }
    let path = s.trim_start_matches('*');
    let segments: Vec<&str> = path.split(['.', ':']).filter(|p| !p.is_empty()).collect();
    let is_ident = |p: &str| {
        p.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && p.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
    };
    if segments.len() > 1 && segments.iter().all(|p| is_ident(p)) {
        // A valid path: `a.b.C`, `a::C` (never `a:C` or `a..C`: those stay as sent).
        let rebuilt = segments.join(".");
        if path.replace("::", ".") == rebuilt {
            return segments[segments.len() - 1];
        }
    }
    s
}

/// A class name as [`KNOWN`] lists it: lower case, without `_`, `-` and spaces.
fn squash(name: &str) -> String {
    name.chars()
        .filter(|ch| !matches!(ch, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The HTTP status in an SDK's message: `Error code: 429 - …` (the OpenAI and Anthropic Python
/// SDKs' form).
pub fn status_in_message(message: &str) -> Option<i64> {
    let at = message.find("Error code: ")? + "Error code: ".len();
    let digits = message.get(at..at + 3)?;
    let status: i64 = digits.parse().ok()?;
    let after = message[at + 3..].chars().next();
    ((100..600).contains(&status) && !after.is_some_and(|c| c.is_ascii_digit())).then_some(status)
}

/// The failure code of an error: its class (`class`, from `error.type` or `exception.type`), its
/// HTTP `status` and its `message` decide, in that order of trust: a known class; then a known
/// message (a context-length or content-filter refusal arrives as a plain 400); then a known
/// status; else the class name, else `http_<status>`, else `error`.
pub fn code_of(class: Option<&str>, status: Option<i64>, message: &str) -> String {
    let class = class.map(class_name).filter(|c| !c.is_empty());
    let squashed = class.map(squash);
    let message = message.to_lowercase();
    let known = KNOWN
        .iter()
        .find(|k| {
            squashed
                .as_ref()
                .is_some_and(|s| k.classes.contains(&s.as_str()))
        })
        .or_else(|| {
            KNOWN
                .iter()
                .find(|k| k.words.iter().any(|w| message.contains(w)))
        })
        .or_else(|| {
            KNOWN
                .iter()
                .find(|k| status.is_some_and(|s| k.statuses.contains(&s)))
        });
    match (known, class, status) {
        (Some(k), ..) => k.code.to_owned(),
        (None, Some(class), _) => class.to_owned(),
        (None, None, Some(status)) => format!("http_{status}"),
        (None, None, None) => "error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_name_is_the_last_segment_of_a_path_without_its_repr() {
        for sent in [
            "<class 'openai.RateLimitError'>",
            "openai.RateLimitError",
            "RateLimitError",
            " RateLimitError ",
            "openai._exceptions.RateLimitError",
            "anthropic::RateLimitError",
            "*openai.RateLimitError",
            "<class \"openai.RateLimitError\">",
        ] {
            assert_eq!(class_name(sent), "RateLimitError", "{sent}");
        }
        // Not a path: as sent.
        for sent in [
            "timeout",
            "500",
            "_OTHER",
            "a..b",
            "what. went wrong",
            "1.5",
            "a:b",
        ] {
            assert_eq!(class_name(sent), sent, "{sent}");
        }
    }

    #[test]
    fn well_known_errors_are_our_codes_from_their_class_message_or_status() {
        let none = "";
        let cases = [
            (
                Some("<class 'openai.RateLimitError'>"),
                None,
                none,
                "rate_limited",
            ),
            (Some("anthropic.RateLimitError"), None, none, "rate_limited"),
            (
                Some("google.api_core.exceptions.ResourceExhausted"),
                None,
                none,
                "rate_limited",
            ),
            (Some("ThrottlingException"), None, none, "rate_limited"),
            (
                None,
                None,
                "Error code: 429 - {'error': {'code': 'rate_limit_exceeded'}}",
                "rate_limited",
            ),
            (None, Some(429), none, "rate_limited"),
            (
                Some("openai.APITimeoutError"),
                None,
                "Request timed out.",
                "timeout",
            ),
            (Some("httpx.ReadTimeout"), None, none, "timeout"),
            (Some("timeout"), None, none, "timeout"),
            (None, Some(504), none, "timeout"),
            (
                Some("openai.BadRequestError"),
                Some(400),
                "Error code: 400 - This model's maximum context length is 128000 tokens",
                "context_length_exceeded",
            ),
            (
                Some("litellm.ContextWindowExceededError"),
                None,
                none,
                "context_length_exceeded",
            ),
            (
                Some("anthropic.BadRequestError"),
                None,
                "prompt is too long: 210000 tokens > 200000 maximum",
                "context_length_exceeded",
            ),
            (
                Some("openai.AuthenticationError"),
                Some(401),
                none,
                "authentication_failed",
            ),
            (
                Some("PermissionDeniedError"),
                None,
                none,
                "authentication_failed",
            ),
            (
                None,
                Some(403),
                "Error code: 403 - forbidden",
                "authentication_failed",
            ),
            (
                Some("openai.ContentFilterFinishReasonError"),
                None,
                none,
                "content_filtered",
            ),
            (
                Some("openai.BadRequestError"),
                None,
                "Error code: 400 - {'error': {'code': 'content_filter'}}",
                "content_filtered",
            ),
            // Not well known: the class's name, the status, or `error`.
            (
                Some("<class 'openai.BadRequestError'>"),
                Some(400),
                "Error code: 400 - bad",
                "BadRequestError",
            ),
            (Some("ValueError"), None, "bad value", "ValueError"),
            (Some("500"), None, none, "500"),
            (None, Some(500), none, "http_500"),
            (None, None, "it broke", "error"),
        ];
        for (class, status, message, code) in cases {
            assert_eq!(
                code_of(class, status, message),
                code,
                "{class:?} {status:?} {message}"
            );
        }
    }

    #[test]
    fn the_readme_tables_every_known_code_as_the_code_has_it() {
        let readme = include_str!("../../../../README.md");
        for known in KNOWN {
            let head = format!("| `{}` |", known.code);
            let row = readme
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with(&head))
                .unwrap_or_else(|| panic!("README has no row for {}", known.code));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            // The classes' cell: `A(B)` names A and AB.
            let mut classes = Vec::new();
            for name in cells[2].split('`').skip(1).step_by(2) {
                match name.split_once('(') {
                    Some((a, b)) => {
                        classes.push(squash(a));
                        classes.push(squash(&format!("{a}{}", b.trim_end_matches(')'))));
                    }
                    None => classes.push(squash(name)),
                }
            }
            classes.sort();
            let mut expected: Vec<String> = known.classes.iter().map(|c| c.to_string()).collect();
            expected.sort();
            assert_eq!(classes, expected, "{}", known.code);
            let words: Vec<&str> = cells[3].split('`').skip(1).step_by(2).collect();
            assert_eq!(words, known.words, "{}", known.code);
            let statuses: Vec<i64> = cells[4]
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect();
            assert_eq!(statuses, known.statuses, "{}", known.code);
        }
    }

    #[test]
    fn a_status_is_read_from_the_sdks_message_form_only() {
        assert_eq!(status_in_message("Error code: 429 - Rate limit"), Some(429));
        assert_eq!(
            status_in_message("RateLimitError: Error code: 429 - x"),
            Some(429)
        );
        assert_eq!(status_in_message("Error code: 4290"), None);
        assert_eq!(status_in_message("Error code: 42"), None);
        assert_eq!(status_in_message("429 Too Many Requests"), None);
    }
}
