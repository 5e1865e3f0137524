//! The validated, normalised declarative configuration: every entity flat, with its id,
//! Kong's defaults filled in and foreign keys resolved to ids.
//!
//! These types are what the rest of Gatehouse consumes (router, proxy, store, admin). They are
//! produced only by [`crate::declarative::parse`], so code downstream may rely on the invariants
//! validation established (references resolve, required fields are present, values in range).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Foreign keys serialize in Kong's entity shape, `{"id": "…"}` (what the Admin API returns
/// and LMDB holds, so both are written straight from these types), and read back from that
/// or from a bare id.
mod fk {
    use serde::ser::SerializeStruct;
    use serde::{Deserialize, Deserializer, Serializer};
    use uuid::Uuid;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Bare(Uuid),
        Object { id: Uuid },
    }

    impl Repr {
        fn id(self) -> Uuid {
            match self {
                Repr::Bare(id) | Repr::Object { id } => id,
            }
        }
    }

    pub fn serialize<S: Serializer>(id: &Uuid, s: S) -> Result<S::Ok, S::Error> {
        let mut fk = s.serialize_struct("ForeignKey", 1)?;
        fk.serialize_field("id", id)?;
        fk.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Uuid, D::Error> {
        Repr::deserialize(d).map(Repr::id)
    }

    pub mod opt {
        use super::Repr;
        use serde::{Deserialize, Deserializer, Serializer};
        use uuid::Uuid;

        pub fn serialize<S: Serializer>(id: &Option<Uuid>, s: S) -> Result<S::Ok, S::Error> {
            match id {
                Some(id) => super::serialize(id, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
            Option::<Repr>::deserialize(d).map(|r| r.map(Repr::id))
        }
    }
}

/// Protocols an entity may speak (Kong's `constants.PROTOCOLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Http,
    Https,
    Grpc,
    Grpcs,
    Tcp,
    Tls,
    TlsPassthrough,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Grpc => "grpc",
            Protocol::Grpcs => "grpcs",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
            Protocol::TlsPassthrough => "tls_passthrough",
            Protocol::Udp => "udp",
        }
    }

    pub fn parse(s: &str) -> Option<Protocol> {
        Some(match s {
            "http" => Protocol::Http,
            "https" => Protocol::Https,
            "grpc" => Protocol::Grpc,
            "grpcs" => Protocol::Grpcs,
            "tcp" => Protocol::Tcp,
            "tls" => Protocol::Tls,
            "tls_passthrough" => Protocol::TlsPassthrough,
            "udp" => Protocol::Udp,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
pub enum PathHandling {
    #[default]
    #[serde(rename = "v0")]
    V0,
    #[serde(rename = "v1")]
    V1,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Hash)]
pub struct Service {
    pub id: Uuid,
    pub name: Option<String>,
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    pub path: Option<String>,
    pub retries: u16,
    pub connect_timeout: u32,
    pub write_timeout: u32,
    pub read_timeout: u32,
    pub tags: Vec<String>,
    pub enabled: bool,
    #[serde(with = "fk::opt")]
    pub client_certificate: Option<Uuid>,
    pub tls_verify: Option<bool>,
    pub tls_verify_depth: Option<u8>,
    pub ca_certificates: Option<Vec<Uuid>>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// `{ip, port}` entries of `sources` / `destinations`; `ip` may be a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub struct CidrPort {
    pub ip: Option<String>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Hash)]
pub struct Route {
    pub id: Uuid,
    pub name: Option<String>,
    pub protocols: Vec<Protocol>,
    pub methods: Option<Vec<String>>,
    pub hosts: Option<Vec<String>>,
    pub paths: Option<Vec<String>>,
    /// Header name (as written in the config) → values.
    pub headers: Option<BTreeMap<String, Vec<String>>>,
    pub snis: Option<Vec<String>>,
    pub sources: Option<Vec<CidrPort>>,
    pub destinations: Option<Vec<CidrPort>>,
    pub https_redirect_status_code: u16,
    pub strip_path: bool,
    pub preserve_host: bool,
    pub request_buffering: bool,
    pub response_buffering: bool,
    pub regex_priority: i64,
    pub path_handling: PathHandling,
    #[serde(with = "fk::opt")]
    pub service: Option<Uuid>,
    /// Expressions flavor only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Expressions flavor only (0 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u64>,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Hash)]
pub struct Upstream {
    pub id: Uuid,
    pub name: String,
    pub algorithm: String,
    pub hash_on: String,
    pub hash_fallback: String,
    pub slots: u32,
    pub host_header: Option<String>,
    /// Everything else Kong accepts (hash_on_* companions, healthchecks, …), kept verbatim
    /// with defaults filled in, for the features that will read it.
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub id: Uuid,
    #[serde(with = "fk")]
    pub upstream: Uuid,
    /// `host:port` with the port filled in (8000 when none was given, like Kong's DAO).
    pub target: String,
    pub weight: u32,
    pub tags: Vec<String>,
    pub created_at: f64,
    pub updated_at: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consumer {
    pub id: Uuid,
    pub username: Option<String>,
    pub custom_id: Option<String>,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plugin {
    pub id: Uuid,
    pub name: String,
    pub instance_name: Option<String>,
    #[serde(with = "fk::opt")]
    pub route: Option<Uuid>,
    #[serde(with = "fk::opt")]
    pub service: Option<Uuid>,
    #[serde(with = "fk::opt")]
    pub consumer: Option<Uuid>,
    /// Untyped until the plugin runtime types each plugin's schema.
    pub config: serde_json::Value,
    pub protocols: Vec<Protocol>,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    pub id: Uuid,
    pub cert: String,
    pub key: String,
    pub cert_alt: Option<String>,
    pub key_alt: Option<String>,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sni {
    pub id: Uuid,
    pub name: String,
    #[serde(with = "fk")]
    pub certificate: Uuid,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaCertificate {
    pub id: Uuid,
    pub cert: String,
    pub cert_digest: Option<String>,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyAuthCredential {
    pub id: Uuid,
    #[serde(with = "fk")]
    pub consumer: Uuid,
    pub key: String,
    pub ttl: Option<u64>,
    pub tags: Vec<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BasicAuthCredential {
    pub id: Uuid,
    #[serde(with = "fk")]
    pub consumer: Uuid,
    pub username: String,
    /// Stored as Kong stores it: sha1(password .. consumer_id) hex when `_transform` is on.
    pub password: String,
    pub tags: Vec<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acl {
    pub id: Uuid,
    #[serde(with = "fk")]
    pub consumer: Uuid,
    pub group: String,
    pub tags: Vec<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JwtSecret {
    pub id: Uuid,
    #[serde(with = "fk")]
    pub consumer: Uuid,
    pub key: String,
    pub secret: Option<String>,
    pub rsa_public_key: Option<String>,
    pub algorithm: String,
    pub tags: Vec<String>,
    pub created_at: i64,
}

/// A whole validated declarative configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Config {
    pub services: Vec<Service>,
    pub routes: Vec<Route>,
    pub upstreams: Vec<Upstream>,
    pub targets: Vec<Target>,
    pub consumers: Vec<Consumer>,
    pub plugins: Vec<Plugin>,
    pub certificates: Vec<Certificate>,
    pub snis: Vec<Sni>,
    pub ca_certificates: Vec<CaCertificate>,
    pub keyauth_credentials: Vec<KeyAuthCredential>,
    pub basicauth_credentials: Vec<BasicAuthCredential>,
    pub acls: Vec<Acl>,
    pub jwt_secrets: Vec<JwtSecret>,
}
