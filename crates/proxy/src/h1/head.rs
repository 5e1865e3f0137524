//! Request heads out, response heads in.
//!
//! The request head is written from the upstream request's parts into a reused buffer; the
//! body framing headers are always ours (`Content-Length` / `Transfer-Encoding` in the header
//! map are skipped), so whatever a plugin put there cannot disagree with what we send. The
//! response head is parsed with `httparse` (strict: no obs-fold, no space before the colon)
//! and its framing decided as RFC 9112 section 6.3 says, refusing the ambiguous cases a proxy
//! must not guess at (differing Content-Lengths, Transfer-Encoding in HTTP/1.0).

use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

/// Most response header lines we accept (hyper's client default).
const MAX_HEADERS: usize = 100;
/// Largest response head we buffer before answering 502 (nginx: "upstream sent too big header").
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// What the request body is, as far as framing goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyLen {
    Empty,
    Known(u64),
    Unknown,
}

/// Appends `METHOD target HTTP/1.1`, the headers and the framing header for `body`.
pub(crate) fn encode_request(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    body: BodyLen,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut had_length = false;
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH {
            had_length = true;
            continue;
        }
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match body {
        // A client's explicit `Content-Length: 0` is kept.
        BodyLen::Empty if had_length => out.extend_from_slice(b"content-length: 0\r\n"),
        BodyLen::Empty => {}
        BodyLen::Known(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        BodyLen::Unknown => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    Length(u64),
    Chunked,
    /// Until the upstream closes the connection.
    Close,
    /// A 101: the connection now carries another protocol.
    Upgrade,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub parts: http::response::Parts,
    pub framing: Framing,
    /// Whether the connection may carry another request once this body is read.
    pub reusable: bool,
}

/// Parses the response head at the start of `buf` and removes it (and any 1xx interim
/// responses before it) from `buf`. `Ok(None)`: more bytes are needed.
///
/// `recycle` is the request's header map: once the head is complete it is cleared and filled
/// with the response's headers, so the map's allocation goes around (downstream hyper caches
/// the response's map for the next request it parses) instead of one new map per response.
pub(crate) fn parse_response(
    buf: &mut BytesMut,
    request: &Method,
    recycle: &mut HeaderMap,
) -> Result<Option<ResponseHead>, &'static str> {
    loop {
        let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut res, buf, &mut raw)
        {
            Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
            Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Ok(None),
            Ok(_) => return Err("response head too large"),
            Err(httparse::Error::TooManyHeaders) => return Err("too many response headers"),
            Err(_) => return Err("malformed response head"),
        };
        let code = res.code.unwrap_or(0);
        if (100..200).contains(&code) && code != 101 {
            buf.advance(len); // interim response: the real one follows
            continue;
        }
        let status = StatusCode::from_u16(code).map_err(|_| "invalid status code")?;
        let version = match res.version {
            Some(0) => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        // Offsets into the head, so values can share its bytes once it is split off.
        let base = buf.as_ptr() as usize;
        let mut at = [(0u32, 0u32, 0u32, 0u32); MAX_HEADERS];
        let count = res.headers.len();
        for (slot, h) in at.iter_mut().zip(res.headers.iter()) {
            let name = h.name.as_ptr() as usize - base;
            let value = h.value.as_ptr() as usize - base;
            *slot = (
                name as u32,
                (name + h.name.len()) as u32,
                value as u32,
                (value + h.value.len()) as u32,
            );
        }
        let head = buf.split_to(len).freeze();
        let mut headers = std::mem::take(recycle);
        headers.clear();
        headers.reserve(count);
        let mut seen = Seen::default();
        for &(ns, ne, vs, ve) in &at[..count] {
            let name = HeaderName::from_bytes(&head[ns as usize..ne as usize])
                .map_err(|_| "invalid header name")?;
            let value = HeaderValue::from_maybe_shared(head.slice(vs as usize..ve as usize))
                .map_err(|_| "invalid header value")?;
            seen.note(&name, &value)?;
            headers.append(name, value);
        }
        let framing = if code == 101 {
            Framing::Upgrade
        } else if code == 204 || code == 304 || request == Method::HEAD {
            Framing::Length(0)
        } else if seen.te {
            if version == Version::HTTP_10 {
                return Err("Transfer-Encoding in an HTTP/1.0 response");
            }
            if seen.length.is_some() {
                // Both: Transfer-Encoding wins and the length is dropped (RFC 9112 6.3).
                headers.remove(header::CONTENT_LENGTH);
                seen.close = true;
            }
            match seen.te_chunked {
                true => Framing::Chunked,
                false => Framing::Close,
            }
        } else if let Some(n) = seen.length {
            Framing::Length(n)
        } else {
            Framing::Close
        };
        let reusable = !seen.close
            && (version == Version::HTTP_11 || seen.keep_alive)
            && !matches!(framing, Framing::Close | Framing::Upgrade);
        let mut resp = http::Response::new(());
        *resp.status_mut() = status;
        *resp.version_mut() = version;
        *resp.headers_mut() = headers;
        let (parts, ()) = resp.into_parts();
        return Ok(Some(ResponseHead {
            parts,
            framing,
            reusable,
        }));
    }
}

/// What the framing-relevant headers said.
#[derive(Default)]
struct Seen {
    te: bool,
    /// Whether `chunked` is the final transfer coding.
    te_chunked: bool,
    length: Option<u64>,
    close: bool,
    keep_alive: bool,
}

impl Seen {
    fn note(&mut self, name: &HeaderName, value: &HeaderValue) -> Result<(), &'static str> {
        if name == header::TRANSFER_ENCODING {
            self.te = true;
            let last = value
                .as_bytes()
                .rsplit(|&b| b == b',')
                .next()
                .unwrap_or(b"");
            self.te_chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if name == header::CONTENT_LENGTH {
            // Repeated (as lines or in a list) only with one value.
            for part in value.as_bytes().split(|&b| b == b',') {
                let n = parse_length(part.trim_ascii()).ok_or("invalid Content-Length")?;
                if self.length.is_some_and(|m| m != n) {
                    return Err("differing Content-Length values");
                }
                self.length = Some(n);
            }
        } else if name == header::CONNECTION {
            for token in value.as_bytes().split(|&b| b == b',') {
                let token = token.trim_ascii();
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        Ok(())
    }
}

/// Digits only, at most 19 of them (no sign, no spaces inside, no overflow).
fn parse_length(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(wire: &str, method: Method) -> Result<Option<ResponseHead>, &'static str> {
        parse_response(
            &mut BytesMut::from(wire.as_bytes()),
            &method,
            &mut HeaderMap::new(),
        )
    }

    #[test]
    fn framing_follows_rfc_9112() {
        use Framing::*;
        let get = Method::GET;
        // (head, request method, framing, reusable)
        let cases: &[(&str, &Method, Framing, bool)] = &[
            ("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", &get, Length(5), true),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", &get, Length(5), true),
            ("HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\n", &get, Length(5), true),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", &get, Chunked, true),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n", &get, Chunked, true),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n", &get, Close, false),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n", &get, Chunked, false),
            ("HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n", &get, Chunked, false),
            ("HTTP/1.1 200 OK\r\n\r\n", &get, Close, false),
            ("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n", &get, Length(1), false),
            ("HTTP/1.1 200 OK\r\nconnection: Keep-Alive, Close\r\ncontent-length: 1\r\n\r\n", &get, Length(1), false),
            ("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n", &get, Length(1), false),
            ("HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\n", &get, Length(1), true),
            ("HTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n", &get, Length(0), true),
            ("HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n", &get, Length(0), true),
            ("HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n", &Method::HEAD, Length(0), true),
            ("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n", &get, Upgrade, false),
            ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", &get, Length(2), true),
            ("HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n", &get, Length(0), true),
        ];
        for (wire, method, framing, reusable) in cases {
            let head = parse(wire, (*method).clone())
                .unwrap_or_else(|e| panic!("{wire:?}: {e}"))
                .unwrap_or_else(|| panic!("{wire:?}: incomplete"));
            assert_eq!(
                (head.framing, head.reusable),
                (*framing, *reusable),
                "{wire:?}"
            );
        }
    }

    #[test]
    fn a_dropped_length_is_not_forwarded() {
        let head = parse(
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
            Method::GET,
        )
        .expect("valid")
        .expect("complete");
        assert!(!head.parts.headers.contains_key(header::CONTENT_LENGTH));
    }

    #[test]
    fn ambiguous_or_malformed_heads_are_errors() {
        let cases = [
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: -5\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 5x\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
            "HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nbad header: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nx-folded: a\r\n b\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length : 5\r\n\r\n",
            "HTTP/2 200 OK\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "garbage\r\n\r\n",
        ];
        for wire in cases {
            assert!(parse(wire, Method::GET).is_err(), "{wire:?} should fail");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
        assert!(parse(&format!("HTTP/1.1 200 OK\r\n{many}\r\n"), Method::GET).is_err());
    }

    #[test]
    fn partial_heads_ask_for_more_until_too_large() {
        for wire in [
            "HTTP/1.1 200 OK\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n",
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1",
        ] {
            assert!(matches!(parse(wire, Method::GET), Ok(None)), "{wire:?}");
        }
        let big = format!("HTTP/1.1 200 OK\r\nx-big: {}", "a".repeat(MAX_HEAD));
        assert!(parse(&big, Method::GET).is_err());
        assert!(
            parse(&format!("{big}\r\n\r\n"), Method::GET).is_err(),
            "complete but too large"
        );
    }

    #[test]
    fn the_body_stays_in_the_buffer_and_values_keep_their_bytes() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 404 Not Found\r\nX-Thing: a b\r\ncontent-length: 2\r\n\r\nhi"[..],
        );
        let mut old = HeaderMap::new();
        old.insert("x-request-only", HeaderValue::from_static("1"));
        let head = parse_response(&mut buf, &Method::GET, &mut old)
            .expect("valid")
            .expect("complete");
        assert!(!head.parts.headers.contains_key("x-request-only"));
        assert_eq!(head.parts.status, StatusCode::NOT_FOUND);
        assert_eq!(head.parts.headers["x-thing"], "a b");
        assert_eq!(&buf[..], b"hi");
    }

    #[test]
    fn request_heads_carry_our_framing_only() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("example.com"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-a", HeaderValue::from_static("2"));
        let cases = [
            (BodyLen::Empty, "content-length: 0\r\n"),
            (BodyLen::Known(12), "content-length: 12\r\n"),
            (BodyLen::Unknown, "transfer-encoding: chunked\r\n"),
        ];
        for (body, framing) in cases {
            let mut out = Vec::new();
            encode_request(&mut out, &Method::POST, "/a?b=c", &h, body);
            assert_eq!(
                String::from_utf8(out).expect("ascii"),
                format!("POST /a?b=c HTTP/1.1\r\nhost: example.com\r\nx-a: 1\r\nx-a: 2\r\n{framing}\r\n")
            );
        }
        let mut out = Vec::new();
        encode_request(
            &mut out,
            &Method::GET,
            "/",
            &HeaderMap::new(),
            BodyLen::Empty,
        );
        assert_eq!(out, b"GET / HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn random_heads_never_panic() {
        const PARTS: &[&str] = &[
            "HTTP/1.1 ",
            "HTTP/1.0 ",
            "200 OK",
            "101 S",
            "100 C",
            "204 N",
            "\r\n",
            "\n",
            ": ",
            "content-length",
            "transfer-encoding",
            "connection",
            "chunked",
            "close",
            "5",
            ",",
            " ",
            "\t",
            "x",
            "\u{7f}",
            "\u{e9}",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut wire = String::new();
            for _ in 0..(seed % 24) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                wire.push_str(PARTS[(seed % PARTS.len() as u64) as usize]);
            }
            let method = if seed.is_multiple_of(3) {
                Method::HEAD
            } else {
                Method::GET
            };
            let _ = parse(&wire, method);
        }
    }
}
