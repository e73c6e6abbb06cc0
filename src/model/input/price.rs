//! The body of `PUT /v1/model-prices/{model}` (docs/cost.md): prices per million tokens in USD,
//! and from when they apply.

use serde_json::Value;

use super::Rules;
use super::fields::{Object, Validator};
use crate::model::FieldError;
use crate::model::cost::{MAX_PER_MTOK, NewPrice, pattern_problem};

/// Validates a price period for `model` (the path's, already decoded); every problem at its
/// place (`["path", "model"]`, `["body", …]`).
pub fn parse_price(model: &str, value: Value, rules: &Rules) -> Result<NewPrice, Vec<FieldError>> {
    let mut v = Validator::new(Vec::new(), rules);
    if let Some(problem) = pattern_problem(model) {
        v.error(
            &[Value::from("path"), Value::from("model")],
            "value_error",
            problem,
        );
    }
    let price = v.price(value);
    let (errors, _) = v.finish();
    match price {
        Some(p) if errors.is_empty() => Ok(NewPrice {
            model: model.to_owned(),
            ..p
        }),
        _ => Err(errors),
    }
}

impl Validator {
    fn price(&mut self, value: Value) -> Option<NewPrice> {
        let body = [Value::from("body")];
        let mut obj = self.object(value, &body)?;
        let input = self.per_mtok(&mut obj, "input_per_mtok", true);
        let output = self.per_mtok(&mut obj, "output_per_mtok", true);
        let cached = self.per_mtok(&mut obj, "cached_input_per_mtok", false);
        let reasoning = self.per_mtok(&mut obj, "reasoning_per_mtok", false);
        let valid_from = self.datetime(&mut obj, "valid_from", false);
        let (field, currency) = obj.take("currency");
        match currency {
            None => {}
            Some(Value::String(c)) if c == "USD" => {}
            Some(_) => self.error(&field, "literal_error", "Input should be 'USD'"),
        }
        // A misspelt price is refused, not left out of what is stored.
        for field in obj.rest() {
            self.error(&field, "extra_forbidden", "Extra inputs are not permitted");
        }
        Some(NewPrice {
            model: String::new(),
            input_per_mtok: input??,
            output_per_mtok: output??,
            cached_input_per_mtok: cached?,
            reasoning_per_mtok: reasoning?,
            valid_from: valid_from?,
        })
    }

    /// A price per million tokens: a number from 0 to [`MAX_PER_MTOK`]; absent or null is none,
    /// or an error when `required`.
    fn per_mtok(&mut self, obj: &mut Object, key: &str, required: bool) -> Option<Option<f64>> {
        let (field, value) = obj.take(key);
        let number = match value {
            None if required => return self.invalid(&field, "missing", "Field required"),
            None => return Some(None),
            Some(Value::Number(n)) => n.as_f64().filter(|f| f.is_finite()),
            Some(_) => None,
        };
        match number {
            None => self.invalid(&field, "float_type", "Input should be a valid number"),
            Some(n) if n < 0.0 => self.invalid(
                &field,
                "greater_than_equal",
                "Input should be greater than or equal to 0",
            ),
            Some(n) if n > MAX_PER_MTOK => self.invalid(
                &field,
                "less_than_equal",
                format!("Input should be at most {MAX_PER_MTOK} (USD per million tokens)"),
            ),
            Some(n) => Some(Some(n)),
        }
    }
}
