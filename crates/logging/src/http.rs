//! http-log's sink: a minimal blocking HTTP/1.1 client on the shipper thread (std `TcpStream`,
//! keep-alive, `Content-Length` bodies). Blocking is fine here: the thread does nothing else, and
//! it keeps tokio/hyper out of the shipper. `https://` endpoints are refused for now (no TLS).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::json;
use crate::queue::Sink;
use crate::record::LogRecord;

/// http-log plugin settings that concern shipping (queue settings are in `QueueConfig`).
#[derive(Clone, Debug)]
pub struct HttpLogConfig {
    /// `http://[user:pass@]host[:port]/path[?query]`
    pub http_endpoint: String,
    /// `POST` (default), `PUT` or `PATCH`.
    pub method: String,
    /// `application/json` (default) or `application/json; charset=utf-8`.
    pub content_type: String,
    pub timeout: Duration,
    pub keepalive: Duration,
    /// Extra headers (`headers` field of the plugin).
    pub headers: Vec<(String, String)>,
}

impl Default for HttpLogConfig {
    fn default() -> Self {
        HttpLogConfig {
            http_endpoint: String::new(),
            method: "POST".into(),
            content_type: "application/json".into(),
            timeout: Duration::from_millis(10_000),
            keepalive: Duration::from_millis(60_000),
            headers: Vec::new(),
        }
    }
}

pub struct HttpLogSink {
    addr: String,
    head: Vec<u8>,
    timeout: Duration,
    keepalive: Duration,
    conn: Option<(TcpStream, Instant)>,
    body: Vec<u8>,
    resp: Vec<u8>,
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for c in input.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl HttpLogSink {
    pub fn new(cfg: &HttpLogConfig) -> Result<HttpLogSink, String> {
        let rest = match cfg.http_endpoint.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => rest,
            Some((s, _)) if s.eq_ignore_ascii_case("https") => {
                return Err("https http_endpoint is not supported yet".into())
            }
            _ => return Err(format!("invalid http_endpoint {:?}", cfg.http_endpoint)),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if hostport.is_empty() {
            return Err("http_endpoint has no host".into());
        }
        let addr = if hostport
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !hostport.ends_with(']')
        {
            hostport.to_owned()
        } else {
            format!("{hostport}:80")
        };
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: gatehouse-http-log\r\nContent-Type: {}\r\n",
            cfg.method, path, hostport, cfg.content_type
        );
        if let Some(u) = userinfo {
            head.push_str(&format!(
                "Authorization: Basic {}\r\n",
                base64(u.as_bytes())
            ));
        }
        for (k, v) in &cfg.headers {
            if k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
                return Err(format!("invalid header {k:?}"));
            }
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        Ok(HttpLogSink {
            addr,
            head: head.into_bytes(),
            timeout: cfg.timeout,
            keepalive: cfg.keepalive,
            conn: None,
            body: Vec::new(),
            resp: Vec::new(),
        })
    }

    fn connect(&self) -> Result<TcpStream, String> {
        let addrs = self
            .addr
            .to_socket_addrs()
            .map_err(|e| format!("resolve {}: {e}", self.addr))?;
        let mut last = format!("no address for {}", self.addr);
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.timeout) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    s.set_read_timeout(Some(self.timeout))
                        .map_err(|e| e.to_string())?;
                    s.set_write_timeout(Some(self.timeout))
                        .map_err(|e| e.to_string())?;
                    return Ok(s);
                }
                Err(e) => last = format!("connect {a}: {e}"),
            }
        }
        Err(last)
    }

    /// One exchange on `s`; `Ok((status, reusable))`.
    fn exchange(&mut self, s: &mut TcpStream) -> Result<(u16, bool), String> {
        // Head and body in two writes: copying a batch of records into one buffer costs more
        // than the extra system call.
        let mut head = Vec::with_capacity(self.head.len() + 40);
        head.extend_from_slice(&self.head);
        head.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        s.write_all(&head).map_err(|e| format!("write: {e}"))?;
        s.write_all(&self.body).map_err(|e| format!("write: {e}"))?;
        self.resp.clear();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = find(&self.resp, b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed before response".into());
            }
            self.resp.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.resp[..head_end]).to_ascii_lowercase();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| "malformed response status line".to_string())?;
        let header = |name: &str| {
            head.lines().find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.strip_prefix(':'))
                    .map(str::trim)
            })
        };
        let close = header("connection").is_some_and(|v| v == "close");
        let body_have = self.resp.len() - head_end;
        if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            let mut left = len.saturating_sub(body_have);
            while left > 0 {
                let n = s
                    .read(&mut chunk[..left.min(4096)])
                    .map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Ok((status, false));
                }
                left -= n;
            }
            Ok((status, !close))
        } else if status == 204 || status == 304 {
            Ok((status, !close))
        } else {
            // Chunked or close-delimited: we only need the status; don't reuse the connection.
            Ok((status, false))
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

impl Sink for HttpLogSink {
    fn send(&mut self, batch: &[LogRecord], single: bool) -> Result<(), String> {
        self.body.clear();
        json::batch(batch, single, &mut self.body);
        self.post_body()
    }
}

impl HttpLogSink {
    /// Sends the body `encode` writes into the sink's reused buffer (other exporters on a
    /// shipper thread, e.g. OTLP spans): no copy of the batch.
    pub fn post_with(&mut self, encode: impl FnOnce(&mut Vec<u8>)) -> Result<(), String> {
        self.body.clear();
        encode(&mut self.body);
        self.post_body()
    }

    fn post_body(&mut self) -> Result<(), String> {
        // A pooled connection may have been closed by the peer: one immediate retry on a fresh one.
        let pooled = self
            .conn
            .take()
            .filter(|(_, t)| t.elapsed() < self.keepalive);
        let (mut s, reused) = match pooled {
            Some((s, _)) => (s, true),
            None => (self.connect()?, false),
        };
        let res = match self.exchange(&mut s) {
            Err(_) if reused => {
                s = self.connect()?;
                self.exchange(&mut s)
            }
            r => r,
        };
        let (status, reusable) = res?;
        if reusable {
            self.conn = Some((s, Instant::now()));
        }
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!(
                "request to {} returned status code {status}",
                self.addr
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_basic_auth() {
        assert_eq!(super::base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(super::base64(b"a"), "YQ==");
        assert_eq!(super::base64(b"ab"), "YWI=");
    }
}
