//! request-size-limiting (`kong/plugins/request-size-limiting`, PRIORITY 951): refuse
//! bodies above `allowed_payload_size` × `size_unit`: 413 (417 with `Expect: 100-continue`)
//! `Request size limit exceeded`; 411 when `require_content_length` and neither a valid
//! Content-Length nor chunked encoding is given.
//!
//! A Content-Length is judged in access. Without one Kong reads the whole body first; here
//! the limit is handed to the proxy ([`crate::Plugins::request_body_limit`]) which counts
//! bytes while streaming and answers with [`crate::Plugins::request_body_too_large`] as soon
//! as the limit is passed — same answer, no buffering.

use http::header::{CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ctx::{Exit, PluginState, RequestCtx};
use crate::error::FieldError;
use crate::respond::{self, ErrorCtx};
use crate::schema::{one_of, Ty, F};

fn unit(v: &Value) -> Result<(), String> {
    one_of(v, &["megabytes", "kilobytes", "bytes"])
}

pub(crate) static FIELDS: &[F] = &[
    F::def("allowed_payload_size", Ty::Int, || json!(128)),
    F::req("size_unit", Ty::Str, || json!("megabytes")).check(unit),
    F::req("require_content_length", Ty::Bool, || json!(false)),
];

/// `config` of request-size-limiting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub allowed_payload_size: i64,
    pub size_unit: String,
    pub require_content_length: bool,
}

pub(crate) fn check(_c: &Config, _errs: &mut Vec<FieldError>) {}

pub(crate) struct Compiled {
    pub config: Config,
    /// Allowed bytes (a negative size allows nothing).
    limit: u64,
}

pub(crate) fn compile(config: Config) -> Compiled {
    let factor: i64 = match config.size_unit.as_str() {
        "bytes" => 1,
        "kilobytes" => 1024,
        _ => 1_048_576,
    };
    let limit = config.allowed_payload_size.saturating_mul(factor).max(0) as u64;
    Compiled { config, limit }
}

pub(crate) const MESSAGE: &str = "Request size limit exceeded";

pub(crate) fn too_large(expect_continue: bool, err: ErrorCtx<'_>) -> Exit {
    let status = if expect_continue {
        StatusCode::EXPECTATION_FAILED
    } else {
        StatusCode::PAYLOAD_TOO_LARGE
    };
    respond::error(status, MESSAGE, err)
}

/// Lua's `tonumber` on a header value: surrounding spaces allowed, decimal only here.
fn lua_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

pub(crate) fn access(c: &Compiled, st: &mut PluginState, req: &RequestCtx<'_>) -> Option<Exit> {
    let h = &*req.headers;
    let expect_continue = h
        .get(EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    let cl = h
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(lua_number);
    if let Some(len) = cl {
        return (len > c.limit as f64).then(|| too_large(expect_continue, req.err()));
    }
    let chunked = h
        .get(TRANSFER_ENCODING)
        .is_some_and(|v| v.as_bytes() == b"chunked");
    if c.config.require_content_length && !chunked {
        return Some(respond::error(
            StatusCode::LENGTH_REQUIRED,
            "A valid Content-Length header is required",
            req.err(),
        ));
    }
    // The body is read by the proxy: hand it the (tightest) limit.
    st.body_limit = Some(st.body_limit.map_or(c.limit, |l| l.min(c.limit)));
    st.expect_continue = expect_continue;
    None
}
