//! Settings loader: precedence, Kong's value syntaxes, and the error/warning contract.

use std::net::IpAddr;
use std::path::PathBuf;

use gatehouse_config::settings::{Cidr, HeaderTokens, ListenAddr, BUNDLED_PLUGINS};
use gatehouse_config::{RouterFlavor, Settings};

/// A settings text and a predicate on the loaded settings.
type Check = fn(&Settings) -> bool;
/// Text, environment, expected substring of the error.
type ErrorCase<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(text: &str, vars: &[(&str, &str)]) -> Settings {
    match Settings::load(Some(text), env(vars), 4) {
        Ok(s) => s,
        Err(e) => panic!("load failed for {text:?} / {vars:?}: {e}"),
    }
}

fn load_err(text: &str, vars: &[(&str, &str)]) -> String {
    match Settings::load(Some(text), env(vars), 4) {
        Ok(s) => panic!("expected an error for {text:?} / {vars:?}, got {s:?}"),
        Err(e) => e.to_string(),
    }
}

fn listen(addr: &str) -> ListenAddr {
    ListenAddr {
        addr: addr.parse().expect("test address"),
        ssl: false,
        http2: false,
        proxy_protocol: false,
        reuseport: false,
        backlog: None,
        deferred: false,
        bind: false,
        ipv6only: None,
        so_keepalive: None,
    }
}

#[test]
fn defaults() {
    let s = Settings::load(None, Vec::new(), 6).expect("defaults load");
    assert_eq!(s.prefix, PathBuf::from("./servroot"));
    assert_eq!(s.database, "off");
    assert_eq!(s.declarative_config, None);
    assert_eq!(
        s.proxy_listen,
        vec![
            ListenAddr {
                reuseport: true,
                backlog: Some(16384),
                ..listen("0.0.0.0:8000")
            },
            ListenAddr {
                ssl: true,
                http2: true,
                reuseport: true,
                backlog: Some(16384),
                ..listen("0.0.0.0:8443")
            }
        ]
    );
    assert_eq!(
        s.admin_listen,
        vec![ListenAddr {
            reuseport: true,
            backlog: Some(16384),
            ..listen("127.0.0.1:8001")
        }]
    );
    assert_eq!(s.status_listen, vec![listen("127.0.0.1:8100")]);
    assert_eq!(s.router_flavor, RouterFlavor::TraditionalCompatible);
    assert_eq!(s.worker_processes, 6);
    assert_eq!(s.lmdb_map_size, 2048 * 1024 * 1024);
    assert_eq!(s.lmdb_path(), PathBuf::from("./servroot/dbless.lmdb"));
    assert!(s.trusted_ips.is_empty());
    assert!(!s.trusted_unix);
    assert_eq!(s.real_ip_header, "X-Real-IP");
    assert!(!s.allow_debug_header);
    assert_eq!(s.headers, HeaderTokens::default());
    assert!(s.headers.server && s.headers.via && s.headers.request_id && s.headers.proxy_latency);
    assert!(!s.headers.upstream_status);
    assert!(s.upstream_request_id);
    assert_eq!(s.plugins.len(), BUNDLED_PLUGINS.len());
    assert_eq!(s.log_level, "notice");
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn bundled_plugins_match_kong_3_9() {
    assert_eq!(BUNDLED_PLUGINS.len(), 45);
    for p in [
        "key-auth",
        "rate-limiting",
        "prometheus",
        "ai-proxy",
        "redirect",
        "standard-webhooks",
    ] {
        assert!(BUNDLED_PLUGINS.contains(&p), "{p}");
    }
}

#[test]
fn precedence_defaults_file_env() {
    let text = "log_level = debug\nprefix = /tmp/file\n";
    let s = load(
        text,
        &[("KONG_PREFIX", "/tmp/env"), ("OTHER_PREFIX", "/nope")],
    );
    assert_eq!(s.prefix, PathBuf::from("/tmp/env"));
    assert_eq!(s.log_level, "debug");
    // Case-insensitive suffix, empty variable ignored (Kong keeps the file value).
    let s = load("log_level = info", &[("kong_Log_Level", "warn")]);
    assert_eq!(s.log_level, "warn");
    let s = load("log_level = info", &[("KONG_LOG_LEVEL", "")]);
    assert_eq!(s.log_level, "info");
}

#[test]
fn conf_syntax() {
    let text = "\
# a comment
   # indented comment

proxy_listen = 0.0.0.0:9000  # trailing comment
real_ip_header = X-Forwarded-For
log_level=error
real_ip_header = X-Real\\#IP
declarative_config =
prefix = /a
prefix = /b
";
    let s = load(text, &[]);
    assert_eq!(s.proxy_listen, vec![listen("0.0.0.0:9000")]);
    assert_eq!(s.real_ip_header, "X-Real#IP");
    assert_eq!(s.log_level, "error");
    assert_eq!(s.declarative_config, None);
    assert_eq!(s.prefix, PathBuf::from("/b"));
    // Line continuation.
    let s = load("plugins = key-auth, \\\n   acl", &[]);
    assert_eq!(s.plugins, vec!["key-auth", "acl"]);
    // Kong's NONE marker means unset.
    let s = load("trusted_ips = NONE\ndeclarative_config = NONE", &[]);
    assert!(s.trusted_ips.is_empty());
    assert_eq!(s.declarative_config, None);
}

#[test]
fn listeners() {
    let s = load(
        "proxy_listen = 0.0.0.0:8000 reuseport backlog=16384, 0.0.0.0:8443 http2 ssl reuseport backlog=16384, [::]:8000 proxy_protocol deferred bind ipv6only=on so_keepalive=on",
        &[],
    );
    assert_eq!(s.proxy_listen.len(), 3);
    assert_eq!(
        s.proxy_listen[1],
        ListenAddr {
            ssl: true,
            http2: true,
            reuseport: true,
            backlog: Some(16384),
            ..listen("0.0.0.0:8443")
        }
    );
    assert_eq!(
        s.proxy_listen[2],
        ListenAddr {
            proxy_protocol: true,
            deferred: true,
            bind: true,
            ipv6only: Some(true),
            so_keepalive: Some("on".into()),
            ..listen("[::]:8000")
        }
    );
    let s = load("admin_listen = off\nstatus_listen = off", &[]);
    assert!(s.admin_listen.is_empty() && s.status_listen.is_empty());
    let s = load("admin_listen = localhost:8001", &[]);
    assert_eq!(s.admin_listen, vec![listen("127.0.0.1:8001")]);
}

#[test]
fn values() {
    let cases: &[(&str, Check)] = &[
        ("nginx_worker_processes = auto", |s| s.worker_processes == 4),
        ("nginx_worker_processes = 2", |s| s.worker_processes == 2),
        (
            "nginx_worker_processes = 2\nnginx_main_worker_processes = 3",
            |s| s.worker_processes == 3,
        ),
        ("lmdb_map_size = 1g", |s| s.lmdb_map_size == 1 << 30),
        ("lmdb_map_size = 512k", |s| s.lmdb_map_size == 512 << 10),
        ("lmdb_map_size = 100M", |s| s.lmdb_map_size == 100 << 20),
        ("lmdb_map_size = 65536", |s| s.lmdb_map_size == 65536),
        ("router_flavor = expressions", |s| {
            s.router_flavor == RouterFlavor::Expressions
        }),
        ("router_flavor = traditional", |s| {
            s.router_flavor == RouterFlavor::TraditionalCompatible && s.warnings.len() == 1
        }),
        ("allow_debug_header = on", |s| s.allow_debug_header),
        ("allow_debug_header = true", |s| s.allow_debug_header),
        ("allow_debug_header = off", |s| !s.allow_debug_header),
        ("real_ip_recursive = on", |s| s.real_ip_recursive),
        ("headers = off", |s| s.headers == HeaderTokens::none()),
        ("headers = Server, X-Kong-Upstream-Status", |s| {
            s.headers
                == HeaderTokens {
                    server: true,
                    upstream_status: true,
                    ..HeaderTokens::none()
                }
        }),
        ("headers = latency_tokens", |s| {
            let h = s.headers;
            h.proxy_latency
                && h.upstream_latency
                && h.response_latency
                && !h.server
                && !h.request_id
        }),
        ("headers_upstream = off", |s| !s.upstream_request_id),
        ("plugins = off", |s| s.plugins.is_empty()),
        ("plugins = key-auth, bundled", |s| {
            s.plugins[0] == "key-auth" && s.plugins.len() == BUNDLED_PLUGINS.len()
        }),
        ("plugins = my-plugin", |s| {
            s.plugins == ["my-plugin"] && s.warnings.len() == 1
        }),
        ("database = off", |s| s.database == "off"),
        ("declarative_config = /etc/kong/kong.yml", |s| {
            s.declarative_config.as_deref() == Some(std::path::Path::new("/etc/kong/kong.yml"))
        }),
        ("lmdb_environment_path = /var/lmdb", |s| {
            s.lmdb_path() == std::path::Path::new("/var/lmdb")
        }),
        ("log_level = WARN", |s| s.log_level == "warn"),
    ];
    for (text, check) in cases {
        let s = load(text, &[]);
        assert!(check(&s), "{text}: {s:?}");
    }
}

#[test]
fn trusted_ips() {
    let s = load("trusted_ips = 0.0.0.0/0,::/0, unix:, 10.1.2.3", &[]);
    assert!(s.trusted_unix);
    assert_eq!(
        s.trusted_ips,
        vec![
            Cidr {
                addr: "0.0.0.0".parse().expect("ip"),
                prefix_len: 0
            },
            Cidr {
                addr: "::".parse().expect("ip"),
                prefix_len: 0
            },
            Cidr {
                addr: "10.1.2.3".parse().expect("ip"),
                prefix_len: 32
            },
        ]
    );
    let ip: IpAddr = "192.168.1.1".parse().expect("ip");
    assert!(s.trusted_ips[0].contains(ip));
    assert!(!s.trusted_ips[2].contains(ip));
}

#[test]
fn ignored_keys_warn() {
    let text = "anonymous_reports = off\nnginx_http_client_max_body_size = 10m\nmem_cache_size = 128m\npg_host = db";
    let s = load(
        text,
        &[
            ("KONG_PROXY_ERROR_LOG", "/dev/stderr"),
            ("KONG_VERSION", "3.9.1"),
            ("HOME", "/root"),
        ],
    );
    assert_eq!(s.warnings.len(), 6, "{:?}", s.warnings);
    assert!(s
        .warnings
        .iter()
        .any(|w| w.contains("ignoring env KONG_VERSION: unknown property 'version'")));
    assert!(s
        .warnings
        .iter()
        .any(|w| w.contains("'proxy_error_log' in env KONG_PROXY_ERROR_LOG")));
    assert!(s
        .warnings
        .iter()
        .any(|w| w.contains("'anonymous_reports' in kong.conf (line 1)")));
}

#[test]
fn proxy_access_log() {
    let cases: &[(Option<&str>, Option<&str>)] = &[
        (None, Some("/kong/logs/access.log")),
        (Some("off"), None),
        (Some("/dev/stdout"), Some("/dev/stdout")),
        (Some("logs/proxy.log basic"), Some("/kong/logs/proxy.log")),
    ];
    for (value, want) in cases {
        let mut text = "prefix = /kong\n".to_string();
        if let Some(v) = value {
            text.push_str(&format!("proxy_access_log = {v}\n"));
        }
        let s = load(&text, &[]);
        assert_eq!(
            s.proxy_access_log_path().as_deref(),
            want.map(std::path::Path::new),
            "{value:?}"
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }
}

#[test]
fn errors() {
    let cases: &[ErrorCase] = &[
        ("proxy_lisen = 0.0.0.0:8000", &[], "unknown property 'proxy_lisen' in kong.conf (line 1)"),
        ("database = postgres", &[], "invalid value 'postgres' for 'database' in kong.conf (line 1): Gatehouse only runs DB-less"),
        ("", &[("KONG_DATABASE", "postgres")], "invalid value 'postgres' for 'database' in env KONG_DATABASE"),
        ("proxy_listen = 0.0.0.0", &[], "invalid value '0.0.0.0' for 'proxy_listen'"),
        ("proxy_listen = 0.0.0.0:8000 fast", &[], "unexpected 'fast' in '0.0.0.0:8000 fast': must be of form"),
        ("proxy_listen = example.com:80", &[], "invalid address 'example.com:80'"),
        ("proxy_listen = 0.0.0.0:8000 backlog=x", &[], "invalid backlog"),
        ("router_flavor = fast", &[], "invalid value 'fast' for 'router_flavor'"),
        ("nginx_worker_processes = 0", &[], "must be 'auto' or a positive integer"),
        ("lmdb_map_size = 2tb", &[], "invalid value '2tb' for 'lmdb_map_size'"),
        ("lmdb_map_size = 0", &[], "must be greater than 0"),
        ("trusted_ips = 10.0.0.0/33", &[], "got '10.0.0.0/33'"),
        ("trusted_ips = nope", &[], "got 'nope'"),
        ("allow_debug_header = yes", &[], "invalid value 'yes' for 'allow_debug_header' in kong.conf (line 1): must be one of on, off"),
        ("headers = X-Powered-By", &[], "invalid entry 'X-Powered-By'"),
        ("log_level = loud", &[], "must be one of debug, info"),
        ("just some words", &[], "invalid line 1 in kong.conf: expected 'key = value'"),
        ("= value", &[], "missing key"),
    ];
    for (text, vars, expected) in cases {
        let err = load_err(text, vars);
        assert!(
            err.contains(expected),
            "{text:?}/{vars:?}: expected {expected:?} in {err:?}"
        );
    }
}

#[test]
fn all_errors_reported() {
    let err = load_err("foo = 1\nbar = 2\nlog_level = x", &[]);
    assert_eq!(err.lines().count(), 3, "{err}");
}

#[test]
fn ssl_settings() {
    use gatehouse_config::settings::TlsVersion::*;
    let d = load("", &[]);
    assert_eq!(d.ssl.protocols, vec![Tls1_2, Tls1_3]);
    assert!(d.ssl.cert.is_empty() && d.ssl.session_tickets);
    assert_eq!(d.ssl.session_timeout.as_secs(), 86_400);

    // (conf, protocols in force): a named suite decides; `custom` takes ssl_protocols.
    let cases = [
        ("ssl_cipher_suite = modern", vec![Tls1_3]),
        (
            "ssl_cipher_suite = old",
            vec![Tls1_0, Tls1_1, Tls1_2, Tls1_3],
        ),
        ("ssl_cipher_suite = fips", vec![Tls1_2]),
        ("ssl_protocols = TLSv1.2", vec![Tls1_2, Tls1_3]),
        (
            "ssl_cipher_suite = custom\nssl_protocols = TLSv1.3 TLSv1.2",
            vec![Tls1_2, Tls1_3],
        ),
        (
            "ssl_cipher_suite = custom\nssl_protocols = TLSv1.2",
            vec![Tls1_2],
        ),
    ];
    for (text, protocols) in cases {
        assert_eq!(load(text, &[]).ssl.protocols, protocols, "{text}");
    }

    let s = load(
        "ssl_cert = /a.crt, /b.crt\nssl_cert_key = /a.key,/b.key\nssl_session_tickets = off\n\
         ssl_session_timeout = 10m\nssl_session_cache_size = 1m",
        &[
            ("KONG_ADMIN_SSL_CERT", "/admin.crt"),
            ("KONG_ADMIN_SSL_CERT_KEY", "/admin.key"),
        ],
    );
    assert_eq!(s.ssl.cert, vec!["/a.crt", "/b.crt"]);
    assert_eq!(s.ssl.cert_key, vec!["/a.key", "/b.key"]);
    assert_eq!(s.ssl.admin_cert, vec!["/admin.crt"]);
    assert!(!s.ssl.session_tickets);
    assert_eq!(s.ssl.session_timeout.as_secs(), 600);
    assert_eq!(s.ssl.session_cache_size, 1 << 20);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);

    // Kong's cross-key rules apply to a listener family that has an `ssl` entry.
    let errors: &[ErrorCase] = &[
        ("ssl_cert = /a.crt", &[], "ssl_cert_key must be specified"),
        ("ssl_cert_key = /a.key", &[], "ssl_cert must be specified"),
        (
            "ssl_cert = /a.crt,/b.crt\nssl_cert_key = /a.key",
            &[],
            "ssl_cert was specified 2 times while ssl_cert_key was specified 1 times",
        ),
        (
            "admin_listen = 127.0.0.1:8444 ssl\nadmin_ssl_cert = /a.crt",
            &[],
            "admin_ssl_cert_key must be specified",
        ),
        (
            "status_listen = 127.0.0.1:8100 ssl\nstatus_ssl_cert_key = /a.key",
            &[],
            "status_ssl_cert must be specified",
        ),
        (
            "ssl_cipher_suite = strong",
            &[],
            "Undefined cipher suite strong",
        ),
        (
            "ssl_cipher_suite = custom\nssl_protocols = SSLv3",
            &[],
            "unknown protocol 'SSLv3'",
        ),
        (
            "ssl_session_timeout = soon",
            &[],
            "invalid value 'soon' for 'ssl_session_timeout'",
        ),
    ];
    for (text, vars, expected) in errors {
        let err = load_err(text, vars);
        assert!(
            err.contains(expected),
            "{text:?}: expected {expected:?} in {err:?}"
        );
    }
    // Without an ssl admin listener, half an admin pair is not an error (Kong checks per family).
    load("admin_ssl_cert = /a.crt", &[]);
}
