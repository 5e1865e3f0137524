//! key-auth (`kong/plugins/key-auth`, PRIORITY 1250): an API key from a header, the query
//! string or (with `key_in_body`) the body — form-urlencoded, JSON or multipart, read by the
//! proxy before access — identifies a credential and so a consumer.
//!
//! Per request: one header lookup (or a scan of the query string) per key name, one hash
//! probe, then prebuilt header values are cloned onto the upstream request. The key is never
//! copied unless it was percent-encoded in the query.

use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::body::{self, BodyKind, Field};
use crate::credentials::{header_value, Credentials};
use crate::ctx::{CredentialRef, Exit, PluginState, RequestCtx};
use crate::error::FieldError;
use crate::query::{self, Arg};
use crate::respond;
use crate::schema::{header_name, Ty, F};

pub(crate) static FIELDS: &[F] = &[
    F::req("key_names", Ty::StrArray, || json!(["apikey"])).check(header_name),
    F::req("hide_credentials", Ty::Bool, || json!(false)),
    F::opt("anonymous", Ty::Str),
    F::req("key_in_header", Ty::Bool, || json!(true)),
    F::req("key_in_query", Ty::Bool, || json!(true)),
    F::req("key_in_body", Ty::Bool, || json!(false)),
    F::req("run_on_preflight", Ty::Bool, || json!(true)),
    F::opt("realm", Ty::Str),
];

/// `config` of key-auth, with Kong's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub key_names: Vec<String>,
    pub hide_credentials: bool,
    pub anonymous: Option<String>,
    pub key_in_header: bool,
    pub key_in_query: bool,
    /// Look in the request body too (the proxy then reads it before access).
    pub key_in_body: bool,
    pub run_on_preflight: bool,
    pub realm: Option<String>,
}

pub(crate) fn check(_c: &Config, _errs: &mut Vec<FieldError>) {}

pub(crate) struct Compiled {
    pub config: Config,
    /// (lower-case header name, query name) per key name.
    names: Vec<(Option<HeaderName>, String)>,
    www_authenticate: HeaderValue,
    /// `Some(Ok(consumer))`, or `Some(Err(name))` when the anonymous consumer doesn't exist.
    anonymous: Option<Result<u32, String>>,
}

pub(crate) fn compile(config: Config, creds: &Credentials) -> Compiled {
    let names = config
        .key_names
        .iter()
        .map(|n| {
            let h = HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).ok();
            (h, n.clone())
        })
        .collect();
    let www_authenticate = match &config.realm {
        Some(r) => header_value(&format!("Key realm=\"{r}\"")),
        None => HeaderValue::from_static("Key"),
    };
    let anonymous = config
        .anonymous
        .as_ref()
        .map(|a| creds.find_consumer(a).ok_or_else(|| a.clone()));
    Compiled {
        config,
        names,
        www_authenticate,
        anonymous,
    }
}

pub(crate) static X_CONSUMER_ID: HeaderName = HeaderName::from_static("x-consumer-id");
pub(crate) static X_CONSUMER_CUSTOM_ID: HeaderName =
    HeaderName::from_static("x-consumer-custom-id");
pub(crate) static X_CONSUMER_USERNAME: HeaderName = HeaderName::from_static("x-consumer-username");
pub(crate) static X_CREDENTIAL_IDENTIFIER: HeaderName =
    HeaderName::from_static("x-credential-identifier");
pub(crate) static X_ANONYMOUS_CONSUMER: HeaderName =
    HeaderName::from_static("x-anonymous-consumer");

fn set_or_clear(h: &mut HeaderMap, name: &HeaderName, v: Option<&HeaderValue>) {
    match v {
        Some(v) => {
            h.insert(name.clone(), v.clone());
        }
        None => {
            h.remove(name);
        }
    }
}

/// Kong's `set_consumer(consumer, credential)` shared by the auth plugins: authenticate and
/// set (or clear) the `X-Consumer-*` / `X-Credential-Identifier` / `X-Anonymous-Consumer`
/// upstream headers.
pub(crate) fn set_consumer(
    creds: &Credentials,
    st: &mut PluginState,
    h: &mut HeaderMap,
    consumer: u32,
    credential: Option<CredentialRef>,
) {
    st.consumer = Some(consumer);
    st.credential = credential;
    let c = creds.consumers.get(consumer as usize);
    set_or_clear(h, &X_CONSUMER_ID, c.map(|c| &c.id_header));
    set_or_clear(
        h,
        &X_CONSUMER_CUSTOM_ID,
        c.and_then(|c| c.custom_id_header.as_ref()),
    );
    set_or_clear(
        h,
        &X_CONSUMER_USERNAME,
        c.and_then(|c| c.username_header.as_ref()),
    );
    let cred = credential.and_then(|c| creds.identifier_header(c));
    set_or_clear(h, &X_CREDENTIAL_IDENTIFIER, cred);
    if credential.is_some() {
        h.remove(&X_ANONYMOUS_CONSUMER);
    } else {
        h.insert(
            X_ANONYMOUS_CONSUMER.clone(),
            HeaderValue::from_static("true"),
        );
    }
}

/// Kong's logical OR with `anonymous`: fall back to the anonymous consumer, or 500 when it
/// is configured but missing.
pub(crate) fn set_anonymous(
    anonymous: &Result<u32, String>,
    creds: &Credentials,
    st: &mut PluginState,
    req: &mut RequestCtx<'_>,
) -> Option<Exit> {
    match anonymous {
        Ok(c) => {
            set_consumer(creds, st, req.headers, *c, None);
            None
        }
        Err(name) => {
            tracing::error!("anonymous consumer {name} is configured but doesn't exist");
            Some(respond::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("anonymous consumer {name} is configured but doesn't exist"),
                req.err(),
            ))
        }
    }
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
            return None; // already authenticated by another plugin (logical OR)
        }
        return match authenticate(c, creds, st, req) {
            Ok(()) => None,
            Err(_) => set_anonymous(anon, creds, st, req),
        };
    }
    match authenticate(c, creds, st, req) {
        Ok(()) => None,
        Err(message) => {
            let mut exit = respond::error(StatusCode::UNAUTHORIZED, message, req.err());
            exit.headers
                .insert(WWW_AUTHENTICATE, c.www_authenticate.clone());
            Some(exit)
        }
    }
}

fn authenticate(
    c: &Compiled,
    creds: &Credentials,
    st: &mut PluginState,
    req: &mut RequestCtx<'_>,
) -> Result<(), &'static str> {
    // Find the key (Lua: `v = headers[name]; if not v then v = query[name] end`) and resolve
    // it while it is still borrowed from the request; edit the request afterwards.
    let mut hit: Option<usize> = None;
    let mut in_body: Option<BodyKind> = None;
    let mut outcome: Result<u32, &'static str> = Err("No API key found in request");
    for (i, (hname, qname)) in c.names.iter().enumerate() {
        let mut set = false;
        if c.config.key_in_header {
            if let Some(hname) = hname {
                let mut all = req.headers.get_all(hname).iter();
                if let Some(first) = all.next() {
                    if all.next().is_some() {
                        return Err("Duplicate API key found");
                    }
                    set = true;
                    hit = Some(i);
                    // A non-UTF-8 key cannot match any credential.
                    outcome = lookup(creds, first.to_str().unwrap_or("\u{fffd}"));
                }
            }
        }
        if !set && c.config.key_in_query {
            match query::get(req.query, qname) {
                Arg::Absent | Arg::Flag => {} // `true` is not a string: next name
                Arg::One(v) => {
                    hit = Some(i);
                    outcome = lookup(creds, &v);
                }
                Arg::Many => return Err("Duplicate API key found"),
            }
        }
        if hit.is_none() && c.config.key_in_body {
            let kind = BodyKind::of(req.headers.get(CONTENT_TYPE));
            if let (Some(kind), Some(b)) = (kind, req.body) {
                match body::field(&kind, b, qname) {
                    Field::Absent => {}
                    Field::One(v) => {
                        hit = Some(i);
                        outcome = lookup(creds, &v);
                        in_body = Some(kind);
                    }
                    Field::Many => return Err("Duplicate API key found"),
                }
            }
        }
        if hit.is_some() {
            break;
        }
    }
    if let (Some(i), true) = (hit, c.config.hide_credentials) {
        let (hname, qname) = &c.names[i];
        if let Some(h) = hname {
            req.headers.remove(h);
        }
        let q = st.query_rewrite.as_deref().unwrap_or(req.query);
        if query::has(q, qname) {
            st.query_rewrite = Some(query::without(q, qname));
        }
        if let (Some(kind), Some(b)) = (&in_body, req.body) {
            let b = st.body_rewrite.as_deref().unwrap_or(b);
            if let Some(rest) = body::without(kind, b, qname) {
                st.body_rewrite = Some(rest);
            }
        }
    }
    let idx = outcome?;
    let consumer = creds.keyauth[idx as usize].consumer;
    set_consumer(
        creds,
        st,
        req.headers,
        consumer,
        Some(CredentialRef::KeyAuth(idx)),
    );
    Ok(())
}

fn lookup(creds: &Credentials, key: &str) -> Result<u32, &'static str> {
    if key.is_empty() {
        return Err("No API key found in request");
    }
    match creds.keyauth_by_key.get(key) {
        Some(&i) if creds.keyauth.get(i as usize).is_some_and(|c| !c.expired) => Ok(i),
        _ => Err("Unauthorized"),
    }
}
