//! One compiled matcher per (sub-)route: Kong's `traditional_compatible` translation of the
//! classic route fields (`transform.lua get_expression`) and its 64-bit priority
//! (`transform.lua get_priority`), evaluated directly instead of through an expression engine.
//!
//! Everything that can be computed from the configuration is computed here, once, at build:
//! host splitting, wildcard kinds, lowered header values, compiled regexes. Matching a request
//! only compares bytes and runs precompiled regexes, so it never allocates.

use gatehouse_config::Route;
use regex::Regex;
use uuid::Uuid;

use crate::expr::Expr;
use crate::{Headers, Request, RequestExtra};

/// Kong's priority bits (kong.md 2.4).
const WEIGHT_SHIFT: u32 = 61;
const PLAIN_HOST_ONLY_BIT: u64 = 1 << 60;
const HEADER_COUNT_SHIFT: u32 = 52;
const MAX_HEADER_COUNT: u64 = 255;
const REGEX_URL_BIT: u64 = 1 << 51;
const REGEX_PRIORITY_SHIFT: u32 = 19;
const MAX_LENGTH_MASK: u64 = 0x7FFFF;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Affix {
    /// `h`: the whole host.
    Exact,
    /// `*.x`: the host ends with `.x` (one or more labels before it).
    Suffix,
    /// `x.*`: the host starts with `x.`.
    Prefix,
}

/// A `hosts` or `snis` entry.
#[derive(Debug)]
struct NamePattern {
    affix: Affix,
    text: Box<str>,
    /// `host:port` entries pin `net.dst.port`.
    port: Option<u64>,
}

impl NamePattern {
    fn matches(&self, name: &str) -> bool {
        match self.affix {
            Affix::Exact => name == &*self.text,
            Affix::Suffix => name.ends_with(&*self.text),
            Affix::Prefix => name.starts_with(&*self.text),
        }
    }
}

#[derive(Debug)]
enum PathGroup {
    /// The route has no paths.
    Any,
    /// Byte prefixes (all the same length after splitting).
    Prefix(Vec<Box<str>>),
    /// `~` paths compiled as `^` + pattern, with each pattern's literal prefix (for the index).
    Regex(Vec<LazyRegex>, Vec<Box<str>>),
}

#[derive(Debug)]
enum HeaderValue {
    /// Lower-cased (ASCII, like Lua's `lower`) expected value.
    Equals(Box<str>),
    /// `~*` value: the pattern lower-cased, matched against the lower-cased request value.
    /// `folded` is the same pattern compiled case-insensitively, used for request values that
    /// cannot be lower-cased without allocating.
    Regex { exact: Regex, folded: Regex },
}

/// One `headers` entry: a request value of `name` must match one of `values`.
#[derive(Debug)]
struct HeaderMatcher {
    /// Lower-case with `-` (Kong reads `http.headers.x_y` from the `x-y` header).
    name: Box<str>,
    values: Vec<HeaderValue>,
}

/// Longest ASCII header value lower-cased on the stack for an exact regex match.
const STACK_LOWER: usize = 256;

impl HeaderMatcher {
    fn matches(&self, headers: &dyn Headers) -> bool {
        headers.any_value(&self.name, &mut |v| {
            self.values.iter().any(|p| value_matches(p, v))
        })
    }
}

fn value_matches(pattern: &HeaderValue, value: &str) -> bool {
    match pattern {
        HeaderValue::Equals(expected) => {
            if value.is_ascii() {
                value.len() == expected.len()
                    && value
                        .bytes()
                        .zip(expected.bytes())
                        .all(|(a, b)| a.to_ascii_lowercase() == b)
            } else {
                value
                    .chars()
                    .flat_map(char::to_lowercase)
                    .eq(expected.chars())
            }
        }
        HeaderValue::Regex { exact, folded } => {
            if !value.bytes().any(|b| b.is_ascii_uppercase()) && value.is_ascii() {
                return exact.is_match(value);
            }
            if value.is_ascii() && value.len() <= STACK_LOWER {
                let mut buf = [0u8; STACK_LOWER];
                let lowered = &mut buf[..value.len()];
                lowered.copy_from_slice(value.as_bytes());
                lowered.make_ascii_lowercase();
                if let Ok(s) = std::str::from_utf8(lowered) {
                    return exact.is_match(s);
                }
            }
            folded.is_match(value)
        }
    }
}

/// How a route takes `net.protocol` into account.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProtocolFilter {
    pub http: bool,
    pub https: bool,
}

/// A compiled (sub-)route.
#[derive(Debug)]
pub(crate) struct Matcher {
    pub priority: u64,
    /// The route id, or the derived id of a split sub-route (the tie-break key).
    pub id: Uuid,
    pub route: usize,
    pub service: Option<usize>,
    strip_path: bool,
    methods: Vec<Box<str>>,
    hosts: Vec<NamePattern>,
    paths: PathGroup,
    headers: Vec<HeaderMatcher>,
    snis: Vec<NamePattern>,
    /// Expressions flavor only: Kong adds protocol predicates to classic routes there.
    protocols: Option<ProtocolFilter>,
    /// An `expression` route: the classic fields above are empty.
    expr: Option<Box<Expr>>,
}

/// Everything a matcher reads from one request, with the Host port already split off.
pub(crate) struct Ctx<'r, 'a> {
    pub req: &'r Request<'a>,
    pub extra: &'r RequestExtra<'a>,
    pub host: &'r str,
    /// `net.dst.port`: the Host header's port, else the connection's.
    pub port: u64,
}

impl<'r, 'a> Ctx<'r, 'a> {
    pub(crate) fn new(req: &'r Request<'a>, extra: &'r RequestExtra<'a>) -> Self {
        let (host, host_port) = split_host_port(req.host);
        Ctx {
            req,
            extra,
            host,
            port: host_port.unwrap_or(u64::from(req.dst_port)),
        }
    }
}

/// What a successful matcher reports about the path.
pub(crate) struct PathHit {
    pub strip_len: usize,
}

/// The request's `Host` split as Kong's `split_host_port` does: at the first `:`, and only when
/// the rest is a number.
pub(crate) fn split_host_port(host: &str) -> (&str, Option<u64>) {
    match host.split_once(':') {
        Some((h, p)) if !p.is_empty() && p.len() <= 19 && p.bytes().all(|b| b.is_ascii_digit()) => {
            (h, p.parse().ok())
        }
        _ => (host, None),
    }
}

fn host_pattern(entry: &str) -> NamePattern {
    let (host, port) = split_host_port(entry);
    let (affix, text) = if let Some(rest) = host.strip_prefix('*') {
        (Affix::Suffix, rest)
    } else if let Some(rest) = host.strip_suffix('*') {
        (Affix::Prefix, rest)
    } else {
        (Affix::Exact, host)
    };
    NamePattern {
        affix,
        text: text.into(),
        port,
    }
}

fn sni_pattern(entry: &str) -> NamePattern {
    if let Some(rest) = entry.strip_prefix('*') {
        let rest = if entry.len() > 1 {
            rest.strip_suffix('.').unwrap_or(rest)
        } else {
            rest
        };
        return NamePattern {
            affix: Affix::Suffix,
            text: rest.into(),
            port: None,
        };
    }
    if let Some(rest) = entry.strip_suffix('*') {
        return NamePattern {
            affix: Affix::Prefix,
            text: rest.into(),
            port: None,
        };
    }
    let text = if entry.len() > 1 {
        entry.strip_suffix('.').unwrap_or(entry)
    } else {
        entry
    };
    NamePattern {
        affix: Affix::Exact,
        text: text.into(),
        port: None,
    }
}

/// Whether a path is a regex (`~` prefix, Kong's `is_regex_magic`).
pub(crate) fn is_regex_path(p: &str) -> bool {
    p.starts_with('~')
}

/// The literal text every match of `^pattern` starts with, conservatively: stops at the first
/// metacharacter, drops the last literal when a `*`, `?` or `{` quantifier may remove it, and is
/// empty when the pattern has an alternation anywhere (`^a|b` is unanchored on the right).
pub(crate) fn regex_literal_prefix(pattern: &str) -> &str {
    if pattern.contains('|') {
        return "";
    }
    let mut last_start = 0;
    for (i, c) in pattern.char_indices() {
        if matches!(
            c,
            '\\' | '.' | '[' | ']' | '(' | ')' | '{' | '}' | '*' | '+' | '?' | '^' | '$' | '#'
        ) || c.is_whitespace()
        {
            return if matches!(c, '*' | '?' | '{') {
                &pattern[..last_start]
            } else {
                &pattern[..i]
            };
        }
        last_start = i;
    }
    pattern
}

/// A path regex checked at build but compiled on first use: compiling thousands of Unicode
/// regexes (`\d` is a large class) dominated the build of a 10k-route router and its memory,
/// while most routes see no traffic. Compilation happens once per router, shared by all threads.
#[derive(Debug)]
pub(crate) struct LazyRegex {
    pattern: Box<str>,
    compiled: std::sync::OnceLock<Option<Regex>>,
}

impl LazyRegex {
    /// The compiled regex; `None` only when it exceeds the regex crate's size limits, in which
    /// case the path never matches (a checked-but-uncompilable pattern is vanishingly rare).
    fn get(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| Regex::new(&self.pattern).ok())
            .as_ref()
    }
}

fn compile_path_regex(p: &str) -> Result<LazyRegex, String> {
    let body = p.get(1..).unwrap_or("").replace("?<", "?P<");
    let pattern = format!("^{body}");
    regex_syntax::ParserBuilder::new()
        .build()
        .parse(&pattern)
        .map_err(|e| format!("invalid regex path {p:?}: {e}"))?;
    Ok(LazyRegex {
        pattern: pattern.into(),
        compiled: std::sync::OnceLock::new(),
    })
}

fn compile_header(name: &str, values: &[String]) -> Result<HeaderMatcher, String> {
    let name: String = name
        .chars()
        .map(|c| {
            if c == '_' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let mut compiled = Vec::with_capacity(values.len());
    for v in values {
        if let Some(re) = v.strip_prefix("~*") {
            let pattern = re.to_ascii_lowercase();
            let exact =
                Regex::new(&pattern).map_err(|e| format!("invalid regex in header {name}: {e}"))?;
            let folded = Regex::new(&format!("(?i:{pattern})"))
                .map_err(|e| format!("invalid regex in header {name}: {e}"))?;
            compiled.push(HeaderValue::Regex { exact, folded });
        } else {
            compiled.push(HeaderValue::Equals(v.to_ascii_lowercase().into()));
        }
    }
    Ok(HeaderMatcher {
        name: name.into(),
        values: compiled,
    })
}

fn non_empty<T>(v: &Option<Vec<T>>) -> Option<&[T]> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// Kong's compat priority for `route` restricted to `paths` (one regex-or-length group).
pub(crate) fn priority(route: &Route, paths: &[&str]) -> u64 {
    let mut weight: u64 = 0;
    let header_count = route.headers.as_ref().map_or(0, |h| h.len() as u64);
    for present in [
        non_empty(&route.sources).is_some(),
        non_empty(&route.destinations).is_some(),
        non_empty(&route.methods).is_some(),
        non_empty(&route.hosts).is_some(),
        header_count > 0,
        non_empty(&route.snis).is_some(),
        !paths.is_empty(),
    ] {
        weight += u64::from(present);
    }
    let plain_host_only = route
        .hosts
        .as_ref()
        .is_some_and(|hosts| hosts.iter().all(|h| !h.contains('*')));
    let regex_url = paths.first().is_some_and(|p| is_regex_path(p));
    let uri_length = if regex_url {
        0
    } else {
        paths.first().map_or(0, |p| p.len() as u64)
    };
    // Kong shifts the (possibly negative) regex_priority as a 64-bit integer.
    let regex_priority = if regex_url {
        (route.regex_priority as u64).wrapping_shl(REGEX_PRIORITY_SHIFT)
    } else {
        0
    };

    (weight << WEIGHT_SHIFT)
        | if plain_host_only {
            PLAIN_HOST_ONLY_BIT
        } else {
            0
        }
        | (header_count.min(MAX_HEADER_COUNT) << HEADER_COUNT_SHIFT)
        | if regex_url { REGEX_URL_BIT } else { 0 }
        | regex_priority
        | (uri_length & MAX_LENGTH_MASK)
}

impl Matcher {
    /// Compiles `route` restricted to `paths` (a group from [`crate::split::group_paths`], or
    /// empty for a route without paths).
    pub(crate) fn compile(
        route: &Route,
        route_idx: usize,
        service: Option<usize>,
        id: Uuid,
        paths: &[&str],
        protocols: Option<ProtocolFilter>,
    ) -> Result<Matcher, String> {
        let methods = non_empty(&route.methods)
            .unwrap_or(&[])
            .iter()
            .map(|m| m.as_str().into())
            .collect();
        let hosts = non_empty(&route.hosts)
            .unwrap_or(&[])
            .iter()
            .map(|h| host_pattern(h))
            .collect();
        let snis = non_empty(&route.snis)
            .unwrap_or(&[])
            .iter()
            .map(|s| sni_pattern(s))
            .collect();
        let paths_group = match paths.first() {
            None => PathGroup::Any,
            Some(p) if is_regex_path(p) => PathGroup::Regex(
                paths
                    .iter()
                    .map(|p| compile_path_regex(p))
                    .collect::<Result<_, _>>()?,
                paths
                    .iter()
                    .map(|p| regex_literal_prefix(p.get(1..).unwrap_or("")).into())
                    .collect(),
            ),
            Some(_) => PathGroup::Prefix(paths.iter().map(|p| (*p).into()).collect()),
        };
        let mut headers = Vec::new();
        if let Some(map) = &route.headers {
            for (name, values) in map {
                if values.is_empty() {
                    return Err(format!("header {name:?} has no values"));
                }
                headers.push(compile_header(name, values)?);
            }
        }
        let m = Matcher {
            priority: priority(route, paths),
            id,
            route: route_idx,
            service,
            strip_path: route.strip_path,
            methods,
            hosts,
            paths: paths_group,
            headers,
            snis,
            protocols,
            expr: None,
        };
        if m.methods.is_empty()
            && m.hosts.is_empty()
            && matches!(m.paths, PathGroup::Any)
            && m.headers.is_empty()
            && m.snis.is_empty()
        {
            return Err("route has none of methods, hosts, paths, headers, snis".into());
        }
        Ok(m)
    }

    /// Compiles an `expression` route (its priority already boosted by the caller).
    pub(crate) fn compile_expr(
        route: &Route,
        route_idx: usize,
        service: Option<usize>,
        expr: Expr,
        priority: u64,
        protocols: Option<ProtocolFilter>,
    ) -> Matcher {
        Matcher {
            priority,
            id: route.id,
            route: route_idx,
            service,
            strip_path: route.strip_path,
            methods: Vec::new(),
            hosts: Vec::new(),
            paths: PathGroup::Any,
            headers: Vec::new(),
            snis: Vec::new(),
            protocols,
            expr: Some(Box::new(expr)),
        }
    }

    /// Evaluates the matcher.
    #[inline]
    pub(crate) fn matches(&self, cx: &Ctx<'_, '_>) -> Option<PathHit> {
        self.check(cx).ok()
    }

    /// Evaluates the matcher, cheap byte comparisons first, regexes last; on a miss, names the
    /// first field that did not match (for [`crate::Router::explain`]).
    pub(crate) fn check(&self, cx: &Ctx<'_, '_>) -> Result<PathHit, &'static str> {
        let req = cx.req;
        if let Some(p) = self.protocols {
            if !(if req.https { p.https } else { p.http }) {
                return Err("net.protocol");
            }
        }
        if let Some(expr) = &self.expr {
            let len = expr.eval(cx).ok_or("expression")?;
            return Ok(PathHit {
                strip_len: if self.strip_path { len } else { 0 },
            });
        }
        if !self.methods.is_empty() && !self.methods.iter().any(|m| **m == *req.method) {
            return Err("http.method");
        }
        if !self.hosts.is_empty()
            && !self
                .hosts
                .iter()
                .any(|h| h.port.is_none_or(|p| p == cx.port) && h.matches(cx.host))
        {
            return Err("http.host");
        }
        if req.https && !self.snis.is_empty() {
            let sni = req.sni.ok_or("tls.sni")?;
            if !self.snis.iter().any(|s| s.matches(sni)) {
                return Err("tls.sni");
            }
        }
        let matched_len = match &self.paths {
            PathGroup::Any => 0,
            PathGroup::Prefix(prefixes) => prefixes
                .iter()
                .find(|p| req.path.starts_with(&***p))
                .ok_or("http.path")?
                .len(),
            PathGroup::Regex(..) => 0, // evaluated last, below
        };
        if !self.headers.iter().all(|h| h.matches(req.headers)) {
            return Err("http.headers");
        }
        let matched_len = match &self.paths {
            PathGroup::Regex(regexes, _) => regexes
                .iter()
                .find_map(|re| re.get()?.find(req.path))
                .ok_or("http.path")?
                .len(),
            _ => matched_len,
        };
        Ok(PathHit {
            strip_len: if self.strip_path { matched_len } else { 0 },
        })
    }

    /// The exact hosts one of which the request must carry, or `None` when the matcher has
    /// no hosts or a wildcard one (index by host).
    pub(crate) fn exact_hosts(&self) -> Option<Vec<&str>> {
        if let Some(e) = &self.expr {
            return e.required_host().map(|h| vec![h]);
        }
        if self.hosts.is_empty() || self.hosts.iter().any(|h| h.affix != Affix::Exact) {
            return None;
        }
        Some(self.hosts.iter().map(|h| &*h.text).collect())
    }

    /// Literal path prefixes one of which the request path must start with, or `None` when
    /// any path can match (index by path prefix).
    pub(crate) fn path_prefixes(&self) -> Option<Vec<&str>> {
        if let Some(e) = &self.expr {
            return e.required_path_prefix().map(|p| vec![p]);
        }
        match &self.paths {
            PathGroup::Any => None,
            PathGroup::Prefix(p) => Some(p.iter().map(|s| &**s).collect()),
            PathGroup::Regex(_, lits) => {
                if lits.iter().any(|l| l.is_empty()) {
                    None
                } else {
                    Some(lits.iter().map(|s| &**s).collect())
                }
            }
        }
    }

    /// The request fields this matcher reads, for the cache key.
    pub(crate) fn uses(&self, spec: &mut crate::cache::KeySpec) {
        spec.method |= !self.methods.is_empty();
        spec.host |= !self.hosts.is_empty();
        spec.port |= self.hosts.iter().any(|h| h.port.is_some());
        spec.sni |= !self.snis.is_empty();
        for h in &self.headers {
            spec.add_header(&h.name);
        }
        if let Some(e) = &self.expr {
            e.uses(spec);
        }
    }

    /// Whether this is an `expression` route.
    pub(crate) fn is_expression(&self) -> bool {
        self.expr.is_some()
    }
}
