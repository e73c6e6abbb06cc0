//! Model prices (docs/cost.md): what a million tokens of a model cost, and which price names a
//! model. A price's `model` is a model's name, or a prefix pattern ending in `*`
//! (`gpt-4o-mini*`); an exact name beats every pattern, and of the patterns the longest wins.

use time::OffsetDateTime;

/// The longest model name or pattern, in characters (the column's).
pub const MAX_MODEL_CHARS: usize = 255;

/// The highest price per million tokens accepted, in USD: above is a mistake (a price per token
/// sent as per million, or cents as dollars), refused rather than stored.
pub const MAX_PER_MTOK: f64 = 100_000.0;

/// A validated price period of `PUT /v1/model-prices/{model}`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewPrice {
    pub model: String,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    pub cached_input_per_mtok: Option<f64>,
    /// Reasoning tokens are priced as output unless this is set.
    pub reasoning_per_mtok: Option<f64>,
    /// From when the price applies; none means now.
    pub valid_from: Option<OffsetDateTime>,
}

/// Why `model` is not a model name or pattern, if it is not one.
pub fn pattern_problem(model: &str) -> Option<&'static str> {
    let chars = model.chars().count();
    match model.find('*') {
        _ if model.is_empty() => Some("A model name or pattern is required"),
        _ if chars > MAX_MODEL_CHARS => Some("A model name or pattern has at most 255 characters"),
        _ if model.chars().any(char::is_control) => {
            Some("A model name or pattern has no control characters")
        }
        Some(0) => {
            Some("A pattern names a prefix before its '*' (a price for every model is refused)")
        }
        Some(at) if at + 1 != model.len() => {
            Some("A pattern has one '*', at its end ('gpt-4o-mini*')")
        }
        _ => None,
    }
}

/// Whether price `pattern` (a name, or a prefix ending in `*`) names model `model`.
pub fn matches(pattern: &str, model: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => model.starts_with(prefix),
        None => pattern == model,
    }
}

/// Of `patterns`, the one that names `model`: its exact name, else the longest matching prefix.
pub fn best_match<'a>(patterns: impl IntoIterator<Item = &'a str>, model: &str) -> Option<&'a str> {
    patterns
        .into_iter()
        .filter(|p| matches(p, model))
        // An exact name (no '*') outranks any pattern; then the longer prefix.
        .max_by_key(|p| (!p.ends_with('*'), p.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_name_beats_patterns_and_the_longest_pattern_wins() {
        let patterns = ["gpt-4o*", "gpt-4o-mini*", "gpt-4o-mini-2024-07-18", "o1*"];
        assert_eq!(best_match(patterns, "gpt-4o-2024-08-06"), Some("gpt-4o*"));
        assert_eq!(best_match(patterns, "gpt-4o-mini"), Some("gpt-4o-mini*"));
        assert_eq!(
            best_match(patterns, "gpt-4o-mini-2024-07-18"),
            Some("gpt-4o-mini-2024-07-18")
        );
        assert_eq!(best_match(patterns, "gpt-4"), None);
        assert_eq!(best_match(patterns, "o1-preview"), Some("o1*"));
        assert_eq!(best_match(["gpt-4o"], "gpt-4o-mini"), None);
    }

    #[test]
    fn a_pattern_has_one_star_at_its_end_and_a_prefix() {
        for ok in ["gpt-4o", "gpt-4o-mini*", "openai/gpt-4o", "a*"] {
            assert_eq!(pattern_problem(ok), None, "{ok}");
        }
        for bad in ["", "*", "gpt-*-mini", "gpt**", "a\nb", &"x".repeat(256)] {
            assert!(pattern_problem(bad).is_some(), "{bad:?}");
        }
    }
}
