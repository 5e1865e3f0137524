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

/// `POST /config`'s 201 body: entity name → id → entity (only non-empty entity kinds), built
/// from the records the LMDB writer encodes ([`gatehouse_store::Store::write_config_with`]):
/// the stored JSON of an entity is exactly its Kong shape, so the answer costs a copy instead
/// of a second serialization of ~50k entities. Records arrive in key order (entity name, then
/// id); JSON object order carries no meaning.
///
/// Kong's `declarative.sanitize_output` only drops `workspaces` and `ws_id`: credential
/// secrets (key-auth keys, JWT secrets) are returned as loaded, and basic-auth passwords are
/// already hashed by the credential's `on_write` transformation (the model stores the hash).
pub struct Flattened {
    out: Vec<u8>,
    entity: &'static str,
}

impl Default for Flattened {
    fn default() -> Self {
        Flattened {
            out: vec![b'{'],
            entity: "",
        }
    }
}

impl Flattened {
    /// Adds one entity: its kind, id and stored JSON.
    pub fn record(&mut self, entity: &'static str, id: uuid::Uuid, json: &[u8]) {
        let out = &mut self.out;
        if entity != self.entity {
            if !self.entity.is_empty() {
                out.extend_from_slice(b"},");
            }
            out.push(b'"');
            out.extend_from_slice(entity.as_bytes());
            out.extend_from_slice(b"\":{");
            self.entity = entity;
        } else {
            out.push(b',');
        }
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        out.push(b'"');
        out.extend_from_slice(id.hyphenated().encode_lower(&mut buf).as_bytes());
        out.extend_from_slice(b"\":");
        // Upstreams inline their `extra` fields: the one kind stored in another shape.
        let upstream = (entity == "upstreams")
            .then(|| serde_json::from_slice::<Value>(json).ok())
            .flatten();
        match upstream {
            Some(v) => {
                let _ = serde_json::to_writer(&mut *out, &kong_entity(entity, &v));
            }
            None => out.extend_from_slice(json),
        }
    }

    /// The finished body.
    pub fn finish(mut self) -> Vec<u8> {
        if !self.entity.is_empty() {
            self.out.push(b'}');
        }
        self.out.push(b'}');
        self.out
    }
}
