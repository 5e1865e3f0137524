//! Kong's two ways for a plugin to answer (`kong/pdk/response.lua`):
//! `kong.response.error(status, message)` → `{"message":…,"request_id":…}` (JSON only for
//! now; Kong also picks HTML/XML/text from `Accept`), and `kong.response.exit(status, body)`
//! → the body as given, no `request_id`. Same compact JSON shape as the proxy's own answers.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::ctx::Exit;

pub(crate) static JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

pub(crate) fn json_escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 15] as char);
            }
            c => out.push(c),
        }
    }
}

/// `kong.response.error`: one allocation for the body.
pub(crate) fn error(status: StatusCode, message: &str, request_id: &str) -> Exit {
    let mut body = String::with_capacity(40 + message.len() + request_id.len());
    body.push_str("{\"message\":\"");
    json_escape_into(&mut body, message);
    if request_id.is_empty() {
        body.push_str("\"}");
    } else {
        body.push_str("\",\"request_id\":\"");
        json_escape_into(&mut body, request_id);
        body.push_str("\"}");
    }
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, JSON.clone());
    Exit {
        status,
        headers,
        body: Bytes::from(body),
    }
}

/// `{"message":…}` without `request_id`, prebuilt once per plugin config.
pub(crate) fn message_body(message: &str) -> Bytes {
    let mut body = String::with_capacity(16 + message.len());
    body.push_str("{\"message\":\"");
    json_escape_into(&mut body, message);
    body.push_str("\"}");
    Bytes::from(body)
}

/// `kong.response.exit(status, body, {Content-Type = …})`.
pub(crate) fn exit(status: StatusCode, content_type: Option<&HeaderValue>, body: Bytes) -> Exit {
    let mut headers = HeaderMap::new();
    if let Some(ct) = content_type {
        headers.insert(CONTENT_TYPE, ct.clone());
    }
    Exit {
        status,
        headers,
        body,
    }
}

/// `kong.response.error(status, message)` for answers the gateway itself gives (404, 502, …),
/// so the proxy and the plugins render Kong's bodies in one place.
pub fn kong_error(status: StatusCode, message: &str, request_id: &str) -> Exit {
    error(status, message, request_id)
}

/// `kong.response.exit(status, {message = …})`: JSON without `request_id`.
pub fn kong_exit(status: StatusCode, message: &str) -> Exit {
    exit(status, Some(&JSON), message_body(message))
}
