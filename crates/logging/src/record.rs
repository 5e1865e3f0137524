//! The compact per-request log record the proxy thread fills. No JSON here: entity fields are
//! pre-serialised per config snapshot (`Arc<str>`, a refcount bump per request), everything else
//! is plain data the shipper thread turns into Kong's format.

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
    pub ip: IpAddr,
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

/// The facts of one finished request (Kong's `kong.log.serialize()` inputs).
#[derive(Clone, Debug)]
pub struct LogRecord {
    /// Request start, ms since the Unix epoch (`started_at`).
    pub started_at_ms: u64,
    pub request_id: Box<str>,
    pub method: Box<str>,
    /// `HTTP/1.1`, `HTTP/2.0`, … (access log's `$request`).
    pub http_version: &'static str,
    /// The request target as received, path + query (`request.uri`).
    pub uri: Box<str>,
    /// `https` or `http`.
    pub https: bool,
    /// Host header value (without port) and the listener port, for `request.url`.
    pub host: Box<str>,
    pub port: u16,
    pub request_size: u64,
    /// Request headers to log (repeated names become arrays). A `HeaderMap` so the proxy
    /// thread clones the request's map (reference-count bumps) instead of copying strings.
    pub request_headers: HeaderMap,
    pub status: u16,
    pub response_size: u64,
    pub response_headers: HeaderMap,
    pub upstream_uri: Box<str>,
    /// nginx-style `upstream_status` (`"502, 200"` after retries); empty when no upstream.
    pub upstream_status: Box<str>,
    /// ms: `kong` (gateway time), `proxy` (upstream wait, -1 if none), `request`, `receive`.
    pub kong_ms: u64,
    pub proxy_ms: Option<u64>,
    pub request_ms: u64,
    pub receive_ms: u64,
    pub tries: Vec<Try>,
    pub client_ip: IpAddr,
    pub tls: Option<TlsInfo>,
    pub source: RequestSource,
    /// Entity objects as JSON text, built once per snapshot (`route`, `service`, `consumer`).
    pub route: Option<Arc<str>>,
    pub service: Option<Arc<str>>,
    pub consumer: Option<Arc<str>>,
    /// `authenticated_entity` JSON (`{"id":…}` of the credential), if any.
    pub authenticated_entity: Option<Arc<str>>,
    pub workspace: Arc<str>,
    pub workspace_name: Arc<str>,
}

impl LogRecord {
    /// Rough heap + inline size, for `max_bytes` accounting (shared `Arc` data not counted).
    pub fn approx_size(&self) -> usize {
        let hs = |h: &HeaderMap| {
            h.iter()
                .map(|(k, v)| k.as_str().len() + v.len() + 32)
                .sum::<usize>()
        };
        std::mem::size_of::<Self>()
            + self.request_id.len()
            + self.method.len()
            + self.uri.len()
            + self.host.len()
            + self.upstream_uri.len()
            + self.upstream_status.len()
            + hs(&self.request_headers)
            + hs(&self.response_headers)
            + self.tries.len() * std::mem::size_of::<Try>()
    }

    /// A record with empty/zero fields (tests, benches; the proxy fills every field).
    pub fn empty() -> LogRecord {
        let empty: Arc<str> = Arc::from("");
        LogRecord {
            started_at_ms: 0,
            request_id: "".into(),
            method: "GET".into(),
            http_version: "HTTP/1.1",
            uri: "/".into(),
            https: false,
            host: "".into(),
            port: 0,
            request_size: 0,
            request_headers: HeaderMap::new(),
            status: 0,
            response_size: 0,
            response_headers: HeaderMap::new(),
            upstream_uri: "".into(),
            upstream_status: "".into(),
            kong_ms: 0,
            proxy_ms: None,
            request_ms: 0,
            receive_ms: 0,
            tries: Vec::new(),
            client_ip: IpAddr::from([127, 0, 0, 1]),
            tls: None,
            source: RequestSource::Upstream,
            route: None,
            service: None,
            consumer: None,
            authenticated_entity: None,
            workspace: empty.clone(),
            workspace_name: empty,
        }
    }
}
