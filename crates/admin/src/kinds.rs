//! The entity kinds the Admin API exposes, with Kong's naming (schema name, `admin_api_name`,
//! `admin_api_nested_name`, `endpoint_key`) and foreign keys, plus the lookups every entity
//! endpoint shares. Kept as one table so the router, `/endpoints` and `/schemas` agree.

use serde_json::Value;

use gatehouse_config::Config;

use crate::render;

/// One entity kind, named as Kong's DAO schema names it.
pub struct Kind {
    /// Schema (DAO) name: `keyauth_credentials`.
    pub name: &'static str,
    /// Path segment: `key-auths`.
    pub api: &'static str,
    /// Path segment under a parent: `/consumers/{c}/key-auth`.
    pub nested: &'static str,
    /// Field a non-UUID path key selects by (`/services/{name}`).
    pub endpoint_key: Option<&'static str>,
    /// Foreign-key fields: (field, schema name of the referenced kind).
    pub fks: &'static [(&'static str, &'static str)],
}

const fn kind(
    name: &'static str,
    api: &'static str,
    nested: &'static str,
    endpoint_key: Option<&'static str>,
    fks: &'static [(&'static str, &'static str)],
) -> Kind {
    Kind {
        name,
        api,
        nested,
        endpoint_key,
        fks,
    }
}

pub const KINDS: &[Kind] = &[
    kind(
        "services",
        "services",
        "services",
        Some("name"),
        &[("client_certificate", "certificates")],
    ),
    kind(
        "routes",
        "routes",
        "routes",
        Some("name"),
        &[("service", "services")],
    ),
    kind("consumers", "consumers", "consumers", Some("username"), &[]),
    kind(
        "plugins",
        "plugins",
        "plugins",
        Some("instance_name"),
        &[
            ("route", "routes"),
            ("service", "services"),
            ("consumer", "consumers"),
        ],
    ),
    kind("upstreams", "upstreams", "upstreams", Some("name"), &[]),
    kind(
        "targets",
        "targets",
        "targets",
        Some("target"),
        &[("upstream", "upstreams")],
    ),
    kind("certificates", "certificates", "certificates", None, &[]),
    kind(
        "snis",
        "snis",
        "snis",
        Some("name"),
        &[("certificate", "certificates")],
    ),
    kind(
        "ca_certificates",
        "ca_certificates",
        "ca_certificates",
        None,
        &[],
    ),
    kind(
        "keyauth_credentials",
        "key-auths",
        "key-auth",
        Some("key"),
        &[("consumer", "consumers")],
    ),
    kind(
        "basicauth_credentials",
        "basic-auths",
        "basic-auth",
        Some("username"),
        &[("consumer", "consumers")],
    ),
    kind("acls", "acls", "acls", None, &[("consumer", "consumers")]),
    kind(
        "jwt_secrets",
        "jwts",
        "jwt",
        Some("key"),
        &[("consumer", "consumers")],
    ),
];

/// Endpoints Kong deactivates (`endpoints.disable`): they answer 404 to every method.
/// `/targets*` (use `/upstreams/{u}/targets`) and `/snis/{s}/certificate`.
pub fn disabled(segments: &[&str]) -> bool {
    matches!(
        segments,
        ["targets"] | ["targets", _] | ["targets", _, "upstream"] | ["snis", _, "certificate"]
    )
}

pub fn by_api(api: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.api == api)
}

pub fn by_name(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

impl Kind {
    /// Credential kinds exist only while their plugin is enabled (Kong loads their DAOs with
    /// the plugin).
    pub fn enabled(&self, plugins: &[String]) -> bool {
        let plugin = match self.name {
            "keyauth_credentials" => "key-auth",
            "basicauth_credentials" => "basic-auth",
            "acls" => "acl",
            "jwt_secrets" => "jwt",
            _ => return true,
        };
        plugins.iter().any(|p| p == plugin)
    }

    /// Kinds whose foreign key points at `self`, reachable as `/{self}/{key}/{child.nested}`:
    /// returns the child kind and the foreign-key field.
    pub fn child(&self, nested: &str) -> Option<(&'static Kind, &'static str)> {
        KINDS.iter().find_map(|c| {
            (c.nested == nested)
                .then(|| c.fks.iter().find(|(_, target)| *target == self.name))
                .flatten()
                .map(|(field, _)| (c, *field))
        })
    }

    /// `/{self}/{key}/{field}`: the kind a foreign-key field of `self` references.
    pub fn foreign(&self, field: &str) -> Option<&'static Kind> {
        self.fks
            .iter()
            .find(|(f, _)| *f == field)
            .and_then(|(_, target)| by_name(target))
    }
}

/// Kong's `utils.is_valid_uuid`: 8-4-4-4-12 hex digits.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Every entity of a kind in Kong's JSON shape, in the order the off strategy pages them
/// (LMDB key order, i.e. by id). Certificates carry their SNI names (`snis`, sorted), as
/// Kong's certificates DAO adds them.
pub fn items(config: &Config, kind: &Kind) -> Vec<Value> {
    let mut items = render::kind_list(config, kind.name);
    items.sort_by(|a, b| id_of(a).cmp(id_of(b)));
    if kind.name == "certificates" {
        for cert in &mut items {
            let id = id_of(cert).to_string();
            let mut names: Vec<&str> = config
                .snis
                .iter()
                .filter(|s| s.certificate.to_string() == id)
                .map(|s| s.name.as_str())
                .collect();
            names.sort_unstable();
            if let Value::Object(o) = cert {
                o.insert("snis".into(), names.into());
            }
        }
    }
    items
}

pub fn id_of(v: &Value) -> &str {
    v.get("id").and_then(Value::as_str).unwrap_or_default()
}

/// The id a foreign-key field holds (`{"id": …}`), if set.
pub fn fk_id<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field)?.get("id")?.as_str()
}

/// What a path key selected.
pub enum Lookup {
    Found(Value),
    Missing,
    /// Not a UUID and the kind has no endpoint key: Kong's 400 "invalid primary key".
    InvalidKey,
}

/// Kong's `select` / `select_by_<endpoint_key>`: a UUID selects by id only, anything else by
/// the endpoint key.
pub fn lookup(config: &Config, kind: &Kind, key: &str) -> Lookup {
    let field = if is_uuid(key) {
        "id"
    } else if let Some(k) = kind.endpoint_key {
        k
    } else {
        return Lookup::InvalidKey;
    };
    let found = render::kind_list(config, kind.name)
        .into_iter()
        .find(|v| v.get(field).and_then(Value::as_str) == Some(key));
    match found {
        Some(v) if kind.name == "certificates" => {
            let id = id_of(&v).to_string();
            items(config, kind)
                .into_iter()
                .find(|c| id_of(c) == id)
                .map_or(Lookup::Missing, Lookup::Found)
        }
        Some(v) => Lookup::Found(v),
        None => Lookup::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        assert!(is_uuid("a7c2a0b4-3c5e-4f5a-9d2e-0123456789ab"));
        assert!(is_uuid("A7C2A0B4-3C5E-4F5A-9D2E-0123456789AB"));
        assert!(!is_uuid("a7c2a0b4-3c5e-4f5a-9d2e-0123456789a"));
        assert!(!is_uuid("a7c2a0b4x3c5e-4f5a-9d2e-0123456789ab"));
        assert!(!is_uuid("example-service"));
    }

    #[test]
    fn relations() {
        let services = by_api("services").expect("services");
        assert_eq!(
            services.child("routes").map(|(k, f)| (k.name, f)),
            Some(("routes", "service"))
        );
        assert_eq!(services.child("plugins").map(|(_, f)| f), Some("service"));
        let consumers = by_api("consumers").expect("consumers");
        assert_eq!(
            consumers.child("key-auth").map(|(k, _)| k.name),
            Some("keyauth_credentials")
        );
        assert!(consumers.child("routes").is_none());
        let routes = by_api("routes").expect("routes");
        assert_eq!(routes.foreign("service").map(|k| k.name), Some("services"));
        assert!(disabled(&["targets"]));
        assert!(disabled(&["snis", "x", "certificate"]));
        assert!(!disabled(&["snis", "x"]));
    }
}
