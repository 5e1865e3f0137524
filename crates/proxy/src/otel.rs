//! opentelemetry: W3C `traceparent` propagation to the upstream and request spans exported over
//! OTLP/HTTP, batched on a shipper thread (the `gatehouse-logging` queue).
//!
//! Encoding: OTLP/HTTP with the **JSON** encoding (`Content-Type: application/json`, ids as hex,
//! times as decimal strings), which every OTLP/HTTP collector accepts. Kong sends protobuf; JSON
//! keeps protobuf code generation out of the build, and is written on the shipper thread.
//!
//! Per request: a valid incoming `traceparent` is continued (same trace id, its span id becomes
//! our parent, its sampled flag is kept); otherwise a new trace starts. Our span gets a new id,
//! which is what the upstream sees as parent. Sampling: the plugin's `sampling_rate` (default 1)
//! for new traces; continued traces follow the caller's flag.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatehouse_logging::{Entry, HttpLogConfig, HttpLogSink, Queue, QueueSender, Sink};
use gatehouse_plugins::{Observer, OpenTelemetryConfig};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

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

/// One finished request span, as the proxy thread pushes it.
pub(crate) struct Span {
    pub ctx: TraceCtx,
    pub start_ns: u64,
    pub end_ns: u64,
    pub method: Method,
    pub status: u16,
    pub route: Option<Arc<str>>,
    pub service: Option<Arc<str>>,
}

impl Entry for Span {
    fn approx_size(&self) -> usize {
        std::mem::size_of::<Span>()
    }
}

/// Renders batches as an OTLP/JSON `ExportTraceServiceRequest` and POSTs them.
struct OtlpSink {
    http: HttpLogSink,
    resource: String,
    body: Vec<u8>,
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

fn attr_str(out: &mut Vec<u8>, first: &mut bool, k: &str, v: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.extend_from_slice(b"{\"key\":");
    json_str(out, k);
    out.extend_from_slice(b",\"value\":{\"stringValue\":");
    json_str(out, v);
    out.extend_from_slice(b"}}");
}

impl Sink<Span> for OtlpSink {
    fn send(&mut self, batch: &[Span], _single: bool) -> Result<(), String> {
        let o = &mut self.body;
        o.clear();
        o.extend_from_slice(b"{\"resourceSpans\":[{\"resource\":");
        o.extend_from_slice(self.resource.as_bytes());
        o.extend_from_slice(
            b",\"scopeSpans\":[{\"scope\":{\"name\":\"kong-internal\",\"version\":\"0.1.0\"},\"spans\":[",
        );
        for (i, s) in batch.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            o.extend_from_slice(b"{\"traceId\":\"");
            hex(o, &s.ctx.trace_id);
            o.extend_from_slice(b"\",\"spanId\":\"");
            hex(o, &s.ctx.span_id);
            o.extend_from_slice(b"\",\"parentSpanId\":\"");
            if let Some(p) = &s.ctx.parent {
                hex(o, p);
            }
            o.extend_from_slice(b"\",\"name\":\"kong\",\"kind\":2,\"startTimeUnixNano\":\"");
            o.extend_from_slice(s.start_ns.to_string().as_bytes());
            o.extend_from_slice(b"\",\"endTimeUnixNano\":\"");
            o.extend_from_slice(s.end_ns.to_string().as_bytes());
            o.extend_from_slice(b"\",\"attributes\":[");
            let mut first = true;
            attr_str(o, &mut first, "http.method", s.method.as_str());
            o.extend_from_slice(b",{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"");
            o.extend_from_slice(s.status.to_string().as_bytes());
            o.extend_from_slice(b"\"}}");
            if let Some(r) = &s.route {
                attr_str(o, &mut first, "kong.route", r);
            }
            if let Some(r) = &s.service {
                attr_str(o, &mut first, "kong.service", r);
            }
            o.extend_from_slice(b"],\"status\":{");
            if s.status >= 500 {
                o.extend_from_slice(b"\"code\":2");
            }
            o.extend_from_slice(b"}}");
        }
        o.extend_from_slice(b"]}]}]}");
        let body = std::mem::take(&mut self.body);
        let r = self.http.post(&body);
        self.body = body;
        r
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
        content_type: "application/json".into(),
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
    let mut attrs = Vec::new();
    let mut first = true;
    let mut has_name = false;
    for (k, v) in c.resource_attributes.iter().flatten() {
        has_name |= k == "service.name";
        attr_str(&mut attrs, &mut first, k, v.as_str().unwrap_or_default());
    }
    if !has_name {
        attr_str(&mut attrs, &mut first, "service.name", "kong");
    }
    let resource = format!("{{\"attributes\":[{}]}}", String::from_utf8_lossy(&attrs));
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
    let sink = OtlpSink {
        http,
        resource,
        body: Vec::new(),
    };
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
