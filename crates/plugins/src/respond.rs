//! Kong's two ways for a plugin to answer (`kong/pdk/response.lua`):
//! `kong.response.error(status, message)` → a body in the type the client's `Accept` asks for
//! (Kong's `get_response_type`: JSON by default, else HTML, XML or plain text), carrying
//! `request_id`; and `kong.response.exit(status, body)` → the body as given, no `request_id`.
//! The JSON shape is the same compact one as the proxy's own answers.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::ctx::Exit;

pub(crate) static JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");
static HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
static XML: HeaderValue = HeaderValue::from_static("application/xml; charset=utf-8");
static TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// The body type of a `kong.response.error` answer, chosen from the request's `Accept`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorFormat {
    #[default]
    Json,
    Html,
    Xml,
    Text,
}

impl ErrorFormat {
    /// Kong's `get_response_type`: of the comma-separated media ranges, the first one with
    /// the highest `q` (> 0) decides; `*/*`, `application/*` and unknown types mean JSON,
    /// `text/*` plain text. No `Accept` (or an unreadable one) means JSON. No allocation.
    pub fn from_accept(accept: Option<&HeaderValue>) -> ErrorFormat {
        let Some(s) = accept.and_then(|v| v.to_str().ok()) else {
            return ErrorFormat::Json;
        };
        let mut best = ErrorFormat::Json;
        let mut max_q = 0.0f32;
        for range in s.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            let Some((ty, sub)) = media.split_once('/') else {
                continue;
            };
            let (ty, sub) = (ty.trim(), sub.trim());
            if ty.is_empty() || sub.is_empty() {
                continue;
            }
            let mut q = 1.0f32;
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        q = v.trim().parse().unwrap_or(1.0);
                    }
                }
            }
            if q > max_q {
                max_q = q;
                best = Self::of_media(ty, sub);
            }
        }
        best
    }

    fn of_media(ty: &str, sub: &str) -> ErrorFormat {
        let is = |a: &str, b: &str| ty.eq_ignore_ascii_case(a) && sub.eq_ignore_ascii_case(b);
        if is("text", "html") {
            ErrorFormat::Html
        } else if is("application", "xml") {
            ErrorFormat::Xml
        } else if is("text", "plain") || is("text", "*") {
            ErrorFormat::Text
        } else {
            ErrorFormat::Json
        }
    }
}

/// What a `kong.response.error` answer needs from its request.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorCtx<'a> {
    /// `X-Kong-Request-Id` of the request (empty: the field is left out of JSON bodies).
    pub request_id: &'a str,
    pub format: ErrorFormat,
}

impl<'a> ErrorCtx<'a> {
    /// From the request id and the request's `Accept` header.
    pub fn new(request_id: &'a str, accept: Option<&HeaderValue>) -> ErrorCtx<'a> {
        ErrorCtx {
            request_id,
            format: ErrorFormat::from_accept(accept),
        }
    }
}

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

/// HTML/XML text escaping (Kong formats the message in raw; escaping keeps a message that
/// echoes request data from becoming markup).
fn markup_escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// `kong.response.error`: one allocation for the body, in Kong's templates per type.
pub(crate) fn error(status: StatusCode, message: &str, ctx: ErrorCtx<'_>) -> Exit {
    let request_id = ctx.request_id;
    let mut body = String::with_capacity(160 + message.len() + request_id.len());
    let ct = match ctx.format {
        ErrorFormat::Json => {
            body.push_str("{\"message\":\"");
            json_escape_into(&mut body, message);
            if request_id.is_empty() {
                body.push_str("\"}");
            } else {
                body.push_str("\",\"request_id\":\"");
                json_escape_into(&mut body, request_id);
                body.push_str("\"}");
            }
            &JSON
        }
        ErrorFormat::Html => {
            body.push_str(
                "<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n    \
                 <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n    <p>",
            );
            markup_escape_into(&mut body, message);
            body.push_str(".</p>\n    <p>request_id: ");
            markup_escape_into(&mut body, request_id);
            body.push_str("</p>\n  </body>\n</html>\n");
            &HTML
        }
        ErrorFormat::Xml => {
            body.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n  <message>");
            markup_escape_into(&mut body, message);
            body.push_str("</message>\n  <requestid>");
            markup_escape_into(&mut body, request_id);
            body.push_str("</requestid>\n</error>\n");
            &XML
        }
        ErrorFormat::Text => {
            body.push_str(message);
            body.push_str("\nrequest_id: ");
            body.push_str(request_id);
            body.push('\n');
            &TEXT
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, ct.clone());
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
pub fn kong_error(status: StatusCode, message: &str, ctx: ErrorCtx<'_>) -> Exit {
    error(status, message, ctx)
}

/// `kong.response.exit(status, {message = …})`: JSON without `request_id`.
pub fn kong_exit(status: StatusCode, message: &str) -> Exit {
    exit(status, Some(&JSON), message_body(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_the_body_type_like_kong() {
        use ErrorFormat::*;
        let cases: &[(Option<&'static str>, ErrorFormat)] = &[
            (None, Json),
            (Some(""), Json),
            (Some("*/*"), Json),
            (Some("application/*"), Json),
            (Some("image/png"), Json),
            (Some("text/html"), Html),
            (Some("TEXT/HTML; charset=utf-8"), Html),
            (Some("application/xml"), Xml),
            (Some("text/plain"), Text),
            (Some("text/*"), Text),
            (Some("text/html;q=0.5, application/xml"), Xml),
            (Some("application/xml;q=0.9, text/html;q=0.95"), Html),
            (Some("text/html;q=0, text/plain;q=0.1"), Text),
            (Some("text/html, application/xml"), Html),
            (Some("garbage"), Json),
        ];
        for (accept, want) in cases {
            let v = accept.map(HeaderValue::from_static);
            assert_eq!(ErrorFormat::from_accept(v.as_ref()), *want, "{accept:?}");
        }
    }

    #[test]
    fn templates() {
        let ctx = |format| ErrorCtx {
            request_id: "rid",
            format,
        };
        let body = |f| {
            let e = error(StatusCode::UNAUTHORIZED, "a <b>", ctx(f));
            String::from_utf8(e.body.to_vec()).unwrap_or_default()
        };
        assert_eq!(
            body(ErrorFormat::Json),
            r#"{"message":"a <b>","request_id":"rid"}"#
        );
        assert_eq!(body(ErrorFormat::Text), "a <b>\nrequest_id: rid\n");
        assert!(body(ErrorFormat::Html).contains("<p>a &lt;b&gt;.</p>\n    <p>request_id: rid</p>"));
        assert!(body(ErrorFormat::Xml)
            .contains("<message>a &lt;b&gt;</message>\n  <requestid>rid</requestid>"));
    }
}
