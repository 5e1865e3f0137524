//! The compact per-request log record the proxy thread fills. No JSON here and no per-field
//! allocation: every text field (request id, method, URI, host, upstream URI, request and
//! response headers) is copied into **one** byte buffer sized up front, entity JSON is
//! reached through one `Arc<Entities>` of the snapshot plus indices, and everything else is
//! plain numbers. The shipper thread turns it into Kong's format ([`crate::json`]).
//!
//! Why copy the headers instead of cloning the `HeaderMap`: a map clone allocates its index
//! and entry tables and bumps one atomic refcount per header value; one `memcpy` into a buffer
//! that is allocated anyway is cheaper, and the record stays a flat value to move through the
//! channel.

use std::net::IpAddr;
use std::sync::Arc;

pub use http::HeaderMap;

/// A header map from `(name, value)` pairs (tests, benches); invalid pairs are skipped.
pub fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            h.append(k, v);
        }
    }
    h
}

/// Kong's `source` field: who produced the response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RequestSource {
    /// The upstream service answered (`kong.response.get_source()` = `service`).
    #[default]
    Upstream,
    /// Kong or a plugin answered (`exit` / `error`).
    Kong,
}

/// One balancer try (`tries[]`).
#[derive(Clone, Debug)]
pub struct Try {
    /// The target as `host:port`, shared with the balancer (logged as `ip`: the address for IP
    /// targets; Kong logs the resolved address of a named target, Gatehouse its name).
    pub target: Arc<str>,
    pub port: u16,
    /// ms since epoch when the try started.
    pub balancer_start: u64,
    pub balancer_latency: u64,
}

#[derive(Clone, Debug)]
pub struct TlsInfo {
    pub version: Box<str>,
    pub cipher: Box<str>,
    /// `SUCCESS`, `NONE`, `FAILED:…`.
    pub client_verify: Box<str>,
}

/// Entity JSON of one config snapshot, rendered once when the snapshot is built and shared
/// by every record through one `Arc` (index `i` = the entity's position in the config).
#[derive(Debug, Default)]
pub struct Entities {
    pub routes: Vec<Box<str>>,
    pub services: Vec<Box<str>>,
    pub consumers: Vec<Box<str>>,
    /// Consumer ids (hyphenated), for `authenticated_entity.consumer_id`.
    pub consumer_ids: Vec<Box<str>>,
    pub workspace: Box<str>,
    pub workspace_name: Box<str>,
}

/// A byte range of [`LogRecord::text`].
#[derive(Clone, Copy, Debug, Default)]
struct Range(u32, u32);

const NONE: u32 = u32::MAX;

/// Header lists in the text buffer are `name_len value_len name value` repeated (lengths as
/// little-endian u32), so the shipper slices them without scanning.
fn push_header(text: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    text.extend_from_slice(&(name.len() as u32).to_le_bytes());
    text.extend_from_slice(&(value.len() as u32).to_le_bytes());
    text.extend_from_slice(name);
    text.extend_from_slice(value);
}

/// Room left for the upstream URI and the response headers when the request part is packed.
const RESPONSE_RESERVE: usize = 384;

/// The facts of one finished request (Kong's `kong.log.serialize()` inputs).
#[derive(Clone, Debug)]
pub struct LogRecord {
    /// Request start, ms since the Unix epoch (`started_at`).
    pub started_at_ms: u64,
    text: Vec<u8>,
    request_id: Range,
    method: Range,
    uri: Range,
    host: Range,
    upstream_uri: Range,
    request_headers: Range,
    response_headers: Range,
    /// `HTTP/1.1`, `HTTP/2.0`, … (access log's `$request`).
    pub http_version: &'static str,
    /// `https` or `http`.
    pub https: bool,
    /// The listener port, for `request.url`.
    pub port: u16,
    pub request_size: u64,
    pub status: u16,
    pub response_size: u64,
    /// The upstream's response status (nginx `upstream_status`); 0 = no upstream response.
    pub upstream_status: u16,
    /// ms: `kong` (gateway time), `proxy` (upstream wait, -1 if none), `request`, `receive`.
    pub kong_ms: u64,
    pub proxy_ms: Option<u64>,
    pub request_ms: u64,
    pub receive_ms: u64,
    /// The first balancer try inline (no allocation for the common single try), more in `more_tries`.
    first_try: Option<Try>,
    more_tries: Vec<Try>,
    pub client_ip: IpAddr,
    pub tls: Option<Box<TlsInfo>>,
    pub source: RequestSource,
    entities: Option<Arc<Entities>>,
    route: u32,
    service: u32,
    consumer: u32,
    /// The authenticating credential's id (`authenticated_entity.id`).
    pub credential_id: Option<u128>,
    /// Filled by [`LogRecord::set_request`] (everything) rather than `set_request_line`.
    full: bool,
}

fn text_range(text: &mut Vec<u8>, v: &[u8]) -> Range {
    let start = text.len() as u32;
    text.extend_from_slice(v);
    Range(start, text.len() as u32)
}

fn pack_headers(text: &mut Vec<u8>, h: &HeaderMap) -> Range {
    let start = text.len() as u32;
    for (k, v) in h {
        push_header(text, k.as_str().as_bytes(), v.as_bytes());
    }
    Range(start, text.len() as u32)
}

fn headers_len(h: &HeaderMap) -> usize {
    h.iter().map(|(k, v)| k.as_str().len() + v.len() + 8).sum()
}

/// Iterator over a packed header list: `(lower-case name, raw value)` as bytes, repeated names
/// adjacent.
#[derive(Clone)]
pub struct Headers<'a>(&'a [u8]);

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        // The two little-endian u32 lengths read as one u64 (name's in the low half).
        let (lens, rest) = self.0.split_first_chunk::<8>()?;
        let lens = u64::from_le_bytes(*lens);
        let (n, v) = ((lens & 0xffff_ffff) as usize, (lens >> 32) as usize);
        let (name, rest) = rest.split_at_checked(n)?;
        let (value, rest) = rest.split_at_checked(v)?;
        self.0 = rest;
        Some((name, value))
    }
}

impl LogRecord {
    /// A record with empty/zero fields; the proxy fills it with the setters below.
    pub fn empty() -> LogRecord {
        LogRecord {
            started_at_ms: 0,
            text: Vec::new(),
            request_id: Range::default(),
            method: Range::default(),
            uri: Range::default(),
            host: Range::default(),
            upstream_uri: Range::default(),
            request_headers: Range::default(),
            response_headers: Range::default(),
            http_version: "HTTP/1.1",
            https: false,
            port: 0,
            request_size: 0,
            status: 0,
            response_size: 0,
            upstream_status: 0,
            kong_ms: 0,
            proxy_ms: None,
            request_ms: 0,
            receive_ms: 0,
            first_try: None,
            more_tries: Vec::new(),
            client_ip: IpAddr::from([127, 0, 0, 1]),
            tls: None,
            source: RequestSource::Upstream,
            entities: None,
            route: NONE,
            service: NONE,
            consumer: NONE,
            credential_id: None,
            full: false,
        }
    }

    /// The request part, copied in one go (one allocation, with room for the response part).
    pub fn set_request(
        &mut self,
        request_id: &[u8],
        method: &str,
        uri: &str,
        host: &str,
        headers: &HeaderMap,
    ) {
        let need = request_id.len()
            + method.len()
            + uri.len()
            + host.len()
            + headers_len(headers)
            + RESPONSE_RESERVE;
        self.text.reserve(need);
        self.full = true;
        self.request_id = text_range(&mut self.text, request_id);
        self.method = text_range(&mut self.text, method.as_bytes());
        self.uri = text_range(&mut self.text, uri.as_bytes());
        self.host = text_range(&mut self.text, host.as_bytes());
        self.request_headers = pack_headers(&mut self.text, headers);
    }

    /// The request part the access log needs: id, method, URI and only the `referer` and
    /// `user-agent` headers (cheaper than [`LogRecord::set_request`] when no log plugin runs).
    pub fn set_request_line(
        &mut self,
        request_id: &[u8],
        method: &str,
        uri: &str,
        headers: &HeaderMap,
    ) {
        let referer = headers.get(http::header::REFERER);
        let agent = headers.get(http::header::USER_AGENT);
        let need = request_id.len()
            + method.len()
            + uri.len()
            + referer.map_or(0, |v| v.len() + 15)
            + agent.map_or(0, |v| v.len() + 18);
        self.text.reserve(need);
        self.request_id = text_range(&mut self.text, request_id);
        self.method = text_range(&mut self.text, method.as_bytes());
        self.uri = text_range(&mut self.text, uri.as_bytes());
        let start = self.text.len() as u32;
        for (name, v) in [("referer", referer), ("user-agent", agent)] {
            if let Some(v) = v {
                push_header(&mut self.text, name.as_bytes(), v.as_bytes());
            }
        }
        self.request_headers = Range(start, self.text.len() as u32);
    }

    /// The path and query sent upstream (`upstream_uri`).
    pub fn set_upstream_uri(&mut self, uri: &str) {
        self.upstream_uri = text_range(&mut self.text, uri.as_bytes());
    }

    pub fn set_response_headers(&mut self, headers: &HeaderMap) {
        self.response_headers = pack_headers(&mut self.text, headers);
    }

    /// The snapshot's entity JSON and which route / service / consumer this request had.
    pub fn set_entities(
        &mut self,
        entities: Arc<Entities>,
        route: Option<usize>,
        service: Option<usize>,
        consumer: Option<usize>,
    ) {
        let ix = |i: Option<usize>| i.map_or(NONE, |i| i.min(NONE as usize - 1) as u32);
        self.entities = Some(entities);
        (self.route, self.service, self.consumer) = (ix(route), ix(service), ix(consumer));
    }

    /// Whether the whole request part was captured (log plugins), not just the access-log line.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Records one balancer try (in order).
    pub fn push_try(&mut self, t: Try) {
        if self.first_try.is_none() {
            self.first_try = Some(t);
        } else {
            self.more_tries.push(t);
        }
    }

    pub fn tries(&self) -> impl Iterator<Item = &Try> {
        self.first_try.iter().chain(self.more_tries.iter())
    }

    fn bytes(&self, r: Range) -> &[u8] {
        self.text
            .get(r.0 as usize..r.1 as usize)
            .unwrap_or_default()
    }

    fn str(&self, r: Range) -> &str {
        std::str::from_utf8(self.bytes(r)).unwrap_or_default()
    }

    /// Method, URI, host and upstream URI as bytes, for the serializer: it scans them for
    /// escaping anyway, so the UTF-8 check of the `&str` accessors would be paid twice.
    pub(crate) fn method_bytes(&self) -> &[u8] {
        match self.bytes(self.method) {
            b"" => b"GET",
            m => m,
        }
    }

    pub(crate) fn uri_bytes(&self) -> &[u8] {
        match self.bytes(self.uri) {
            b"" => b"/",
            u => u,
        }
    }

    pub(crate) fn host_bytes(&self) -> &[u8] {
        self.bytes(self.host)
    }

    pub(crate) fn upstream_uri_bytes(&self) -> &[u8] {
        self.bytes(self.upstream_uri)
    }

    /// The request id as raw bytes (a header value).
    pub fn request_id(&self) -> &[u8] {
        self.bytes(self.request_id)
    }

    pub fn method(&self) -> &str {
        match self.str(self.method) {
            "" => "GET",
            m => m,
        }
    }

    /// The request target as received, path + query (`request.uri`).
    pub fn uri(&self) -> &str {
        match self.str(self.uri) {
            "" => "/",
            u => u,
        }
    }

    /// Host header value without port.
    pub fn host(&self) -> &str {
        self.str(self.host)
    }

    pub fn upstream_uri(&self) -> &str {
        self.str(self.upstream_uri)
    }

    pub fn request_headers(&self) -> Headers<'_> {
        Headers(self.bytes(self.request_headers))
    }

    pub fn response_headers(&self) -> Headers<'_> {
        Headers(self.bytes(self.response_headers))
    }

    /// The first request header `name` (lower-case).
    pub fn request_header(&self, name: &str) -> Option<&[u8]> {
        self.request_headers()
            .find(|(k, _)| *k == name.as_bytes())
            .map(|(_, v)| v)
    }

    fn entity<'a>(
        &'a self,
        list: impl Fn(&'a Entities) -> &'a Vec<Box<str>>,
        i: u32,
    ) -> Option<&'a str> {
        let e = self.entities.as_deref()?;
        list(e).get(i as usize).map(|s| &**s)
    }

    pub fn route_json(&self) -> Option<&str> {
        self.entity(|e| &e.routes, self.route)
    }

    pub fn service_json(&self) -> Option<&str> {
        self.entity(|e| &e.services, self.service)
    }

    pub fn consumer_json(&self) -> Option<&str> {
        self.entity(|e| &e.consumers, self.consumer)
    }

    pub fn consumer_id(&self) -> Option<&str> {
        self.entity(|e| &e.consumer_ids, self.consumer)
    }

    pub fn workspace(&self) -> (&str, &str) {
        self.entities
            .as_deref()
            .map_or(("", ""), |e| (&e.workspace, &e.workspace_name))
    }

    /// Rough heap + inline size, for `max_bytes` accounting (shared `Arc` data not counted).
    pub fn approx_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.text.capacity()
            + self.more_tries.len() * std::mem::size_of::<Try>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_reads_back() {
        let mut r = LogRecord::empty();
        let h = header_map(&[("Host", "a.test:8000"), ("x-a", "1"), ("x-a", "2")]);
        r.set_request(b"rid", "POST", "/p?q=1", "a.test", &h);
        r.set_upstream_uri("/up");
        r.set_response_headers(&header_map(&[("content-type", "text/plain")]));
        assert_eq!(r.request_id(), b"rid");
        assert_eq!(
            (r.method(), r.uri(), r.host()),
            ("POST", "/p?q=1", "a.test")
        );
        assert_eq!(r.upstream_uri(), "/up");
        let got: Vec<_> = r.request_headers().collect();
        assert_eq!(
            got,
            vec![
                (&b"host"[..], &b"a.test:8000"[..]),
                (&b"x-a"[..], &b"1"[..]),
                (&b"x-a"[..], &b"2"[..])
            ]
        );
        assert_eq!(r.request_header("x-a"), Some(&b"1"[..]));
        assert_eq!(
            r.response_headers().collect::<Vec<_>>(),
            vec![(&b"content-type"[..], &b"text/plain"[..])]
        );
        assert_eq!(r.tries().count(), 0);
        assert_eq!(r.route_json(), None);
    }

    /// A cut-off list yields the entries that are whole and then stops (no panic, no garbage).
    #[test]
    fn truncated_header_lists_stop_cleanly() {
        let mut text = Vec::new();
        push_header(&mut text, b"a", b"1");
        let first = text.len();
        push_header(&mut text, b"content-type", b"text/plain");
        for cut in 0..=text.len() {
            let got: Vec<_> = Headers(&text[..cut]).collect();
            let want = match cut {
                c if c == text.len() => 2,
                c if c >= first => 1,
                _ => 0,
            };
            assert_eq!(got.len(), want, "cut at {cut}");
            if want > 0 {
                assert_eq!(got[0], (&b"a"[..], &b"1"[..]));
            }
        }
    }
}
