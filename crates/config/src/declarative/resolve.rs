//! Ids, uniqueness and references, in Kong's order: deterministic UUIDv5 ids first
//! (`generate_ids`), then endpoint-key / primary-key uniqueness and reference lookups
//! (`validate_references`), then the remaining unique fields (`flatten`).

use std::collections::HashMap;

use sha1_smol::Sha1;
use uuid::Uuid;

use super::entities::{fk_target, Ent, Fk, Item};
use crate::error::{ErrKey, ErrTree};
use crate::model::Config;

const ROOT: Uuid = Uuid::from_u128(0xfd02801f_0957_4a15_a55a_c8d9606f30b5);

/// Kong's deterministic id: `v5(v5(root, entity), key)`.
pub fn entity_id(entity: &str, key: &str) -> Uuid {
    let ns = Uuid::new_v5(&ROOT, entity.as_bytes());
    Uuid::new_v5(&ns, key.as_bytes())
}

/// The endpoint key value, for entities whose endpoint key is unique.
fn endpoint_key(ent: &Ent) -> Option<(&'static str, &str)> {
    match ent {
        Ent::Service(s) => s.name.as_deref().map(|n| ("name", n)),
        Ent::Route(r) => r.name.as_deref().map(|n| ("name", n)),
        Ent::Consumer(c) => c.username.as_deref().map(|n| ("username", n)),
        Ent::Upstream(u) => Some(("name", u.name.as_str())),
        Ent::Sni(s) => Some(("name", s.name.as_str())),
        Ent::Plugin(p) => p.instance_name.as_deref().map(|n| ("instance_name", n)),
        Ent::KeyAuth(k) => Some(("key", k.key.as_str())),
        Ent::BasicAuth(b) => Some(("username", b.username.as_str())),
        Ent::Jwt(j) => Some(("key", j.key.as_str())),
        _ => None,
    }
}

enum Part {
    Fk(&'static str, bool),
    Val(String),
}

fn cache_key_parts(item: &Item) -> Option<Vec<Part>> {
    Some(match &item.ent {
        Ent::Plugin(p) => vec![
            Part::Val(p.name.clone()),
            Part::Fk("route", false),
            Part::Fk("service", false),
            Part::Fk("consumer", false),
        ],
        Ent::Target(_) => vec![
            Part::Fk("upstream", true),
            Part::Val(item.raw_key.clone().unwrap_or_default()),
        ],
        Ent::BasicAuth(b) => vec![Part::Val(b.username.clone())],
        Ent::Acl(a) => vec![Part::Fk("consumer", true), Part::Val(a.group.clone())],
        _ => return None,
    })
}

/// The name hashed into a deterministic id, or `None` for a random one.
fn id_key(item: &Item, parent_id: Option<Uuid>) -> Option<String> {
    if matches!(item.ent, Ent::KeyAuth(_) | Ent::Jwt(_)) {
        return None;
    }
    if let Some(parts) = cache_key_parts(item) {
        let mut ck = vec![item.entity.to_string(), "*".to_string()];
        for part in parts {
            match part {
                Part::Val(v) => ck.push(v),
                Part::Fk(field, required) => match item.fks.iter().find(|(f, _)| *f == field) {
                    Some((_, Fk::Given(s))) => ck.push(s.clone()),
                    Some((_, Fk::Record(_))) => {}
                    Some((_, Fk::Parent)) => ck.push(parent_id?.to_string()),
                    None if required => return None,
                    None => ck.push(String::new()),
                },
            }
        }
        return Some(ck.join(":"));
    }
    match &item.ent {
        Ent::Service(_) | Ent::Route(_) | Ent::Consumer(_) | Ent::Upstream(_) | Ent::Sni(_) => {
            endpoint_key(&item.ent).map(|(_, v)| v.to_string())
        }
        _ => None,
    }
}

fn uniqueness(entity: &str, field: &str, value: &str) -> String {
    format!(
        "uniqueness violation: '{entity}' entity with {field} set to '{value}' already declared"
    )
}

/// Resolves ids and references and builds the config, or returns Kong's error tree.
pub(crate) fn resolve(items: Vec<Item>, transform: bool) -> Result<Config, ErrTree> {
    let mut ids = Vec::with_capacity(items.len());
    let mut known = Vec::with_capacity(items.len());
    for item in &items {
        let parent_id = item.parent.and_then(|p| known.get(p).copied().flatten());
        let (id, det) = match item.given_id {
            Some(id) => (id, true),
            None => match id_key(item, parent_id) {
                Some(k) => (entity_id(item.entity, &k), true),
                None => (Uuid::new_v4(), false),
            },
        };
        ids.push(id);
        known.push(det.then_some(id));
    }

    let mut errs = ErrTree::default();
    let mut by_key: HashMap<&str, HashMap<&str, usize>> = HashMap::new();
    let mut by_id: HashMap<&str, HashMap<Uuid, usize>> = HashMap::new();
    for (pos, item) in items.iter().enumerate() {
        let parent = item.parent.and_then(|p| items.get(p));
        let at = |errs: &mut ErrTree, msg: String| match parent {
            Some(p) => errs
                .child(ErrKey::name(p.entity))
                .child(ErrKey::Idx(p.idx))
                .child(ErrKey::name(item.entity))
                .set(ErrKey::Idx(item.idx), msg),
            None => errs
                .child(ErrKey::name(item.entity))
                .set(ErrKey::Idx(item.idx), msg),
        };
        let mut failed = false;
        if let Some((field, key)) = endpoint_key(&item.ent) {
            let keys = by_key.entry(item.entity).or_default();
            if keys.contains_key(key) {
                at(&mut errs, uniqueness(item.entity, field, key));
                failed = true;
            } else {
                keys.insert(key, pos);
            }
        }
        match by_id.entry(item.entity).or_default().entry(ids[pos]) {
            std::collections::hash_map::Entry::Occupied(_) => {
                if !failed {
                    at(
                        &mut errs,
                        uniqueness(item.entity, "primary key", &ids[pos].to_string()),
                    );
                }
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(pos);
            }
        }
    }

    let find = |entity: &str, key: &str| -> Option<usize> {
        by_key
            .get(entity)
            .and_then(|m| m.get(key).copied())
            .or_else(|| {
                Uuid::parse_str(key)
                    .ok()
                    .and_then(|u| by_id.get(entity).and_then(|m| m.get(&u).copied()))
            })
    };
    let mut fk_ids: Vec<Vec<(&'static str, Uuid)>> = Vec::with_capacity(items.len());
    for (pos, item) in items.iter().enumerate() {
        let mut resolved = Vec::new();
        for (field, fk) in &item.fks {
            let target = fk_target(field);
            let (key, shown) = match fk {
                Fk::Parent => {
                    if let Some(p) = item.parent {
                        resolved.push((*field, ids[p]));
                    }
                    continue;
                }
                Fk::Given(s) => (s.as_str(), s.clone()),
                Fk::Record(id) => (id.as_str(), serde_json::json!({ "id": id }).to_string()),
            };
            match find(target, key) {
                Some(t) => resolved.push((*field, ids[t])),
                None => {
                    let at = endpoint_key(&item.ent)
                        .map(|(_, k)| k.to_string())
                        .unwrap_or_else(|| ids[pos].to_string());
                    errs.child(ErrKey::name(item.entity)).push(
                        ErrKey::Name(at),
                        format!(
                            "invalid reference '{field}: {shown}' (no such entry in '{target}')"
                        ),
                    );
                }
            }
        }
        fk_ids.push(resolved);
    }
    if !errs.is_empty() {
        return Err(errs);
    }

    let mut seen: HashMap<(&str, &str), ()> = HashMap::new();
    for (pos, item) in items.iter().enumerate() {
        let (field, value) = match &item.ent {
            Ent::Consumer(c) => ("custom_id", c.custom_id.as_deref()),
            Ent::CaCertificate(c) => ("cert_digest", c.cert_digest.as_deref()),
            _ => continue,
        };
        let Some(value) = value else { continue };
        if seen.insert((item.entity, value), ()).is_some() {
            let at = endpoint_key(&item.ent)
                .map(|(_, k)| k.to_string())
                .unwrap_or_else(|| ids[pos].to_string());
            errs.child(ErrKey::name(item.entity))
                .set(ErrKey::Name(at), uniqueness(item.entity, field, value));
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }

    let mut cfg = Config::default();
    for ((item, id), fks) in items.into_iter().zip(ids).zip(fk_ids) {
        let fk = |name: &str| fks.iter().find(|(f, _)| *f == name).map(|(_, u)| *u);
        match item.ent {
            Ent::Service(mut s) => {
                s.id = id;
                s.client_certificate = fk("client_certificate");
                cfg.services.push(s);
            }
            Ent::Route(mut r) => {
                r.id = id;
                r.service = fk("service");
                cfg.routes.push(r);
            }
            Ent::Upstream(mut u) => {
                u.id = id;
                if let Some(c) = fk("client_certificate") {
                    u.extra
                        .insert("client_certificate".into(), serde_json::json!({ "id": c }));
                }
                cfg.upstreams.push(u);
            }
            Ent::Target(mut t) => {
                t.id = id;
                t.upstream = fk("upstream").unwrap_or_default();
                cfg.targets.push(t);
            }
            Ent::Consumer(mut c) => {
                c.id = id;
                cfg.consumers.push(c);
            }
            Ent::Plugin(mut p) => {
                p.id = id;
                p.route = fk("route");
                p.service = fk("service");
                p.consumer = fk("consumer");
                cfg.plugins.push(p);
            }
            Ent::Certificate(mut c) => {
                c.id = id;
                cfg.certificates.push(c);
            }
            Ent::Sni(mut s) => {
                s.id = id;
                s.certificate = fk("certificate").unwrap_or_default();
                cfg.snis.push(s);
            }
            Ent::CaCertificate(mut c) => {
                c.id = id;
                cfg.ca_certificates.push(c);
            }
            Ent::KeyAuth(mut k) => {
                k.id = id;
                k.consumer = fk("consumer").unwrap_or_default();
                cfg.keyauth_credentials.push(k);
            }
            Ent::BasicAuth(mut b) => {
                b.id = id;
                b.consumer = fk("consumer").unwrap_or_default();
                if transform {
                    b.password = hash_password(&b.password, &b.consumer);
                }
                cfg.basicauth_credentials.push(b);
            }
            Ent::Acl(mut a) => {
                a.id = id;
                a.consumer = fk("consumer").unwrap_or_default();
                cfg.acls.push(a);
            }
            Ent::Jwt(mut j) => {
                j.id = id;
                j.consumer = fk("consumer").unwrap_or_default();
                cfg.jwt_secrets.push(j);
            }
        }
    }
    Ok(cfg)
}

/// basic-auth's stored form: sha1 hex of the password followed by the consumer id.
pub fn hash_password(password: &str, consumer: &Uuid) -> String {
    let mut h = Sha1::new();
    h.update(password.as_bytes());
    h.update(consumer.to_string().as_bytes());
    h.digest().to_string()
}
