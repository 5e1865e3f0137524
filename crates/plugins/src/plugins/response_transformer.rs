//! response-transformer (`kong/plugins/response-transformer/{schema,handler,
//! header_transformer,body_transformer}.lua`, PRIORITY 800): header_filter edits response
//! headers (remove, rename, replace, add, append); a JSON body is edited by
//! [`transform_json_body`] once the proxy has buffered it — header_filter drops
//! `Content-Length` and flags the request ([`crate::Plugins::needs_response_body`]).

use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::transform::{append_value, is_json, split_pair, truthy, valid_header};
use crate::credentials::header_value;
use crate::error::FieldError;
use crate::schema::{one_of, Ty, F};

fn colon(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or("");
    match s.find(':') {
        Some(i) if i > 0 => Ok(()),
        _ => Err(format!("invalid value: {s}")),
    }
}
fn colon_rename_header(v: &Value) -> Result<(), String> {
    colon(v)?;
    let (n, val) = split_pair(v.as_str().unwrap_or(""));
    for x in [n, val] {
        if !valid_header(x) {
            return Err(format!("'{x}' is not a valid header"));
        }
    }
    Ok(())
}
fn json_type(v: &Value) -> Result<(), String> {
    one_of(v, &["boolean", "number", "string"])
}
fn empty() -> Value {
    json!([])
}

static REMOVE: &[F] = &[
    F::req("json", Ty::StrArray, empty),
    F::req("headers", Ty::StrArray, empty),
];
static RENAME: &[F] = &[
    F::req("json", Ty::StrArray, empty).check(colon),
    F::req("headers", Ty::StrArray, empty).check(colon_rename_header),
];
static TYPED: &[F] = &[
    F::req("json", Ty::StrArray, empty).check(colon),
    F::req("json_types", Ty::StrArray, empty).check(json_type),
    F::req("headers", Ty::StrArray, empty).check(colon),
];

pub(crate) static FIELDS: &[F] = &[
    F::opt("remove", Ty::Record(REMOVE)).required(),
    F::opt("rename", Ty::Record(RENAME)).required(),
    F::opt("replace", Ty::Record(TYPED)).required(),
    F::opt("add", Ty::Record(TYPED)).required(),
    F::opt("append", Ty::Record(TYPED)).required(),
];

/// `remove` / `rename` of response-transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parts {
    pub json: Vec<String>,
    pub headers: Vec<String>,
}

/// `replace` / `add` / `append` of response-transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedParts {
    pub json: Vec<String>,
    pub json_types: Vec<String>,
    pub headers: Vec<String>,
}

/// `config` of response-transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub remove: Parts,
    pub rename: Parts,
    pub replace: TypedParts,
    pub add: TypedParts,
    pub append: TypedParts,
}

impl Config {
    /// Kong's `is_body_transform_set`.
    pub fn transforms_body(&self) -> bool {
        !(self.add.json.is_empty()
            && self.rename.json.is_empty()
            && self.remove.json.is_empty()
            && self.replace.json.is_empty()
            && self.append.json.is_empty())
    }
}

pub(crate) fn check(_c: &Config, _errs: &mut Vec<FieldError>) {}

type Named = Vec<(HeaderName, HeaderValue)>;

pub(crate) struct Compiled {
    pub config: Config,
    remove: Vec<HeaderName>,
    rename: Vec<(HeaderName, HeaderName)>,
    replace: Named,
    add: Named,
    append: Named,
    body: bool,
}

fn hname(s: &str) -> Option<HeaderName> {
    HeaderName::from_bytes(s.to_ascii_lowercase().as_bytes()).ok()
}

/// Entries with a value (Kong skips `name:` with an empty value).
fn named(list: &[String]) -> Named {
    list.iter()
        .filter_map(|e| {
            let (n, v) = split_pair(e);
            (!v.is_empty()).then_some(())?;
            Some((hname(n)?, header_value(v)))
        })
        .collect()
}

pub(crate) fn compile(config: Config) -> Compiled {
    let c = &config;
    Compiled {
        remove: c.remove.headers.iter().filter_map(|n| hname(n)).collect(),
        rename: c
            .rename
            .headers
            .iter()
            .filter_map(|e| {
                let (o, n) = split_pair(e);
                Some((hname(o)?, hname(n)?))
            })
            .collect(),
        replace: named(&c.replace.headers),
        add: named(&c.add.headers),
        append: named(&c.append.headers),
        body: c.transforms_body(),
        config,
    }
}

/// Returns whether the body must be transformed (the caller flags the request state).
pub(crate) fn header_filter(c: &Compiled, h: &mut HeaderMap) -> bool {
    for n in &c.remove {
        h.remove(n);
    }
    for (old, new) in &c.rename {
        if old == new || !h.contains_key(old) {
            continue;
        }
        let vals: Vec<HeaderValue> = h.get_all(old).iter().cloned().collect();
        h.remove(old);
        h.remove(new);
        for v in vals {
            h.append(new.clone(), v);
        }
    }
    for (n, v) in &c.replace {
        if h.contains_key(n) {
            h.insert(n.clone(), v.clone());
        }
    }
    for (n, v) in &c.add {
        if !h.contains_key(n) {
            h.insert(n.clone(), v.clone());
        }
    }
    for (n, v) in &c.append {
        h.append(n.clone(), v.clone());
    }
    if c.body && is_json(h.get(CONTENT_TYPE)) {
        h.remove(CONTENT_LENGTH);
        return true;
    }
    false
}

/// `json_value(value, json_type)`: the configured text, cast when a type is given
/// (`None` when a number doesn't parse: Kong then skips the entry).
fn json_value(v: &str, ty: Option<&str>) -> Option<Value> {
    match ty {
        Some("number") => {
            let n: f64 = v.trim().parse().ok()?;
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                Some(json!(n as i64))
            } else {
                serde_json::Number::from_f64(n).map(Value::Number)
            }
        }
        Some("boolean") => Some(Value::Bool(v == "true")),
        _ => Some(Value::String(v.to_string())),
    }
}

/// Kong's `body_transformer.transform_json_body`: `None` when the body is not a JSON
/// object (Kong logs and sends it unchanged).
pub fn transform_json_body(c: &Config, body: &[u8]) -> Option<Vec<u8>> {
    let Value::Object(mut m) = serde_json::from_slice::<Value>(body).ok()? else {
        return None;
    };
    for k in &c.remove.json {
        m.shift_remove(k.as_str());
    }
    for e in &c.rename.json {
        let (o, n) = split_pair(e);
        if n.is_empty() {
            continue;
        }
        if let Some(v) = m.shift_remove(o) {
            m.insert(n.to_string(), v);
        }
    }
    fn typed(p: &TypedParts, i: usize) -> Option<&str> {
        p.json_types.get(i).map(String::as_str)
    }
    for (i, e) in c.replace.json.iter().enumerate() {
        let (k, v) = split_pair(e);
        if v.is_empty() {
            continue;
        }
        if let Some(v) = json_value(v, typed(&c.replace, i)) {
            if truthy(m.get(k)) {
                m.insert(k.to_string(), v);
            }
        }
    }
    for (i, e) in c.add.json.iter().enumerate() {
        let (k, v) = split_pair(e);
        if v.is_empty() {
            continue;
        }
        if let Some(v) = json_value(v, typed(&c.add, i)) {
            if !truthy(m.get(k)) {
                m.insert(k.to_string(), v);
            }
        }
    }
    for (i, e) in c.append.json.iter().enumerate() {
        let (k, v) = split_pair(e);
        if v.is_empty() {
            continue;
        }
        if let Some(v) = json_value(v, typed(&c.append, i)) {
            let old = m.get_mut(k).map(Value::take);
            let new = append_value(old, v);
            m.insert(k.to_string(), new);
        }
    }
    serde_json::to_vec(&Value::Object(m)).ok()
}
