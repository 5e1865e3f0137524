//! Shared helpers: configs come from real `kong.yml` text through `gatehouse_config::parse`,
//! requests are real `http::HeaderMap`s.
#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::Arc;

use gatehouse_config::{parse, Config, ParseOptions, RouterFlavor};
use gatehouse_plugins::{compile, Exit, PluginState, Plugins, RateLimitStore, RequestCtx};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

pub const BUNDLED: &[&str] = &[
    "key-auth",
    "basic-auth",
    "acl",
    "jwt",
    "rate-limiting",
    "request-termination",
    "ip-restriction",
    "cors",
    "correlation-id",
    "prometheus",
    "request-size-limiting",
    "request-transformer",
    "response-transformer",
    "http-log",
    "file-log",
    "opentelemetry",
    "statsd",
];

pub fn config(yaml: &str) -> Config {
    let opts = ParseOptions {
        plugins: BUNDLED.iter().map(|s| s.to_string()).collect(),
        router_flavor: RouterFlavor::TraditionalCompatible,
    };
    parse(yaml, &opts).unwrap_or_else(|e| panic!("config: {e:?}"))
}

pub fn plugins(yaml: &str) -> Plugins {
    compile(&config(yaml), &RateLimitStore::new()).unwrap_or_else(|e| panic!("{e}"))
}

pub fn plugins_with(yaml: &str, store: &Arc<RateLimitStore>) -> Plugins {
    compile(&config(yaml), store).unwrap_or_else(|e| panic!("{e}"))
}

/// A request for the plugin runtime.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub ip: IpAddr,
    pub route: Option<usize>,
    pub service: Option<usize>,
    pub now_ms: Option<i64>,
}

impl Req {
    pub fn get(path_and_query: &str) -> Req {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Req {
            method: Method::GET,
            path: path.into(),
            query: query.into(),
            headers: HeaderMap::new(),
            ip: "10.0.0.1".parse().unwrap(),
            route: Some(0),
            service: Some(0),
            now_ms: None,
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
        self
    }
    pub fn ip(mut self, ip: &str) -> Req {
        self.ip = ip.parse().unwrap();
        self
    }
    pub fn route(mut self, r: Option<usize>, s: Option<usize>) -> Req {
        self.route = r;
        self.service = s;
        self
    }
    pub fn method(mut self, m: &str) -> Req {
        self.method = Method::from_bytes(m.as_bytes()).unwrap();
        self
    }
    pub fn at(mut self, ms: i64) -> Req {
        self.now_ms = Some(ms);
        self
    }
}

/// Outcome of a full plugin pass: access result, response headers after header_filter,
/// upstream (request) headers after access, and the state.
pub struct Outcome {
    pub exit: Option<Exit>,
    pub status: StatusCode,
    pub response: HeaderMap,
    pub upstream: HeaderMap,
    pub state: PluginState,
}

impl Outcome {
    pub fn body(&self) -> serde_json::Value {
        let e = self.exit.as_ref().expect("an exit");
        serde_json::from_slice(&e.body).expect("json body")
    }
    pub fn resp(&self, name: &str) -> Option<&str> {
        self.response.get(name).map(|v| v.to_str().unwrap())
    }
    pub fn up(&self, name: &str) -> Option<&str> {
        self.upstream.get(name).map(|v| v.to_str().unwrap())
    }
}

pub fn run(p: &Plugins, r: Req) -> Outcome {
    run_resp(p, r, HeaderMap::new())
}

/// Like [`run`], with the upstream's response headers when no plugin exits.
pub fn run_resp(p: &Plugins, mut r: Req, upstream_response: HeaderMap) -> Outcome {
    let mut st = PluginState::new(r.route, r.service);
    let exit = {
        let mut ctx = RequestCtx::new(&r.method, &r.path, &r.query, &mut r.headers, r.ip);
        ctx.request_id = "rid-1";
        if let Some(ms) = r.now_ms {
            ctx.now_ms = ms;
        }
        match p.run_rewrite(&mut st, &mut ctx) {
            Some(x) => Some(x),
            None => p.run_access(&mut st, &mut ctx),
        }
    };
    let (status, mut response) = match &exit {
        Some(x) => (x.status, x.headers.clone()),
        None => (StatusCode::OK, upstream_response),
    };
    p.run_header_filter(&mut st, status, &mut response);
    p.run_log(&st, status);
    Outcome {
        exit,
        status,
        response,
        upstream: r.headers,
        state: st,
    }
}

pub const BASE: &str = r#"
_format_version: "3.0"
services:
- name: svc
  url: http://upstream.test:8080
  routes:
  - name: r0
    paths: ["/r0"]
  - name: r1
    paths: ["/r1"]
- name: svc2
  url: http://upstream2.test
  routes:
  - name: r2
    paths: ["/r2"]
consumers:
- username: alice
  custom_id: a-1
  keyauth_credentials:
  - key: alice-key
  acls:
  - group: admins
  - group: users
- username: bob
  keyauth_credentials:
  - key: bob-key
  acls:
  - group: users
- username: anon
"#;
