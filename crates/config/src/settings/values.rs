//! Parsers for the value syntaxes of `kong.conf`: booleans, nginx sizes, listener lists, CIDR
//! lists and header tokens.
//!
//! Each parser returns `Err(reason)` with a human sentence; the loader adds the key, the value
//! and where it came from, so every message names all three.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use super::{Cidr, HeaderTokens, ListenAddr};

/// Kong's `boolean` type: `on`/`true` and `off`/`false` (Kong maps anything else to false; we
/// refuse it, as a typo there silently disabling a feature is worse than a start-up error).
pub fn boolean(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err("must be one of on, off, true, false".into()),
    }
}

/// Kong's array type: comma separated, each entry trimmed, empty entries dropped.
pub fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// An nginx size (`lmdb_map_size`): bytes, or a number suffixed with k/K, m/M, g/G.
pub fn size(value: &str) -> Result<u64, String> {
    const USAGE: &str = "must be a size in bytes, optionally suffixed with k, m or g (e.g. 2048m)";
    let (digits, mult) = match value.char_indices().last() {
        Some((i, 'k' | 'K')) => (&value[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&value[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&value[..i], 1 << 30),
        _ => (value, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(USAGE.into());
    }
    let n: u64 = digits.parse().map_err(|_| USAGE.to_string())?;
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| "is too large".to_string())?;
    if bytes == 0 {
        return Err("must be greater than 0".into());
    }
    Ok(bytes)
}

/// The flags Kong accepts on an http listener (`kong/conf_loader/listeners.lua`).
const LISTEN_USAGE: &str = "must be of form: [off] | <ip>:<port> [ssl] [http2] [proxy_protocol] \
     [deferred] [bind] [reuseport] [backlog=%d+] [ipv6only=on] [ipv6only=off] [so_keepalive=on] \
     [so_keepalive=off] [so_keepalive=%w*:%w*:%d*], [... next entry ...]";

/// A `*_listen` value: `off`, or comma separated `<ip>:<port> [flags]` entries.
pub fn listeners(value: &str) -> Result<Vec<ListenAddr>, String> {
    let entries: Vec<&str> = value.split(',').map(str::trim).collect();
    if entries.first().is_some_and(|e| *e == "off") {
        return Ok(Vec::new());
    }
    entries
        .into_iter()
        .filter(|e| !e.is_empty())
        .map(listener)
        .collect()
}

fn listener(entry: &str) -> Result<ListenAddr, String> {
    let mut addr = None;
    let mut l = ListenAddr {
        addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        ssl: false,
        http2: false,
        proxy_protocol: false,
        reuseport: false,
        backlog: None,
        deferred: false,
        bind: false,
        ipv6only: None,
        so_keepalive: None,
    };
    for token in entry.split_whitespace() {
        match token {
            "ssl" => l.ssl = true,
            "http2" => l.http2 = true,
            "proxy_protocol" => l.proxy_protocol = true,
            "reuseport" => l.reuseport = true,
            "deferred" => l.deferred = true,
            "bind" => l.bind = true,
            "ipv6only=on" => l.ipv6only = Some(true),
            "ipv6only=off" => l.ipv6only = Some(false),
            _ if token.starts_with("backlog=") => {
                let n = &token["backlog=".len()..];
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("invalid backlog in '{entry}': {LISTEN_USAGE}"));
                }
                l.backlog = Some(
                    n.parse()
                        .map_err(|_| format!("backlog too large in '{entry}'"))?,
                );
            }
            _ if token.starts_with("so_keepalive=") => {
                l.so_keepalive = Some(token["so_keepalive=".len()..].to_string());
            }
            _ if addr.is_none() => addr = Some(token),
            _ => return Err(format!("unexpected '{token}' in '{entry}': {LISTEN_USAGE}")),
        }
    }
    let addr = addr.ok_or_else(|| format!("no address in '{entry}': {LISTEN_USAGE}"))?;
    l.addr =
        socket_addr(addr).ok_or_else(|| format!("invalid address '{addr}': {LISTEN_USAGE}"))?;
    Ok(l)
}

/// `ip:port` or `[ipv6]:port`; `*` and `localhost` are nginx/Kong spellings we map to addresses
/// because this crate does no name resolution.
fn socket_addr(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = SocketAddr::from_str(s) {
        return Some(a);
    }
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let ip = match host {
        "*" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// One `trusted_ips` entry: an address or a CIDR block.
pub fn cidr(s: &str) -> Option<Cidr> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (s, None),
    };
    let addr = IpAddr::from_str(ip).ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix_len = match len {
        Some(len) if !len.is_empty() && len.bytes().all(|b| b.is_ascii_digit()) => {
            len.parse::<u8>().ok().filter(|n| *n <= max)?
        }
        Some(_) => return None,
        None => max,
    };
    Some(Cidr { addr, prefix_len })
}

/// The `headers` list (tokens are case-insensitive, `off` as the first entry disables all).
pub fn headers(value: &str) -> Result<HeaderTokens, String> {
    let mut h = HeaderTokens::none();
    let tokens = list(value);
    if tokens.first().is_some_and(|t| t == "off") {
        return Ok(h);
    }
    for token in &tokens {
        match token.to_ascii_lowercase().as_str() {
            "off" => {}
            "server_tokens" => {
                h.server = true;
                h.via = true;
            }
            "latency_tokens" => {
                h.proxy_latency = true;
                h.upstream_latency = true;
                h.response_latency = true;
                h.admin_latency = true;
            }
            "server" => h.server = true,
            "via" => h.via = true,
            "x-kong-proxy-latency" => h.proxy_latency = true,
            "x-kong-upstream-latency" => h.upstream_latency = true,
            "x-kong-response-latency" => h.response_latency = true,
            "x-kong-admin-latency" => h.admin_latency = true,
            "x-kong-upstream-status" => h.upstream_status = true,
            "x-kong-request-id" => h.request_id = true,
            _ => return Err(format!("invalid entry '{token}'")),
        }
    }
    Ok(h)
}

/// `headers_upstream`: only `x-kong-request-id` or `off` exist in Kong 3.9.
pub fn headers_upstream(value: &str) -> Result<bool, String> {
    let mut request_id = false;
    let tokens = list(value);
    if tokens.first().is_some_and(|t| t == "off") {
        return Ok(false);
    }
    for token in &tokens {
        match token.to_ascii_lowercase().as_str() {
            "off" => {}
            "x-kong-request-id" => request_id = true,
            _ => return Err(format!("invalid entry '{token}'")),
        }
    }
    Ok(request_id)
}
