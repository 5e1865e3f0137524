//! Accepting and serving downstream connections: plain HTTP/1.1 (the fast path, unchanged by
//! TLS or HTTP/2 support), h2c with prior knowledge on listeners marked `http2` (told apart from
//! HTTP/1.1 by peeking at the connection preface), and TLS with ALPN choosing h2 or HTTP/1.1.
//!
//! Listeners marked `proxy_protocol` read a PROXY protocol header first (`proxy_protocol.rs`).
//!
//! A client that sends garbage or stalls costs one socket: the TLS handshake runs under a
//! timeout, h2 protocol errors end that connection only (hyper answers with GOAWAY), and each
//! failure is logged once.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::forwarded::Peer;
use crate::pool::LocalExec;
use crate::proxy_protocol;
use crate::request;
use crate::server::Worker;
use crate::snapshot::SnapshotCell;
use crate::tls::{self, CertStore, TlsAcceptor};

/// nginx's `http2_max_concurrent_streams` default.
const H2_MAX_CONCURRENT_STREAMS: u32 = 128;
/// Upper bound on a request's decoded header list (nginx: 4 × 8k header buffers, doubled).
const H2_MAX_HEADER_LIST: u32 = 64 * 1024;
/// Streams a client may open and reset before we accept them (CVE-2023-44487 "rapid reset"):
/// past this, hyper closes the connection with ENHANCE_YOUR_CALM.
const H2_MAX_PENDING_RESETS: usize = 20;
/// Streams we may reset because of the client's protocol errors before closing the connection
/// (CVE-2024-27316-style floods of bad frames).
const H2_MAX_LOCAL_ERROR_RESETS: usize = 256;

/// What a listener speaks; `proxy_protocol`: a PROXY protocol header comes first.
#[derive(Clone)]
pub(crate) enum ListenKind {
    Plain {
        h2c: bool,
        proxy_protocol: bool,
    },
    Tls {
        acceptor: TlsAcceptor,
        proxy_protocol: bool,
    },
}

/// The certificate resolver of the TLS listeners: the current snapshot's SNI certificates, then
/// the default certificate. Reading the snapshot cell at each handshake is what makes
/// certificates swap with the config, without a restart and without touching the listeners.
pub(crate) struct SnapshotCerts {
    pub cell: SnapshotCell,
    pub default: CertStore,
}

impl std::fmt::Debug for SnapshotCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotCerts")
    }
}

impl ResolvesServerCert for SnapshotCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.cell.load().certs.resolve_or(&hello, &self.default)
    }
}

pub(crate) async fn accept_loop(
    listener: tokio::net::TcpListener,
    kind: ListenKind,
    worker: Rc<Worker>,
    shutdown: watch::Receiver<Option<Duration>>,
    active: Arc<AtomicUsize>,
) {
    let local_addr = listener.local_addr().ok();
    loop {
        let (stream, peer_addr) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // e.g. EMFILE: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok().or(local_addr).unwrap_or(peer_addr);
        let serial = worker.next_connection_serial();
        let https = matches!(kind, ListenKind::Tls { .. });
        let peer = Peer::new(serial, peer_addr, local, https, &worker.opts.trusted_ips);
        let (worker, shutdown, kind) = (worker.clone(), shutdown.clone(), kind.clone());
        let open = Open::new(&worker, &active);
        tokio::task::spawn_local(async move {
            serve_connection(stream, peer, kind, worker, shutdown).await;
            drop(open);
        });
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    mut peer: Peer,
    kind: ListenKind,
    worker: Rc<Worker>,
    shutdown: watch::Receiver<Option<Duration>>,
) {
    let pp = match &kind {
        ListenKind::Plain { proxy_protocol, .. } | ListenKind::Tls { proxy_protocol, .. } => {
            *proxy_protocol
        }
    };
    if pp && !proxy_header(&mut stream, &mut peer, &worker).await {
        return;
    }
    match kind {
        ListenKind::Plain { h2c: false, .. } => {
            serve_h1(stream, Rc::new(peer), worker, shutdown).await
        }
        ListenKind::Plain { h2c: true, .. } => match h2_preface(&stream).await {
            Some(true) => serve_h2(stream, Rc::new(peer), worker, shutdown).await,
            Some(false) => serve_h1(stream, Rc::new(peer), worker, shutdown).await,
            None => {}
        },
        ListenKind::Tls { acceptor, .. } => {
            let timeout = worker.opts.handshake_timeout;
            if let Ok(a) = tls::accept(&acceptor, stream, timeout).await {
                peer.sni = a.sni.map(String::into_boxed_str);
                let peer = Rc::new(peer);
                if a.alpn.as_deref() == Some(b"h2") {
                    serve_h2(a.stream, peer, worker, shutdown).await;
                } else {
                    serve_h1(a.stream, peer, worker, shutdown).await;
                }
            }
        }
    }
}

/// Reads the PROXY protocol header; the client address it carries replaces the peer's when the
/// peer is trusted and `real_ip_header = proxy_protocol` (nginx's realip rules). `false`: no
/// valid header, the connection is dropped.
async fn proxy_header(stream: &mut TcpStream, peer: &mut Peer, worker: &Worker) -> bool {
    match proxy_protocol::read(stream, worker.opts.handshake_timeout).await {
        Ok(Some(source))
            if peer.trusted && worker.opts.real_ip_header.as_str() == "proxy_protocol" =>
        {
            *peer = Peer::new(
                peer.serial,
                source,
                peer.local,
                peer.https,
                &worker.opts.trusted_ips,
            );
            true
        }
        Ok(_) => true,
        Err(why) => {
            tracing::info!(peer = %peer.addr, error = %why, "PROXY protocol header missing or invalid, closing the connection");
            false
        }
    }
}

/// A connection, counted while it lives: shutdown drains until `active` is zero, and the
/// metrics shard counts opened/closed connections.
struct Open {
    worker: Rc<Worker>,
    active: Arc<AtomicUsize>,
}

impl Open {
    fn new(worker: &Rc<Worker>, active: &Arc<AtomicUsize>) -> Open {
        active.fetch_add(1, Ordering::Relaxed);
        worker.obs.connection_opened();
        Open {
            worker: worker.clone(),
            active: active.clone(),
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        self.worker.obs.connection_closed();
    }
}

/// Runs a connection future until it ends, or asks it to finish its in-flight requests once the
/// shutdown signal arrives.
macro_rules! drive {
    ($conn:expr, $shutdown:expr) => {{
        let conn = $conn;
        tokio::pin!(conn);
        let mut shutdown = $shutdown;
        let result = if shutdown.borrow_and_update().is_some() {
            conn.as_mut().graceful_shutdown();
            conn.await
        } else {
            tokio::select! {
                r = conn.as_mut() => r,
                _ = shutdown.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        };
        result
    }};
}

async fn serve_h1<IO>(
    io: IO,
    peer: Rc<Peer>,
    worker: Rc<Worker>,
    shutdown: watch::Receiver<Option<Duration>>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| request::handle(worker.clone(), peer.clone(), req));
    let conn = http1::Builder::new()
        .keep_alive(true)
        // Copy bodies into the head's buffer: for proxy-sized responses one flat write costs
        // fewer instructions than hyper's queue of buffers (callgrind: 26.3k -> 25.8k/request).
        .writev(false)
        .timer(crate::timer::CoarseTimer) // header-read timeout, armed for every request
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades(); // WebSocket
    let _ = drive!(conn, shutdown);
}

async fn serve_h2<IO>(
    io: IO,
    peer: Rc<Peer>,
    worker: Rc<Worker>,
    shutdown: watch::Receiver<Option<Duration>>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let addr = peer.addr;
    let svc = service_fn(move |req| request::handle(worker.clone(), peer.clone(), req));
    let conn = http2::Builder::new(LocalExec)
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .max_header_list_size(H2_MAX_HEADER_LIST)
        .max_pending_accept_reset_streams(H2_MAX_PENDING_RESETS)
        .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESETS)
        .initial_stream_window_size(256 * 1024)
        .initial_connection_window_size(1024 * 1024)
        .serve_connection(TokioIo::new(io), svc);
    if let Err(e) = drive!(conn, shutdown) {
        tracing::info!(peer = %addr, error = %e, "HTTP/2 connection closed on error");
    }
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// On an `http2` plain listener: `Some(true)` when the client opens with the HTTP/2 preface
/// (prior knowledge), `Some(false)` for anything else (HTTP/1.1), `None` when it closed or
/// stalled. Peeks, so the bytes stay for the protocol that is picked.
async fn h2_preface(stream: &TcpStream) -> Option<bool> {
    let mut buf = [0u8; 24];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        if buf[..n] != PREFACE[..n] {
            return Some(false);
        }
        if n == PREFACE.len() {
            return Some(true);
        }
        // A partial preface: wait for more bytes (peek returns at once while data is queued).
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
