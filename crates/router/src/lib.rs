//! Kong-compatible router. STUB: being written; the types below are the contract the proxy uses.
#![forbid(unsafe_code)]

pub mod path;

use gatehouse_config::{Config, RouterFlavor};

/// Access to request headers without copying them (the proxy implements it over its header map).
pub trait Headers {
    /// Calls `f` with each value of header `lower_name` (lower-case) until it returns true;
    /// returns whether it did.
    fn any_value(&self, lower_name: &str, f: &mut dyn FnMut(&str) -> bool) -> bool;
}

/// What the router looks at.
pub struct Request<'a> {
    pub method: &'a str,
    /// The raw `Host` header (or `:authority`), port included if the client sent one.
    pub host: &'a str,
    /// Port the connection arrived on (used when `host` carries no port).
    pub dst_port: u16,
    /// The normalised path (see [`path::normalize`]), no query.
    pub path: &'a str,
    /// SNI from the TLS handshake; `None` on plain connections.
    pub sni: Option<&'a str>,
    /// Whether the connection is TLS (`net.protocol == "https"`).
    pub https: bool,
    pub headers: &'a dyn Headers,
}

/// A successful match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// Index into `Config::routes`.
    pub route: usize,
    /// Index into `Config::services` (None for a serviceless route).
    pub service: Option<usize>,
    /// Bytes at the start of the normalised path to strip (0 unless `strip_path`).
    pub strip_len: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("route {route}: {message}")]
    Invalid { route: String, message: String },
}

pub struct Router {}

impl Router {
    pub fn build(config: &Config, flavor: RouterFlavor) -> Result<Router, RouterError> {
        let _ = (config, flavor);
        todo!()
    }

    pub fn find(&self, req: &Request<'_>) -> Option<Match> {
        let _ = req;
        todo!()
    }
}
