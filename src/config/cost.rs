//! The `[cost]` section (docs/cost.md): model prices the ingest role puts into the price table
//! when it starts, as `PUT /v1/model-prices/{model}` would, marked `config`.

use serde::{Deserialize, Serialize};

use crate::model::cost::{MAX_PER_MTOK, NewPrice, pattern_problem};
use crate::model::timestamp;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostConfig {
    /// `[[cost.prices]]`: one price period each.
    pub prices: Vec<PriceConfig>,
}

/// A price period. `valid_from` is required here: a period "from now" would be a new one at
/// every start.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    pub model: String,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    pub cached_input_per_mtok: Option<f64>,
    pub reasoning_per_mtok: Option<f64>,
    /// RFC 3339.
    pub valid_from: String,
}

impl CostConfig {
    /// Every price as a period to put, or what is wrong with the first bad one (named by its
    /// place and model).
    pub fn new_prices(&self) -> Result<Vec<NewPrice>, String> {
        self.prices
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let at = format!("cost.prices[{i}] ({})", p.model);
                if let Some(problem) = pattern_problem(&p.model) {
                    return Err(format!("{at}: {problem}"));
                }
                let prices = [
                    Some(p.input_per_mtok),
                    Some(p.output_per_mtok),
                    p.cached_input_per_mtok,
                    p.reasoning_per_mtok,
                ];
                if prices
                    .into_iter()
                    .flatten()
                    .any(|x| !(0.0..=MAX_PER_MTOK).contains(&x))
                {
                    return Err(format!(
                        "{at}: a price per million tokens is from 0 to {MAX_PER_MTOK}"
                    ));
                }
                let valid_from = timestamp::parse(&p.valid_from)
                    .ok_or_else(|| format!("{at}: valid_from is not an RFC 3339 time"))?;
                Ok(NewPrice {
                    model: p.model.clone(),
                    input_per_mtok: p.input_per_mtok,
                    output_per_mtok: p.output_per_mtok,
                    cached_input_per_mtok: p.cached_input_per_mtok,
                    reasoning_per_mtok: p.reasoning_per_mtok,
                    valid_from: Some(valid_from),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(model: &str, input: f64, valid_from: &str) -> PriceConfig {
        PriceConfig {
            model: model.into(),
            input_per_mtok: input,
            output_per_mtok: 1.0,
            cached_input_per_mtok: None,
            reasoning_per_mtok: None,
            valid_from: valid_from.into(),
        }
    }

    #[test]
    fn a_bad_configured_price_is_named_by_its_place_and_model() {
        let at = "2026-01-01T00:00:00Z";
        let cases = [
            (
                price("gpt-*-x", 1.0, at),
                "cost.prices[1] (gpt-*-x): A pattern has one '*'",
            ),
            (
                price("m", -1.0, at),
                "cost.prices[1] (m): a price per million tokens",
            ),
            (price("m", 1.0, "soon"), "cost.prices[1] (m): valid_from"),
        ];
        for (bad, want) in cases {
            let cfg = CostConfig {
                prices: vec![price("ok*", 1.0, at), bad],
            };
            let err = cfg.new_prices().unwrap_err();
            assert!(err.starts_with(want), "{err}");
        }
        let cfg = CostConfig {
            prices: vec![price("ok*", 0.5, at)],
        };
        let prices = cfg.new_prices().unwrap();
        assert_eq!(prices[0].input_per_mtok, 0.5);
        assert!(prices[0].valid_from.is_some());
    }
}
