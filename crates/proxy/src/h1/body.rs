//! An upstream response body read straight from the upstream socket when the downstream
//! connection asks for more, the connection going back to the pool the moment the body ends
//! (and only if nothing follows it: extra bytes mean the upstream broke framing).

use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::chunked::Decoder;
use super::{expired, Connection, Error, Framing};
use crate::pool::{Pool, PoolKey};
use crate::timer::Deadline;

enum Left {
    Length(u64),
    Chunked(Decoder),
    Close,
}

pub(crate) struct H1Body {
    /// `None` once the body ended or failed.
    conn: Option<Box<Connection>>,
    left: Left,
    done: bool,
    reusable: bool,
    release: Option<(Rc<Pool>, PoolKey)>,
    /// The service's `read_timeout`, between two reads.
    idle: Duration,
    deadline: Option<Deadline>,
}

impl H1Body {
    pub fn new(
        conn: Box<Connection>,
        framing: Framing,
        reusable: bool,
        release: (Rc<Pool>, PoolKey),
        idle: Duration,
    ) -> H1Body {
        let left = match framing {
            Framing::Length(n) => Left::Length(n),
            Framing::Chunked => Left::Chunked(Decoder::default()),
            Framing::Close | Framing::Upgrade => Left::Close,
        };
        let mut body = H1Body {
            conn: Some(conn),
            left,
            done: false,
            reusable,
            release: Some(release),
            idle,
            deadline: None,
        };
        if matches!(body.left, Left::Length(0)) {
            body.finish();
        }
        body
    }

    fn finish(&mut self) {
        self.done = true;
        self.deadline = None;
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.reusable && conn.buf.is_empty() {
            if let Some((pool, key)) = self.release.take() {
                pool.put_back_h1(&key, conn);
            }
        }
    }

    fn fail(&mut self, e: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.conn = None;
        self.deadline = None;
        Poll::Ready(Some(Err(e)))
    }
}

impl Body for H1Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let data = match &mut this.left {
                Left::Length(left) if *left > 0 && !conn.buf.is_empty() => {
                    let n =
                        usize::try_from(*left).map_or(conn.buf.len(), |l| l.min(conn.buf.len()));
                    *left -= n as u64;
                    Some(conn.buf.split_to(n).freeze())
                }
                Left::Length(_) => None,
                Left::Chunked(d) => match d.next(&mut conn.buf) {
                    Ok(data) => data,
                    Err(why) => return this.fail(Error::Invalid(why)),
                },
                Left::Close if !conn.buf.is_empty() => Some(conn.buf.split().freeze()),
                Left::Close => None,
            };
            let ended = match &this.left {
                Left::Length(left) => *left == 0,
                Left::Chunked(d) => d.is_done(),
                Left::Close => false,
            };
            if ended {
                this.finish();
                return Poll::Ready(data.map(|d| Ok(Frame::data(d))));
            }
            if let Some(data) = data {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            match conn.poll_fill(cx) {
                Poll::Ready(Ok(0)) if matches!(this.left, Left::Close) => {
                    this.reusable = false;
                    this.finish();
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(0)) => return this.fail(Error::Closed),
                Poll::Ready(Ok(_)) => this.deadline = None,
                // A TLS upstream that closes without close_notify ends a close-delimited body
                // all the same (nginx accepts it too).
                Poll::Ready(Err(e))
                    if matches!(this.left, Left::Close)
                        && e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    this.reusable = false;
                    this.finish();
                    return Poll::Ready(None);
                }
                Poll::Ready(Err(e)) => return this.fail(Error::Io(e)),
                Poll::Pending => {
                    return match expired::<()>(&mut this.deadline, this.idle, cx) {
                        Poll::Ready(Err(e)) => this.fail(e),
                        _ => Poll::Pending,
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.left, self.done) {
            (_, true) => SizeHint::with_exact(0),
            (Left::Length(n), false) => SizeHint::with_exact(*n),
            _ => SizeHint::default(),
        }
    }
}
