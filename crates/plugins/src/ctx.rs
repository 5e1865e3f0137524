//! What the proxy hands the plugins per request, and what the plugins hand back.
//!
//! Two halves, because their lifetimes differ: [`RequestCtx`] borrows the request (headers
//! are edited in place, so they *are* the upstream headers) and lives only through
//! rewrite/access; [`PluginState`] is owned, fixed-size (no heap unless a plugin's output
//! needs one) and lives until log, carrying identity (consumer, credential), the configs
//! resolved in access, and whatever a plugin must emit later in header_filter.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gatehouse_config::Protocol;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::body::BodyKind;
use crate::plugins::rate_limiting::RlOutput;
use crate::respond::ErrorCtx;

/// Upper bound of entries in one chain: one per distinct plugin name, and names are
/// restricted to Kong's bundled list.
pub const MAX_CHAIN: usize = 64;
pub(crate) const NONE: u32 = u32::MAX;

/// The borrowed view of the request for rewrite and access.
pub struct RequestCtx<'a> {
    pub method: &'a Method,
    /// The request path as Kong's `kong.request.get_path()` gives it (normalised, no query).
    pub path: &'a str,
    /// Raw query string without `?` (empty when none).
    pub query: &'a str,
    /// Request headers; plugins edit them in place (they become the upstream headers).
    pub headers: &'a mut HeaderMap,
    /// The client address after `trusted_ips`/`real_ip_header` (Kong's forwarded IP).
    pub client_ip: IpAddr,
    /// `http`, `https`, `grpc` or `grpcs`: plugins whose `protocols` lack it are skipped.
    pub protocol: Protocol,
    /// `X-Kong-Request-Id` value, for `kong.response.error` bodies.
    pub request_id: &'a str,
    /// Host and port the client addressed (request-termination `echo`).
    pub host: &'a str,
    pub port: u16,
    /// Wall clock in milliseconds since the epoch (rate-limiting windows). Set by
    /// [`RequestCtx::new`]; tests may override it.
    pub now_ms: i64,
    /// Local address and connection facts for correlation-id's `tracker` generator
    /// (nginx's `$server_addr`, `$connection`, `$connection_requests`).
    pub server_addr: IpAddr,
    pub connection: u64,
    pub connection_requests: u64,
    /// The whole request body, read before access when the chain asks for it
    /// ([`crate::Plugins::needs_body_in_access`]: key-auth `key_in_body`); `None` otherwise.
    pub body: Option<&'a [u8]>,
}

impl<'a> RequestCtx<'a> {
    pub fn new(
        method: &'a Method,
        path: &'a str,
        query: &'a str,
        headers: &'a mut HeaderMap,
        client_ip: IpAddr,
    ) -> RequestCtx<'a> {
        RequestCtx {
            method,
            path,
            query,
            headers,
            client_ip,
            protocol: Protocol::Http,
            request_id: "",
            host: "",
            port: 0,
            now_ms: now_ms(),
            server_addr: UNSPECIFIED_IP,
            connection: 0,
            connection_requests: 0,
            body: None,
        }
    }
}

impl RequestCtx<'_> {
    /// What a `kong.response.error` answer needs: the request id and the body type the
    /// request's `Accept` asks for (read only when a plugin answers with an error).
    pub fn err(&self) -> ErrorCtx<'_> {
        ErrorCtx::new(self.request_id, self.headers.get(http::header::ACCEPT))
    }
}

/// Current wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Which credential authenticated the request (index into the snapshot's credential tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialRef {
    KeyAuth(u32),
    BasicAuth(u32),
    Jwt(u32),
}

/// Per-request plugin state; create one per request with [`PluginState::new`] (it is plain
/// data, so a proxy thread may also keep one and [`PluginState::reset`] it).
pub struct PluginState {
    pub route: Option<usize>,
    pub service: Option<usize>,
    /// Index into `Config::consumers` of the authenticated (or anonymous) consumer.
    pub consumer: Option<u32>,
    pub credential: Option<CredentialRef>,
    /// Set when a plugin rewrote the query string (key-auth `hide_credentials`): the proxy
    /// must send this instead of the original query (`Some("")` = no query).
    pub query_rewrite: Option<String>,
    /// Set by request-transformer `replace.uri`: the proxy must send this path upstream
    /// (instead of the route/service path computation) — Kong's `kong.service.request.set_path`.
    pub path_rewrite: Option<String>,
    /// Set by request-transformer `http_method`: the upstream request method.
    pub method_rewrite: Option<Method>,
    /// Set by request-transformer `replace.headers = host:…`: the upstream `Host` (must win
    /// over the service host / preserve_host logic).
    pub host_rewrite: Option<HeaderValue>,
    /// Set by key-auth `hide_credentials` with `key_in_body`: the request body without the
    /// key; the proxy must send this instead of the body it read.
    pub body_rewrite: Option<Vec<u8>>,
    /// correlation-id value of this request (also what Kong's log serializer records).
    pub correlation_id: Option<HeaderValue>,
    /// A plugin ended the request in access.
    pub exited: bool,
    /// Config (instance index) resolved per chain entry in access; `NONE` = not applicable.
    pub(crate) resolved: [u32; MAX_CHAIN],
    pub(crate) resolved_len: u8,
    pub(crate) rl: RlOutput,
    /// cors: the request's `Origin` (kept for header_filter) and whether a preflight was
    /// answered or delegated (`kong.ctx.plugin.skip_response_headers`).
    pub(crate) cors_origin: Option<HeaderValue>,
    pub(crate) cors_skip: bool,
    /// request-size-limiting: byte limit the proxy must enforce while reading a body without
    /// (a valid) Content-Length.
    pub(crate) body_limit: Option<u64>,
    pub(crate) expect_continue: bool,
    /// request-transformer: the request body (JSON, form or multipart) must be buffered and
    /// transformed.
    pub(crate) request_body_transform: Option<BodyKind>,
    /// response-transformer: the response body must be buffered and transformed (JSON).
    pub(crate) response_body_transform: bool,
}

impl PluginState {
    pub fn new(route: Option<usize>, service: Option<usize>) -> PluginState {
        PluginState {
            route,
            service,
            consumer: None,
            credential: None,
            query_rewrite: None,
            exited: false,
            resolved: [NONE; MAX_CHAIN],
            resolved_len: 0,
            rl: RlOutput::default(),
            path_rewrite: None,
            method_rewrite: None,
            host_rewrite: None,
            correlation_id: None,
            body_rewrite: None,
            cors_origin: None,
            cors_skip: false,
            body_limit: None,
            expect_continue: false,
            response_body_transform: false,
            request_body_transform: None,
        }
    }

    pub fn reset(&mut self, route: Option<usize>, service: Option<usize>) {
        *self = PluginState::new(route, service);
    }
}

/// An early answer from access (`kong.response.exit` / `kong.response.error`). The proxy
/// sends it instead of proxying, after running [`crate::Plugins::run_header_filter`] on
/// `headers` (which adds e.g. rate-limiting headers) and later `run_log`.
#[derive(Debug)]
pub struct Exit {
    pub status: StatusCode,
    /// Content-Type and plugin headers (`WWW-Authenticate`, …). No Content-Length.
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Placeholder client address for contexts built without one.
pub const UNSPECIFIED_IP: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
