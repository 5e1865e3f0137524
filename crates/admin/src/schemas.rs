//! `GET /schemas/{entity}` and `POST /schemas/{entity}/validate` (Kong's
//! `kong/api/routes/kong.lua`).
//!
//! The schema is a hand-kept description of the fields our model accepts, in the shape of
//! Kong's `schema_to_jsonable` (`{"fields":[{"name":{…}}, …]}`), for UI and tooling that read
//! it. Validation runs the real declarative validator on a one-entity document, so it can
//! never disagree with what `POST /config` accepts; referenced entities are stubbed in, since
//! Kong's schema validation does not check that references exist.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use gatehouse_config::{parse_value, ConfigError};

use crate::kinds::{self, is_uuid};
use crate::kong_error::message;
use crate::AdminState;

fn no_entity(name: &str) -> Response {
    message(StatusCode::NOT_FOUND, format!("No entity named '{name}'"))
}

fn timestamps() -> [Value; 2] {
    [
        json!({"created_at": {"type": "integer", "timestamp": true, "auto": true}}),
        json!({"updated_at": {"type": "integer", "timestamp": true, "auto": true}}),
    ]
}

fn fk(reference: &str, required: bool) -> Value {
    json!({"type": "foreign", "reference": reference, "required": required, "on_delete": "cascade"})
}

fn protocols(default: &[&str]) -> Value {
    json!({"type": "set", "elements": {"type": "string", "one_of":
        ["grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp"]},
        "required": true, "default": default})
}

/// The field list of one entity, or `None` for names we do not serve.
fn fields(entity: &str) -> Option<Vec<Value>> {
    let id = json!({"id": {"type": "string", "uuid": true, "auto": true}});
    let tags = json!({"tags": {"type": "set", "elements": {"type": "string", "required": true}}});
    let [created, updated] = timestamps();
    let timeout = json!({"type": "integer", "between": [1, 2147483646], "default": 60000});
    let mut f = vec![id, created.clone()];
    let rest: Vec<Value> = match entity {
        "services" => vec![
            updated,
            json!({"name": {"type": "string", "unique": true}}),
            json!({"retries": {"type": "integer", "between": [0, 32767], "default": 5}}),
            json!({"protocol": {"type": "string", "required": true, "default": "http",
                "one_of": ["grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp"]}}),
            json!({"host": {"type": "string", "required": true}}),
            json!({"port": {"type": "integer", "between": [0, 65535], "required": true, "default": 80}}),
            json!({"path": {"type": "string", "starts_with": "/"}}),
            json!({"connect_timeout": timeout}),
            json!({"write_timeout": timeout}),
            json!({"read_timeout": timeout}),
            tags,
            json!({"client_certificate": fk("certificates", false)}),
            json!({"tls_verify": {"type": "boolean"}}),
            json!({"tls_verify_depth": {"type": "integer", "between": [0, 64], "default": null}}),
            json!({"ca_certificates": {"type": "array", "elements": {"type": "string", "uuid": true}}}),
            json!({"enabled": {"type": "boolean", "required": true, "default": true}}),
        ],
        "routes" => vec![
            updated,
            json!({"name": {"type": "string", "unique": true}}),
            json!({"protocols": protocols(&["http", "https"])}),
            json!({"methods": {"type": "set", "elements": {"type": "string"}}}),
            json!({"hosts": {"type": "array", "elements": {"type": "string"}}}),
            json!({"paths": {"type": "array", "elements": {"type": "string"}}}),
            json!({"headers": {"type": "map", "keys": {"type": "string"},
                "values": {"type": "array", "elements": {"type": "string"}}}}),
            json!({"https_redirect_status_code": {"type": "integer", "required": true,
                "default": 426, "one_of": [426, 301, 302, 307, 308]}}),
            json!({"regex_priority": {"type": "integer", "default": 0}}),
            json!({"strip_path": {"type": "boolean", "required": true, "default": true}}),
            json!({"path_handling": {"type": "string", "default": "v0", "one_of": ["v0", "v1"]}}),
            json!({"preserve_host": {"type": "boolean", "required": true, "default": false}}),
            json!({"request_buffering": {"type": "boolean", "required": true, "default": true}}),
            json!({"response_buffering": {"type": "boolean", "required": true, "default": true}}),
            json!({"snis": {"type": "set", "elements": {"type": "string"}}}),
            json!({"sources": {"type": "set", "elements": {"type": "record"}}}),
            json!({"destinations": {"type": "set", "elements": {"type": "record"}}}),
            tags,
            json!({"service": fk("services", false)}),
        ],
        "consumers" => vec![
            updated,
            json!({"username": {"type": "string", "unique": true}}),
            json!({"custom_id": {"type": "string", "unique": true}}),
            tags,
        ],
        "upstreams" => vec![
            updated,
            json!({"name": {"type": "string", "required": true, "unique": true}}),
            json!({"algorithm": {"type": "string", "default": "round-robin", "one_of":
                ["consistent-hashing", "least-connections", "round-robin", "latency", "sticky-sessions"]}}),
            json!({"hash_on": {"type": "string", "default": "none"}}),
            json!({"hash_fallback": {"type": "string", "default": "none"}}),
            json!({"slots": {"type": "integer", "between": [10, 65536], "default": 10000}}),
            json!({"healthchecks": {"type": "record"}}),
            tags,
            json!({"host_header": {"type": "string"}}),
            json!({"client_certificate": fk("certificates", false)}),
        ],
        "targets" => vec![
            json!({"updated_at": {"type": "number", "timestamp": true, "auto": true}}),
            json!({"upstream": fk("upstreams", true)}),
            json!({"target": {"type": "string", "required": true}}),
            json!({"weight": {"type": "integer", "between": [0, 65535], "default": 100}}),
            tags,
        ],
        "plugins" => vec![
            updated,
            json!({"name": {"type": "string", "required": true}}),
            json!({"instance_name": {"type": "string"}}),
            json!({"consumer": fk("consumers", false)}),
            json!({"service": fk("services", false)}),
            json!({"route": fk("routes", false)}),
            json!({"config": {"type": "record", "abstract": true}}),
            json!({"protocols": protocols(&["grpc", "grpcs", "http", "https"])}),
            json!({"enabled": {"type": "boolean", "default": true}}),
            tags,
        ],
        "certificates" => vec![
            updated,
            json!({"cert": {"type": "string", "required": true}}),
            json!({"key": {"type": "string", "required": true, "encrypted": true}}),
            json!({"cert_alt": {"type": "string"}}),
            json!({"key_alt": {"type": "string", "encrypted": true}}),
            tags,
        ],
        "snis" => vec![
            updated,
            json!({"name": {"type": "string", "required": true, "unique": true}}),
            tags,
            json!({"certificate": fk("certificates", true)}),
        ],
        "ca_certificates" => vec![
            updated,
            json!({"cert": {"type": "string", "required": true}}),
            json!({"cert_digest": {"type": "string", "unique": true}}),
            tags,
        ],
        "keyauth_credentials" => vec![
            json!({"consumer": fk("consumers", true)}),
            json!({"key": {"type": "string", "required": false, "unique": true, "auto": true}}),
            json!({"ttl": {"type": "integer"}}),
            tags,
        ],
        "basicauth_credentials" => vec![
            json!({"consumer": fk("consumers", true)}),
            json!({"username": {"type": "string", "required": true, "unique": true}}),
            json!({"password": {"type": "string", "required": true}}),
            tags,
        ],
        "acls" => vec![
            json!({"consumer": fk("consumers", true)}),
            json!({"group": {"type": "string", "required": true}}),
            tags,
        ],
        "jwt_secrets" => vec![
            json!({"consumer": fk("consumers", true)}),
            json!({"key": {"type": "string", "unique": true, "auto": true}}),
            json!({"secret": {"type": "string", "auto": true}}),
            json!({"rsa_public_key": {"type": "string"}}),
            json!({"algorithm": {"type": "string", "default": "HS256"}}),
            tags,
        ],
        _ => return None,
    };
    f.extend(rest);
    Some(f)
}

/// Whether this node serves the entity (credential kinds need their plugin).
fn served(s: &AdminState, entity: &str) -> bool {
    kinds::by_name(entity).is_some_and(|k| k.enabled(&s.control.options().plugins))
}

/// `GET /schemas/{entity}`.
pub async fn schema(State(s): State<AdminState>, Path(name): Path<String>) -> Response {
    match fields(&name).filter(|_| served(&s, &name)) {
        Some(f) => Json(json!({ "fields": f })).into_response(),
        None => no_entity(&name),
    }
}

/// A minimal valid entity of `kind` that a reference `value` resolves to.
fn stub(kind: &str, value: &Value) -> Option<Value> {
    let key = match value {
        Value::Object(o) => o.get("id")?.as_str()?,
        Value::String(s) => s.as_str(),
        _ => return None,
    };
    let mut o = Map::new();
    let unique = "schema-validate-stub";
    if is_uuid(key) {
        o.insert("id".into(), key.into());
    }
    let named = |o: &mut Map<String, Value>, field: &str, default: &str| {
        let v = if is_uuid(key) { default } else { key };
        o.insert(field.into(), v.into());
    };
    match kind {
        "services" => {
            o.insert("host".into(), "schema-validate.invalid".into());
            if !is_uuid(key) {
                o.insert("name".into(), key.into());
            }
        }
        "routes" => {
            o.insert("paths".into(), json!(["/"]));
            if !is_uuid(key) {
                o.insert("name".into(), key.into());
            }
        }
        "consumers" => named(&mut o, "username", unique),
        "upstreams" => named(&mut o, "name", unique),
        "certificates" => {
            o.insert("cert".into(), "stub".into());
            o.insert("key".into(), "stub".into());
        }
        _ => return None,
    }
    Some(Value::Object(o))
}

/// Kong's `schema_violation` message: `@entity` errors first, then fields in name order.
fn violation_message(fields: &Map<String, Value>) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(Value::Array(errs)) = fields.get("@entity") {
        parts.extend(
            errs.iter()
                .map(|e| e.as_str().unwrap_or_default().to_string()),
        );
    }
    let mut names: Vec<&String> = fields.keys().filter(|k| *k != "@entity").collect();
    names.sort();
    for name in names {
        match &fields[name.as_str()] {
            Value::String(m) => parts.push(format!("{name}: {m}")),
            Value::Object(sub) => {
                let mut keys: Vec<&String> = sub.keys().collect();
                keys.sort();
                for k in keys {
                    parts.push(format!("{name}.{k}: {}", text(&sub[k.as_str()])));
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate().filter(|(_, v)| !v.is_null()) {
                    parts.push(format!("{name}.{}: {}", i + 1, text(v)));
                }
            }
            other => parts.push(format!("{name}: {other}")),
        }
    }
    match parts.len() {
        1 => format!("schema violation ({})", parts[0]),
        n => format!("{n} schema violations ({})", parts.join("; ")),
    }
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// `POST /schemas/{entity}/validate`.
pub async fn validate(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let Some(kind) = kinds::by_name(&name).filter(|_| served(&s, &name)) else {
        return no_entity(&name);
    };
    let entity = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else if let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(&body) {
        v
    } else if let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) {
        Value::Object(
            form.into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    } else {
        return message(StatusCode::BAD_REQUEST, "Cannot parse JSON body");
    };
    let mut doc = Map::new();
    doc.insert("_format_version".into(), "3.0".into());
    for (field, target) in kind.fks {
        if let Some(st) = entity.get(*field).and_then(|v| stub(target, v)) {
            let list = doc
                .entry(target.to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = list {
                a.push(st);
            }
        }
    }
    match doc.get_mut(kind.name).and_then(Value::as_array_mut) {
        Some(a) => a.push(entity),
        None => {
            doc.insert(kind.name.into(), Value::Array(vec![entity]));
        }
    }
    let index = doc
        .get(kind.name)
        .and_then(Value::as_array)
        .map_or(0, |a| a.len() - 1);
    match parse_value(Value::Object(doc), s.control.options()) {
        Ok(_) => Json(json!({"message": "schema validation successful"})).into_response(),
        Err(e) => {
            let fields = error_fields(&e, kind.name, index);
            let body = json!({
                "code": 2,
                "name": "schema violation",
                "message": violation_message(&fields),
                "fields": fields,
            });
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
    }
}

/// The errors of the validated entity out of the declarative error tree.
fn error_fields(e: &ConfigError, entity: &str, index: usize) -> Map<String, Value> {
    match e {
        ConfigError::Invalid { fields, .. } => {
            let own = fields.get(entity).and_then(|v| v.get(index));
            match own.or_else(|| fields.get(entity)) {
                Some(Value::Object(o)) => o.clone(),
                Some(other) => Map::from_iter([("@entity".to_string(), json!([text(other)]))]),
                None => fields.as_object().cloned().unwrap_or_default(),
            }
        }
        ConfigError::Parse(m) => Map::from_iter([("@entity".to_string(), json!([m]))]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_kong() {
        let one: Map<String, Value> =
            serde_json::from_value(json!({"host": "required field missing"})).unwrap_or_default();
        assert_eq!(
            violation_message(&one),
            "schema violation (host: required field missing)"
        );
        let many: Map<String, Value> = serde_json::from_value(json!({
            "port": "expected an integer",
            "@entity": ["at least one of these fields must be non-empty: 'paths'"],
            "paths": [null, "bad path"],
        }))
        .unwrap_or_default();
        assert_eq!(
            violation_message(&many),
            "3 schema violations (at least one of these fields must be non-empty: 'paths'; \
             paths.2: bad path; port: expected an integer)"
        );
    }

    #[test]
    fn every_kind_has_a_schema() {
        for k in kinds::KINDS {
            assert!(fields(k.name).is_some(), "{}", k.name);
        }
        assert!(fields("nope").is_none());
    }
}
