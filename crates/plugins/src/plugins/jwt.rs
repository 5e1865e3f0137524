//! jwt (`kong/plugins/jwt/{schema,handler,jwt_parser}.lua`, PRIORITY 1450): a JWT from the
//! query string, a cookie or a `Bearer` header names (claim `iss` by default) a `jwt_secrets`
//! credential, whose secret or public key must verify the signature; `exp`/`nbf` and a
//! maximum lifetime are checked on demand.
//!
//! Kong answers with `kong.response.exit` (no `request_id`) and `WWW-Authenticate: Bearer`
//! (`…error="invalid_token"` once a token was found). Claim failures answer with the error
//! table itself (`{"exp":"token expired"}`), not a message.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{COOKIE, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::jwt_crypto::{b64url_decode, verify};
use super::key_auth::{set_anonymous, set_consumer};
use crate::credentials::{header_value, Credentials};
use crate::ctx::{CredentialRef, Exit, PluginState, RequestCtx};
use crate::error::FieldError;
use crate::query;
use crate::respond;
use crate::schema::{between, one_of, Ty, F};

fn claim(v: &Value) -> Result<(), String> {
    one_of(v, &["exp", "nbf"])
}
fn max_exp(v: &Value) -> Result<(), String> {
    between(v, 0.0, 31536000.0)
}

pub(crate) static FIELDS: &[F] = &[
    F::def("uri_param_names", Ty::StrArray, || json!(["jwt"])),
    F::def("cookie_names", Ty::StrArray, || json!([])),
    F::def("key_claim_name", Ty::Str, || json!("iss")),
    F::req("secret_is_base64", Ty::Bool, || json!(false)),
    F::opt("claims_to_verify", Ty::StrArray).check(claim),
    F::opt("anonymous", Ty::Str),
    F::req("run_on_preflight", Ty::Bool, || json!(true)),
    F::def("maximum_expiration", Ty::Num, || json!(0)).check(max_exp),
    F::def("header_names", Ty::StrArray, || json!(["authorization"])),
    F::opt("realm", Ty::Str),
];

/// `config` of jwt, with Kong's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub uri_param_names: Vec<String>,
    pub cookie_names: Vec<String>,
    pub key_claim_name: String,
    pub secret_is_base64: bool,
    pub claims_to_verify: Option<Vec<String>>,
    pub anonymous: Option<String>,
    pub run_on_preflight: bool,
    pub maximum_expiration: f64,
    pub header_names: Vec<String>,
    pub realm: Option<String>,
}

pub(crate) fn check(c: &Config, errs: &mut Vec<FieldError>) {
    let has_exp = c
        .claims_to_verify
        .as_ref()
        .is_some_and(|v| v.iter().any(|x| x == "exp"));
    if c.maximum_expiration > 0.0 && !has_exp {
        errs.push(FieldError::key(
            "config.claims_to_verify",
            "expected to contain: exp",
        ));
        errs.push(FieldError::key(
            "@entity",
            "failed conditional validation given value of field 'config.maximum_expiration'",
        ));
    }
}

pub(crate) struct Compiled {
    pub config: Config,
    headers: Vec<HeaderName>,
    www_base: HeaderValue,
    www_error: HeaderValue,
    anonymous: Option<Result<u32, String>>,
}

pub(crate) fn compile(config: Config, creds: &Credentials) -> Compiled {
    let headers = config
        .header_names
        .iter()
        .filter_map(|n| HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).ok())
        .collect();
    let (www_base, www_error) = match &config.realm {
        Some(r) => (
            header_value(&format!("Bearer realm=\"{r}\"")),
            header_value(&format!("Bearer realm=\"{r}\", error=\"invalid_token\"")),
        ),
        None => (
            HeaderValue::from_static("Bearer"),
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        ),
    };
    let anonymous = config
        .anonymous
        .as_ref()
        .map(|a| creds.find_consumer(a).ok_or_else(|| a.clone()));
    Compiled {
        config,
        headers,
        www_base,
        www_error,
        anonymous,
    }
}

/// Why authentication failed: a message or Kong's claim-error table.
enum Fail {
    Message(Cow<'static, str>, bool),
    Claims(Map<String, Value>),
}

fn msg(m: &'static str) -> Fail {
    Fail::Message(Cow::Borrowed(m), true)
}

/// `\s*[Bb]earer\s+(.+)` searched anywhere in the value.
fn bearer(v: &str) -> Option<&str> {
    let b = v.as_bytes();
    let mut i = 0;
    while i + 6 <= b.len() {
        if matches!(b[i], b'B' | b'b') && &b[i + 1..i + 6] == b"earer" {
            let rest = &v[i + 6..];
            let token = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
            if token.len() < rest.len() && !token.is_empty() {
                return Some(token);
            }
        }
        i += 1;
    }
    None
}

fn cookie<'a>(req: &'a RequestCtx<'_>, name: &str) -> Option<&'a str> {
    for h in req.headers.get_all(COOKIE) {
        let Ok(s) = h.to_str() else { continue };
        for part in s.split(';') {
            if let Some((k, v)) = part.trim().split_once('=') {
                if k == name && !v.is_empty() {
                    return Some(v);
                }
            }
        }
    }
    None
}

/// Kong's `retrieve_tokens`: the distinct non-empty tokens; `Err(())` when more than one.
fn retrieve<'a>(c: &Compiled, req: &'a RequestCtx<'_>) -> Result<Option<Cow<'a, str>>, ()> {
    let mut found: Option<Cow<'a, str>> = None;
    let mut add = |t: Cow<'a, str>| -> Result<(), ()> {
        match &found {
            Some(f) if *f != t => Err(()),
            Some(_) => Ok(()),
            None => {
                found = Some(t);
                Ok(())
            }
        }
    };
    for name in &c.config.uri_param_names {
        for (k, v) in req.query.split('&').filter_map(|p| p.split_once('=')) {
            if !v.is_empty() && query::decode(k) == name.as_str() {
                add(query::decode(v))?;
            }
        }
    }
    for name in &c.config.cookie_names {
        if let Some(v) = cookie(req, name) {
            add(Cow::Borrowed(v))?;
        }
    }
    for h in &c.headers {
        if let Some(t) = req
            .headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
        {
            add(Cow::Borrowed(t))?;
        }
    }
    Ok(found)
}

struct Token<'a> {
    signed: &'a str,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signature: Vec<u8>,
}

const ALGS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
    "PS384", "PS512", "EdDSA",
];

/// `jwt_parser.decode_token`, with its error strings.
fn decode(token: &str) -> Result<Token<'_>, &'static str> {
    let mut parts = token.splitn(3, '.');
    let (h64, c64, s64) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let obj = |s: &str| -> Option<Map<String, Value>> {
        match serde_json::from_slice::<Value>(&b64url_decode(s)?).ok()? {
            Value::Object(m) => Some(m),
            _ => None,
        }
    };
    let (Some(header), Some(claims)) = (obj(h64), obj(c64)) else {
        return Err("invalid JSON");
    };
    if !header
        .get("alg")
        .and_then(Value::as_str)
        .is_some_and(|a| ALGS.contains(&a))
    {
        return Err("invalid alg");
    }
    let signature = b64url_decode(s64).ok_or("invalid signature")?;
    let signed = &token[..(h64.len() + 1 + c64.len()).min(token.len())];
    Ok(Token {
        signed,
        header,
        claims,
        signature,
    })
}

fn key_string(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        _ => None,
    }
}

fn authenticate(
    c: &Compiled,
    creds: &Credentials,
    st: &mut PluginState,
    req: &mut RequestCtx<'_>,
) -> Result<(), Fail> {
    let token = match retrieve(c, req) {
        Err(()) => return Err(msg("Multiple tokens provided")),
        Ok(None) => return Err(Fail::Message(Cow::Borrowed("Unauthorized"), false)),
        Ok(Some(t)) => t,
    };
    let jwt = decode(&token).map_err(|e| Fail::Message(format!("Bad token; {e}").into(), true))?;
    let kc = &c.config.key_claim_name;
    let key = jwt.claims.get(kc).or_else(|| jwt.header.get(kc));
    let key = match key.filter(|v| !v.is_null() && *v != &Value::Bool(false)) {
        None => {
            return Err(Fail::Message(
                format!("No mandatory '{kc}' in claims").into(),
                true,
            ))
        }
        Some(Value::String(s)) if s.is_empty() => {
            return Err(Fail::Message(
                format!("Invalid '{kc}' in claims").into(),
                true,
            ))
        }
        Some(v) => key_string(v),
    };
    let found = key
        .as_deref()
        .and_then(|k| creds.jwt_by_key.get(k).copied());
    let Some(idx) = found else {
        return Err(Fail::Message(
            format!("No credentials found for given '{kc}'").into(),
            true,
        ));
    };
    let Some(secret) = creds.jwt.get(idx as usize) else {
        return Err(msg("Unauthorized"));
    };
    let alg = jwt.header.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg != secret.algorithm {
        return Err(msg("Invalid algorithm"));
    }
    let Some(k) = secret.key.usable(c.config.secret_is_base64) else {
        return Err(msg("Invalid key/secret"));
    };
    if !verify(alg, &k, jwt.signed.as_bytes(), &jwt.signature) {
        return Err(msg("Invalid signature"));
    }
    let now = req.now_ms.div_euclid(1000) as f64;
    let mut errors = Map::new();
    for name in c.config.claims_to_verify.iter().flatten() {
        match jwt.claims.get(name.as_str()).and_then(Value::as_f64) {
            None => {
                errors.insert(name.clone(), json!("must be a number"));
            }
            Some(n) if name == "nbf" && n > now => {
                errors.insert(name.clone(), json!("token not valid yet"));
            }
            Some(n) if name == "exp" && n <= now => {
                errors.insert(name.clone(), json!("token expired"));
            }
            Some(_) => {}
        }
    }
    if !errors.is_empty() {
        return Err(Fail::Claims(errors));
    }
    if c.config.maximum_expiration > 0.0 {
        let exp = jwt.claims.get("exp").and_then(Value::as_f64);
        if exp.is_none_or(|e| e - now > c.config.maximum_expiration) {
            let mut m = Map::new();
            m.insert("exp".into(), json!("exceeds maximum allowed expiration"));
            return Err(Fail::Claims(m));
        }
    }
    set_consumer(
        creds,
        st,
        req.headers,
        secret.consumer,
        Some(CredentialRef::Jwt(idx)),
    );
    Ok(())
}

pub(crate) fn access(
    c: &Compiled,
    creds: &Credentials,
    st: &mut PluginState,
    req: &mut RequestCtx<'_>,
) -> Option<Exit> {
    if !c.config.run_on_preflight && *req.method == Method::OPTIONS {
        return None;
    }
    if let Some(anon) = &c.anonymous {
        if st.credential.is_some() {
            return None;
        }
        return match authenticate(c, creds, st, req) {
            Ok(()) => None,
            Err(_) => set_anonymous(anon, creds, st, req),
        };
    }
    let fail = authenticate(c, creds, st, req).err()?;
    let (body, www) = match fail {
        Fail::Message(m, with_error) => (
            respond::message_body(&m),
            if with_error {
                &c.www_error
            } else {
                &c.www_base
            },
        ),
        Fail::Claims(m) => (
            Bytes::from(serde_json::to_vec(&Value::Object(m)).unwrap_or_default()),
            &c.www_error,
        ),
    };
    let mut exit = respond::exit(StatusCode::UNAUTHORIZED, Some(&respond::JSON), body);
    exit.headers.insert(WWW_AUTHENTICATE, www.clone());
    Some(exit)
}
