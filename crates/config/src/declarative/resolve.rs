//! Ids, uniqueness and references, in Kong's order: deterministic UUIDv5 ids first
//! (`generate_ids`), then endpoint-key / primary-key uniqueness and reference lookups
//! (`validate_references`), then the remaining unique fields (`flatten`).

use std::collections::HashMap as StdHashMap;

use sha1_smol::Sha1;
use uuid::Uuid;

use super::entities::{fk_target, Ent, Fk, Item};
use crate::error::{ErrKey, ErrTree};
use crate::model::Config;

/// SipHash was ~10 % of validating a 10k-service config; the keys are names and ids from the
/// document, and foldhash's per-process random seed is enough for an Admin API input.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;

const ROOT: Uuid = Uuid::from_u128(0xfd02801f_0957_4a15_a55a_c8d9606f30b5);

/// Kong's deterministic id: `v5(v5(root, entity), key)`.
pub fn entity_id(entity: &str, key: &str) -> Uuid {
    let ns = v5(&ROOT, entity.as_bytes());
    v5(&ns, key.as_bytes())
}

/// A name-based (SHA-1) UUID, as `Uuid::new_v5`, but hashed with RustCrypto's `sha1`, which
/// uses the CPU's SHA extensions when present: half the time of `uuid`'s software SHA-1
/// (100k ids: 13.0 → 6.6 ms on this machine kind), and a load derives one id per entity.
fn v5(ns: &Uuid, name: &[u8]) -> Uuid {
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(ns.as_bytes());
    h.update(name);
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
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

/// Kong's namespace UUIDs per entity (`v5(root, entity)`), computed once per load.
#[derive(Default)]
struct Namespaces(Vec<(&'static str, Uuid)>);

impl Namespaces {
    fn id(&mut self, entity: &'static str, key: &str) -> Uuid {
        let ns = match self.0.iter().find(|(e, _)| *e == entity) {
            Some((_, ns)) => *ns,
            None => {
                let ns = v5(&ROOT, entity.as_bytes());
                self.0.push((entity, ns));
                ns
            }
        };
        v5(&ns, key.as_bytes())
    }
}

fn push_uuid(out: &mut String, id: &Uuid) {
    let mut buf = [0u8; 36];
    out.push_str(id.hyphenated().encode_lower(&mut buf));
}

/// Writes into `out` the name hashed into a deterministic id; `None` for a random id.
/// Cache-key entities hash `<entity>:*:<part>:<part>…`, a part given as `{ id = … }` adding
/// nothing (not even its separator), as in Kong.
fn id_key(item: &Item, parent_id: Option<Uuid>, out: &mut String) -> Option<()> {
    out.clear();
    if matches!(item.ent, Ent::KeyAuth(_) | Ent::Jwt(_)) {
        return None;
    }
    let fk_part = |out: &mut String, field: &str, required: bool| -> Option<()> {
        match item.fks.iter().find(|(f, _)| *f == field) {
            Some((_, Fk::Given(s))) => {
                out.push(':');
                out.push_str(s);
            }
            Some((_, Fk::Record(_))) => {}
            Some((_, Fk::Parent)) => {
                let id = parent_id?;
                out.push(':');
                push_uuid(out, &id);
            }
            None if required => return None,
            None => out.push(':'),
        }
        Some(())
    };
    let val_part = |out: &mut String, v: &str| {
        out.push(':');
        out.push_str(v);
    };
    let cache_key = matches!(
        item.ent,
        Ent::Plugin(_) | Ent::Target(_) | Ent::BasicAuth(_) | Ent::Acl(_)
    );
    if cache_key {
        out.push_str(item.entity);
        out.push_str(":*");
    }
    match &item.ent {
        Ent::Plugin(p) => {
            val_part(out, &p.name);
            fk_part(out, "route", false)?;
            fk_part(out, "service", false)?;
            fk_part(out, "consumer", false)?;
        }
        Ent::Target(_) => {
            fk_part(out, "upstream", true)?;
            val_part(out, item.raw_key.as_deref().unwrap_or_default());
        }
        Ent::BasicAuth(b) => val_part(out, &b.username),
        Ent::Acl(a) => {
            fk_part(out, "consumer", true)?;
            val_part(out, &a.group);
        }
        Ent::Service(_) | Ent::Route(_) | Ent::Consumer(_) | Ent::Upstream(_) | Ent::Sni(_) => {
            out.push_str(endpoint_key(&item.ent)?.1);
        }
        _ => return None,
    }
    Some(())
}

/// The map of `entity` in a per-entity list (a dozen entity names: a scan beats hashing).
fn slot<'m, V: Default>(list: &'m mut Vec<(&'static str, V)>, entity: &'static str) -> &'m mut V {
    let pos = match list.iter().position(|(e, _)| *e == entity) {
        Some(p) => p,
        None => {
            list.push((entity, V::default()));
            list.len() - 1
        }
    };
    &mut list[pos].1
}

fn lookup<'m, V>(list: &'m [(&'static str, V)], entity: &str) -> Option<&'m V> {
    list.iter().find(|(e, _)| *e == entity).map(|(_, v)| v)
}

fn uniqueness(entity: &str, field: &str, value: &str) -> String {
    format!(
        "uniqueness violation: '{entity}' entity with {field} set to '{value}' already declared"
    )
}

/// Validated items with their ids and resolved foreign keys, ready to become a [`Config`].
pub(crate) struct Resolved {
    items: Vec<Item>,
    ids: Vec<Uuid>,
    /// Resolved foreign keys of all items back to back; item `i` owns `fk_ids[fk_at[i]..fk_at[i + 1]]`.
    fk_ids: Vec<(&'static str, Uuid)>,
    fk_at: Vec<usize>,
    transform: bool,
}

/// Resolves ids and references, or returns Kong's error tree.
pub(crate) fn resolve(items: Vec<Item>, transform: bool) -> Result<Resolved, ErrTree> {
    let mut ids = Vec::with_capacity(items.len());
    let mut known = Vec::with_capacity(items.len());
    let mut namespaces = Namespaces::default();
    let mut key = String::new();
    for item in &items {
        let parent_id = item.parent.and_then(|p| known.get(p).copied().flatten());
        let (id, det) = match item.given_id {
            Some(id) => (id, true),
            None => match id_key(item, parent_id, &mut key) {
                Some(()) => (namespaces.id(item.entity, &key), true),
                None => (Uuid::new_v4(), false),
            },
        };
        ids.push(id);
        known.push(det.then_some(id));
    }

    let mut errs = ErrTree::default();
    let mut by_key: Vec<(&str, HashMap<&str, usize>)> = Vec::new();
    let mut by_id: Vec<(&str, HashMap<Uuid, usize>)> = Vec::new();
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
            let keys = slot(&mut by_key, item.entity);
            if keys.contains_key(key) {
                at(&mut errs, uniqueness(item.entity, field, key));
                failed = true;
            } else {
                keys.insert(key, pos);
            }
        }
        match slot(&mut by_id, item.entity).entry(ids[pos]) {
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
        lookup(&by_key, entity)
            .and_then(|m| m.get(key).copied())
            .or_else(|| {
                Uuid::parse_str(key)
                    .ok()
                    .and_then(|u| lookup(&by_id, entity).and_then(|m| m.get(&u).copied()))
            })
    };
    let mut fk_ids: Vec<(&'static str, Uuid)> = Vec::with_capacity(items.len());
    let mut fk_at = Vec::with_capacity(items.len() + 1);
    for (pos, item) in items.iter().enumerate() {
        fk_at.push(fk_ids.len());
        let resolved = &mut fk_ids;
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
    }
    fk_at.push(fk_ids.len());
    if !errs.is_empty() {
        return Err(errs);
    }

    let mut seen: HashMap<(&str, &str), ()> = HashMap::default();
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
    drop((by_key, by_id, seen));
    Ok(Resolved {
        items,
        ids,
        fk_ids,
        fk_at,
        transform,
    })
}

impl Resolved {
    /// Moves the items into a [`Config`], with their ids and foreign keys.
    pub(crate) fn build(self) -> Config {
        let Resolved {
            items,
            ids,
            fk_ids,
            fk_at,
            transform,
        } = self;
        let mut cfg = Config::default();
        reserve(&mut cfg, &items);
        for (pos, (item, id)) in items.into_iter().zip(ids).enumerate() {
            let fks = fk_at
                .get(pos)
                .zip(fk_at.get(pos + 1))
                .and_then(|(a, b)| fk_ids.get(*a..*b))
                .unwrap_or_default();
            add(&mut cfg, item, id, fks, transform);
        }
        cfg
    }
}

fn reserve(cfg: &mut Config, items: &[Item]) {
    let count = |f: fn(&Ent) -> bool| items.iter().filter(|i| f(&i.ent)).count();
    cfg.services
        .reserve(count(|e| matches!(e, Ent::Service(_))));
    cfg.routes.reserve(count(|e| matches!(e, Ent::Route(_))));
    cfg.plugins.reserve(count(|e| matches!(e, Ent::Plugin(_))));
    cfg.consumers
        .reserve(count(|e| matches!(e, Ent::Consumer(_))));
    cfg.keyauth_credentials
        .reserve(count(|e| matches!(e, Ent::KeyAuth(_))));
}

fn add(cfg: &mut Config, item: Item, id: Uuid, fks: &[(&'static str, Uuid)], transform: bool) {
    {
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
}

/// basic-auth's stored form: sha1 hex of the password followed by the consumer id.
pub fn hash_password(password: &str, consumer: &Uuid) -> String {
    let mut h = Sha1::new();
    h.update(password.as_bytes());
    h.update(consumer.to_string().as_bytes());
    h.digest().to_string()
}

#[cfg(test)]
mod v5_tests {
    use super::*;

    #[test]
    fn matches_the_uuid_crates_v5() {
        let names = [
            "",
            "a",
            "services",
            "key-auth",
            "ä",
            &"x".repeat(55),
            &"y".repeat(200),
        ];
        for ns in [ROOT, Uuid::nil(), Uuid::from_u128(u128::MAX)] {
            for name in names {
                assert_eq!(
                    v5(&ns, name.as_bytes()),
                    Uuid::new_v5(&ns, name.as_bytes()),
                    "{name:?}"
                );
            }
        }
    }
}
