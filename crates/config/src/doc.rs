//! The decoded declarative document, as the validator reads it.
//!
//! A `serde_json::Value` tree costs a hash map (with SipHash per key) and an owned `String` per
//! object key and string; a 10k-service config has ~500k nodes, and decoding plus freeing them
//! was the largest part of a `POST /config`. This tree borrows every string that needs no
//! unescaping straight from the input text and keeps object entries in a `Vec` in document
//! order (records have a handful of keys; the validator scans them linearly anyway). YAML
//! decodes into the same tree with owned strings.
//!
//! Semantics follow `serde_json::Value` with `preserve_order`, so validation reads the same
//! document either way: a repeated key keeps its first position and its last value. Error
//! reports and plugin configs leave the tree through [`Value::to_json`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// One node of a document; strings borrow from the input when they can.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value<'a> {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Value<'a>>),
    Object(Map<'a>),
}

/// An object: entries in document order, keys unique.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map<'a> {
    entries: Vec<(Cow<'a, str>, Value<'a>)>,
}

impl<'a> Map<'a> {
    pub fn new() -> Self {
        Map::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value<'a>> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`, keeping its position when it is already there.
    pub fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: Value<'a>) {
        let key = key.into();
        match self.get_mut(&key) {
            Some(slot) => *slot = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Removes `key`, keeping the order of the rest.
    pub fn remove(&mut self, key: &str) -> Option<Value<'a>> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value<'a>)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_ref())
    }

    /// Builds a map from decoded entries, applying `serde_json`'s rule for repeated keys.
    fn from_entries(mut entries: Vec<(Cow<'a, str>, Value<'a>)>) -> Self {
        let unique = if entries.len() <= 16 {
            entries
                .iter()
                .enumerate()
                .all(|(i, (k, _))| entries[..i].iter().all(|(p, _)| p != k))
        } else {
            let mut seen = std::collections::HashSet::with_capacity(entries.len());
            entries.iter().all(|(k, _)| seen.insert(k.as_ref()))
        };
        if unique {
            return Map { entries };
        }
        let mut map = Map {
            entries: Vec::with_capacity(entries.len()),
        };
        let mut at: std::collections::HashMap<String, usize> =
            std::collections::HashMap::with_capacity(entries.len());
        for (k, v) in entries.drain(..) {
            match at.get(k.as_ref()) {
                Some(&i) => map.entries[i].1 = v,
                None => {
                    at.insert(k.to_string(), map.entries.len());
                    map.entries.push((k, v));
                }
            }
        }
        map
    }

    /// The same object as a `serde_json` map (owned).
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_json()))
            .collect()
    }
}

impl<'a> Value<'a> {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }

    pub fn is_array(&self) -> bool {
        matches!(self, Value::Array(_))
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Value::String(_))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Value<'a>>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Map<'a>> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.as_object()?.get(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value<'a>> {
        match self {
            Value::Object(m) => m.get_mut(key),
            _ => None,
        }
    }

    /// The same value as a `serde_json::Value` (owned): for error reports and plugin configs.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Value::to_json).collect()),
            Value::Object(m) => serde_json::Value::Object(m.to_json()),
        }
    }

    /// Takes a `serde_json::Value` over (strings move, nothing is copied twice).
    pub fn from_json(v: serde_json::Value) -> Value<'static> {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n),
            serde_json::Value::String(s) => Value::String(Cow::Owned(s)),
            serde_json::Value::Array(a) => {
                Value::Array(a.into_iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(m) => Value::Object(Map {
                entries: m
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k), Value::from_json(v)))
                    .collect(),
            }),
        }
    }
}

/// Decodes JSON text, borrowing its strings.
pub fn from_json_str(text: &str) -> Result<Value<'_>, serde_json::Error> {
    serde_json::from_str(text)
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value<'de>, D::Error> {
        Deserialize::deserialize(d)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value<'de>, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value<'de>, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value<'de>, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value<'de>, E> {
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some((Key(k), v)) = map.next_entry::<Key<'de>, Value<'de>>()? {
            entries.push((k, v));
        }
        Ok(Value::Object(Map::from_entries(entries)))
    }
}

impl<'de> Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// An object key, borrowed when it needs no unescaping.
struct Key<'a>(Cow<'a, str>);

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(s)))
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree must read every document the way `serde_json::Value` (preserve_order) does.
    #[test]
    fn decodes_like_serde_json_value() {
        let cases = [
            r#"{"a": 1, "b": [true, null, "x\"y", 2.5, -3], "c": {"d": "é"}}"#,
            r#"{"k": 1, "j": 2, "k": 3}"#,
            r#"[{"a\u0041": "\u00e9"}, {}, []]"#,
            r#"18446744073709551615"#,
        ];
        for text in cases {
            let ours = from_json_str(text).expect("decodes");
            let theirs: serde_json::Value = serde_json::from_str(text).expect("decodes");
            assert_eq!(ours.to_json(), theirs, "{text}");
            assert_eq!(Value::from_json(theirs.clone()).to_json(), theirs, "{text}");
        }
        let big: String = (0..40).map(|i| format!("\"k{}\": {i},", i % 30)).collect();
        let text = format!("{{{}\"end\": 0}}", big);
        let ours = from_json_str(&text).expect("decodes");
        let theirs: serde_json::Value = serde_json::from_str(&text).expect("decodes");
        assert_eq!(ours.to_json(), theirs);
    }

    #[test]
    fn borrows_plain_strings() {
        let text = r#"{"name": "plain", "esc": "a\nb"}"#;
        let v = from_json_str(text).expect("decodes");
        assert!(matches!(
            v.get("name"),
            Some(Value::String(Cow::Borrowed("plain")))
        ));
        assert!(matches!(v.get("esc"), Some(Value::String(Cow::Owned(_)))));
    }
}
