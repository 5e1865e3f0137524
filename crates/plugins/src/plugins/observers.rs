//! prometheus, http-log, file-log and opentelemetry: their configs are validated with Kong's
//! schemas and typed here, but the work (metrics, log shipping, tracing) belongs to other
//! crates. The runtime only tells the proxy, per request, which of them apply and with
//! which config ([`crate::Plugins::observers`]); their phase hooks are no-ops.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::FieldError;
use crate::schema::{between, header_name, one_of, url, Ty, F};

// ---- prometheus ----

pub(crate) static PROMETHEUS: &[F] = &[
    F::def("per_consumer", Ty::Bool, || json!(false)),
    F::def("status_code_metrics", Ty::Bool, || json!(false)),
    F::def("ai_metrics", Ty::Bool, || json!(false)),
    F::def("latency_metrics", Ty::Bool, || json!(false)),
    F::def("bandwidth_metrics", Ty::Bool, || json!(false)),
    F::def("upstream_health_metrics", Ty::Bool, || json!(false)),
    F::def("wasm_metrics", Ty::Bool, || json!(false)),
];

/// `config` of prometheus (all flags default to false).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    pub per_consumer: bool,
    pub status_code_metrics: bool,
    pub ai_metrics: bool,
    pub latency_metrics: bool,
    pub bandwidth_metrics: bool,
    pub upstream_health_metrics: bool,
    pub wasm_metrics: bool,
}

// ---- the shared queue record (kong/tools/queue_schema.lua) ----

fn batch(v: &Value) -> Result<(), String> {
    between(v, 1.0, 1_000_000.0)
}
fn delay(v: &Value) -> Result<(), String> {
    between(v, 0.0, 3600.0)
}
fn retry_delay(v: &Value) -> Result<(), String> {
    between(v, 0.001, 1_000_000.0)
}
fn concurrency(v: &Value) -> Result<(), String> {
    match v.as_i64() {
        Some(-1) | Some(1) => Ok(()),
        _ => Err("expected one of: -1, 1".into()),
    }
}

macro_rules! queue_fields {
    ($batch:expr) => {
        &[
            F::def("max_batch_size", Ty::Int, || json!($batch)).check(batch),
            F::def("max_coalescing_delay", Ty::Num, || json!(1)).check(delay),
            F::def("max_entries", Ty::Int, || json!(10000)).check(batch),
            F::opt("max_bytes", Ty::Int),
            F::def("max_retry_time", Ty::Num, || json!(60)),
            F::def("initial_retry_delay", Ty::Num, || json!(0.01)).check(retry_delay),
            F::def("max_retry_delay", Ty::Num, || json!(60)).check(retry_delay),
            F::def("concurrency_limit", Ty::Int, || json!(1)).check(concurrency),
        ]
    };
}

static QUEUE: &[F] = queue_fields!(1);
static OTEL_QUEUE: &[F] = queue_fields!(200);

/// Kong's plugin queue parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub max_batch_size: i64,
    pub max_coalescing_delay: f64,
    pub max_entries: i64,
    pub max_bytes: Option<i64>,
    pub max_retry_time: f64,
    pub initial_retry_delay: f64,
    pub max_retry_delay: f64,
    pub concurrency_limit: i64,
}

// ---- http-log ----

fn http_log_method(v: &Value) -> Result<(), String> {
    one_of(v, &["POST", "PUT", "PATCH"])
}
fn http_log_ct(v: &Value) -> Result<(), String> {
    one_of(v, &["application/json", "application/json; charset=utf-8"])
}
fn http_log_header(v: &Value) -> Result<(), String> {
    header_name(v)?;
    let s = v.as_str().unwrap_or("").to_ascii_lowercase();
    match s.as_str() {
        "host" => Err("cannot contain 'Host' header".into()),
        "content-length" => Err("cannot contain 'Content-Length' header".into()),
        "content-type" => Err("cannot contain 'Content-Type' header".into()),
        _ => Ok(()),
    }
}

pub(crate) static HTTP_LOG: &[F] = &[
    F::opt("http_endpoint", Ty::Str).check(url).required(),
    F::def("method", Ty::Str, || json!("POST")).check(http_log_method),
    F::def("content_type", Ty::Str, || json!("application/json")).check(http_log_ct),
    F::def("timeout", Ty::Num, || json!(10000)),
    F::def("keepalive", Ty::Num, || json!(60000)),
    F::opt("retry_count", Ty::Int),
    F::opt("queue_size", Ty::Int),
    F::opt("flush_timeout", Ty::Num),
    F::opt("headers", Ty::StrMap).check(http_log_header),
    F::opt("queue", Ty::Record(QUEUE)).required(),
    F::opt("custom_fields_by_lua", Ty::StrMap),
];

/// `config` of http-log. `retry_count`, `queue_size` and `flush_timeout` are Kong's
/// deprecated fields; [`HttpLogConfig::effective_queue`] folds them in as Kong does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpLogConfig {
    pub http_endpoint: String,
    pub method: String,
    pub content_type: String,
    pub timeout: f64,
    pub keepalive: f64,
    pub retry_count: Option<i64>,
    pub queue_size: Option<i64>,
    pub flush_timeout: Option<f64>,
    pub headers: Option<serde_json::Map<String, Value>>,
    pub queue: QueueConfig,
    pub custom_fields_by_lua: Option<serde_json::Map<String, Value>>,
}

impl HttpLogConfig {
    /// `Queue.get_plugin_params`: `queue_size` → `max_batch_size`, `flush_timeout` →
    /// `max_coalescing_delay` when set (and the queue value is the default).
    pub fn effective_queue(&self) -> QueueConfig {
        let mut q = self.queue.clone();
        if let Some(n) = self.queue_size.filter(|_| q.max_batch_size == 1) {
            q.max_batch_size = n;
        }
        if let Some(d) = self.flush_timeout.filter(|_| q.max_coalescing_delay == 1.0) {
            q.max_coalescing_delay = d;
        }
        q
    }
}

pub(crate) fn check_http_log(c: &HttpLogConfig, errs: &mut Vec<FieldError>) {
    let userinfo = c
        .http_endpoint
        .split_once("://")
        .map(|(_, r)| r.split(['/', '?', '#']).next().unwrap_or("").contains('@'))
        .unwrap_or(false);
    let auth = c
        .headers
        .as_ref()
        .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("authorization")));
    if userinfo && auth {
        errs.push(FieldError::key(
            "config",
            "specifying both an 'Authorization' header and user info in 'http_endpoint' is not allowed",
        ));
    }
}

// ---- file-log ----

fn filename(v: &Value) -> Result<(), String> {
    // ^[^%s*&%%\`][^*&%%\`]*[^%s*&%%\`]$
    let s = v.as_str().unwrap_or("");
    let bad = |c: char| matches!(c, '*' | '&' | '%' | '\\' | '`');
    let ok = s.chars().count() >= 2
        && !s.starts_with(|c: char| c.is_whitespace() || bad(c))
        && !s.ends_with(|c: char| c.is_whitespace() || bad(c))
        && !s.chars().any(bad);
    if ok {
        Ok(())
    } else {
        Err("not a valid filename".into())
    }
}

pub(crate) static FILE_LOG: &[F] = &[
    F::opt("path", Ty::Str).check(filename).required(),
    F::req("reopen", Ty::Bool, || json!(false)),
    F::opt("custom_fields_by_lua", Ty::StrMap),
];

/// `config` of file-log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLogConfig {
    pub path: String,
    pub reopen: bool,
    pub custom_fields_by_lua: Option<serde_json::Map<String, Value>>,
}

// ---- opentelemetry ----

const FORMATS: &[&str] = &[
    "w3c",
    "b3",
    "b3-single",
    "jaeger",
    "ot",
    "datadog",
    "aws",
    "gcp",
    "instana",
];
fn extractor(v: &Value) -> Result<(), String> {
    one_of(
        v,
        &[
            "w3c", "b3", "jaeger", "ot", "datadog", "aws", "gcp", "instana",
        ],
    )
}
fn injector(v: &Value) -> Result<(), String> {
    let mut all = vec!["preserve"];
    all.extend_from_slice(FORMATS);
    one_of(v, &all)
}
fn format(v: &Value) -> Result<(), String> {
    one_of(v, FORMATS)
}
fn header_type(v: &Value) -> Result<(), String> {
    one_of(
        v,
        &[
            "preserve",
            "ignore",
            "b3",
            "b3-single",
            "w3c",
            "jaeger",
            "ot",
            "aws",
            "gcp",
            "datadog",
            "instana",
        ],
    )
}
fn timeout(v: &Value) -> Result<(), String> {
    between(v, 0.0, 2147483646.0)
}
fn rate(v: &Value) -> Result<(), String> {
    between(v, 0.0, 1.0)
}

static PROPAGATION: &[F] = &[
    F::opt("extract", Ty::StrArray).check(extractor),
    F::opt("clear", Ty::StrArray).check(header_name),
    F::opt("inject", Ty::StrArray).check(injector),
    F::req("default_format", Ty::Str, || json!("w3c")).check(format),
];

pub(crate) static OPENTELEMETRY: &[F] = &[
    F::opt("traces_endpoint", Ty::Str).check(url),
    F::opt("logs_endpoint", Ty::Str).check(url),
    F::opt("headers", Ty::StrMap).check(header_name),
    F::opt("resource_attributes", Ty::StrMap),
    F::opt("queue", Ty::Record(OTEL_QUEUE)).required(),
    F::opt("batch_span_count", Ty::Int),
    F::opt("batch_flush_delay", Ty::Int),
    F::def("connect_timeout", Ty::Int, || json!(1000)).check(timeout),
    F::def("send_timeout", Ty::Int, || json!(5000)).check(timeout),
    F::def("read_timeout", Ty::Int, || json!(5000)).check(timeout),
    F::opt("http_response_header_for_traceid", Ty::Str),
    F::def("header_type", Ty::Str, || json!("preserve")).check(header_type),
    F::opt("sampling_rate", Ty::Num).check(rate),
    F::opt("propagation", Ty::Record(PROPAGATION)).required(),
];

/// Kong's `endpoint` shorthand → `traces_endpoint`, before validation.
pub(crate) fn normalize_otel(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        if let Some(e) = o.remove("endpoint") {
            if !e.is_null() {
                o.entry("traces_endpoint").or_insert(e);
            }
        }
    }
}

/// `propagation` of opentelemetry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropagationConfig {
    pub extract: Option<Vec<String>>,
    pub clear: Option<Vec<String>>,
    pub inject: Option<Vec<String>>,
    pub default_format: String,
}

/// `config` of opentelemetry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenTelemetryConfig {
    pub traces_endpoint: Option<String>,
    pub logs_endpoint: Option<String>,
    pub headers: Option<serde_json::Map<String, Value>>,
    pub resource_attributes: Option<serde_json::Map<String, Value>>,
    pub queue: QueueConfig,
    pub batch_span_count: Option<i64>,
    pub batch_flush_delay: Option<i64>,
    pub connect_timeout: i64,
    pub send_timeout: i64,
    pub read_timeout: i64,
    pub http_response_header_for_traceid: Option<String>,
    pub header_type: String,
    pub sampling_rate: Option<f64>,
    pub propagation: PropagationConfig,
}

impl OpenTelemetryConfig {
    /// Deprecated `batch_span_count` / `batch_flush_delay` folded into the queue.
    pub fn effective_queue(&self) -> QueueConfig {
        let mut q = self.queue.clone();
        if let Some(n) = self.batch_span_count.filter(|_| q.max_batch_size == 200) {
            q.max_batch_size = n;
        }
        if let Some(d) = self
            .batch_flush_delay
            .filter(|_| q.max_coalescing_delay == 1.0)
        {
            q.max_coalescing_delay = d as f64;
        }
        q
    }
}

pub(crate) fn check_otel(c: &OpenTelemetryConfig, errs: &mut Vec<FieldError>) {
    if c.traces_endpoint.is_none() && c.logs_endpoint.is_none() {
        errs.push(FieldError::key(
            "config.@entity",
            "at least one of these fields must be non-empty: 'traces_endpoint', 'logs_endpoint'",
        ));
    }
}

pub(crate) fn no_check<T>(_c: &T, _errs: &mut Vec<FieldError>) {}
