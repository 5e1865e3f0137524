//! cors (`kong/plugins/cors`, PRIORITY 2000): answers preflight requests (`OPTIONS` with
//! `Origin` and `Access-Control-Request-Method`) in access with 200 and the CORS headers, or
//! lets them through with `preflight_continue`; on other requests header_filter adds
//! `Access-Control-Allow-Origin` (+ `Vary: Origin` unless it is `*`), credentials and
//! exposed headers.
//!
//! Origins are normalised and regexes compiled once per config (Kong caches both per
//! worker); every constant header value is prebuilt, so a request clones reference-counted
//! values and allocates only when the allowed origin must be rewritten (a default port).

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::credentials::header_value;
use crate::ctx::{Exit, PluginState, RequestCtx};
use crate::error::FieldError;
use crate::schema::{one_of, Ty, F};

const METHODS: &[&str] = &[
    "GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

fn asterisk_or_regex(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or("");
    if s == "*" || Regex::new(s).is_ok() {
        Ok(())
    } else {
        Err(format!("'{s}' is not a valid regex"))
    }
}
fn method(v: &Value) -> Result<(), String> {
    one_of(v, METHODS)
}

pub(crate) static FIELDS: &[F] = &[
    F::opt("origins", Ty::StrArray).check(asterisk_or_regex),
    F::opt("headers", Ty::StrArray),
    F::opt("exposed_headers", Ty::StrArray),
    F::def("methods", Ty::StrArray, || json!(METHODS)).check(method),
    F::opt("max_age", Ty::Num),
    F::req("credentials", Ty::Bool, || json!(false)),
    F::req("private_network", Ty::Bool, || json!(false)),
    F::req("preflight_continue", Ty::Bool, || json!(false)),
    F::req("allow_origin_absent", Ty::Bool, || json!(true)),
];

/// `config` of cors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub origins: Option<Vec<String>>,
    pub headers: Option<Vec<String>>,
    pub exposed_headers: Option<Vec<String>>,
    pub methods: Option<Vec<String>>,
    pub max_age: Option<f64>,
    pub credentials: bool,
    pub private_network: bool,
    pub preflight_continue: bool,
    pub allow_origin_absent: bool,
}

pub(crate) fn check(_c: &Config, _errs: &mut Vec<FieldError>) {}

enum Domain {
    Any,
    Regex { re: Regex, by_host: bool },
    Exact(String),
}

enum Origins {
    /// No origins, or exactly `["*"]`.
    All,
    /// One origin that doesn't look like a regex: sent as is.
    Literal(HeaderValue),
    List(Vec<Domain>),
}

pub(crate) struct Compiled {
    pub config: Config,
    origins: Origins,
    allow_headers: Option<HeaderValue>,
    allow_methods: HeaderValue,
    expose: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
}

static STAR: HeaderValue = HeaderValue::from_static("*");
static TRUE: HeaderValue = HeaderValue::from_static("true");
static ORIGIN_V: HeaderValue = HeaderValue::from_static("Origin");
static ALLOW_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-allow-private-network");
static REQUEST_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-request-private-network");

fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'/' | b'-'))
}

/// luasocket-style origin normalisation: `(domain, host)`; default ports dropped.
fn normalize(origin: &str) -> (Cow<'_, str>, &str) {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return (Cow::Borrowed(origin), origin);
    };
    let auth = rest.split(['/', '?', '#']).next().unwrap_or("");
    let auth = auth.rsplit_once('@').map_or(auth, |(_, a)| a);
    let (host, port) = if let Some(stripped) = auth.strip_prefix('[') {
        match stripped.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => (auth, None),
        }
    } else {
        match auth.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (auth, None),
        }
    };
    if host.is_empty() {
        return (Cow::Borrowed(origin), origin);
    }
    let given = port;
    let port = port.filter(|p| {
        let default = matches!((scheme, *p), ("http", "80") | ("https", "443"));
        !p.is_empty() && !default
    });
    let dropped = given.is_some() && port.is_none();
    if rest.len() == auth.len() && !dropped && !auth.starts_with('[') {
        return (Cow::Borrowed(origin), host);
    }
    let len = scheme.len() + 3 + host.len() + port.map_or(0, |p| p.len() + 1);
    let mut d = String::with_capacity(len);
    d.push_str(scheme);
    d.push_str("://");
    d.push_str(host);
    if let Some(p) = port {
        d.push(':');
        d.push_str(p);
    }
    (Cow::Owned(d), host)
}

fn join(v: &[String]) -> HeaderValue {
    header_value(&v.join(","))
}

pub(crate) fn compile(config: Config) -> Compiled {
    let list = config.origins.as_deref().unwrap_or(&[]);
    let origins = if list.is_empty() || (list.len() == 1 && list[0] == "*") {
        Origins::All
    } else if list.len() == 1 && plain(&list[0]) {
        Origins::Literal(header_value(&list[0]))
    } else {
        Origins::List(
            list.iter()
                .filter_map(|e| {
                    if e == "*" {
                        return Some(Domain::Any);
                    }
                    let by_host = !e.contains(':');
                    if plain(e) {
                        return Some(Domain::Exact(normalize(e).0.into_owned()));
                    }
                    // Kong anchors at the start and appends `$` unless present.
                    let body = e.strip_prefix('^').unwrap_or(e);
                    let dollar = if body.ends_with('$') { "" } else { "$" };
                    Regex::new(&format!("^(?:{body}{dollar})"))
                        .ok()
                        .map(|re| Domain::Regex { re, by_host })
                })
                .collect(),
        )
    };
    let allow_headers = config
        .headers
        .as_deref()
        .filter(|h| !h.is_empty())
        .map(join);
    let allow_methods = config
        .methods
        .as_deref()
        .map_or(HeaderValue::from_static(""), join);
    let expose = config
        .exposed_headers
        .as_deref()
        .filter(|h| !h.is_empty())
        .map(join);
    let max_age = config.max_age.map(super::rate_limiting::num_header);
    Compiled {
        config,
        origins,
        allow_headers,
        allow_methods,
        expose,
        max_age,
    }
}

fn add_vary(h: &mut HeaderMap, header_filter: bool) {
    if header_filter {
        h.append(VARY, ORIGIN_V.clone());
    } else {
        h.insert(VARY, ORIGIN_V.clone());
    }
}

/// Kong's `configure_origin`: `true` when every origin is allowed (`*`).
fn configure_origin(
    c: &Compiled,
    h: &mut HeaderMap,
    header_filter: bool,
    origin: Option<&HeaderValue>,
) -> bool {
    let list = match &c.origins {
        Origins::All => {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, STAR.clone());
            return true;
        }
        Origins::Literal(v) => {
            add_vary(h, header_filter);
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v.clone());
            return false;
        }
        Origins::List(l) => l,
    };
    add_vary(h, header_filter);
    if let Some(ov) = origin {
        let o = ov.to_str().unwrap_or("");
        let (domain, host) = normalize(o);
        for d in list {
            let found = match d {
                Domain::Any => {
                    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, STAR.clone());
                    return true;
                }
                Domain::Regex { re, by_host } => re.is_match(if *by_host { host } else { &domain }),
                Domain::Exact(e) => *e == domain,
            };
            if found {
                let v = match &domain {
                    Cow::Borrowed(_) => ov.clone(),
                    Cow::Owned(s) => header_value(s),
                };
                h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
                return false;
            }
        }
    }
    h.remove(ACCESS_CONTROL_ALLOW_ORIGIN);
    false
}

fn configure_credentials(
    c: &Compiled,
    h: &mut HeaderMap,
    allow_all: bool,
    header_filter: bool,
    origin: Option<&HeaderValue>,
) {
    if !c.config.credentials {
        return;
    }
    if !allow_all {
        h.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE.clone());
        return;
    }
    // ACAC cannot be true with ACAO `*`: echo the origin instead.
    if let Some(o) = origin {
        add_vary(h, header_filter);
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
        h.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE.clone());
    }
}

/// Remembers the request's `Origin` for header_filter (also when the plugin is collected
/// but not run because an earlier plugin exited).
pub(crate) fn collect(st: &mut PluginState, req: &RequestCtx<'_>) {
    st.cors_origin = req.headers.get(ORIGIN).cloned();
}

pub(crate) fn access(c: &Compiled, st: &mut PluginState, req: &RequestCtx<'_>) -> Option<Exit> {
    if *req.method != Method::OPTIONS
        || st.cors_origin.is_none()
        || !req.headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    {
        return None;
    }
    st.cors_skip = true;
    if c.config.preflight_continue {
        return None;
    }
    let origin = st.cors_origin.as_ref();
    let mut h = HeaderMap::new();
    let all = configure_origin(c, &mut h, false, origin);
    configure_credentials(c, &mut h, all, false, origin);
    match (
        &c.allow_headers,
        req.headers.get(ACCESS_CONTROL_REQUEST_HEADERS),
    ) {
        (Some(v), _) | (None, Some(v)) => {
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
        }
        (None, None) => {}
    }
    h.insert(ACCESS_CONTROL_ALLOW_METHODS, c.allow_methods.clone());
    if let Some(m) = &c.max_age {
        h.insert(ACCESS_CONTROL_MAX_AGE, m.clone());
    }
    if c.config.private_network
        && req
            .headers
            .get(&REQUEST_PRIVATE_NETWORK)
            .is_some_and(|v| v == "true")
    {
        h.insert(ALLOW_PRIVATE_NETWORK.clone(), TRUE.clone());
    }
    Some(Exit {
        status: StatusCode::OK,
        headers: h,
        body: Bytes::new(),
    })
}

pub(crate) fn header_filter(c: &Compiled, st: &PluginState, h: &mut HeaderMap) {
    if st.cors_skip {
        return;
    }
    let origin = st.cors_origin.as_ref();
    if origin.is_none() && !c.config.allow_origin_absent {
        return;
    }
    let all = configure_origin(c, h, true, origin);
    configure_credentials(c, h, all, true, origin);
    if let Some(e) = &c.expose {
        h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, e.clone());
    }
}
