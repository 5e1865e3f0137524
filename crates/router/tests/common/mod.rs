//! Builders for `Config` values with Kong's defaults, so the tables stay short.
#![allow(dead_code)]

use std::collections::BTreeMap;

use gatehouse_config::{Config, PathHandling, Protocol, Route, Service};
use gatehouse_router::{Headers, Match, Request, Router};
use uuid::Uuid;

pub fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

pub fn service(id: u128, path: Option<&str>) -> Service {
    Service {
        id: uuid(id),
        name: None,
        protocol: Protocol::Http,
        host: "upstream".into(),
        port: 80,
        path: path.map(str::to_owned),
        retries: 5,
        connect_timeout: 60000,
        write_timeout: 60000,
        read_timeout: 60000,
        tags: vec![],
        enabled: true,
        client_certificate: None,
        tls_verify: None,
        tls_verify_depth: None,
        ca_certificates: None,
        created_at: 0,
        updated_at: 0,
    }
}

/// A route with Kong's defaults and no matching fields; chain the `with_*` helpers.
pub fn route(id: u128) -> Route {
    Route {
        id: uuid(id),
        name: None,
        protocols: vec![Protocol::Http, Protocol::Https],
        methods: None,
        hosts: None,
        paths: None,
        headers: None,
        snis: None,
        sources: None,
        destinations: None,
        https_redirect_status_code: 426,
        strip_path: true,
        preserve_host: false,
        request_buffering: true,
        response_buffering: true,
        regex_priority: 0,
        path_handling: PathHandling::V0,
        service: None,
        expression: None,
        priority: None,
        tags: vec![],
        created_at: 0,
        updated_at: 0,
    }
}

fn strings(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| (*s).to_owned()).collect())
}

pub trait RouteExt {
    fn paths(self, v: &[&str]) -> Self;
    fn hosts(self, v: &[&str]) -> Self;
    fn methods(self, v: &[&str]) -> Self;
    fn snis(self, v: &[&str]) -> Self;
    fn header(self, name: &str, values: &[&str]) -> Self;
    fn regex_priority(self, p: i64) -> Self;
    fn strip(self, s: bool) -> Self;
    fn service(self, id: u128) -> Self;
}

impl RouteExt for Route {
    fn paths(mut self, v: &[&str]) -> Self {
        self.paths = strings(v);
        self
    }
    fn hosts(mut self, v: &[&str]) -> Self {
        self.hosts = strings(v);
        self
    }
    fn methods(mut self, v: &[&str]) -> Self {
        self.methods = strings(v);
        self
    }
    fn snis(mut self, v: &[&str]) -> Self {
        self.snis = strings(v);
        self
    }
    fn header(mut self, name: &str, values: &[&str]) -> Self {
        self.headers.get_or_insert_with(BTreeMap::new).insert(
            name.to_owned(),
            values.iter().map(|s| (*s).to_owned()).collect(),
        );
        self
    }
    fn regex_priority(mut self, p: i64) -> Self {
        self.regex_priority = p;
        self
    }
    fn strip(mut self, s: bool) -> Self {
        self.strip_path = s;
        self
    }
    fn service(mut self, id: u128) -> Self {
        self.service = Some(uuid(id));
        self
    }
}

pub fn config(routes: Vec<Route>) -> Config {
    Config {
        routes,
        ..Config::default()
    }
}

/// A request description for tables: method, host, path, headers, https+sni.
#[derive(Clone, Copy)]
pub struct Req {
    pub method: &'static str,
    pub host: &'static str,
    pub port: u16,
    pub path: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    pub https: bool,
    pub sni: Option<&'static str>,
}

pub const GET: Req = Req {
    method: "GET",
    host: "example.com",
    port: 8000,
    path: "/",
    headers: &[],
    https: false,
    sni: None,
};

impl Req {
    pub fn path(self, path: &'static str) -> Req {
        Req { path, ..self }
    }
    pub fn host(self, host: &'static str) -> Req {
        Req { host, ..self }
    }
    pub fn method(self, method: &'static str) -> Req {
        Req { method, ..self }
    }
    pub fn port(self, port: u16) -> Req {
        Req { port, ..self }
    }
    pub fn headers(self, headers: &'static [(&'static str, &'static str)]) -> Req {
        Req { headers, ..self }
    }
    pub fn https(self, sni: Option<&'static str>) -> Req {
        Req {
            https: true,
            sni,
            ..self
        }
    }
}

pub fn find(router: &Router, r: Req) -> Option<Match> {
    let headers: &dyn Headers = &r.headers;
    router.find(&Request {
        method: r.method,
        host: r.host,
        dst_port: r.port,
        path: r.path,
        sni: r.sni,
        https: r.https,
        headers,
    })
}

/// Index (in the config) of the route that matches `r`, or None.
pub fn matched(router: &Router, r: Req) -> Option<usize> {
    find(router, r).map(|m| m.route)
}
