//! http-log and file-log: one `gatehouse-logging` queue (and shipper/writer thread) per plugin
//! instance, kept across reloads while the instance's config is unchanged.
//!
//! The proxy thread's share is copying the request's text fields and headers into the record's
//! one buffer when the request arrives ([`start_record`]), adding the response part and numbers
//! in the log phase ([`finish_record`]; entity JSON is rendered once per snapshot and reached
//! through one `Arc`) and a lock-free `try_send`; the shipper thread polls, batches,
//! serialises Kong's JSON and ships or writes it. Full queues drop the record and count it in
//! `gatehouse_log_dropped_total{plugin,id}`.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_config::Config;
use gatehouse_logging::{
    Entities, FileSink, HttpLogConfig, HttpLogSink, LogRecord, Queue, QueueConfig, QueueSender,
    ReopenHandle, RequestSource,
};
use gatehouse_metrics::Registry;
use gatehouse_plugins::{Observer, QueueConfig as PluginQueue};
use http::{HeaderMap, HeaderValue};

/// Kong's default workspace id in DB-less mode is random per node; a fixed one keeps logs
/// stable across restarts.
const WORKSPACE_ID: &str = "0dc6f45b-8f8d-40d2-a504-473544ee190b";

struct Running {
    queue: Queue,
    reopen: Option<ReopenHandle>,
}

/// The queues of the running log plugins (in the process-wide hub).
#[derive(Default)]
pub(crate) struct LogQueues {
    running: Mutex<HashMap<String, Running>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn queue_config(q: &PluginQueue) -> QueueConfig {
    let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.0, 1e9));
    QueueConfig {
        max_batch_size: q.max_batch_size.max(1) as usize,
        max_coalescing_delay: secs(q.max_coalescing_delay),
        max_entries: q.max_entries.max(1) as usize,
        max_bytes: q.max_bytes.map(|b| b.max(0) as usize),
        max_retry_time: secs(q.max_retry_time),
        initial_retry_delay: secs(q.initial_retry_delay),
        max_retry_delay: secs(q.max_retry_delay),
        concurrency_limit: q.concurrency_limit as i32,
    }
}

impl LogQueues {
    /// Senders per plugin instance index for a new snapshot: existing queues are reused
    /// when the instance and its config are unchanged, new ones started, unused ones stopped
    /// (on a detached thread: stopping ships what is queued, which may take retries).
    pub fn resolve(
        &self,
        observers: &[(usize, Observer)],
        metrics: &Registry,
    ) -> Vec<Option<QueueSender>> {
        let mut running = lock(&self.running);
        let mut keep = HashSet::new();
        let mut out: Vec<Option<QueueSender>> = Vec::new();
        for (index, o) in observers {
            let (id, plugin, key) = match o {
                Observer::HttpLog(id, c) => (id, "http-log", serde_json::to_string(&**c)),
                Observer::FileLog(id, c) => (id, "file-log", serde_json::to_string(&**c)),
                _ => continue,
            };
            let key = format!("{id}/{}", key.unwrap_or_default());
            if !running.contains_key(&key) {
                match start(o) {
                    Ok(r) => {
                        metrics.register_external(
                            "gatehouse_log_dropped_total",
                            "Log records dropped because the plugin's queue was full",
                            true,
                            &[("plugin", plugin), ("id", &id.to_string())],
                            r.queue.stats().dropped.clone(),
                        );
                        running.insert(key.clone(), r);
                    }
                    Err(e) => {
                        tracing::error!(plugin, %id, "cannot start the log queue: {e}");
                        continue;
                    }
                }
            }
            if let Some(r) = running.get(&key) {
                if out.len() <= *index {
                    out.resize(index + 1, None);
                }
                out[*index] = Some(r.queue.sender());
            }
            keep.insert(key);
        }
        let stale: Vec<String> = running
            .keys()
            .filter(|k| !keep.contains(*k))
            .cloned()
            .collect();
        let stopped: Vec<Running> = stale.iter().filter_map(|k| running.remove(k)).collect();
        if !stopped.is_empty() {
            let _ = std::thread::Builder::new()
                .name("gh-log-stop".into())
                .spawn(move || drop(stopped));
        }
        out
    }

    /// SIGUSR1: every file-log reopens its file before its next write.
    pub fn reopen_files(&self) {
        for r in lock(&self.running).values() {
            if let Some(h) = &r.reopen {
                h.reopen();
            }
        }
    }
}

fn start(o: &Observer) -> Result<Running, String> {
    match o {
        Observer::HttpLog(id, c) => {
            let sink = HttpLogSink::new(&HttpLogConfig {
                http_endpoint: c.http_endpoint.clone(),
                method: c.method.clone(),
                content_type: c.content_type.clone(),
                timeout: Duration::from_millis(c.timeout.max(0.0) as u64),
                keepalive: Duration::from_millis(c.keepalive.max(0.0) as u64),
                headers: c
                    .headers
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect(),
            })?;
            let queue = Queue::start(
                &format!("http-{id}"),
                queue_config(&c.effective_queue()),
                sink,
            )
            .map_err(|e| e.to_string())?;
            Ok(Running {
                queue,
                reopen: None,
            })
        }
        Observer::FileLog(id, c) => {
            let sink = FileSink::json(&c.path, c.reopen);
            let reopen = sink.reopen_handle();
            // file-log has no queue settings in Kong (it writes per request); batch what
            // arrives within a few ms so the writer does one `write` per burst.
            let cfg = QueueConfig {
                max_batch_size: 1000,
                max_coalescing_delay: Duration::from_millis(5),
                ..QueueConfig::default()
            };
            let queue =
                Queue::start(&format!("file-{id}"), cfg, sink).map_err(|e| e.to_string())?;
            Ok(Running {
                queue,
                reopen: Some(reopen),
            })
        }
        _ => Err("not a log plugin".into()),
    }
}

/// Entity JSON per snapshot, shared by every record through one `Arc`.
#[derive(Default)]
pub(crate) struct EntityJson {
    pub shared: Arc<Entities>,
    /// route index → service index.
    pub route_service: Vec<Option<usize>>,
}

impl EntityJson {
    pub fn build(config: &Config) -> EntityJson {
        fn j<T: serde::Serialize>(v: &T) -> Box<str> {
            serde_json::to_string(v)
                .unwrap_or_else(|_| "null".into())
                .into_boxed_str()
        }
        let by_id: HashMap<_, _> = config
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id, i))
            .collect();
        EntityJson {
            shared: Arc::new(Entities {
                routes: config.routes.iter().map(j).collect(),
                services: config.services.iter().map(j).collect(),
                consumers: config.consumers.iter().map(j).collect(),
                consumer_ids: config
                    .consumers
                    .iter()
                    .map(|c| c.id.to_string().into_boxed_str())
                    .collect(),
                workspace: WORKSPACE_ID.into(),
                workspace_name: "default".into(),
            }),
            route_service: config
                .routes
                .iter()
                .map(|r| r.service.and_then(|s| by_id.get(&s).copied()))
                .collect(),
        }
    }
}

/// Starts a record with the request part (before the request is taken apart): one buffer
/// holding id, method, URI, host and headers (`full`), or only what an access log line needs.
pub(crate) fn start_record<B>(
    req: &http::Request<B>,
    request_id: &HeaderValue,
    client_ip: IpAddr,
    https: bool,
    port: u16,
    full: bool,
) -> LogRecord {
    let (uri, headers) = (req.uri(), req.headers());
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut r = LogRecord::empty();
    if full {
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.host())
            .map(|h| h.split(':').next().unwrap_or(h))
            .unwrap_or("");
        r.set_request(
            request_id.as_bytes(),
            req.method().as_str(),
            path,
            host,
            headers,
        );
    } else {
        r.set_request_line(request_id.as_bytes(), req.method().as_str(), path, headers);
    }
    r.client_ip = client_ip;
    r.https = https;
    r.port = port;
    r.http_version = match req.version() {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    };
    r
}

/// What the log phase copies out of [`crate::observe::Facts`] for the record, so the record
/// can be completed in place (`facts.log` borrowed mutably) instead of moved out and back.
#[derive(Clone, Copy)]
pub(crate) struct Timings {
    started: std::time::Instant,
    sent_at: Option<std::time::Instant>,
    upstream_ms: Option<u64>,
    from_upstream: bool,
    bytes_in: u64,
}

impl Timings {
    pub fn of(f: &crate::observe::Facts) -> Timings {
        Timings {
            started: f.started,
            sent_at: f.sent_at,
            upstream_ms: f.upstream_ms,
            from_upstream: f.from_upstream,
            bytes_in: f.bytes_in,
        }
    }
}

/// Completes a record in the log phase: timings, status and, with `entities` (log plugins),
/// the response headers and the route / service / consumer JSON.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_record(
    r: &mut LogRecord,
    entities: Option<&EntityJson>,
    (route, service, consumer): (Option<usize>, Option<usize>, Option<u32>),
    credential_id: Option<u128>,
    status: u16,
    response_headers: &HeaderMap,
    facts: Timings,
    bytes_out: u64,
    request_ms: u64,
    started_at_ms: u64,
) {
    r.started_at_ms = started_at_ms;
    r.request_size = facts.bytes_in;
    r.status = status;
    r.response_size = bytes_out;
    r.upstream_status = if facts.from_upstream { status } else { 0 };
    r.kong_ms = facts.sent_at.map_or(request_ms, |s| {
        s.saturating_duration_since(facts.started).as_millis() as u64
    });
    r.proxy_ms = facts.upstream_ms;
    r.request_ms = request_ms;
    r.source = if facts.from_upstream {
        RequestSource::Upstream
    } else {
        RequestSource::Kong
    };
    let Some(e) = entities else {
        return;
    };
    let service = service.or_else(|| route.and_then(|r| e.route_service.get(r).copied().flatten()));
    r.credential_id = credential_id;
    r.set_response_headers(response_headers);
    r.set_entities(
        e.shared.clone(),
        route,
        service,
        consumer.map(|c| c as usize),
    );
}

/// Kong's proxy access log (`proxy_access_log`): lines in Kong's format written by a writer
/// thread of its own, fed like file-log through a bounded queue (a full queue drops the line
/// and counts it in `gatehouse_log_dropped_total{plugin="proxy_access_log"}`).
pub(crate) struct AccessLog {
    pub queue: Queue,
    pub reopen: ReopenHandle,
}

impl AccessLog {
    pub fn start(path: &std::path::Path, metrics: &Registry) -> std::io::Result<AccessLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let sink = FileSink::access_log(path);
        let reopen = sink.reopen_handle();
        let cfg = QueueConfig {
            max_batch_size: 1000,
            max_coalescing_delay: Duration::from_millis(5),
            ..QueueConfig::default()
        };
        let queue = Queue::start("access", cfg, sink)?;
        metrics.register_external(
            "gatehouse_log_dropped_total",
            "Log records dropped because the plugin's queue was full",
            true,
            &[("plugin", "proxy_access_log"), ("id", "")],
            queue.stats().dropped.clone(),
        );
        Ok(AccessLog { queue, reopen })
    }
}
