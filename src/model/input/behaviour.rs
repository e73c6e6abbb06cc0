//! The rules of a run's decisions and quality signals (docs/behaviour.md): the original's fields,
//! bounds and enumerations, a `step_id` one of the run's steps, and flat, bounded metadata under
//! the privacy rules.

use std::collections::HashSet;

use serde_json::{Map, Value};
use uuid::Uuid;

use super::fields::{Field, Item, Loc, Object, Text, Validator};
use super::raw::{RawItem, RawItems};
use super::shape::json_size_over;
use crate::model::behaviour::{
    BLOCKED_METADATA_KEYS, DECISION_TYPES, MAX_METADATA_STRING_CHARS, NewDecision, NewSignal,
    SIGNAL_TYPES, code_of, kind_of,
};

/// The most candidates a decision may list, and the longest one, in characters.
const MAX_CANDIDATES: usize = 100;
const MAX_CANDIDATE_CHARS: usize = 200;

/// A type and its codes, as [`DECISION_TYPES`] and [`SIGNAL_TYPES`] list them.
type Kinds = &'static [(&'static str, &'static [&'static str])];

impl Validator {
    /// The items of a run's list at `field` (at most as many as steps may be), each validated
    /// by `item` at its place.
    pub(super) fn items<T>(
        &mut self,
        field: &Field,
        raw: Option<RawItems>,
        step_ids: &HashSet<Uuid>,
        item: fn(&mut Validator, RawItem, &[Value], &HashSet<Uuid>) -> Option<T>,
    ) -> Option<Vec<T>> {
        let raw: Vec<RawItem> = match raw {
            None | Some(RawItems::Other(Value::Null)) => Vec::new(),
            Some(RawItems::List(items)) => items,
            Some(RawItems::Other(Value::Array(items))) => {
                items.into_iter().map(RawItem::Other).collect()
            }
            Some(RawItems::Other(_)) => {
                return self.invalid(field, "list_type", "Input should be a valid list");
            }
        };
        if raw.len() > self.rules.max_steps {
            return self.invalid(
                field,
                "too_long",
                format!(
                    "List should have at most {} items (ingest.max_steps_per_run), not {}",
                    self.rules.max_steps,
                    raw.len()
                ),
            );
        }
        let key = field.key();
        let items: Vec<Option<T>> = raw
            .into_iter()
            .enumerate()
            .map(|(i, raw)| item(self, raw, &[Value::from(key), Value::from(i)], step_ids))
            .collect();
        items.into_iter().collect()
    }

    /// An item's object: its decoded fields, or the object it is.
    fn item_object<'p>(&mut self, item: RawItem, path: &'p [Value]) -> Option<Object<'p>> {
        match item {
            RawItem::Fields(slots) => Some(Object::slots(path, slots)),
            RawItem::Other(value) => self.object(value, path),
        }
    }

    pub(super) fn decision(
        &mut self,
        item: RawItem,
        path: &[Value],
        step_ids: &HashSet<Uuid>,
    ) -> Option<NewDecision> {
        let mut obj = self.item_object(item, path)?;
        let decision_id = self.uuid(&mut obj, "decision_id");
        let step_id = self.step_of_run(&mut obj, step_ids);
        let (decision_type, reason_code) =
            self.kind_and_code(&mut obj, DECISION_TYPES, "decision_type", "reason_code");
        let selected = self.identifier(&mut obj, "selected", Text::required(1, 200));
        let candidates = self.candidates(&mut obj);
        let confidence = self.unit_interval(&mut obj, "confidence");
        let mut metadata = self.behaviour_metadata(&mut obj);
        if let (Some(Value::Object(map)), Some(Some(candidates))) = (metadata.as_mut(), &candidates)
            && !candidates.is_empty()
        {
            // As the original: a non-empty list is kept in the metadata, over any such key.
            map.insert("candidates".into(), Value::from(candidates.clone()));
        }
        Some(NewDecision {
            decision_id: decision_id?.unwrap_or_else(Uuid::now_v7),
            step_id: step_id?,
            decision_type: decision_type?,
            selected: selected?,
            reason_code: reason_code?,
            confidence: confidence?,
            metadata: metadata?,
        })
    }

    pub(super) fn signal(
        &mut self,
        item: RawItem,
        path: &[Value],
        step_ids: &HashSet<Uuid>,
    ) -> Option<NewSignal> {
        let mut obj = self.item_object(item, path)?;
        let signal_id = self.uuid(&mut obj, "signal_id");
        let step_id = self.step_of_run(&mut obj, step_ids);
        let (signal_type, signal_code) =
            self.kind_and_code(&mut obj, SIGNAL_TYPES, "signal_type", "signal_code");
        let value = self.boolean(&mut obj, "value", None);
        let weight = self.unit_interval(&mut obj, "weight");
        let metadata = self.behaviour_metadata(&mut obj);
        Some(NewSignal {
            signal_id: signal_id?.unwrap_or_else(Uuid::now_v7),
            step_id: step_id?,
            signal_type: signal_type?,
            signal_code: signal_code?,
            value: value?,
            weight: weight?,
            metadata: metadata?,
        })
    }

    /// A `step_id`: absent, or one of `step_ids` (the run's steps).
    pub(super) fn step_of_run(
        &mut self,
        obj: &mut Object,
        step_ids: &HashSet<Uuid>,
    ) -> Option<Option<Uuid>> {
        let step_id = self.uuid(obj, "step_id")?;
        if let Some(id) = step_id
            && !step_ids.contains(&id)
        {
            return self.invalid(
                &obj.at("step_id"),
                "value_error",
                "step_id is not a step of this run",
            );
        }
        Some(step_id)
    }

    /// A type of `kinds` (field `type_key`) and a code valid for it (field `code_key`); the
    /// code is checked only when the type is valid, as the original does.
    fn kind_and_code(
        &mut self,
        obj: &mut Object,
        kinds: Kinds,
        type_key: &str,
        code_key: &str,
    ) -> (Option<&'static str>, Option<&'static str>) {
        let kind =
            self.string(obj, type_key, Text::required(1, 100))
                .and_then(|name| match kind_of(kinds, &name) {
                    Some(kind) => Some(kind),
                    None => {
                        let names: Vec<&str> = kinds.iter().map(|(name, _)| *name).collect();
                        self.invalid(
                            &obj.at(type_key),
                            "enum",
                            format!("Input should be one of: {}", names.join(", ")),
                        )
                    }
                });
        let code = self.string(obj, code_key, Text::required(1, 100));
        let Some((name, codes)) = kind else {
            return (None, None);
        };
        let code = code.and_then(|code| match code_of(codes, &code) {
            Some(code) => Some(code),
            None => self.invalid(
                &obj.at(code_key),
                "value_error",
                format!(
                    "Invalid {code_key} for {type_key} '{name}'. Valid codes: [{}]",
                    codes.join(", ")
                ),
            ),
        });
        (Some(name), code)
    }

    /// `candidates`: absent, or a list of names (kept only when not empty).
    fn candidates(&mut self, obj: &mut Object) -> Option<Option<Vec<String>>> {
        let (field, value) = obj.take("candidates");
        let items = match value {
            None => return Some(None),
            Some(Value::Array(items)) => items,
            Some(_) => return self.invalid(&field, "list_type", "Input should be a valid list"),
        };
        if items.len() > MAX_CANDIDATES {
            return self.invalid(
                &field,
                "too_long",
                format!("List should have at most {MAX_CANDIDATES} items"),
            );
        }
        let mut names = Vec::with_capacity(items.len());
        let mut all_valid = true;
        for (index, item) in items.into_iter().enumerate() {
            let at = Item { list: field, index };
            let text = Text::required(1, MAX_CANDIDATE_CHARS);
            // (A null item is no string, as pydantic says of a `None` in a `list[str]`.)
            match self.identifier_at(&at, Some(item), text) {
                Some(name) => names.push(name),
                None => all_valid = false,
            }
        }
        all_valid.then_some(Some(names))
    }

    /// A number from 0.0 to 1.0 inclusive, or absent.
    fn unit_interval(&mut self, obj: &mut Object, key: &str) -> Option<Option<f32>> {
        let (field, value) = obj.take(key);
        let number = match value {
            None => return Some(None),
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
            Some(_) => None,
        };
        match number {
            None => self.invalid(&field, "float_parsing", "Input should be a valid number"),
            Some(n) if n < 0.0 => self.invalid(
                &field,
                "greater_than_equal",
                "Input should be greater than or equal to 0",
            ),
            Some(n) if n > 1.0 => self.invalid(
                &field,
                "less_than_equal",
                "Input should be less than or equal to 1",
            ),
            Some(n) => Some(Some(n as f32)),
        }
    }

    /// A boolean (`default` when absent, or an error without one); as pydantic, also 0 and 1 and
    /// the words it reads as true or false.
    pub(super) fn boolean(
        &mut self,
        obj: &mut Object,
        key: &str,
        default: Option<bool>,
    ) -> Option<bool> {
        let (field, value) = obj.take(key);
        let parsed = match value {
            None if default.is_some() => return default,
            None => return self.invalid(&field, "missing", "Field required"),
            Some(Value::Bool(b)) => Some(b),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            Some(Value::String(s)) => match s.to_lowercase().as_str() {
                "true" | "1" | "yes" | "y" | "on" | "t" => Some(true),
                "false" | "0" | "no" | "n" | "off" | "f" => Some(false),
                _ => None,
            },
            Some(_) => None,
        };
        parsed.or_else(|| self.invalid(&field, "bool_parsing", "Input should be a valid boolean"))
    }

    /// A decision's or signal's `metadata`: an object (absent or null: `{}`) of flat values
    /// (strings of at most 100 characters, numbers, booleans, null), within the metadata size
    /// limit, and under the privacy rules with the original's blocked keys.
    fn behaviour_metadata(&mut self, obj: &mut Object) -> Option<Value> {
        let (field, value) = obj.take("metadata");
        let mut meta = match value {
            None => return Some(Value::Object(Map::new())),
            Some(meta @ Value::Object(_)) => meta,
            Some(_) => {
                return self.invalid(&field, "dict_type", "Input should be a valid dictionary");
            }
        };
        let mut valid = true;
        if let Value::Object(map) = &meta {
            for (key, value) in map {
                // Where the entry sits: made only for an error.
                let at = || [field.loc(), vec![Value::from(key.as_str())]].concat();
                match value {
                    Value::String(s) if s.contains('\0') => {
                        valid = false;
                        self.error(
                            &at(),
                            "string_nul",
                            "String should not contain the NUL character (\\u0000)",
                        );
                    }
                    Value::String(s) if s.chars().count() > MAX_METADATA_STRING_CHARS => {
                        valid = false;
                        self.error(
                            &at(),
                            "string_too_long",
                            format!(
                                "String should have at most {MAX_METADATA_STRING_CHARS} characters"
                            ),
                        );
                    }
                    Value::Array(_) | Value::Object(_) => {
                        valid = false;
                        self.error(
                            &at(),
                            "value_error",
                            "Metadata values must be strings, numbers, booleans or null",
                        );
                    }
                    _ => {}
                }
                if key.contains('\0') {
                    valid = false;
                    self.error(
                        &at(),
                        "string_nul",
                        "Keys should not contain the NUL character (\\u0000)",
                    );
                }
            }
        }
        if valid && let Some(bytes) = json_size_over(&meta, self.rules.max_metadata_bytes) {
            valid = false;
            self.error(
                &field,
                "metadata_too_large",
                format!(
                    "Metadata should take at most {} bytes as JSON (ingest.max_metadata_bytes), not {bytes}",
                    self.rules.max_metadata_bytes
                ),
            );
        }
        if !valid {
            return None;
        }
        if meta.as_object().is_some_and(|m| m.is_empty()) {
            // (Nothing to scan: most items send no metadata.)
            return Some(meta);
        }
        let mut loc = self.at(&field);
        self.scan.behaviour_metadata(
            &mut meta,
            self.rules.privacy,
            &mut loc,
            BLOCKED_METADATA_KEYS,
        );
        Some(meta)
    }
}
