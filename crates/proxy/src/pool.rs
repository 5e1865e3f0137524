//! Per-thread upstream connection pool: HTTP/1.1 keep-alive connections (plain or TLS) and, for
//! gRPC services, one multiplexed HTTP/2 connection per target.
//!
//! Strictly thread-local (`Rc<RefCell<…>>`, no locks, no cross-core traffic): each proxy thread
//! owns its connections, as the engine benchmark showed Pingora's shared pool costs. We connect
//! *before* the request is written, so a failed connect can be retried on the next target
//! without having consumed (or copied) the request. An HTTP/1.1 connection ([`h1`]) goes back
//! to the pool when its response body has been read to the end; one dropped early is closed.
//! An idle one is checked for a close by the upstream (socket readiness, no syscall unless it
//! looks readable) before it is handed out.
//!
//! Keys: a TLS connection is only reused for the same target, the same SNI and the same TLS
//! settings (verification, CAs, client certificate), so a connection made under settings a new
//! config tightened is never handed out again.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::client::conn::http2;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::balancer::Target;
use crate::body::RequestBody;
use crate::h1::{self, Connection};
use crate::snapshot::UpstreamTls;
use crate::tls::connect_tls;

/// Kong's `upstream_keepalive_idle_timeout` default.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per target per thread (Kong's `upstream_keepalive_pool_size`).
const MAX_IDLE_PER_TARGET: usize = 512;

/// Spawns hyper's background tasks on this thread's local runtime (our bodies are `!Send`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

/// A ready-to-use connection to one upstream.
pub(crate) enum Sender {
    H1(Box<Connection>),
    H2(http2::SendRequest<RequestBody>),
}

/// What a pooled connection may be reused for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub authority: Arc<str>,
    /// `(SNI, TLS settings fingerprint)` for TLS connections.
    pub tls: Option<(Arc<str>, u64)>,
}

struct Idle {
    conn: Box<Connection>,
    since: Instant,
}

/// Keys come from the config, not from clients: a fast hash (two lookups per request: checkout
/// and put-back) needs no flooding resistance.
type Hasher = foldhash::fast::RandomState;

#[derive(Default)]
pub(crate) struct Pool {
    idle: RefCell<HashMap<PoolKey, Vec<Idle>, Hasher>>,
    /// One shared HTTP/2 connection per key (requests multiplex over it).
    h2: RefCell<HashMap<PoolKey, http2::SendRequest<RequestBody>, Hasher>>,
}

/// Why no connection could be had.
#[derive(Debug)]
pub(crate) enum ConnectError {
    Resolve(io::Error),
    Refused(io::Error),
    Timeout,
    Tls(io::Error),
    Handshake,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Resolve(e) => write!(f, "name resolution failed: {e}"),
            ConnectError::Refused(e) => write!(f, "connect failed: {e}"),
            ConnectError::Timeout => f.write_str("connect timed out"),
            ConnectError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            ConnectError::Handshake => f.write_str("HTTP handshake failed"),
        }
    }
}

/// A connection checked out of the pool (HTTP/1.1 ones return by [`Pool::put_back_h1`]).
pub(crate) struct Conn {
    pub sender: Sender,
    pub key: PoolKey,
    /// Whether it came from the pool (a stale keep-alive connection may fail to send).
    pub reused: bool,
}

/// How to reach an upstream beyond its address.
pub(crate) struct Upstream<'a> {
    pub tls: Option<&'a UpstreamTls>,
    /// SNI (and name to verify): the Host sent upstream, without port.
    pub sni: Option<Arc<str>>,
    pub h2: bool,
}

impl Pool {
    /// A ready connection to `target`: an idle (or shared h2) one if there is one, else a new one.
    pub async fn checkout(
        self: &Rc<Self>,
        target: &Target,
        up: &Upstream<'_>,
        connect_timeout: Duration,
    ) -> Result<Conn, ConnectError> {
        let key = PoolKey {
            authority: target.authority.clone(),
            tls: up.tls.map(|t| {
                let sni = up
                    .sni
                    .clone()
                    .unwrap_or_else(|| target.host.as_str().into());
                (sni, t.fingerprint)
            }),
        };
        if up.h2 {
            return self.checkout_h2(key, target, up, connect_timeout).await;
        }
        if let Some(conn) = self.take_idle(&key) {
            return Ok(Conn {
                sender: Sender::H1(conn),
                key,
                reused: true,
            });
        }
        // Boxed: connecting (TCP, TLS handshakes) is a large future that would
        // otherwise sit in every request's state, and be copied with it, for the common case of
        // an idle connection. One allocation per new connection is noise next to a connect.
        Box::pin(connect_h1(key, target, up, connect_timeout)).await
    }

    async fn checkout_h2(
        self: &Rc<Self>,
        key: PoolKey,
        target: &Target,
        up: &Upstream<'_>,
        connect_timeout: Duration,
    ) -> Result<Conn, ConnectError> {
        let shared = self.h2.borrow().get(&key).cloned();
        if let Some(mut sender) = shared {
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Ok(Conn {
                    sender: Sender::H2(sender),
                    key,
                    reused: true,
                });
            }
            self.h2.borrow_mut().remove(&key);
        }
        let sender = Box::pin(connect_h2(&key, target, up, connect_timeout)).await?;
        self.h2.borrow_mut().insert(key.clone(), sender.clone());
        Ok(Conn {
            sender: Sender::H2(sender),
            key,
            reused: false,
        })
    }

    fn take_idle(&self, key: &PoolKey) -> Option<Box<Connection>> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(key)?;
        // The idle timeout is a minute: the thread's coarse clock is close enough.
        let now = crate::timer::coarse_now();
        while let Some(c) = list.pop() {
            if now.saturating_duration_since(c.since) < IDLE_TIMEOUT && c.conn.is_usable() {
                return Some(c.conn);
            }
        }
        None
    }

    /// Closes idle HTTP/1.1 connections the upstream closed (or sent stray bytes on) and those
    /// idle for longer than the keep-alive timeout: nothing reads an idle connection, so
    /// without this a closed one would sit in CLOSE_WAIT until checked out.
    pub fn sweep(&self) {
        let now = crate::timer::coarse_now();
        self.idle.borrow_mut().retain(|_, list| {
            list.retain(|c| {
                now.saturating_duration_since(c.since) < IDLE_TIMEOUT && c.conn.is_usable()
            });
            !list.is_empty()
        });
    }

    /// Returns an HTTP/1.1 connection whose response body was read to its end.
    pub fn put_back_h1(&self, key: &PoolKey, conn: Box<Connection>) {
        let mut idle = self.idle.borrow_mut();
        let list = match idle.get_mut(key) {
            Some(list) => list,
            None => idle.entry(key.clone()).or_default(),
        };
        if list.len() < MAX_IDLE_PER_TARGET {
            list.push(Idle {
                conn,
                since: crate::timer::coarse_now(),
            });
        }
    }
}

/// Runs [`Pool::sweep`] every `period` for the thread's lifetime.
pub(crate) async fn sweep_every(pool: Rc<Pool>, period: Duration) {
    // (`interval` would sweep at once, on the thread's first poll of this task.)
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        pool.sweep();
    }
}

/// A new HTTP/1.1 connection (TCP, then TLS when the service asks for it).
async fn connect_h1(
    key: PoolKey,
    target: &Target,
    up: &Upstream<'_>,
    connect_timeout: Duration,
) -> Result<Conn, ConnectError> {
    let tcp = connect_tcp(target, connect_timeout).await?;
    let io = match (up.tls, &key.tls) {
        (Some(tls), Some((sni, _))) => h1::Io::Tls(Box::new(
            tls_handshake(tcp, sni, tls, connect_timeout).await?,
        )),
        _ => h1::Io::Plain(tcp),
    };
    Ok(Conn {
        sender: Sender::H1(Connection::new(io)),
        key,
        reused: false,
    })
}

/// A new HTTP/2 connection (gRPC services), shared by the requests that follow.
async fn connect_h2(
    key: &PoolKey,
    target: &Target,
    up: &Upstream<'_>,
    connect_timeout: Duration,
) -> Result<http2::SendRequest<RequestBody>, ConnectError> {
    let tcp = connect_tcp(target, connect_timeout).await?;
    match (up.tls, &key.tls) {
        (Some(tls), Some((sni, _))) => {
            let stream = tls_handshake(tcp, sni, tls, connect_timeout).await?;
            h2_handshake(stream).await
        }
        _ => h2_handshake(tcp).await,
    }
}

/// A TCP connection to `target` within `timeout`, with Nagle off.
async fn connect_tcp(target: &Target, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let tcp = tokio::time::timeout(timeout, connect(target))
        .await
        .map_err(|_| ConnectError::Timeout)??;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

async fn tls_handshake(
    tcp: TcpStream,
    sni: &str,
    tls: &UpstreamTls,
    timeout: Duration,
) -> Result<crate::tls::ClientTlsStream<TcpStream>, ConnectError> {
    match tokio::time::timeout(timeout, connect_tls(tcp, sni, &tls.client)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(ConnectError::Tls(e)),
        Err(_) => Err(ConnectError::Timeout),
    }
}

async fn h2_handshake<IO>(io: IO) -> Result<http2::SendRequest<RequestBody>, ConnectError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let (sender, conn) = http2::Builder::new(LocalExec)
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .handshake(TokioIo::new(io))
        .await
        .map_err(|_| ConnectError::Handshake)?;
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn connect(target: &Target) -> Result<TcpStream, ConnectError> {
    let host = target.host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse() {
        return TcpStream::connect(SocketAddr::new(ip, target.port))
            .await
            .map_err(ConnectError::Refused);
    }
    let addrs = tokio::net::lookup_host((host, target.port))
        .await
        .map_err(ConnectError::Resolve)?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => ConnectError::Refused(e),
        None => ConnectError::Resolve(io::Error::new(io::ErrorKind::NotFound, "no address")),
    })
}
