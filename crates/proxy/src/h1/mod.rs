//! The HTTP/1.1 client for upstream exchanges.
//!
//! Why not hyper's client: it runs every upstream connection as a task of its own, fed through
//! a channel, answering through a oneshot, and streaming the body through another channel. Per
//! request that is two extra task wake-ups and a 32-slot channel block per connection that is
//! cycled through once every 32 requests, so at high connection counts each slot written is a
//! cache miss (measured: ~4 of ~10 last-level write misses per request at c=256). Here the
//! request's own task writes the head and body to the socket and reads the response head; the
//! response body (see [`H1Body`]) reads the same socket when the downstream connection polls it,
//! and hands the connection back to the pool once the body ended.
//!
//! Scope: HTTP/1.1 upstreams over TCP or TLS, including upgrades (a 101 hands the socket to the
//! tunnel). HTTP/2 (gRPC) upstreams stay on hyper. Known limits: the request body is sent in
//! full before the response is read (an upstream answering early while it still expects body
//! bytes is seen once the body is sent, or when a write fails); response trailers are read and
//! dropped, as nginx does for HTTP/1.1.

mod body;
mod chunked;
mod head;

use std::future::{poll_fn, Future};
use std::io::{self, Write as _};
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Request};
use hyper::body::Body;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

pub(crate) use body::H1Body;
pub(crate) use head::{Framing, ResponseHead};

use crate::body::RequestBody;
use crate::timer::Deadline;
use crate::tls::ClientTlsStream;
use head::BodyLen;

/// Bodies up to this size are copied next to the head: one write instead of two.
const COALESCE: usize = 16 * 1024;
/// The read size we start with; it grows while reads fill it (large bodies), up to `READ_MAX`.
const READ_MIN: usize = 8 * 1024;
const READ_MAX: usize = 64 * 1024;

/// An upstream socket.
pub(crate) enum Io {
    Plain(TcpStream),
    Tls(Box<ClientTlsStream<TcpStream>>),
}

impl Io {
    fn tcp(&self) -> &TcpStream {
        match self {
            Io::Plain(s) => s,
            Io::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// One upstream connection and its buffers (kept across requests, so steady-state exchanges
/// allocate no buffers).
pub(crate) struct Connection {
    io: Io,
    /// Bytes read and not yet consumed. Empty between exchanges.
    buf: BytesMut,
    /// The request head (and small bodies) being written.
    out: Vec<u8>,
    read_size: usize,
}

impl Connection {
    pub fn new(io: Io) -> Box<Connection> {
        Box::new(Connection {
            io,
            buf: BytesMut::new(),
            out: Vec::new(),
            read_size: READ_MIN,
        })
    }

    /// Whether an idle pooled connection can carry a request: not if the upstream closed it
    /// or sent bytes nobody asked for. Costs a syscall only when the socket looks readable.
    pub fn is_usable(&self) -> bool {
        let tcp = self.io.tcp();
        let mut cx = Context::from_waker(Waker::noop());
        match tcp.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readiness may be left over from the last read: look.
            Poll::Ready(Ok(())) => matches!(
                tcp.try_read(&mut [0u8; 1]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock
            ),
        }
    }

    /// The socket and the bytes already read from it (a tunnel takes both).
    pub fn into_parts(self) -> (Io, BytesMut) {
        (self.io, self.buf)
    }

    /// Reads more bytes into `buf`; `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < self.read_size / 2 {
            self.buf.reserve(self.read_size);
        }
        let room = self.buf.capacity() - self.buf.len();
        let polled = pin!(self.io.read_buf(&mut self.buf)).poll(cx);
        if let Poll::Ready(Ok(n)) = polled {
            if n == room && self.read_size < READ_MAX {
                self.read_size *= 2;
            }
        }
        polled
    }

    async fn write_all(
        &mut self,
        data: &[u8],
        limit: Duration,
        wrote: &mut bool,
    ) -> Result<(), Error> {
        let mut data = data;
        let mut deadline: Option<Deadline> = None;
        poll_fn(|cx| {
            while !data.is_empty() {
                match Pin::new(&mut self.io).poll_write(cx, data) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(Error::Io(io::ErrorKind::WriteZero.into())))
                    }
                    Poll::Ready(Ok(n)) => {
                        *wrote = true;
                        data = &data[n..];
                        deadline = None;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::Io(e))),
                    Poll::Pending => return expired(&mut deadline, limit, cx),
                }
            }
            // TLS buffers records; plain TCP has nothing to flush.
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(r) => Poll::Ready(r.map_err(Error::Io)),
                Poll::Pending => expired(&mut deadline, limit, cx),
            }
        })
        .await
    }

    /// Writes `self.out` (the head, maybe with a small body).
    async fn write_out(&mut self, limit: Duration, wrote: &mut bool) -> Result<(), Error> {
        let out = std::mem::take(&mut self.out);
        let r = self.write_all(&out, limit, wrote).await;
        self.out = out;
        r
    }

    async fn read_head(
        &mut self,
        method: &Method,
        recycle: &mut HeaderMap,
        limit: Duration,
        received: &mut bool,
    ) -> Result<ResponseHead, Error> {
        let mut deadline: Option<Deadline> = None;
        poll_fn(|cx| loop {
            if !self.buf.is_empty() {
                if let Some(head) = head::parse_response(&mut self.buf, method, recycle)? {
                    return Poll::Ready(Ok(head));
                }
            }
            match self.poll_fill(cx) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(Error::Closed)),
                Poll::Ready(Ok(_)) => {
                    *received = true;
                    deadline = None; // read_timeout is between two reads, as nginx's
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::Io(e))),
                Poll::Pending => return expired(&mut deadline, limit, cx),
            }
        })
        .await
    }
}

/// `Pending` until `limit` passes (arming the deadline on first use), then `Timeout`.
fn expired<T>(
    deadline: &mut Option<Deadline>,
    limit: Duration,
    cx: &mut Context<'_>,
) -> Poll<Result<T, Error>> {
    let d = deadline.get_or_insert_with(|| Deadline::after(limit));
    match Pin::new(d).poll(cx) {
        Poll::Ready(()) => Poll::Ready(Err(Error::Timeout)),
        Poll::Pending => Poll::Pending,
    }
}

/// Why an exchange or a response body failed.
#[derive(Debug)]
pub(crate) enum Error {
    Io(io::Error),
    /// The upstream closed the connection before the message was complete.
    Closed,
    Timeout,
    /// The upstream's message broke HTTP/1.1 framing rules.
    Invalid(&'static str),
    /// The client's request body could not be read.
    Client(hyper::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "upstream I/O error: {e}"),
            Error::Closed => f.write_str("upstream closed the connection early"),
            Error::Timeout => f.write_str("upstream timed out"),
            Error::Invalid(why) => write!(f, "invalid upstream response: {why}"),
            Error::Client(e) => write!(f, "client request body: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<&'static str> for Error {
    fn from(why: &'static str) -> Self {
        Error::Invalid(why)
    }
}

/// A failed exchange, with what the caller needs to decide on a retry.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: Error,
    /// Some request bytes reached the socket.
    pub sent: bool,
    /// Some response bytes arrived.
    pub received: bool,
    /// The request (body included) is still whole and may be sent again.
    pub replayable: bool,
}

/// Kong's service timeouts, between two successive operations.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub write: Duration,
    pub read: Duration,
}

/// Sends `req` on `conn` and reads the response head. The request is left in place (with a
/// streamed body taken out once streaming began) so a failed attempt can be retried.
pub(crate) async fn exchange(
    conn: &mut Connection,
    req: &mut Request<RequestBody>,
    t: Timeouts,
) -> Result<ResponseHead, Failure> {
    let len = body_len(req.body());
    conn.out.clear();
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    head::encode_request(&mut conn.out, req.method(), target, req.headers(), len);
    let (mut sent, mut received) = (false, false);
    let fail = |error, sent, received, replayable| Failure {
        error,
        sent,
        received,
        replayable,
    };
    let mut large: Option<Bytes> = None;
    if let RequestBody::Buffered(Some(b)) = req.body() {
        match b.len() <= COALESCE {
            true => conn.out.extend_from_slice(b),
            false => large = Some(b.clone()),
        }
    }
    if let Err(e) = conn.write_out(t.write, &mut sent).await {
        return Err(fail(e, sent, false, true));
    }
    if let Some(b) = large {
        if let Err(e) = conn.write_all(&b, t.write, &mut sent).await {
            return Err(fail(e, sent, false, true));
        }
    }
    let replayable = match len {
        BodyLen::Known(_) | BodyLen::Unknown
            if matches!(req.body(), RequestBody::Streamed { .. }) =>
        {
            let body = std::mem::replace(req.body_mut(), RequestBody::Buffered(None));
            if let Err(e) = stream_body(conn, body, len == BodyLen::Unknown, t, &mut sent).await {
                return Err(fail(e, sent, false, false));
            }
            false
        }
        _ => true,
    };
    // (A standard method's clone is a copy.)
    let method = req.method().clone();
    let recycle = req.headers_mut();
    match conn
        .read_head(&method, recycle, t.read, &mut received)
        .await
    {
        Ok(head) => Ok(head),
        Err(e) => Err(fail(e, sent, received, replayable)),
    }
}

fn body_len(body: &RequestBody) -> BodyLen {
    match body {
        RequestBody::Buffered(None) => BodyLen::Empty,
        RequestBody::Buffered(Some(b)) if b.is_empty() => BodyLen::Empty,
        RequestBody::Buffered(Some(b)) => BodyLen::Known(b.len() as u64),
        RequestBody::Streamed { body, .. } if body.is_end_stream() => BodyLen::Empty,
        RequestBody::Streamed { body, .. } => match body.size_hint().exact() {
            Some(n) => BodyLen::Known(n),
            None => BodyLen::Unknown,
        },
    }
}

/// Copies the client's body upstream, each read from the client within `write_timeout`.
async fn stream_body(
    conn: &mut Connection,
    mut body: RequestBody,
    chunked: bool,
    t: Timeouts,
    sent: &mut bool,
) -> Result<(), Error> {
    use http_body_util::BodyExt;
    loop {
        let frame = match crate::timer::timeout(t.write, body.frame()).await {
            Err(()) => return Err(Error::Timeout),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(Error::Client(e)),
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers: not forwarded over HTTP/1.1
        };
        if data.is_empty() {
            continue;
        }
        conn.out.clear();
        if chunked {
            let _ = write!(conn.out, "{:x}\r\n", data.len()); // into a Vec: cannot fail
        }
        if data.len() <= COALESCE {
            conn.out.extend_from_slice(&data);
            if chunked {
                conn.out.extend_from_slice(b"\r\n");
            }
            conn.write_out(t.write, sent).await?;
        } else {
            conn.write_out(t.write, sent).await?;
            conn.write_all(&data, t.write, sent).await?;
            if chunked {
                conn.write_all(b"\r\n", t.write, sent).await?;
            }
        }
    }
    if chunked {
        conn.write_all(b"0\r\n\r\n", t.write, sent).await?;
    }
    Ok(())
}
