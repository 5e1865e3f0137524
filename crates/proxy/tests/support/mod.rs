//! Real parts for proxy tests: an in-process echo upstream on a real socket, the gateway's
//! proxy threads on a real socket, and a real HTTP/1.1 client.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use gatehouse_config::{parse, ParseOptions, RouterFlavor, Settings};
use gatehouse_proxy::{Proxy, ProxyOptions, Snapshot, SnapshotCell};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

/// An upstream that answers every request with a JSON echo of what it received.
/// `/delay/<ms>` waits before answering; `/status/<code>` answers with that status.
pub struct Upstream {
    pub addr: SocketAddr,
    pub name: String,
    pub hits: Arc<AtomicUsize>,
}

async fn echo(
    name: String,
    hits: Arc<AtomicUsize>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    hits.fetch_add(1, Ordering::SeqCst);
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let mut headers = BTreeMap::new();
    for (k, v) in req.headers() {
        headers.insert(
            k.as_str().to_string(),
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        );
    }
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut status = 200;
    if let Some(ms) = path
        .strip_prefix("/delay/")
        .and_then(|s| s.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(code) = path
        .strip_prefix("/status/")
        .and_then(|s| s.parse::<u16>().ok())
    {
        status = code;
    }
    let out = json!({
        "upstream": name,
        "method": method,
        "uri": uri,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut resp = Response::new(Full::new(Bytes::from(out.to_string())));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    resp.headers_mut()
        .insert("x-upstream", name.parse().unwrap());
    if path.starts_with("/hop-by-hop") {
        // Connection-specific response headers the gateway must not pass on.
        for (k, v) in [
            ("connection", "keep-alive, x-up-drop"),
            ("x-up-drop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("x-up-keep", "1"),
        ] {
            resp.headers_mut().append(k, v.parse().unwrap());
        }
    }
    Ok(resp)
}

impl Upstream {
    pub fn start(name: &str) -> Upstream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let (name2, hits2) = (name.to_string(), hits.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (name, hits) = (name2.clone(), hits2.clone());
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| echo(name.clone(), hits.clone(), req));
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        });
        Upstream {
            addr,
            name: name.to_string(),
            hits,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Settings as a user would write them, with the proxy on an ephemeral port.
pub fn options() -> ProxyOptions {
    let conf = "proxy_listen = 127.0.0.1:0 reuseport\nnginx_worker_processes = 2\n";
    let settings = Settings::load(Some(conf), Vec::<(String, String)>::new(), 2).expect("settings");
    ProxyOptions::from_settings(&settings)
}

pub fn snapshot(yaml: &str) -> Snapshot {
    let opts = ParseOptions {
        plugins: gatehouse_config::settings::BUNDLED_PLUGINS
            .iter()
            .map(|p| p.to_string())
            .collect(),
        router_flavor: RouterFlavor::TraditionalCompatible,
    };
    let config = match parse(yaml, &opts) {
        Ok(c) => c,
        Err(e) => panic!("test config invalid: {e}\n{yaml}"),
    };
    Snapshot::build(
        config,
        "0123456789abcdef0123456789abcdef".into(),
        RouterFlavor::TraditionalCompatible,
    )
    .expect("snapshot builds")
}

/// A running gateway (proxy threads only) on an ephemeral port.
pub struct Gateway {
    pub addr: SocketAddr,
    /// Every listener's address, in `proxy_listen` order.
    pub addrs: Vec<SocketAddr>,
    pub cell: SnapshotCell,
    proxy: Option<Proxy>,
}

impl Gateway {
    pub fn start(yaml: &str) -> Gateway {
        Gateway::start_with(yaml, options())
    }

    pub fn start_with(yaml: &str, opts: ProxyOptions) -> Gateway {
        let cell: SnapshotCell = Arc::new(ArcSwap::from_pointee(snapshot(yaml)));
        let proxy = Proxy::start(opts, cell.clone()).expect("proxy starts");
        Gateway {
            addr: proxy.local_addrs()[0],
            addrs: proxy.local_addrs().to_vec(),
            cell,
            proxy: Some(proxy),
        }
    }

    /// Swaps in a new snapshot built the way the control thread builds it (from the previous).
    pub fn swap_from_previous(&self, yaml: &str) {
        let previous = self.cell.load_full();
        let config = snapshot(yaml).config;
        let next = Snapshot::build_from(
            config,
            "next".into(),
            RouterFlavor::TraditionalCompatible,
            Some(&previous),
        )
        .expect("snapshot builds");
        self.cell.store(Arc::new(next));
    }

    pub fn swap(&self, yaml: &str) {
        self.cell.store(Arc::new(snapshot(yaml)));
    }

    pub fn shutdown(mut self, grace: Duration) {
        if let Some(p) = self.proxy.take() {
            p.shutdown(grace);
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(p) = self.proxy.take() {
            p.shutdown(Duration::from_millis(100));
        }
    }
}

/// What a client saw.
#[derive(Debug)]
pub struct Seen {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Seen {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// For echo responses: the header the upstream received.
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        self.json()["headers"][name].as_str().map(str::to_string)
    }
}

/// Sends one request with a real HTTP/1.1 client on a new connection.
pub fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Seen {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to gateway");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = Request::builder().method(method).uri(target);
        let mut has_host = false;
        for (k, v) in headers {
            has_host |= k.eq_ignore_ascii_case("host");
            req = req.header(*k, *v);
        }
        if !has_host {
            req = req.header("host", "localhost");
        }
        let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
            .await
            .expect("gateway answered in time")
            .expect("response");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Seen {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    })
}

pub fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Seen {
    send(addr, "GET", target, headers, "")
}

/// Writes `request` as is on a new connection (e.g. a chunked body) and reads the answer
/// until the gateway closes it (send `Connection: close`): (status, headers, body).
pub fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to gateway");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).expect("write request");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}
