//! A real tonic gRPC client and server through the gateway: `grpc.health.v1.Health` (tonic-health
//! ships its generated client and server, so no protoc), unary `Check` and server-streaming
//! `Watch`, over h2c on the plain port and over TLS (ALPN h2) on the ssl port, to a plain (grpc)
//! and a TLS (grpcs) upstream. What the client sees is what a Kong user's client would see:
//! the upstream's statuses and messages (trailers passed through), and Kong's `grpc-status` on
//! answers the gateway makes itself.

mod support;

use std::net::SocketAddr;
use std::path::Path;

use gatehouse_config::Settings;
use gatehouse_proxy::ProxyOptions;
use serde_json::json;
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig,
};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus as Pb;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use support::*;

/// A tonic Health server on a fresh port, on its own thread; with `tls`, it serves that
/// (cert, key) and speaks only TLS.
fn health_upstream(tls: Option<&(String, String)>) -> (SocketAddr, HealthReporter) {
    let (reporter, service) = tonic_health::server::health_reporter();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let identity = tls.map(|(c, k)| Identity::from_pem(c, k));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let mut server = Server::builder();
            if let Some(identity) = identity {
                server = server
                    .tls_config(ServerTlsConfig::new().identity(identity))
                    .expect("server tls");
            }
            server
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await
                .expect("tonic server");
        });
    });
    (addr, reporter)
}

fn self_signed(names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    let cert = params.self_signed(&key).expect("cert");
    (cert.pem(), key.serialize_pem())
}

/// A plain h2c listener and an `http2 ssl` one.
fn options(prefix: &Path) -> ProxyOptions {
    let conf = format!(
        "proxy_listen = 127.0.0.1:0 http2, 127.0.0.1:0 http2 ssl\nnginx_worker_processes = 1\n\
         prefix = {}\n",
        prefix.display()
    );
    let settings = Settings::load(Some(&conf), Vec::<(String, String)>::new(), 1).expect("conf");
    ProxyOptions::from_settings(&settings)
}

/// A tonic channel to the gateway at `addr`, sending `authority` as `:authority`; over TLS when
/// `ca` is given (trusting it, SNI = the authority's host).
async fn channel(addr: SocketAddr, authority: &str, ca: Option<&str>) -> HealthClient<Channel> {
    let scheme = if ca.is_some() { "https" } else { "http" };
    let mut ep = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .expect("endpoint")
        .origin(format!("{scheme}://{authority}").parse().expect("origin"));
    if let Some(ca) = ca {
        ep = ep
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(ca))
                    .domain_name(authority),
            )
            .expect("client tls");
    }
    HealthClient::new(ep.connect().await.expect("connect to the gateway"))
}

async fn check(client: &mut HealthClient<Channel>, service: &str) -> Result<Pb, tonic::Status> {
    let resp = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await?;
    Ok(resp.into_inner().status())
}

#[tokio::test]
async fn tonic_client_and_server_through_the_gateway() {
    let (plain_up, reporter) = health_upstream(None);
    reporter
        .set_service_status("pkg.Echo", ServingStatus::Serving)
        .await;
    let upstream_cert = self_signed(&["upstream.test"]);
    let (tls_up, tls_reporter) = health_upstream(Some(&upstream_cert));
    tls_reporter
        .set_service_status("pkg.Secure", ServingStatus::Serving)
        .await;
    let edge = self_signed(&["ok.test", "tls.test"]);

    let prefix = tempfile::tempdir().expect("tempdir");
    let yaml = json!({
        "_format_version": "3.0",
        "certificates": [{"cert": edge.0, "key": edge.1, "snis": ["ok.test", "tls.test"]}],
        "services": [
            {"name": "health", "url": format!("grpc://{plain_up}"),
             "routes": [{"protocols": ["grpc", "grpcs"], "hosts": ["ok.test"]}]},
            {"name": "secure", "url": format!("grpcs://{tls_up}"),
             "routes": [{"protocols": ["grpcs"], "hosts": ["tls.test"]}]},
            {"name": "down", "url": "grpc://127.0.0.1:1",
             "routes": [{"protocols": ["grpc"], "hosts": ["down.test"]}]},
        ],
    })
    .to_string();
    let gw = Gateway::start_with(&yaml, options(prefix.path()));
    let (h2c, tls) = (gw.addrs[0], gw.addrs[1]);

    // Unary over h2c: the upstream's answer, and its error status and message (a trailers-only
    // response) passed through.
    let mut client = channel(h2c, "ok.test", None).await;
    assert_eq!(
        check(&mut client, "pkg.Echo").await.expect("check"),
        Pb::Serving
    );
    let err = check(&mut client, "pkg.Missing")
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "service not registered");

    // Server streaming: each status change arrives while the call is still open.
    let mut watch = client
        .watch(HealthCheckRequest {
            service: "pkg.Echo".into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("stream").expect("message");
    assert_eq!(first.status(), Pb::Serving);
    reporter
        .set_service_status("pkg.Echo", ServingStatus::NotServing)
        .await;
    let second = watch.message().await.expect("stream").expect("message");
    assert_eq!(second.status(), Pb::NotServing);
    drop(watch);

    // Answers the gateway makes itself carry Kong's grpc-status and message.
    // (authority, code, grpc-message)
    let cases = [
        (
            "nowhere.test",
            Code::Unimplemented,
            "no Route matched with those values",
        ),
        (
            "down.test",
            Code::Unavailable,
            "An invalid response was received from the upstream server",
        ),
    ];
    for (authority, code, message) in cases {
        let mut c = channel(h2c, authority, None).await;
        let err = check(&mut c, "pkg.Echo").await.expect_err(authority);
        assert_eq!(err.code(), code, "{authority}: {err:?}");
        assert_eq!(err.message(), message, "{authority}");
    }

    // grpcs end to end: TLS with ALPN h2 from the client to the gateway, TLS from the gateway
    // to the tonic upstream.
    let mut secure = channel(tls, "tls.test", Some(&edge.0)).await;
    assert_eq!(
        check(&mut secure, "pkg.Secure").await.expect("grpcs check"),
        Pb::Serving
    );
    // And a grpc service reached over TLS on a route that takes both.
    let mut both = channel(tls, "ok.test", Some(&edge.0)).await;
    assert_eq!(
        check(&mut both, "pkg.Echo").await.expect("check over TLS"),
        Pb::NotServing
    );
}
