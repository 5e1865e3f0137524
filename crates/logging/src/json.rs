//! Kong's log serializer (`kong.log.serialize()` in `kong/pdk/log.lua`), written on the shipper
//! thread straight into a byte buffer. Field names and shapes follow Kong 3.x: `request.headers`
//! with lower-case names (repeated → array, `authorization`/`proxy-authorization` redacted),
//! `request.querystring` as a table (flag args → `true`, repeated → array), `upstream_status` as
//! nginx's string, `latencies.proxy` = -1 without an upstream, entities embedded as objects.

use serde_json::{Map, Value};

use crate::record::{Headers, LogRecord, RequestSource};

/// Whether `b` holds no byte JSON must escape and none that needs a UTF-8 check (`< 0x20`,
/// `"`, `\`, `>= 0x80`). Checked eight bytes at a time with word arithmetic (SWAR): this scan
/// runs over every string of every record, and a per-byte loop was the serializer's largest
/// cost. Each test below is exact as a yes/no for the whole word, which is all that is needed.
#[inline]
fn plain_ascii(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    #[inline(always)]
    fn has_zero(v: u64) -> u64 {
        v.wrapping_sub(ONES) & !v & HIGH
    }
    #[inline(always)]
    fn special(w: u64) -> u64 {
        (w & HIGH)
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
            | has_zero(w ^ (ONES * b'"' as u64))
            | has_zero(w ^ (ONES * b'\\' as u64))
    }
    let mut rest = b;
    while let Some((w, r)) = rest.split_first_chunk::<8>() {
        if special(u64::from_le_bytes(*w)) != 0 {
            return false;
        }
        rest = r;
    }
    if rest.is_empty() {
        return true;
    }
    // The tail: the last eight bytes (overlapping checked ones is harmless), or byte by byte
    // for short strings. No copy into a padded word: that would be a `memcpy` call per string.
    match b.last_chunk::<8>() {
        Some(w) => special(u64::from_le_bytes(*w)) == 0,
        None => !rest
            .iter()
            .any(|&c| c < 0x20 || c == b'"' || c == b'\\' || c >= 0x80),
    }
}

/// A JSON string: escapes only what JSON requires (fast path: one copy when nothing needs it).
fn s(out: &mut Vec<u8>, v: &str) {
    sb(out, v.as_bytes());
}

/// Raw bytes (a header value) as a JSON string; invalid UTF-8 is replaced (U+FFFD).
fn sb(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'"');
    sb_inner(out, b);
    out.push(b'"');
}

/// [`sb`] without the quotes.
fn sb_inner(out: &mut Vec<u8>, b: &[u8]) {
    if plain_ascii(b) {
        out.extend_from_slice(b);
    } else {
        match std::str::from_utf8(b) {
            Ok(v) => escape(out, v.as_bytes()),
            Err(_) => escape(out, String::from_utf8_lossy(b).as_bytes()),
        }
    }
}

/// The slow path of [`sb`]: valid UTF-8 with something to escape.
fn escape(out: &mut Vec<u8>, b: &[u8]) {
    let mut from = 0;
    for (i, &c) in b.iter().enumerate() {
        let e: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&b[from..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
                from = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&b[from..i]);
        out.extend_from_slice(e);
        from = i + 1;
    }
    out.extend_from_slice(&b[from..]);
}

fn u(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn ip(out: &mut Vec<u8>, v: std::net::IpAddr) {
    out.push(b'"');
    match v {
        // The common case without the formatting machinery.
        std::net::IpAddr::V4(a) => {
            for (i, o) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(itoa::Buffer::new().format(o).as_bytes());
            }
        }
        v6 => {
            use std::io::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
    out.push(b'"');
}

/// A UUID as Kong prints it (lower-case, hyphenated).
fn uuid(out: &mut Vec<u8>, v: u128) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push(b'-');
        }
        out.push(HEX[((v >> (124 - 4 * i)) & 15) as usize]);
    }
    out.push(b'"');
}

fn raw_or_null(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(j) if !j.is_empty() => out.extend_from_slice(j.as_bytes()),
        _ => out.extend_from_slice(b"null"),
    }
}

/// Appends `v` into `map[k]`, turning repeated keys into arrays (Kong's multi-value tables).
fn push_multi(map: &mut Map<String, Value>, k: String, v: Value) {
    match map.get_mut(&k) {
        None => {
            map.insert(k, v);
        }
        Some(Value::Array(a)) => a.push(v),
        Some(prev) => {
            let first = prev.take();
            *prev = Value::Array(vec![first, v]);
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `kong.request.get_query()`: `a=1&a=2&flag&b=` → `{"a":["1","2"],"flag":true,"b":""}`.
pub fn querystring(uri: &str) -> Map<String, Value> {
    let mut m = Map::new();
    let Some((_, q)) = uri.split_once('?') else {
        return m;
    };
    for part in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (percent_decode(k), Value::String(percent_decode(v))),
            None => (percent_decode(part), Value::Bool(true)),
        };
        if !k.is_empty() {
            push_multi(&mut m, k, v);
        }
    }
    m
}

/// Kong's header table: lower-case names, repeated names as arrays (the packed list keeps
/// them adjacent), credentials redacted in request headers.
fn headers(out: &mut Vec<u8>, h: Headers<'_>, redact: bool) {
    out.push(b'{');
    let mut it = h.peekable();
    let mut first = true;
    while let Some((k, v)) = it.next() {
        if !first {
            out.push(b',');
        }
        first = false;
        // Names come from `http::HeaderName`: lower-case token characters, never escaped.
        out.push(b'"');
        out.extend_from_slice(k);
        out.extend_from_slice(b"\":");
        let hide = redact && (k == b"authorization" || k == b"proxy-authorization");
        let value = |out: &mut Vec<u8>, v: &[u8]| {
            if hide {
                out.extend_from_slice(b"\"REDACTED\"");
            } else {
                sb(out, v);
            }
        };
        if it.peek().is_some_and(|(n, _)| *n == k) {
            out.push(b'[');
            value(out, v);
            while let Some((_, v)) = it.next_if(|(n, _)| *n == k) {
                out.push(b',');
                value(out, v);
            }
            out.push(b']');
        } else {
            value(out, v);
        }
    }
    out.push(b'}');
}

/// Appends one record as a JSON object. Allocation-free except for query strings (decoded into
/// a table) and invalid UTF-8 in header values.
pub fn serialize(r: &LogRecord, out: &mut Vec<u8>) {
    let uri = r.uri_bytes();
    out.extend_from_slice(b"{\"request\":{\"id\":");
    sb(out, r.request_id());
    out.extend_from_slice(b",\"uri\":");
    sb(out, uri);
    out.extend_from_slice(b",\"url\":\"");
    out.extend_from_slice(if r.https { b"https://" } else { b"http://" });
    sb_inner(out, r.host_bytes());
    out.push(b':');
    u(out, r.port as u64);
    sb_inner(out, uri);
    out.push(b'"');
    out.extend_from_slice(b",\"querystring\":");
    if uri.contains(&b'?') {
        let _ = serde_json::to_writer(&mut *out, &querystring(r.uri()));
    } else {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b",\"method\":");
    sb(out, r.method_bytes());
    out.extend_from_slice(b",\"headers\":");
    headers(out, r.request_headers(), true);
    out.extend_from_slice(b",\"size\":");
    u(out, r.request_size);
    if let Some(t) = &r.tls {
        out.extend_from_slice(b",\"tls\":{\"version\":");
        s(out, &t.version);
        out.extend_from_slice(b",\"cipher\":");
        s(out, &t.cipher);
        out.extend_from_slice(b",\"client_verify\":");
        s(out, &t.client_verify);
        out.push(b'}');
    }
    out.extend_from_slice(b"},\"upstream_uri\":");
    sb(out, r.upstream_uri_bytes());
    out.extend_from_slice(b",\"upstream_status\":\"");
    if r.upstream_status != 0 {
        u(out, r.upstream_status as u64);
    }
    out.extend_from_slice(b"\",\"response\":{\"status\":");
    u(out, r.status as u64);
    out.extend_from_slice(b",\"headers\":");
    headers(out, r.response_headers(), false);
    out.extend_from_slice(b",\"size\":");
    u(out, r.response_size);
    out.extend_from_slice(b"},\"latencies\":{\"kong\":");
    u(out, r.kong_ms);
    out.extend_from_slice(b",\"proxy\":");
    match r.proxy_ms {
        Some(p) => u(out, p),
        None => out.extend_from_slice(b"-1"),
    }
    out.extend_from_slice(b",\"request\":");
    u(out, r.request_ms);
    out.extend_from_slice(b",\"receive\":");
    u(out, r.receive_ms);
    out.extend_from_slice(b"},\"tries\":[");
    for (i, t) in r.tries().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"balancer_start\":");
        u(out, t.balancer_start);
        out.extend_from_slice(b",\"ip\":");
        let host = t.target.rsplit_once(':').map_or(&*t.target, |(h, _)| h);
        s(out, host.trim_start_matches('[').trim_end_matches(']'));
        out.extend_from_slice(b",\"port\":");
        u(out, t.port as u64);
        out.extend_from_slice(b",\"balancer_latency\":");
        u(out, t.balancer_latency);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"authenticated_entity\":");
    match r.credential_id {
        Some(id) => {
            out.extend_from_slice(b"{\"id\":");
            uuid(out, id);
            if let Some(c) = r.consumer_id() {
                out.extend_from_slice(b",\"consumer_id\":");
                s(out, c);
            }
            out.push(b'}');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"route\":");
    raw_or_null(out, r.route_json());
    out.extend_from_slice(b",\"service\":");
    raw_or_null(out, r.service_json());
    out.extend_from_slice(b",\"consumer\":");
    raw_or_null(out, r.consumer_json());
    out.extend_from_slice(b",\"client_ip\":");
    ip(out, r.client_ip);
    out.extend_from_slice(b",\"started_at\":");
    u(out, r.started_at_ms);
    out.extend_from_slice(b",\"source\":");
    s(
        out,
        match r.source {
            RequestSource::Upstream => "upstream",
            RequestSource::Kong => "kong",
        },
    );
    let (ws, ws_name) = r.workspace();
    out.extend_from_slice(b",\"workspace\":");
    s(out, ws);
    out.extend_from_slice(b",\"workspace_name\":");
    s(out, ws_name);
    out.push(b'}');
}

/// A batch as Kong's http-log sends it: one object when `max_batch_size` is 1, else an array.
pub fn batch(records: &[LogRecord], single: bool, out: &mut Vec<u8>) {
    if single && records.len() == 1 {
        serialize(&records[0], out);
        return;
    }
    out.push(b'[');
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serialize(r, out);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    /// The word-at-a-time scan against the per-byte definition: every byte value at every
    /// position of strings of every tail length.
    #[test]
    fn plain_ascii_matches_per_byte_rule() {
        let special = |c: u8| c < 0x20 || c == b'"' || c == b'\\' || c >= 0x80;
        for len in 1..=19 {
            for pos in 0..len {
                for c in 0..=255u8 {
                    let mut v = vec![b'a'; len];
                    v[pos] = c;
                    assert_eq!(plain_ascii(&v), !special(c), "len {len} pos {pos} byte {c}");
                }
            }
        }
        assert!(plain_ascii(b""));
        assert!(plain_ascii(
            b" !#[]~0123456789abcdefghijklmnopqrstuvwxyz/?&="
        ));
    }

    #[test]
    fn querystring_like_kong() {
        let q = querystring("/p?a=1&a=2&flag&b=&c=x%20y+z&%zz=1");
        assert_eq!(
            Value::Object(q),
            serde_json::json!({"a":["1","2"],"flag":true,"b":"","c":"x y z","%zz":"1"})
        );
        assert!(querystring("/p").is_empty());
    }

    #[test]
    fn serialize_is_valid_json_with_kong_fields() {
        let mut r = LogRecord::empty();
        r.set_request(
            b"id\"1",
            "GET",
            "/x?y=1",
            "example.com",
            &crate::header_map(&[("Authorization", "secret"), ("x-a", "1"), ("x-a", "2")]),
        );
        r.port = 8000;
        let e = crate::Entities {
            routes: vec!["{\"id\":\"r1\",\"paths\":[\"/x\"]}".into()],
            consumer_ids: vec!["c-1".into()],
            consumers: vec!["{\"id\":\"c-1\"}".into()],
            ..Default::default()
        };
        r.set_entities(std::sync::Arc::new(e), Some(0), None, Some(0));
        r.credential_id = Some(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        r.push_try(crate::Try {
            target: "10.0.0.1:8080".into(),
            port: 8080,
            balancer_start: 5,
            balancer_latency: 0,
        });
        r.status = 200;
        let mut out = Vec::new();
        serialize(&r, &mut out);
        let v: Value = serde_json::from_slice(&out).expect("valid json");
        assert_eq!(v["request"]["url"], "http://example.com:8000/x?y=1");
        assert_eq!(v["request"]["headers"]["authorization"], "REDACTED");
        assert_eq!(
            v["request"]["headers"]["x-a"],
            serde_json::json!(["1", "2"])
        );
        assert_eq!(v["request"]["querystring"]["y"], "1");
        assert_eq!(v["latencies"]["proxy"], -1);
        assert_eq!(v["route"]["id"], "r1");
        assert_eq!(v["service"], Value::Null);
        assert_eq!(v["response"]["status"], 200);
        assert_eq!(v["request"]["id"], "id\"1");
        assert_eq!(v["upstream_status"], "");
        assert_eq!(v["consumer"]["id"], "c-1");
        assert_eq!(
            v["authenticated_entity"],
            serde_json::json!({"id": "01234567-89ab-cdef-0123-456789abcdef", "consumer_id": "c-1"})
        );
        assert_eq!(
            v["tries"],
            serde_json::json!([{"balancer_start": 5, "ip": "10.0.0.1", "port": 8080, "balancer_latency": 0}])
        );
        let mut r = LogRecord::empty();
        r.set_request(b"", "GET", "/a\u{1}", "h\"", &HeaderMap::new());
        out.clear();
        serialize(&r, &mut out);
        let v: Value = serde_json::from_slice(&out).expect("valid json");
        assert_eq!(v["request"]["url"], "http://h\":0/a\u{1}");
    }
}
