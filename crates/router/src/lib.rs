//! Kong-compatible request routing: `router_flavor = traditional_compatible` and `expressions`.
//!
//! Kong 3.x turns every classic route into an ATC expression with a computed 64-bit priority
//! and evaluates the matchers from the highest (priority, id) down, stopping at the first match.
//! This crate reproduces that observable behaviour without an expression engine: each route (or
//! each group of a split multi-path route) is compiled once into a [`matcher`] holding
//! precompiled patterns, the matchers are kept in one `Vec` sorted by (priority, id) descending,
//! and [`Router::find`] evaluates them in that order. Keeping the order in a plain `Vec` lets the
//! per-field [`index`] hand back candidate positions in the same order, so only the matchers that
//! can match a request are evaluated. `find` does not allocate. Expression routes are parsed by
//! [`expr`] into the same kind of matcher. A per-thread [`MatchCache`] sits in front of it all.
//!
//! Fuzzing (nightly + cargo-fuzz, not part of CI): `cargo +nightly fuzz run expr_parse` and
//! `cargo +nightly fuzz run path_normalize` from the repository root (see `fuzz/`).
//!
//! Path normalisation and the upstream path live in [`path`]; the caller normalises the request
//! path before calling [`Router::find`] and builds the upstream path from the [`Match`].
#![forbid(unsafe_code)]

mod cache;
mod explain;
pub mod expr;
mod index;
mod matcher;
pub mod path;
mod split;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

pub use cache::{CacheStats, KeySpec, MatchCache, MAX_KEY};
pub use explain::{Candidate, Explanation, Outcome, PriorityBreakdown};

use gatehouse_config::{Config, Protocol, RouterFlavor};
use uuid::Uuid;

use matcher::{Ctx, Matcher, ProtocolFilter};

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

/// Request data only expression routes read (`net.src.*`, `net.dst.ip`, `http.queries.*`).
/// Kept out of [`Request`] so that existing constructors stay valid; pass it to the `*_with`
/// methods. Missing data makes the predicates that read it false, as in Kong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestExtra<'a> {
    /// Client address (`net.src.ip`, `net.src.port`).
    pub src: Option<SocketAddr>,
    /// Local address the connection arrived on (`net.dst.ip`).
    pub dst_ip: Option<IpAddr>,
    /// The raw query string, without `?` (`http.queries.*`).
    pub query: Option<&'a str>,
}

impl<'a> RequestExtra<'a> {
    /// No extra data.
    pub const NONE: RequestExtra<'static> = RequestExtra {
        src: None,
        dst_ip: None,
        query: None,
    };

    /// Sets the connection's addresses.
    pub fn with_net(self, src: SocketAddr, dst_ip: IpAddr) -> Self {
        RequestExtra {
            src: Some(src),
            dst_ip: Some(dst_ip),
            ..self
        }
    }

    /// Sets the raw query string (without `?`).
    pub fn with_query(self, query: &'a str) -> Self {
        RequestExtra {
            query: Some(query),
            ..self
        }
    }
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
    /// A bad `expression` (syntax, unknown field, type mismatch, bad regex).
    #[error("route {route}: expression: {error}")]
    Expression {
        route: String,
        /// Always `"expression"` (the route field at fault), for Kong's error shape.
        field: &'static str,
        error: expr::ExprError,
    },
}

/// Source of [`Router::generation`] values.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// The compiled routing table; immutable and cheap to share between threads.
#[derive(Debug)]
pub struct Router {
    /// Sorted by (priority, id) descending: evaluation order.
    matchers: Vec<Matcher>,
    index: index::Index,
    key_spec: KeySpec,
    generation: u64,
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
            let protocols = if expressions {
                expressions_protocols(&route.protocols)
            } else {
                None
            };
            if let Some(source) = &route.expression {
                if !expressions {
                    return Err(invalid(
                        "expression routes need router_flavor = expressions".into(),
                    ));
                }
                let e = expr::Expr::parse(source).map_err(|error| RouterError::Expression {
                    route: route.name.clone().unwrap_or_else(|| route.id.to_string()),
                    field: "expression",
                    error,
                })?;
                let priority = (0xFF << 56) | route.priority.unwrap_or(0);
                matchers.push(Matcher::compile_expr(
                    route, idx, service, e, priority, protocols,
                ));
                continue;
            }
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
        let index = index::Index::build(&matchers);
        let mut key_spec = KeySpec::default();
        for m in &matchers {
            m.uses(&mut key_spec);
        }
        Ok(Router {
            matchers,
            index,
            key_spec,
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Identifies this router instance (unique per process); caches compare it to flush.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The highest-priority route matching `req`, if any. Evaluates only the candidates the
    /// index selects; does not allocate.
    pub fn find(&self, req: &Request<'_>) -> Option<Match> {
        self.find_with(req, &RequestExtra::NONE)
    }

    /// [`Router::find`] with the optional request data expressions may read.
    pub fn find_with(&self, req: &Request<'_>, extra: &RequestExtra<'_>) -> Option<Match> {
        let cx = Ctx::new(req, extra);
        let eval = |i: usize| {
            let m = self.matchers.get(i)?;
            m.matches(&cx).map(|hit| Match {
                route: m.route,
                service: m.service,
                strip_len: hit.strip_len,
            })
        };
        match self.index.find(cx.host, req.path, eval) {
            Ok(found) => found,
            Err(()) => self.scan(&cx),
        }
    }

    /// The reference implementation: every matcher in evaluation order (what Kong's ATC
    /// router does). Public for differential tests and benchmarks.
    #[doc(hidden)]
    pub fn find_linear(&self, req: &Request<'_>, extra: &RequestExtra<'_>) -> Option<Match> {
        self.scan(&Ctx::new(req, extra))
    }

    fn scan(&self, cx: &Ctx<'_, '_>) -> Option<Match> {
        self.matchers.iter().find_map(|m| {
            m.matches(cx).map(|hit| Match {
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
