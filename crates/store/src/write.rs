//! Writing a whole config in key order.
//!
//! All keys are built first (the small ones, `F|`/`U|` pointers and the bookkeeping keys, in one
//! arena; `I|` records are serialized later, one at a time, into a reused buffer), sorted, checked
//! for duplicates, and then appended with `MDB_APPEND` into the freshly cleared database. LMDB
//! then only ever fills the rightmost leaf: no page splits in the middle of the tree, no
//! half-empty pages, and no key comparison down the tree per insert.

use std::ops::Range;

use gatehouse_config::Config;
use heed::types::Bytes;
use heed::{Database, PutFlags, RwTxn};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::keys::{Entity, DEFAULT_WORKSPACE, DEFAULT_WORKSPACE_KEY, HASH_KEY};
use crate::keys::{VERSION, VERSION_KEY};
use crate::StoreError;

/// The object-safe part of [`Entity`] the writer needs.
trait Record {
    fn name(&self) -> &'static str;
    fn pk(&self) -> Uuid;
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error>;
}

impl<E: Entity> Record for E {
    fn name(&self) -> &'static str {
        E::NAME
    }
    fn pk(&self) -> Uuid {
        Entity::pk(self)
    }
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(out, self)
    }
}

/// Why a pointer key must be unique: `U|` keys name the entity and value for the error.
#[derive(Clone, Copy)]
enum Unique<'a> {
    /// `F|` and bookkeeping keys: a repeat carries the same value and is written once.
    No,
    Yes(&'static str, &'static str, &'a str),
}

struct Pair<'a> {
    key: Range<usize>,
    value: Range<usize>,
    unique: Unique<'a>,
}

struct Item<'a> {
    key: Range<usize>,
    rec: &'a dyn Record,
}

#[derive(Default)]
struct Plan<'a> {
    /// Every key (and every pointer value, which is an `I|` key) back to back.
    arena: Vec<u8>,
    items: Vec<Item<'a>>,
    pairs: Vec<Pair<'a>>,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl<'a> Plan<'a> {
    fn push_bytes(&mut self, parts: &[&[u8]]) -> Range<usize> {
        let start = self.arena.len();
        for p in parts {
            self.arena.extend_from_slice(p);
        }
        start..self.arena.len()
    }

    fn push_uuid(&mut self, id: &Uuid) {
        let mut buf = [0u8; 36];
        self.arena
            .extend_from_slice(id.hyphenated().encode_lower(&mut buf).as_bytes());
    }

    fn add<E: Entity>(&mut self, list: &'a [E]) {
        let ws = DEFAULT_WORKSPACE.as_bytes();
        for e in list {
            let rec: &'a dyn Record = e;
            let pk = Entity::pk(e);
            // I|<entity>|<ws>|<pk>
            let start = self.arena.len();
            self.push_bytes(&[b"I|", E::NAME.as_bytes(), b"|", ws, b"|"]);
            self.push_uuid(&pk);
            let item_key = start..self.arena.len();
            self.items.push(Item {
                key: item_key.clone(),
                rec,
            });
            for (field, v) in e.uniques() {
                // U|<entity>|<field>|<ws>|<sha256hex(value)>
                let start = self.arena.len();
                self.push_bytes(&[b"U|", E::NAME.as_bytes(), b"|", field.as_bytes(), b"|"]);
                self.push_bytes(&[ws, b"|"]);
                for b in Sha256::digest(v.as_bytes()) {
                    self.arena.push(HEX[usize::from(b >> 4)]);
                    self.arena.push(HEX[usize::from(b & 0xf)]);
                }
                self.pairs.push(Pair {
                    key: start..self.arena.len(),
                    value: item_key.clone(),
                    unique: Unique::Yes(E::NAME, field, v),
                });
            }
            for (field, fk) in e.foreigns() {
                // F|<entity>|<field>|<fk>|<ws>|<pk>
                let start = self.arena.len();
                self.push_bytes(&[b"F|", E::NAME.as_bytes(), b"|", field.as_bytes(), b"|"]);
                self.push_uuid(&fk);
                self.push_bytes(&[b"|", ws, b"|"]);
                self.push_uuid(&pk);
                self.pairs.push(Pair {
                    key: start..self.arena.len(),
                    value: item_key.clone(),
                    unique: Unique::No,
                });
            }
        }
    }

    fn add_raw(&mut self, key: &[u8], value: &[u8]) {
        let key = self.push_bytes(&[key]);
        let value = self.push_bytes(&[value]);
        self.pairs.push(Pair {
            key,
            value,
            unique: Unique::No,
        });
    }
}

/// Clears the database and writes `config` (every entity, its pointers, the hash, the default
/// workspace and the version tag) in key order. A duplicate id or unique value is refused
/// before anything is written.
pub(crate) fn write_config(
    db: Database<Bytes, Bytes>,
    wtxn: &mut RwTxn,
    config: &Config,
    hash: &str,
) -> Result<(), StoreError> {
    let mut plan = Plan::default();
    let n = config.services.len()
        + config.routes.len()
        + config.plugins.len()
        + config.consumers.len()
        + config.keyauth_credentials.len();
    plan.arena.reserve(n * 200);
    plan.items.reserve(n);
    plan.pairs.reserve(n * 2);
    plan.add(&config.services);
    plan.add(&config.routes);
    plan.add(&config.upstreams);
    plan.add(&config.targets);
    plan.add(&config.consumers);
    plan.add(&config.plugins);
    plan.add(&config.certificates);
    plan.add(&config.snis);
    plan.add(&config.ca_certificates);
    plan.add(&config.keyauth_credentials);
    plan.add(&config.basicauth_credentials);
    plan.add(&config.acls);
    plan.add(&config.jwt_secrets);
    plan.add_raw(VERSION_KEY, VERSION.as_bytes());
    plan.add_raw(HASH_KEY, hash.as_bytes());
    plan.add_raw(DEFAULT_WORKSPACE_KEY, DEFAULT_WORKSPACE.as_bytes());

    let Plan {
        arena,
        items,
        pairs,
    } = plan;
    // Sort slices, not ranges: no bounds check per comparison, and unstable sorts (equal keys
    // are either identical pointers or a duplicate refused below) — the sorts were a third of
    // a 10k-service load.
    let key = |r: &Range<usize>| arena.get(r.clone()).unwrap_or_default();
    let mut items: Vec<(&[u8], &dyn Record)> = items.iter().map(|i| (key(&i.key), i.rec)).collect();
    let mut pairs: Vec<(&[u8], &[u8], Unique)> = pairs
        .iter()
        .map(|p| (key(&p.key), key(&p.value), p.unique))
        .collect();
    items.sort_unstable_by(|a, b| a.0.cmp(b.0));
    pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for w in items.windows(2) {
        if let [a, b] = w {
            if a.0 == b.0 {
                let (name, pk) = (b.1.name(), b.1.pk());
                return Err(StoreError::Corrupt(format!("duplicate {name} id {pk}")));
            }
        }
    }
    for w in pairs.windows(2) {
        if let [a, b] = w {
            if a.0 == b.0 {
                let unique = match (a.2, b.2) {
                    (Unique::Yes(..), _) => a.2,
                    _ => b.2,
                };
                if let Unique::Yes(name, field, v) = unique {
                    return Err(StoreError::Corrupt(format!(
                        "duplicate {name} {field} '{v}'"
                    )));
                }
            }
        }
    }
    // Repeated `F|` keys (the same pointer twice) are written once, as an overwrite did.
    pairs.dedup_by(|b, a| a.0 == b.0);

    db.clear(wtxn)?;
    // Every entity key starts with an upper-case letter: `F|` < `I|` < `U|` < the bookkeeping
    // keys. Pointers before the `I|` block first, then the items, then the rest.
    let split = pairs.partition_point(|p| p.0 < b"I|".as_slice());
    let (before, after) = pairs.split_at(split);
    let append = |wtxn: &mut RwTxn, k: &[u8], v: &[u8]| {
        db.put_with_flags(wtxn, PutFlags::APPEND, k, v)
            .map_err(StoreError::from)
    };
    for p in before {
        append(wtxn, p.0, p.1)?;
    }
    let mut buf = Vec::with_capacity(4096);
    for (item_key, rec) in &items {
        buf.clear();
        rec.encode(&mut buf).map_err(|err| {
            let (name, pk) = (rec.name(), rec.pk());
            StoreError::Corrupt(format!("cannot encode {name} {pk}: {err}"))
        })?;
        append(wtxn, item_key, &buf)?;
    }
    for p in after {
        append(wtxn, p.0, p.1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;

    #[test]
    fn key_layout_matches_keys_module() {
        let mut plan = Plan::default();
        let routes = vec![gatehouse_config::Route {
            id: Uuid::from_u128(7),
            name: Some("r".into()),
            service: Some(Uuid::from_u128(9)),
            ..test_route()
        }];
        plan.add(&routes);
        let key = |r: &Range<usize>| plan.arena[r.clone()].to_vec();
        let (id, svc) = (Uuid::from_u128(7), Uuid::from_u128(9));
        let item_key = keys::item_key("routes", DEFAULT_WORKSPACE, &id);
        assert_eq!(key(&plan.items[0].key), item_key);
        assert_eq!(
            key(&plan.pairs[0].key),
            keys::unique_key("routes", "name", DEFAULT_WORKSPACE, "r")
        );
        assert_eq!(
            key(&plan.pairs[1].key),
            keys::foreign_key("routes", "service", &svc, DEFAULT_WORKSPACE, &id)
        );
        assert!(plan.pairs.iter().all(|p| key(&p.value) == item_key));
    }

    fn test_route() -> gatehouse_config::Route {
        gatehouse_config::Route {
            id: Uuid::nil(),
            name: None,
            protocols: vec![gatehouse_config::Protocol::Http],
            methods: None,
            hosts: None,
            paths: Some(vec!["/".into()]),
            headers: None,
            snis: None,
            sources: None,
            destinations: None,
            https_redirect_status_code: 426,
            strip_path: true,
            preserve_host: false,
            request_buffering: true,
            response_buffering: true,
            regex_priority: 0,
            path_handling: gatehouse_config::PathHandling::V0,
            service: None,
            expression: None,
            priority: None,
            tags: Vec::new(),
            created_at: 0,
            updated_at: 0,
        }
    }
}
