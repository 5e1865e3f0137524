//! Writing a whole config in key order.
//!
//! Keys are not built as strings and sorted as strings: all keys of one kind share a long
//! prefix (`I|services|<ws>|` is 48 bytes before the first byte that differs), so byte-wise
//! comparisons spent most of a sort walking that prefix. Instead the keys are grouped by
//! prefix (one group per entity's items, per unique field, per foreign key), the few dozen
//! groups are sorted by prefix, and each group by the binary value its suffix spells: an id as
//! a `u128` (lower-case hex of big-endian bytes, hyphens at fixed places, sorts like the
//! number) or a SHA-256 digest as bytes (its hex sorts like the bytes). Because no entity or
//! field name contains `|`, no group's prefix is a prefix of another's, so that order is
//! exactly the byte order of the full keys. Keys are then spelled one at a time into a reused
//! buffer and appended with `MDB_APPEND` into the freshly cleared database: LMDB only ever
//! fills the rightmost leaf (no page splits mid-tree, no half-empty pages).

use std::sync::mpsc::{sync_channel, SyncSender};

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
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error>;
}

impl<E: Entity> Record for E {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(out, self)
    }
}

/// The keys of one group, by the binary value of their suffix.
enum Rows<'a> {
    /// `I|<entity>|<ws>|<pk>` → the entity.
    Items(Vec<(u128, &'a (dyn Record + Sync))>),
    /// `U|<entity>|<field>|<ws>|<sha256hex(value)>` → the item key of `pk`; `(digest, pk,
    /// value)`, the value kept for the duplicate error.
    Uniques(&'static str, Vec<([u8; 32], u128, &'a str)>),
    /// `F|<entity>|<field>|<fk>|<ws>|<pk>` → the item key of `pk`; `(fk, pk)`.
    Foreigns(Vec<(u128, u128)>),
    /// A bookkeeping key (the prefix is the whole key) and its value.
    Raw(&'a [u8]),
}

struct Group<'a> {
    prefix: Vec<u8>,
    entity: &'static str,
    rows: Rows<'a>,
}

/// Every key of a config, grouped by prefix.
#[derive(Default)]
struct Plan<'a> {
    groups: Vec<Group<'a>>,
}

const WS: &[u8] = DEFAULT_WORKSPACE.as_bytes();
const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_uuid(out: &mut Vec<u8>, id: u128) {
    let mut buf = [0u8; 36];
    let text = Uuid::from_u128(id).hyphenated().encode_lower(&mut buf);
    out.extend_from_slice(text.as_bytes());
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

impl<'a> Plan<'a> {
    fn group(&mut self, prefix: Vec<u8>, entity: &'static str, rows: Rows<'a>) -> usize {
        self.groups.push(Group {
            prefix,
            entity,
            rows,
        });
        self.groups.len() - 1
    }

    fn add<E: Entity + Sync>(&mut self, list: &'a [E]) {
        if list.is_empty() {
            return;
        }
        let name = E::NAME.as_bytes();
        let mut items = Vec::with_capacity(list.len());
        // (field, group index): entity types have at most two of each.
        let mut uniques: Vec<(&'static str, usize)> = Vec::new();
        let mut foreigns: Vec<(&'static str, usize)> = Vec::new();
        for e in list {
            let pk = Entity::pk(e).as_u128();
            items.push((pk, e as &'a (dyn Record + Sync)));
            for (field, v) in e.uniques() {
                let g = match uniques.iter().find(|(f, _)| *f == field) {
                    Some(&(_, g)) => g,
                    None => {
                        let prefix = cat(&[b"U|", name, b"|", field.as_bytes(), b"|", WS, b"|"]);
                        let g = self.group(prefix, E::NAME, Rows::Uniques(field, Vec::new()));
                        uniques.push((field, g));
                        g
                    }
                };
                if let Some(Group {
                    rows: Rows::Uniques(_, rows),
                    ..
                }) = self.groups.get_mut(g)
                {
                    rows.push((Sha256::digest(v.as_bytes()).into(), pk, v));
                }
            }
            for (field, fk) in e.foreigns() {
                let g = match foreigns.iter().find(|(f, _)| *f == field) {
                    Some(&(_, g)) => g,
                    None => {
                        let prefix = cat(&[b"F|", name, b"|", field.as_bytes(), b"|"]);
                        let g = self.group(prefix, E::NAME, Rows::Foreigns(Vec::new()));
                        foreigns.push((field, g));
                        g
                    }
                };
                if let Some(Group {
                    rows: Rows::Foreigns(rows),
                    ..
                }) = self.groups.get_mut(g)
                {
                    rows.push((fk.as_u128(), pk));
                }
            }
        }
        let prefix = cat(&[b"I|", name, b"|", WS, b"|"]);
        self.group(prefix, E::NAME, Rows::Items(items));
    }

    fn add_raw(&mut self, key: &[u8], value: &'a [u8]) {
        self.group(key.to_vec(), "", Rows::Raw(value));
    }

    /// Sorts every group and the groups themselves; refuses a duplicate id or unique value.
    /// Repeated `F|` keys (the same pointer twice) are kept once.
    fn sort(&mut self) -> Result<(), StoreError> {
        self.groups.sort_unstable_by(|a, b| a.prefix.cmp(&b.prefix));
        for g in &mut self.groups {
            match &mut g.rows {
                Rows::Items(rows) => {
                    rows.sort_unstable_by_key(|r| r.0);
                    if let Some(w) = rows.windows(2).find(|w| w[0].0 == w[1].0) {
                        let (name, pk) = (g.entity, Uuid::from_u128(w[0].0));
                        return Err(StoreError::Corrupt(format!("duplicate {name} id {pk}")));
                    }
                }
                Rows::Uniques(field, rows) => {
                    rows.sort_unstable_by_key(|r| r.0);
                    if let Some(w) = rows.windows(2).find(|w| w[0].0 == w[1].0) {
                        let (name, v) = (g.entity, w[1].2);
                        return Err(StoreError::Corrupt(format!(
                            "duplicate {name} {field} '{v}'"
                        )));
                    }
                }
                Rows::Foreigns(rows) => {
                    rows.sort_unstable();
                    rows.dedup();
                }
                Rows::Raw(_) => {}
            }
        }
        Ok(())
    }

    /// Calls `put` with every key and value in key order (after [`Plan::sort`]), spelling
    /// keys into a reused buffer. The `I|` records come from `records`, one call per items
    /// group, in group order.
    fn emit(
        &self,
        mut put: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
        mut records: impl FnMut(
            &mut dyn FnMut(u128, &[u8]) -> Result<(), StoreError>,
        ) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut key = Vec::with_capacity(256);
        let mut value = Vec::with_capacity(256);
        for g in &self.groups {
            let item_key = |out: &mut Vec<u8>, pk: u128| {
                out.clear();
                out.extend_from_slice(b"I|");
                out.extend_from_slice(g.entity.as_bytes());
                out.push(b'|');
                out.extend_from_slice(WS);
                out.push(b'|');
                push_uuid(out, pk);
            };
            key.clear();
            key.extend_from_slice(&g.prefix);
            let at = key.len();
            match &g.rows {
                Rows::Items(_) => records(&mut |pk, json| {
                    key.truncate(at);
                    push_uuid(&mut key, pk);
                    put(&key, json)
                })?,
                Rows::Uniques(_, rows) => {
                    for (digest, pk, _) in rows {
                        key.truncate(at);
                        for b in digest {
                            key.push(HEX[usize::from(b >> 4)]);
                            key.push(HEX[usize::from(b & 0xf)]);
                        }
                        item_key(&mut value, *pk);
                        put(&key, &value)?;
                    }
                }
                Rows::Foreigns(rows) => {
                    for (fk, pk) in rows {
                        key.truncate(at);
                        push_uuid(&mut key, *fk);
                        key.push(b'|');
                        key.extend_from_slice(WS);
                        key.push(b'|');
                        push_uuid(&mut key, *pk);
                        item_key(&mut value, *pk);
                        put(&key, &value)?;
                    }
                }
                Rows::Raw(v) => put(&key, v)?,
            }
        }
        Ok(())
    }

    /// Encodes the records of every items group, in key order, into batches sent to `tx`
    /// (one group per batch; a batch closes at [`BATCH`] bytes). `on_record` sees each record
    /// as encoded. Stops quietly when the receiver is gone (the writer failed).
    fn encode(
        &self,
        tx: &SyncSender<Result<Batch, StoreError>>,
        on_record: &mut dyn FnMut(&'static str, Uuid, &[u8]),
    ) {
        for g in &self.groups {
            let Rows::Items(rows) = &g.rows else {
                continue;
            };
            let mut batch = Batch::default();
            for (pk, rec) in rows {
                let start = batch.buf.len();
                if let Err(err) = rec.encode(&mut batch.buf) {
                    let (name, pk) = (g.entity, Uuid::from_u128(*pk));
                    let e = StoreError::Corrupt(format!("cannot encode {name} {pk}: {err}"));
                    let _ = tx.send(Err(e));
                    return;
                }
                on_record(g.entity, Uuid::from_u128(*pk), &batch.buf[start..]);
                batch.records.push((*pk, batch.buf.len()));
                if batch.buf.len() >= BATCH && tx.send(Ok(std::mem::take(&mut batch))).is_err() {
                    return;
                }
            }
            batch.last = true;
            if tx.send(Ok(batch)).is_err() {
                return;
            }
        }
    }
}

/// Encoded records of one items group: `(pk, end of its JSON in buf)`; `last` closes the group.
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    records: Vec<(u128, usize)>,
    last: bool,
}

/// Bytes of encoded records per batch handed from the encoder to the writer.
const BATCH: usize = 256 << 10;

/// Every key of `config` (entities, pointers, hash, default workspace, version tag), sorted
/// and checked for duplicates.
fn plan<'a>(config: &'a Config, hash: &'a str) -> Result<Plan<'a>, StoreError> {
    let mut plan = Plan::default();
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
    plan.sort()?;
    Ok(plan)
}

/// Clears the database and writes `config` (every entity, its pointers, the hash, the default
/// workspace and the version tag) in key order. A duplicate id or unique value is refused
/// before anything is written. `on_record` sees every entity's stored JSON as it is encoded
/// (in key order, on the encoder thread).
///
/// Records are encoded on a second thread while this one appends: first the `F|` pointers,
/// which sort before every `I|` key and need no record, then the records as batches arrive.
/// Encoding was a quarter of the write; LMDB's appends cannot be split across threads (one
/// write transaction is bound to its thread).
pub(crate) fn write_config(
    db: Database<Bytes, Bytes>,
    wtxn: &mut RwTxn,
    config: &Config,
    hash: &str,
    on_record: &mut (dyn FnMut(&'static str, Uuid, &[u8]) + Send),
    after_clear: &dyn Fn(),
) -> Result<(), StoreError> {
    let plan = plan(config, hash)?;
    db.clear(wtxn)?;
    after_clear();
    let plan = &plan;
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel::<Result<Batch, StoreError>>(8);
        let encoder = s.spawn(move || plan.encode(&tx, on_record));
        let stopped = || StoreError::Corrupt("the record encoder stopped".into());
        let result = plan.emit(
            |k, v| {
                db.put_with_flags(wtxn, PutFlags::APPEND, k, v)
                    .map_err(StoreError::from)
            },
            |put| loop {
                let batch = rx.recv().map_err(|_| stopped())??;
                let mut start = 0;
                for &(pk, end) in &batch.records {
                    put(pk, batch.buf.get(start..end).ok_or_else(stopped)?)?;
                    start = end;
                }
                if batch.last {
                    return Ok(());
                }
            },
        );
        // A failed writer drops its receiver first, so a blocked encoder returns.
        drop(rx);
        let joined = encoder.join();
        match (result, joined) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(_)) => Err(stopped()),
            (Ok(()), Ok(())) => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;

    fn pairs(config: &Config) -> Result<crate::store::RawPairs, StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Io(e.to_string()))?;
        let store = crate::Store::open(dir.path(), 1 << 20)?;
        let mut records = Vec::new();
        store.write_config_with(
            config,
            "h",
            &mut |e, id, json| records.push((e, id, json.to_vec())),
            || true,
        )?;
        // The hook saw every record, in key order, with the bytes stored.
        for (e, id, json) in &records {
            let key = crate::keys::item_key(e, DEFAULT_WORKSPACE, id);
            assert_eq!(store.raw(&key)?.as_deref(), Some(json.as_slice()));
        }
        store.raw_pairs()
    }

    /// The grouped order is the byte order of the full keys, and the keys are the ones the
    /// `keys` module (which the readers use) spells.
    #[test]
    fn keys_come_out_in_byte_order() -> Result<(), StoreError> {
        let id = |n: u128| Uuid::from_u128(n);
        // Ids whose hex starts with digits and letters, names whose hashes spread.
        let ids = [0x0a, 0xf0 << 120, 0x9 << 124, 1, 0xab << 100, 0x10 << 120];
        let routes: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, &n)| gatehouse_config::Route {
                id: id(n),
                name: Some(format!("r{i}")),
                service: Some(id(ids[(i + 1) % ids.len()])),
                ..test_route()
            })
            .collect();
        let consumers: Vec<_> = ids
            .iter()
            .map(|&n| gatehouse_config::Consumer {
                id: id(n),
                username: Some(format!("u{n}")),
                custom_id: Some(format!("c{n}")),
                tags: Vec::new(),
                created_at: 0,
                updated_at: 0,
            })
            .collect();
        let config = Config {
            routes,
            consumers,
            ..Config::default()
        };
        let out = pairs(&config)?;
        assert!(
            out.windows(2).all(|w| w[0].0 < w[1].0),
            "keys not ascending"
        );
        assert_eq!(out.len(), 6 * 6 + 3);
        let has = |k: &[u8]| out.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let r0 = id(ids[0]);
        let item = keys::item_key("routes", DEFAULT_WORKSPACE, &r0);
        assert!(has(&item).is_some());
        let name_key = keys::unique_key("routes", "name", DEFAULT_WORKSPACE, "r0");
        assert_eq!(has(&name_key), Some(item.clone()));
        let fk = keys::foreign_key("routes", "service", &id(ids[1]), DEFAULT_WORKSPACE, &r0);
        assert_eq!(has(&fk), Some(item));
        let custom = keys::unique_key("consumers", "custom_id", DEFAULT_WORKSPACE, "c1");
        assert_eq!(
            has(&custom),
            Some(keys::item_key("consumers", DEFAULT_WORKSPACE, &id(1)))
        );
        assert_eq!(has(HASH_KEY), Some(b"h".to_vec()));
        Ok(())
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
