//! gRPC at the edge: Kong's answers for requests that do not fit a gRPC route, and gRPC-shaped
//! gateway errors.
//!
//! Kong (`runloop/handler.lua`, `pdk/response.lua`): a request matched by a grpc/grpcs route that
//! is not `application/grpc*` gets 415, one that is not HTTP/2 gets 426, a plain-text request on a
//! grpcs-only route gets `grpc-status: 1`. A gateway error for a gRPC request keeps its HTTP status
//! and carries `grpc-status` (mapped from it) and `grpc-message` headers, with no body, since a
//! gRPC client reads the status from there rather than from a JSON body.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode, Version};
use http_body_util::Full;

use crate::body::ProxyBody;
use crate::respond;

static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
static APPLICATION_GRPC: HeaderValue = HeaderValue::from_static("application/grpc");

/// `content-type: application/grpc…`.
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Kong's checks for a request matched by a grpc/grpcs-only route; `None` = proceed.
pub(crate) fn route_check(
    headers: &HeaderMap,
    version: Version,
    https: bool,
    grpcs_only: bool,
    server_header: bool,
) -> Option<Response<ProxyBody>> {
    if !is_grpc(headers) {
        return Some(respond::exit_message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Non-gRPC request matched gRPC route",
            server_header,
        ));
    }
    if version != Version::HTTP_2 {
        let mut resp = respond::exit_message(
            StatusCode::UPGRADE_REQUIRED,
            "Please use HTTP2 protocol",
            server_header,
        );
        let h = resp.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("HTTP/2"));
        return Some(resp);
    }
    if grpcs_only && !https {
        let mut resp = respond::empty(StatusCode::OK, server_header);
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, APPLICATION_GRPC.clone());
        h.insert(GRPC_STATUS.clone(), HeaderValue::from_static("1"));
        h.insert(
            GRPC_MESSAGE.clone(),
            HeaderValue::from_static("gRPC request matched gRPCs route"),
        );
        return Some(resp);
    }
    None
}

/// Kong's HTTP → gRPC status map for gateway errors.
fn grpc_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "0",
        400 => "3",  // INVALID_ARGUMENT
        401 => "16", // UNAUTHENTICATED
        403 => "7",  // PERMISSION_DENIED
        404 => "12", // UNIMPLEMENTED
        413 => "8",  // RESOURCE_EXHAUSTED
        429 => "8",
        500 => "13",       // INTERNAL
        502 | 503 => "14", // UNAVAILABLE
        504 => "4",        // DEADLINE_EXCEEDED
        _ => "2",          // UNKNOWN
    }
}

/// Rewrites a gateway-generated answer to a gRPC request: `grpc-status`/`grpc-message` from the
/// status and the JSON `message`, an empty body.
pub(crate) fn error_to_grpc(resp: &mut Response<ProxyBody>) {
    if resp.headers().contains_key(&GRPC_STATUS) {
        return; // already gRPC-shaped (the route checks above)
    }
    let message = match resp.body() {
        ProxyBody::Local(full) => message_of(full),
        ProxyBody::H1(_) | ProxyBody::H2(_) => None,
    };
    let status = grpc_status(resp.status());
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, APPLICATION_GRPC.clone());
    h.insert(GRPC_STATUS.clone(), HeaderValue::from_static(status));
    if let Some(m) = message.and_then(|m| HeaderValue::from_str(&m).ok()) {
        h.insert(GRPC_MESSAGE.clone(), m);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    *resp.body_mut() = ProxyBody::Local(Full::new(Bytes::new()));
}

/// The `message` of a Kong JSON error body, percent-encoded as gRPC requires for non-ASCII.
fn message_of(full: &Full<Bytes>) -> Option<String> {
    use http_body_util::BodyExt;
    use std::future::Future;
    // A `Full` body is ready at once: poll it once with a no-op waker.
    let mut fut = std::pin::pin!(full.clone().collect());
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let bytes = match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Ok(c)) => c.to_bytes(),
        _ => return None,
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let m = v.get("message")?.as_str()?;
    let mut out = String::with_capacity(m.len());
    for b in m.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Some(out)
}

/// An HTTP/2 upstream request carries scheme and authority in its URI (`:scheme`,
/// `:authority`); the authority is the Host the request path chose, which is then dropped as a
/// header. `te: trailers` is sent, as nginx's grpc proxy does.
pub(crate) fn h2_upstream_uri(parts: &mut http::request::Parts, tls: bool) {
    parts.version = Version::HTTP_2;
    // gRPC servers may insist on it; nginx's grpc_pass always sends it (the client's own `te`
    // was dropped as hop-by-hop).
    parts
        .headers
        .insert(header::TE, HeaderValue::from_static("trailers"));
    let Some(host) = parts.headers.remove(header::HOST) else {
        return;
    };
    let Ok(authority) = http::uri::Authority::try_from(host.as_bytes()) else {
        parts.headers.insert(header::HOST, host);
        return;
    };
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(if tls {
        http::uri::Scheme::HTTPS
    } else {
        http::uri::Scheme::HTTP
    });
    uri.authority = Some(authority);
    uri.path_and_query = parts.uri.path_and_query().cloned();
    if let Ok(u) = http::Uri::from_parts(uri) {
        parts.uri = u;
    }
}
