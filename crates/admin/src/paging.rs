//! Kong's collection paging: `size` (default 100, max 1000), an opaque `offset` (base64 of the
//! position, like the off strategy's LMDB key), `next` links and `tags` filters (`a,b` AND,
//! `a/b` OR), with Kong's error bodies (codes 7, 9, 11) and the order in which Kong checks them
//! (size type → size range → options → offset).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

const DEFAULT_SIZE: usize = 100;
const MAX_SIZE: usize = 1000;
/// The off strategy never reads LMDB pages smaller than 2 (`LMDB_MIN_PAGE_SIZE`), so
/// `size=1` returns two entities in DB-less Kong.
const MIN_SIZE: usize = 2;
const MAX_TAGS: usize = 5;

/// First value of each query argument, like Kong's `args.uri` when a key repeats.
pub fn query_args(raw: Option<&str>) -> Vec<(String, String)> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.unwrap_or_default()).unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in pairs {
        if !out.iter().any(|(seen, _)| *seen == k) {
            out.push((k, v));
        }
    }
    out
}

pub fn arg<'a>(args: &'a [(String, String)], name: &str) -> Option<&'a str> {
    args.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub enum TagCond {
    And,
    Or,
}

/// A validated page request.
pub struct PageReq {
    size: usize,
    /// The id after which the page starts.
    after: Option<String>,
    tags: Option<(TagCond, Vec<String>)>,
    raw_size: Option<String>,
    raw_tags: Option<String>,
}

fn dao_error(code: u64, name: &str, message: String) -> Response {
    let body = json!({ "code": code, "name": name, "message": message });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn invalid_option(option: &str, msg: &str) -> Response {
    let body = json!({
        "code": 11,
        "name": "invalid options",
        "message": format!("invalid option ({option}: {msg})"),
        "options": { option: msg },
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Kong's tag bytes: printable ASCII except `,` and `/`, plus UTF-8 bytes 0x80–0xF4.
fn tag_byte(b: u8) -> bool {
    matches!(b, 0x20..=0x2B | 0x2D | 0x2E | 0x30..=0x7E | 0x80..=0xF4)
}

/// `^([tag]+(?:SEP|$))+$`: non-empty tags separated by `sep`, an optional trailing `sep`.
fn split_tags(s: &str, sep: char) -> Option<Vec<String>> {
    let body = s.strip_suffix(sep).unwrap_or(s);
    let parts: Vec<&str> = body.split(sep).collect();
    let ok = !s.is_empty()
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(tag_byte));
    ok.then(|| parts.into_iter().map(str::to_string).collect())
}

impl PageReq {
    pub fn parse(args: &[(String, String)]) -> Result<PageReq, Response> {
        let raw_size = arg(args, "size").map(str::to_string);
        let size = match &raw_size {
            None => DEFAULT_SIZE,
            Some(s) => {
                let Ok(n) = s.trim().parse::<f64>() else {
                    return Err(dao_error(9, "invalid size", "size must be a number".into()));
                };
                if n.fract() != 0.0 || !(1.0..=MAX_SIZE as f64).contains(&n) {
                    let msg = format!("size must be an integer between 1 and {MAX_SIZE}");
                    return Err(dao_error(9, "invalid size", msg));
                }
                n as usize
            }
        };
        let raw_tags = arg(args, "tags").map(str::to_string);
        let tags = match &raw_tags {
            None => None,
            Some(t) => {
                let parsed = split_tags(t, ',')
                    .map(|v| (TagCond::And, v))
                    .or_else(|| split_tags(t, '/').map(|v| (TagCond::Or, v)));
                match parsed {
                    None => return Err(invalid_option("tags", "invalid filter syntax")),
                    Some((_, v)) if v.len() > MAX_TAGS => {
                        return Err(invalid_option("tags", "cannot query more than 5 tags"))
                    }
                    Some(p) => Some(p),
                }
            }
        };
        let after = match arg(args, "offset") {
            None => None,
            Some(o) => Some(decode_offset(o).ok_or_else(|| {
                dao_error(
                    7,
                    "invalid offset",
                    format!("'{o}' is not a valid offset: bad base64 encoding"),
                )
            })?),
        };
        Ok(PageReq {
            size: size.max(MIN_SIZE),
            after,
            tags,
            raw_size,
            raw_tags,
        })
    }

    fn keeps(&self, item: &Value) -> bool {
        let Some((cond, wanted)) = &self.tags else {
            return true;
        };
        let has = |t: &String| {
            item.get("tags")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(t)))
        };
        match cond {
            TagCond::And => wanted.iter().all(has),
            TagCond::Or => wanted.iter().any(has),
        }
    }

    /// One page of `items` (already in id order, each with an `id`) as Kong's
    /// `{"data", "offset", "next"}`. `next_path` is the path `next` links to; top-level
    /// collections carry `tags` and `size` into it, nested ones do not (as in Kong).
    pub fn respond(&self, items: Vec<Value>, next_path: &str, carry: bool) -> Response {
        self.respond_by(items, next_path, carry, |v| {
            v.get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
    }

    /// Like [`PageReq::respond`], with the position key of each item given by `key`.
    pub fn respond_by(
        &self,
        items: Vec<Value>,
        next_path: &str,
        carry: bool,
        key: impl Fn(&Value) -> String,
    ) -> Response {
        let mut rest = items
            .into_iter()
            .filter(|v| self.after.as_deref().is_none_or(|a| key(v).as_str() > a))
            .filter(|v| self.keeps(v));
        let data: Vec<Value> = rest.by_ref().take(self.size).collect();
        let more = rest.next().is_some();
        let mut body = Map::new();
        let last = data.last().map(&key);
        body.insert("data".into(), Value::Array(data));
        match last.filter(|_| more) {
            Some(last) => {
                let offset = encode_offset(&last);
                let mut next = format!("{next_path}?offset={}", escape_uri(&offset));
                if carry {
                    if let Some(t) = &self.raw_tags {
                        next.push_str(&format!("&tags={}", escape_uri(t)));
                    }
                    if let Some(s) = &self.raw_size {
                        next.push_str(&format!("&size={s}"));
                    }
                }
                body.insert("offset".into(), offset.into());
                body.insert("next".into(), next.into());
            }
            None => {
                body.insert("next".into(), Value::Null);
            }
        }
        Json(Value::Object(body)).into_response()
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// ngx.encode_base64(s, true): standard alphabet, no padding.
fn encode_offset(position: &str) -> String {
    let bytes = position.as_bytes();
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn decode_offset(s: &str) -> Option<String> {
    let s = s.trim_end_matches('=');
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for c in s.bytes() {
        let v = B64.iter().position(|b| *b == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    if s.len() % 4 == 1 {
        return None;
    }
    String::from_utf8(out).ok()
}

/// ngx.escape_uri: everything but `A-Za-z0-9-._~` percent-encoded.
pub fn escape_uri(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// ngx.unescape_uri for one path segment (invalid escapes are kept as written).
pub fn unescape_uri(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for s in [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "0b6a3f1e-0000-4000-8000-000000000001",
        ] {
            let e = encode_offset(s);
            assert!(!e.contains('='));
            assert_eq!(decode_offset(&e).as_deref(), Some(s), "{s}");
        }
        assert_eq!(encode_offset("abc"), "YWJj");
        assert_eq!(encode_offset("ab"), "YWI");
        assert!(decode_offset("!!").is_none());
        assert!(decode_offset("Y").is_none());
    }

    #[test]
    fn tag_syntax() {
        assert_eq!(split_tags("a,b", ','), Some(vec!["a".into(), "b".into()]));
        assert_eq!(split_tags("a,", ','), Some(vec!["a".into()]));
        assert_eq!(split_tags("a", '/'), Some(vec!["a".into()]));
        assert!(split_tags("a/b", ',').is_none());
        assert!(split_tags("a,,b", ',').is_none());
        assert!(split_tags("", ',').is_none());
    }

    #[test]
    fn escapes() {
        assert_eq!(escape_uri("a+b/c=d e"), "a%2Bb%2Fc%3Dd%20e");
        assert_eq!(unescape_uri("a%2Fb%zz%4"), "a/b%zz%4");
    }
}
