//! Responses the gateway writes itself, with Kong's status codes and bodies.
//!
//! Kong distinguishes `kong.response.error` (JSON carries `request_id`) from
//! `kong.response.exit` (the body as given); both are built here so every local answer has the
//! same headers.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, SERVER};
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

fn json_escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

/// `kong.response.error`: `{"message":…,"request_id":…}`.
pub(crate) fn error(e: LocalError, request_id: &str, server_header: bool) -> Response<ProxyBody> {
    let (status, message) = e.status_and_message();
    let mut body = String::with_capacity(64 + message.len() + request_id.len());
    body.push_str("{\"message\":\"");
    json_escape_into(&mut body, message);
    if request_id.is_empty() {
        body.push_str("\"}");
    } else {
        body.push_str("\",\"request_id\":\"");
        json_escape_into(&mut body, request_id);
        body.push_str("\"}");
    }
    json(status, body, server_header)
}

/// `kong.response.exit(status, {message = …})`: no `request_id`.
pub(crate) fn exit_message(
    status: StatusCode,
    message: &str,
    server_header: bool,
) -> Response<ProxyBody> {
    let mut body = String::with_capacity(16 + message.len());
    body.push_str("{\"message\":\"");
    json_escape_into(&mut body, message);
    body.push_str("\"}");
    json(status, body, server_header)
}

fn json(status: StatusCode, body: String, server_header: bool) -> Response<ProxyBody> {
    let len = body.len();
    let mut resp = Response::new(ProxyBody::Local(Full::new(Bytes::from(body))));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    if server_header {
        h.insert(SERVER, HeaderValue::from_static(SERVER_TOKEN));
    }
    resp
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
