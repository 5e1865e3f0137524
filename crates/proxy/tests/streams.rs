//! Upstream TLS (verification, CAs, mutual TLS, SNI, pooling), WebSocket and gRPC through the
//! real listeners, against real upstreams: a rustls HTTPS echo, a tokio-tungstenite WebSocket
//! echo, and a gRPC echo spoken as raw gRPC framing over hyper's HTTP/2 (no protoc, no tonic:
//! the framing is five bytes, and hyper is what the gateway itself uses).

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use gatehouse_config::Settings;
use gatehouse_proxy::{tls, ProxyOptions};
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use support::*;

fn options(listen: &str) -> ProxyOptions {
    let conf = format!("proxy_listen = {listen}\nnginx_worker_processes = 1\n");
    let settings = Settings::load(Some(&conf), Vec::<(String, String)>::new(), 1).expect("conf");
    ProxyOptions::from_settings(&settings)
}

/// Runs `serve` on every connection to a fresh port, on a runtime of its own thread.
fn spawn_server<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async move {
            let listener = TcpListener::from_std(listener).expect("listener");
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp));
            }
        });
    });
    addr
}

// ---------------------------------------------------------------- upstream TLS

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("ca");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

fn leaf(names: &[&str], issuer: &Ca) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    let cert = params.signed_by(&key, &issuer.issuer).expect("leaf");
    (cert.pem(), key.serialize_pem())
}

/// What the HTTPS upstream saw.
#[derive(Default)]
struct TlsSeen {
    handshakes: AtomicUsize,
    snis: Mutex<Vec<Option<String>>>,
}

/// An HTTPS echo upstream serving `cert`; with `client_ca`, it requires a client certificate.
fn https_upstream(cert: &(String, String), client_ca: Option<&Ca>) -> (SocketAddr, Arc<TlsSeen>) {
    let chain = vec![CertificateDer::from_pem_slice(cert.0.as_bytes()).expect("cert")];
    let key = PrivateKeyDer::from_pem_slice(cert.1.as_bytes()).expect("key");
    let builder = rustls::ServerConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).expect("ca"))
                .expect("root");
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                tls::provider(),
            )
            .build()
            .expect("verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = Arc::new(builder.with_single_cert(chain, key).expect("server config"));
    let seen = Arc::new(TlsSeen::default());
    let seen2 = seen.clone();
    let addr = spawn_server(move |tcp| {
        let (config, seen) = (config.clone(), seen2.clone());
        async move {
            let Ok(stream) = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await else {
                return;
            };
            seen.handshakes.fetch_add(1, Ordering::SeqCst);
            let sni = stream.get_ref().1.server_name().map(str::to_owned);
            seen.snis.lock().expect("lock").push(sni.clone());
            let svc = service_fn(move |req: Request<Incoming>| {
                let host = req
                    .headers()
                    .get("host")
                    .map(|h| h.to_str().unwrap_or("").to_owned());
                let body = json!({"sni": sni, "host": host, "uri": req.uri().to_string()});
                async move {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body.to_string()))))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        }
    });
    (addr, seen)
}

#[test]
fn https_services_verify_present_client_certificates_and_pool() {
    let server_ca = ca("upstream CA");
    let client_ca = ca("client CA");
    let server_cert = leaf(&["localhost"], &server_ca);
    let client_cert = leaf(&["gateway"], &client_ca);
    let (plain_tls, seen) = https_upstream(&server_cert, None);
    let (mtls, mtls_seen) = https_upstream(&server_cert, Some(&client_ca));
    let ca_id = "0b8a8f3e-0000-4000-8000-000000000001";
    let cert_id = "0b8a8f3e-0000-4000-8000-000000000002";
    let service = |name: &str, addr: SocketAddr, extra: serde_json::Value| {
        let mut s = json!({
            "name": name,
            "url": format!("https://localhost:{}", addr.port()),
            "routes": [{"paths": [format!("/{name}")]}],
        });
        if let (Some(s), Some(e)) = (s.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        s
    };
    let yaml = json!({
        "_format_version": "3.0",
        "ca_certificates": [{"id": ca_id, "cert": server_ca.pem}],
        "certificates": [{"id": cert_id, "cert": client_cert.0, "key": client_cert.1}],
        "services": [
            service("noverify", plain_tls, json!({})),
            service("verified", plain_tls, json!({"tls_verify": true, "ca_certificates": [ca_id]})),
            service("untrusted", plain_tls, json!({"tls_verify": true})),
            service("mtls", mtls, json!({"client_certificate": cert_id})),
            service("nocert", mtls, json!({})),
        ],
    })
    .to_string();
    let gw = Gateway::start_with(&yaml, options("127.0.0.1:0"));
    // (path, status)
    let cases = [
        ("/noverify", 200),
        ("/noverify", 200),
        ("/verified", 200),
        ("/untrusted", 502),
        ("/mtls", 200),
        ("/nocert", 502),
    ];
    for (path, status) in cases {
        let r = get(gw.addr, path, &[]);
        assert_eq!(r.status, status, "{path}: {}", r.body);
        if status == 200 {
            assert_eq!(r.json()["sni"], "localhost", "SNI is the upstream host");
            assert_eq!(r.json()["uri"], "/");
        }
    }
    assert_eq!(
        mtls_seen.handshakes.load(Ordering::SeqCst),
        1,
        "only the client cert passes"
    );
    // noverify twice on one pooled connection; verified needs its own (other TLS settings).
    assert_eq!(
        seen.handshakes.load(Ordering::SeqCst),
        2,
        "{:?}",
        seen.snis.lock().map(|v| v.len())
    );
}

// ---------------------------------------------------------------- WebSocket

#[tokio::test]
async fn websocket_frames_flow_both_ways_until_idle() {
    let upstream = spawn_server(|tcp| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
            return;
        };
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_text() || msg.is_binary() {
                let reply = Message::text(format!("echo: {}", msg.to_text().unwrap_or("")));
                if ws.send(reply).await.is_err() {
                    return;
                }
            }
        }
    });
    let yaml = json!({
        "_format_version": "3.0",
        "services": [{
            "url": format!("http://{upstream}"),
            "read_timeout": 300, "write_timeout": 300,
            "routes": [{"paths": ["/ws"]}],
        }],
    })
    .to_string();
    let gw = Gateway::start_with(&yaml, options("127.0.0.1:0"));
    let tcp = TcpStream::connect(gw.addr).await.expect("connect");
    let (mut ws, resp) = tokio_tungstenite::client_async("ws://gw.test/ws/chat", tcp)
        .await
        .expect("upgrade through the gateway");
    assert_eq!(resp.status(), 101);
    for text in ["hello", "again"] {
        ws.send(Message::text(text)).await.expect("send");
        let got = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("reply in time")
            .expect("frame")
            .expect("ok");
        assert_eq!(got.to_text().expect("text"), format!("echo: {text}"));
    }
    // Nothing moves for longer than the service's timeouts: the tunnel is closed.
    let end = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("closed by the idle timeout");
    assert!(!matches!(end, Some(Ok(Message::Text(_)))), "{end:?}");
}

// ---------------------------------------------------------------- gRPC

fn grpc_frame(payload: &[u8]) -> Bytes {
    let mut v = vec![0u8];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    Bytes::from(v)
}

/// A gRPC echo over h2c: answers the request's message back, with `grpc-status: 0` and a custom
/// trailer, and the `:path`/`te` it saw as headers.
fn grpc_upstream() -> SocketAddr {
    spawn_server(|tcp| async move {
        let svc = service_fn(|req: Request<Incoming>| async move {
            let path = req.uri().path().to_owned();
            let te = req.headers().get("te").cloned();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().expect("v"));
            trailers.insert("x-echo-trailer", "yes".parse().expect("v"));
            let frames = vec![
                Ok::<_, Infallible>(Frame::data(body)),
                Ok(Frame::trailers(trailers)),
            ];
            let mut resp = Response::new(StreamBody::new(futures_util::stream::iter(frames)));
            let h = resp.headers_mut();
            h.insert("content-type", "application/grpc".parse().expect("v"));
            h.insert("x-path", path.parse().expect("v"));
            if let Some(te) = te {
                h.insert("x-te", te);
            }
            Ok::<_, Infallible>(resp)
        });
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(tcp), svc)
            .await;
    })
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
    trailers: Option<HeaderMap>,
}

async fn call(addr: SocketAddr, h2: bool, path: &str, content_type: &str, body: Bytes) -> Answer {
    let io = TokioIo::new(TcpStream::connect(addr).await.expect("connect"));
    let req = Request::post(format!("http://grpc.test{path}"))
        .header("content-type", content_type)
        .header("te", "trailers");
    let resp = if h2 {
        let (mut s, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .expect("h2");
        tokio::spawn(conn);
        s.send_request(req.body(Full::new(body)).expect("req"))
            .await
    } else {
        let (mut s, conn) = hyper::client::conn::http1::handshake(io).await.expect("h1");
        tokio::spawn(conn);
        let req = req.header("host", "grpc.test").uri(path);
        s.send_request(req.body(Full::new(body)).expect("req"))
            .await
    }
    .expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let collected = resp.into_body().collect().await.expect("body");
    let trailers = collected.trailers().cloned();
    Answer {
        status,
        headers,
        body: collected.to_bytes(),
        trailers,
    }
}

#[tokio::test]
async fn grpc_passes_trailers_and_gets_kongs_answers() {
    let upstream = grpc_upstream();
    let yaml = json!({
        "_format_version": "3.0",
        "services": [
            {"name": "echo", "url": format!("grpc://{upstream}"),
             "routes": [{"protocols": ["grpc"], "paths": ["/pkg.Echo/"]}]},
            {"name": "down", "url": "grpc://127.0.0.1:1",
             "routes": [{"protocols": ["grpc"], "paths": ["/pkg.Down/"]}]},
            {"name": "secure", "url": format!("grpc://{upstream}"),
             "routes": [{"protocols": ["grpcs"], "paths": ["/pkg.Secure/"]}]},
        ],
    })
    .to_string();
    let gw = Gateway::start_with(&yaml, options("127.0.0.1:0 http2"));
    let message = grpc_frame(b"\x0a\x05hello");

    let a = call(
        gw.addr,
        true,
        "/pkg.Echo/Say",
        "application/grpc",
        message.clone(),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body, message, "the message comes back");
    assert_eq!(
        a.headers.get("x-path").map(|v| v.as_bytes()),
        Some(&b"/pkg.Echo/Say"[..])
    );
    assert_eq!(
        a.headers.get("x-te").map(|v| v.as_bytes()),
        Some(&b"trailers"[..])
    );
    let t = a.trailers.expect("trailers passed through");
    assert_eq!(t.get("grpc-status").map(|v| v.as_bytes()), Some(&b"0"[..]));
    assert_eq!(
        t.get("x-echo-trailer").map(|v| v.as_bytes()),
        Some(&b"yes"[..])
    );

    // Several calls multiplex over the one upstream connection.
    for _ in 0..3 {
        let a = call(
            gw.addr,
            true,
            "/pkg.Echo/Say",
            "application/grpc+proto",
            message.clone(),
        )
        .await;
        assert_eq!(a.status, 200);
    }

    // (HTTP/2?, path, content-type, status, message or grpc-status)
    let cases = [
        (
            true,
            "/pkg.Echo/Say",
            "application/json",
            415,
            "Non-gRPC request matched gRPC route",
        ),
        (
            false,
            "/pkg.Echo/Say",
            "application/grpc",
            426,
            "Please use HTTP2 protocol",
        ),
        (true, "/pkg.Down/Say", "application/grpc", 502, "14"),
        (true, "/pkg.Nowhere/Say", "application/grpc", 404, "12"),
        (true, "/pkg.Secure/Say", "application/grpc", 200, "1"),
    ];
    for (h2, path, ct, status, expect) in cases {
        let a = call(gw.addr, h2, path, ct, message.clone()).await;
        assert_eq!(a.status, status, "{path} {ct}");
        if ct.starts_with("application/grpc") && h2 {
            let got = a
                .headers
                .get("grpc-status")
                .map(|v| v.to_str().unwrap_or(""));
            assert_eq!(got, Some(expect), "{path}");
            assert!(a.headers.contains_key("grpc-message"), "{path}");
        } else {
            let v: serde_json::Value = serde_json::from_slice(&a.body).expect("json");
            assert_eq!(v["message"], expect);
        }
    }
}
