//! The LMDB key layout (after Kong's `kong/db/declarative/import.lua`) and, per entity type, what
//! goes into it: primary key, unique fields and foreign keys.
//!
//! | key | value |
//! |---|---|
//! | `I\|<entity>\|<ws>\|<pk>` | the entity, `serde_json` |
//! | `U\|<entity>\|<field>\|<ws>\|<sha256hex(value)>` | the `I` key (pointer) |
//! | `F\|<entity>\|<fk_field>\|<fk_id>\|<ws>\|<pk>` | the `I` key (pointer) |
//!
//! Keys are ordered type, entity, qualifier, ws, id so that the Admin API's queries (list an
//! entity, find by unique field, list the routes of a service) are prefix scans.

use gatehouse_config::{
    Acl, BasicAuthCredential, CaCertificate, Certificate, Consumer, JwtSecret, KeyAuthCredential,
    Plugin, Route, Service, Sni, Target, Upstream,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Kong's default workspace id; DB-less has only this one.
pub const DEFAULT_WORKSPACE: &str = "0dc6f45b-8f8d-40d2-a504-473544ee190b";
pub const HASH_KEY: &[u8] = b"declarative_config:hash";
pub const DEFAULT_WORKSPACE_KEY: &[u8] = b"declarative_config:default_workspace";
/// Like Kong's `lmdb_validation_tag`: data written by another major.minor is wiped at open.
pub const VERSION_KEY: &[u8] = b"gatehouse:version";
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION_MAJOR"),
    ".",
    env!("CARGO_PKG_VERSION_MINOR")
);

/// `I|<entity>|` — the prefix of every item of one entity type.
pub fn item_prefix(entity: &str) -> Vec<u8> {
    format!("I|{entity}|").into_bytes()
}

pub fn item_key(entity: &str, ws: &str, pk: &Uuid) -> Vec<u8> {
    format!("I|{entity}|{ws}|{pk}").into_bytes()
}

pub fn unique_key(entity: &str, field: &str, ws: &str, value: &str) -> Vec<u8> {
    format!("U|{entity}|{field}|{ws}|{}", sha256_hex(value)).into_bytes()
}

pub fn foreign_key(entity: &str, field: &str, fk: &Uuid, ws: &str, pk: &Uuid) -> Vec<u8> {
    format!("F|{entity}|{field}|{fk}|{ws}|{pk}").into_bytes()
}

/// The entity name of an `I|<entity>|...` key.
pub fn item_entity(key: &[u8]) -> Option<&str> {
    let rest = key.strip_prefix(b"I|")?;
    let end = rest.iter().position(|b| *b == b'|')?;
    std::str::from_utf8(&rest[..end]).ok()
}

fn sha256_hex(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// What the store needs to know about an entity type to index it.
pub trait Entity: Serialize + DeserializeOwned {
    /// Kong's schema name, e.g. `keyauth_credentials`.
    const NAME: &'static str;
    fn pk(&self) -> Uuid;
    /// `(field, value)` of each unique field that is set.
    fn uniques(&self) -> Vec<(&'static str, &str)> {
        Vec::new()
    }
    /// `(field, id)` of each foreign key that is set.
    fn foreigns(&self) -> Vec<(&'static str, Uuid)> {
        Vec::new()
    }
}

/// Builds `uniques()` from optional / required string fields.
macro_rules! uniques {
    ($($field:literal => $value:expr),* $(,)?) => {{
        let mut v: Vec<(&'static str, &str)> = Vec::new();
        $( if let Some(x) = $value { v.push(($field, x)); } )*
        v
    }};
}

/// Builds `foreigns()` from optional / required uuid fields.
macro_rules! foreigns {
    ($($field:literal => $value:expr),* $(,)?) => {{
        let mut v: Vec<(&'static str, Uuid)> = Vec::new();
        $( if let Some(x) = $value { v.push(($field, x)); } )*
        v
    }};
}

impl Entity for Service {
    const NAME: &'static str = "services";
    fn pk(&self) -> Uuid {
        self.id
    }
    fn uniques(&self) -> Vec<(&'static str, &str)> {
        uniques!("name" => self.name.as_deref())
    }
    fn foreigns(&self) -> Vec<(&'static str, Uuid)> {
        foreigns!("client_certificate" => self.client_certificate)
    }
}

impl Entity for Route {
    const NAME: &'static str = "routes";
    fn pk(&self) -> Uuid {
        self.id
    }
    fn uniques(&self) -> Vec<(&'static str, &str)> {
        uniques!("name" => self.name.as_deref())
    }
    fn foreigns(&self) -> Vec<(&'static str, Uuid)> {
        foreigns!("service" => self.service)
    }
}

impl Entity for Upstream {
    const NAME: &'static str = "upstreams";
    fn pk(&self) -> Uuid {
        self.id
    }
    fn uniques(&self) -> Vec<(&'static str, &str)> {
        uniques!("name" => Some(self.name.as_str()))
    }
}

impl Entity for Target {
    const NAME: &'static str = "targets";
    fn pk(&self) -> Uuid {
        self.id
    }
    fn foreigns(&self) -> Vec<(&'static str, Uuid)> {
        foreigns!("upstream" => Some(self.upstream))
    }
}

impl Entity for Consumer {
    const NAME: &'static str = "consumers";
    fn pk(&self) -> Uuid {
        self.id
    }
    fn uniques(&self) -> Vec<(&'static str, &str)> {
        uniques!("username" => self.username.as_deref(), "custom_id" => self.custom_id.as_deref())
    }
}

impl Entity for Plugin {
    const NAME: &'static str = "plugins";
    fn pk(&self) -> Uuid {
        self.id
    }
    fn uniques(&self) -> Vec<(&'static str, &str)> {
        uniques!("instance_name" => self.instance_name.as_deref())
    }
    fn foreigns(&self) -> Vec<(&'static str, Uuid)> {
        foreigns!("route" => self.route, "service" => self.service, "consumer" => self.consumer)
    }
}

impl Entity for Certificate {
    const NAME: &'static str = "certificates";
    fn pk(&self) -> Uuid {
        self.id
    }
}

impl Entity for Sni {
    const NAME: &'static str = "snis";
    fn pk(&self) -> Uuid {
        self.id
    }
    fn uniques(&self) -> Vec<(&'static str, &str)> {
        uniques!("name" => Some(self.name.as_str()))
    }
    fn foreigns(&self) -> Vec<(&'static str, Uuid)> {
        foreigns!("certificate" => Some(self.certificate))
    }
}

impl Entity for CaCertificate {
    const NAME: &'static str = "ca_certificates";
    fn pk(&self) -> Uuid {
        self.id
    }
    fn uniques(&self) -> Vec<(&'static str, &str)> {
        uniques!("cert_digest" => self.cert_digest.as_deref())
    }
}

impl Entity for KeyAuthCredential {
    const NAME: &'static str = "keyauth_credentials";
    fn pk(&self) -> Uuid {
        self.id
    }
    fn uniques(&self) -> Vec<(&'static str, &str)> {
        uniques!("key" => Some(self.key.as_str()))
    }
    fn foreigns(&self) -> Vec<(&'static str, Uuid)> {
        foreigns!("consumer" => Some(self.consumer))
    }
}

impl Entity for BasicAuthCredential {
    const NAME: &'static str = "basicauth_credentials";
    fn pk(&self) -> Uuid {
        self.id
    }
    fn uniques(&self) -> Vec<(&'static str, &str)> {
        uniques!("username" => Some(self.username.as_str()))
    }
    fn foreigns(&self) -> Vec<(&'static str, Uuid)> {
        foreigns!("consumer" => Some(self.consumer))
    }
}

impl Entity for Acl {
    const NAME: &'static str = "acls";
    fn pk(&self) -> Uuid {
        self.id
    }
    fn foreigns(&self) -> Vec<(&'static str, Uuid)> {
        foreigns!("consumer" => Some(self.consumer))
    }
}

impl Entity for JwtSecret {
    const NAME: &'static str = "jwt_secrets";
    fn pk(&self) -> Uuid {
        self.id
    }
    fn uniques(&self) -> Vec<(&'static str, &str)> {
        uniques!("key" => Some(self.key.as_str()))
    }
    fn foreigns(&self) -> Vec<(&'static str, Uuid)> {
        foreigns!("consumer" => Some(self.consumer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let id = Uuid::nil();
        assert_eq!(
            item_key("routes", "ws", &id),
            b"I|routes|ws|00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(item_entity(&item_key("routes", "ws", &id)), Some("routes"));
        assert_eq!(item_entity(b"U|routes|x"), None);
        // sha256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            unique_key("services", "name", "ws", "abc"),
            b"U|services|name|ws|ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            foreign_key("routes", "service", &id, "ws", &id).len(),
            "F|routes|service||ws|".len() + 72
        );
    }
}
