//! The TLS and HTTP/2 listeners end to end: real sockets, the gateway's proxy threads, a rustls
//! client checking which certificate is served per SNI, and hyper's HTTP/1.1 and HTTP/2 clients.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gatehouse_config::Settings;
use gatehouse_proxy::{tls, ProxyOptions};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::*;

#[path = "support/tls_client.rs"]
mod tls_client;
use tls_client::{all_schemes, client_config};

fn options(listen: &str, prefix: &Path) -> ProxyOptions {
    let conf = format!(
        "proxy_listen = {listen}\nnginx_worker_processes = 2\nprefix = {}\n",
        prefix.display()
    );
    let settings = Settings::load(Some(&conf), Vec::<(String, String)>::new(), 2).expect("conf");
    let mut o = ProxyOptions::from_settings(&settings);
    o.handshake_timeout = Duration::from_millis(400);
    o
}

/// (cert PEM, key PEM), self-signed ECDSA for `names`.
fn self_signed(names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    let cert = params.self_signed(&key).expect("cert");
    (cert.pem(), key.serialize_pem())
}

fn der(pem: &str) -> CertificateDer<'static> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem")
}

/// A declarative config (JSON is YAML) with `certs` = [(cert, key, snis)] and `routes` on one
/// echo service.
fn config(
    up: &Upstream,
    certs: &[(&(String, String), &[&str])],
    routes: serde_json::Value,
) -> String {
    let certificates: Vec<_> = certs
        .iter()
        .map(|(c, snis)| json!({"cert": c.0, "key": c.1, "snis": snis}))
        .collect();
    json!({
        "_format_version": "3.0",
        "certificates": certificates,
        "services": [{"name": "echo", "url": format!("http://{}", up.addr), "routes": routes}],
    })
    .to_string()
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn handshake(addr: SocketAddr, sni: Option<&str>, config: Arc<rustls::ClientConfig>) -> Tls {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = match sni {
        Some(s) => ServerName::try_from(s.to_owned()).expect("name"),
        None => ServerName::IpAddress(addr.ip().into()),
    };
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("handshake")
}

fn served(s: &Tls) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().expect("certs")[0].clone()
}

/// One request over an established connection, HTTP/2 when ALPN picked it.
async fn request<IO>(io: IO, h2: bool, path: &str, host: &str) -> Seen
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let mut req = Request::get(path);
    let resp = if h2 {
        let (mut s, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .expect("h2 handshake");
        tokio::spawn(conn);
        req = req.uri(format!("https://{host}{path}"));
        s.send_request(req.body(Full::new(Bytes::new())).expect("req"))
            .await
    } else {
        let (mut s, conn) = hyper::client::conn::http1::handshake(io).await.expect("h1");
        tokio::spawn(conn);
        req = req.header("host", host);
        s.send_request(req.body(Full::new(Bytes::new())).expect("req"))
            .await
    }
    .expect("response");
    let version = resp.version();
    let status = resp.status().as_u16();
    let mut headers = resp.headers().clone();
    headers.insert("x-test-version", format!("{version:?}").parse().expect("v"));
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Seen {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn plain(addr: SocketAddr, path: &str, host: &str) -> Seen {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    request(tcp, false, path, host).await
}

/// (client SNI, ALPN offered, certificate expected, HTTP/2 expected)
type SniCase<'a> = (Option<&'a str>, &'a [&'a [u8]], &'a str, bool);

#[tokio::test]
async fn serves_each_snis_certificate_and_the_default_one_otherwise() {
    let up = Upstream::start("a");
    let prefix = tempfile::tempdir().expect("tempdir");
    let exact = self_signed(&["api.example.test"]);
    let wild = self_signed(&["*.wild.test"]);
    let yaml = config(
        &up,
        &[(&exact, &["api.example.test"]), (&wild, &["*.wild.test"])],
        json!([{"paths": ["/echo"]}]),
    );
    let gw = Gateway::start_with(
        &yaml,
        options("127.0.0.1:0, 127.0.0.1:0 ssl http2", prefix.path()),
    );
    let tls_addr = gw.addrs[1];
    let default_pem = std::fs::read_to_string(prefix.path().join(tls::DEFAULT_CERT_FILE))
        .expect("default certificate written under the prefix");
    // (client SNI, ALPN offered, certificate expected, HTTP/2 expected)
    let cases: &[SniCase] = &[
        (Some("api.example.test"), &[b"http/1.1"], &exact.0, false),
        (
            Some("API.Example.Test"),
            &[b"h2", b"http/1.1"],
            &exact.0,
            true,
        ),
        (Some("x.wild.test"), &[b"h2"], &wild.0, true),
        (Some("a.b.wild.test"), &[], &default_pem, false),
        (Some("other.test"), &[b"http/1.1"], &default_pem, false),
        (None, &[b"h2"], &default_pem, true),
    ];
    for (sni, alpn, expected, h2) in cases {
        let s = handshake(tls_addr, *sni, client_config(all_schemes(), alpn)).await;
        assert_eq!(served(&s), der(expected), "certificate for SNI {sni:?}");
        let negotiated = s.get_ref().1.alpn_protocol() == Some(b"h2");
        assert_eq!(negotiated, *h2, "ALPN for {sni:?} offering {alpn:?}");
        let r = request(s, *h2, "/echo/x", "api.example.test").await;
        assert_eq!(r.status, 200, "{sni:?}: {}", r.body);
        assert_eq!(
            r.upstream_header("x-forwarded-proto").as_deref(),
            Some("https")
        );
        assert_eq!(
            r.upstream_header("x-forwarded-port"),
            Some(tls_addr.port().to_string())
        );
        let version = if *h2 { "HTTP/2.0" } else { "HTTP/1.1" };
        assert_eq!(r.header("x-test-version"), Some(version));
        assert_eq!(
            r.upstream_header("x-forwarded-host").as_deref(),
            Some("api.example.test"),
            "the h2 :authority is the host"
        );
    }
    // The plain listener still speaks HTTP/1.1 and says http.
    let r = plain(gw.addr, "/echo", "x").await;
    assert_eq!(
        r.upstream_header("x-forwarded-proto").as_deref(),
        Some("http")
    );
}

#[tokio::test]
async fn https_only_and_sni_routes_follow_the_connection() {
    let up = Upstream::start("a");
    let prefix = tempfile::tempdir().expect("tempdir");
    let cert = self_signed(&["a.test"]);
    let routes = json!([
        {"name": "secure", "paths": ["/secure"], "protocols": ["https"]},
        {"name": "moved", "paths": ["/moved"], "protocols": ["https"], "https_redirect_status_code": 301},
        {"name": "sni", "paths": ["/sni"], "snis": ["a.test"], "protocols": ["http", "https"]},
    ]);
    let yaml = config(&up, &[(&cert, &["a.test"])], routes);
    let gw = Gateway::start_with(
        &yaml,
        options("127.0.0.1:0, 127.0.0.1:0 ssl", prefix.path()),
    );
    let tls_addr = gw.addrs[1];

    let r = plain(gw.addr, "/secure", "a.test").await;
    assert_eq!(r.status, 426);
    assert_eq!(r.json()["message"], "Please use HTTPS protocol");
    let r = plain(gw.addr, "/moved/x?q=1", "a.test:8000").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://a.test/moved/x?q=1"));
    // SNI is only enforced on TLS: plain http matches by path.
    assert_eq!(plain(gw.addr, "/sni", "x").await.status, 200);

    // (SNI, path, status)
    let cases = [
        ("a.test", "/secure", 200),
        ("a.test", "/moved", 200),
        ("a.test", "/sni", 200),
        ("b.test", "/sni", 404),
    ];
    for (sni, path, status) in cases {
        let s = handshake(tls_addr, Some(sni), client_config(all_schemes(), &[])).await;
        let r = request(s, false, path, sni).await;
        assert_eq!(r.status, status, "{sni} {path}: {}", r.body);
    }
}

#[tokio::test]
async fn certificates_swap_with_the_snapshot_and_sessions_resume() {
    let up = Upstream::start("a");
    let prefix = tempfile::tempdir().expect("tempdir");
    let first = self_signed(&["a.test"]);
    let second = self_signed(&["a.test"]);
    let routes = json!([{"paths": ["/"]}]);
    let gw = Gateway::start_with(
        &config(&up, &[(&first, &["a.test"])], routes.clone()),
        options("127.0.0.1:0 ssl", prefix.path()),
    );
    let client = client_config(all_schemes(), &[]);
    let s = handshake(gw.addr, Some("a.test"), client.clone()).await;
    assert_eq!(served(&s), der(&first.0));
    assert_eq!(request(s, false, "/", "a.test").await.status, 200);
    let again = handshake(gw.addr, Some("a.test"), client.clone()).await;
    assert_eq!(
        again.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed),
        "a second connection resumes the session"
    );

    gw.swap_from_previous(&config(&up, &[(&second, &["a.test"])], routes));
    let s = handshake(gw.addr, Some("a.test"), client_config(all_schemes(), &[])).await;
    assert_eq!(
        served(&s),
        der(&second.0),
        "new handshakes get the new certificate"
    );
}

#[tokio::test]
async fn garbage_and_stalled_handshakes_close_only_that_connection() {
    let up = Upstream::start("a");
    let prefix = tempfile::tempdir().expect("tempdir");
    let yaml = config(&up, &[], json!([{"paths": ["/"]}]));
    let gw = Gateway::start_with(&yaml, options("127.0.0.1:0 ssl", prefix.path()));

    let mut stalled = TcpStream::connect(gw.addr).await.expect("connect");
    let mut garbage = TcpStream::connect(gw.addr).await.expect("connect");
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(5), garbage.read(&mut buf))
        .await
        .expect("garbage connection closed");
    assert!(
        !matches!(closed, Ok(n) if n > 0 && !buf.starts_with(&[0x15])),
        "no HTTP answer"
    );

    // Meanwhile a real client is served.
    let s = handshake(gw.addr, Some("x.test"), client_config(all_schemes(), &[])).await;
    assert_eq!(request(s, false, "/", "x.test").await.status, 200);

    let r = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut buf))
        .await
        .expect("a stalled handshake is closed after the handshake timeout");
    assert!(matches!(r, Ok(0) | Err(_)));
}

#[tokio::test]
async fn h2c_prior_knowledge_and_http1_share_an_http2_port() {
    let up = Upstream::start("a");
    let prefix = tempfile::tempdir().expect("tempdir");
    let yaml = config(&up, &[], json!([{"paths": ["/"]}]));
    let gw = Gateway::start_with(&yaml, options("127.0.0.1:0 http2", prefix.path()));
    let tcp = TcpStream::connect(gw.addr).await.expect("connect");
    let r = request(tcp, true, "/h2c", "h2c.test").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-test-version"), Some("HTTP/2.0"));
    assert_eq!(
        r.upstream_header("x-forwarded-proto").as_deref(),
        Some("http")
    );
    assert_eq!(r.json()["uri"], "/h2c");
    let r = plain(gw.addr, "/h1", "x").await;
    assert_eq!(r.status, 200);
    // No TLS files are needed without an ssl listener.
    assert!(!prefix.path().join(tls::DEFAULT_CERT_FILE).exists());
}

#[tokio::test]
async fn proxy_protocol_gives_the_client_address_before_http_and_tls() {
    let up = Upstream::start("a");
    let prefix = tempfile::tempdir().expect("tempdir");
    let yaml = config(&up, &[], json!([{"paths": ["/"]}]));
    let start = |extra: &str| {
        let conf = format!(
            "proxy_listen = 127.0.0.1:0 proxy_protocol, 127.0.0.1:0 ssl proxy_protocol\n\
             nginx_worker_processes = 1\nprefix = {}\n{extra}\n",
            prefix.path().display()
        );
        let settings =
            Settings::load(Some(&conf), Vec::<(String, String)>::new(), 1).expect("conf");
        Gateway::start_with(&yaml, ProxyOptions::from_settings(&settings))
    };
    let trusting = start("trusted_ips = 127.0.0.1\nreal_ip_header = proxy_protocol");
    let untrusting = start("real_ip_header = proxy_protocol");

    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend_from_slice(&[198, 51, 100, 7, 127, 0, 0, 1, 0x30, 0x39, 0x1f, 0x40]);
    let v1 = b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 8000\r\n".to_vec();
    let local = b"PROXY UNKNOWN\r\n".to_vec();
    // (gateway, header, TLS after it, X-Real-IP the upstream sees)
    let cases: [(&Gateway, &[u8], bool, &str); 6] = [
        (&trusting, &v1, false, "203.0.113.9"),
        (&trusting, &v2, false, "198.51.100.7"),
        (&trusting, &v1, true, "203.0.113.9"),
        (&trusting, &v2, true, "198.51.100.7"),
        (&trusting, &local, false, "127.0.0.1"),
        (&untrusting, &v1, false, "127.0.0.1"),
    ];
    for (gw, header, over_tls, real_ip) in cases {
        let mut tcp = TcpStream::connect(gw.addrs[usize::from(over_tls)])
            .await
            .expect("connect");
        tcp.write_all(header).await.expect("header");
        let seen = if over_tls {
            let tls =
                tokio_rustls::TlsConnector::from(client_config(all_schemes(), &[b"http/1.1"]))
                    .connect(ServerName::try_from("pp.test").expect("name"), tcp)
                    .await
                    .expect("TLS after the PROXY header");
            request(tls, false, "/pp", "pp.test").await
        } else {
            request(tcp, false, "/pp", "pp.test").await
        };
        assert_eq!(seen.status, 200, "{}", seen.body);
        assert_eq!(
            seen.upstream_header("x-real-ip").as_deref(),
            Some(real_ip),
            "{:?} tls={over_tls}",
            String::from_utf8_lossy(header)
        );
    }

    // Without the header (plain HTTP or a TLS ClientHello straight away) the connection is
    // closed unanswered.
    let mut tcp = TcpStream::connect(trusting.addrs[0])
        .await
        .expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf))
        .await
        .expect("closed, not left hanging");
    assert!(matches!(n, Ok(0) | Err(_)), "answered: {buf:?}");
}
