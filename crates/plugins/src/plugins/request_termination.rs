//! request-termination (`kong/plugins/request-termination`, PRIORITY 2): answers with a fixed
//! status and body via `kong.response.exit` (no `request_id`). The body is prebuilt per
//! config, so a termination allocates nothing; `echo` builds its JSON per request.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::credentials::header_value;
use crate::ctx::{Exit, RequestCtx};
use crate::error::FieldError;
use crate::respond;
use crate::schema::{header_name, present, status_between_100_599, Ty, F};

pub(crate) static FIELDS: &[F] = &[
    F::req("status_code", Ty::Int, || json!(503)).check(status_between_100_599),
    F::opt("message", Ty::Str),
    F::opt("content_type", Ty::Str),
    F::opt("body", Ty::Str),
    F::req("echo", Ty::Bool, || json!(false)),
    F::opt("trigger", Ty::Str).check(header_name),
];

/// `config` of request-termination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub status_code: u16,
    pub message: Option<String>,
    pub content_type: Option<String>,
    pub body: Option<String>,
    pub echo: bool,
    pub trigger: Option<String>,
}

pub(crate) fn check(c: &Config, errs: &mut Vec<FieldError>) {
    let msg = if present(&c.message) && (present(&c.content_type) || present(&c.body)) {
        "message cannot be used with content_type or body"
    } else if present(&c.content_type) && !present(&c.body) {
        "content_type requires a body"
    } else if c.echo && (present(&c.content_type) || present(&c.body)) {
        "echo cannot be used with content_type and body"
    } else {
        return;
    };
    errs.push(FieldError::key("config", msg));
}

fn default_message(status: u16) -> Option<&'static str> {
    Some(match status {
        401 => "Unauthorized",
        404 => "Not found",
        405 => "Method not allowed",
        500 => "An unexpected error occurred",
        502 => "Bad Gateway",
        503 => "Service unavailable",
        _ => return None,
    })
}

pub(crate) struct Compiled {
    pub config: Config,
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
    trigger: Option<HeaderName>,
    /// `matched_route` / `matched_service` JSON for echo, set by the compiler.
    pub echo_route: std::sync::Arc<Vec<Value>>,
    pub echo_service: std::sync::Arc<Vec<Value>>,
}

pub(crate) fn compile(config: Config) -> Compiled {
    let status =
        StatusCode::from_u16(config.status_code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let (content_type, body) = if let Some(body) = &config.body {
        (
            config.content_type.as_deref().map(header_value),
            Bytes::from(body.clone()),
        )
    } else {
        match config
            .message
            .as_deref()
            .or(default_message(config.status_code))
        {
            Some(m) => (Some(respond::JSON.clone()), respond::message_body(m)),
            None => (None, Bytes::new()),
        }
    };
    let trigger = config
        .trigger
        .as_deref()
        .and_then(|t| HeaderName::from_bytes(t.to_ascii_lowercase().as_bytes()).ok());
    Compiled {
        config,
        status,
        content_type,
        body,
        trigger,
        echo_route: Default::default(),
        echo_service: Default::default(),
    }
}

pub(crate) fn access(
    c: &Compiled,
    route: Option<usize>,
    service: Option<usize>,
    req: &RequestCtx<'_>,
) -> Option<Exit> {
    if let (Some(h), Some(t)) = (&c.trigger, &c.config.trigger) {
        if !req.headers.contains_key(h) && !crate::query::has(req.query, t) {
            return None; // trigger set but not found
        }
    }
    if c.config.echo {
        return Some(echo(c, route, service, req));
    }
    Some(respond::exit(
        c.status,
        c.content_type.as_ref(),
        c.body.clone(),
    ))
}

fn echo(c: &Compiled, route: Option<usize>, service: Option<usize>, req: &RequestCtx<'_>) -> Exit {
    let mut headers = Map::new();
    for (name, value) in req.headers.iter() {
        let v = Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned());
        match headers.get_mut(name.as_str()) {
            Some(Value::Array(a)) => a.push(v),
            Some(prev) => *prev = Value::Array(vec![prev.take(), v]),
            None => {
                headers.insert(name.as_str().to_string(), v);
            }
        }
    }
    let mut query = Map::new();
    for part in req.query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k, Value::String(v.to_string())),
            None => (part, Value::Bool(true)),
        };
        match query.get_mut(k) {
            Some(Value::Array(a)) => a.push(v),
            Some(prev) => *prev = Value::Array(vec![prev.take(), v]),
            None => {
                query.insert(k.to_string(), v);
            }
        }
    }
    let message = c
        .config
        .message
        .as_deref()
        .or(default_message(c.config.status_code));
    let scheme = match req.protocol {
        gatehouse_config::Protocol::Https | gatehouse_config::Protocol::Grpcs => "https",
        _ => "http",
    };
    let content = json!({
        "message": message,
        "kong": {
            "node_id": Value::Null,
            "worker_pid": std::process::id(),
            "hostname": std::env::var("HOSTNAME").ok(),
        },
        "request": {
            "scheme": scheme,
            "host": req.host,
            "port": req.port,
            "headers": headers,
            "query": query,
            "body": Value::Null,
            "raw_body": "",
            "method": req.method.as_str(),
            "path": req.path,
            "uri_captures": { "named": {}, "unnamed": [] },
        },
        "matched_route": route.and_then(|r| c.echo_route.get(r)).cloned().unwrap_or(Value::Null),
        "matched_service": service.and_then(|s| c.echo_service.get(s)).cloned().unwrap_or(Value::Null),
    });
    let body = serde_json::to_vec(&content).unwrap_or_default();
    respond::exit(c.status, Some(&respond::JSON), Bytes::from(body))
}
