//! Kong-compatible request routing for `router_flavor = traditional_compatible`.
//!
//! Kong 3.x turns every classic route into an ATC expression with a computed 64-bit priority
//! and evaluates the matchers from the highest (priority, id) down, stopping at the first match.
//! This crate reproduces that observable behaviour without an expression engine: each route (or
//! each group of a split multi-path route) is compiled once into a [`matcher`] holding
//! precompiled patterns, the matchers are kept in one `Vec` sorted by (priority, id) descending,
//! and [`Router::find`] walks it. Keeping the order in a plain `Vec` lets a later per-field index
//! hand back candidate positions in the same order. `find` does not allocate.
//!
//! Path normalisation and the upstream path live in [`path`]; the caller normalises the request
//! path before calling [`Router::find`] and builds the upstream path from the [`Match`].
#![forbid(unsafe_code)]

mod matcher;
pub mod path;
mod split;

use std::collections::HashMap;

use gatehouse_config::{Config, Protocol, RouterFlavor};
use uuid::Uuid;

use matcher::{Matcher, ProtocolFilter};

/// Access to request headers without copying them (the proxy implements it over its header map).
pub trait Headers {
    /// Calls `f` with each value of header `lower_name` (lower-case) until it returns true;
    /// returns whether it did.
    fn any_value(&self, lower_name: &str, f: &mut dyn FnMut(&str) -> bool) -> bool;
}

/// A request without headers (convenient for tests and for callers that have none).
pub struct NoHeaders;

impl Headers for NoHeaders {
    fn any_value(&self, _lower_name: &str, _f: &mut dyn FnMut(&str) -> bool) -> bool {
        false
    }
}

/// Headers as a slice of `(lower-case name, value)` pairs (use `&&[..]` as `&dyn Headers`).
impl Headers for &[(&str, &str)] {
    fn any_value(&self, lower_name: &str, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.iter().any(|(n, v)| *n == lower_name && f(v))
    }
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

impl Match {
    /// Kong's matched prefix P (`match_t.prefix`): the part of `path` the route's path matched,
    /// or `None` when nothing is stripped. `X-Forwarded-Prefix` is set to it when it is not `/`.
    pub fn prefix<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.strip_len == 0 {
            return None;
        }
        path.get(..self.strip_len)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("route {route}: {message}")]
    Invalid { route: String, message: String },
}

/// The compiled routing table; immutable and cheap to share between threads.
#[derive(Debug)]
pub struct Router {
    /// Sorted by (priority, id) descending: evaluation order.
    matchers: Vec<Matcher>,
}

fn is_http_route(protocols: &[Protocol]) -> bool {
    protocols.is_empty()
        || protocols.iter().any(|p| {
            matches!(
                p,
                Protocol::Http | Protocol::Https | Protocol::Grpc | Protocol::Grpcs
            )
        })
}

/// The `net.protocol` predicate the expressions flavor adds to a classic route (grpc counts as
/// http, grpcs as https). A route whose only protocol is https gets none, so that Kong's
/// redirect / 426 handling still sees plain-http requests.
fn expressions_protocols(protocols: &[Protocol]) -> Option<ProtocolFilter> {
    if protocols.is_empty() || protocols == [Protocol::Https] {
        return None;
    }
    Some(ProtocolFilter {
        http: protocols
            .iter()
            .any(|p| matches!(p, Protocol::Http | Protocol::Grpc)),
        https: protocols
            .iter()
            .any(|p| matches!(p, Protocol::Https | Protocol::Grpcs)),
    })
}

impl Router {
    /// Compiles every HTTP route whose service is enabled (routes of disabled services are left
    /// out, serviceless routes kept). Stream-only routes (tcp/tls/udp) are left out too: Kong
    /// routes them in its stream subsystem.
    pub fn build(config: &Config, flavor: RouterFlavor) -> Result<Router, RouterError> {
        let services: HashMap<Uuid, usize> = config
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id, i))
            .collect();
        let expressions = matches!(flavor, RouterFlavor::Expressions);
        let mut matchers = Vec::with_capacity(config.routes.len());
        for (idx, route) in config.routes.iter().enumerate() {
            let invalid = |message: String| RouterError::Invalid {
                route: route.name.clone().unwrap_or_else(|| route.id.to_string()),
                message,
            };
            let service = match route.service {
                None => None,
                Some(sid) => {
                    let si = *services
                        .get(&sid)
                        .ok_or_else(|| invalid(format!("unknown service {sid}")))?;
                    if !config.services[si].enabled {
                        continue;
                    }
                    Some(si)
                }
            };
            if !is_http_route(&route.protocols) {
                continue;
            }
            if route.expression.is_some() {
                return Err(invalid("expression routes are not supported yet".into()));
            }
            let protocols = if expressions {
                expressions_protocols(&route.protocols)
            } else {
                None
            };
            let paths = route.paths.as_deref().unwrap_or(&[]);
            let groups = split::group_paths(paths);
            if groups.len() <= 1 {
                let group = groups.into_iter().next().unwrap_or_default();
                matchers.push(
                    Matcher::compile(route, idx, service, route.id, &group, protocols)
                        .map_err(invalid)?,
                );
            } else {
                for (n, group) in groups.iter().enumerate() {
                    let id = split::sub_route_id(&route.id, n + 1);
                    matchers.push(
                        Matcher::compile(route, idx, service, id, group, protocols)
                            .map_err(invalid)?,
                    );
                }
            }
        }
        matchers.sort_by_key(|m| std::cmp::Reverse((m.priority, m.id)));
        Ok(Router { matchers })
    }

    /// The highest-priority route matching `req`, if any. Does not allocate.
    pub fn find(&self, req: &Request<'_>) -> Option<Match> {
        let (host, host_port) = matcher::split_host_port(req.host);
        let port = host_port.unwrap_or(u64::from(req.dst_port));
        self.matchers.iter().find_map(|m| {
            m.matches(req, host, port).map(|hit| Match {
                route: m.route,
                service: m.service,
                strip_len: hit.strip_len,
            })
        })
    }

    /// Number of compiled matchers (split routes count once per group).
    pub fn len(&self) -> usize {
        self.matchers.len()
    }

    /// Whether no route can match.
    pub fn is_empty(&self) -> bool {
        self.matchers.is_empty()
    }

    /// `(route index, priority)` in evaluation order, for diagnostics and tests.
    pub fn evaluation_order(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.matchers.iter().map(|m| (m.route, m.priority))
    }
}
