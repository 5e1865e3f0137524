//! `GET /` (node info), `GET /status`, `GET /status/ready`.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::AdminState;

pub async fn node_info(State(s): State<AdminState>) -> impl IntoResponse {
    // DB-less is the only mode: say so even if the caller's settings omit it.
    let mut configuration = s.configuration.clone();
    if let serde_json::Value::Object(o) = &mut configuration {
        o.insert("database".into(), json!("off"));
    } else {
        configuration = json!({ "database": "off" });
    }
    Json(json!({
        "version": gatehouse_proxy::VERSION,
        "tagline": "Welcome to gatehouse",
        "hostname": s.hostname,
        "node_id": s.node_id,
        "configuration": configuration,
        "plugins": {
            "available_on_server": s.control.options().plugins.iter()
                .map(|p| (p.clone(), json!({"priority": null, "version": gatehouse_proxy::VERSION})))
                .collect::<serde_json::Map<_, _>>(),
            "enabled_in_cluster": [],
        },
        "lua_version": null,
        "pids": {"master": std::process::id(), "workers": []},
    }))
}

pub async fn status(State(s): State<AdminState>) -> impl IntoResponse {
    let snap = s.control.cell().load();
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

/// `GET /metrics`: the Prometheus exposition (prometheus plugin's series, node and process
/// metrics), streamed from a render thread of its own that walks the proxy threads' shards, so
/// neither the proxy threads nor this API's event loop wait for a large render.
///
/// Why a fresh, low-priority thread per scrape and a streamed body: on a node where the
/// render shares a core with a proxy thread (one pinned core, or more proxy threads than
/// cores), a 10 MB render at normal priority takes scheduler slices from the proxy and shows
/// up in its tail latency. At nice [`RENDER_NICE`] the scheduler prefers the proxy thread
/// whenever both are runnable, and the render runs in the gaps (or ~10 % of the core when
/// there are none). Chunks of 64 KiB go to the client through a small bounded channel, so the
/// render also waits for a slow reader instead of buffering the whole exposition.
pub async fn metrics(State(s): State<AdminState>) -> axum::response::Response {
    let Some(hub) = s.control.cell().load().observability().cloned() else {
        return crate::kong_error::not_found().into_response();
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<axum::body::Bytes>>(4);
    let spawned = std::thread::Builder::new()
        .name("gh-metrics".into())
        .spawn(move || {
            if let Err(e) =
                rustix::process::setpriority_process(Some(rustix::thread::gettid()), RENDER_NICE)
            {
                tracing::debug!("cannot lower the /metrics render thread's priority: {e}");
            }
            let mut out = Chunks(tx.clone());
            if let Err(e) = hub.render_metrics_to(&mut out) {
                let _ = tx.blocking_send(Err(e));
            }
        });
    if spawned.is_err() {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"message": "An unexpected error occurred"})),
        )
            .into_response();
    }
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

/// Nice value of the `/metrics` render thread (0 = normal, 19 = lowest).
const RENDER_NICE: i32 = 10;

/// Hands each flushed chunk (the renderer flushes every 64 KiB) to the response body; fails
/// when the client went away, which stops the render.
struct Chunks(tokio::sync::mpsc::Sender<std::io::Result<axum::body::Bytes>>);

impl std::io::Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(axum::body::Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// 503 until a configuration is loaded (Kong: until routers are built, and while the config is
/// empty), 200 after.
pub async fn ready(State(s): State<AdminState>) -> impl IntoResponse {
    if s.control.cell().load().is_empty() {
        let msg = "no configuration available (empty configuration present)";
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "message": msg })),
        )
    } else {
        (StatusCode::OK, Json(json!({"message": "ready"})))
    }
}
