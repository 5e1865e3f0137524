//! Config loads: the one place a new configuration becomes the running one.
//!
//! parse + validate → build the snapshot ∥ write LMDB in one transaction (its records also
//! make the `POST /config` answer) → commit once the build succeeded → swap it in.
//! All of it runs on a blocking thread (never a proxy thread, never the admin event loop), one
//! load at a time; a load that fails at any step changes nothing: the old snapshot keeps
//! serving and stays in LMDB.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse_config::error::{ErrKey, ErrTree};
use gatehouse_config::{
    doc, hash_text, parse, parse_doc, Config, ConfigError, ParseOptions, RouterFlavor,
};
use gatehouse_plugins::{PluginError, Seg};
use gatehouse_proxy::tls::TlsError;
use gatehouse_proxy::{BuildError, Built, Snapshot, SnapshotCell};
use gatehouse_router::RouterError;
use gatehouse_store::{Store, StoreError};

use crate::render;

/// Why a load was refused. Each maps to one Kong status code in the `/config` handler.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Another load holds the lock (Kong: 429 "Currently loading previous configuration").
    #[error("Currently loading previous configuration")]
    Busy,
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("persisting the configuration failed")]
    Persist,
}

/// What a successful load produced.
pub struct Loaded {
    pub snapshot: Arc<Snapshot>,
    pub parse_time: Duration,
    /// Router, plugin chains and balancers (reused parts excluded).
    pub build_time: Duration,
    /// LMDB write (it runs alongside the build, produces the answer's entity JSON, and commits
    /// once the build succeeded): from the end of parsing to the commit.
    pub write_time: Duration,
    pub total_time: Duration,
}

/// The input of a load: raw text (hashed as Kong does) or an already-decoded document (which
/// may borrow the request body) with its hash.
pub enum Source<'a> {
    Text(String),
    Doc(doc::Value<'a>, String),
}

pub struct Control {
    cell: SnapshotCell,
    store: Store,
    options: ParseOptions,
    flavor: RouterFlavor,
    lock: Mutex<()>,
    /// Hands memory freed by loads back to the OS (see [`Control::releasing_memory_with`]).
    release: fn(),
}

impl Control {
    pub fn new(cell: SnapshotCell, store: Store, options: ParseOptions) -> Control {
        let flavor = options.router_flavor;
        Control {
            cell,
            store,
            options,
            flavor,
            lock: Mutex::new(()),
            release: || {},
        }
    }

    /// Calls `release` where a load's garbage has just been freed: before each load on the
    /// loading thread (the previous load's pages, freed meanwhile by other threads, are this
    /// thread's to collect), once the decoded document is validated and dropped, and on the
    /// side thread once the replaced snapshot is dropped.
    /// The binary passes its allocator's collection: the allocator otherwise keeps a load's
    /// freed pages resident, and they count in the next load's peak.
    pub fn releasing_memory_with(mut self, release: fn()) -> Control {
        self.release = release;
        self
    }

    pub fn cell(&self) -> &SnapshotCell {
        &self.cell
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn options(&self) -> &ParseOptions {
        &self.options
    }

    /// Validates without loading (`POST /schemas/.../validate`, `config parse`).
    pub fn validate(&self, text: &str) -> Result<Config, ConfigError> {
        parse(text, &self.options)
    }

    /// Loads a configuration. Blocking: call it from a blocking thread.
    pub fn load(&self, source: Source<'_>) -> Result<Loaded, LoadError> {
        self.load_inner(source, None)
    }

    /// [`Control::load`], also producing the `POST /config` answer (Kong's flattened entity
    /// map) from the records as they are written to LMDB.
    pub fn load_answering(&self, source: Source<'_>) -> Result<(Loaded, Vec<u8>), LoadError> {
        let mut body = render::Flattened::default();
        let loaded = self.load_inner(source, Some(&mut body))?;
        Ok((loaded, body.finish()))
    }

    fn load_inner(
        &self,
        source: Source<'_>,
        body: Option<&mut render::Flattened>,
    ) -> Result<Loaded, LoadError> {
        let _guard = self.lock.try_lock().map_err(|_| LoadError::Busy)?;
        let started = Instant::now();
        let result = self.load_locked(source, body, started);
        // gatehouse_config_reloads_total / _duration_seconds (a refused load counts too).
        if let Some(hub) = self.cell.load().observability() {
            hub.metrics()
                .process()
                .config_reload(result.is_ok(), started.elapsed());
        }
        result
    }

    fn load_locked(
        &self,
        source: Source<'_>,
        body: Option<&mut render::Flattened>,
        started: Instant,
    ) -> Result<Loaded, LoadError> {
        (self.release)();
        // The decoded document is freed as soon as it is validated: nothing downstream reads
        // it, and it must not add to the peak while the snapshot is built.
        let (config, hash) = match source {
            Source::Text(text) => {
                let hash = hash_text(&text);
                (parse(&text, &self.options)?, hash)
            }
            Source::Doc(mut doc, hash) => {
                let config = parse_doc(&mut doc, &self.options);
                drop(doc);
                (config?, hash)
            }
        };
        // The document and validation's temporaries were this thread's; the build and the
        // LMDB writer's threads could not reuse their pages.
        (self.release)();
        let parse_time = started.elapsed();
        // Build and persist at once, both from the borrowed config (the answer is assembled
        // from the records LMDB stores). LMDB commits only once the build succeeded: a config
        // the data plane cannot serve must not reach LMDB, and an aborted transaction leaves
        // the stored one as it was.
        let previous = self.cell.load_full();
        let (cfg, key) = (&config, hash.as_str());
        let (built, build_time, written) = std::thread::scope(|s| {
            let (verdict, decision) = std::sync::mpsc::channel::<bool>();
            let writing = s.spawn(move || {
                let commit = move || decision.recv().unwrap_or(false);
                match body {
                    Some(b) => {
                        let mut record = |e, id, json: &[u8]| b.record(e, id, json);
                        self.store.write_config_with(cfg, key, &mut record, commit)
                    }
                    None => self.store.write_config_if(cfg, key, commit),
                }
            });
            let built = Built::new(cfg, self.flavor, Some(&previous));
            let build_time = started.elapsed() - parse_time;
            let _ = verdict.send(built.is_ok());
            (built, build_time, writing.join())
        });
        drop(previous);
        let built = match built {
            Ok(b) => b,
            Err(e) => return Err(build_error(e, &config, self.flavor)),
        };
        match written {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) | Err(_) => return Err(LoadError::Persist),
            Ok(Err(e)) => return Err(e.into()),
        }
        let write_time = started.elapsed() - parse_time;
        let snapshot = Arc::new(built.into_snapshot(config, hash));
        let replaced = self.cell.swap(snapshot.clone());
        // Freeing a 50k-entity snapshot takes tens of milliseconds: not on the answer's
        // path. Requests still holding the old snapshot free it when they end.
        let release = self.release;
        let _ = std::thread::Builder::new()
            .name("gatehouse-free".into())
            .spawn(move || {
                drop(replaced);
                release();
            });
        Ok(Loaded {
            snapshot,
            parse_time,
            build_time,
            write_time,
            total_time: started.elapsed(),
        })
    }
}

/// Builds a snapshot; plugin schema violations come back as a declarative-config error in
/// Kong's shape (entity `plugins`, field `config.…`), like every other validation error.
pub fn build(
    config: Config,
    hash: String,
    flavor: RouterFlavor,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, LoadError> {
    Snapshot::try_build_from(config, hash, flavor, previous)
        .map_err(|(error, config)| build_error(error, &config, flavor))
}

/// A build failure described against the config, in Kong's shape where Kong has one.
fn build_error(error: BuildError, config: &Config, flavor: RouterFlavor) -> LoadError {
    match error {
        BuildError::Plugins(e) => {
            let input = error_input(config, &["plugins"]);
            LoadError::Invalid(plugin_config_error(&e, &input))
        }
        // Only the expressions flavor can fail in the router after validation (expressions
        // are compiled there).
        BuildError::Router(RouterError::Expression {
            route,
            field,
            error,
        }) if flavor == RouterFlavor::Expressions => {
            let input = error_input(config, &["routes"]);
            LoadError::Invalid(route_config_error(
                &input,
                &route,
                field,
                &error.to_string(),
            ))
        }
        BuildError::Tls(errors) => {
            // Certificate problems are reported against the entities as Kong renders them.
            let input = error_input(config, &["certificates", "ca_certificates", "services"]);
            LoadError::Invalid(tls_config_error(&errors, &input))
        }
        e => LoadError::Build(e),
    }
}

/// Certificate / CA certificate / service TLS errors in Kong's shape:
/// `certificates → <index> → cert: "invalid certificate: …"` or the entity-level list.
fn tls_config_error(errors: &[TlsError], input: &serde_json::Value) -> ConfigError {
    let mut tree = ErrTree::default();
    for e in errors {
        let node = tree
            .child(ErrKey::name(e.entity))
            .child(ErrKey::Idx(e.index + 1));
        match e.field {
            Some(f) => node.set(ErrKey::name(f), e.message.clone()),
            None => node.push_entity(e.message.clone()),
        }
    }
    ConfigError::from_tree(&tree, input)
}

/// The entity lists an error is described against, as Kong renders them (only built once a
/// build has failed).
fn error_input(config: &Config, kinds: &[&str]) -> serde_json::Value {
    kinds
        .iter()
        .map(|kind| (kind.to_string(), render::kind_list(config, kind).into()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// A router compile error in Kong's shape: `routes → <index> → expression: "<message>"`.
fn route_config_error(
    input: &serde_json::Value,
    route: &str,
    field: &str,
    message: &str,
) -> ConfigError {
    let index = input["routes"]
        .as_array()
        .and_then(|rs| {
            rs.iter()
                .position(|r| r["name"] == route || r["id"] == route)
        })
        .unwrap_or(0);
    let mut tree = ErrTree::default();
    tree.child(ErrKey::name("routes"))
        .child(ErrKey::Idx(index + 1))
        .set(ErrKey::name(field), message.to_string());
    ConfigError::from_tree(&tree, input)
}

fn plugin_config_error(e: &PluginError, input: &serde_json::Value) -> ConfigError {
    let key = |seg: &Seg| match seg {
        Seg::Key(k) => ErrKey::name(k),
        Seg::Index(i) => ErrKey::Idx(i + 1),
    };
    let mut tree = ErrTree::default();
    for fe in &e.errors {
        let mut node = tree
            .child(ErrKey::name("plugins"))
            .child(ErrKey::Idx(fe.plugin_index + 1));
        let Some((last, init)) = fe.path.split_last() else {
            continue;
        };
        for seg in init {
            node = node.child(key(seg));
        }
        match last {
            Seg::Key(k) if k == "@entity" => node.push_entity(fe.message.clone()),
            seg => node.set(key(seg), fe.message.clone()),
        }
    }
    ConfigError::from_tree(&tree, input)
}
