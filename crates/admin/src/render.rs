//! Our model → Kong's entity JSON: foreign keys as `{"id": …}`, upstream extras inlined,
//! flavor-only route fields dropped when unset.

use serde::Serialize;
use serde_json::{json, Value};

use gatehouse_config::Config;

/// Foreign-key fields per entity, rendered as `{"id": …}`.
fn foreign_keys(entity: &str) -> &'static [&'static str] {
    match entity {
        "routes" => &["service"],
        "services" => &["client_certificate"],
        "targets" => &["upstream"],
        "plugins" => &["route", "service", "consumer"],
        "snis" => &["certificate"],
        "keyauth_credentials" | "basicauth_credentials" | "acls" | "jwt_secrets" => &["consumer"],
        _ => &[],
    }
}

/// One entity in Kong's shape.
pub fn kong_entity<T: Serialize>(entity: &str, item: &T) -> Value {
    let mut v = serde_json::to_value(item).unwrap_or(Value::Null);
    let Value::Object(o) = &mut v else { return v };
    for fk in foreign_keys(entity) {
        if let Some(id) = o.get_mut(*fk) {
            if id.is_string() {
                *id = json!({ "id": id.take() });
            }
        }
    }
    if entity == "upstreams" {
        if let Some(Value::Object(extra)) = o.remove("extra") {
            for (k, val) in extra {
                o.entry(k).or_insert(val);
            }
        }
    }
    if entity == "routes" {
        for field in ["expression", "priority"] {
            if o.get(field).is_some_and(Value::is_null) {
                o.remove(field);
            }
        }
    }
    v
}

/// Every entity list of a config, as `(entity name, items)`.
pub fn entity_lists(c: &Config) -> Vec<(&'static str, Vec<Value>)> {
    fn list<T: Serialize>(entity: &'static str, items: &[T]) -> (&'static str, Vec<Value>) {
        (
            entity,
            items.iter().map(|i| kong_entity(entity, i)).collect(),
        )
    }
    vec![
        list("services", &c.services),
        list("routes", &c.routes),
        list("upstreams", &c.upstreams),
        list("targets", &c.targets),
        list("consumers", &c.consumers),
        list("plugins", &c.plugins),
        list("certificates", &c.certificates),
        list("snis", &c.snis),
        list("ca_certificates", &c.ca_certificates),
        list("keyauth_credentials", &c.keyauth_credentials),
        list("basicauth_credentials", &c.basicauth_credentials),
        list("acls", &c.acls),
        list("jwt_secrets", &c.jwt_secrets),
    ]
}

/// The entities of one kind (by schema name) in Kong's shape, in config order.
pub fn kind_list(c: &Config, entity: &str) -> Vec<Value> {
    fn list<T: Serialize>(entity: &str, items: &[T]) -> Vec<Value> {
        items.iter().map(|i| kong_entity(entity, i)).collect()
    }
    match entity {
        "services" => list(entity, &c.services),
        "routes" => list(entity, &c.routes),
        "upstreams" => list(entity, &c.upstreams),
        "targets" => list(entity, &c.targets),
        "consumers" => list(entity, &c.consumers),
        "plugins" => list(entity, &c.plugins),
        "certificates" => list(entity, &c.certificates),
        "snis" => list(entity, &c.snis),
        "ca_certificates" => list(entity, &c.ca_certificates),
        "keyauth_credentials" => list(entity, &c.keyauth_credentials),
        "basicauth_credentials" => list(entity, &c.basicauth_credentials),
        "acls" => list(entity, &c.acls),
        "jwt_secrets" => list(entity, &c.jwt_secrets),
        _ => Vec::new(),
    }
}

/// `POST /config`'s 201 body: entity name → id → entity (only non-empty entity kinds).
///
/// Kong's `declarative.sanitize_output` only drops `workspaces` and `ws_id`: credential
/// secrets (key-auth keys, JWT secrets) are returned as loaded, and basic-auth passwords are
/// already hashed by the credential's `on_write` transformation (the model stores the hash).
pub fn flattened(c: &Config) -> Vec<u8> {
    // Streamed entity by entity, straight from the model (which serializes in Kong's shape):
    // a 10k-route config has ~50k entities, and a `Value` per entity doubled the render time.
    fn kind<T: Serialize>(
        out: &mut Vec<u8>,
        first: &mut bool,
        entity: &str,
        items: &[T],
        id: impl Fn(&T) -> uuid::Uuid,
    ) {
        if items.is_empty() {
            return;
        }
        out.extend_from_slice(if *first { b"\"" } else { b",\"" });
        *first = false;
        out.extend_from_slice(entity.as_bytes());
        out.extend_from_slice(b"\":{");
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(id(item).hyphenated().encode_lower(&mut buf).as_bytes());
            out.extend_from_slice(b"\":");
            // Upstreams inline their `extra` fields: the one kind that needs reshaping.
            let _ = if entity == "upstreams" {
                serde_json::to_writer(&mut *out, &kong_entity(entity, item))
            } else {
                serde_json::to_writer(&mut *out, item)
            };
        }
        out.push(b'}');
    }
    let mut out = Vec::with_capacity(4096);
    let mut first = true;
    out.push(b'{');
    let (o, f) = (&mut out, &mut first);
    kind(o, f, "services", &c.services, |e| e.id);
    kind(o, f, "routes", &c.routes, |e| e.id);
    kind(o, f, "upstreams", &c.upstreams, |e| e.id);
    kind(o, f, "targets", &c.targets, |e| e.id);
    kind(o, f, "consumers", &c.consumers, |e| e.id);
    kind(o, f, "plugins", &c.plugins, |e| e.id);
    kind(o, f, "certificates", &c.certificates, |e| e.id);
    kind(o, f, "snis", &c.snis, |e| e.id);
    kind(o, f, "ca_certificates", &c.ca_certificates, |e| e.id);
    kind(o, f, "keyauth_credentials", &c.keyauth_credentials, |e| {
        e.id
    });
    kind(
        o,
        f,
        "basicauth_credentials",
        &c.basicauth_credentials,
        |e| e.id,
    );
    kind(o, f, "acls", &c.acls, |e| e.id);
    kind(o, f, "jwt_secrets", &c.jwt_secrets, |e| e.id);
    out.push(b'}');
    out
}
