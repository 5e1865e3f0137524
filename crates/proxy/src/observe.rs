//! Observability hooks of the request path: Prometheus metrics recorded in the log phase into
//! this thread's shard, through handles resolved when the snapshot was built, and log records
//! handed to the http-log/file-log queues (`logs.rs`).
//!
//! Why here and not in request.rs: the request path calls two hooks ([`request_started`],
//! [`log_phase`]); everything else (which series a route writes, which prometheus flags
//! apply, node counters) lives in this file. Per request the cost is a few relaxed
//! load/store pairs into cells only this thread writes, no allocation, no label lookup.
//!
//! The [`Observability`] hub (registry, later log queues) is created once at start-up and
//! attached to the first snapshot ([`crate::Snapshot::observed`]); every later snapshot built
//! from a previous one inherits it, so the admin side finds it through the published cell.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use gatehouse_config::Config;
use gatehouse_logging::QueueSender;
use gatehouse_metrics::{
    ConsumerMetrics, MetricFlags, Observation, Registry, RouteLabels, RouteMetrics, Shard, Source,
};
use gatehouse_plugins::{ObserverRef, PluginState, Plugins};
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};

use crate::forwarded::{self, Peer};
use crate::logs::{self, EntityJson, LogQueues};
use crate::otel::{self, Span, SpanQueues, TraceCtx};

use crate::snapshot::SnapshotCell;

/// Process-wide observability state, shared by every snapshot of one gateway.
pub struct Observability {
    metrics: Arc<Registry>,
    /// LMDB data file, sized at scrape time (`gatehouse_lmdb_size_bytes`).
    lmdb_file: Option<PathBuf>,
    logs: LogQueues,
    spans: SpanQueues,
    /// `proxy_access_log` writer, when on.
    access: Option<logs::AccessLog>,
}

impl std::fmt::Debug for Observability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observability").finish_non_exhaustive()
    }
}

impl Observability {
    /// `metrics` must have one shard per proxy thread; `access_log` is the proxy access log
    /// file (`proxy_access_log`), `None` when off.
    pub fn new(
        metrics: Arc<Registry>,
        lmdb_file: Option<PathBuf>,
        access_log: Option<PathBuf>,
    ) -> Arc<Observability> {
        let access = access_log.and_then(|p| match logs::AccessLog::start(&p, &metrics) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::error!(path = %p.display(), "cannot start the proxy access log: {e}");
                None
            }
        });
        Arc::new(Observability {
            metrics,
            lmdb_file,
            logs: LogQueues::default(),
            spans: SpanQueues::default(),
            access,
        })
    }

    pub fn metrics(&self) -> &Arc<Registry> {
        &self.metrics
    }

    /// SIGUSR1 / log rotation: file-log plugins reopen their files before the next write.
    pub fn reopen_log_files(&self) {
        self.logs.reopen_files();
        if let Some(a) = &self.access {
            a.reopen.reopen();
        }
    }

    /// The Prometheus exposition (call from an admin/status thread, never a proxy thread).
    pub fn render_metrics(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        self.render_metrics_to(out)
    }

    /// [`Observability::render_metrics`] into any writer (it is written in 64 KiB chunks).
    pub fn render_metrics_to<W: std::io::Write>(&self, out: &mut W) -> std::io::Result<()> {
        if let Some(size) = self
            .lmdb_file
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
        {
            self.metrics.process().set_lmdb_size(size.len());
        }
        if let Some(rss) = resident_bytes() {
            self.metrics.process().set_resident_bytes(rss);
        }
        self.metrics.render(out)
    }
}

/// Resident set size from `/proc/self/statm` (pages × 4 KiB; Linux only, `None` elsewhere).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// A snapshot's resolved handles.
#[derive(Default)]
pub(crate) struct SnapshotObs {
    pub hub: Option<Arc<Observability>>,
    /// Per route (config order): its series, when it has a service and a prometheus plugin
    /// exists in the config.
    routes: Vec<Option<RouteMetrics>>,
    /// Per consumer (config order), when some prometheus instance has `per_consumer`.
    consumers: Vec<ConsumerMetrics>,
    /// Whether any observer plugin is configured at all (else the log phase skips the walk).
    any_observer: bool,
    /// Whether an http-log/file-log plugin is configured (the request path then captures
    /// what the log record needs).
    any_log: bool,
    /// Queue per plugin instance index (http-log / file-log instances only).
    log_senders: Vec<Option<QueueSender>>,
    entities: EntityJson,
    /// Whether an opentelemetry plugin is configured.
    any_otel: bool,
    /// Exporter per plugin instance index (opentelemetry instances only).
    span_senders: Vec<Option<QueueSender<Span>>>,
    /// Per route: its first path, the spans' `http.route`.
    route_paths: Vec<Option<Arc<str>>>,
}

impl SnapshotObs {
    /// Resolves the handles for `config`. Runs on the control thread that builds the snapshot.
    /// The registry forgets series of removed routes here, before the swap (a refused load
    /// afterwards leaves those series unrendered until the next successful load).
    pub fn build(hub: Option<Arc<Observability>>, config: &Config, plugins: &Plugins) -> Self {
        let observers = plugins.observer_instances();
        let any_observer = !observers.is_empty();
        let Some(h) = hub.as_ref() else {
            return SnapshotObs {
                hub,
                any_observer,
                ..SnapshotObs::default()
            };
        };
        let mut prometheus = false;
        let mut per_consumer = false;
        let mut any_log = false;
        let mut any_otel = false;
        for (_, o) in &observers {
            match o {
                gatehouse_plugins::Observer::Prometheus(_, c) => {
                    prometheus = true;
                    per_consumer |= c.per_consumer;
                }
                gatehouse_plugins::Observer::HttpLog(..)
                | gatehouse_plugins::Observer::FileLog(..) => any_log = true,
                gatehouse_plugins::Observer::OpenTelemetry(..) => any_otel = true,
            }
        }
        let log_senders = h.logs.resolve(&observers, &h.metrics);
        let span_senders = h.spans.resolve(&observers, &h.metrics);
        let route_paths = if any_otel {
            let first =
                |r: &gatehouse_config::Route| r.paths.as_ref()?.first().map(|p| p.as_str().into());
            config.routes.iter().map(first).collect()
        } else {
            Vec::new()
        };
        let entities = if any_log {
            EntityJson::build(config)
        } else {
            EntityJson::default()
        };
        let mut b = h.metrics.snapshot_builder();
        let mut routes = Vec::new();
        let mut consumers = Vec::new();
        if prometheus {
            let services: HashMap<_, _> = config.services.iter().map(|s| (s.id, s)).collect();
            routes = config
                .routes
                .iter()
                .map(|r| {
                    let s = services.get(&r.service?)?;
                    let labels = RouteLabels::kong(
                        s.name.as_deref(),
                        &s.host,
                        r.name.as_deref(),
                        &r.id.to_string(),
                        "default",
                    );
                    Some(b.route(labels, MetricFlags::default()))
                })
                .collect();
            if per_consumer {
                consumers = config
                    .consumers
                    .iter()
                    .map(|c| {
                        let id = c.id.to_string();
                        b.consumer(c.username.as_deref().unwrap_or(&id))
                    })
                    .collect();
            }
        }
        b.commit();
        SnapshotObs {
            hub,
            routes,
            consumers,
            any_observer,
            any_log,
            log_senders,
            entities,
            any_otel,
            span_senders,
            route_paths,
        }
    }
}

/// A proxy thread's writers.
pub(crate) struct WorkerObs {
    shard: Option<Shard>,
    /// The proxy access log's queue (`proxy_access_log`), when on.
    access: Option<QueueSender>,
}

impl WorkerObs {
    /// Claims proxy thread `index`'s shard from the hub attached to the current snapshot.
    pub fn new(index: usize, cell: &SnapshotCell) -> WorkerObs {
        let snap = cell.load();
        let hub = snap.obs.hub.as_ref();
        WorkerObs {
            shard: hub.and_then(|h| h.metrics.shard(index)),
            access: hub.and_then(|h| h.access.as_ref().map(|a| a.queue.sender())),
        }
    }

    pub fn connection_opened(&self) {
        if let Some(s) = &self.shard {
            s.connection_opened();
        }
    }

    pub fn connection_closed(&self) {
        if let Some(s) = &self.shard {
            s.connection_closed();
        }
    }
}

/// What the request path measured, for the log phase.
pub(crate) struct Facts {
    pub started: Instant,
    /// When the request was sent upstream (the last try).
    pub sent_at: Option<Instant>,
    /// Upstream wait (send → response head), ms.
    pub upstream_ms: Option<u64>,
    /// The upstream produced the response (else the gateway or a plugin did).
    pub from_upstream: bool,
    /// Request body size (Content-Length).
    pub bytes_in: u64,
    /// The log record being filled (only when the snapshot has a log plugin).
    pub log: Option<gatehouse_logging::LogRecord>,
    /// The trace context sent upstream (opentelemetry).
    pub trace: Option<TraceCtx>,
    /// What the span reports of the request (only when the snapshot has an opentelemetry plugin).
    pub span_req: Option<otel::SpanRequest>,
}

impl Facts {
    pub fn new(started: Instant) -> Facts {
        Facts {
            started,
            sent_at: None,
            upstream_ms: None,
            from_upstream: false,
            bytes_in: 0,
            log: None,
            trace: None,
            span_req: None,
        }
    }
}

/// Before the request is taken apart: the request part of the log record, when the snapshot
/// has a log plugin (everything, copied into the record's one buffer) or the proxy access log
/// is on (only what its line needs).
#[inline]
pub(crate) fn capture<B>(
    w: &crate::server::Worker,
    peer: &Peer,
    snap: &crate::Snapshot,
    req: &Request<B>,
    request_id: &HeaderValue,
    facts: &mut Facts,
) {
    if snap.obs.any_observer || w.obs.access.is_some() {
        facts.bytes_in = content_length(req.headers());
    }
    let otel = snap.obs.any_otel;
    if !otel && !snap.obs.any_log && w.obs.access.is_none() {
        return;
    }
    let client_ip = forwarded::client_ip(peer, req.headers(), &w.opts.real_ip_header);
    if otel {
        facts.span_req = Some(otel::SpanRequest::capture(
            req, request_id, peer.https, client_ip, peer.ip,
        ));
        if !snap.obs.any_log && w.obs.access.is_none() {
            return;
        }
    }
    facts.log = Some(logs::start_record(
        req,
        request_id,
        client_ip,
        peer.https,
        peer.local_port,
        snap.obs.any_log,
    ));
}

/// opentelemetry: start or continue the trace and set `traceparent` on the upstream request.
#[inline]
pub(crate) fn trace(
    snap: &crate::Snapshot,
    st: &PluginState,
    headers: &mut HeaderMap,
    facts: &mut Facts,
) {
    if !snap.obs.any_otel {
        return;
    }
    if let Some((i, c)) = snap.plugins.observer_refs(st).find_map(|o| match o {
        ObserverRef::OpenTelemetry(i, c) => Some((i, c)),
        _ => None,
    }) {
        facts.trace = Some(otel::propagate(headers, i, c));
    }
}

/// The URI sent upstream (`upstream_uri` of the log record).
#[inline]
pub(crate) fn upstream_uri(facts: &mut Facts, uri: &Uri) {
    if let Some(r) = facts.log.as_mut() {
        r.set_upstream_uri(uri.path_and_query().map_or("/", |p| p.as_str()));
    }
}

/// One balancer try (`tries[]` of the log record), when a log plugin runs.
#[inline]
pub(crate) fn upstream_try(facts: &mut Facts, target: &Arc<str>, port: u16, started: Instant) {
    let Some(r) = facts.log.as_mut().filter(|r| r.is_full()) else {
        return;
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let took = started.elapsed().as_millis() as u64;
    r.push_try(gatehouse_logging::Try {
        target: target.clone(),
        port,
        balancer_start: now_ms.saturating_sub(took),
        balancer_latency: took,
    });
}

/// `kong_nginx_requests_total` and the in-flight gauge, at the start of a request.
#[inline]
pub(crate) fn request_started(w: &crate::server::Worker) {
    if let Some(s) = &w.obs.shard {
        s.request();
        s.request_started();
    }
}

/// The log phase (response head ready): node counters, router cache totals, the log plugins'
/// records and the access log line and, when a prometheus plugin applies, the route's series.
#[inline]
pub(crate) fn log_phase(
    w: &crate::server::Worker,
    snap: &crate::Snapshot,
    st: &PluginState,
    status: StatusCode,
    response_headers: &HeaderMap,
    facts: &mut Facts,
) {
    let Some(shard) = &w.obs.shard else {
        return;
    };
    shard.request_finished();
    let stats = w.match_cache.borrow().stats();
    shard.set_router_cache(stats.hits + stats.negative_hits, stats.misses);
    let obs = &snap.obs;
    if !obs.any_observer && w.obs.access.is_none() {
        return;
    }
    let bytes_out = content_length(response_headers);
    let now = Instant::now();
    if !obs.any_observer {
        access_log(w, snap, st, status, response_headers, facts, bytes_out, now);
        return;
    }
    let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_millis() as u64;
    let mut flags = None;
    let mut log_ready = false;
    let mut pending_log: Option<&QueueSender> = None;
    for o in snap.plugins.observer_refs(st) {
        match o {
            ObserverRef::Prometheus(c) if flags.is_none() => {
                flags = Some(MetricFlags {
                    status_code_metrics: c.status_code_metrics,
                    latency_metrics: c.latency_metrics,
                    bandwidth_metrics: c.bandwidth_metrics,
                    per_consumer: c.per_consumer,
                })
            }
            ObserverRef::HttpLog(i, _) | ObserverRef::FileLog(i, _) => {
                let Some(Some(tx)) = obs.log_senders.get(i) else {
                    continue;
                };
                if !log_ready {
                    log_ready = true;
                    finish(
                        snap,
                        st,
                        status,
                        response_headers,
                        facts,
                        bytes_out,
                        now,
                        true,
                    );
                }
                // Each queue but the last gets a copy; the last takes the record.
                if let (Some(prev), Some(rec)) = (pending_log.replace(tx), facts.log.as_ref()) {
                    prev.push(rec.clone());
                }
            }
            ObserverRef::OpenTelemetry(i, c) => {
                let Some(Some(tx)) = obs.span_senders.get(i) else {
                    continue;
                };
                let ctx = match facts.trace.filter(|t| t.instance == i) {
                    Some(t) => t,
                    // Answered before the upstream (auth failure, no service): a new trace.
                    None => otel::propagate(&mut HeaderMap::new(), i, c),
                };
                if !ctx.sampled {
                    continue;
                }
                let took = now.saturating_duration_since(facts.started);
                let end_ns = otel::epoch_ns(std::time::Duration::ZERO);
                tx.push(Span {
                    ctx,
                    start_ns: end_ns.saturating_sub(took.as_nanos() as u64),
                    end_ns,
                    // One opentelemetry instance applies per request (plugin precedence).
                    req: facts.span_req.take(),
                    status: status.as_u16(),
                    route_path: st
                        .route
                        .and_then(|r| obs.route_paths.get(r))
                        .cloned()
                        .flatten(),
                });
            }
            _ => {}
        }
    }
    if let Some(tx) = pending_log {
        if w.obs.access.is_some() {
            if let Some(r) = &facts.log {
                tx.push(r.clone());
            }
        } else if let Some(r) = facts.log.take() {
            tx.push(r);
        }
    }
    if !log_ready {
        access_log(w, snap, st, status, response_headers, facts, bytes_out, now);
    } else if let (Some(tx), Some(r)) = (&w.obs.access, facts.log.take()) {
        tx.push(r); // completed above for the log plugins
    }
    let Some(flags) = flags else {
        return;
    };
    let Some(rm) = st
        .route
        .and_then(|r| obs.routes.get(r))
        .and_then(Option::as_ref)
    else {
        return; // Kong records per-route series only for routes with a service
    };
    let o = Observation {
        status: status.as_u16(),
        source: Some(if facts.from_upstream {
            Source::Service
        } else {
            Source::Kong
        }),
        kong_ms: Some(
            facts
                .sent_at
                .map_or(ms(facts.started, now), |s| ms(facts.started, s)),
        ),
        upstream_ms: facts.upstream_ms,
        request_ms: Some(ms(facts.started, now)),
        bytes_in: facts.bytes_in,
        bytes_out,
    };
    let consumer = st.consumer.and_then(|c| obs.consumers.get(c as usize));
    shard.record_with(rm, flags, consumer, &o);
}

/// Completes `facts.log` in place (`full`: also response headers and entities, for the log
/// plugins; the access log needs only status, size and times).
#[allow(clippy::too_many_arguments)]
fn finish(
    snap: &crate::Snapshot,
    st: &PluginState,
    status: StatusCode,
    response_headers: &HeaderMap,
    facts: &mut Facts,
    bytes_out: u64,
    now: Instant,
    full: bool,
) {
    let timings = logs::Timings::of(facts);
    let Some(r) = facts.log.as_mut() else {
        return;
    };
    let request_ms = now.saturating_duration_since(facts.started).as_millis() as u64;
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        .saturating_sub(request_ms);
    let credential = st
        .credential
        .and_then(|c| snap.plugins.credentials().credential_id(c))
        .map(|u| u.as_u128());
    logs::finish_record(
        r,
        full.then_some(&snap.obs.entities),
        (st.route, st.service, st.consumer),
        credential,
        status.as_u16(),
        response_headers,
        timings,
        bytes_out,
        request_ms,
        started_at,
    );
}

/// The access log line of a request no observer plugin saw.
#[allow(clippy::too_many_arguments)]
#[inline]
fn access_log(
    w: &crate::server::Worker,
    snap: &crate::Snapshot,
    st: &PluginState,
    status: StatusCode,
    response_headers: &HeaderMap,
    facts: &mut Facts,
    bytes_out: u64,
    now: Instant,
) {
    let Some(tx) = &w.obs.access else {
        return;
    };
    finish(
        snap,
        st,
        status,
        response_headers,
        facts,
        bytes_out,
        now,
        false,
    );
    if let Some(r) = facts.log.take() {
        tx.push(r);
    }
}

/// A message's Content-Length (0 when absent or invalid), for bandwidth metrics and logs.
fn content_length(h: &HeaderMap) -> u64 {
    h.get(http::header::CONTENT_LENGTH)
        .map_or(0, |v| parse_u64(v.as_bytes()))
}

/// Decimal digits → u64, 0 when empty, not all digits or overflowing: what `str::parse` gives
/// for a valid Content-Length, without the UTF-8 check and error value (twice per request).
fn parse_u64(b: &[u8]) -> u64 {
    if b.is_empty() {
        return 0;
    }
    let mut v = 0u64;
    for &c in b {
        if !c.is_ascii_digit() {
            return 0;
        }
        match v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
        {
            Some(n) => v = n,
            None => return 0,
        }
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_u64_like_str_parse() {
        for (s, want) in [
            ("0", 0),
            ("100", 100),
            ("007", 7),
            ("18446744073709551615", u64::MAX),
            ("18446744073709551616", 0),
            ("", 0),
            ("+5", 0),
            ("-5", 0),
            (" 5", 0),
            ("5 ", 0),
            ("1a", 0),
            ("١", 0),
        ] {
            assert_eq!(super::parse_u64(s.as_bytes()), want, "{s:?}");
            assert_eq!(
                super::parse_u64(s.as_bytes()),
                s.parse::<u64>()
                    .ok()
                    .filter(|_| !s.starts_with('+'))
                    .unwrap_or(0),
                "{s:?} like str::parse"
            );
        }
    }
}
