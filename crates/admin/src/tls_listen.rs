//! `ssl` on `admin_listen` / `status_listen` entries: TLS in front of the same axum routers.
//!
//! axum's `serve` takes any [`Listener`]; this one hands it connections whose handshake has
//! already finished. Handshakes run in their own tasks under a timeout, so one slow or silent
//! client never holds up the accept loop (doing the handshake inside `accept` would).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::serve::Listener;
use gatehouse_proxy::tls::{TlsAcceptor, TlsStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// nginx's `client_header_timeout` (60 s) bounds the handshake of an admin connection too.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// TLS connections, handshake done, for `axum::serve`.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp` (must be called inside the runtime that serves it).
    pub(crate) fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let (acceptor, ready) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = ready.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "admin TLS handshake failed")
                        }
                        Err(_) => tracing::info!(%peer, "admin TLS handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    return; // the server stopped
                }
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task ended (it only does when the server is going away): never
            // return, graceful shutdown ends `serve`.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
