//! Admin API and Status API. They run on their own runtime thread, never on proxy threads, and
//! read the same published snapshot the proxy serves from.
//!
//! This first cut answers `GET /`, `GET /status` (with `configuration_hash`) and
//! `GET /status/ready`; the DB-less entity endpoints and `POST /config` come with the Admin API
//! issue.
#![forbid(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::watch;

use gatehouse_proxy::SnapshotCell;

/// What the Admin/Status APIs read.
#[derive(Clone)]
pub struct AdminState {
    pub cell: SnapshotCell,
    pub node_id: String,
    pub hostname: String,
    /// Settings as Kong's `GET /` reports them under `configuration`.
    pub configuration: serde_json::Value,
    /// Open proxy connections (shared with the proxy threads).
    pub proxy_connections: Arc<AtomicUsize>,
}

/// The Admin and Status listeners, served by one dedicated thread.
pub struct AdminServer {
    thread: Option<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    pub admin_addrs: Vec<SocketAddr>,
    pub status_addrs: Vec<SocketAddr>,
}

fn admin_router(state: AdminState) -> Router {
    Router::new()
        .route("/", get(node_info))
        .route("/status", get(status))
        .route("/status/ready", get(ready))
        .fallback(not_found)
        .layer(middleware::from_fn(admin_latency))
        .with_state(state)
}

fn status_router(state: AdminState) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/status/ready", get(ready))
        .fallback(not_found)
        .with_state(state)
}

/// Kong puts `X-Kong-Admin-Latency` on every Admin API response.
async fn admin_latency(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut resp = next.run(req).await;
    let ms = started.elapsed().as_millis() as u64;
    resp.headers_mut()
        .insert("x-kong-admin-latency", HeaderValue::from(ms));
    resp
}

async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, Json(json!({"message": "Not found"})))
}

async fn node_info(State(s): State<AdminState>) -> impl IntoResponse {
    Json(json!({
        "version": gatehouse_proxy::VERSION,
        "tagline": "Welcome to gatehouse",
        "hostname": s.hostname,
        "node_id": s.node_id,
        "configuration": s.configuration,
        "plugins": {"available_on_server": {}, "enabled_in_cluster": []},
        "lua_version": null,
        "pids": {"master": std::process::id(), "workers": []},
    }))
}

async fn status(State(s): State<AdminState>) -> impl IntoResponse {
    let snap = s.cell.load();
    let active = s.proxy_connections.load(Ordering::Relaxed);
    Json(json!({
        "configuration_hash": snap.hash,
        "server": {
            "connections_active": active,
            "connections_reading": 0,
            "connections_writing": active,
            "connections_waiting": 0,
            "connections_accepted": null,
            "connections_handled": null,
            "total_requests": null,
        },
        "memory": {"workers_lua_vms": [], "lua_shared_dicts": {}},
    }))
}

/// 503 until a configuration is loaded (Kong: until routers are built and the config is not
/// empty), 200 after.
async fn ready(State(s): State<AdminState>) -> impl IntoResponse {
    let snap = s.cell.load();
    if snap.is_empty() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"message": "no configuration available (empty configuration present)"})),
        )
    } else {
        (StatusCode::OK, Json(json!({"message": "ready"})))
    }
}

impl AdminServer {
    /// Binds the listeners on the calling thread, then serves them from one new thread.
    pub fn start(
        admin: &[SocketAddr],
        status: &[SocketAddr],
        state: AdminState,
    ) -> io::Result<AdminServer> {
        let bind = |a: &SocketAddr| -> io::Result<std::net::TcpListener> {
            let l = std::net::TcpListener::bind(a)
                .map_err(|e| io::Error::new(e.kind(), format!("bind {a}: {e}")))?;
            l.set_nonblocking(true)?;
            Ok(l)
        };
        let admin_l: Vec<_> = admin.iter().map(bind).collect::<io::Result<_>>()?;
        let status_l: Vec<_> = status.iter().map(bind).collect::<io::Result<_>>()?;
        let admin_addrs = admin_l
            .iter()
            .map(|l| l.local_addr())
            .collect::<io::Result<_>>()?;
        let status_addrs = status_l
            .iter()
            .map(|l| l.local_addr())
            .collect::<io::Result<_>>()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown, rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("gatehouse-admin".into())
            .spawn(move || {
                rt.block_on(async move {
                    let mut tasks = Vec::new();
                    let listeners = admin_l
                        .into_iter()
                        .map(|l| (l, admin_router(state.clone())))
                        .chain(
                            status_l
                                .into_iter()
                                .map(|l| (l, status_router(state.clone()))),
                        );
                    for (l, router) in listeners {
                        let Ok(l) = tokio::net::TcpListener::from_std(l) else {
                            continue;
                        };
                        let mut rx = rx.clone();
                        tasks.push(tokio::spawn(async move {
                            let stop = async move {
                                let _ = rx.wait_for(|s| *s).await;
                            };
                            if let Err(e) =
                                axum::serve(l, router).with_graceful_shutdown(stop).await
                            {
                                tracing::error!(error = %e, "admin listener failed");
                            }
                        }));
                    }
                    for t in tasks {
                        let _ = t.await;
                    }
                });
            })?;
        Ok(AdminServer {
            thread: Some(thread),
            shutdown,
            admin_addrs,
            status_addrs,
        })
    }

    pub fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
