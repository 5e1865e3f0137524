//! Pieces shared by request-transformer and response-transformer: Kong's `name:value`
//! entries, the `$(…)` value templates, query-string re-encoding and JSON value helpers.
//!
//! Templates: Kong renders values with Penlight templates in a sandbox; the expressions
//! users write are `$(headers.x)`, `$(headers["x-y"])` and `$(query_params.x)`. Those are
//! supported (parsed once per config); any other expression renders as an empty string.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::credentials::header_value;
use crate::query;

/// `^([^:]+):*(.-)$`: the name before the first colon, the value after the colons.
pub(crate) fn split_pair(s: &str) -> (&str, &str) {
    match s.split_once(':') {
        Some((n, v)) => (n, v.trim_start_matches(':')),
        None => (s, ""),
    }
}

/// `kong.tools.http.validate_header_name`.
pub(crate) fn valid_header(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Header(HeaderName),
    Query(String),
    Empty,
}

/// A value template, with its value prebuilt when it has no expression.
#[derive(Debug, Clone)]
pub(crate) struct Tpl {
    parts: Vec<Part>,
    pub lit: Option<HeaderValue>,
    pub lit_str: Option<String>,
}

fn parse_expr(e: &str) -> Part {
    let e = e.trim();
    let (table, key) = if let Some(rest) = e.strip_suffix(']') {
        let Some((t, k)) = rest.split_once('[') else {
            return Part::Empty;
        };
        let k = k.trim();
        let k = k
            .strip_prefix('"')
            .and_then(|k| k.strip_suffix('"'))
            .or_else(|| k.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')));
        match k {
            Some(k) => (t.trim(), k),
            None => return Part::Empty,
        }
    } else {
        match e.split_once('.') {
            Some((t, k)) => (t, k),
            None => return Part::Empty,
        }
    };
    match table {
        "headers" => {
            let n = key.to_ascii_lowercase().replace('_', "-");
            HeaderName::from_bytes(n.as_bytes()).map_or(Part::Empty, Part::Header)
        }
        "query_params" => Part::Query(key.to_string()),
        _ => Part::Empty,
    }
}

impl Tpl {
    pub(crate) fn parse(s: &str) -> Tpl {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(i) = rest.find("$(") {
            let Some(j) = rest[i + 2..].find(')') else {
                break;
            };
            if i > 0 {
                parts.push(Part::Lit(rest[..i].to_string()));
            }
            parts.push(parse_expr(&rest[i + 2..i + 2 + j]));
            rest = &rest[i + 2 + j + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        let literal = parts.iter().all(|p| matches!(p, Part::Lit(_)));
        Tpl {
            lit: literal.then(|| header_value(s)),
            lit_str: literal.then(|| s.to_string()),
            parts,
        }
    }

    /// Renders against the request headers and query string.
    pub(crate) fn render<'a>(&'a self, h: Option<&HeaderMap>, q: &str) -> Cow<'a, str> {
        if let Some(s) = &self.lit_str {
            return Cow::Borrowed(s);
        }
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Header(n) => {
                    if let Some(v) = h.and_then(|h| h.get(n)).and_then(|v| v.to_str().ok()) {
                        out.push_str(v);
                    }
                }
                Part::Query(k) => {
                    if let query::Arg::One(v) = query::get(q, k) {
                        out.push_str(&v);
                    }
                }
                Part::Empty => {}
            }
        }
        Cow::Owned(out)
    }

    pub(crate) fn header(&self, h: Option<&HeaderMap>, q: &str) -> HeaderValue {
        match &self.lit {
            Some(v) => v.clone(),
            None => header_value(&self.render(h, q)),
        }
    }
}

/// A decoded query string as Lua sees it: keys in first-seen order, each with its values
/// (`None` = a bare `?flag`, Lua's `true`).
pub(crate) type Args = Vec<(String, Vec<Option<String>>)>;

pub(crate) fn parse_args(q: &str) -> Args {
    let mut out: Args = Vec::new();
    for part in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k, Some(query::decode(v).into_owned())),
            None => (part, None),
        };
        let k = query::decode(k);
        match out.iter_mut().find(|(n, _)| *n == k) {
            Some((_, vals)) => vals.push(v),
            None => out.push((k.into_owned(), vec![v])),
        }
    }
    out
}

fn escape_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// `kong.service.request.set_query(args)`: keys sorted, values escaped, arrays repeated.
pub(crate) fn encode_args(mut args: Args) -> String {
    args.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (k, vals) in &args {
        for v in vals {
            if !out.is_empty() {
                out.push('&');
            }
            escape_into(&mut out, k);
            if let Some(v) = v {
                out.push('=');
                escape_into(&mut out, v);
            }
        }
    }
    out
}

/// Lua truthiness of a JSON value as cjson decodes it (`null` is a truthy sentinel).
pub(crate) fn truthy(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Bool(false)))
}

/// Kong's `append_value`: a string becomes `[old, new]`, a table gets `new` pushed,
/// anything else is replaced by `[new]`.
pub(crate) fn append_value(old: Option<Value>, new: Value) -> Value {
    match old {
        Some(Value::String(s)) => Value::Array(vec![Value::String(s), new]),
        Some(Value::Array(mut a)) => {
            a.push(new);
            Value::Array(a)
        }
        Some(Value::Object(mut o)) => {
            let n = o.len() + 1;
            o.insert(n.to_string(), new);
            Value::Object(o)
        }
        _ => Value::Array(vec![new]),
    }
}

/// Whether a `Content-Type` is JSON (`application/json`, `…+json` is not, as in Kong's
/// `mime_type.includes`).
pub(crate) fn is_json(ct: Option<&HeaderValue>) -> bool {
    let Some(ct) = ct.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    ct.split(',').any(|part| {
        let media = part.split(';').next().unwrap_or("").trim();
        let mut it = media.splitn(2, '/');
        let (t, s) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
        t.eq_ignore_ascii_case("application") && s.eq_ignore_ascii_case("json")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_templates_args() {
        assert_eq!(split_pair("a:b:c"), ("a", "b:c"));
        assert_eq!(split_pair("a::b"), ("a", "b"));
        assert_eq!(split_pair("a"), ("a", ""));
        let mut h = HeaderMap::new();
        h.insert("x-user", HeaderValue::from_static("ann"));
        let t = Tpl::parse("id=$(headers.x_user)&q=$(query_params[\"q\"])$(uri_captures.a)");
        assert_eq!(t.render(Some(&h), "q=1"), "id=ann&q=1");
        assert_eq!(
            encode_args(parse_args("b=2&a=x%20y&flag&b=3")),
            "a=x%20y&b=2&b=3&flag"
        );
    }
}
