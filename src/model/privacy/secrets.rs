//! Secret values: the credential patterns a string is checked against, found or redacted.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

/// What a redacted value, or the credential inside a string, is replaced with.
pub const REDACTED: &str = "[REDACTED]";

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
    // The patterns are constants covered by the tests in privacy/mod.rs; failing here is a
    // build defect.
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
