//! The [`Store`]: opening the env (with Kong's validation-tag wipe), writing a whole config in
//! one transaction, and the reads the proxy (whole config at start) and Admin API (pages,
//! lookups) need.

use std::ops::Bound;
use std::path::Path;

use gatehouse_config::Config;
use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, RoTxn, WithoutTls};
use serde_json::Value;
use uuid::Uuid;

use crate::keys::{self, DEFAULT_WORKSPACE, HASH_KEY, VERSION, VERSION_KEY};
use crate::StoreError;

/// LMDB wants a map size that is a multiple of the OS page size; 64 KiB is a multiple of every
/// page size Linux uses (4, 16, 64 KiB).
const MAP_GRANULE: u64 = 64 * 1024;

/// The LMDB env holding the declarative config. Cheap to clone; clones share the env.
#[derive(Clone)]
pub struct Store {
    env: Env<WithoutTls>,
    db: Database<Bytes, Bytes>,
    wiped: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.env.path())
            .field("wiped", &self.wiped)
            .finish()
    }
}

impl Store {
    /// Opens (creating it if missing) the env in `dir`, normally `<prefix>/dbless.lmdb`.
    /// `map_size` is rounded up to 64 KiB. Data written by another Gatehouse major.minor is
    /// erased (see [`Store::was_wiped`]). Call once per process: a second open of the same
    /// path while the first `Store` lives fails with [`StoreError::Open`].
    pub fn open(dir: &Path, map_size: u64) -> Result<Store, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let map_size = map_size
            .max(1)
            .checked_next_multiple_of(MAP_GRANULE)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| open_err(format!("map size {map_size} is too large")))?;
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options.map_size(map_size);
        // SAFETY: `open` is unsafe because LMDB memory-maps the file and modifying it other than
        // through LMDB while mapped is undefined behaviour. The directory is Gatehouse's own
        // (`<prefix>/dbless.lmdb`), only ever written through LMDB: by this env, or by another
        // Gatehouse process during a binary upgrade, which LMDB's lock file coordinates. heed's
        // process-wide registry refuses a second env on the same path (`EnvAlreadyOpened`), so
        // this process holds at most one env per file, as LMDB requires. Operators must keep
        // the prefix on a local filesystem (as for Kong).
        #[allow(unsafe_code)]
        let env = unsafe { options.open(dir) }.map_err(|e| open_err(e.to_string()))?;
        env.clear_stale_readers()?;

        let mut wtxn = env.write_txn()?;
        let db: Database<Bytes, Bytes> = env.create_database(&mut wtxn, None)?;
        let stale = db.get(&wtxn, VERSION_KEY)? != Some(VERSION.as_bytes());
        let mut wiped = false;
        if stale {
            wiped = !db.is_empty(&wtxn)?;
            db.clear(&mut wtxn)?;
            db.put(&mut wtxn, VERSION_KEY, VERSION.as_bytes())?;
        }
        wtxn.commit()?;
        Ok(Store { env, db, wiped })
    }

    /// True when `open` erased data left by another Gatehouse version (worth a log line).
    pub fn was_wiped(&self) -> bool {
        self.wiped
    }

    /// Replaces everything with `config` in one write transaction: clear, write every entity
    /// and its `U|`/`F|` pointers, the hash and the default workspace, commit. On any error
    /// (e.g. [`StoreError::MapFull`]) nothing is changed.
    pub fn write_config(&self, config: &Config, hash: &str) -> Result<(), StoreError> {
        self.write_config_if(config, hash, || true).map(|_| ())
    }

    /// [`Store::write_config`] that asks `commit` before committing: the transaction is
    /// written while the caller does other work (building the snapshot), and aborted, leaving
    /// the stored config untouched, when `commit` says no. Returns whether it committed.
    pub fn write_config_if(
        &self,
        config: &Config,
        hash: &str,
        commit: impl FnOnce() -> bool,
    ) -> Result<bool, StoreError> {
        self.write_config_with(config, hash, &mut |_, _, _| {}, commit)
    }

    /// [`Store::write_config_if`] that also hands every entity's stored JSON to `on_record`
    /// as it is encoded (entity name, id, bytes; in key order, from another thread), so a
    /// caller that needs the same JSON (the `POST /config` answer) does not encode it again.
    pub fn write_config_with(
        &self,
        config: &Config,
        hash: &str,
        on_record: &mut (dyn FnMut(&'static str, Uuid, &[u8]) + Send),
        commit: impl FnOnce() -> bool,
    ) -> Result<bool, StoreError> {
        let mut wtxn = self.env.write_txn()?;
        let release = || self.release_map();
        crate::write::write_config(self.db, &mut wtxn, config, hash, on_record, &release)?;
        if !commit() {
            wtxn.abort();
            return Ok(false);
        }
        wtxn.commit()?;
        self.release_map();
        Ok(true)
    }

    /// Unmaps the LMDB file pages this process has touched (they stay in the page cache).
    ///
    /// Clearing the database walks the old tree's branch pages through the map, and the
    /// kernel maps up to 16 cached neighbours per fault ("fault-around"), so each load used to
    /// leave the whole previous tree mapped: +28 MiB RSS per load of Kong's LMDB-benchmark
    /// config until three trees (92 MiB) were resident, all of it counted in the process's
    /// peak RSS. Called after the clear and after the commit, this keeps that at one
    /// transient tree at most.
    fn release_map(&self) {
        // LMDB's own `me_mapaddr` is only set with MDB_FIXEDMAP; the kernel knows the mapping.
        let Some((start, len)) = self.map_range() else {
            return;
        };
        // SAFETY: the range is exactly this process's mapping of LMDB's data file (found by
        // path in /proc/self/maps), which LMDB maps read-only and shared (no `MDB_WRITEMAP`),
        // so it holds no private or dirty data: MADV_DONTNEED only drops page-table entries,
        // and the next access, by LMDB or by a reader on another thread, faults the same
        // bytes back in from the page cache. Nothing is unmapped, no reference invalidated.
        // A refusal (not expected on Linux) only costs the memory this saves.
        #[allow(unsafe_code)]
        let _ = unsafe {
            rustix::mm::madvise(
                start as *mut std::ffi::c_void,
                len,
                rustix::mm::Advice::LinuxDontNeed,
            )
        };
    }

    /// Start and length of the shared mapping of `data.mdb`, from /proc/self/maps.
    fn map_range(&self) -> Option<(usize, usize)> {
        let file = self.env.path().join("data.mdb").canonicalize().ok()?;
        let file = file.to_str()?;
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        maps.lines().find_map(|line| {
            // range perms offset device inode, then the path after padding.
            let mut fields = line.splitn(6, ' ');
            let (range, perms) = (fields.next()?, fields.next()?);
            let path = fields.nth(3)?.trim_start();
            if path != file || !perms.ends_with('s') {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            let a = usize::from_str_radix(a, 16).ok()?;
            let b = usize::from_str_radix(b, 16).ok()?;
            Some((a, b.checked_sub(a)?))
        })
    }

    /// The stored config and its hash; `None` if no config was ever written. Entities come
    /// back sorted by key (entity, workspace, id), so the result is deterministic.
    pub fn read_config(&self) -> Result<Option<(Config, String)>, StoreError> {
        let rtxn = self.env.read_txn()?;
        let Some(hash) = self.read_hash(&rtxn)? else {
            return Ok(None);
        };
        let mut c = Config::default();
        for item in self.db.prefix_iter(&rtxn, b"I|")? {
            let (key, value) = item?;
            let entity =
                keys::item_entity(key).ok_or_else(|| corrupt_key("malformed item key", key))?;
            match entity {
                "services" => c.services.push(decode(key, value)?),
                "routes" => c.routes.push(decode(key, value)?),
                "upstreams" => c.upstreams.push(decode(key, value)?),
                "targets" => c.targets.push(decode(key, value)?),
                "consumers" => c.consumers.push(decode(key, value)?),
                "plugins" => c.plugins.push(decode(key, value)?),
                "certificates" => c.certificates.push(decode(key, value)?),
                "snis" => c.snis.push(decode(key, value)?),
                "ca_certificates" => c.ca_certificates.push(decode(key, value)?),
                "keyauth_credentials" => c.keyauth_credentials.push(decode(key, value)?),
                "basicauth_credentials" => c.basicauth_credentials.push(decode(key, value)?),
                "acls" => c.acls.push(decode(key, value)?),
                "jwt_secrets" => c.jwt_secrets.push(decode(key, value)?),
                _ => return Err(corrupt_key("unknown entity", key)),
            }
        }
        Ok(Some((c, hash)))
    }

    /// The hash of the stored config (`declarative_config:hash`), if any.
    pub fn hash(&self) -> Result<Option<String>, StoreError> {
        let rtxn = self.env.read_txn()?;
        self.read_hash(&rtxn)
    }

    /// One entity by primary key, as stored JSON.
    pub fn select(&self, entity: &str, id: &Uuid) -> Result<Option<Value>, StoreError> {
        let rtxn = self.env.read_txn()?;
        let key = keys::item_key(entity, DEFAULT_WORKSPACE, id);
        self.db
            .get(&rtxn, &key)?
            .map(|v| decode(&key, v))
            .transpose()
    }

    /// One entity by a unique field (`services`/`name`, `keyauth_credentials`/`key`, …).
    pub fn select_by_unique(
        &self,
        entity: &str,
        field: &str,
        value: &str,
    ) -> Result<Option<Value>, StoreError> {
        let rtxn = self.env.read_txn()?;
        let pointer = keys::unique_key(entity, field, DEFAULT_WORKSPACE, value);
        match self.db.get(&rtxn, &pointer)? {
            Some(item_key) => self.follow(&rtxn, &pointer, item_key).map(Some),
            None => Ok(None),
        }
    }

    /// Up to `size` (at least 1) entities of one type, in key order, starting after the key
    /// `after` (the offset a previous call returned). The offset is `Some(last key)` while more
    /// remain; callers encode it (Kong: base64) for the Admin API.
    pub fn page(
        &self,
        entity: &str,
        after: Option<&[u8]>,
        size: usize,
    ) -> Result<(Vec<Value>, Option<Vec<u8>>), StoreError> {
        self.page_prefix(&keys::item_prefix(entity), after, size)
    }

    /// Like [`Store::page`], restricted to the entities whose foreign key `field` is `fk` (the
    /// routes of a service, the credentials of a consumer), via the `F|` pointers.
    pub fn page_by_foreign(
        &self,
        entity: &str,
        field: &str,
        fk: &Uuid,
        after: Option<&[u8]>,
        size: usize,
    ) -> Result<(Vec<Value>, Option<Vec<u8>>), StoreError> {
        self.page_prefix(format!("F|{entity}|{field}|{fk}|").as_bytes(), after, size)
    }

    fn page_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        size: usize,
    ) -> Result<(Vec<Value>, Option<Vec<u8>>), StoreError> {
        let size = size.max(1);
        let rtxn = self.env.read_txn()?;
        let start = match after {
            Some(a) if a > prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        let mut out = Vec::new();
        let mut last: Option<&[u8]> = None;
        for item in self.db.range(&rtxn, &(start, Bound::Unbounded))? {
            let (key, value) = item?;
            if !key.starts_with(prefix) {
                break;
            }
            if out.len() == size {
                return Ok((out, last.map(<[u8]>::to_vec)));
            }
            // `I|` records hold the entity, `F|` records point at one.
            let entity = if key.starts_with(b"I|") {
                decode(key, value)?
            } else {
                self.follow(&rtxn, key, value)?
            };
            out.push(entity);
            last = Some(key);
        }
        Ok((out, None))
    }

    /// Reads the item a `U|`/`F|` pointer names.
    fn follow(
        &self,
        rtxn: &RoTxn<WithoutTls>,
        pointer: &[u8],
        item_key: &[u8],
    ) -> Result<Value, StoreError> {
        let value = self
            .db
            .get(rtxn, item_key)?
            .ok_or_else(|| corrupt_key("dangling pointer", pointer))?;
        decode(item_key, value)
    }

    fn read_hash(&self, rtxn: &RoTxn<WithoutTls>) -> Result<Option<String>, StoreError> {
        match self.db.get(rtxn, HASH_KEY)? {
            None => Ok(None),
            Some(h) => String::from_utf8(h.to_vec())
                .map(Some)
                .map_err(|_| StoreError::Corrupt("declarative_config:hash is not UTF-8".into())),
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(value).map_err(|e| {
        StoreError::Corrupt(format!(
            "cannot decode {}: {e}",
            String::from_utf8_lossy(key)
        ))
    })
}

fn corrupt_key(what: &str, key: &[u8]) -> StoreError {
    StoreError::Corrupt(format!("{what}: {}", String::from_utf8_lossy(key)))
}

/// Stored keys and values, in key order (tests).
#[cfg(test)]
pub(crate) type RawPairs = Vec<(Vec<u8>, Vec<u8>)>;

#[cfg(test)]
impl Store {
    /// The stored bytes of one key.
    pub(crate) fn raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let rtxn = self.env.read_txn()?;
        Ok(self.db.get(&rtxn, key)?.map(<[u8]>::to_vec))
    }

    /// Every stored key and value, in key order.
    pub(crate) fn raw_pairs(&self) -> Result<RawPairs, StoreError> {
        let rtxn = self.env.read_txn()?;
        let mut out = Vec::new();
        for item in self.db.iter(&rtxn)? {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident bytes of this process's mapping of `dir/data.mdb` (/proc/self/smaps).
    fn map_rss_kib(dir: &Path) -> Option<u64> {
        let file = dir.join("data.mdb").canonicalize().ok()?;
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut lines = smaps.lines();
        lines.find(|l| l.ends_with(file.to_str().unwrap_or("?")))?;
        let rss = lines.find(|l| l.starts_with("Rss:"))?;
        rss.split_whitespace().nth(1)?.parse().ok()
    }

    /// Reloads leave no LMDB file pages mapped (they used to stay resident: the clear walks
    /// the old tree through the map).
    #[test]
    fn reloads_leave_no_file_pages_mapped() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Io(e.to_string()))?;
        let store = Store::open(dir.path(), 64 << 20)?;
        let consumers = (0..20_000u128)
            .map(|n| gatehouse_config::Consumer {
                id: Uuid::from_u128(n + 1),
                username: Some(format!("user-{n}")),
                custom_id: None,
                tags: vec!["a-tag".into()],
                created_at: 0,
                updated_at: 0,
            })
            .collect();
        let config = Config {
            consumers,
            ..Config::default()
        };
        for round in 0..3 {
            store.write_config(&config, &format!("h{round}"))?;
            // Read a page back, as the Admin API does, then check what stays mapped.
            assert!(store.select("consumers", &Uuid::from_u128(7))?.is_some());
            let rss = map_rss_kib(dir.path()).expect("data.mdb is mapped");
            assert!(rss < 1024, "round {round}: {rss} KiB of data.mdb resident");
        }
        Ok(())
    }

    #[test]
    fn version_tag_mismatch_wipes() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Io(e.to_string()))?;
        {
            let store = Store::open(dir.path(), 1 << 20)?;
            assert!(!store.was_wiped());
            store.write_config(&Config::default(), "h1")?;
            // Pretend an older Gatehouse wrote this store.
            let mut wtxn = store.env.write_txn()?;
            store.db.put(&mut wtxn, VERSION_KEY, b"0.0")?;
            wtxn.commit()?;
        }
        let store = Store::open(dir.path(), 1 << 20)?;
        assert!(store.was_wiped());
        assert_eq!(store.hash()?, None);
        assert_eq!(store.read_config()?, None);
        drop(store);
        // Same version: kept.
        let store = Store::open(dir.path(), 1 << 20)?;
        store.write_config(&Config::default(), "h2")?;
        drop(store);
        let store = Store::open(dir.path(), 1 << 20)?;
        assert!(!store.was_wiped());
        assert_eq!(store.hash()?.as_deref(), Some("h2"));
        Ok(())
    }
}
