//! WebSocket (HTTP/1.1 `Upgrade`) proxying.
//!
//! The upgrade request goes upstream with its `Upgrade`/`Connection` headers kept (they are
//! hop-by-hop everywhere else). When the upstream answers 101, both connections are taken over
//! from hyper and bytes are copied both ways until either side closes or nothing moves for the
//! service's timeout (Kong's `read_timeout`/`write_timeout` act as idle timeouts on a proxied
//! WebSocket, as nginx's `proxy_read_timeout` does). Any other answer is an ordinary response.

use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

static UPGRADE_CONNECTION: HeaderValue = HeaderValue::from_static("upgrade");

/// A client's upgrade request, taken before the hop-by-hop headers are stripped.
pub(crate) struct Pending {
    downstream: OnUpgrade,
    protocol: HeaderValue,
}

/// `Some` for an HTTP/1.1 request asking to switch protocols (`Connection: upgrade` and an
/// `Upgrade` token); the downstream connection's upgrade handle is taken from `extensions`.
pub(crate) fn take(
    version: http::Version,
    headers: &HeaderMap,
    extensions: &mut http::Extensions,
) -> Option<Pending> {
    if version != http::Version::HTTP_11 {
        return None;
    }
    let protocol = headers.get(header::UPGRADE)?;
    let asks = headers.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
    });
    if !asks {
        return None;
    }
    let downstream = extensions.remove::<OnUpgrade>()?;
    Some(Pending {
        downstream,
        protocol: protocol.clone(),
    })
}

impl Pending {
    /// Puts the upgrade headers back on the request going upstream.
    pub fn restore(&self, headers: &mut HeaderMap) {
        headers.insert(header::UPGRADE, self.protocol.clone());
        headers.insert(header::CONNECTION, UPGRADE_CONNECTION.clone());
    }

    /// After the upstream's 101: joins the client's upgraded connection and the upstream
    /// socket (with any bytes the upstream sent right after its 101) in a background task.
    /// `idle` closes the tunnel when no byte moved in either direction for that long.
    pub fn tunnel(self, upstream: crate::h1::Connection, idle: Duration) {
        tokio::task::spawn_local(async move {
            let mut down = match self.downstream.await {
                Ok(d) => TokioIo::new(d),
                Err(e) => {
                    tracing::debug!(error = %e, "upgrade failed");
                    return;
                }
            };
            let (up, early) = upstream.into_parts();
            if !early.is_empty() && down.write_all(&early).await.is_err() {
                return;
            }
            match copy_with_idle(down, up, idle).await {
                Ok(()) => {}
                Err(e) => tracing::debug!(error = %e, "websocket tunnel closed"),
            }
        });
    }
}

/// Copies both ways; ends when both directions finished, on an error, or after `idle` without
/// traffic.
async fn copy_with_idle<A, B>(a: A, b: B, idle: Duration) -> std::io::Result<()>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let mut buf_a = vec![0u8; 16 * 1024];
    let mut buf_b = vec![0u8; 16 * 1024];
    let (mut a_done, mut b_done) = (false, false);
    while !(a_done && b_done) {
        tokio::select! {
            r = ar.read(&mut buf_a), if !a_done => match r? {
                0 => { a_done = true; let _ = bw.shutdown().await; }
                n => bw.write_all(&buf_a[..n]).await?,
            },
            r = br.read(&mut buf_b), if !b_done => match r? {
                0 => { b_done = true; let _ = aw.shutdown().await; }
                n => aw.write_all(&buf_b[..n]).await?,
            },
            _ = tokio::time::sleep(idle) => {
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "idle timeout"));
            }
        }
    }
    Ok(())
}
