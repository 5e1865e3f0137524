//! http-log and file-log: one `gatehouse-logging` queue (and shipper/writer thread) per plugin
//! instance, kept across reloads while the instance's config is unchanged.
//!
//! The proxy thread's share, in the log phase, is filling a [`LogRecord`] from what the request
//! path captured (the request's header map and URI are reference-counted clones, entity JSON is
//! rendered once per snapshot) and a lock-free `try_send`; the shipper thread polls, batches,
//! serialises Kong's JSON and ships or writes it. Full queues drop the record and count it in
//! `gatehouse_log_dropped_total{plugin,id}`.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_config::Config;
use gatehouse_logging::{
    FileSink, HttpLogConfig, HttpLogSink, LogRecord, Queue, QueueConfig, QueueSender, ReopenHandle,
    RequestSource,
};
use gatehouse_metrics::Registry;
use gatehouse_plugins::{Observer, QueueConfig as PluginQueue};
use http::{HeaderMap, HeaderValue, Method, Uri};

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

/// Entity JSON per snapshot, shared by every record (`route`, `service`, `consumer`).
#[derive(Default)]
pub(crate) struct EntityJson {
    pub routes: Vec<Arc<str>>,
    pub services: Vec<Arc<str>>,
    pub consumers: Vec<Arc<str>>,
    /// route index → service index.
    pub route_service: Vec<Option<usize>>,
    pub workspace: Option<Arc<str>>,
    pub workspace_name: Option<Arc<str>>,
}

impl EntityJson {
    pub fn build(config: &Config) -> EntityJson {
        fn j<T: serde::Serialize>(v: &T) -> Arc<str> {
            Arc::from(serde_json::to_string(v).unwrap_or_else(|_| "null".into()))
        }
        let by_id: HashMap<_, _> = config
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id, i))
            .collect();
        EntityJson {
            routes: config.routes.iter().map(j).collect(),
            services: config.services.iter().map(j).collect(),
            consumers: config.consumers.iter().map(j).collect(),
            route_service: config
                .routes
                .iter()
                .map(|r| r.service.and_then(|s| by_id.get(&s).copied()))
                .collect(),
            workspace: Some(Arc::from(WORKSPACE_ID)),
            workspace_name: Some(Arc::from("default")),
        }
    }
}

/// What the request path captured for the log plugins (only when the snapshot has one).
pub(crate) struct Captured {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub request_id: HeaderValue,
    pub client_ip: IpAddr,
    pub upstream_uri: Option<Uri>,
}

fn boxed(v: &str) -> Box<str> {
    Box::from(v)
}

/// The compact record of one request.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record(
    c: &Captured,
    e: &EntityJson,
    route: Option<usize>,
    consumer: Option<u32>,
    https: bool,
    port: u16,
    status: u16,
    response_headers: &HeaderMap,
    facts: &crate::observe::Facts,
    bytes_out: u64,
    request_ms: u64,
    started_at_ms: u64,
) -> LogRecord {
    let host = c
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(':').next().unwrap_or(h))
        .unwrap_or("");
    let service = route.and_then(|r| e.route_service.get(r).copied().flatten());
    let kong_ms = facts.sent_at.map_or(request_ms, |s| {
        s.saturating_duration_since(facts.started).as_millis() as u64
    });
    LogRecord {
        started_at_ms,
        request_id: boxed(c.request_id.to_str().unwrap_or("")),
        method: boxed(c.method.as_str()),
        http_version: "HTTP/1.1",
        uri: boxed(c.uri.path_and_query().map_or("/", |p| p.as_str())),
        https,
        host: boxed(host),
        port,
        request_size: facts.bytes_in,
        request_headers: c.headers.clone(),
        status,
        response_size: bytes_out,
        response_headers: response_headers.clone(),
        upstream_uri: boxed(
            c.upstream_uri
                .as_ref()
                .and_then(|u| u.path_and_query())
                .map_or("", |p| p.as_str()),
        ),
        upstream_status: if facts.from_upstream {
            status.to_string().into_boxed_str()
        } else {
            Box::from("")
        },
        kong_ms,
        proxy_ms: facts.upstream_ms,
        request_ms,
        receive_ms: 0,
        tries: Vec::new(),
        client_ip: c.client_ip,
        tls: None,
        source: if facts.from_upstream {
            RequestSource::Upstream
        } else {
            RequestSource::Kong
        },
        route: route.and_then(|r| e.routes.get(r).cloned()),
        service: service.and_then(|s| e.services.get(s).cloned()),
        consumer: consumer.and_then(|c| e.consumers.get(c as usize).cloned()),
        authenticated_entity: None,
        workspace: e.workspace.clone().unwrap_or_else(|| Arc::from("")),
        workspace_name: e.workspace_name.clone().unwrap_or_else(|| Arc::from("")),
    }
}
