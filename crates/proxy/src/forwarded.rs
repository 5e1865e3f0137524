//! X-Forwarded-* / X-Real-IP as Kong sets them: values from the client are kept only when the
//! client is in `trusted_ips`; otherwise the gateway computes them. X-Forwarded-For always gets
//! the peer appended.

use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderMap, HeaderName, HeaderValue, HOST};

use gatehouse_config::settings::Cidr;

use crate::names::{Name, Present};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_FORWARDED_PATH: HeaderName = HeaderName::from_static("x-forwarded-path");
static X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Per-connection facts, rendered once per connection rather than per request.
pub(crate) struct Peer {
    /// Unique per connection (thread index in the high bits), for correlation-id `tracker`.
    pub serial: u64,
    /// Requests served on this connection so far.
    pub requests: std::cell::Cell<u64>,
    pub addr: SocketAddr,
    pub local: SocketAddr,
    pub ip: IpAddr,
    pub trusted: bool,
    pub peer_ip: HeaderValue,
    pub server_port: HeaderValue,
    pub https: bool,
    pub local_port: u16,
    /// The SNI the client sent in its TLS handshake (`tls.sni` for the router).
    pub sni: Option<Box<str>>,
}

impl Peer {
    pub fn new(
        serial: u64,
        peer: SocketAddr,
        local: SocketAddr,
        https: bool,
        trusted_ips: &[Cidr],
    ) -> Peer {
        let ip: IpAddr = peer.ip().to_canonical();
        Peer {
            serial,
            requests: std::cell::Cell::new(0),
            addr: peer,
            local,
            ip,
            trusted: trusted_ips.iter().any(|c| c.contains(ip)),
            peer_ip: HeaderValue::from_str(&ip.to_string()).unwrap_or(HeaderValue::from_static("")),
            server_port: HeaderValue::from(local.port()),
            https,
            local_port: local.port(),
            sni: None,
        }
    }
}

/// `host[:port]` or `[v6]:port` without the port (and without brackets).
pub(crate) fn host_part(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.split(':').next().unwrap_or(host)
}

/// The scheme the client used, as Kong sees it (`X-Forwarded-Proto` from a trusted client).
pub(crate) fn client_scheme_is_https(peer: &Peer, headers: &HeaderMap) -> bool {
    if peer.trusted {
        if let Some(p) = headers.get(&X_FORWARDED_PROTO) {
            return p.as_bytes().eq_ignore_ascii_case(b"https");
        }
    }
    peer.https
}

/// The client address Kong's plugins see: the `real_ip_header` value when the peer is
/// trusted and sent a valid one, else the peer.
pub(crate) fn client_ip(peer: &Peer, headers: &HeaderMap, real_ip_header: &HeaderName) -> IpAddr {
    if peer.trusted {
        if let Some(ip) = headers
            .get(real_ip_header)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<IpAddr>().ok())
        {
            return ip;
        }
    }
    peer.ip
}

/// Rewrites the forwarding headers of a request about to go upstream.
/// `present` is a [`Present::scan`] of `headers`; `path` gives the raw request path (no
/// query) as a value, when it is valid as one; `prefix` is the stripped prefix, if any.
pub(crate) fn apply(
    headers: &mut HeaderMap,
    present: Present,
    peer: &Peer,
    real_ip_header: &HeaderName,
    path: impl FnOnce() -> Option<HeaderValue>,
    prefix: &str,
) {
    let real_ip = if peer.trusted {
        headers.get(real_ip_header).filter(|v| is_ip(v)).cloned()
    } else {
        None
    };
    // The client's own value, kept: only a trusted client's (the others are overwritten).
    let keep = |n: Name| peer.trusted && present.has(n);

    let xff = match present
        .has(Name::XForwardedFor)
        .then(|| headers.get(&X_FORWARDED_FOR))
        .flatten()
    {
        Some(existing) => {
            let mut v = Vec::with_capacity(existing.len() + 2 + peer.peer_ip.len());
            v.extend_from_slice(existing.as_bytes());
            v.extend_from_slice(b", ");
            v.extend_from_slice(peer.peer_ip.as_bytes());
            HeaderValue::from_bytes(&v).unwrap_or_else(|_| peer.peer_ip.clone())
        }
        None => peer.peer_ip.clone(),
    };
    headers.insert(X_FORWARDED_FOR.clone(), xff);
    headers.insert(
        X_REAL_IP.clone(),
        real_ip.unwrap_or_else(|| peer.peer_ip.clone()),
    );

    if !keep(Name::XForwardedProto) {
        let proto = if peer.https { "https" } else { "http" };
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    }
    if !keep(Name::XForwardedHost) {
        if let Some(host) = headers.get(HOST).map(host_without_port) {
            headers.insert(X_FORWARDED_HOST.clone(), host);
        }
    }
    if !keep(Name::XForwardedPort) {
        headers.insert(X_FORWARDED_PORT.clone(), peer.server_port.clone());
    }
    if !keep(Name::XForwardedPath) {
        if let Some(v) = path() {
            headers.insert(X_FORWARDED_PATH.clone(), v);
        }
    }
    if !keep(Name::XForwardedPrefix) {
        let stripped = (!prefix.is_empty() && prefix != "/")
            .then(|| HeaderValue::from_str(prefix).ok())
            .flatten();
        match stripped {
            Some(v) => {
                headers.insert(X_FORWARDED_PREFIX.clone(), v);
            }
            None if present.has(Name::XForwardedPrefix) => {
                headers.remove(&X_FORWARDED_PREFIX);
            }
            None => {}
        }
    }
}

fn is_ip(v: &HeaderValue) -> bool {
    v.to_str().is_ok_and(|s| s.trim().parse::<IpAddr>().is_ok())
}

/// nginx's `$host`: the Host header without its port, lower-cased.
fn host_without_port(v: &HeaderValue) -> HeaderValue {
    let b = v.as_bytes();
    let end = if b.first() == Some(&b'[') {
        b.iter().position(|&c| c == b']').map_or(b.len(), |i| i + 1)
    } else {
        b.iter().position(|&c| c == b':').unwrap_or(b.len())
    };
    let host = &b[..end];
    if end == b.len() && !host.iter().any(u8::is_ascii_uppercase) {
        return v.clone(); // the common case: shares the client's bytes, no copy
    }
    if host.iter().any(u8::is_ascii_uppercase) {
        HeaderValue::from_bytes(&host.to_ascii_lowercase()).unwrap_or_else(|_| v.clone())
    } else {
        HeaderValue::from_bytes(host).unwrap_or_else(|_| v.clone())
    }
}
