//! The field validators: one JSON field of an object into a Rust value, or a FastAPI-shaped
//! problem at its location.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use super::rules::Rules;
use crate::model::FieldError;
use crate::model::privacy::Scan;
use crate::model::timestamp;

/// Validation of one run: the problems found so far, where the run sits, what the privacy scan
/// found, and the limits.
pub(super) struct Validator {
    pub(super) errors: Vec<FieldError>,
    pub(super) loc: Vec<Value>,
    pub(super) scan: Scan,
    pub(super) rules: Rules,
}

/// An object under validation: where it sits, and its fields not taken yet.
pub(super) struct Object<'p> {
    path: &'p [Value],
    fields: Fields,
}

/// An object's fields: a map of them, or the known ones decoded into [`Slots`].
enum Fields {
    Map(Map<String, Value>),
    Slots(Box<Slots>),
}

impl<'p> Object<'p> {
    /// The object of `fields` at `path`.
    pub(super) fn new(path: &'p [Value], fields: Map<String, Value>) -> Object<'p> {
        Object {
            path,
            fields: Fields::Map(fields),
        }
    }

    /// The object of the fields decoded into `slots`, at `path`.
    pub(super) fn slots(path: &'p [Value], slots: Box<Slots>) -> Object<'p> {
        Object {
            path,
            fields: Fields::Slots(slots),
        }
    }

    /// Where its field `key` sits.
    pub(super) fn at(&self, key: &str) -> Vec<Value> {
        [self.path, &[Value::from(key)]].concat()
    }

    /// Where its field `key` sits, made into a location only when needed.
    pub(super) fn field<'k>(&self, key: &'k str) -> Field<'k>
    where
        'p: 'k,
    {
        Field {
            path: self.path,
            key,
        }
    }

    /// The fields not taken yet, each where it sits, in key order (of [`Slots`], the known
    /// fields only: they keep no other).
    pub(super) fn rest(&self) -> Vec<Vec<Value>> {
        match &self.fields {
            Fields::Map(map) => map.keys().map(|key| self.at(key)).collect(),
            Fields::Slots(slots) => {
                let mut keys: Vec<&str> = (slots.names.iter().zip(&slots.values))
                    .filter(|(_, value)| value.is_some())
                    .map(|(name, _)| *name)
                    .collect();
                keys.sort_unstable();
                keys.into_iter().map(|key| self.at(key)).collect()
            }
        }
    }

    /// Takes its field `key` out: where it sits, and its value (`None` when absent or null).
    pub(super) fn take<'k>(&mut self, key: &'k str) -> (Field<'k>, Option<Value>)
    where
        'p: 'k,
    {
        let value = match &mut self.fields {
            Fields::Map(map) => map.remove(key),
            Fields::Slots(slots) => slots.take(key),
        };
        (self.field(key), value.filter(|v| !v.is_null()))
    }
}

/// The most fields [`Slots`] hold.
const MAX_SLOTS: usize = 8;

/// An object's known fields, decoded straight into their places: no map of keys is built for
/// it (`super::raw`: each of a run's decisions and quality signals). The fields it does not
/// know are left out, as the validator never reads them.
#[derive(Clone, Debug)]
pub struct Slots {
    names: &'static [&'static str],
    values: [Option<Value>; MAX_SLOTS],
}

impl Slots {
    /// No value yet for any of the fields `names` (at most [`MAX_SLOTS`]).
    pub(super) fn new(names: &'static [&'static str]) -> Slots {
        assert!(names.len() <= MAX_SLOTS, "at most {MAX_SLOTS} slots");
        Slots {
            names,
            values: [const { None }; MAX_SLOTS],
        }
    }

    /// Sets the field at `place` (a later one of the same key replaces it, as in a map).
    pub(super) fn set(&mut self, place: usize, value: Value) {
        self.values[place] = Some(value);
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        let place = self.names.iter().position(|name| *name == key);
        debug_assert!(place.is_some(), "{key} is not one of {:?}", self.names);
        self.values[place?].take()
    }
}

/// Where a field sits: its object's path and its key. It is made into a location (a `Vec` of
/// values, allocated) only for an error or a finding: most fields have none, and a run has
/// hundreds of fields.
#[derive(Clone, Copy)]
pub(super) struct Field<'a> {
    path: &'a [Value],
    key: &'a str,
}

impl<'a> Field<'a> {
    /// Its key.
    pub(super) fn key(&self) -> &'a str {
        self.key
    }
}

/// A location: what an error's `loc` is made from.
pub(super) trait Loc {
    /// The location, from the object's path on.
    fn loc(&self) -> Vec<Value>;
}

impl Loc for Field<'_> {
    fn loc(&self) -> Vec<Value> {
        let mut loc = Vec::with_capacity(self.path.len() + 1);
        loc.extend_from_slice(self.path);
        loc.push(Value::from(self.key));
        loc
    }
}

/// Where an item of a list sits: the list's place and the item's index, made into a location
/// only when needed.
#[derive(Clone, Copy)]
pub(super) struct Item<'a> {
    pub(super) list: Field<'a>,
    pub(super) index: usize,
}

impl Loc for Item<'_> {
    fn loc(&self) -> Vec<Value> {
        let mut loc = self.list.loc();
        loc.push(Value::from(self.index));
        loc
    }
}

impl Loc for [Value] {
    fn loc(&self) -> Vec<Value> {
        self.to_vec()
    }
}

impl Loc for Vec<Value> {
    fn loc(&self) -> Vec<Value> {
        self.clone()
    }
}

impl<const N: usize> Loc for [Value; N] {
    fn loc(&self) -> Vec<Value> {
        self.to_vec()
    }
}

/// What a string field must be: its length in characters, and whether it must be there.
#[derive(Clone, Copy)]
pub(super) struct Text {
    pub(super) min: usize,
    pub(super) max: usize,
    pub(super) required: bool,
}

impl Text {
    pub(super) fn required(min: usize, max: usize) -> Text {
        Text {
            min,
            max,
            required: true,
        }
    }

    /// Absent (or null), or `min` to `max` characters.
    pub(super) fn optional_between(min: usize, max: usize) -> Text {
        Text {
            min,
            max,
            required: false,
        }
    }

    /// Absent, empty or up to `max` characters.
    pub(super) fn optional(max: usize) -> Text {
        Text {
            min: 0,
            max,
            required: false,
        }
    }
}

fn quoted_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

impl Validator {
    pub(super) fn at(&self, path: &(impl Loc + ?Sized)) -> Vec<Value> {
        let mut loc = self.loc.clone();
        loc.extend(path.loc());
        loc
    }

    pub(super) fn error(&mut self, path: &(impl Loc + ?Sized), kind: &str, msg: impl Into<String>) {
        let loc = self.at(path);
        self.errors.push(FieldError::new(kind, loc, msg));
    }

    /// Records a problem at `path` and gives no value: what an invalid field reads as.
    pub(super) fn invalid<T>(
        &mut self,
        path: &(impl Loc + ?Sized),
        kind: &str,
        msg: impl Into<String>,
    ) -> Option<T> {
        self.error(path, kind, msg);
        None
    }

    pub(super) fn object<'p>(&mut self, value: Value, path: &'p [Value]) -> Option<Object<'p>> {
        match value {
            Value::Object(fields) => Some(Object::new(path, fields)),
            _ => self.invalid(
                path,
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
            ),
        }
    }

    /// A name, code or id (an agent id, a version, an environment, a step name, a failure code,
    /// a session or user id):
    /// a string without control characters, which would forge log lines and terminal output.
    pub(super) fn identifier(&mut self, obj: &mut Object, key: &str, text: Text) -> Option<String> {
        let (field, value) = obj.take(key);
        self.identifier_at(&field, value, text)
    }

    /// [`Validator::identifier`] of `value`, which sits at `at`.
    pub(super) fn identifier_at(
        &mut self,
        at: &impl Loc,
        value: Option<Value>,
        text: Text,
    ) -> Option<String> {
        let mut value = self.string_at(at, value, text)?;
        if value.chars().any(char::is_control) {
            self.error(
                at,
                "string_control_character",
                "String should not contain control characters (newlines, tabs, escapes)",
            );
            return None;
        }
        // Names and codes are free text too: a credential in one is refused or redacted.
        let base = &self.loc;
        self.scan.text_at(&mut value, self.rules.privacy, || {
            [base.clone(), at.loc()].concat()
        });
        if value.chars().count() > text.max {
            // (`[REDACTED]` is longer than the shortest secret it replaces.)
            value = value.chars().take(text.max).collect();
        }
        Some(value)
    }

    /// A string field: `None` when absent (an error if required) or invalid.
    pub(super) fn string(&mut self, obj: &mut Object, key: &str, text: Text) -> Option<String> {
        let (field, value) = obj.take(key);
        self.string_at(&field, value, text)
    }

    /// [`Validator::string`] of `value`, which sits at `at`.
    fn string_at(&mut self, at: &impl Loc, value: Option<Value>, text: Text) -> Option<String> {
        let Text { min, max, required } = text;
        match value {
            None => {
                if required {
                    self.error(at, "missing", "Field required");
                }
                None
            }
            Some(Value::String(s)) => {
                let len = s.chars().count();
                if s.contains('\0') {
                    self.invalid(
                        at,
                        "string_nul",
                        "String should not contain the NUL character (\\u0000)",
                    )
                } else if len < min {
                    self.invalid(
                        at,
                        "string_too_short",
                        format!(
                            "String should have at least {min} character{}",
                            if min == 1 { "" } else { "s" }
                        ),
                    )
                } else if len > max {
                    self.invalid(
                        at,
                        "string_too_long",
                        format!("String should have at most {max} characters"),
                    )
                } else {
                    Some(s)
                }
            }
            Some(_) => self.invalid(at, "string_type", "Input should be a valid string"),
        }
    }

    pub(super) fn uuid(&mut self, obj: &mut Object, key: &str) -> Option<Option<Uuid>> {
        let (field, value) = obj.take(key);
        match value {
            None => Some(None),
            Some(Value::String(s)) => match Uuid::parse_str(&s) {
                Ok(id) => Some(Some(id)),
                Err(_) => self.invalid(&field, "uuid_parsing", "Input should be a valid UUID"),
            },
            Some(_) => self.invalid(&field, "uuid_type", "UUID input should be a string"),
        }
    }

    /// A required integer in `0..=i32::MAX`; numeric strings and integral floats are accepted.
    pub(super) fn non_negative_int(&mut self, obj: &mut Object, key: &str) -> Option<i32> {
        let (field, value) = obj.take(key);
        let number = match value {
            None => {
                self.error(&field, "missing", "Field required");
                return None;
            }
            Some(Value::Number(n)) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1e18)
                    .map(|f| f as i64)
            }),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(_) => None,
        };
        match number {
            None => self.invalid(&field, "int_parsing", "Input should be a valid integer"),
            Some(n) if n < 0 => self.invalid(
                &field,
                "greater_than_equal",
                "Input should be greater than or equal to 0",
            ),
            Some(n) => match i32::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => self.invalid(
                    &field,
                    "less_than_equal",
                    format!("Input should be less than or equal to {}", i32::MAX),
                ),
            },
        }
    }

    pub(super) fn datetime(
        &mut self,
        obj: &mut Object,
        key: &str,
        required: bool,
    ) -> Option<Option<OffsetDateTime>> {
        let (field, value) = obj.take(key);
        let parsed = match value {
            None => {
                if required {
                    self.error(&field, "missing", "Field required");
                    return None;
                }
                return Some(None);
            }
            Some(Value::String(s)) => timestamp::parse(&s),
            Some(Value::Number(n)) => n
                .as_f64()
                .and_then(|secs| {
                    OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9) as i128).ok()
                })
                .and_then(timestamp::normalize),
            Some(_) => None,
        };
        match parsed {
            Some(t) => Some(Some(t)),
            None => self.invalid(
                &field,
                "datetime_parsing",
                "Input should be a valid datetime (RFC 3339, or ISO 8601 read as UTC)",
            ),
        }
    }

    pub(super) fn choice<T>(
        &mut self,
        obj: &mut Object,
        key: &str,
        values: &[&str],
        parse: fn(&str) -> Option<T>,
    ) -> Option<T> {
        let (field, value) = obj.take(key);
        match value {
            None => self.invalid(&field, "missing", "Field required"),
            Some(Value::String(s)) if parse(&s).is_some() => parse(&s),
            Some(_) => self.invalid(
                &field,
                "enum",
                format!("Input should be {}", quoted_list(values)),
            ),
        }
    }

    pub(super) fn list(&mut self, obj: &mut Object, key: &str) -> Vec<Value> {
        let (field, value) = obj.take(key);
        match value {
            None => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.error(&field, "list_type", "Input should be a valid list");
                Vec::new()
            }
        }
    }
}
