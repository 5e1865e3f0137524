//! The bundled plugins: Kong's names and priorities, which ones run here, and the dispatch
//! from a compiled instance to its handlers (a `match`, no trait objects or string lookups).

pub(crate) mod acl;
pub(crate) mod basic_auth;
pub(crate) mod correlation_id;
pub(crate) mod cors;
pub(crate) mod ip_restriction;
pub(crate) mod jwt;
pub(crate) mod jwt_crypto;
pub(crate) mod key_auth;
pub(crate) mod observers;
pub(crate) mod rate_limiting;
pub(crate) mod request_size;
pub(crate) mod request_termination;
pub(crate) mod request_transformer;
pub(crate) mod response_transformer;
pub(crate) mod rl_redis;
pub(crate) mod rl_store;
pub(crate) mod transform;

use std::sync::Arc;

use gatehouse_config::Protocol;
use serde_json::Value;

use crate::error::FieldError;
use crate::schema::{validate_record, F};

/// Kong's bundled plugins (`kong/constants.lua`) with their `PRIORITY`.
pub(crate) static BUNDLED: &[(&str, i32)] = &[
    ("pre-function", 1_000_000),
    ("correlation-id", 100_001),
    ("zipkin", 100_000),
    ("bot-detection", 2500),
    ("cors", 2000),
    ("session", 1900),
    ("acme", 1705),
    ("jwt", 1450),
    ("oauth2", 1400),
    ("key-auth", 1250),
    ("ldap-auth", 1200),
    ("basic-auth", 1100),
    ("hmac-auth", 1030),
    ("grpc-gateway", 998),
    ("ip-restriction", 990),
    ("request-size-limiting", 951),
    ("acl", 950),
    ("rate-limiting", 910),
    ("response-ratelimiting", 900),
    ("request-transformer", 801),
    ("response-transformer", 800),
    ("redirect", 779),
    ("ai-request-transformer", 777),
    ("ai-prompt-template", 773),
    ("ai-prompt-decorator", 772),
    ("ai-prompt-guard", 771),
    ("ai-proxy", 770),
    ("ai-response-transformer", 768),
    ("standard-webhooks", 760),
    ("aws-lambda", 750),
    ("azure-functions", 749),
    ("proxy-cache", 100),
    ("opentelemetry", 14),
    ("prometheus", 13),
    ("http-log", 12),
    ("statsd", 11),
    ("datadog", 10),
    ("file-log", 9),
    ("udp-log", 8),
    ("tcp-log", 7),
    ("loggly", 6),
    ("syslog", 4),
    ("grpc-web", 3),
    ("request-termination", 2),
    ("post-function", -1000),
];

/// Index into [`BUNDLED`] of a plugin name.
pub(crate) fn bundled_index(name: &str) -> Option<usize> {
    BUNDLED.iter().position(|(n, _)| *n == name)
}

/// Plugins that cannot be scoped to a consumer (`consumer = typedefs.no_consumer`).
pub(crate) fn no_consumer(name: &str) -> bool {
    matches!(
        name,
        "key-auth"
            | "basic-auth"
            | "acl"
            | "jwt"
            | "hmac-auth"
            | "oauth2"
            | "ldap-auth"
            | "session"
            | "cors"
            | "request-size-limiting"
            | "bot-detection"
            | "acme"
    )
}

/// `typedefs.protocols_http` (Kong also allows ws/wss, which Gatehouse's model has not).
pub(crate) const HTTP_PROTOCOLS: &[Protocol] = &[
    Protocol::Http,
    Protocol::Https,
    Protocol::Grpc,
    Protocol::Grpcs,
];

/// A plugin's validated, typed config as the runtime uses it (one per plugin entity, built
/// once per snapshot: variant sizes don't matter).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Compiled {
    KeyAuth(key_auth::Compiled),
    RateLimiting(rate_limiting::Compiled),
    RequestTermination(request_termination::Compiled),
    Acl(acl::Compiled),
    IpRestriction(ip_restriction::Compiled),
    CorrelationId(correlation_id::Compiled),
    Cors(cors::Compiled),
    RequestSizeLimiting(request_size::Compiled),
    BasicAuth(basic_auth::Compiled),
    Jwt(jwt::Compiled),
    RequestTransformer(request_transformer::Compiled),
    ResponseTransformer(response_transformer::Compiled),
    Prometheus(Arc<observers::PrometheusConfig>),
    HttpLog(Arc<observers::HttpLogConfig>),
    FileLog(Arc<observers::FileLogConfig>),
    OpenTelemetry(Arc<observers::OpenTelemetryConfig>),
    /// A bundled plugin Gatehouse does not run yet: its raw config is kept, the runtime
    /// skips it.
    NotImplemented(Value),
}

/// A typed, validated config (before per-snapshot compilation).
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(crate) enum Typed {
    KeyAuth(key_auth::Config),
    RateLimiting(rate_limiting::Config),
    RequestTermination(request_termination::Config),
    Acl(acl::Config),
    IpRestriction(ip_restriction::Config),
    CorrelationId(correlation_id::Config),
    Cors(cors::Config),
    RequestSizeLimiting(request_size::Config),
    BasicAuth(basic_auth::Config),
    Jwt(jwt::Config),
    RequestTransformer(request_transformer::Config),
    ResponseTransformer(response_transformer::Config),
    Prometheus(observers::PrometheusConfig),
    HttpLog(observers::HttpLogConfig),
    FileLog(observers::FileLogConfig),
    OpenTelemetry(observers::OpenTelemetryConfig),
    NotImplemented(Value),
}

impl Compiled {
    /// Whether access does I/O (rate-limiting with `policy: redis`).
    pub(crate) fn needs_async(&self) -> bool {
        matches!(self, Compiled::RateLimiting(c) if c.redis.is_some())
    }

    /// The normalised config as JSON (Kong's defaults filled in).
    pub(crate) fn config_json(&self) -> Option<Value> {
        fn j<T: serde::Serialize>(t: &T) -> Option<Value> {
            serde_json::to_value(t).ok()
        }
        match self {
            Compiled::KeyAuth(c) => j(&c.config),
            Compiled::RateLimiting(c) => j(&c.config),
            Compiled::RequestTermination(c) => j(&c.config),
            Compiled::Acl(c) => j(&c.config),
            Compiled::IpRestriction(c) => j(&c.config),
            Compiled::CorrelationId(c) => j(&c.config),
            Compiled::Cors(c) => j(&c.config),
            Compiled::RequestSizeLimiting(c) => j(&c.config),
            Compiled::BasicAuth(c) => j(&c.config),
            Compiled::Jwt(c) => j(&c.config),
            Compiled::RequestTransformer(c) => j(&c.config),
            Compiled::ResponseTransformer(c) => j(&c.config),
            Compiled::Prometheus(c) => j(&**c),
            Compiled::HttpLog(c) => j(&**c),
            Compiled::FileLog(c) => j(&**c),
            Compiled::OpenTelemetry(c) => j(&**c),
            Compiled::NotImplemented(v) => Some(v.clone()),
        }
    }
}

fn typed<T: serde::de::DeserializeOwned>(
    v: &Value,
    fields: &'static [F],
    check: fn(&T, &mut Vec<FieldError>),
    errs: &mut Vec<FieldError>,
) -> Option<T> {
    let mut path = vec![crate::error::Seg::Key("config".into())];
    let before = errs.len();
    let normalized = validate_record(v, fields, &mut path, errs);
    if errs.len() != before {
        return None;
    }
    match serde_json::from_value::<T>(normalized) {
        Ok(t) => {
            check(&t, errs);
            (errs.len() == before).then_some(t)
        }
        Err(e) => {
            errs.push(FieldError::key("config", e.to_string()));
            None
        }
    }
}

/// Validates `config` of plugin `name` with Kong's schema; `None` when there were errors
/// (appended to `errs`, paths relative to the plugin entity).
pub(crate) fn validate(name: &str, config: &Value, errs: &mut Vec<FieldError>) -> Option<Typed> {
    Some(match name {
        "key-auth" => Typed::KeyAuth(typed(config, key_auth::FIELDS, key_auth::check, errs)?),
        "rate-limiting" => {
            let mut v = config.clone();
            rate_limiting::normalize(&mut v);
            Typed::RateLimiting(typed(
                &v,
                rate_limiting::FIELDS,
                rate_limiting::check,
                errs,
            )?)
        }
        "request-termination" => Typed::RequestTermination(typed(
            config,
            request_termination::FIELDS,
            request_termination::check,
            errs,
        )?),
        "acl" => Typed::Acl(typed(config, acl::FIELDS, acl::check, errs)?),
        "ip-restriction" => Typed::IpRestriction(typed(
            config,
            ip_restriction::FIELDS,
            ip_restriction::check,
            errs,
        )?),
        "correlation-id" => Typed::CorrelationId(typed(
            config,
            correlation_id::FIELDS,
            correlation_id::check,
            errs,
        )?),
        "cors" => Typed::Cors(typed(config, cors::FIELDS, cors::check, errs)?),
        "request-size-limiting" => Typed::RequestSizeLimiting(typed(
            config,
            request_size::FIELDS,
            request_size::check,
            errs,
        )?),
        "basic-auth" => {
            Typed::BasicAuth(typed(config, basic_auth::FIELDS, basic_auth::check, errs)?)
        }
        "jwt" => Typed::Jwt(typed(config, jwt::FIELDS, jwt::check, errs)?),
        "request-transformer" => Typed::RequestTransformer(typed(
            config,
            request_transformer::FIELDS,
            request_transformer::check,
            errs,
        )?),
        "response-transformer" => Typed::ResponseTransformer(typed(
            config,
            response_transformer::FIELDS,
            response_transformer::check,
            errs,
        )?),
        "prometheus" => Typed::Prometheus(typed(
            config,
            observers::PROMETHEUS,
            observers::no_check,
            errs,
        )?),
        "http-log" => Typed::HttpLog(typed(
            config,
            observers::HTTP_LOG,
            observers::check_http_log,
            errs,
        )?),
        "file-log" => Typed::FileLog(typed(
            config,
            observers::FILE_LOG,
            observers::no_check,
            errs,
        )?),
        "opentelemetry" => {
            let mut v = config.clone();
            observers::normalize_otel(&mut v);
            Typed::OpenTelemetry(typed(
                &v,
                observers::OPENTELEMETRY,
                observers::check_otel,
                errs,
            )?)
        }
        _ => {
            if !(config.is_object() || config.is_null()) {
                errs.push(FieldError::key("config", "expected a record"));
                return None;
            }
            Typed::NotImplemented(config.clone())
        }
    })
}

/// Names of the plugins this crate runs (the rest of [`BUNDLED`] is accepted and skipped).
pub const IMPLEMENTED: &[&str] = &[
    "key-auth",
    "rate-limiting",
    "request-termination",
    "acl",
    "ip-restriction",
    "correlation-id",
    "cors",
    "request-size-limiting",
    "basic-auth",
    "jwt",
    "request-transformer",
    "response-transformer",
    "prometheus",
    "http-log",
    "file-log",
    "opentelemetry",
];

/// Protocols a plugin accepts (`protocols` field of its schema).
pub(crate) fn allowed_protocols(name: &str) -> Option<&'static [Protocol]> {
    match name {
        "key-auth"
        | "rate-limiting"
        | "request-termination"
        | "acl"
        | "basic-auth"
        | "cors"
        | "correlation-id"
        | "request-size-limiting"
        | "jwt"
        | "opentelemetry"
        | "response-transformer" => Some(HTTP_PROTOCOLS),
        "ip-restriction" => Some(&[
            Protocol::Http,
            Protocol::Https,
            Protocol::Tcp,
            Protocol::Tls,
            Protocol::Grpc,
            Protocol::Grpcs,
        ]),
        _ => None,
    }
}
