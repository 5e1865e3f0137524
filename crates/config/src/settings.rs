//! Kong-style settings: defaults < `kong.conf`-style file (`-c FILE`) < `KONG_*` environment.
//! STUB: the loader is being written; the types below are the contract the other crates use.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouterFlavor {
    #[default]
    TraditionalCompatible,
    Expressions,
}

/// One entry of a `*_listen` list, e.g. `0.0.0.0:8443 http2 ssl reuseport backlog=16384`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr {
    pub addr: SocketAddr,
    pub ssl: bool,
    pub http2: bool,
    pub proxy_protocol: bool,
    pub reuseport: bool,
    pub backlog: Option<u32>,
}

/// An IP network (`10.0.0.0/8`, `::1/128`, or a bare address = full-length mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix_len.min(32));
                let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix_len.min(128));
                let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Which Kong response headers are emitted (`headers` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderTokens {
    /// `Server` / `Via` (`server_tokens`, or the individual `server`/`via`).
    pub server: bool,
    pub via: bool,
    /// `X-Kong-Proxy-Latency`, `X-Kong-Upstream-Latency`, `X-Kong-Response-Latency`.
    pub proxy_latency: bool,
    pub upstream_latency: bool,
    pub response_latency: bool,
    pub request_id: bool,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub prefix: PathBuf,
    /// Only `off` is supported.
    pub database: String,
    pub declarative_config: Option<PathBuf>,
    pub proxy_listen: Vec<ListenAddr>,
    pub admin_listen: Vec<ListenAddr>,
    pub status_listen: Vec<ListenAddr>,
    pub router_flavor: RouterFlavor,
    /// Proxy threads; `auto` resolved to the number of cores.
    pub worker_processes: usize,
    pub lmdb_map_size: u64,
    pub trusted_ips: Vec<Cidr>,
    pub real_ip_header: String,
    pub allow_debug_header: bool,
    pub headers: HeaderTokens,
    /// Enabled plugin names, `bundled` expanded.
    pub plugins: Vec<String>,
    pub log_level: String,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);
