//! LMDB persistence of the declarative config, laid out like Kong's DB-less store
//! (`<prefix>/dbless.lmdb`, `I|`/`U|`/`F|` keys, see [`keys`]).
//!
//! Why LMDB at all when the proxy serves from an in-memory snapshot: a restarted node (or one
//! whose control plane is away) comes back with the last config it accepted, and the Admin API
//! can page through entities without holding a second copy. The hot path never reads LMDB.
//!
//! Rules (kong.md §8, rust-foundations.md §7): one [`Store`] (one LMDB env) per process, opened
//! before the runtimes start and shared by cloning; read transactions without TLS so they may
//! live on any tokio thread; a whole config is written in one write transaction, so readers see
//! the old config or the new one, never a mix, and a failed load (e.g. [`StoreError::MapFull`])
//! leaves the old one intact. Calls block: run writes on a blocking thread.
#![deny(unsafe_code)]

pub mod keys;
mod store;
mod write;

pub use store::Store;

/// Errors of the store. `MapFull`'s text is Kong's, so tooling that greps for it keeps working.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open LMDB environment at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error(
        "Configuration does not fit in LMDB database, consider raising the \"lmdb_map_size\" \
         config for Kong"
    )]
    MapFull,
    #[error("LMDB error: {0}")]
    Lmdb(String),
    #[error("I/O error: {0}")]
    Io(String),
    #[error("corrupt LMDB store: {0}")]
    Corrupt(String),
}

impl From<heed::Error> for StoreError {
    fn from(e: heed::Error) -> StoreError {
        match e {
            heed::Error::Mdb(heed::MdbError::MapFull) => StoreError::MapFull,
            heed::Error::Io(e) => StoreError::Io(e.to_string()),
            other => StoreError::Lmdb(other.to_string()),
        }
    }
}
