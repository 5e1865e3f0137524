//! rate-limiting (`kong/plugins/rate-limiting`, PRIORITY 910): fixed windows aligned to the
//! UTC calendar (`kong/tools/timestamp.lua`), limits per second … year, counted per
//! identifier (consumer, credential, ip, service, header, path — client IP whenever the
//! identifier is missing).
//!
//! Policy `local` counts in [`RateLimitStore`] (atomic increment-then-check, see there).
//! Policy `redis` counts in redis under Kong's keys
//! (`ratelimit:<route_id>:<service_id>:<identifier>:<period_start>:<period>`) through
//! [`super::rl_redis`]; that needs I/O, so it runs only in [`access_redis`], which the proxy
//! awaits when [`crate::Plugins::needs_async`] says so (the synchronous [`access`] counts such
//! a config locally). Both policies decide with the same rule in [`decide`].
//! Headers are computed in access and written in header_filter from fixed-size per-request
//! state: limit values are prebuilt per config, small numbers come from a shared table, so
//! the usual request formats nothing.

use std::hash::Hasher;
use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::rl_redis::{Redis, Window};
use super::rl_store::{Key, RateLimitStore};
use crate::ctx::{Exit, PluginState, RequestCtx};
use crate::error::FieldError;
use crate::schema::{gt0, header_name, one_of, path, Ty, F};
use crate::{respond, Plugins};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Period {
    Second,
    Minute,
    Hour,
    Day,
    Month,
    Year,
}

pub(crate) const PERIODS: [Period; 6] = [
    Period::Second,
    Period::Minute,
    Period::Hour,
    Period::Day,
    Period::Month,
    Period::Year,
];
const NAMES: [&str; 6] = ["second", "minute", "hour", "day", "month", "year"];
/// `kong/plugins/rate-limiting/expiration.lua`, seconds.
const EXPIRATION: [i64; 6] = [1, 60, 3600, 86400, 2592000, 31536000];

static X_LIMIT: [HeaderName; 6] = [
    HeaderName::from_static("x-ratelimit-limit-second"),
    HeaderName::from_static("x-ratelimit-limit-minute"),
    HeaderName::from_static("x-ratelimit-limit-hour"),
    HeaderName::from_static("x-ratelimit-limit-day"),
    HeaderName::from_static("x-ratelimit-limit-month"),
    HeaderName::from_static("x-ratelimit-limit-year"),
];
static X_REMAINING: [HeaderName; 6] = [
    HeaderName::from_static("x-ratelimit-remaining-second"),
    HeaderName::from_static("x-ratelimit-remaining-minute"),
    HeaderName::from_static("x-ratelimit-remaining-hour"),
    HeaderName::from_static("x-ratelimit-remaining-day"),
    HeaderName::from_static("x-ratelimit-remaining-month"),
    HeaderName::from_static("x-ratelimit-remaining-year"),
];
static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Start of the window containing `now_ms`, in ms (UTC calendar).
pub(crate) fn period_start(p: Period, now_ms: i64) -> i64 {
    let secs = now_ms.div_euclid(1000);
    let day = secs.div_euclid(86400);
    let s = match p {
        Period::Second => secs,
        Period::Minute => secs - secs.rem_euclid(60),
        Period::Hour => secs - secs.rem_euclid(3600),
        Period::Day => day * 86400,
        Period::Month | Period::Year => {
            let (y, m, _) = civil_from_days(day);
            let m = if p == Period::Year { 1 } else { m };
            days_from_civil(y, m, 1) * 86400
        }
    };
    s * 1000
}

// Howard Hinnant's civil-date algorithms (proleptic Gregorian, UTC).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn limit_by(v: &Value) -> Result<(), String> {
    one_of(
        v,
        &["consumer", "credential", "ip", "service", "header", "path"],
    )
}
fn policy(v: &Value) -> Result<(), String> {
    one_of(v, &["local", "redis"])
}
fn port(v: &Value) -> Result<(), String> {
    match v.as_i64() {
        Some(p) if (0..=65535).contains(&p) => Ok(()),
        _ => Err("value should be between 0 and 65535".into()),
    }
}
fn timeout(v: &Value) -> Result<(), String> {
    match v.as_i64() {
        Some(p) if (0..=2147483646).contains(&p) => Ok(()),
        _ => Err("value should be between 0 and 2147483646".into()),
    }
}

static REDIS: &[F] = &[
    F::opt("host", Ty::Str),
    F::def("port", Ty::Int, || json!(6379)).check(port),
    F::def("timeout", Ty::Int, || json!(2000)).check(timeout),
    F::opt("username", Ty::Str),
    F::opt("password", Ty::StrOrEmpty),
    F::def("database", Ty::Int, || json!(0)),
    F::def("ssl", Ty::Bool, || json!(false)),
    F::def("ssl_verify", Ty::Bool, || json!(false)),
    F::opt("server_name", Ty::Str),
];

pub(crate) static FIELDS: &[F] = &[
    F::opt("second", Ty::Num).check(gt0),
    F::opt("minute", Ty::Num).check(gt0),
    F::opt("hour", Ty::Num).check(gt0),
    F::opt("day", Ty::Num).check(gt0),
    F::opt("month", Ty::Num).check(gt0),
    F::opt("year", Ty::Num).check(gt0),
    F::def("limit_by", Ty::Str, || json!("consumer")).check(limit_by),
    F::opt("header_name", Ty::Str).check(header_name),
    F::opt("path", Ty::Str).check(path),
    F::def("policy", Ty::StrOrEmpty, || json!("local")).check(policy),
    F::req("fault_tolerant", Ty::Bool, || json!(true)),
    F::opt("redis", Ty::Record(REDIS)).required(),
    F::req("hide_client_headers", Ty::Bool, || json!(false)),
    F::def("error_code", Ty::Num, || json!(429)).check(gt0),
    F::def("error_message", Ty::Str, || {
        json!("API rate limit exceeded")
    }),
    F::req("sync_rate", Ty::Num, || json!(-1)),
];

/// Kong's deprecated `redis_*` shorthands, folded into `redis.*` before validation.
pub(crate) fn normalize(v: &mut Value) {
    let Some(obj) = v.as_object_mut() else {
        return;
    };
    let mut moved = Map::new();
    for k in [
        "host",
        "port",
        "password",
        "username",
        "ssl",
        "ssl_verify",
        "server_name",
        "timeout",
        "database",
    ] {
        if let Some(val) = obj.remove(&format!("redis_{k}")) {
            if !val.is_null() {
                moved.insert(k.to_string(), val);
            }
        }
    }
    if moved.is_empty() {
        return;
    }
    let redis = obj
        .entry("redis")
        .or_insert_with(|| Value::Object(Map::new()));
    if redis.is_null() {
        *redis = Value::Object(Map::new());
    }
    if let Some(r) = redis.as_object_mut() {
        for (k, val) in moved {
            r.entry(k).or_insert(val);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub host: Option<String>,
    pub port: i64,
    pub timeout: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    pub database: i64,
    pub ssl: bool,
    pub ssl_verify: bool,
    pub server_name: Option<String>,
}

/// `config` of rate-limiting, with Kong's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub second: Option<f64>,
    pub minute: Option<f64>,
    pub hour: Option<f64>,
    pub day: Option<f64>,
    pub month: Option<f64>,
    pub year: Option<f64>,
    pub limit_by: String,
    pub header_name: Option<String>,
    pub path: Option<String>,
    pub policy: String,
    pub fault_tolerant: bool,
    pub redis: RedisConfig,
    pub hide_client_headers: bool,
    pub error_code: f64,
    pub error_message: String,
    pub sync_rate: f64,
}

impl Config {
    fn limits(&self) -> [Option<f64>; 6] {
        [
            self.second,
            self.minute,
            self.hour,
            self.day,
            self.month,
            self.year,
        ]
    }
}

/// Kong's entity checks and `custom_validator`.
pub(crate) fn check(c: &Config, errs: &mut Vec<FieldError>) {
    let limits = c.limits();
    if limits.iter().all(Option::is_none) {
        errs.push(FieldError::key(
            "@entity",
            "at least one of these fields must be non-empty: 'config.second', 'config.minute', \
             'config.hour', 'config.day', 'config.month', 'config.year'",
        ));
    }
    let cond = |errs: &mut Vec<FieldError>, field: &str, given: &str, value: &str| {
        errs.push(FieldError::key(
            &format!("config.{field}"),
            "required field missing",
        ));
        errs.push(FieldError::key(
            "@entity",
            format!("failed conditional validation given value of field 'config.{given}'"),
        ));
        let _ = value;
    };
    if c.limit_by == "header" && c.header_name.is_none() {
        cond(errs, "header_name", "limit_by", "header");
    }
    if c.limit_by == "path" && c.path.is_none() {
        cond(errs, "path", "limit_by", "path");
    }
    if c.policy == "redis" && c.redis.host.is_none() {
        cond(errs, "redis.host", "policy", "redis");
    }
    for (i, lower) in limits.iter().enumerate() {
        let Some(v1) = lower else { continue };
        for (j, upper) in limits.iter().enumerate().skip(i + 1) {
            if let Some(v2) = upper {
                if v2 < v1 {
                    errs.push(FieldError::key(
                        "config",
                        format!(
                            "The limit for {}({v2:.1}) cannot be lower than the limit for {}({v1:.1})",
                            NAMES[j], NAMES[i]
                        ),
                    ));
                    return;
                }
            }
        }
    }
    if c.policy != "redis" && c.sync_rate != -1.0 {
        errs.push(FieldError::key(
            "config",
            "sync_rate can only be used with the redis policy",
        ));
    } else if c.policy == "redis" && c.sync_rate != -1.0 && c.sync_rate < 0.02 {
        errs.push(FieldError::key(
            "config",
            "sync_rate must be greater than 0.02, or -1 to disable",
        ));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LimitBy {
    Consumer,
    Credential,
    Ip,
    Service,
    Header,
    Path,
}

pub(crate) struct Compiled {
    pub config: Config,
    plugin: u128,
    limit_by: LimitBy,
    header: Option<HeaderName>,
    /// (period index, limit, prebuilt limit header value), shortest window first.
    limits: Vec<(u8, f64, HeaderValue)>,
    error_status: StatusCode,
    store: Arc<RateLimitStore>,
    /// `policy: redis`: the shared connection (or synced counters).
    pub(crate) redis: Option<Redis>,
    /// `ratelimit:<route_id>:<service_id>:` — the plugin's own scope, as Kong keys it.
    key_prefix: String,
}

/// Compiles one rate-limiting entity; `route`/`service` are the entity's own scope (Kong's
/// `conf.route_id`/`conf.service_id`, part of the redis keys).
pub(crate) fn compile(
    config: Config,
    id: Uuid,
    scope: (Option<Uuid>, Option<Uuid>),
    store: Arc<RateLimitStore>,
) -> Compiled {
    let redis = if config.policy == "redis" {
        let r = store.redis.get(&config.redis, config.sync_rate);
        if r.is_none() {
            tracing::warn!(plugin = %id, "rate-limiting: redis unavailable; counting per node (local)");
        }
        r
    } else {
        None
    };
    let key_prefix = format!(
        "ratelimit:{}:{}:",
        scope.0.unwrap_or(Uuid::nil()),
        scope.1.unwrap_or(Uuid::nil())
    );
    let limit_by = match config.limit_by.as_str() {
        "credential" => LimitBy::Credential,
        "ip" => LimitBy::Ip,
        "service" => LimitBy::Service,
        "header" => LimitBy::Header,
        "path" => LimitBy::Path,
        _ => LimitBy::Consumer,
    };
    let header = config
        .header_name
        .as_deref()
        .and_then(|h| HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).ok());
    let limits = config
        .limits()
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.map(|l| (i as u8, l, num_header(l))))
        .collect();
    let error_status =
        StatusCode::from_u16(config.error_code as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Compiled {
        config,
        plugin: id.as_u128(),
        limit_by,
        header,
        limits,
        error_status,
        store,
        redis,
        key_prefix,
    }
}

/// What access decided, for header_filter (fixed size, no heap).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RlOutput {
    pub set: bool,
    pub stop: bool,
    /// Remaining per period index (after this request), clamped at 0.
    pub remaining: [f64; 6],
    pub tightest: u8,
    pub reset: u64,
}

fn tagged_hash(tag: u8, bytes: &[u8]) -> u128 {
    let mut a = std::hash::DefaultHasher::new();
    a.write_u8(tag);
    a.write(bytes);
    let mut b = std::hash::DefaultHasher::new();
    b.write_u8(!tag);
    b.write(bytes);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// Who is counted (Kong's `get_identifier`).
enum Ident<'r> {
    Id(Uuid),
    Header(&'r [u8]),
    Path(&'r str),
    Ip(std::net::IpAddr),
}

impl Ident<'_> {
    /// Fixed-size key of the local store.
    fn local(&self) -> u128 {
        match self {
            Ident::Id(u) => u.as_u128(),
            Ident::Header(b) => tagged_hash(1, b),
            Ident::Path(p) => tagged_hash(2, p.as_bytes()),
            Ident::Ip(std::net::IpAddr::V4(v4)) => u128::from(v4.to_ipv6_mapped()),
            Ident::Ip(std::net::IpAddr::V6(v6)) => u128::from(*v6),
        }
    }

    /// Kong's identifier string, for redis keys.
    fn write(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = match self {
            Ident::Id(u) => write!(out, "{u}"),
            Ident::Header(b) => out.write_all(b),
            Ident::Path(p) => out.write_all(p.as_bytes()),
            Ident::Ip(ip) => write!(out, "{ip}"),
        };
    }
}

fn identifier<'r>(
    c: &Compiled,
    p: &Plugins,
    st: &PluginState,
    req: &'r RequestCtx<'_>,
) -> Ident<'r> {
    let cred_id = |st: &PluginState| st.credential.and_then(|c| p.creds.credential_id(c));
    let id = match c.limit_by {
        LimitBy::Consumer => st
            .consumer
            .and_then(|i| p.creds.consumers.get(i as usize))
            .map(|c| c.id)
            .or_else(|| cred_id(st))
            .map(Ident::Id),
        LimitBy::Credential => cred_id(st).map(Ident::Id),
        LimitBy::Service => st
            .service
            .and_then(|s| p.service_ids.get(s))
            .map(|id| Ident::Id(*id)),
        LimitBy::Header => c
            .header
            .as_ref()
            .and_then(|h| req.headers.get(h))
            .map(|v| Ident::Header(v.as_bytes())),
        LimitBy::Path => {
            (c.config.path.as_deref() == Some(req.path)).then_some(Ident::Path(req.path))
        }
        LimitBy::Ip => None,
    };
    id.unwrap_or(Ident::Ip(req.client_ip))
}

/// Counts per period index after this request's increment (`None` = no such limit).
type Counts = [Option<u64>; 6];

/// The first window (shortest first) this request exceeds, given the counts after its
/// increment: admitted while `count - 1 < limit`.
fn stop_of(c: &Compiled, after: &Counts) -> Option<u8> {
    c.limits
        .iter()
        .find(|&&(pi, limit, _)| {
            after[pi as usize].is_some_and(|a| limit - (a.saturating_sub(1)) as f64 <= 0.0)
        })
        .map(|&(pi, _, _)| pi)
}

pub(crate) fn access(
    c: &Compiled,
    p: &Plugins,
    st: &mut PluginState,
    req: &mut RequestCtx<'_>,
) -> Option<Exit> {
    let ident = identifier(c, p, st, req).local();
    let now = req.now_ms;
    let mut keys = [None::<Key>; 6];
    let mut after: Counts = [None; 6];
    for &(pi, _, _) in &c.limits {
        let key = Key {
            plugin: c.plugin,
            period: pi,
            start: period_start(PERIODS[pi as usize], now),
            ident,
        };
        after[pi as usize] = Some(c.store.incr(key, now));
        keys[pi as usize] = Some(key);
    }
    if stop_of(c, &after).is_some() {
        // Refused: this request does not count against any window.
        for k in keys.iter().flatten() {
            c.store.decr(*k);
        }
    }
    decide(c, st, req, &after)
}

/// access with `policy: redis`: one redis round trip (or the synced local counters).
pub(crate) async fn access_redis(
    c: &Compiled,
    p: &Plugins,
    st: &mut PluginState,
    req: &mut RequestCtx<'_>,
) -> Option<Exit> {
    let Some(redis) = &c.redis else {
        return access(c, p, st, req);
    };
    let now = req.now_ms;
    let windows: Vec<Window> = {
        let ident = identifier(c, p, st, req);
        c.limits
            .iter()
            .map(|&(pi, limit, _)| {
                let i = pi as usize;
                let start = period_start(PERIODS[i], now);
                let mut key = Vec::with_capacity(c.key_prefix.len() + 64);
                key.extend_from_slice(c.key_prefix.as_bytes());
                ident.write(&mut key);
                key.extend_from_slice(format!(":{start}:{}", NAMES[i]).as_bytes());
                Window {
                    key,
                    ttl: EXPIRATION[i],
                    limit,
                    ends_ms: start + EXPIRATION[i] * 1000,
                }
            })
            .collect()
    };
    match redis.count(&windows).await {
        Ok(counts) => {
            let mut after: Counts = [None; 6];
            for (&(pi, _, _), n) in c.limits.iter().zip(counts) {
                after[pi as usize] = Some(u64::try_from(n).unwrap_or(0));
            }
            decide(c, st, req, &after)
        }
        Err(e) if c.config.fault_tolerant => {
            tracing::warn!(
                "rate-limiting: redis failed, request let through (fault_tolerant): {e}"
            );
            None
        }
        Err(e) => {
            tracing::error!("rate-limiting: redis failed: {e}");
            Some(respond::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error occurred",
                req.err(),
            ))
        }
    }
}

/// Headers and answer from the counts after this request's increment.
fn decide(
    c: &Compiled,
    st: &mut PluginState,
    req: &RequestCtx<'_>,
    after: &Counts,
) -> Option<Exit> {
    let now = req.now_ms;
    let stop = stop_of(c, after);
    // usage before this request
    let usage = |i: usize| after[i].map_or(0.0, |a| a.saturating_sub(1) as f64);
    if !c.config.hide_client_headers {
        let mut out = RlOutput {
            set: true,
            stop: stop.is_some(),
            ..RlOutput::default()
        };
        let mut best: Option<(f64, i64)> = None;
        for &(pi, limit, _) in &c.limits {
            let i = pi as usize;
            let mut rem = limit - usage(i);
            if stop.is_none() || stop == Some(pi) {
                rem -= 1.0;
            }
            let rem = rem.max(0.0);
            out.remaining[i] = rem;
            let window = EXPIRATION[i];
            let better = match best {
                None => true,
                Some((r, w)) => rem < r || (rem == r && window > w),
            };
            if better {
                best = Some((rem, window));
                out.tightest = pi;
                let elapsed = (now - period_start(PERIODS[i], now)).div_euclid(1000);
                out.reset = (window - elapsed).max(1) as u64;
            }
        }
        st.rl = out;
    }
    if stop.is_some() {
        return Some(respond::error(
            c.error_status,
            &c.config.error_message,
            req.err(),
        ));
    }
    None
}

pub(crate) fn header_filter(c: &Compiled, st: &PluginState, h: &mut HeaderMap) {
    let out = &st.rl;
    if !out.set {
        return;
    }
    for (pi, _, limit_hv) in &c.limits {
        let i = *pi as usize;
        let remaining = num_header(out.remaining[i]);
        h.insert(X_LIMIT[i].clone(), limit_hv.clone());
        if *pi == out.tightest {
            h.insert(RATELIMIT_LIMIT.clone(), limit_hv.clone());
            h.insert(RATELIMIT_REMAINING.clone(), remaining.clone());
        }
        h.insert(X_REMAINING[i].clone(), remaining);
    }
    let reset = num_header(out.reset as f64);
    if out.stop {
        h.insert(http::header::RETRY_AFTER, reset.clone());
    }
    h.insert(RATELIMIT_RESET.clone(), reset);
}

const SMALL: usize = 4096;

/// A number as Kong prints it (`5`, `1.5`); integers below 4096 come from a shared table,
/// so cloning them costs a reference-count bump instead of an allocation.
pub(crate) fn num_header(n: f64) -> HeaderValue {
    static TABLE: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    if n.fract() == 0.0 && n >= 0.0 && n < SMALL as f64 {
        let t = TABLE.get_or_init(|| (0..SMALL as u64).map(HeaderValue::from).collect());
        if let Some(v) = t.get(n as usize) {
            return v.clone();
        }
    }
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        // Format on the stack: one allocation (the value's bytes), not two.
        let mut buf = [0u8; 24];
        let mut i = buf.len();
        let mut v = n.abs() as u64;
        loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if n < 0.0 {
            i -= 1;
            buf[i] = b'-';
        }
        return HeaderValue::from_bytes(&buf[i..]).unwrap_or(HeaderValue::from_static("0"));
    }
    HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_utc_calendar_aligned() {
        // 2024-02-29T13:45:30.250Z
        let now = 1_709_214_330_250;
        assert_eq!(period_start(Period::Second, now), 1_709_214_330_000);
        assert_eq!(period_start(Period::Minute, now), 1_709_214_300_000);
        assert_eq!(period_start(Period::Hour, now), 1_709_211_600_000);
        assert_eq!(period_start(Period::Day, now), 1_709_164_800_000);
        assert_eq!(period_start(Period::Month, now), 1_706_745_600_000); // 2024-02-01
        assert_eq!(period_start(Period::Year, now), 1_704_067_200_000); // 2024-01-01
    }

    #[test]
    fn numbers_print_like_lua() {
        assert_eq!(num_header(5.0), "5");
        assert_eq!(num_header(100000.0), "100000");
        assert_eq!(num_header(1.5), "1.5");
        assert_eq!(num_header(4096.0), "4096");
        assert_eq!(num_header(0.0), "0");
    }
}
