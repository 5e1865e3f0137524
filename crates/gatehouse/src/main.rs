//! `gatehouse`: the command line. Wires settings, store, snapshot, proxy and admin together.
// `deny`, not `forbid`: one documented FFI call below (`release_freed_memory`).
#![deny(unsafe_code)]

mod start;

/// mimalloc instead of glibc malloc: measured in `bench/RESULTS.md` (proxy instructions per
/// request, `POST /config` latency and RSS); glibc's free-list consolidation dominated config
/// loads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns the pages a config load freed to the OS (`mi_collect(true)`: this thread's heap,
/// then a forced purge of every free arena range). mimalloc otherwise holds freed pages for
/// its purge delay, and only purges them when it next allocates: after a load and the free of
/// the replaced snapshot nothing allocates much, so each load's garbage stayed resident and
/// added to the next load's peak. Measured need (`bench/config-load.py --rounds 6`, Kong's
/// 10k LMDB-benchmark config): RSS after a load ~285 → ~155 MiB, VmHWM 305 → 267 MiB
/// (with the plugin chains carried over), at ~4k more page faults per load. Called only by
/// the control side (before a load, after validation, after freeing a replaced snapshot),
/// never on a proxy thread.
#[allow(unsafe_code)]
fn release_freed_memory() {
    // SAFETY: mi_collect takes no pointers and may be called from any thread at any time;
    // it only frees memory mimalloc itself considers free.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "gatehouse", version, about = "A Kong-compatible API gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the gateway in the foreground (SIGTERM/SIGINT drain in-flight requests, then exit).
    Start {
        /// A kong.conf-style settings file.
        #[arg(short = 'c', long = "conf")]
        conf: Option<PathBuf>,
        /// Prefix directory (LMDB data, default certificate); overrides `prefix`.
        #[arg(short = 'p', long = "prefix")]
        prefix: Option<PathBuf>,
    },
    /// Show which route a request would take in a declarative config, why, and what would be
    /// sent upstream (e.g. `gatehouse explain kong.yml GET http://host/path -H "x: y"`).
    Explain {
        file: PathBuf,
        method: String,
        url: String,
        /// A request header, `name: value` (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// A kong.conf-style settings file (for `plugins` and `router_flavor`).
        #[arg(short = 'c', long = "conf")]
        conf: Option<PathBuf>,
        /// Print JSON (the same document as the Admin API's `/debug/explain`).
        #[arg(long)]
        json: bool,
    },
    /// Declarative configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Parse and validate a declarative configuration file (like `kong config parse`).
    Parse {
        file: PathBuf,
        /// A kong.conf-style settings file (for `plugins` and `router_flavor`).
        #[arg(short = 'c', long = "conf")]
        conf: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Start { conf, prefix } => start::run(conf, prefix),
        Command::Explain {
            file,
            method,
            url,
            headers,
            conf,
            json,
        } => start::explain(&file, &method, &url, &headers, conf, json),
        Command::Config {
            command: ConfigCommand::Parse { file, conf },
        } => start::config_parse(&file, conf),
    }
}
