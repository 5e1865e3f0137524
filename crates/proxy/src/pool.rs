//! Per-thread upstream connection pool (HTTP/1.1 keep-alive).
//!
//! Strictly thread-local (`Rc<RefCell<…>>`, no locks, no cross-core traffic): each proxy thread
//! owns its connections, as the engine benchmark showed Pingora's shared pool costs. We connect
//! *before* the request is handed to hyper, so a failed connect can be retried on the next target
//! without having consumed (or copied) the request. A connection goes back to the pool when its
//! response body has been read to the end; one dropped early is closed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::balancer::Target;
use crate::body::RequestBody;

/// Kong's `upstream_keepalive_idle_timeout` default.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per target per thread (Kong's `upstream_keepalive_pool_size`).
const MAX_IDLE_PER_TARGET: usize = 512;

pub(crate) type Sender = SendRequest<RequestBody>;

struct Idle {
    sender: Sender,
    since: Instant,
}

#[derive(Default)]
pub(crate) struct Pool {
    idle: RefCell<HashMap<Arc<str>, Vec<Idle>>>,
}

/// Why no connection could be had.
#[derive(Debug)]
pub(crate) enum ConnectError {
    Resolve(io::Error),
    Refused(io::Error),
    Timeout,
    Handshake,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Resolve(e) => write!(f, "name resolution failed: {e}"),
            ConnectError::Refused(e) => write!(f, "connect failed: {e}"),
            ConnectError::Timeout => f.write_str("connect timed out"),
            ConnectError::Handshake => f.write_str("HTTP handshake failed"),
        }
    }
}

/// A connection checked out of the pool, returned by [`Pool::put_back`].
pub(crate) struct Conn {
    pub sender: Sender,
    /// Whether it came from the pool (a stale keep-alive connection may fail to send).
    pub reused: bool,
}

impl Pool {
    /// A ready connection to `target`: an idle one if there is one, else a new one.
    pub async fn checkout(
        self: &Rc<Self>,
        target: &Target,
        connect_timeout: Duration,
    ) -> Result<Conn, ConnectError> {
        while let Some(mut sender) = self.take_idle(&target.authority) {
            // Ready at once unless the previous exchange is still being torn down.
            if sender.ready().await.is_ok() {
                return Ok(Conn {
                    sender,
                    reused: true,
                });
            }
        }
        let stream = tokio::time::timeout(connect_timeout, connect(target))
            .await
            .map_err(|_| ConnectError::Timeout)??;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|_| ConnectError::Handshake)?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            sender,
            reused: false,
        })
    }

    fn take_idle(&self, key: &str) -> Option<Sender> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(key)?;
        let now = Instant::now();
        while let Some(c) = list.pop() {
            if !c.sender.is_closed() && now.duration_since(c.since) < IDLE_TIMEOUT {
                return Some(c.sender);
            }
        }
        None
    }

    /// Returns a connection whose exchange has completed.
    pub fn put_back(&self, key: &Arc<str>, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let list = match idle.get_mut(key) {
            Some(list) => list,
            None => idle.entry(key.clone()).or_default(),
        };
        if list.len() < MAX_IDLE_PER_TARGET {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }
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
