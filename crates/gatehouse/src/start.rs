//! `gatehouse start` and `gatehouse config parse`.
//!
//! Start-up order: settings → LMDB → first snapshot (from `declarative_config`, else from
//! LMDB) → proxy threads → admin thread → wait for a signal → drain → exit.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use arc_swap::ArcSwap;
use gatehouse_admin::control::{self, LoadError};
use gatehouse_admin::{AdminServer, AdminState, Control, Listen};
use gatehouse_config::settings::ListenAddr;
use gatehouse_config::{hash_text, parse, ParseOptions, Settings};
use gatehouse_proxy::tls::Family;
use gatehouse_proxy::{Observability, Proxy, ProxyOptions, Snapshot};
use gatehouse_store::Store;

/// How long in-flight requests get to finish after SIGTERM/SIGINT.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn load_settings(conf: Option<&Path>) -> Result<Settings> {
    let text = match conf {
        Some(p) => Some(
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => None,
    };
    let settings = Settings::load(text.as_deref(), std::env::vars(), cores())?;
    Ok(settings)
}

fn parse_options(s: &Settings) -> ParseOptions {
    ParseOptions {
        plugins: s.plugins.clone(),
        router_flavor: s.router_flavor,
    }
}

/// Parses and compiles declarative `text` exactly as a load would (schema, plugins, router).
fn compile(text: &str, settings: &Settings) -> Result<Snapshot, LoadError> {
    let config = parse(text, &parse_options(settings)).map_err(LoadError::Invalid)?;
    control::build(config, hash_text(text), settings.router_flavor, None)
}

/// [`compile`] of a file, with the settings of `conf`.
fn compile_file(file: &Path, conf: Option<&Path>) -> Result<Snapshot> {
    let settings = load_settings(conf)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    compile(&text, &settings).map_err(|e| anyhow!("Failed parsing:\n{}", load_error_report(&e)))
}

/// Prints a command's output, or its error, and turns it into the exit code.
fn finish(result: Result<String>) -> ExitCode {
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn explain(
    file: &Path,
    method: &str,
    url: &str,
    headers: &[String],
    conf: Option<PathBuf>,
    json: bool,
) -> ExitCode {
    let run = || -> Result<String> {
        let snap = compile_file(file, conf.as_deref())?;
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|h| match h.split_once(':') {
                Some((k, v)) => Ok((k.trim().to_string(), v.trim().to_string())),
                None => Err(anyhow!("header '{h}' must be 'name: value'")),
            })
            .collect::<Result<_>>()?;
        let v = gatehouse_admin::explain::explain(&snap, method, url, &headers)
            .map_err(|e| anyhow!(e))?;
        Ok(if json {
            serde_json::to_string_pretty(&v)?
        } else {
            gatehouse_admin::explain::to_text(&v)
        })
    };
    finish(run())
}

pub fn config_parse(file: &Path, conf: Option<PathBuf>) -> ExitCode {
    finish(compile_file(file, conf.as_deref()).map(|_| "parse successful".to_string()))
}

pub fn run(conf: Option<PathBuf>, prefix: Option<PathBuf>) -> ExitCode {
    match start(conf, prefix) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(level: &str) {
    // Kong's levels mapped onto tracing's.
    let level = match level {
        "debug" => "debug",
        "info" => "info",
        "notice" | "warn" => "info",
        "error" | "crit" | "alert" | "emerg" => "error",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
}

fn start(conf: Option<PathBuf>, prefix: Option<PathBuf>) -> Result<()> {
    let mut settings = load_settings(conf.as_deref())?;
    if let Some(p) = prefix {
        settings.prefix = p;
    }
    init_tracing(&settings.log_level);
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }

    let node_id = uuid_v4();
    std::fs::create_dir_all(&settings.prefix)
        .with_context(|| format!("cannot create prefix {}", settings.prefix.display()))?;
    let store =
        Store::open(&settings.lmdb_path(), settings.lmdb_map_size).context("cannot open LMDB")?;

    let metrics =
        gatehouse_proxy::metrics::Registry::new(gatehouse_proxy::metrics::RegistryOptions {
            shards: settings.worker_processes.max(1),
            node_id: node_id.clone(),
            version: gatehouse_proxy::VERSION.to_string(),
            subsystem: "http".into(),
        });
    metrics.process().set_lmdb_map_size(settings.lmdb_map_size);
    let hub = Observability::new(
        metrics,
        Some(settings.lmdb_path().join("data.mdb")),
        settings.proxy_access_log_path(),
    );
    let snapshot = first_snapshot(&settings, &store)?.observed(hub.clone());
    tracing::info!(routes = snapshot.route_count(), hash = %snapshot.hash, "configuration loaded");
    let cell = Arc::new(ArcSwap::from_pointee(snapshot));

    let proxy = Proxy::start(ProxyOptions::from_settings(&settings), cell.clone())
        .context("cannot start the proxy")?;
    let admin_listen = admin_listeners(&settings, &settings.admin_listen, Family::Admin)?;
    let status_listen = admin_listeners(&settings, &settings.status_listen, Family::Status)?;
    let admin = AdminServer::start_listeners(
        &admin_listen,
        &status_listen,
        AdminState {
            control: Arc::new(
                Control::new(cell, store, parse_options(&settings))
                    .releasing_memory_with(crate::release_freed_memory),
            ),
            admin_latency_header: settings.headers.admin_latency,
            node_id,
            hostname: hostname(),
            configuration: serde_json::json!({
                "database": settings.database,
                "router_flavor": format!("{:?}", settings.router_flavor),
                "prefix": settings.prefix,
                "nginx_worker_processes": settings.worker_processes,
            }),
            proxy_connections: proxy.connections(),
        },
    )
    .context("cannot start the admin listeners")?;
    tracing::info!(proxy = ?proxy.local_addrs(), admin = ?admin.admin_addrs, status = ?admin.status_addrs, "gatehouse started");

    wait_for_signal(&hub)?;
    tracing::info!("shutting down: draining in-flight requests");
    proxy.shutdown(DRAIN_GRACE);
    admin.shutdown();
    Ok(())
}

/// The Admin or Status listeners, with a TLS acceptor for each `ssl` entry (one per family,
/// built only when some entry asks for it).
fn admin_listeners(
    settings: &Settings,
    listen: &[ListenAddr],
    family: Family,
) -> Result<Vec<Listen>> {
    let acceptor = if listen.iter().any(|l| l.ssl) {
        Some(
            gatehouse_proxy::tls::family_acceptor(&settings.ssl, family, &settings.prefix)
                .with_context(|| format!("cannot set up TLS for {family:?} listeners"))?,
        )
    } else {
        None
    };
    Ok(listen
        .iter()
        .map(|l| Listen {
            addr: l.addr,
            tls: if l.ssl { acceptor.clone() } else { None },
        })
        .collect())
}

/// `declarative_config_string`, else `declarative_config` (either is persisted); otherwise
/// whatever LMDB holds; otherwise the empty config.
fn first_snapshot(settings: &Settings, store: &Store) -> Result<Snapshot> {
    let given = match (
        &settings.declarative_config_string,
        &settings.declarative_config,
    ) {
        (Some(text), _) => Some(("declarative_config_string".to_string(), text.clone())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read declarative_config {}", path.display()))?;
            Some((path.display().to_string(), text))
        }
        (None, None) => None,
    };
    if let Some((source, text)) = given {
        let snapshot = compile(&text, settings).map_err(|e| {
            anyhow!(
                "invalid declarative config {source}:\n{}",
                load_error_report(&e)
            )
        })?;
        store
            .write_config(&snapshot.config, &snapshot.hash)
            .context("cannot persist the configuration in LMDB")?;
        return Ok(snapshot);
    }
    match store
        .read_config()
        .context("cannot read the configuration from LMDB")?
    {
        Some((config, hash)) => {
            tracing::info!("found persisted LMDB config");
            control::build(config, hash, settings.router_flavor, None).map_err(|e| {
                anyhow!(
                    "the configuration persisted in LMDB no longer loads:\n{}",
                    load_error_report(&e)
                )
            })
        }
        None => Ok(Snapshot::empty()),
    }
}

fn load_error_report(e: &LoadError) -> String {
    match e {
        LoadError::Invalid(c) => c.cli_report(),
        other => other.to_string(),
    }
}

/// Waits for SIGTERM/SIGINT; SIGUSR1 (log rotation, as nginx's reopen) makes file-log
/// plugins reopen their files.
fn wait_for_signal(hub: &Observability) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = signal(SignalKind::terminate())?;
        let mut usr1 = signal(SignalKind::user_defined1())?;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                r = tokio::signal::ctrl_c() => { r?; break }
                _ = usr1.recv() => {
                    tracing::info!("SIGUSR1: reopening log files");
                    hub.reopen_log_files();
                }
            }
        }
        Ok::<_, std::io::Error>(())
    })?;
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}
