//! Request bodies the way Kong's plugins read them: `application/json`,
//! `application/x-www-form-urlencoded` and `multipart/form-data` (`kong.request.get_body()`,
//! request-transformer's `get_content_type`). Only plugins that asked for the body (key-auth
//! `key_in_body`, request-transformer body operations) get here, so this code may allocate.
//!
//! Multipart bodies are parsed into parts that keep their raw header block, so a rewrite
//! changes only the parts an operation touched (like lua-multipart's `tostring`).

use std::borrow::Cow;

use http::HeaderValue;
use serde_json::Value;

use crate::query::{self, Arg};

/// The body types Kong's plugins understand, decided from `Content-Type` by substring, as
/// Kong does. Multipart keeps the `Content-Type` value for its boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Json,
    Form,
    Multipart(HeaderValue),
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

impl BodyKind {
    pub(crate) fn of(ct: Option<&HeaderValue>) -> Option<BodyKind> {
        let v = ct?;
        let b = v.as_bytes();
        if contains_ignore_case(b, b"application/json") {
            Some(BodyKind::Json)
        } else if contains_ignore_case(b, b"multipart/form-data") {
            Some(BodyKind::Multipart(v.clone()))
        } else if contains_ignore_case(b, b"application/x-www-form-urlencoded") {
            Some(BodyKind::Form)
        } else {
            None
        }
    }
}

/// `boundary=` of a multipart `Content-Type` (quotes removed).
pub(crate) fn boundary(ct: &HeaderValue) -> Option<&str> {
    let s = ct.to_str().ok()?;
    let i = s.to_ascii_lowercase().find("boundary=")?;
    let b = s[i + "boundary=".len()..].split(';').next()?.trim();
    let b = b.trim_matches('"');
    (!b.is_empty()).then_some(b)
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    /// `name` of its `Content-Disposition`.
    pub name: Option<String>,
    /// The raw header block (without the blank line).
    head: Vec<u8>,
    pub value: Vec<u8>,
}

impl Part {
    /// A plain field (lua-multipart's `set_simple`).
    pub(crate) fn simple(name: &str, value: &[u8]) -> Part {
        Part {
            name: Some(name.to_string()),
            head: format!("Content-Disposition: form-data; name=\"{name}\"").into_bytes(),
            value: value.to_vec(),
        }
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

fn disposition_name(head: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(head);
    for line in head.split("\r\n") {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if !k.trim().eq_ignore_ascii_case("content-disposition") {
            continue;
        }
        for param in v.split(';').skip(1) {
            if let Some((pk, pv)) = param.split_once('=') {
                if pk.trim().eq_ignore_ascii_case("name") {
                    return Some(pv.trim().trim_matches('"').to_string());
                }
            }
        }
    }
    None
}

/// The parts of a multipart body; `None` when it is not one (no opening boundary).
pub(crate) fn parse_multipart(body: &[u8], boundary: &str) -> Option<Vec<Part>> {
    let delim = format!("--{boundary}");
    let next_delim = format!("\r\n--{boundary}");
    let mut at = find(body, delim.as_bytes(), 0)? + delim.len();
    let mut parts = Vec::new();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Some(parts); // closing delimiter
        }
        // Skip the rest of the delimiter line.
        at = find(body, b"\r\n", at)? + 2;
        let end = find(body, next_delim.as_bytes(), at)?;
        let part = &body[at..end];
        let (head, value) = match find(part, b"\r\n\r\n", 0) {
            Some(i) => (&part[..i], &part[i + 4..]),
            None if part.starts_with(b"\r\n") => (&part[..0], &part[2..]),
            None => (part, &part[part.len()..]),
        };
        parts.push(Part {
            name: disposition_name(head),
            head: head.to_vec(),
            value: value.to_vec(),
        });
        at = end + next_delim.len();
    }
}

/// Serialises parts with `boundary`.
pub(crate) fn write_multipart(parts: &[Part], boundary: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&p.head);
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&p.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"--\r\n");
    out
}

/// A named field of a body, as `kong.request.get_body()[name]` sees it.
pub(crate) enum Field<'b> {
    Absent,
    /// A string value (the only kind an API key can be).
    One(Cow<'b, str>),
    /// Repeated, or a table (array/object): Kong's `type(v) == "table"`.
    Many,
}

pub(crate) fn field<'b>(kind: &BodyKind, body: &'b [u8], name: &str) -> Field<'b> {
    match kind {
        BodyKind::Json => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(mut m)) => match m.shift_remove(name) {
                Some(Value::String(s)) => Field::One(Cow::Owned(s)),
                Some(Value::Array(_) | Value::Object(_)) => Field::Many,
                _ => Field::Absent,
            },
            _ => Field::Absent,
        },
        BodyKind::Form => match std::str::from_utf8(body).map(|s| query::get(s, name)) {
            Ok(Arg::One(v)) => Field::One(v),
            Ok(Arg::Many) => Field::Many,
            _ => Field::Absent,
        },
        BodyKind::Multipart(ct) => {
            let Some(parts) = boundary(ct).and_then(|b| parse_multipart(body, b)) else {
                return Field::Absent;
            };
            let mut it = parts
                .into_iter()
                .filter(|p| p.name.as_deref() == Some(name));
            match (it.next(), it.next()) {
                (Some(p), None) => match String::from_utf8(p.value) {
                    Ok(s) => Field::One(Cow::Owned(s)),
                    Err(_) => Field::Absent,
                },
                (Some(_), Some(_)) => Field::Many,
                _ => Field::Absent,
            }
        }
    }
}

/// The body without field `name` (`body[name] = nil; kong.service.request.set_body(body)`);
/// `None` when it cannot be re-encoded.
pub(crate) fn without(kind: &BodyKind, body: &[u8], name: &str) -> Option<Vec<u8>> {
    match kind {
        BodyKind::Json => match serde_json::from_slice::<Value>(body).ok()? {
            Value::Object(mut m) => {
                m.shift_remove(name);
                serde_json::to_vec(&Value::Object(m)).ok()
            }
            _ => None,
        },
        BodyKind::Form => Some(query::without(std::str::from_utf8(body).ok()?, name).into_bytes()),
        BodyKind::Multipart(ct) => {
            let b = boundary(ct)?;
            let mut parts = parse_multipart(body, b)?;
            parts.retain(|p| p.name.as_deref() != Some(name));
            Some(write_multipart(&parts, b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn mp(fields: &[(&str, &str)]) -> Vec<u8> {
        let parts: Vec<Part> = fields
            .iter()
            .map(|(n, v)| Part::simple(n, v.as_bytes()))
            .collect();
        write_multipart(&parts, "XyZ")
    }

    #[test]
    fn kinds_by_substring_like_kong() {
        let k = |s: &'static str| BodyKind::of(Some(&HeaderValue::from_static(s)));
        assert_eq!(k("application/json; charset=utf-8"), Some(BodyKind::Json));
        assert_eq!(k("Application/JSON"), Some(BodyKind::Json));
        assert_eq!(k("application/x-www-form-urlencoded"), Some(BodyKind::Form));
        assert!(matches!(k(CT), Some(BodyKind::Multipart(_))));
        assert_eq!(k("text/plain"), None);
        assert_eq!(BodyKind::of(None), None);
    }

    #[test]
    fn multipart_round_trip_and_fields() {
        let body = mp(&[("a", "1"), ("apikey", "k"), ("b", "x y")]);
        let ct = HeaderValue::from_static(CT);
        assert_eq!(boundary(&ct), Some("XyZ"));
        let parts = parse_multipart(&body, "XyZ").expect("parses");
        assert_eq!(parts.len(), 3);
        assert_eq!(
            write_multipart(&parts, "XyZ"),
            body,
            "unchanged parts round-trip"
        );
        let kind = BodyKind::Multipart(ct);
        assert!(matches!(field(&kind, &body, "apikey"), Field::One(v) if v == "k"));
        assert!(matches!(field(&kind, &body, "nope"), Field::Absent));
        let dup = mp(&[("apikey", "1"), ("apikey", "2")]);
        assert!(matches!(field(&kind, &dup, "apikey"), Field::Many));
        let rest = without(&kind, &body, "apikey").expect("rewrites");
        assert_eq!(rest, mp(&[("a", "1"), ("b", "x y")]));
        assert!(parse_multipart(b"not multipart", "XyZ").is_none());
    }

    #[test]
    fn json_and_form_fields() {
        let j = BodyKind::Json;
        assert!(matches!(field(&j, br#"{"apikey":"k"}"#, "apikey"), Field::One(v) if v == "k"));
        assert!(matches!(
            field(&j, br#"{"apikey":["k"]}"#, "apikey"),
            Field::Many
        ));
        assert!(matches!(
            field(&j, br#"{"apikey":1}"#, "apikey"),
            Field::Absent
        ));
        assert!(matches!(field(&j, b"nope", "apikey"), Field::Absent));
        assert_eq!(
            without(&j, br#"{"a":1,"apikey":"k"}"#, "apikey").as_deref(),
            Some(&br#"{"a":1}"#[..])
        );
        let f = BodyKind::Form;
        assert!(
            matches!(field(&f, b"a=1&apikey=my+key", "apikey"), Field::One(v) if v == "my key")
        );
        assert!(matches!(
            field(&f, b"apikey=1&apikey=2", "apikey"),
            Field::Many
        ));
        assert_eq!(
            without(&f, b"a=1&apikey=k&b=2", "apikey").as_deref(),
            Some(&b"a=1&b=2"[..])
        );
    }
}
