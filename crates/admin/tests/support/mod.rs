//! A real Admin API for tests: a real `Control` over a real LMDB `Store` in a temp dir, served
//! by a real `AdminServer` on 127.0.0.1:0, and a small raw-TCP HTTP/1.1 client (no mocks).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use gatehouse_admin::{AdminServer, AdminState, Control};
use gatehouse_config::settings::BUNDLED_PLUGINS;
use gatehouse_config::{ParseOptions, RouterFlavor};
use gatehouse_proxy::Snapshot;
use gatehouse_store::Store;
use serde_json::Value;

pub struct Admin {
    pub addr: SocketAddr,
    server: Option<AdminServer>,
    _dir: tempfile::TempDir,
}

impl Admin {
    pub fn start() -> Admin {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("lmdb"), 64 << 20).expect("store");
        let cell = Arc::new(ArcSwap::from_pointee(Snapshot::empty()));
        let options = ParseOptions {
            plugins: BUNDLED_PLUGINS.iter().map(|p| p.to_string()).collect(),
            router_flavor: RouterFlavor::TraditionalCompatible,
        };
        let state = AdminState {
            control: Arc::new(Control::new(cell, store, options)),
            node_id: "9e3b8f0c-0000-4000-8000-000000000001".into(),
            hostname: "test-host".into(),
            configuration: serde_json::json!({"router_flavor": "traditional_compatible"}),
            proxy_connections: Arc::default(),
            admin_latency_header: true,
        };
        let loopback: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let server = AdminServer::start(&[loopback], &[], state).expect("admin starts");
        Admin {
            addr: server.admin_addrs[0],
            server: Some(server),
            _dir: dir,
        }
    }

    pub fn call(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Resp {
        request(self.addr, method, path, content_type, body)
    }

    pub fn get(&self, path: &str) -> Resp {
        self.call("GET", path, "", b"")
    }

    /// GET that must answer 200 with JSON.
    pub fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.json()
    }

    pub fn load(&self, yaml: &str) {
        let r = self.call("POST", "/config", "text/yaml", yaml.as_bytes());
        assert_eq!(r.status, 201, "POST /config: {}", r.body);
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`).
pub fn request(addr: SocketAddr, method: &str, path: &str, ct: &str, body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !ct.is_empty() {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("write head");
    s.write_all(body).expect("write body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub const ID_SVC_A: &str = "00000000-0000-4000-8000-00000000000a";
pub const ID_SVC_B: &str = "00000000-0000-4000-8000-00000000000b";
pub const ID_SVC_C: &str = "00000000-0000-4000-8000-00000000000c";
pub const ID_CONSUMER: &str = "00000000-0000-4000-8000-0000000000c1";
pub const ID_UPSTREAM: &str = "00000000-0000-4000-8000-0000000000d1";
pub const ID_CERT: &str = "00000000-0000-4000-8000-0000000000e1";

/// A config touching every entity kind, with fixed ids so order is known.
/// A real self-signed pair (YAML-quoted), made once per test process so `sample()` is stable:
/// certificates that do not parse are refused like in Kong.
fn sample_pair() -> &'static (String, String) {
    static PAIR: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    PAIR.get_or_init(|| {
        let key = rcgen::KeyPair::generate().expect("key");
        let names = vec!["a.example.test".to_string(), "b.example.test".to_string()];
        let cert = rcgen::CertificateParams::new(names)
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        (
            serde_json::Value::from(cert.pem()).to_string(),
            serde_json::Value::from(key.serialize_pem()).to_string(),
        )
    })
}

pub fn sample() -> String {
    let (cert, key) = sample_pair();
    format!(
        r#"_format_version: "3.0"
services:
- id: {ID_SVC_C}
  name: svc-c
  url: http://c.example.test
  tags: [team-x]
- id: {ID_SVC_A}
  name: svc-a
  url: http://a.example.test
  tags: [team-x, prod]
  routes:
  - name: route-a
    paths: [/a]
    tags: [prod]
    plugins:
    - name: request-termination
      config: {{status_code: 403}}
  plugins:
  - name: key-auth
    tags: [prod]
- id: {ID_SVC_B}
  name: svc-b
  url: http://b.example.test
  tags: [team-y]
  routes:
  - name: route-b
    paths: [/b]
consumers:
- id: {ID_CONSUMER}
  username: alice
  custom_id: alice-42
  tags: [people]
  keyauth_credentials:
  - key: alice-key
  basicauth_credentials:
  - username: alice-basic
    password: s3cret
  acls:
  - group: admins
  jwt_secrets:
  - key: alice-jwt
    secret: jwt-secret
- username: bob
upstreams:
- id: {ID_UPSTREAM}
  name: backend.internal
  targets:
  - target: 10.0.0.1:80
  - target: 10.0.0.2:80
    weight: 50
certificates:
- id: {ID_CERT}
  cert: {cert}
  key: {key}
  snis:
  - name: b.example.test
  - name: a.example.test
"#
    )
}
