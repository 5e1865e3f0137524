//! Responses the gateway writes itself, with Kong's status codes and bodies.
//!
//! Kong distinguishes `kong.response.error` (JSON carries `request_id`) from
//! `kong.response.exit` (the body as given); both are built here so every local answer has the
//! same headers.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, SERVER};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::body::ProxyBody;

pub(crate) const SERVER_TOKEN: &str = concat!("gatehouse/", env!("CARGO_PKG_VERSION"));

/// Why the gateway answered instead of the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalError {
    BadRequest,
    NoRoute,
    /// Connection refused/reset, or an invalid upstream response.
    BadGateway,
    NameResolution,
    NoPeer,
    Timeout,
}

impl LocalError {
    fn status_and_message(self) -> (StatusCode, &'static str) {
        match self {
            LocalError::BadRequest => (StatusCode::BAD_REQUEST, "Bad request"),
            LocalError::NoRoute => (StatusCode::NOT_FOUND, "no Route matched with those values"),
            LocalError::BadGateway => (
                StatusCode::BAD_GATEWAY,
                "An invalid response was received from the upstream server",
            ),
            LocalError::NameResolution => {
                (StatusCode::SERVICE_UNAVAILABLE, "name resolution failed")
            }
            LocalError::NoPeer => (
                StatusCode::SERVICE_UNAVAILABLE,
                "failure to get a peer from the ring-balancer",
            ),
            LocalError::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "The upstream server is timed out",
            ),
        }
    }
}

/// `kong.response.error`: `{"message":…,"request_id":…}` (or HTML/XML/text per `Accept`).
pub(crate) fn error(
    e: LocalError,
    err: gatehouse_plugins::ErrorCtx<'_>,
    server_header: bool,
) -> Response<ProxyBody> {
    let (status, message) = e.status_and_message();
    plugin_exit(
        gatehouse_plugins::kong_error(status, message, err),
        server_header,
    )
}

/// `kong.response.exit(status, {message = …})`: no `request_id`.
pub(crate) fn exit_message(
    status: StatusCode,
    message: &str,
    server_header: bool,
) -> Response<ProxyBody> {
    plugin_exit(gatehouse_plugins::kong_exit(status, message), server_header)
}

/// An empty-bodied local response (redirects).
pub(crate) fn empty(status: StatusCode, server_header: bool) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::Local(Full::new(Bytes::new())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(0));
    if server_header {
        resp.headers_mut()
            .insert(SERVER, HeaderValue::from_static(SERVER_TOKEN));
    }
    resp
}

/// A plugin's early answer (`kong.response.exit` / `kong.response.error`).
pub(crate) fn plugin_exit(
    exit: gatehouse_plugins::Exit,
    server_header: bool,
) -> Response<ProxyBody> {
    let len = exit.body.len();
    let mut resp = Response::new(ProxyBody::Local(Full::new(exit.body)));
    *resp.status_mut() = exit.status;
    *resp.headers_mut() = exit.headers;
    let h = resp.headers_mut();
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    if server_header {
        h.insert(SERVER, HeaderValue::from_static(SERVER_TOKEN));
    }
    resp
}
