//! correlation-id (`kong/plugins/correlation-id`, PRIORITY 100001): keep the request's
//! correlation header, or generate one (`uuid`, `uuid#counter`, `tracker`) and send it
//! upstream; with `echo_downstream` also put it on the response.
//!
//! Kong runs it in access (its handler has no rewrite), so it is collected like any other
//! plugin and, being first by priority, always runs before an early exit. An incoming value
//! is kept by reference (a `HeaderValue` clone); only a generated id allocates.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::ctx::{PluginState, RequestCtx};
use crate::error::FieldError;
use crate::schema::{one_of, Ty, F};

fn generator(v: &Value) -> Result<(), String> {
    one_of(v, &["uuid", "uuid#counter", "tracker"])
}

pub(crate) static FIELDS: &[F] = &[
    F::def("header_name", Ty::Str, || json!("Kong-Request-ID")),
    F::req("generator", Ty::Str, || json!("uuid#counter")).check(generator),
    F::req("echo_downstream", Ty::Bool, || json!(false)),
];

/// `config` of correlation-id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub header_name: String,
    pub generator: String,
    pub echo_downstream: bool,
}

pub(crate) fn check(_c: &Config, _errs: &mut Vec<FieldError>) {}

#[derive(Clone, Copy)]
enum Gen {
    Uuid,
    Counter,
    Tracker,
}

pub(crate) struct Compiled {
    pub config: Config,
    /// `None` when `header_name` is not a valid header name (Kong would fail at runtime; the
    /// plugin does nothing here).
    header: Option<HeaderName>,
    generator: Gen,
}

pub(crate) fn compile(config: Config) -> Compiled {
    let header = HeaderName::from_bytes(config.header_name.to_ascii_lowercase().as_bytes()).ok();
    let generator = match config.generator.as_str() {
        "uuid" => Gen::Uuid,
        "tracker" => Gen::Tracker,
        _ => Gen::Counter,
    };
    Compiled {
        config,
        header,
        generator,
    }
}

/// Kong's per-worker uuid and counter; one per process here (unique either way).
fn worker_uuid() -> &'static str {
    static U: OnceLock<String> = OnceLock::new();
    U.get_or_init(|| Uuid::new_v4().to_string())
}
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn generate(g: Gen, req: Option<&RequestCtx<'_>>, now_ms: i64) -> HeaderValue {
    let s = match g {
        Gen::Uuid => Uuid::new_v4().to_string(),
        Gen::Counter => {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
            format!("{}#{n}", worker_uuid())
        }
        Gen::Tracker => {
            // server_addr-server_port-pid-connection-connection_requests-now(%.3f)
            let (addr, port, conn, reqs) = req.map_or((crate::UNSPECIFIED_IP, 0, 0, 0), |r| {
                (r.server_addr, r.port, r.connection, r.connection_requests)
            });
            let addr = match addr {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => a.to_string(),
            };
            format!(
                "{addr}-{port}-{}-{conn}-{reqs}-{:.3}",
                std::process::id(),
                now_ms as f64 / 1000.0
            )
        }
    };
    HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""))
}

pub(crate) fn access(c: &Compiled, st: &mut PluginState, req: &mut RequestCtx<'_>) {
    let Some(h) = &c.header else { return };
    let id = match req.headers.get(h) {
        Some(v) if !v.is_empty() => v.clone(),
        _ => {
            let v = generate(c.generator, Some(req), req.now_ms);
            req.headers.insert(h.clone(), v.clone());
            v
        }
    };
    st.correlation_id = Some(id);
}

pub(crate) fn header_filter(c: &Compiled, st: &PluginState, h: &mut HeaderMap) {
    if !c.config.echo_downstream {
        return;
    }
    let Some(name) = &c.header else { return };
    let v = match &st.correlation_id {
        Some(v) if !v.is_empty() => v.clone(),
        _ => generate(c.generator, None, crate::now_ms()),
    };
    h.insert(name.clone(), v);
}
