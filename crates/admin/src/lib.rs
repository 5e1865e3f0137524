//! Admin API and Status API. They run on their own runtime thread, never on proxy threads, and
//! read the same published snapshot the proxy serves from. Config loads go through
//! [`control::Control`], which does the heavy work on a blocking thread.
#![forbid(unsafe_code)]
// Handlers bail out early with a ready `Response` as the error; the admin path is cold, so the
// size of that `Err` does not matter.
#![allow(clippy::result_large_err)]

pub mod control;

mod config_api;
mod entity_api;
pub mod explain;
mod kinds;
mod kong_error;
mod meta_api;
mod paging;
pub mod render;
mod schemas;
mod status;
mod tls_listen;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use gatehouse_proxy::tls::TlsAcceptor;
use tokio::sync::watch;

pub use control::Control;

/// Largest `POST /config` body accepted (Kong's `cluster_max_payload` default is 16 MiB; a
/// DB-less body has no such limit, so allow more).
const MAX_CONFIG_BODY: usize = 128 << 20;

/// What the Admin/Status APIs read.
#[derive(Clone)]
pub struct AdminState {
    pub control: Arc<Control>,
    pub node_id: String,
    pub hostname: String,
    /// Settings as Kong's `GET /` reports them under `configuration`.
    pub configuration: serde_json::Value,
    /// Open proxy connections (shared with the proxy threads).
    pub proxy_connections: Arc<AtomicUsize>,
    /// `X-Kong-Admin-Latency` on Admin API responses (`headers` setting).
    pub admin_latency_header: bool,
}

/// One Admin or Status listener: its address, and the TLS acceptor when it is marked `ssl`.
#[derive(Clone)]
pub struct Listen {
    pub addr: SocketAddr,
    pub tls: Option<TlsAcceptor>,
}

/// The Admin and Status listeners, served by one dedicated thread.
pub struct AdminServer {
    thread: Option<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    pub admin_addrs: Vec<SocketAddr>,
    pub status_addrs: Vec<SocketAddr>,
}

fn admin_router(state: AdminState) -> Router {
    let latency = state.admin_latency_header;
    let router = Router::new()
        .route("/", get(status::node_info))
        .route("/status", get(status::status))
        .route("/status/ready", get(status::ready))
        .route("/metrics", get(status::metrics))
        .route(
            "/config",
            get(config_api::get_config).post(config_api::post_config),
        )
        .route("/debug/explain", get(explain::debug_explain))
        .route("/plugins/enabled", get(meta_api::plugins_enabled))
        .route("/endpoints", get(meta_api::endpoints))
        .route("/tags", get(meta_api::tags))
        .route("/tags/{tag}", get(meta_api::tag))
        .route("/schemas/{name}", get(schemas::schema))
        .route("/schemas/{name}/validate", post(schemas::validate))
        // Every entity endpoint (and the 404 for anything else) is dispatched by path.
        .fallback(entity_api::dispatch)
        .method_not_allowed_fallback(|| async { entity_api::method_not_allowed() })
        .layer(DefaultBodyLimit::max(MAX_CONFIG_BODY))
        .with_state(state);
    let router = router.layer(middleware::from_fn(json_errors));
    if latency {
        router.layer(middleware::from_fn(admin_latency))
    } else {
        router
    }
}

/// Errors produced below the handlers (extractor rejections, body limits) come as plain text;
/// Kong's Admin API answers every error with a JSON `{"message": …}`.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return resp;
    }
    let msg = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "Payload too large",
        s if s.is_server_error() => "An unexpected error occurred",
        s => s.canonical_reason().unwrap_or("Bad request"),
    };
    let mut out = kong_error::message(status, msg);
    for (name, value) in resp.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

fn status_router(state: AdminState) -> Router {
    Router::new()
        .route("/status", get(status::status))
        .route("/status/ready", get(status::ready))
        .route("/metrics", get(status::metrics))
        .fallback(|| async { kong_error::not_found() })
        .method_not_allowed_fallback(|| async { entity_api::method_not_allowed() })
        .layer(middleware::from_fn(json_errors))
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

impl AdminServer {
    /// Binds plain listeners on the calling thread, then serves them from one new thread.
    pub fn start(
        admin: &[SocketAddr],
        status: &[SocketAddr],
        state: AdminState,
    ) -> io::Result<AdminServer> {
        let plain = |addrs: &[SocketAddr]| -> Vec<Listen> {
            addrs
                .iter()
                .map(|&addr| Listen { addr, tls: None })
                .collect()
        };
        AdminServer::start_listeners(&plain(admin), &plain(status), state)
    }

    /// Binds the listeners (plain or TLS) on the calling thread, then serves them from one new
    /// thread.
    pub fn start_listeners(
        admin: &[Listen],
        status: &[Listen],
        state: AdminState,
    ) -> io::Result<AdminServer> {
        let bind = |l: &Listen| -> io::Result<(std::net::TcpListener, Option<TlsAcceptor>)> {
            let a = l.addr;
            let tcp = std::net::TcpListener::bind(a)
                .map_err(|e| io::Error::new(e.kind(), format!("bind {a}: {e}")))?;
            tcp.set_nonblocking(true)?;
            Ok((tcp, l.tls.clone()))
        };
        let admin_l: Vec<_> = admin.iter().map(bind).collect::<io::Result<_>>()?;
        let status_l: Vec<_> = status.iter().map(bind).collect::<io::Result<_>>()?;
        let admin_addrs = admin_l
            .iter()
            .map(|l| l.0.local_addr())
            .collect::<io::Result<_>>()?;
        let status_addrs = status_l
            .iter()
            .map(|l| l.0.local_addr())
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
                        .map(|(l, tls)| (l, tls, admin_router(state.clone())))
                        .chain(
                            status_l
                                .into_iter()
                                .map(|(l, tls)| (l, tls, status_router(state.clone()))),
                        );
                    for (l, tls, router) in listeners {
                        let Ok(l) = tokio::net::TcpListener::from_std(l) else {
                            continue;
                        };
                        let mut rx = rx.clone();
                        tasks.push(tokio::spawn(async move {
                            let stop = async move {
                                let _ = rx.wait_for(|s| *s).await;
                            };
                            let app = router.into_make_service_with_connect_info::<SocketAddr>();
                            let served = match tls {
                                None => axum::serve(l, app).with_graceful_shutdown(stop).await,
                                Some(acceptor) => match tls_listen::TlsListener::new(l, acceptor) {
                                    // `tap_io` gives the TLS listener axum's `ConnectInfo`.
                                    Ok(tl) => {
                                        axum::serve(tl.tap_io(|_| {}), app)
                                            .with_graceful_shutdown(stop)
                                            .await
                                    }
                                    Err(e) => Err(e),
                                },
                            };
                            if let Err(e) = served {
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
