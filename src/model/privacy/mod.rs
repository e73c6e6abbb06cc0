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

mod keys;
mod mode;
mod scan;
mod secrets;
mod violation;

pub use keys::{KeyClass, classify, content_word, is_content_key, key_rule, key_words};
pub use mode::PrivacyMode;
pub use scan::Scan;
pub use secrets::{REDACTED, find_secret, redact_secrets};
pub use violation::{Rule, Violation};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

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
    fn a_models_service_tier_fingerprint_and_reasoning_effort_are_not_content_but_prose_is() {
        for (key, value) in [
            ("openai.response.service_tier", "default"),
            ("openai.response.system_fingerprint", "fp_44709d6fcb"),
            ("gen_ai.openai.response.system_fingerprint", "fp_44709d6fcb"),
            ("gen_ai.request.reasoning_effort", "low"),
        ] {
            assert_eq!(key_rule(key, &json!(value)), None, "{key}");
        }
        // The words exempt an enum-like value only: prose under the same keys is content.
        let prose = json!("the model reasoned at length about the weather in Paris");
        assert!(key_rule("gen_ai.request.reasoning_effort", &prose).is_some());
        assert!(key_rule("response_tier", &prose).is_some());
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
