//! The generated entity endpoints (Kong's `kong/api/endpoints.lua`), read-only as in DB-less
//! Kong: every read comes from the published snapshot's `Config` (what the proxy serves, no
//! LMDB reads), and writes answer what Kong's off strategy answers.
//!
//! Shapes: `/{kind}`, `/{kind}/{key}`, `/{parent}/{key}/{children}`,
//! `/{parent}/{key}/{children}/{key}`, `/{kind}/{key}/{foreign field}`. Writes follow Kong's
//! verb mapping: POST → "create", PUT → "create or update", PATCH → "update",
//! DELETE → "remove" (with "by '<endpoint key>'" when the path key is not a UUID); a method an
//! endpoint does not define → 405 "Method not allowed". DELETE of a missing entity is a 204,
//! as the DAO deletes nothing and succeeds.

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use gatehouse_config::Config;

use crate::kinds::{self, fk_id, id_of, is_uuid, Kind, Lookup};
use crate::kong_error::{message, not_found, operation_unsupported, operation_unsupported_by};
use crate::paging::{arg, query_args, unescape_uri, PageReq};
use crate::AdminState;

const COLLECTION_METHODS: &str = "GET, HEAD, OPTIONS, POST";
const ENTITY_METHODS: &str = "DELETE, GET, HEAD, OPTIONS, PATCH, PUT";

/// Kong's `options_method`: 204 with the endpoint's methods.
fn options(methods: &'static str) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(header::ALLOW, HeaderValue::from_static(methods));
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static(methods),
    );
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("Content-Type"),
    );
    resp
}

pub fn method_not_allowed() -> Response {
    message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

/// Kong's 400 for a non-UUID key on a kind without an endpoint key.
fn invalid_primary_key() -> Response {
    let body = json!({
        "code": 3,
        "name": "invalid primary key",
        "message": "invalid primary key: '{id=\"expected a valid UUID\"}'",
        "fields": { "id": "expected a valid UUID" },
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// The off strategy's refusal; `by` names the endpoint key when the path key is not a UUID.
fn unsupported(verb: &str, kind: &Kind, key: &str) -> Response {
    match kind.endpoint_key.filter(|_| !is_uuid(key)) {
        Some(field) => operation_unsupported_by(verb, kind.name, field),
        None => operation_unsupported(verb, kind.name),
    }
}

fn is_get(m: &Method) -> bool {
    *m == Method::GET || *m == Method::HEAD
}

/// The path split into unescaped segments (a trailing slash ignored, as Kong's default route).
fn segments(path: &str) -> Option<Vec<String>> {
    let path = path.strip_prefix('/')?;
    let path = path.strip_suffix('/').unwrap_or(path);
    let segs: Vec<String> = path.split('/').map(unescape_uri).collect();
    segs.iter().all(|s| !s.is_empty()).then_some(segs)
}

/// Fallback handler: every entity path goes through here.
pub async fn dispatch(State(s): State<AdminState>, method: Method, uri: Uri) -> Response {
    let Some(segs) = segments(uri.path()) else {
        return not_found();
    };
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    if kinds::disabled(&segs) {
        return not_found();
    }
    let plugins = &s.control.options().plugins;
    let Some(kind) = kinds::by_api(segs[0]).filter(|k| k.enabled(plugins)) else {
        return not_found();
    };
    let snap = s.control.cell().load_full();
    let cfg = &snap.config;
    let args = query_args(uri.query());
    match segs.as_slice() {
        [_] => collection(cfg, kind, &method, &args),
        [_, key] => entity(cfg, kind, key, &method),
        [_, key, sub] => {
            if let Some((child, field)) = kind.child(sub).filter(|(c, _)| c.enabled(plugins)) {
                let raw_key = uri.path().split('/').nth(2).unwrap_or(key);
                let next = format!("/{}/{raw_key}/{}", kind.api, child.nested);
                nested_collection(cfg, kind, key, child, field, &method, &args, &next)
            } else if let Some(foreign) = kind.foreign(sub) {
                foreign_entity(cfg, kind, key, sub, foreign, &method)
            } else {
                not_found()
            }
        }
        [_, key, sub, key2] => match kind.child(sub).filter(|(c, _)| c.enabled(plugins)) {
            Some((child, field)) if child.name == "targets" && *key2 == "all" => {
                if !is_get(&method) {
                    return method_not_allowed();
                }
                let raw_key = uri.path().split('/').nth(2).unwrap_or(key);
                let next = format!("/upstreams/{raw_key}/targets/all");
                nested_collection(cfg, kind, key, child, field, &method, &args, &next)
            }
            Some((child, field)) => nested_entity(cfg, kind, key, child, field, key2, &method),
            None => not_found(),
        },
        _ => not_found(),
    }
}

/// The parent of a nested path, with Kong's certificate rule: a non-UUID key names an SNI.
fn select_parent(cfg: &Config, kind: &Kind, key: &str) -> Result<Value, Response> {
    if kind.name == "certificates" && !is_uuid(key) {
        let Some(sni) = cfg.snis.iter().find(|s| s.name == key) else {
            return Err(message(StatusCode::NOT_FOUND, "SNI not found"));
        };
        return select_parent(cfg, kind, &sni.certificate.to_string());
    }
    match kinds::lookup(cfg, kind, key) {
        Lookup::Found(v) => Ok(v),
        Lookup::Missing => Err(not_found()),
        Lookup::InvalidKey => Err(invalid_primary_key()),
    }
}

fn collection(cfg: &Config, kind: &Kind, method: &Method, args: &[(String, String)]) -> Response {
    match *method {
        Method::POST => return operation_unsupported("create", kind.name),
        Method::OPTIONS => return options(COLLECTION_METHODS),
        _ if !is_get(method) => return method_not_allowed(),
        _ => {}
    }
    if kind.name == "consumers" {
        if let Some(custom_id) = arg(args, "custom_id") {
            return by_custom_id(cfg, kind, custom_id);
        }
    }
    match PageReq::parse(args) {
        Ok(req) => req.respond(kinds::items(cfg, kind), &format!("/{}", kind.api), true),
        Err(resp) => resp,
    }
}

/// `GET /consumers?custom_id=…` (Kong's `kong/api/routes/consumers.lua`).
fn by_custom_id(cfg: &Config, kind: &Kind, custom_id: &str) -> Response {
    if custom_id.is_empty() {
        return message(
            StatusCode::BAD_REQUEST,
            "custom_id must be an unempty string",
        );
    }
    let data: Vec<Value> = kinds::items(cfg, kind)
        .into_iter()
        .filter(|c| c.get("custom_id").and_then(Value::as_str) == Some(custom_id))
        .take(1)
        .collect();
    Json(json!({ "data": data, "next": null })).into_response()
}

fn entity(cfg: &Config, kind: &Kind, key: &str, method: &Method) -> Response {
    if *method == Method::OPTIONS {
        return options(ENTITY_METHODS);
    }
    if *method == Method::POST || !(is_get(method) || is_write(method)) {
        return method_not_allowed();
    }
    // Kong's certificates endpoint: a non-UUID key is an SNI name.
    if kind.name == "certificates" && !is_uuid(key) {
        if *method == Method::PUT {
            return operation_unsupported("create or update", kind.name);
        }
        return match select_parent(cfg, kind, key) {
            Ok(cert) => entity(cfg, kind, id_of(&cert), method),
            Err(resp) => resp,
        };
    }
    let found = kinds::lookup(cfg, kind, key);
    match (method.as_str(), found) {
        (_, Lookup::InvalidKey) => invalid_primary_key(),
        ("GET" | "HEAD", Lookup::Found(v)) => Json(v).into_response(),
        ("GET" | "HEAD", Lookup::Missing) => not_found(),
        ("PUT", _) => unsupported("create or update", kind, key),
        ("PATCH", _) => unsupported("update", kind, key),
        ("DELETE", Lookup::Found(_)) => unsupported("remove", kind, key),
        ("DELETE", Lookup::Missing) => StatusCode::NO_CONTENT.into_response(),
        _ => method_not_allowed(),
    }
}

fn is_write(m: &Method) -> bool {
    *m == Method::PUT || *m == Method::PATCH || *m == Method::DELETE
}

/// Children of `parent` through `field`, in id order.
fn children(cfg: &Config, child: &Kind, field: &str, parent_id: &str) -> Vec<Value> {
    kinds::items(cfg, child)
        .into_iter()
        .filter(|v| fk_id(v, field) == Some(parent_id))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn nested_collection(
    cfg: &Config,
    kind: &Kind,
    key: &str,
    child: &Kind,
    field: &str,
    method: &Method,
    args: &[(String, String)],
    next_path: &str,
) -> Response {
    if *method == Method::OPTIONS {
        return options(COLLECTION_METHODS);
    }
    if !is_get(method) && *method != Method::POST {
        return method_not_allowed();
    }
    let parent = match select_parent(cfg, kind, key) {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    if *method == Method::POST {
        return operation_unsupported("create", child.name);
    }
    match PageReq::parse(args) {
        Ok(req) => req.respond(
            children(cfg, child, field, id_of(&parent)),
            next_path,
            false,
        ),
        Err(resp) => resp,
    }
}

/// `/routes/{r}/service`, `/key-auths/{k}/consumer`, …: the entity a foreign key references.
fn foreign_entity(
    cfg: &Config,
    kind: &Kind,
    key: &str,
    field: &str,
    foreign: &Kind,
    method: &Method,
) -> Response {
    if *method == Method::OPTIONS {
        return options(ENTITY_METHODS);
    }
    if !(is_get(method) || is_write(method)) {
        return method_not_allowed();
    }
    let ent = match select_parent(cfg, kind, key) {
        Ok(e) => e,
        Err(resp) => return resp,
    };
    let Some(fk) = fk_id(&ent, field) else {
        return if *method == Method::PUT {
            operation_unsupported("create or update", foreign.name)
        } else {
            not_found()
        };
    };
    match method.as_str() {
        "PUT" => operation_unsupported("create or update", foreign.name),
        "PATCH" => operation_unsupported("update", foreign.name),
        "DELETE" => method_not_allowed(),
        _ => match kinds::lookup(cfg, foreign, fk) {
            Lookup::Found(v) => Json(v).into_response(),
            _ => not_found(),
        },
    }
}

/// `/services/{s}/routes/{r}`, `/upstreams/{u}/targets/{host:port}`,
/// `/consumers/{c}/acls/{group}`: a child, only if it belongs to the parent.
fn nested_entity(
    cfg: &Config,
    kind: &Kind,
    key: &str,
    child: &Kind,
    field: &str,
    key2: &str,
    method: &Method,
) -> Response {
    if *method == Method::OPTIONS {
        return options(ENTITY_METHODS);
    }
    if !(is_get(method) || is_write(method)) {
        return method_not_allowed();
    }
    let parent = match select_parent(cfg, kind, key) {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let by = if is_uuid(key2) {
        "id"
    } else if child.name == "acls" {
        "group"
    } else if let Some(ek) = child.endpoint_key {
        ek
    } else {
        return invalid_primary_key();
    };
    if *method == Method::PUT {
        return unsupported("create or update", child, key2);
    }
    let found = children(cfg, child, field, id_of(&parent))
        .into_iter()
        .find(|v| v.get(by).and_then(Value::as_str) == Some(key2));
    match (method.as_str(), found) {
        (_, None) => not_found(),
        ("PATCH", Some(_)) => unsupported("update", child, key2),
        ("DELETE", Some(_)) => unsupported("remove", child, key2),
        (_, Some(v)) => Json(v).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments() {
        assert_eq!(
            segments("/services/").as_deref(),
            Some(&["services".to_string()][..])
        );
        assert_eq!(
            segments("/upstreams/u/targets/a%3A80"),
            Some(vec![
                "upstreams".into(),
                "u".into(),
                "targets".into(),
                "a:80".into()
            ])
        );
        assert!(segments("/services//routes").is_none());
    }
}
