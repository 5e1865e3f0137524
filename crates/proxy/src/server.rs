//! Proxy threads: one std thread per core, each with its own tokio `current_thread` runtime,
//! its own `SO_REUSEPORT` listener per address, its own upstream pool. Nothing on the request
//! path is shared between threads except the published snapshot (one atomic load per request).
//!
//! Shutdown: stop accepting, ask every connection to finish its in-flight request
//! (hyper's graceful shutdown), wait for them up to a grace period, then exit.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::header::{HeaderName, HeaderValue};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;

use gatehouse_config::settings::{Cidr, HeaderTokens, ListenAddr, Settings};
use gatehouse_router::MatchCache;

use crate::conn::{accept_loop, ListenKind, SnapshotCerts};
use crate::pool::Pool;
use crate::snapshot::SnapshotCell;
use crate::tls::{self, CertStore, ServerTls};

/// Size of the chunks [`Worker::bytes`] carves values from (a request uses ~100 bytes).
const ARENA_CHUNK: usize = 16 * 1024;

/// What the proxy threads need from the settings.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    pub listen: Vec<ListenAddr>,
    pub threads: usize,
    pub trusted_ips: Vec<Cidr>,
    pub real_ip_header: String,
    pub allow_debug_header: bool,
    pub headers: HeaderTokens,
    /// Send `X-Kong-Request-Id` upstream (`headers_upstream`).
    pub upstream_request_id: bool,
    /// Where the default TLS certificate lives (`<prefix>/ssl/kong-default.{crt,key}`);
    /// created at the first start with an `ssl` listener.
    pub prefix: std::path::PathBuf,
    /// A TLS handshake that has not finished after this long is dropped (nginx's
    /// `client_header_timeout`, 60 s, covers the handshake too).
    pub handshake_timeout: Duration,
    /// `ssl_*` settings: default certificates, protocols, ciphers, resumption.
    pub ssl: gatehouse_config::settings::SslSettings,
}

impl ProxyOptions {
    pub fn from_settings(s: &Settings) -> ProxyOptions {
        ProxyOptions {
            listen: s.proxy_listen.clone(),
            threads: s.worker_processes,
            trusted_ips: s.trusted_ips.clone(),
            real_ip_header: s.real_ip_header.clone(),
            allow_debug_header: s.allow_debug_header,
            headers: s.headers,
            upstream_request_id: s.upstream_request_id,
            prefix: s.prefix.clone(),
            handshake_timeout: Duration::from_secs(60),
            ssl: s.ssl.clone(),
        }
    }
}

pub(crate) struct WorkerOptions {
    pub trusted_ips: Vec<Cidr>,
    pub real_ip_header: HeaderName,
    pub allow_debug_header: bool,
    pub headers: HeaderTokens,
    pub upstream_request_id: bool,
    pub handshake_timeout: Duration,
}

/// Per-thread state shared by the connections of one proxy thread.
pub(crate) struct Worker {
    pub cell: SnapshotCell,
    pub opts: Arc<WorkerOptions>,
    pub pool: Rc<Pool>,
    /// Reused buffer for the normalised path.
    pub path_buf: RefCell<String>,
    /// Reused buffer for the upstream path and query.
    pub uri_buf: RefCell<String>,
    /// Request-lived bytes that must be owned (`Bytes`: header values, the upstream URI):
    /// carved out of one shared chunk instead of an allocation each. See [`Worker::bytes`].
    arena: RefCell<bytes::BytesMut>,
    /// This thread's router match cache (flushes itself when the router changes).
    pub match_cache: RefCell<MatchCache>,
    /// This thread's metrics shard (and later log buffers): see `observe.rs`.
    pub obs: crate::observe::WorkerObs,
    rng: Cell<u64>,
    connections: Cell<u64>,
    index: usize,
}

impl Worker {
    pub fn next_connection_serial(&self) -> u64 {
        let n = self.connections.get() + 1;
        self.connections.set(n);
        ((self.index as u64) << 48) | n
    }

    /// A 32-hex-digit request id, like Kong's `X-Kong-Request-Id`.
    pub fn next_request_id(&self) -> HeaderValue {
        // xorshift64*: ids need to be unique-ish, not unpredictable.
        let mut x = self.rng.get();
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(16) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
            for (i, b) in chunk.iter_mut().enumerate() {
                *b = b"0123456789abcdef"[((v >> (i * 4)) & 0xf) as usize];
            }
        }
        self.rng.set(x);
        HeaderValue::from_maybe_shared(self.bytes(&out)).unwrap_or(HeaderValue::from_static(""))
    }

    /// `data` as `Bytes` carved from this thread's arena: one allocation per
    /// [`ARENA_CHUNK`] instead of one per value. A chunk is freed when the last value cut
    /// from it is dropped, so a long-lived value keeps at most one chunk alive.
    pub fn bytes(&self, data: &[u8]) -> bytes::Bytes {
        let mut arena = self.arena.borrow_mut();
        if arena.capacity() < data.len() {
            *arena = bytes::BytesMut::with_capacity(ARENA_CHUNK.max(data.len()));
        }
        arena.extend_from_slice(data);
        arena.split().freeze()
    }
}

/// The running proxy threads.
pub struct Proxy {
    threads: Vec<JoinHandle<()>>,
    shutdown: watch::Sender<Option<Duration>>,
    addrs: Vec<SocketAddr>,
    active: Arc<AtomicUsize>,
}

fn bind(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?; // one listener per thread; the kernel spreads accepts
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(backlog)?;
    Ok(s.into())
}

impl Proxy {
    /// Binds every listener on the calling thread (so errors surface before anything runs),
    /// then starts the proxy threads.
    pub fn start(opts: ProxyOptions, cell: SnapshotCell) -> io::Result<Proxy> {
        let threads = opts.threads.max(1);
        let mut per_thread: Vec<Vec<(std::net::TcpListener, ListenKind)>> =
            (0..threads).map(|_| Vec::new()).collect();
        let mut addrs = Vec::new();
        let mut tls_configs: [Option<ServerTls>; 2] = [None, None];
        for l in &opts.listen {
            let kind = if l.ssl {
                let slot = &mut tls_configs[usize::from(l.http2)];
                let server = match slot {
                    Some(s) => s.clone(),
                    None => {
                        let s = server_tls(&opts, &cell, l.http2)?;
                        *slot = Some(s.clone());
                        s
                    }
                };
                ListenKind::Tls {
                    acceptor: server.acceptor(),
                    proxy_protocol: l.proxy_protocol,
                }
            } else {
                ListenKind::Plain {
                    h2c: l.http2,
                    proxy_protocol: l.proxy_protocol,
                }
            };
            let backlog = l.backlog.map_or(16384, |b| b.min(i32::MAX as u32) as i32);
            // Port 0: the first bind picks the port; the other threads join it.
            let first = bind(l.addr, backlog)
                .map_err(|e| io::Error::new(e.kind(), format!("bind {}: {e}", l.addr)))?;
            let actual = first.local_addr()?;
            addrs.push(actual);
            per_thread[0].push((first, kind.clone()));
            for slot in per_thread.iter_mut().skip(1) {
                slot.push((bind(actual, backlog)?, kind.clone()));
            }
        }

        let wopts = Arc::new(WorkerOptions {
            trusted_ips: opts.trusted_ips.clone(),
            real_ip_header: HeaderName::from_bytes(
                opts.real_ip_header.to_ascii_lowercase().as_bytes(),
            )
            .unwrap_or(HeaderName::from_static("x-real-ip")),
            allow_debug_header: opts.allow_debug_header,
            headers: opts.headers,
            upstream_request_id: opts.upstream_request_id,
            handshake_timeout: opts.handshake_timeout,
        });
        let (shutdown, shutdown_rx) = watch::channel(None);
        let active = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::with_capacity(threads);
        for (i, listeners) in per_thread.into_iter().enumerate() {
            let (cell, wopts, rx, active) = (
                cell.clone(),
                wopts.clone(),
                shutdown_rx.clone(),
                active.clone(),
            );
            let handle = std::thread::Builder::new()
                .name(format!("gatehouse-proxy-{i}"))
                .spawn(move || run_thread(i, listeners, cell, wopts, rx, active))?;
            handles.push(handle);
        }
        Ok(Proxy {
            threads: handles,
            shutdown,
            addrs,
            active,
        })
    }

    /// Actual bound addresses, in `listen` order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Connections currently open on all proxy threads (a shared counter, for status APIs).
    pub fn connections(&self) -> Arc<AtomicUsize> {
        self.active.clone()
    }

    /// Stops accepting, lets in-flight requests finish (up to `grace`), joins the threads.
    pub fn shutdown(self, grace: Duration) {
        let _ = self.shutdown.send(Some(grace));
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn run_thread(
    index: usize,
    listeners: Vec<(std::net::TcpListener, ListenKind)>,
    cell: SnapshotCell,
    opts: Arc<WorkerOptions>,
    mut shutdown: watch::Receiver<Option<Duration>>,
    active: Arc<AtomicUsize>,
) {
    // A LocalRuntime (our futures are !Send): one run queue, no LocalSet on top.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build_local(tokio::runtime::LocalOptions::default())
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "proxy thread {index}: cannot start runtime");
            return;
        }
    };
    rt.block_on(async move {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let worker = Rc::new(Worker {
            match_cache: RefCell::new(cell.load().router.new_cache()),
            obs: crate::observe::WorkerObs::new(index, &cell),
            cell,
            opts,
            pool: Rc::new(Pool::default()),
            path_buf: RefCell::new(String::with_capacity(256)),
            uri_buf: RefCell::new(String::with_capacity(256)),
            arena: RefCell::new(bytes::BytesMut::new()),
            rng: Cell::new(seed ^ ((index as u64 + 1) << 48) | 1),
            connections: Cell::new(0),
            index,
        });
        tokio::task::spawn_local(crate::timer::run_ticker());
        tokio::task::spawn_local(crate::pool::sweep_every(
            worker.pool.clone(),
            std::time::Duration::from_secs(2),
        ));
        let mut accept_tasks = Vec::new();
        for (listener, kind) in listeners {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "proxy thread {index}: listener");
                    continue;
                }
            };
            let (worker, rx, active) = (worker.clone(), shutdown.clone(), active.clone());
            accept_tasks.push(tokio::task::spawn_local(accept_loop(
                listener, kind, worker, rx, active,
            )));
        }
        let grace = loop {
            if let Some(grace) = *shutdown.borrow_and_update() {
                break grace;
            }
            if shutdown.changed().await.is_err() {
                break Duration::from_secs(10);
            }
        };
        for t in &accept_tasks {
            t.abort();
        }
        // Connections saw the same signal and are finishing their current request.
        let deadline = Instant::now() + grace;
        while active.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}

/// The shared TLS configuration of the `ssl` listeners (ALPN offers h2 only where the listener
/// has `http2`): certificates from the current snapshot, then `ssl_cert` or the default
/// certificate from the prefix; protocols, ciphers and resumption from the `ssl_*` settings.
fn server_tls(opts: &ProxyOptions, cell: &SnapshotCell, http2: bool) -> io::Result<ServerTls> {
    let defaults = tls::default_keys(&opts.ssl, tls::Family::Proxy, &opts.prefix)
        .map_err(|e| io::Error::new(e.kind(), format!("default TLS certificate: {e}")))?;
    let default = CertStore::only_defaults(&defaults)
        .ok_or_else(|| io::Error::other("no default TLS certificate"))?;
    let resolver = Arc::new(SnapshotCerts {
        cell: cell.clone(),
        default,
    });
    let (mut options, warnings) = tls::server_options(&opts.ssl)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    if !http2 {
        options.alpn = vec![b"http/1.1".to_vec()];
    }
    ServerTls::with_resolver(resolver, &options).map_err(|e| io::Error::other(e.to_string()))
}
