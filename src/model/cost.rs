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

/// Nano-dollars (10⁻⁹ USD) in one USD: costs are whole nano-dollars, so sums are exact.
pub const NANOS_PER_USD: i64 = 1_000_000_000;

/// One price period, its prices in nano-dollars per million tokens (exact: a price has at most
/// 9 decimals).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Period {
    pub valid_from: OffsetDateTime,
    pub input: i64,
    pub output: i64,
    pub cached_input: Option<i64>,
    pub reasoning: Option<i64>,
}

impl Period {
    /// The period of these prices in USD per million tokens.
    pub fn from_usd(
        valid_from: OffsetDateTime,
        input: f64,
        output: f64,
        cached_input: Option<f64>,
        reasoning: Option<f64>,
    ) -> Period {
        let nanos = |usd: f64| (usd * NANOS_PER_USD as f64).round() as i64;
        Period {
            valid_from,
            input: nanos(input),
            output: nanos(output),
            cached_input: cached_input.map(nanos),
            reasoning: reasoning.map(nanos),
        }
    }
}

/// A step's token counts, as the cost rule reads them: `input` counts every input token, cached
/// ones included, and `output` every output token, reasoning ones included (OpenAI's usage and
/// the GenAI conventions count them so).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tokens {
    pub input: Option<i64>,
    pub output: Option<i64>,
    pub cached_input: Option<i64>,
    pub reasoning: Option<i64>,
}

impl Tokens {
    /// The counts of a step's columns.
    pub fn counted(
        input: Option<i32>,
        output: Option<i32>,
        cached_input: Option<i32>,
        reasoning: Option<i32>,
    ) -> Tokens {
        Tokens {
            input: input.map(i64::from),
            output: output.map(i64::from),
            cached_input: cached_input.map(i64::from),
            reasoning: reasoning.map(i64::from),
        }
    }
}

impl Period {
    /// What `tokens` cost at this period's prices, in nano-dollars (rounded half up), or none
    /// when the step counted no input and no output tokens. Cached input tokens (at most the
    /// input) are priced at `cached_input`, else as input; reasoning tokens (at most the
    /// output) at `reasoning`, else as output.
    pub fn cost_nanos(&self, tokens: Tokens) -> Option<i64> {
        if tokens.input.is_none() && tokens.output.is_none() {
            return None;
        }
        let input = i128::from(tokens.input.unwrap_or(0).max(0));
        let output = i128::from(tokens.output.unwrap_or(0).max(0));
        let cached = i128::from(tokens.cached_input.unwrap_or(0).max(0)).min(input);
        let reasoning = i128::from(tokens.reasoning.unwrap_or(0).max(0)).min(output);
        let price = |p: i64| i128::from(p);
        // Nano-dollars per million tokens times tokens: nano-dollars times a million.
        let scaled = (input - cached) * price(self.input)
            + cached * price(self.cached_input.unwrap_or(self.input))
            + (output - reasoning) * price(self.output)
            + reasoning * price(self.reasoning.unwrap_or(self.output));
        let nanos = (scaled + 500_000) / 1_000_000;
        i64::try_from(nanos).ok()
    }
}

/// The price table as the ingest role prices steps with: each model or pattern with its
/// periods, oldest first.
#[derive(Clone, Debug, Default)]
pub struct PriceBook {
    models: std::collections::BTreeMap<String, Vec<Period>>,
}

impl PriceBook {
    /// The book of `(model, period)` rows, in any order.
    pub fn new(rows: impl IntoIterator<Item = (String, Period)>) -> PriceBook {
        let mut models: std::collections::BTreeMap<String, Vec<Period>> = Default::default();
        for (model, period) in rows {
            models.entry(model).or_default().push(period);
        }
        for periods in models.values_mut() {
            periods.sort_by_key(|p| p.valid_from);
        }
        PriceBook { models }
    }

    /// The price of `model` at time `at`: the model's entry ([`best_match`]), then its period
    /// valid at `at`. None when no entry names the model, or its first period starts later:
    /// a shorter pattern's price is not used instead (it would be another model's price).
    pub fn price(&self, model: &str, at: OffsetDateTime) -> Option<&Period> {
        Self::valid_at(self.periods(model)?, at)
    }

    /// The periods of the entry that names `model` ([`best_match`]), oldest first.
    pub fn periods(&self, model: &str) -> Option<&[Period]> {
        let best = best_match(self.models.keys().map(String::as_str), model)?;
        Some(&self.models[best])
    }

    /// Of a model's `periods`, the one valid at `at`.
    pub fn valid_at(periods: &[Period], at: OffsetDateTime) -> Option<&Period> {
        periods.iter().rev().find(|p| p.valid_from <= at)
    }

    /// What a step of `model` that started at `at` cost, in nano-dollars; none without a price
    /// or without token counts.
    pub fn cost_nanos(&self, model: &str, at: OffsetDateTime, tokens: Tokens) -> Option<i64> {
        self.price(model, at)?.cost_nanos(tokens)
    }
}

#[cfg(test)]
mod cost_tests {
    use time::macros::datetime;

    use super::*;

    fn book() -> PriceBook {
        let period = |from, i, o, c, r| Period::from_usd(from, i, o, c, r);
        PriceBook::new([
            (
                "gpt-4o*".to_owned(),
                period(datetime!(2020-01-01 0:00 UTC), 2.5, 10.0, Some(1.25), None),
            ),
            (
                "gpt-4o-mini*".to_owned(),
                period(datetime!(2020-01-01 0:00 UTC), 0.15, 0.6, Some(0.075), None),
            ),
            // A price change: from June 2026 the mini model costs less.
            (
                "gpt-4o-mini*".to_owned(),
                period(datetime!(2026-06-01 0:00 UTC), 0.1, 0.4, None, None),
            ),
            (
                "o3*".to_owned(),
                period(
                    datetime!(2020-01-01 0:00 UTC),
                    2.0,
                    8.0,
                    Some(0.5),
                    Some(4.0),
                ),
            ),
            (
                "late-model*".to_owned(),
                period(datetime!(2026-01-01 0:00 UTC), 1.0, 1.0, None, None),
            ),
            (
                "late*".to_owned(),
                period(datetime!(2020-01-01 0:00 UTC), 9.0, 9.0, None, None),
            ),
        ])
    }

    fn tokens(input: i64, output: i64) -> Tokens {
        Tokens {
            input: Some(input),
            output: Some(output),
            ..Tokens::default()
        }
    }

    #[test]
    fn a_steps_cost_is_exact_across_a_price_change() {
        let book = book();
        let before = datetime!(2026-05-31 23:59:59 UTC);
        let after = datetime!(2026-06-01 0:00 UTC);
        // 1,234 input and 567 output tokens of gpt-4o-mini: 1234 × 0.15 + 567 × 0.60 per million
        // = 0.0001851 + 0.0003402 = 0.0005253 USD.
        let t = tokens(1234, 567);
        assert_eq!(
            book.cost_nanos("gpt-4o-mini-2024-07-18", before, t),
            Some(525_300)
        );
        // After the change: 1234 × 0.10 + 567 × 0.40 = 0.0001234 + 0.0002268 = 0.0003502 USD.
        assert_eq!(
            book.cost_nanos("gpt-4o-mini-2024-07-18", after, t),
            Some(350_200)
        );
        // A million output tokens of gpt-4o: exactly 10 USD.
        let m = tokens(0, 1_000_000);
        assert_eq!(
            book.cost_nanos("gpt-4o", after, m),
            Some(10 * NANOS_PER_USD)
        );
    }

    #[test]
    fn cached_and_reasoning_tokens_have_their_own_prices_or_their_kinds() {
        let book = book();
        let at = datetime!(2026-03-01 0:00 UTC);
        // o3: 10,000 input of which 4,000 cached, 2,000 output of which 1,500 reasoning:
        // 6000 × 2 + 4000 × 0.5 + 500 × 8 + 1500 × 4 = 12000 + 2000 + 4000 + 6000 = 24,000 per
        // million = 0.024 USD.
        let t = Tokens {
            input: Some(10_000),
            output: Some(2_000),
            cached_input: Some(4_000),
            reasoning: Some(1_500),
        };
        assert_eq!(book.cost_nanos("o3-2025-04-16", at, t), Some(24_000_000));
        // gpt-4o has no reasoning price: reasoning tokens are output tokens.
        // 6000 × 2.5 + 4000 × 1.25 + 2000 × 10 = 15000 + 5000 + 20000 = 40,000 per million.
        assert_eq!(book.cost_nanos("gpt-4o", at, t), Some(40_000_000));
        // More cached than input (a client's miscount) is capped at the input.
        let odd = Tokens {
            cached_input: Some(50_000),
            ..t
        };
        // 10000 × 0.5 + 500 × 8 + 1500 × 4 = 5000 + 4000 + 6000 = 15,000 per million.
        assert_eq!(book.cost_nanos("o3", at, odd), Some(15_000_000));
    }

    #[test]
    fn no_price_or_no_tokens_is_no_cost_never_a_zero() {
        let book = book();
        let at = datetime!(2026-03-01 0:00 UTC);
        assert_eq!(book.cost_nanos("llama-3.1-70b", at, tokens(10, 10)), None);
        assert_eq!(book.cost_nanos("gpt-4o", at, Tokens::default()), None);
        // Before the first period of its own entry, a model is not priced by a shorter pattern.
        let early = datetime!(2025-12-31 0:00 UTC);
        assert_eq!(book.cost_nanos("late-model-x", early, tokens(10, 10)), None);
        assert_eq!(
            book.cost_nanos("late-model-x", at, tokens(1_000_000, 0)),
            Some(NANOS_PER_USD)
        );
        assert_eq!(
            book.cost_nanos("late-other", early, tokens(1_000_000, 0)),
            Some(9 * NANOS_PER_USD)
        );
        // Zero tokens counted is a cost of zero (counted, and free).
        assert_eq!(book.cost_nanos("gpt-4o", at, tokens(0, 0)), Some(0));
    }

    #[test]
    fn a_price_of_nine_decimals_is_exact_in_nano_dollars() {
        let p = Period::from_usd(
            datetime!(2020-01-01 0:00 UTC),
            0.000000001,
            123.456789012,
            None,
            None,
        );
        assert_eq!((p.input, p.output), (1, 123_456_789_012));
    }
}

/// The sum of these costs (none for an unpriced step): none when none is priced, never a
/// made-up zero.
pub fn total(costs: impl IntoIterator<Item = Option<i64>>) -> Option<i64> {
    costs
        .into_iter()
        .flatten()
        .reduce(|a, b| a.saturating_add(b))
}

/// A cost in nano-dollars, answered in USD as an exact decimal (`0.000243`, never a binary
/// fraction's rounding): the stored columns' unit, and every answer's `cost_usd`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::BigInt)]
pub struct Usd(pub i64);

impl Usd {
    /// Its decimal text in USD, without trailing zeros (`1.5`, `0`, `-0.000000001`).
    pub fn decimal(self) -> String {
        let (sign, nanos) = match self.0 < 0 {
            true => ("-", self.0.unsigned_abs()),
            false => ("", self.0.unsigned_abs()),
        };
        let (whole, frac) = (nanos / NANOS_PER_USD as u64, nanos % NANOS_PER_USD as u64);
        match frac {
            0 => format!("{sign}{whole}"),
            _ => {
                let frac = format!("{frac:09}");
                format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
            }
        }
    }

    /// The nearest `f64` (charts, not sums).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_USD as f64
    }
}

impl serde::Serialize for Usd {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A JSON number written as its exact decimal.
        serde_json::value::RawValue::from_string(self.decimal())
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl diesel::deserialize::FromSql<diesel::sql_types::BigInt, diesel::pg::Pg> for Usd {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        <i64 as diesel::deserialize::FromSql<diesel::sql_types::BigInt, diesel::pg::Pg>>::from_sql(
            value,
        )
        .map(Usd)
    }
}

impl utoipa::PartialSchema for Usd {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Number)
            .description(Some("USD, an exact decimal of at most 9 places"))
            .into()
    }
}

impl utoipa::ToSchema for Usd {}

#[cfg(test)]
mod usd_tests {
    use super::*;

    #[test]
    fn a_cost_is_answered_as_its_exact_decimal() {
        for (nanos, text) in [
            (0, "0"),
            (1, "0.000000001"),
            (243_000, "0.000243"),
            (1_500_000_000, "1.5"),
            (12_000_000_000, "12"),
            (-1, "-0.000000001"),
            (9_007_199_254_740_993, "9007199.254740993"),
        ] {
            assert_eq!(Usd(nanos).decimal(), text);
            assert_eq!(serde_json::to_string(&Usd(nanos)).unwrap(), text);
        }
    }
}
