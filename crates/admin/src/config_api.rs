//! `POST /config` and `GET /config`, with Kong's status codes:
//! 201 loaded · 304 unchanged (`check_hash`) · 400 empty/invalid · 413 map full ·
//! 429 + Retry-After while another load runs · 500 anything else (with a JSON body).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use gatehouse_config::{doc, hash_text};
use gatehouse_store::StoreError;

use crate::control::{LoadError, Source};
use crate::kong_error::message;
use crate::{render, AdminState};

fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.get(name)
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "on" | "yes" | ""))
}

/// Extracts the declarative document from the body forms Kong accepts: raw YAML/JSON,
/// `{"config": "<text>"}`, a JSON document, or a urlencoded `config=` field.
fn source_from<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<Option<Source<'a>>, Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("multipart/form-data") {
        return multipart_config(ct, body).map(|t| t.map(Source::Text));
    }
    if ct.starts_with("application/x-www-form-urlencoded") {
        let text = form_urlencoded_config(body);
        return Ok(text.filter(|t| !t.trim().is_empty()).map(Source::Text));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| message(StatusCode::BAD_REQUEST, "declarative config must be UTF-8"))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    // Decoded once, borrowing the body's strings; the load validates this very tree. The
    // md5 of a multi-megabyte body is taken meanwhile on a second thread (the other core is
    // idle while a load parses).
    if !text.trim_start().starts_with('{') {
        return Ok(Some(Source::Text(text.to_string()))); // YAML
    }
    let (decoded, text_hash) = std::thread::scope(|s| {
        let hashing = s.spawn(|| hash_text(text));
        let decoded = doc::from_json_str(text);
        (decoded, hashing.join().unwrap_or_else(|_| hash_text(text)))
    });
    if let Ok(doc::Value::Object(mut doc)) = decoded {
        if !doc.contains_key("_format_version") {
            return Ok(match doc.remove("config") {
                Some(doc::Value::String(t)) if !t.trim().is_empty() => {
                    Some(Source::Text(t.into_owned()))
                }
                Some(doc::Value::Object(o)) => {
                    let v = doc::Value::Object(o);
                    let hash = hash_text(&v.to_json().to_string());
                    Some(Source::Doc(v, hash))
                }
                _ => None,
            });
        }
        return Ok(Some(Source::Doc(doc::Value::Object(doc), text_hash)));
    }
    Ok(Some(Source::Text(text.to_string())))
}

fn form_urlencoded_config(body: &[u8]) -> Option<String> {
    let fields: HashMap<String, String> = serde_urlencoded::from_bytes(body).ok()?;
    fields.get("config").cloned()
}

/// The `config` part of a multipart body (`curl -F config=@kong.yml`).
fn multipart_config(content_type: &str, body: &[u8]) -> Result<Option<String>, Response> {
    let bad = || message(StatusCode::BAD_REQUEST, "malformed multipart body");
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .ok_or_else(bad)?;
    let delim = format!("--{boundary}");
    let text = String::from_utf8_lossy(body);
    for part in text.split(delim.as_str()) {
        let Some((head, content)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let is_config = head.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("content-disposition") && l.contains("name=\"config\"")
        });
        if is_config {
            let content = content.strip_suffix("\r\n").unwrap_or(content);
            return Ok(Some(content.to_string()));
        }
    }
    Ok(None)
}

pub async fn post_config(
    State(s): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let flatten = flag(&q, "flatten_errors");
    let check_hash = flag(&q, "check_hash");
    let control = Arc::clone(&s.control);
    // Decoding a multi-megabyte body is part of the load's CPU work: it runs with the load,
    // on a blocking thread, never on the admin event loop.
    let loaded = tokio::task::spawn_blocking(move || {
        let source = match source_from(&headers, &body) {
            Ok(Some(src)) => src,
            Ok(None) => {
                return Err(message(
                    StatusCode::BAD_REQUEST,
                    "expected a declarative configuration",
                ))
            }
            Err(resp) => return Err(resp),
        };
        if check_hash {
            let new_hash = match &source {
                Source::Text(t) => hash_text(t),
                Source::Doc(_, h) => h.clone(),
            };
            if new_hash == control.cell().load().hash {
                return Err(StatusCode::NOT_MODIFIED.into_response());
            }
        }
        Ok(control.load_answering(source))
    })
    .await;
    let loaded = match loaded {
        Ok(Err(early)) => return early,
        Ok(Ok(result)) => Ok(result),
        Err(panicked) => Err(panicked),
    };
    match loaded {
        Ok(Ok((done, body))) => {
            tracing::info!(
                hash = %done.snapshot.hash,
                routes = done.snapshot.route_count(),
                parse_ms = done.parse_time.as_millis() as u64,
                build_ms = done.build_time.as_millis() as u64,
                write_ms = done.write_time.as_millis() as u64,
                total_ms = done.total_time.as_millis() as u64,
                "configuration loaded"
            );
            let json = HeaderValue::from_static("application/json; charset=utf-8");
            (StatusCode::CREATED, [(header::CONTENT_TYPE, json)], body).into_response()
        }
        Ok(Err(LoadError::Invalid(e))) => {
            (StatusCode::BAD_REQUEST, Json(e.kong_body(flatten))).into_response()
        }
        Ok(Err(LoadError::Busy)) => {
            let mut resp = message(
                StatusCode::TOO_MANY_REQUESTS,
                "Currently loading previous configuration",
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
        Ok(Err(LoadError::Store(StoreError::MapFull))) => message(
            StatusCode::PAYLOAD_TOO_LARGE,
            StoreError::MapFull.to_string(),
        ),
        Ok(Err(LoadError::Build(e))) => {
            let body = serde_json::json!({
                "code": 14,
                "name": "invalid declarative configuration",
                "message": format!("declarative config is invalid: {e}"),
                "fields": {},
            });
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "configuration load failed");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error occurred",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "configuration load panicked");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error occurred",
            )
        }
    }
}

/// `GET /config`: the running configuration as declarative YAML (`_transform: false`, like
/// `kong config db_export`).
pub async fn get_config(State(s): State<AdminState>) -> Response {
    let snap = s.control.cell().load_full();
    let mut doc = serde_json::Map::new();
    doc.insert("_format_version".into(), Value::from("3.0"));
    doc.insert("_transform".into(), Value::from(false));
    for (entity, items) in render::entity_lists(&snap.config) {
        if !items.is_empty() {
            doc.insert(entity.to_string(), Value::Array(items));
        }
    }
    match serde_yaml_ng::to_string(&Value::Object(doc)) {
        Ok(yaml) => Json(serde_json::json!({ "config": yaml })).into_response(),
        Err(e) => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot export: {e}"),
        ),
    }
}
