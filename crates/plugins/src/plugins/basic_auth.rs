//! basic-auth (`kong/plugins/basic-auth/{schema,access,crypto}.lua`, PRIORITY 1100):
//! `Proxy-Authorization` then `Authorization: Basic base64(user:password)`; the password is
//! checked as Kong stores it, `sha1(password .. consumer_id)` in hex.
//!
//! Per request: one base64 decode into a stack buffer for usual sizes, one hash probe by
//! username, one SHA-1 compared in hex on the stack; prebuilt header values afterwards.

use base64::Engine;
use http::header::{AUTHORIZATION, PROXY_AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::key_auth::{set_anonymous, set_consumer};
use crate::credentials::{header_value, Credentials};
use crate::ctx::{CredentialRef, Exit, PluginState, RequestCtx};
use crate::error::FieldError;
use crate::respond;
use crate::schema::{Ty, F};

pub(crate) static FIELDS: &[F] = &[
    F::opt("anonymous", Ty::Str),
    F::req("hide_credentials", Ty::Bool, || json!(false)),
    F::req("realm", Ty::Str, || json!("service")),
];

/// `config` of basic-auth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub anonymous: Option<String>,
    pub hide_credentials: bool,
    pub realm: String,
}

pub(crate) fn check(_c: &Config, _errs: &mut Vec<FieldError>) {}

pub(crate) struct Compiled {
    pub config: Config,
    www_authenticate: HeaderValue,
    anonymous: Option<Result<u32, String>>,
}

pub(crate) fn compile(config: Config, creds: &Credentials) -> Compiled {
    let www_authenticate = header_value(&format!("Basic realm=\"{}\"", config.realm));
    let anonymous = config
        .anonymous
        .as_ref()
        .map(|a| creds.find_consumer(a).ok_or_else(|| a.clone()));
    Compiled {
        config,
        www_authenticate,
        anonymous,
    }
}

/// `\s*[Bb]asic\s*(.+)` searched anywhere in the value: the encoded part.
fn basic_payload(v: &[u8]) -> Option<&[u8]> {
    let mut i = 0;
    while i + 5 <= v.len() {
        if matches!(v[i], b'B' | b'b') && &v[i + 1..i + 5] == b"asic" {
            let rest = &v[i + 5..];
            let start = rest
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(rest.len());
            let p = &rest[start..];
            return (!p.is_empty()).then_some(p);
        }
        i += 1;
    }
    None
}

/// Decodes `user:password` (Kong: `([^:]+):(.*)` unanchored) into `buf`.
fn credentials<'b>(header: &HeaderValue, buf: &'b mut Vec<u8>) -> Option<(&'b [u8], &'b [u8])> {
    let payload = basic_payload(header.as_bytes())?;
    buf.clear();
    base64::engine::general_purpose::STANDARD
        .decode_vec(payload, buf)
        .or_else(|_| {
            buf.clear();
            base64::engine::general_purpose::STANDARD_NO_PAD.decode_vec(payload, buf)
        })
        .ok()?;
    let s: &'b [u8] = buf;
    let start = s.iter().position(|&b| b != b':')?;
    let colon = start + s[start..].iter().position(|&b| b == b':')?;
    let pass = &s[colon + 1..];
    // `.` does not match a newline: the password stops there.
    let pass = &pass[..pass.iter().position(|&b| b == b'\n').unwrap_or(pass.len())];
    Some((&s[start..colon], pass))
}

/// `crypto.hash(consumer_id, password) == stored`, without allocating.
fn password_ok(stored: &str, consumer_id: &uuid::Uuid, given: &[u8]) -> bool {
    let mut h = sha1_smol::Sha1::new();
    h.update(given);
    let mut idbuf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    h.update(consumer_id.hyphenated().encode_lower(&mut idbuf).as_bytes());
    let digest = h.digest().bytes();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 40];
    for (i, b) in digest.iter().enumerate() {
        hex[2 * i] = HEX[(b >> 4) as usize];
        hex[2 * i + 1] = HEX[(b & 15) as usize];
    }
    stored.as_bytes() == hex
}

/// Looks a username up and checks the password; the credential index on success.
fn verify(creds: &Credentials, user: &[u8], pass: &[u8]) -> Option<u32> {
    let user = std::str::from_utf8(user).ok()?;
    let idx = *creds.basicauth_by_username.get(user)?;
    let cred = creds.basicauth.get(idx as usize)?;
    let consumer = creds.consumers.get(cred.consumer as usize)?;
    password_ok(&cred.password, &consumer.id, pass).then_some(idx)
}

fn authenticate(
    c: &Compiled,
    creds: &Credentials,
    st: &mut PluginState,
    req: &mut RequestCtx<'_>,
) -> bool {
    let authorization = req.headers.get(AUTHORIZATION).cloned();
    let proxy_authorization = req.headers.get(PROXY_AUTHORIZATION).cloned();
    if authorization.is_none() && proxy_authorization.is_none() {
        return false;
    }
    let mut buf = Vec::new();
    let hide = |name: &HeaderName, req: &mut RequestCtx<'_>| {
        if c.config.hide_credentials {
            req.headers.remove(name);
        }
    };
    // Proxy-Authorization first; a username found there that has no credential falls back
    // to Authorization.
    let mut found: Option<(u32, bool)> = None; // (credential, password ok)
    if let Some(h) = &proxy_authorization {
        if let Some((u, p)) = credentials(h, &mut buf) {
            found = lookup(creds, u, p);
        }
    }
    hide(&PROXY_AUTHORIZATION, req);
    if found.is_none() {
        let parsed = authorization
            .as_ref()
            .and_then(|h| credentials(h, &mut buf));
        let r = parsed.map(|(u, p)| lookup(creds, u, p));
        hide(&AUTHORIZATION, req);
        found = r.flatten();
    }
    let Some((idx, true)) = found else {
        return false;
    };
    let Some(cred) = creds.basicauth.get(idx as usize) else {
        return false;
    };
    set_consumer(
        creds,
        st,
        req.headers,
        cred.consumer,
        Some(CredentialRef::BasicAuth(idx)),
    );
    true
}

/// `(credential, password matches)` when the username exists.
fn lookup(creds: &Credentials, user: &[u8], pass: &[u8]) -> Option<(u32, bool)> {
    let u = std::str::from_utf8(user).ok()?;
    let idx = *creds.basicauth_by_username.get(u)?;
    Some((idx, verify(creds, user, pass).is_some()))
}

pub(crate) fn access(
    c: &Compiled,
    creds: &Credentials,
    st: &mut PluginState,
    req: &mut RequestCtx<'_>,
) -> Option<Exit> {
    if let Some(anon) = &c.anonymous {
        if st.credential.is_some() {
            return None;
        }
        return if authenticate(c, creds, st, req) {
            None
        } else {
            set_anonymous(anon, creds, st, req)
        };
    }
    if authenticate(c, creds, st, req) {
        return None;
    }
    let mut exit = respond::error(StatusCode::UNAUTHORIZED, "Unauthorized", req.err());
    exit.headers
        .insert(WWW_AUTHENTICATE, c.www_authenticate.clone());
    Some(exit)
}
