//! The downstream handshake, bounded in time.
//!
//! A client that sends garbage, stops half-way, or never speaks must cost the proxy one socket
//! and nothing else: the handshake runs under a timeout, failures are logged at info level (as
//! nginx logs failed handshakes: routine on a public port, so not a warning) and the socket is dropped, which closes it.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A finished handshake and what the request path needs from it: `sni` feeds the router's
/// `tls.sni` (lower-cased by rustls), `alpn` picks HTTP/1.1 or h2.
#[derive(Debug)]
pub struct Accepted {
    pub stream: TlsStream<TcpStream>,
    pub sni: Option<String>,
    pub alpn: Option<Vec<u8>>,
}

/// Why a handshake did not complete (already logged at info level; the socket is closed).
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("TLS handshake timed out after {0:?}")]
    Timeout(Duration),
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] io::Error),
}

/// Runs the server handshake on `tcp` within `handshake_timeout`.
pub async fn accept(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    handshake_timeout: Duration,
) -> Result<Accepted, AcceptError> {
    let peer: Option<SocketAddr> = tcp.peer_addr().ok();
    match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => {
            let (_, conn) = stream.get_ref();
            let sni = conn.server_name().map(str::to_owned);
            let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
            Ok(Accepted { stream, sni, alpn })
        }
        Ok(Err(e)) => {
            tracing::info!(?peer, error = %e, "TLS handshake failed, closing the connection");
            Err(AcceptError::Handshake(e))
        }
        Err(_) => {
            tracing::info!(?peer, timeout = ?handshake_timeout, "TLS handshake timed out, closing the connection");
            Err(AcceptError::Timeout(handshake_timeout))
        }
    }
}
