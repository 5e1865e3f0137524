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
/// metrics), rendered on a blocking thread by walking the proxy threads' shards, so neither
/// the proxy threads nor this API's event loop wait for a large render.
pub async fn metrics(State(s): State<AdminState>) -> axum::response::Response {
    let Some(hub) = s.control.cell().load().observability().cloned() else {
        return crate::kong_error::not_found().into_response();
    };
    let rendered = tokio::task::spawn_blocking(move || {
        let mut out = Paced(Vec::with_capacity(64 * 1024));
        hub.render_metrics_to(&mut out).map(|()| out.0)
    })
    .await;
    match rendered {
        Ok(Ok(body)) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"message": "An unexpected error occurred"})),
        )
            .into_response(),
    }
}

/// Collects the exposition, pausing briefly after each flushed chunk (the renderer flushes
/// every 64 KiB). A 10 MB render then runs in slices of well under a millisecond instead of one
/// ~70 ms burst, so on a box where it shares a core with a proxy thread the scheduler never
/// has to take a long slice from the proxy.
struct Paced(Vec<u8>);

impl std::io::Write for Paced {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        if buf.len() >= 32 * 1024 {
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
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
