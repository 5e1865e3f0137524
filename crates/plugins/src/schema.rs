//! A small declarative subset of Kong's schema engine (`kong/db/schema/init.lua`), enough for
//! the plugin `config` records: field types, `required`, defaults, `one_of`, `gt`, `between`,
//! strings non-empty by default (`len_min = 1`), unknown fields refused — with Kong's messages.
//!
//! Why not serde alone: serde stops at the first error and words it its own way, while Kong
//! reports every bad field at once under its path. So a plugin's record is first checked and
//! normalised here (defaults filled in), and only then deserialised into its typed struct,
//! which can no longer fail on input the schema accepted.

use serde_json::{Map, Value};

use crate::error::{FieldError, Seg};

/// Field types used by the bundled plugins' config records.
#[derive(Clone, Copy)]
pub(crate) enum Ty {
    Bool,
    /// Non-empty string (Kong's default `len_min = 1`).
    Str,
    /// String that may be empty (`len_min = 0`).
    StrOrEmpty,
    Int,
    Num,
    /// Array of non-empty strings.
    StrArray,
    Record(&'static [F]),
    /// Map of string keys to non-empty string values (`type = "map"`); `check` applies to
    /// each key.
    StrMap,
}

/// A value check returning Kong's message on failure.
pub(crate) type Check = fn(&Value) -> Result<(), String>;

/// One field of a record.
pub(crate) struct F {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    pub default: Option<fn() -> Value>,
    /// Extra check on a present, well-typed value (`one_of`, `gt`, `between`, …); for arrays
    /// it is applied to each element.
    pub check: Option<Check>,
}

impl F {
    pub const fn opt(name: &'static str, ty: Ty) -> F {
        F {
            name,
            ty,
            required: false,
            default: None,
            check: None,
        }
    }
    pub const fn req(name: &'static str, ty: Ty, default: fn() -> Value) -> F {
        F {
            name,
            ty,
            required: true,
            default: Some(default),
            check: None,
        }
    }
    pub const fn def(name: &'static str, ty: Ty, default: fn() -> Value) -> F {
        F {
            name,
            ty,
            required: false,
            default: Some(default),
            check: None,
        }
    }
    pub const fn check(mut self, f: Check) -> F {
        self.check = Some(f);
        self
    }
    pub const fn required(mut self) -> F {
        self.required = true;
        self
    }
}

/// Validates `input` against `fields`, appending errors (paths prefixed by `path`), and
/// returns the normalised record with defaults (nulls for absent optional fields).
pub(crate) fn validate_record(
    input: &Value,
    fields: &'static [F],
    path: &mut Vec<Seg>,
    errs: &mut Vec<FieldError>,
) -> Value {
    let empty = Map::new();
    let obj = match input {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => {
            errs.push(FieldError::at(path, "expected a record"));
            return Value::Null;
        }
    };
    let mut out = Map::new();
    for key in obj.keys() {
        if !fields.iter().any(|f| f.name == key) {
            path.push(Seg::Key(key.clone()));
            errs.push(FieldError::at(path, "unknown field"));
            path.pop();
        }
    }
    for f in fields {
        path.push(Seg::Key(f.name.to_string()));
        let v = match obj.get(f.name) {
            None | Some(Value::Null) => match (f.default, f.ty) {
                (Some(d), _) => d(),
                (None, Ty::Record(sub)) if f.required => {
                    validate_record(&Value::Null, sub, path, errs)
                }
                (None, _) if f.required => {
                    errs.push(FieldError::at(path, "required field missing"));
                    Value::Null
                }
                _ => Value::Null,
            },
            Some(v) => validate_value(v, f, path, errs),
        };
        path.pop();
        out.insert(f.name.to_string(), v);
    }
    Value::Object(out)
}

fn validate_value(v: &Value, f: &F, path: &mut Vec<Seg>, errs: &mut Vec<FieldError>) -> Value {
    let before = errs.len();
    match f.ty {
        Ty::Bool if !v.is_boolean() => errs.push(FieldError::at(path, "expected a boolean")),
        Ty::Str | Ty::StrOrEmpty => match v.as_str() {
            None => errs.push(FieldError::at(path, "expected a string")),
            Some("") if matches!(f.ty, Ty::Str) => {
                errs.push(FieldError::at(path, "length must be at least 1"))
            }
            Some(_) => {}
        },
        Ty::Int if !is_integer(v) => errs.push(FieldError::at(path, "expected an integer")),
        Ty::Num if !v.is_number() => errs.push(FieldError::at(path, "expected a number")),
        Ty::StrArray => {
            let Some(items) = v.as_array() else {
                errs.push(FieldError::at(path, "expected an array"));
                return Value::Null;
            };
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                let ok = match item.as_str() {
                    None => Err("expected a string".to_string()),
                    Some("") => Err("length must be at least 1".to_string()),
                    Some(_) => Ok(()),
                };
                match ok.and_then(|()| f.check.map_or(Ok(()), |c| c(item))) {
                    Ok(()) => {}
                    Err(m) => errs.push(FieldError::at(path, &m)),
                }
                path.pop();
            }
            return if errs.len() == before {
                v.clone()
            } else {
                Value::Null
            };
        }
        Ty::Record(sub) => return validate_record(v, sub, path, errs),
        Ty::StrMap => {
            let Some(m) = v.as_object() else {
                errs.push(FieldError::at(path, "expected a map"));
                return Value::Null;
            };
            for (k, item) in m {
                path.push(Seg::Key(k.clone()));
                if let Some(c) = f.check {
                    if let Err(msg) = c(&Value::String(k.clone())) {
                        errs.push(FieldError::at(path, &msg));
                    }
                }
                match item.as_str() {
                    None => errs.push(FieldError::at(path, "expected a string")),
                    Some("") => errs.push(FieldError::at(path, "length must be at least 1")),
                    Some(_) => {}
                }
                path.pop();
            }
            return if errs.len() == before {
                v.clone()
            } else {
                Value::Null
            };
        }
        _ => {}
    }
    if errs.len() == before {
        if let Some(check) = f.check {
            if let Err(m) = check(v) {
                errs.push(FieldError::at(path, &m));
            }
        }
    }
    if errs.len() == before {
        v.clone()
    } else {
        Value::Null
    }
}

fn is_integer(v: &Value) -> bool {
    v.is_i64()
        || v.is_u64()
        || v.as_f64()
            .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
}

// ---- reusable checks (Kong's messages) ----

pub(crate) fn gt0(v: &Value) -> Result<(), String> {
    match v.as_f64() {
        Some(n) if n > 0.0 => Ok(()),
        _ => Err("value must be greater than 0".into()),
    }
}

pub(crate) fn status_between_100_599(v: &Value) -> Result<(), String> {
    match v.as_f64() {
        Some(n) if (100.0..=599.0).contains(&n) => Ok(()),
        _ => Err("value should be between 100 and 599".into()),
    }
}

/// `typedefs.header_name`: letters, digits, `_` and `-`.
pub(crate) fn header_name(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or("");
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(())
    } else {
        Err(format!(
            "bad header name '{s}', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
        ))
    }
}

/// `between = { lo, hi }` with Kong's message (integers printed without a fraction).
pub(crate) fn between(v: &Value, lo: f64, hi: f64) -> Result<(), String> {
    match v.as_f64() {
        Some(n) if (lo..=hi).contains(&n) => Ok(()),
        _ => Err(format!(
            "value should be between {} and {}",
            lua_num(lo),
            lua_num(hi)
        )),
    }
}

/// A number as Lua's `tostring` prints it (`5`, `0.01`).
pub(crate) fn lua_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// `typedefs.url`: luasocket's parse, then host and scheme present.
pub(crate) fn url(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or("");
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(if s.starts_with("//") {
            "missing scheme in url".into()
        } else {
            "missing host in url".into()
        });
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.is_empty() {
        return Err("missing host in url".into());
    }
    if scheme.is_empty() {
        return Err("missing scheme in url".into());
    }
    Ok(())
}

/// `typedefs.path`: must start with `/`.
pub(crate) fn path(v: &Value) -> Result<(), String> {
    match v.as_str() {
        Some(s) if s.starts_with('/') => Ok(()),
        _ => Err("should start with: /".into()),
    }
}

/// `one_of` over a fixed list.
pub(crate) fn one_of(v: &Value, allowed: &[&str]) -> Result<(), String> {
    match v.as_str() {
        Some(s) if allowed.contains(&s) => Ok(()),
        _ => Err(format!("expected one of: {}", allowed.join(", "))),
    }
}

/// A string that is `Some` and non-empty (Kong's `is_present`).
pub(crate) fn present(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}
