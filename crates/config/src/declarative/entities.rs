//! Schema validation of each entity record, producing model values with ids and foreign keys
//! still unresolved. Nested children are walked right after their parent so the flat list keeps
//! parents ahead of children (id derivation needs the parent's id first).

use crate::doc::{Map, Value};
use uuid::Uuid;

use super::rec::{self, Rec, PROTOCOLS};
use super::routes;
use super::upstreams::{target, upstream};
use crate::error::{ErrKey, ErrTree};
use crate::model::*;
use crate::settings::RouterFlavor;

/// A foreign key as written in the file.
#[derive(Debug, Clone)]
pub(crate) enum Fk {
    /// Inherited from the enclosing record.
    Parent,
    /// A top-level string: endpoint key or id.
    Given(String),
    /// A `{ id = ... }` record.
    Record(String),
}

#[derive(Debug, Clone)]
pub(crate) enum Ent {
    Service(Service),
    Route(Route),
    Upstream(Upstream),
    Target(Target),
    Consumer(Consumer),
    Plugin(Plugin),
    Certificate(Certificate),
    Sni(Sni),
    CaCertificate(CaCertificate),
    KeyAuth(KeyAuthCredential),
    BasicAuth(BasicAuthCredential),
    Acl(Acl),
    Jwt(JwtSecret),
}

#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub entity: &'static str,
    /// 1-based position in its array.
    pub idx: usize,
    /// Position of the enclosing item in the flat list.
    pub parent: Option<usize>,
    pub given_id: Option<Uuid>,
    pub fks: Vec<(&'static str, Fk)>,
    /// The cache-key text Kong hashes that differs from the stored value (a target as written).
    pub raw_key: Option<String>,
    pub ent: Ent,
}

pub(crate) struct Ctx<'o> {
    pub plugins: &'o [String],
    /// Entity names `known_entity` accepts with these plugins (looked up per record).
    pub known: Vec<&'static str>,
    pub flavor: RouterFlavor,
    pub now: i64,
    pub now_ms: f64,
    pub items: Vec<Item>,
}

/// Every entity collection name `known_entity` may accept.
pub(crate) const ALL_ENTITIES: &[&str] = &[
    "services",
    "routes",
    "upstreams",
    "targets",
    "consumers",
    "plugins",
    "certificates",
    "snis",
    "ca_certificates",
    "keyauth_credentials",
    "basicauth_credentials",
    "acls",
    "jwt_secrets",
];

/// Entities the file may carry at the top level, given the enabled plugins.
pub(crate) fn known_entity(name: &str, plugins: &[String]) -> bool {
    let needs = match name {
        "services" | "routes" | "upstreams" | "targets" | "consumers" | "plugins"
        | "certificates" | "snis" | "ca_certificates" => return true,
        "keyauth_credentials" => "key-auth",
        "basicauth_credentials" => "basic-auth",
        "acls" => "acl",
        "jwt_secrets" => "jwt",
        _ => return false,
    };
    plugins.iter().any(|p| p == needs)
}

pub(crate) fn fk_target(field: &str) -> &'static str {
    match field {
        "service" => "services",
        "route" => "routes",
        "consumer" => "consumers",
        "upstream" => "upstreams",
        _ => "certificates",
    }
}

fn child_fk(parent: &str, child: &str) -> Option<&'static str> {
    Some(match (parent, child) {
        ("services", "routes" | "plugins") => "service",
        ("routes", "plugins") => "route",
        (
            "consumers",
            "plugins" | "keyauth_credentials" | "basicauth_credentials" | "acls" | "jwt_secrets",
        ) => "consumer",
        ("upstreams", "targets") => "upstream",
        ("certificates", "snis") => "certificate",
        _ => return None,
    })
}

fn children(entity: &str) -> &'static [&'static str] {
    match entity {
        "services" => &["routes", "plugins"],
        "routes" => &["plugins"],
        "consumers" => &[
            "plugins",
            "keyauth_credentials",
            "basicauth_credentials",
            "acls",
            "jwt_secrets",
        ],
        "upstreams" => &["targets"],
        "certificates" => &["snis"],
        _ => &[],
    }
}

impl Ctx<'_> {
    /// Validates `value` as the array `entity` (at top level or nested) into `errs[entity]`.
    pub fn walk(
        &mut self,
        entity: &'static str,
        value: &Value,
        parent: Option<usize>,
        errs: &mut ErrTree,
    ) {
        let Some(arr) = value.as_array() else {
            if !matches!(value, Value::Object(m) if m.is_empty()) {
                errs.set(ErrKey::name(entity), rec::type_name("array"));
            }
            return;
        };
        let mut sub = ErrTree::default();
        for (i, el) in arr.iter().enumerate() {
            let idx = i + 1;
            match el {
                Value::Object(obj) => {
                    let e = self.record(entity, idx, obj, parent);
                    if !e.is_empty() {
                        sub.put(ErrKey::Idx(idx), e);
                    }
                }
                Value::String(name) if entity == "snis" && parent.is_some() => {
                    let name: &str = name;
                    if let Err(m) = rec::validate_wildcard_host(name) {
                        sub.set(ErrKey::Idx(idx), m);
                        continue;
                    }
                    self.items.push(Item {
                        entity,
                        idx,
                        parent,
                        given_id: None,
                        fks: vec![("certificate", Fk::Parent)],
                        raw_key: None,
                        ent: Ent::Sni(Sni {
                            id: Uuid::nil(),
                            name: name.to_string(),
                            certificate: Uuid::nil(),
                            tags: Vec::new(),
                            created_at: self.now,
                            updated_at: self.now,
                        }),
                    });
                }
                _ => sub.set(ErrKey::Idx(idx), rec::type_name("record")),
            }
        }
        if !sub.is_empty() {
            errs.put(ErrKey::name(entity), sub);
        }
    }

    fn record(
        &mut self,
        entity: &'static str,
        idx: usize,
        obj: &Map<'_>,
        parent: Option<usize>,
    ) -> ErrTree {
        let mut r = Rec::new(obj);
        let given_id = r.uuid("id");
        let parent_entity = parent.and_then(|p| self.items.get(p)).map(|p| p.entity);
        let mut fks = Vec::new();
        for field in fk_fields(entity) {
            let inherited = parent_entity.and_then(|pe| child_fk(pe, entity)) == Some(*field);
            if parent.is_some() {
                if r.raw(field).is_some() {
                    r.err(field, "value must be null");
                }
                if inherited {
                    fks.push((*field, Fk::Parent));
                }
                continue;
            }
            match r.raw(field) {
                None => {}
                Some(Value::String(s)) => fks.push((*field, Fk::Given(s.to_string()))),
                Some(Value::Object(m)) => match m.get("id").and_then(Value::as_str) {
                    Some(id) => fks.push((*field, Fk::Record(id.to_string()))),
                    None => r.err(field, "expected a string"),
                },
                Some(_) => r.err(field, rec::type_name("string")),
            }
        }
        let required_fk = match entity {
            "targets" => Some("upstream"),
            "snis" => Some("certificate"),
            "keyauth_credentials" | "basicauth_credentials" | "acls" | "jwt_secrets" => {
                Some("consumer")
            }
            _ => None,
        };
        if let Some(f) = required_fk {
            if !fks.iter().any(|(n, _)| *n == f) && !r.has_err(f) {
                r.err(f, "required field missing");
            }
        }
        let ent = self.entity(entity, &mut r);
        for child in children(entity) {
            if self.known.contains(child) {
                let _ = r.raw(child);
            }
        }
        let mut errs = r.finish();
        if ent.is_none() && errs.is_empty() {
            errs.push_entity("entity check failed");
        }
        let pos = self.items.len();
        let ok = errs.is_empty();
        let raw_key = obj
            .get("target")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(ent) = ent.filter(|_| ok) {
            self.items.push(Item {
                entity,
                idx,
                parent,
                given_id,
                fks,
                raw_key,
                ent,
            });
        } else {
            // Keep walking children so their errors are reported too; they hang off a stand-in.
            self.items.push(Item {
                entity,
                idx,
                parent,
                given_id,
                fks,
                raw_key,
                ent: Ent::Acl(Acl {
                    id: Uuid::nil(),
                    consumer: Uuid::nil(),
                    group: String::new(),
                    tags: Vec::new(),
                    created_at: 0,
                }),
            });
        }
        for child in children(entity) {
            if !self.known.contains(child) {
                continue;
            }
            if let Some(v) = obj.get(child).filter(|v| !v.is_null()) {
                self.walk(child, v, Some(pos), &mut errs);
            }
        }
        errs
    }

    fn entity(&mut self, entity: &str, r: &mut Rec) -> Option<Ent> {
        let now = self.now;
        Some(match entity {
            "services" => Ent::Service(service(r, now)?),
            "routes" => Ent::Route(routes::route(r, now, self.flavor)?),
            "upstreams" => Ent::Upstream(upstream(r, now)?),
            "targets" => Ent::Target(target(r, self.now_ms)?),
            "consumers" => Ent::Consumer(consumer(r, now)?),
            "plugins" => Ent::Plugin(plugin(r, now, self.plugins)?),
            "certificates" => Ent::Certificate(certificate(r, now)?),
            "snis" => Ent::Sni(Sni {
                id: Uuid::nil(),
                name: r.checked("name", true, rec::validate_wildcard_host)?,
                certificate: Uuid::nil(),
                tags: r.tags(),
                created_at: r.timestamp("created_at", now),
                updated_at: r.timestamp("updated_at", now),
            }),
            "ca_certificates" => Ent::CaCertificate(CaCertificate {
                id: Uuid::nil(),
                cert: r.req_string("cert")?,
                cert_digest: r.string("cert_digest"),
                tags: r.tags(),
                created_at: r.timestamp("created_at", now),
                updated_at: r.timestamp("updated_at", now),
            }),
            "keyauth_credentials" => Ent::KeyAuth(KeyAuthCredential {
                id: Uuid::nil(),
                consumer: Uuid::nil(),
                key: r.string("key").unwrap_or_else(random_key),
                ttl: r.int("ttl", 0, 100_000_000).map(|t| t as u64),
                tags: r.tags(),
                created_at: r.timestamp("created_at", now),
            }),
            "basicauth_credentials" => {
                let username = r.req_string("username");
                let password = r.req_string("password");
                Ent::BasicAuth(BasicAuthCredential {
                    id: Uuid::nil(),
                    consumer: Uuid::nil(),
                    username: username?,
                    password: password?,
                    tags: r.tags(),
                    created_at: r.timestamp("created_at", now),
                })
            }
            "acls" => Ent::Acl(Acl {
                id: Uuid::nil(),
                consumer: Uuid::nil(),
                group: r.req_string("group")?,
                tags: r.tags(),
                created_at: r.timestamp("created_at", now),
            }),
            "jwt_secrets" => Ent::Jwt(jwt(r, now)?),
            _ => return None,
        })
    }
}

fn fk_fields(entity: &str) -> &'static [&'static str] {
    match entity {
        "services" | "upstreams" => &["client_certificate"],
        "routes" => &["service"],
        "plugins" => &["route", "service", "consumer"],
        "targets" => &["upstream"],
        "snis" => &["certificate"],
        "keyauth_credentials" | "basicauth_credentials" | "acls" | "jwt_secrets" => &["consumer"],
        _ => &[],
    }
}

pub(crate) fn random_key() -> String {
    Uuid::new_v4().simple().to_string()
}

/// `socket.url.parse`, reduced to what the service `url` shorthand reads.
struct Url {
    scheme: Option<String>,
    host: Option<String>,
    port: Option<String>,
    path: Option<String>,
}

fn parse_url(s: &str) -> Url {
    let mut rest = s;
    let mut scheme = None;
    if let Some(colon) = rest.find(':') {
        let cand = &rest[..colon];
        let ok = cand
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && cand
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if ok {
            scheme = Some(cand.to_string());
            rest = &rest[colon + 1..];
        }
    }
    let mut authority = None;
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find('/').unwrap_or(after.len());
        authority = Some(after[..end].to_string());
        rest = &after[end..];
    }
    let mut path = rest;
    for sep in ['#', '?', ';'] {
        if let Some(i) = path.find(sep) {
            path = &path[..i];
        }
    }
    let mut url = Url {
        scheme,
        host: None,
        port: None,
        path: (!path.is_empty()).then(|| path.to_string()),
    };
    if let Some(mut auth) = authority.as_deref() {
        if let Some(at) = auth.find('@') {
            auth = &auth[at + 1..];
        }
        let mut host = auth;
        if let Some(c) = auth.rfind(':') {
            let p = &auth[c + 1..];
            if !p.contains(']') {
                url.port = Some(p.to_string());
                host = &auth[..c];
            }
        }
        if !host.is_empty() {
            let h = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            url.host = Some(h.to_string());
        }
    }
    url
}

fn service(r: &mut Rec, now: i64) -> Option<Service> {
    let mut url_parts = None;
    if let Some(v) = r.raw("url") {
        match v.as_str() {
            Some(s) if !s.is_empty() => url_parts = Some(parse_url(s)),
            Some(_) => r.err("url", "length must be at least 1"),
            None => r.err("url", rec::type_name("string")),
        }
    }
    let name = r.checked("name", false, rec::validate_utf8_name);
    let (protocol, host, port, path);
    if let Some(u) = url_parts {
        for f in ["protocol", "host", "port", "path"] {
            let _ = r.raw(f);
        }
        let num_port = u.port.as_deref().and_then(|p| p.parse::<i64>().ok());
        let proto = u.scheme.clone().unwrap_or_else(|| match num_port {
            Some(443) => "https".into(),
            _ => "http".into(),
        });
        protocol = match rec::one_of(&proto, PROTOCOLS) {
            Ok(()) => Protocol::parse(&proto),
            Err(e) => {
                r.err("protocol", e);
                None
            }
        };
        host = match u.host {
            None => {
                r.err("host", "required field missing");
                None
            }
            Some(h) => match rec::validate_host(&h) {
                Ok(()) => Some(h),
                Err(e) => {
                    r.err("host", e);
                    None
                }
            },
        };
        port = match (num_port, &u.port) {
            (Some(p), _) if (0..=65535).contains(&p) => Some(p as u16),
            (Some(_), _) => {
                r.err("port", "value should be between 0 and 65535");
                None
            }
            (None, Some(_)) => {
                r.err("port", rec::type_name("integer"));
                None
            }
            (None, None) => Some(if proto == "https" { 443 } else { 80 }),
        };
        path = match u.path {
            None => None,
            Some(p) => match rec::validate_path(&p) {
                Ok(()) => Some(p),
                Err(e) => {
                    r.err("path", e);
                    None
                }
            },
        };
    } else {
        protocol = r
            .one_of("protocol", PROTOCOLS)
            .map(|p| Protocol::parse(&p))
            .unwrap_or(Some(Protocol::Http));
        host = r.checked("host", true, rec::validate_host);
        port = r.int("port", 0, 65535).map(|p| p as u16).or(Some(80));
        path = r.checked("path", false, rec::validate_path);
    }
    let retries = r.int("retries", 0, 32767).unwrap_or(5) as u16;
    let mut timeout = |f| r.int(f, 1, 2_147_483_646).unwrap_or(60000) as u32;
    let (connect_timeout, write_timeout, read_timeout) = (
        timeout("connect_timeout"),
        timeout("write_timeout"),
        timeout("read_timeout"),
    );
    let tls_verify = r.boolean("tls_verify");
    let tls_verify_depth = r.int("tls_verify_depth", 0, 64).map(|d| d as u8);
    let ca_certificates = r.strings("ca_certificates", "array", |s| {
        rec::parse_uuid(s)
            .map(|_| ())
            .ok_or_else(|| "expected a valid UUID".to_string())
    });
    let enabled = r.boolean("enabled").unwrap_or(true);
    let tags = r.tags();
    let created_at = r.timestamp("created_at", now);
    let updated_at = r.timestamp("updated_at", now);
    let protocol = protocol?;
    if matches!(
        protocol,
        Protocol::Tcp | Protocol::Tls | Protocol::Udp | Protocol::Grpc | Protocol::Grpcs
    ) && path.is_some()
    {
        r.err("path", "value must be null");
        r.entity_err("failed conditional validation given value of field 'protocol'");
    }
    if !matches!(protocol, Protocol::Https | Protocol::Tls) {
        for f in [
            "client_certificate",
            "tls_verify",
            "tls_verify_depth",
            "ca_certificates",
        ] {
            if r.present(f) {
                r.err(f, "value must be null");
                r.entity_err("failed conditional validation given value of field 'protocol'");
            }
        }
    }
    Some(Service {
        id: Uuid::nil(),
        name,
        protocol,
        host: host?,
        port: port?,
        path,
        retries,
        connect_timeout,
        write_timeout,
        read_timeout,
        tags,
        enabled,
        client_certificate: None,
        tls_verify,
        tls_verify_depth,
        ca_certificates: ca_certificates
            .map(|v| v.iter().filter_map(|s| rec::parse_uuid(s)).collect()),
        created_at,
        updated_at,
    })
}

fn consumer(r: &mut Rec, now: i64) -> Option<Consumer> {
    let username = r.string("username");
    let custom_id = r.string("custom_id");
    if !r.present("username") && !r.present("custom_id") {
        r.entity_err("at least one of these fields must be non-empty: 'custom_id', 'username'");
    }
    Some(Consumer {
        id: Uuid::nil(),
        username,
        custom_id,
        tags: r.tags(),
        created_at: r.timestamp("created_at", now),
        updated_at: r.timestamp("updated_at", now),
    })
}

fn plugin(r: &mut Rec, now: i64, enabled_plugins: &[String]) -> Option<Plugin> {
    let name = r.req_string("name");
    if let Some(n) = &name {
        if !enabled_plugins.iter().any(|p| p == n) {
            r.err(
                "name",
                format!("plugin '{n}' not enabled; add it to the 'plugins' configuration property"),
            );
        }
    }
    let instance_name = r.checked("instance_name", false, rec::validate_utf8_name);
    let config = match r.raw("config") {
        None => serde_json::Value::Object(serde_json::Map::new()),
        Some(Value::Object(m)) => serde_json::Value::Object(m.to_json()),
        Some(Value::Array(a)) if a.is_empty() => serde_json::Value::Object(serde_json::Map::new()),
        Some(_) => {
            r.err("config", rec::type_name("record"));
            serde_json::Value::Null
        }
    };
    let protocols = r
        .strings("protocols", "set", |s| rec::one_of(s, PROTOCOLS))
        .map(|v| v.iter().filter_map(|p| Protocol::parse(p)).collect())
        .unwrap_or_else(|| {
            vec![
                Protocol::Grpc,
                Protocol::Grpcs,
                Protocol::Http,
                Protocol::Https,
            ]
        });
    Some(Plugin {
        id: Uuid::nil(),
        name: name?,
        instance_name,
        route: None,
        service: None,
        consumer: None,
        config,
        protocols,
        enabled: r.boolean("enabled").unwrap_or(true),
        tags: r.tags(),
        created_at: r.timestamp("created_at", now),
        updated_at: r.timestamp("updated_at", now),
    })
}

fn certificate(r: &mut Rec, now: i64) -> Option<Certificate> {
    let cert = r.req_string("cert");
    let key = r.req_string("key");
    let cert_alt = r.string("cert_alt");
    let key_alt = r.string("key_alt");
    if r.present("cert_alt") != r.present("key_alt") {
        r.entity_err("all or none of these fields must be set: 'cert_alt', 'key_alt'");
    }
    Some(Certificate {
        id: Uuid::nil(),
        cert: cert?,
        key: key?,
        cert_alt,
        key_alt,
        tags: r.tags(),
        created_at: r.timestamp("created_at", now),
        updated_at: r.timestamp("updated_at", now),
    })
}

fn jwt(r: &mut Rec, now: i64) -> Option<JwtSecret> {
    const ALGS: &[&str] = &[
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
        "PS384", "PS512", "EdDSA",
    ];
    let algorithm = r
        .one_of("algorithm", ALGS)
        .unwrap_or_else(|| "HS256".into());
    let rsa_public_key = r.string("rsa_public_key");
    let needs_key = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
    ]
    .contains(&algorithm.as_str());
    if needs_key && !r.present("rsa_public_key") {
        r.err("rsa_public_key", "required field missing");
        r.entity_err("failed conditional validation given value of field 'algorithm'");
    }
    Some(JwtSecret {
        id: Uuid::nil(),
        consumer: Uuid::nil(),
        key: r.string("key").unwrap_or_else(random_key),
        secret: Some(r.string("secret").unwrap_or_else(random_key)),
        rsa_public_key,
        algorithm,
        tags: r.tags(),
        created_at: r.timestamp("created_at", now),
    })
}
