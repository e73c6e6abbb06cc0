//! The shape of a JSON value, measured without building anything: nesting depth, NUL
//! characters, and its size as compact JSON. The OTLP mapping uses them on attributes too.

use serde::Serialize;
use serde_json::Value;

/// What one walk over a metadata value finds: how deep it nests (a scalar is 0, `{}` is 1) and
/// whether any key or string holds a NUL character. No allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Shape {
    pub depth: usize,
    pub nul: bool,
}

impl Shape {
    pub fn of(value: &Value) -> Shape {
        let inner = |items: &mut dyn Iterator<Item = (Option<&String>, &Value)>| {
            let mut shape = Shape::default();
            for (key, item) in items {
                let child = Shape::of(item);
                shape.depth = shape.depth.max(child.depth);
                shape.nul |= child.nul || key.is_some_and(|k| k.contains('\0'));
            }
            Shape {
                depth: shape.depth + 1,
                nul: shape.nul,
            }
        };
        match value {
            Value::String(s) => Shape {
                depth: 0,
                nul: s.contains('\0'),
            },
            Value::Array(items) => inner(&mut items.iter().map(|v| (None, v))),
            Value::Object(map) => inner(&mut map.iter().map(|(k, v)| (Some(k), v))),
            _ => Shape::default(),
        }
    }
}

/// The size of `value` as compact JSON, in bytes: counted, not built.
pub fn json_size<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, and a `Value` always serializes.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// The size of `value` as compact JSON when it is over `max` bytes.
pub fn json_size_over(value: &Value, max: usize) -> Option<usize> {
    Some(json_size(value)).filter(|&n| n > max)
}

/// The location of the first NUL character in any key or string of `value`.
pub(super) fn find_nul(value: &Value, path: &mut Vec<Value>) -> Option<Vec<Value>> {
    match value {
        Value::String(s) if s.contains('\0') => Some(path.clone()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            path.push(Value::from(i));
            let found = find_nul(item, path);
            path.pop();
            found
        }),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            path.push(Value::from(key.as_str()));
            let found = if key.contains('\0') {
                Some(path.clone())
            } else {
                find_nul(item, path)
            };
            path.pop();
            found
        }),
        _ => None,
    }
}
