//! Kong-style settings: defaults < `kong.conf`-style text (`-c FILE`) < `KONG_*` environment.
//!
//! Gatehouse must start from an unchanged Kong deployment (a `kong.conf`, a Docker image full of
//! `KONG_*` variables), so this module accepts Kong's syntax and keys. Keys Gatehouse does not act
//! on are accepted with a warning (`settings/keys.rs`); truly unknown keys in the file are an error
//! naming the key, because a typo like `proxy_lisen` would otherwise silently keep the default.
//! Unknown `KONG_*` variables only warn: images set many that are not settings (`KONG_VERSION`).
//!
//! Pure: the caller reads the file and the environment and passes them in.

mod keys;
mod ssl;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

pub use keys::{BUNDLED_PLUGINS, IGNORED_KEYS, IGNORED_PREFIXES};
pub use ssl::{SslSettings, TlsVersion};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouterFlavor {
    #[default]
    TraditionalCompatible,
    Expressions,
}

/// One entry of a `*_listen` list, e.g. `0.0.0.0:8443 http2 ssl reuseport backlog=16384`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr {
    pub addr: SocketAddr,
    pub ssl: bool,
    pub http2: bool,
    pub proxy_protocol: bool,
    pub reuseport: bool,
    pub backlog: Option<u32>,
    /// nginx `deferred` (TCP_DEFER_ACCEPT).
    pub deferred: bool,
    /// nginx `bind` (separate bind(2) for this address).
    pub bind: bool,
    /// `ipv6only=on|off`; `None` = the OS default.
    pub ipv6only: Option<bool>,
    /// `so_keepalive=on|off|idle:intvl:cnt`, verbatim.
    pub so_keepalive: Option<String>,
}

/// An IP network (`10.0.0.0/8`, `::1/128`, or a bare address = full-length mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix_len.min(32));
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix_len.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Which Kong response headers are emitted (`headers` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderTokens {
    /// `Server` / `Via` (`server_tokens`, or the individual `server`/`via`).
    pub server: bool,
    pub via: bool,
    /// `X-Kong-Proxy-Latency`, `X-Kong-Upstream-Latency`, `X-Kong-Response-Latency`.
    pub proxy_latency: bool,
    pub upstream_latency: bool,
    pub response_latency: bool,
    pub request_id: bool,
    /// `X-Kong-Admin-Latency` (part of `latency_tokens` in Kong 3.9).
    pub admin_latency: bool,
    /// `X-Kong-Upstream-Status` (only when listed explicitly).
    pub upstream_status: bool,
}

impl HeaderTokens {
    /// `headers = off`.
    pub fn none() -> HeaderTokens {
        HeaderTokens {
            server: false,
            via: false,
            proxy_latency: false,
            upstream_latency: false,
            response_latency: false,
            request_id: false,
            admin_latency: false,
            upstream_status: false,
        }
    }
}

impl Default for HeaderTokens {
    /// Kong's default `server_tokens, latency_tokens, X-Kong-Request-Id`.
    fn default() -> HeaderTokens {
        HeaderTokens {
            server: true,
            via: true,
            proxy_latency: true,
            upstream_latency: true,
            response_latency: true,
            request_id: true,
            admin_latency: true,
            upstream_status: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub prefix: PathBuf,
    /// Only `off` is supported.
    pub database: String,
    pub declarative_config: Option<PathBuf>,
    /// `declarative_config_string`: the config itself (takes precedence over the file in Kong).
    pub declarative_config_string: Option<String>,
    pub proxy_listen: Vec<ListenAddr>,
    pub admin_listen: Vec<ListenAddr>,
    pub status_listen: Vec<ListenAddr>,
    pub router_flavor: RouterFlavor,
    /// Proxy threads; `auto` resolved to the number of cores.
    pub worker_processes: usize,
    /// LMDB directory, relative to `prefix` unless absolute (see [`Settings::lmdb_path`]).
    pub lmdb_environment_path: PathBuf,
    pub lmdb_map_size: u64,
    pub trusted_ips: Vec<Cidr>,
    /// `unix:` was listed in `trusted_ips` (trust clients on unix sockets).
    pub trusted_unix: bool,
    pub real_ip_header: String,
    pub real_ip_recursive: bool,
    /// `proxy_access_log`: the proxy access log file, relative to `prefix` unless absolute
    /// (see [`Settings::proxy_access_log_path`]); `None` = `off`.
    pub proxy_access_log: Option<PathBuf>,
    pub allow_debug_header: bool,
    pub headers: HeaderTokens,
    /// `headers_upstream` contains `X-Kong-Request-Id` (the default).
    pub upstream_request_id: bool,
    /// Enabled plugin names, `bundled` expanded.
    pub plugins: Vec<String>,
    pub log_level: String,
    /// `ssl_*`, `admin_ssl_*`, `status_ssl_*`: TLS server settings (see `settings/ssl.rs`).
    pub ssl: SslSettings,
    /// Notes for the operator (ignored keys, deprecated values); log them at start-up.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

/// Gatehouse defaults where they differ from Kong's: DB-less, relative prefix.
const DEFAULT_PROXY_LISTEN: &str =
    "0.0.0.0:8000 reuseport backlog=16384, 0.0.0.0:8443 http2 ssl reuseport backlog=16384";
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8001 reuseport backlog=16384";
const DEFAULT_STATUS_LISTEN: &str = "127.0.0.1:8100";
const LOG_LEVELS: &[&str] = &[
    "debug", "info", "notice", "warn", "error", "crit", "alert", "emerg",
];

/// Where a value came from, for messages.
#[derive(Debug, Clone)]
enum Origin {
    File { line: usize },
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { line } => write!(f, "in kong.conf (line {line})"),
            Origin::Env(var) => write!(f, "in env {var}"),
        }
    }
}

impl Settings {
    /// The defaults, with `auto` workers resolved to `cores`.
    pub fn defaults(cores: usize) -> Settings {
        let listen = |s: &str| values::listeners(s).unwrap_or_default();
        Settings {
            prefix: PathBuf::from("./servroot"),
            database: "off".into(),
            declarative_config: None,
            declarative_config_string: None,
            proxy_listen: listen(DEFAULT_PROXY_LISTEN),
            admin_listen: listen(DEFAULT_ADMIN_LISTEN),
            status_listen: listen(DEFAULT_STATUS_LISTEN),
            router_flavor: RouterFlavor::TraditionalCompatible,
            worker_processes: cores.max(1),
            lmdb_environment_path: PathBuf::from("dbless.lmdb"),
            lmdb_map_size: 2048 << 20,
            trusted_ips: Vec::new(),
            trusted_unix: false,
            real_ip_header: "X-Real-IP".into(),
            real_ip_recursive: false,
            proxy_access_log: Some(PathBuf::from("logs/access.log")),
            allow_debug_header: false,
            headers: HeaderTokens::default(),
            upstream_request_id: true,
            plugins: BUNDLED_PLUGINS.iter().map(|p| p.to_string()).collect(),
            log_level: "notice".into(),
            ssl: SslSettings::default(),
            warnings: Vec::new(),
        }
    }

    /// The LMDB directory: `lmdb_environment_path` under `prefix` (an absolute path stays as is).
    pub fn lmdb_path(&self) -> PathBuf {
        self.prefix.join(&self.lmdb_environment_path)
    }

    /// The proxy access log file (`proxy_access_log` under `prefix`), or `None` when `off`.
    pub fn proxy_access_log_path(&self) -> Option<PathBuf> {
        self.proxy_access_log.as_ref().map(|p| self.prefix.join(p))
    }

    /// Defaults, overridden by `conf_text` (a `kong.conf`), overridden by `KONG_*` variables of
    /// `env`. All problems are reported at once, one per line.
    pub fn load(
        conf_text: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
        cores: usize,
    ) -> Result<Settings, SettingsError> {
        let mut settings = Settings::defaults(cores);
        let mut errors = Vec::new();
        // Last writer wins: file lines in order, then the environment.
        let mut raw: BTreeMap<String, (String, Origin)> = BTreeMap::new();

        if let Some(text) = conf_text {
            for (line, key, value) in parse_conf(text, &mut errors) {
                if is_known(&key) {
                    raw.insert(key, (value, Origin::File { line }));
                } else {
                    errors.push(format!(
                        "unknown property '{key}' in kong.conf (line {line})"
                    ));
                }
            }
        }
        let mut env: Vec<(String, String)> = env.into_iter().collect();
        env.sort();
        for (var, value) in env {
            let Some(suffix) = var
                .get(..5)
                .filter(|p| p.eq_ignore_ascii_case("KONG_"))
                .map(|_| &var[5..])
            else {
                continue;
            };
            let key = suffix.to_ascii_lowercase();
            if !is_known(&key) {
                settings
                    .warnings
                    .push(format!("ignoring env {var}: unknown property '{key}'"));
                continue;
            }
            // Kong ignores empty variables (`env ~= ""` in `overrides`); values are stripped.
            let value = value.trim().to_string();
            if !value.is_empty() {
                raw.insert(key, (value, Origin::Env(var.clone())));
            }
        }

        // `nginx_main_worker_processes` wins over its alias `nginx_worker_processes` (Kong 3.9).
        if let Some(main) = raw.remove("nginx_main_worker_processes") {
            raw.insert("nginx_worker_processes".into(), main);
        }
        for (key, (value, origin)) in &raw {
            if value == "NONE" {
                continue; // Kong's "unset" marker in kong_defaults
            }
            if let Err(reason) = settings.apply(key, value, origin, cores) {
                errors.push(format!(
                    "invalid value '{value}' for '{key}' {origin}: {reason}"
                ));
            }
        }
        settings.ssl.finish(
            &settings.proxy_listen,
            &settings.admin_listen,
            &settings.status_listen,
            &mut errors,
        );
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(SettingsError(errors.join("\n")))
        }
    }

    /// Sets one key from its raw string value.
    fn apply(
        &mut self,
        key: &str,
        value: &str,
        origin: &Origin,
        cores: usize,
    ) -> Result<(), String> {
        match key {
            "prefix" => self.prefix = PathBuf::from(value),
            "database" => {
                if value != "off" {
                    return Err("Gatehouse only runs DB-less; set database = off".into());
                }
                self.database = value.into();
            }
            "declarative_config" => self.declarative_config = Some(PathBuf::from(value)),
            "declarative_config_string" => self.declarative_config_string = Some(value.into()),
            "proxy_listen" => self.proxy_listen = values::listeners(value)?,
            "admin_listen" => self.admin_listen = values::listeners(value)?,
            "status_listen" => self.status_listen = values::listeners(value)?,
            "router_flavor" => {
                self.router_flavor = match value {
                    "traditional_compatible" => RouterFlavor::TraditionalCompatible,
                    "expressions" => RouterFlavor::Expressions,
                    "traditional" => {
                        self.warnings.push(format!(
                            "router_flavor = traditional {origin} is served by the \
                             traditional_compatible router"
                        ));
                        RouterFlavor::TraditionalCompatible
                    }
                    _ => {
                        return Err(
                            "must be one of traditional_compatible, expressions, traditional"
                                .into(),
                        )
                    }
                }
            }
            "nginx_worker_processes" => {
                self.worker_processes = match value {
                    "auto" => cores.max(1),
                    n => n
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or("must be 'auto' or a positive integer")?,
                }
            }
            "lmdb_environment_path" => self.lmdb_environment_path = PathBuf::from(value),
            "lmdb_map_size" => self.lmdb_map_size = values::size(value)?,
            "trusted_ips" => {
                self.trusted_ips.clear();
                self.trusted_unix = false;
                for entry in values::list(value) {
                    if entry == "unix:" {
                        self.trusted_unix = true;
                    } else {
                        let cidr = values::cidr(&entry).ok_or_else(|| {
                            format!(
                                "trusted_ips must be a comma separated list in the form of IPv4 \
                                 or IPv6 address or CIDR block or 'unix:', got '{entry}'"
                            )
                        })?;
                        self.trusted_ips.push(cidr);
                    }
                }
            }
            "real_ip_header" => self.real_ip_header = value.into(),
            "real_ip_recursive" => self.real_ip_recursive = values::boolean(value)?,
            // nginx `access_log` syntax: `path [format]`; only Kong's default format exists.
            "proxy_access_log" => {
                self.proxy_access_log = match value.split_whitespace().next() {
                    None => return Err("must be a file path or 'off'".into()),
                    Some("off") => None,
                    Some(path) => Some(PathBuf::from(path)),
                }
            }
            "allow_debug_header" => self.allow_debug_header = values::boolean(value)?,
            "headers" => self.headers = values::headers(value)?,
            "headers_upstream" => self.upstream_request_id = values::headers_upstream(value)?,
            "plugins" => self.plugins = self.plugin_list(value, origin),
            "log_level" => {
                let level = value.to_ascii_lowercase();
                if !LOG_LEVELS.contains(&level.as_str()) {
                    return Err(format!("must be one of {}", LOG_LEVELS.join(", ")));
                }
                self.log_level = level;
            }
            k if ssl::SSL_KEYS.contains(&k) => self.ssl.apply(k, value)?,
            _ => self.warnings.push(format!(
                "'{key}' {origin} is a Kong setting Gatehouse does not use; ignored"
            )),
        }
        Ok(())
    }

    /// `plugins`: `bundled` expands to [`BUNDLED_PLUGINS`], `off` first disables all, duplicates
    /// are dropped (first position kept).
    fn plugin_list(&mut self, value: &str, origin: &Origin) -> Vec<String> {
        let names = values::list(value);
        let mut out: Vec<String> = Vec::new();
        if names.first().is_some_and(|n| n == "off") {
            return out;
        }
        for name in names {
            let expanded: Vec<String> = match name.as_str() {
                "off" => continue,
                "bundled" => BUNDLED_PLUGINS.iter().map(|p| p.to_string()).collect(),
                _ => {
                    if !BUNDLED_PLUGINS.contains(&name.as_str()) {
                        self.warnings.push(format!(
                            "plugin '{name}' {origin} is not a Kong bundled plugin; Gatehouse \
                             cannot load custom plugins"
                        ));
                    }
                    vec![name]
                }
            };
            for n in expanded {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        out
    }
}

/// Keys this loader handles itself.
const USED_KEYS: &[&str] = &[
    "prefix",
    "database",
    "declarative_config",
    "declarative_config_string",
    "proxy_listen",
    "admin_listen",
    "status_listen",
    "router_flavor",
    "nginx_worker_processes",
    "nginx_main_worker_processes",
    "lmdb_environment_path",
    "lmdb_map_size",
    "trusted_ips",
    "real_ip_header",
    "real_ip_recursive",
    "proxy_access_log",
    "allow_debug_header",
    "headers",
    "headers_upstream",
    "plugins",
    "log_level",
];

fn is_known(key: &str) -> bool {
    USED_KEYS.contains(&key) || ssl::SSL_KEYS.contains(&key) || keys::is_ignored(key)
}

/// Kong's conf format (penlight `pl.config` + `strip_comments` in `kong/conf_loader`): one
/// `key = value` per line, `#` starts a comment (also after a value; `\#` is a literal `#`), a
/// trailing `\` continues the line, empty values mean "unset". Returns `(line, key, value)`.
fn parse_conf(text: &str, errors: &mut Vec<String>) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw_line) in text.lines().enumerate() {
        let (start, mut line) = match pending.take() {
            Some((start, mut acc)) => {
                acc.push_str(raw_line.trim_start());
                (start, acc)
            }
            None => (i + 1, raw_line.to_string()),
        };
        if line.ends_with('\\') && !line.ends_with("\\\\") {
            line.pop();
            pending = Some((start, line));
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            errors.push(format!(
                "invalid line {start} in kong.conf: expected 'key = value', got '{trimmed}'"
            ));
            continue;
        };
        let key = key.trim().to_string();
        let value = strip_comment(value);
        if key.is_empty() {
            errors.push(format!(
                "invalid line {start} in kong.conf: missing key in '{trimmed}'"
            ));
        } else if value.is_empty() {
            out.retain(|(_, k, _): &(usize, String, String)| *k != key);
        } else {
            out.push((start, key, value));
        }
    }
    out
}

/// Removes a trailing comment (the first `#` not escaped as `\#`) and unescapes `\#`.
fn strip_comment(value: &str) -> String {
    let bytes = value.as_bytes();
    let cut = (0..bytes.len()).find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1] != b'\\'));
    let kept = cut.map_or(value, |i| &value[..i]);
    kept.trim().replace("\\#", "#")
}
