//! opentelemetry: W3C `traceparent` propagation to the upstream and request spans exported as
//! OTLP/HTTP **protobuf** (`Content-Type: application/x-protobuf`, as Kong's `otlp.lua`) to
//! `traces_endpoint`, batched on a shipper thread (the `gatehouse-logging` queue). Kong 3.x has
//! no option for the JSON encoding, so there is none here.
//!
//! Per request: a valid incoming `traceparent` is continued (same trace id, its span id becomes
//! our parent, its sampled flag is kept); otherwise a new trace starts. Our span gets a new id,
//! which is what the upstream sees as parent. Sampling: the plugin's `sampling_rate` (default 1)
//! for new traces; continued traces follow the caller's flag. The proxy thread copies the few
//! request facts a span reports into one small buffer ([`SpanRequest`]); the protobuf encoding
//! (a hand-written writer, `gatehouse_logging::proto`) happens on the shipper thread.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatehouse_logging::{proto, Entry, HttpLogConfig, HttpLogSink, Queue, QueueSender, Sink};
use gatehouse_plugins::{Observer, OpenTelemetryConfig};
use http::{HeaderMap, HeaderName, HeaderValue};

static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The trace context of one request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TraceCtx {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    pub sampled: bool,
    /// The opentelemetry instance (index in the snapshot's plugins).
    pub instance: usize,
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0x9E37_79B9, |d| d.as_nanos() as u64);
    let local = 0u8;
    t ^ (&local as *const u8 as u64).rotate_left(32) | 1
}

fn next_u64() -> u64 {
    RNG.with(|r| {
        // xorshift64*: ids must be unique, not unpredictable.
        let mut x = r.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn parse_hex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = hex_val(s[2 * i])? << 4 | hex_val(s[2 * i + 1])?;
    }
    Some(out)
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; all-zero ids are invalid.
fn parse_traceparent(v: &[u8]) -> Option<([u8; 16], [u8; 8], bool)> {
    let mut parts = v.split(|&b| b == b'-');
    let version = parse_hex::<1>(parts.next()?)?;
    let trace: [u8; 16] = parse_hex(parts.next()?)?;
    let parent: [u8; 8] = parse_hex(parts.next()?)?;
    let flags = parse_hex::<1>(parts.next()?)?;
    if version[0] == 0xff || (version[0] == 0 && parts.next().is_some()) {
        return None;
    }
    if trace == [0; 16] || parent == [0; 8] {
        return None;
    }
    Some((trace, parent, flags[0] & 1 == 1))
}

fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    for b in bytes {
        out.push(b"0123456789abcdef"[(b >> 4) as usize]);
        out.push(b"0123456789abcdef"[(b & 0xf) as usize]);
    }
}

/// Starts or continues the trace from the request's headers and sets `traceparent` for the
/// upstream to our span.
pub(crate) fn propagate(
    headers: &mut HeaderMap,
    instance: usize,
    cfg: &OpenTelemetryConfig,
) -> TraceCtx {
    let incoming = headers
        .get(&TRACEPARENT)
        .and_then(|v| parse_traceparent(v.as_bytes()));
    let ctx = match incoming {
        Some((trace_id, parent, sampled)) => TraceCtx {
            trace_id,
            span_id: next_u64().max(1).to_be_bytes(),
            parent: Some(parent),
            sampled,
            instance,
        },
        None => {
            let rate = cfg.sampling_rate.unwrap_or(1.0);
            let (a, b) = (next_u64(), next_u64());
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&a.to_be_bytes());
            trace_id[8..].copy_from_slice(&b.max(1).to_be_bytes());
            TraceCtx {
                trace_id,
                span_id: next_u64().max(1).to_be_bytes(),
                parent: None,
                sampled: rate >= 1.0 || ((next_u64() >> 11) as f64 / (1u64 << 53) as f64) < rate,
                instance,
            }
        }
    };
    let mut v = Vec::with_capacity(55);
    v.extend_from_slice(b"00-");
    hex(&mut v, &ctx.trace_id);
    v.push(b'-');
    hex(&mut v, &ctx.span_id);
    v.extend_from_slice(if ctx.sampled { b"-01" } else { b"-00" });
    if let Ok(v) = HeaderValue::from_bytes(&v) {
        headers.insert(TRACEPARENT.clone(), v);
    }
    ctx
}

/// The request facts a span reports, copied when the request arrives (before it is taken
/// apart): method, host, path and request id in one small buffer, so the span holds no slice of
/// the connection's read buffer while it waits in the queue.
#[derive(Clone)]
pub(crate) struct SpanRequest {
    /// method, host (without port), path + query, request id, back to back.
    text: Box<[u8]>,
    ends: [u16; 4],
    /// `http.flavor`: `1.0`, `1.1`, `2.0`.
    flavor: &'static str,
    https: bool,
    /// `http.client_ip` (the forwarded client address) and `net.peer.ip`.
    client_ip: IpAddr,
    peer_ip: IpAddr,
}

impl SpanRequest {
    pub fn capture<B>(
        req: &http::Request<B>,
        request_id: &HeaderValue,
        https: bool,
        client_ip: IpAddr,
        peer_ip: IpAddr,
    ) -> SpanRequest {
        let uri = req.uri();
        // nginx's `$host`: the request line's host, else the Host header; without the port.
        let host = uri
            .host()
            .map(str::as_bytes)
            .or_else(|| req.headers().get(http::header::HOST).map(|h| h.as_bytes()))
            .unwrap_or_default();
        let host = match host.iter().rposition(|&b| b == b':') {
            Some(i) if !host.ends_with(b"]") => &host[..i],
            _ => host,
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let parts: [&[u8]; 4] = [
            req.method().as_str().as_bytes(),
            host,
            path.as_bytes(),
            request_id.as_bytes(),
        ];
        // Each part is capped so that the end offsets fit in u16 (a longer URL is truncated).
        let mut text = Vec::with_capacity(parts.iter().map(|p| p.len().min(16_000)).sum());
        let mut ends = [0u16; 4];
        for (p, e) in parts.iter().zip(&mut ends) {
            text.extend_from_slice(&p[..p.len().min(16_000)]);
            *e = text.len() as u16;
        }
        SpanRequest {
            text: text.into_boxed_slice(),
            ends,
            flavor: match req.version() {
                http::Version::HTTP_10 => "1.0",
                http::Version::HTTP_2 => "2.0",
                http::Version::HTTP_3 => "3.0",
                _ => "1.1",
            },
            https,
            client_ip,
            peer_ip,
        }
    }

    fn part(&self, i: usize) -> &[u8] {
        let from = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text
            .get(from..self.ends[i] as usize)
            .unwrap_or_default()
    }
}

/// One finished request span, as the proxy thread pushes it.
pub(crate) struct Span {
    pub ctx: TraceCtx,
    pub start_ns: u64,
    pub end_ns: u64,
    pub req: Option<SpanRequest>,
    pub status: u16,
    /// `http.route`: the route's first path (Kong's `route.paths[1]`), shared per snapshot.
    pub route_path: Option<Arc<str>>,
}

impl Entry for Span {
    fn approx_size(&self) -> usize {
        std::mem::size_of::<Span>() + self.req.as_ref().map_or(0, |r| r.text.len())
    }
}

/// Encodes batches as an OTLP `ExportTraceServiceRequest` (protobuf) and POSTs them.
struct OtlpSink {
    http: HttpLogSink,
    /// The encoded `Resource` message body (attributes), made once.
    resource: Vec<u8>,
}

/// OTLP field numbers (opentelemetry-proto `trace/v1/trace.proto`, `common/v1/common.proto`,
/// `collector/trace/v1/trace_service.proto`).
mod f {
    pub const REQUEST_RESOURCE_SPANS: u32 = 1;
    pub const RESOURCE_SPANS_RESOURCE: u32 = 1;
    pub const RESOURCE_SPANS_SCOPE_SPANS: u32 = 2;
    pub const RESOURCE_ATTRIBUTES: u32 = 1;
    pub const SCOPE_SPANS_SCOPE: u32 = 1;
    pub const SCOPE_SPANS_SPANS: u32 = 2;
    pub const SCOPE_NAME: u32 = 1;
    pub const SCOPE_VERSION: u32 = 2;
    pub const SPAN_TRACE_ID: u32 = 1;
    pub const SPAN_SPAN_ID: u32 = 2;
    pub const SPAN_PARENT_SPAN_ID: u32 = 4;
    pub const SPAN_NAME: u32 = 5;
    pub const SPAN_KIND: u32 = 6;
    pub const SPAN_START: u32 = 7;
    pub const SPAN_END: u32 = 8;
    pub const SPAN_ATTRIBUTES: u32 = 9;
    pub const SPAN_STATUS: u32 = 15;
    pub const STATUS_CODE: u32 = 3;
    pub const KV_KEY: u32 = 1;
    pub const KV_VALUE: u32 = 2;
    pub const ANY_STRING: u32 = 1;
    pub const ANY_INT: u32 = 3;
    /// `SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`.
    pub const KIND_SERVER: u64 = 2;
    pub const STATUS_ERROR: u64 = 2;
}

/// A `KeyValue` with a string value made of `parts`.
fn attr_str(out: &mut Vec<u8>, field: u32, key: &str, parts: &[&[u8]]) {
    proto::message(out, field, |o| {
        proto::bytes(o, f::KV_KEY, key.as_bytes());
        proto::message(o, f::KV_VALUE, |o| {
            proto::bytes_parts(o, f::ANY_STRING, parts)
        });
    });
}

fn attr_int(out: &mut Vec<u8>, field: u32, key: &str, v: i64) {
    proto::message(out, field, |o| {
        proto::bytes(o, f::KV_KEY, key.as_bytes());
        proto::message(o, f::KV_VALUE, |o| proto::int(o, f::ANY_INT, v));
    });
}

fn attr_ip(out: &mut Vec<u8>, key: &str, ip: IpAddr) {
    let mut buf = [0u8; 48];
    let mut w = &mut buf[..];
    let _ = write!(w, "{ip}");
    let len = 48 - w.len();
    attr_str(out, f::SPAN_ATTRIBUTES, key, &[&buf[..len]]);
}

/// One span: Kong's root span `kong` (kind SERVER) with the attributes of
/// `kong/tracing/instrumentation.lua` (`request` and `runloop_before_header_filter`).
fn encode_span(o: &mut Vec<u8>, s: &Span) {
    proto::bytes(o, f::SPAN_TRACE_ID, &s.ctx.trace_id);
    proto::bytes(o, f::SPAN_SPAN_ID, &s.ctx.span_id);
    if let Some(p) = &s.ctx.parent {
        proto::bytes(o, f::SPAN_PARENT_SPAN_ID, p);
    }
    proto::bytes(o, f::SPAN_NAME, b"kong");
    proto::uint(o, f::SPAN_KIND, f::KIND_SERVER);
    proto::fixed64(o, f::SPAN_START, s.start_ns);
    proto::fixed64(o, f::SPAN_END, s.end_ns);
    let a = f::SPAN_ATTRIBUTES;
    if let Some(r) = &s.req {
        let (method, host, path, id) = (r.part(0), r.part(1), r.part(2), r.part(3));
        let scheme: &[u8] = if r.https { b"https" } else { b"http" };
        attr_str(o, a, "http.method", &[method]);
        attr_str(o, a, "http.url", &[scheme, b"://", host, path]);
        attr_str(o, a, "http.host", &[host]);
        attr_str(o, a, "http.scheme", &[scheme]);
        attr_str(o, a, "http.flavor", &[r.flavor.as_bytes()]);
        attr_ip(o, "http.client_ip", r.client_ip);
        attr_ip(o, "net.peer.ip", r.peer_ip);
        attr_str(o, a, "kong.request.id", &[id]);
    }
    attr_int(o, a, "http.status_code", i64::from(s.status));
    let route = s.route_path.as_deref().unwrap_or_default();
    attr_str(o, a, "http.route", &[route.as_bytes()]);
    if s.status >= 500 {
        proto::message(o, f::SPAN_STATUS, |o| {
            proto::uint(o, f::STATUS_CODE, f::STATUS_ERROR)
        });
    }
}

/// `ExportTraceServiceRequest` → one `ResourceSpans` → one `ScopeSpans` (`kong-internal`, as
/// Kong's `otlp.lua`) → the batch's spans.
fn encode_request(out: &mut Vec<u8>, resource: &[u8], batch: &[Span]) {
    proto::message(out, f::REQUEST_RESOURCE_SPANS, |o| {
        proto::message(o, f::RESOURCE_SPANS_RESOURCE, |o| {
            o.extend_from_slice(resource)
        });
        proto::message(o, f::RESOURCE_SPANS_SCOPE_SPANS, |o| {
            proto::message(o, f::SCOPE_SPANS_SCOPE, |o| {
                proto::bytes(o, f::SCOPE_NAME, b"kong-internal");
                proto::bytes(o, f::SCOPE_VERSION, b"0.1.0");
            });
            for s in batch {
                proto::message(o, f::SCOPE_SPANS_SPANS, |o| encode_span(o, s));
            }
        });
    });
}

/// The `Resource` attributes: `service.name` = `kong` unless `resource_attributes` names it.
fn encode_resource(attrs: Option<&serde_json::Map<String, serde_json::Value>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut has_name = false;
    for (k, v) in attrs.into_iter().flatten() {
        has_name |= k == "service.name";
        let v = v.as_str().unwrap_or_default();
        attr_str(&mut out, f::RESOURCE_ATTRIBUTES, k, &[v.as_bytes()]);
    }
    if !has_name {
        attr_str(&mut out, f::RESOURCE_ATTRIBUTES, "service.name", &[b"kong"]);
    }
    out
}

impl Sink<Span> for OtlpSink {
    fn send(&mut self, batch: &[Span], _single: bool) -> Result<(), String> {
        let resource = &self.resource;
        self.http
            .post_with(|out| encode_request(out, resource, batch))
    }
}

fn start(id: &uuid::Uuid, c: &OpenTelemetryConfig) -> Result<Queue<Span>, String> {
    let endpoint = c
        .traces_endpoint
        .clone()
        .ok_or("no traces_endpoint (logs_endpoint is not supported)")?;
    let http = HttpLogSink::new(&HttpLogConfig {
        http_endpoint: endpoint,
        method: "POST".into(),
        content_type: "application/x-protobuf".into(),
        timeout: Duration::from_millis(
            (c.connect_timeout.max(c.send_timeout).max(c.read_timeout)).max(1) as u64,
        ),
        keepalive: Duration::from_secs(60),
        headers: c
            .headers
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect(),
    })?;
    let resource = encode_resource(c.resource_attributes.as_ref());
    let q = c.effective_queue();
    let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.0, 1e9));
    let cfg = gatehouse_logging::QueueConfig {
        max_batch_size: q.max_batch_size.max(1) as usize,
        max_coalescing_delay: secs(q.max_coalescing_delay),
        max_entries: q.max_entries.max(1) as usize,
        max_bytes: None,
        max_retry_time: secs(q.max_retry_time),
        initial_retry_delay: secs(q.initial_retry_delay),
        max_retry_delay: secs(q.max_retry_delay),
        concurrency_limit: 1,
    };
    let sink = OtlpSink { http, resource };
    Queue::start(&format!("otel-{id}"), cfg, sink).map_err(|e| e.to_string())
}

/// The exporters of the running opentelemetry instances, kept across reloads while unchanged.
#[derive(Default)]
pub(crate) struct SpanQueues {
    running: Mutex<HashMap<String, Queue<Span>>>,
}

impl SpanQueues {
    pub fn resolve(
        &self,
        observers: &[(usize, Observer)],
        metrics: &gatehouse_metrics::Registry,
    ) -> Vec<Option<QueueSender<Span>>> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let mut keep = HashSet::new();
        let mut out: Vec<Option<QueueSender<Span>>> = Vec::new();
        for (index, o) in observers {
            let Observer::OpenTelemetry(id, c) = o else {
                continue;
            };
            let key = format!("{id}/{}", serde_json::to_string(&**c).unwrap_or_default());
            if !running.contains_key(&key) {
                match start(id, c) {
                    Ok(q) => {
                        metrics.register_external(
                            "gatehouse_log_dropped_total",
                            "Log records dropped because the plugin's queue was full",
                            true,
                            &[("plugin", "opentelemetry"), ("id", &id.to_string())],
                            q.stats().dropped.clone(),
                        );
                        running.insert(key.clone(), q);
                    }
                    Err(e) => {
                        tracing::error!(%id, "cannot start the opentelemetry exporter: {e}");
                        continue;
                    }
                }
            }
            if let Some(q) = running.get(&key) {
                if out.len() <= *index {
                    out.resize(index + 1, None);
                }
                out[*index] = Some(q.sender());
            }
            keep.insert(key);
        }
        let stale: Vec<String> = running
            .keys()
            .filter(|k| !keep.contains(*k))
            .cloned()
            .collect();
        let stopped: Vec<Queue<Span>> = stale.iter().filter_map(|k| running.remove(k)).collect();
        if !stopped.is_empty() {
            let _ = std::thread::Builder::new()
                .name("gh-otel-stop".into())
                .spawn(move || drop(stopped));
        }
        out
    }
}

/// Nanoseconds since the epoch of an `Instant` in the past (`ago` before now).
pub(crate) fn epoch_ns(ago: Duration) -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.saturating_sub(ago).as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_table() {
        let t = "4bf92f3577b34da6a3ce929d0e0e4736";
        let cases: &[(&str, bool)] = &[
            (&format!("00-{t}-00f067aa0ba902b7-01"), true),
            (&format!("00-{t}-00f067aa0ba902b7-00"), true),
            (&format!("00-{t}-0000000000000000-01"), false),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                false,
            ),
            (&format!("00-{t}-00f067aa0ba902b7"), false),
            (&format!("00-{t}-00F067AA0BA902B7-01"), false),
            (&format!("ff-{t}-00f067aa0ba902b7-01"), false),
            ("garbage", false),
        ];
        for (v, ok) in cases {
            assert_eq!(parse_traceparent(v.as_bytes()).is_some(), *ok, "{v}");
        }
    }
}
