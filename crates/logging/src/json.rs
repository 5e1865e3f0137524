//! Kong's log serializer (`kong.log.serialize()` in `kong/pdk/log.lua`), written on the shipper
//! thread straight into a byte buffer. Field names and shapes follow Kong 3.x: `request.headers`
//! with lower-case names (repeated → array, `authorization`/`proxy-authorization` redacted),
//! `request.querystring` as a table (flag args → `true`, repeated → array), `upstream_status` as
//! nginx's string, `latencies.proxy` = -1 without an upstream, entities embedded as objects.

use serde_json::{Map, Value};

use crate::record::{LogRecord, RequestSource};

fn s(out: &mut Vec<u8>, v: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

fn u(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(v.to_string().as_bytes());
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

fn headers(h: &http::HeaderMap, redact: bool) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in h {
        let k = k.as_str().to_owned(); // already lower-case
        let v = if redact && (k == "authorization" || k == "proxy-authorization") {
            "REDACTED".to_owned()
        } else {
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        };
        push_multi(&mut m, k, Value::String(v));
    }
    m
}

/// Appends one record as a JSON object.
pub fn serialize(r: &LogRecord, out: &mut Vec<u8>) {
    let scheme = if r.https { "https" } else { "http" };
    out.extend_from_slice(b"{\"request\":{\"id\":");
    s(out, &r.request_id);
    out.extend_from_slice(b",\"uri\":");
    s(out, &r.uri);
    out.extend_from_slice(b",\"url\":");
    s(out, &format!("{scheme}://{}:{}{}", r.host, r.port, r.uri));
    out.extend_from_slice(b",\"querystring\":");
    let _ = serde_json::to_writer(&mut *out, &querystring(&r.uri));
    out.extend_from_slice(b",\"method\":");
    s(out, &r.method);
    out.extend_from_slice(b",\"headers\":");
    let _ = serde_json::to_writer(&mut *out, &headers(&r.request_headers, true));
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
    s(out, &r.upstream_uri);
    out.extend_from_slice(b",\"upstream_status\":");
    s(out, &r.upstream_status);
    out.extend_from_slice(b",\"response\":{\"status\":");
    u(out, r.status as u64);
    out.extend_from_slice(b",\"headers\":");
    let _ = serde_json::to_writer(&mut *out, &headers(&r.response_headers, false));
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
    for (i, t) in r.tries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"balancer_start\":");
        u(out, t.balancer_start);
        out.extend_from_slice(b",\"ip\":");
        s(out, &t.ip.to_string());
        out.extend_from_slice(b",\"port\":");
        u(out, t.port as u64);
        out.extend_from_slice(b",\"balancer_latency\":");
        u(out, t.balancer_latency);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"authenticated_entity\":");
    raw_or_null(out, r.authenticated_entity.as_deref());
    out.extend_from_slice(b",\"route\":");
    raw_or_null(out, r.route.as_deref());
    out.extend_from_slice(b",\"service\":");
    raw_or_null(out, r.service.as_deref());
    out.extend_from_slice(b",\"consumer\":");
    raw_or_null(out, r.consumer.as_deref());
    out.extend_from_slice(b",\"client_ip\":");
    s(out, &r.client_ip.to_string());
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
    out.extend_from_slice(b",\"workspace\":");
    s(out, &r.workspace);
    out.extend_from_slice(b",\"workspace_name\":");
    s(out, &r.workspace_name);
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
        r.uri = "/x?y=1".into();
        r.host = "example.com".into();
        r.port = 8000;
        r.request_headers =
            crate::header_map(&[("Authorization", "secret"), ("x-a", "1"), ("x-a", "2")]);
        r.route = Some("{\"id\":\"r1\",\"paths\":[\"/x\"]}".into());
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
    }
}
