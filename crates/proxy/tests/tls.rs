//! TLS through real sockets: config validation with Kong's messages, SNI selection observed by a
//! rustls client during a real handshake, RSA/ECDSA choice by the client's signature schemes,
//! robustness of the accept path, the default certificate, and upstream mutual TLS.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_config::model::{CaCertificate, Certificate, Config, Protocol, Service, Sni};
use gatehouse_proxy::tls::{
    self, AcceptError, CertStore, ClientTls, ServerTls, ServerTlsOptions, UpstreamTlsDefaults,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use uuid::Uuid;

#[path = "support/tls_client.rs"]
mod tls_client;
use tls_client::{all_schemes, client_config};

/// A fixed RSA key: `ring` (rcgen's backend here) can sign with RSA but not generate RSA keys.
const RSA_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC6oQliJKgSGXoi
64YFyF+pEsS96SNS0cAPtheV21u2NsraCGuApqNlPV54Ri5FnS7dfLPJUL6KREbM
61ADWOT5xX3snLBMA/Trd2Hb1h+oU8wnmlmrGAe1BwBNv1DW4Ml44eejJsGQsTs6
SWkkc0KHPs0kkXXHVNSgxLTqNPdF7puYvenlzWqhMJtXwMk8mtVyg6iN+eOKxZbk
CUtBFRZWGWUrEQ1Ts2qccDXNpoB2BkyseTX+lB7mpHXIN1BJdc5qnOcRYyKjzuSX
zP1zEyzzPNoQsn6NFUMGJMk3nj24TtZ9qF2a+J3g9WuD4FOAQ9VjT904uQ0ZoYVm
nyJLl6vTAgMBAAECggEASRYBd7bFPvlNNFmpzZ/vnmWkOH8Rf0B3B3AXAm+6FbyV
ahc8ClC30lDbKxzIyChLDx/jxGXjiIA+fcd1OSpZ2Vq2+q9N9ybhhkjlQNM06JWQ
cL3oebFaa1FHlCrk/JFhNP662NC3ovNVL3lKPKUKm65DZhu01Q/qiN8fvkxpva+N
UT9nZa6j8ZLiQxiK7GVz+0L/dvtBavExw1Z/lE2ULO1yDYIzgNvU86dkVeOUoX+4
sIZsyKFVuZ+2egl3H2lmVxpsJhIyXVpgJD2N+trzz1SJpLQPE3f5E34E196jU158
OmKbitvvM3XKSyNfpYria1aFoBt443P5QTI5UwcDMQKBgQDkS7i+6tf9Bwe0mX/L
oZxGvd9CRK/VhPxM2AxlMjVx2pfkGizaGoOCPVq3KnSxql/0G4oXyBMilmZzBECX
UShBc3+c2WdmFmNMhcvrbla4sh3yJ+Vrkbryf44QtDTHGsUbdspRkGuI1az1Sxgd
r8u8ORUPsNZR0N0LqkObCjw0awKBgQDRRuN3jhWzLvGX6d12kaTzgKeGPEFSrSKg
F9Czo1rigoglwh5unzmGcfj6KTmfbMwO7j744I0IDdYiMC34fWjkyYrhD41zwwG/
cbbWL7KfV5cXS/E8CtU/OZpwHkYhj69hBtGy+QLIYoBuob0pEUoLrU62cXER+ZHo
J1ngmJAAOQKBgFSlCrOmyTxknePFQg/TNOk5vwyIARXOv+kR9c6ThiNXpBeL6PNY
/0eLzhW5pRi2jespRtM4eHfLgeLFQdmY2q8hzr/uD5tXU6vss8Xv3DGQwO+nATYY
C1OcHaVt21+zOj/LlIoXXPeYGg+8rw1av9Ri6b8ultgw87Q+heB3NAlPAoGBAITl
sXmwnxMk0oMYHm03XDrODpRuG0V3cS+dMAmDySlinzbrKQwyzQMVyXiDSXZ2TreE
kDTX1Hey4bLgSbEtYrk3S5xUlg1XXvrGKcemjpYlt2sx7MWmU3lNCUf90adqaYMC
I5S2ERBTjR+0Uj2MHyt/KScurxEtHX0B0E+SUo/xAoGAB+l6sR+gew7fCGhU/kic
5mGkXV5eTzTP86GbDacfhkp6fk5iII2BoAuFiaFrsqSp4infBt5DWLtf2VUCIaTS
N26zb+VdVPPhG1E87K1/UTCsafi2a3cjiArUJxXJaUSkTKX+6JLO/GZwkiMkZQTL
6iErTc8Qq8cJCtt/Yf4HOlI=
-----END PRIVATE KEY-----";

// ---------------------------------------------------------------- certificate helpers

struct Ca {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("self-signed");
    Ca {
        cert_pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

fn intermediate(parent: &Ca, name: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.signed_by(&key, &parent.issuer).expect("signed");
    Ca {
        cert_pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// (cert PEM, key PEM) for `names`, ECDSA unless `rsa`, self-signed unless `issuer`.
fn leaf(names: &[&str], rsa: bool, issuer: Option<&Ca>) -> (String, String) {
    let key = if rsa {
        KeyPair::from_pem(RSA_KEY).expect("rsa key")
    } else {
        KeyPair::generate().expect("key")
    };
    let params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("p");
    let cert = match issuer {
        Some(ca) => params.signed_by(&key, &ca.issuer).expect("signed"),
        None => params.self_signed(&key).expect("self-signed"),
    };
    (cert.pem(), key.serialize_pem())
}

fn certificate(cert: &(String, String), alt: Option<&(String, String)>) -> Certificate {
    Certificate {
        id: Uuid::new_v4(),
        cert: cert.0.clone(),
        key: cert.1.clone(),
        cert_alt: alt.map(|a| a.0.clone()),
        key_alt: alt.map(|a| a.1.clone()),
        tags: vec![],
        created_at: 0,
        updated_at: 0,
    }
}

fn ca_entity(pem: &str) -> CaCertificate {
    CaCertificate {
        id: Uuid::new_v4(),
        cert: pem.to_owned(),
        cert_digest: None,
        tags: vec![],
        created_at: 0,
        updated_at: 0,
    }
}

fn sni(name: &str, cert: &Certificate) -> Sni {
    Sni {
        id: Uuid::new_v4(),
        name: name.to_owned(),
        certificate: cert.id,
        tags: vec![],
        created_at: 0,
        updated_at: 0,
    }
}

fn default_key() -> Arc<CertifiedKey> {
    let dir = tempfile::tempdir().expect("tempdir");
    tls::default_certificate(dir.path()).expect("default certificate")
}

fn der_of(pem: &str) -> CertificateDer<'static> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem")
}

// ---------------------------------------------------------------- validation

#[test]
fn validation_table() {
    let good = leaf(&["a.test"], false, None);
    let other = leaf(&["b.test"], false, None);
    let rsa = leaf(&["a.test"], true, None);
    let garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";

    let mut bad_cert = certificate(&good, None);
    bad_cert.cert = "hello".into();
    let mut bad_der = certificate(&good, None);
    bad_der.cert = garbage.into();
    let mut bad_key = certificate(&good, None);
    bad_key.key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
    let mut mismatched = certificate(&good, None);
    mismatched.key = other.1.clone();
    let mut alt_mismatch = certificate(&rsa, Some(&good));
    alt_mismatch.key_alt = Some(other.1.clone());
    let mut bad_alt = certificate(&rsa, Some(&good));
    bad_alt.cert_alt = Some("nope".into());

    let root = ca("Root");
    let expired = {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("p");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        p.self_signed(&key).expect("cert").pem()
    };

    let config = Config {
        certificates: vec![
            certificate(&good, None),         // 0 ok
            bad_cert,                         // 1
            bad_der,                          // 2
            bad_key,                          // 3
            mismatched,                       // 4
            certificate(&rsa, Some(&good)),   // 5 ok: RSA + ECDSA alt
            certificate(&good, Some(&other)), // 6 same type
            alt_mismatch,                     // 7
            bad_alt,                          // 8
        ],
        ca_certificates: vec![
            ca_entity(&root.cert_pem),                          // 0 ok
            ca_entity(&good.0),                                 // 1 not a CA
            ca_entity(&expired),                                // 2 expired
            ca_entity(&format!("{}{}", root.cert_pem, good.0)), // 3 two certs
            ca_entity("garbage"),                               // 4
        ],
        ..Config::default()
    };
    let errors = tls::validate(&config);
    let got: Vec<(&str, usize, Option<&str>, String)> = errors
        .iter()
        .map(|e| (e.entity, e.index, e.field, e.message.clone()))
        .collect();
    let starts = |entity: &str, index: usize, field: Option<&str>, prefix: &str| {
        assert!(
            got.iter()
                .any(|g| g.0 == entity && g.1 == index && g.2 == field && g.3.starts_with(prefix)),
            "missing {entity}[{index}].{field:?} {prefix:?} in {got:#?}"
        )
    };
    starts("certificates", 1, Some("cert"), "invalid certificate: ");
    starts("certificates", 2, Some("cert"), "invalid certificate: ");
    starts("certificates", 3, Some("key"), "invalid key: ");
    starts("certificates", 4, None, "certificate does not match key");
    starts(
        "certificates",
        6,
        None,
        "certificate and alternative certificate need to have different type (e.g. RSA and ECDSA), \
         the provided certificates were both of the same type",
    );
    starts(
        "certificates",
        7,
        None,
        "alternative certificate does not match key",
    );
    starts("certificates", 8, Some("cert_alt"), "invalid certificate: ");
    starts(
        "ca_certificates",
        1,
        None,
        "certificate does not appear to be a CA because it is missing the \"CA\" basic constraint",
    );
    starts(
        "ca_certificates",
        2,
        None,
        "certificate expired, \"Not After\" time is in the past",
    );
    starts(
        "ca_certificates",
        3,
        None,
        "please submit only one certificate at a time",
    );
    starts("ca_certificates", 4, Some("cert"), "invalid certificate: ");
    // Nothing else: the valid entities are clean, and a failed field check skips the entity
    // checks that depend on it (no "does not match" for the unparsable ones).
    assert_eq!(got.len(), 11, "{got:#?}");
}

// ---------------------------------------------------------------- a test TLS server + client

/// What the server side saw for one connection.
#[derive(Debug)]
enum Seen {
    Ok {
        sni: Option<String>,
        alpn: Option<Vec<u8>>,
    },
    Err(AcceptError),
}

/// Runs `tls::accept` on every connection to a fresh port; answers `ok` after a handshake.
async fn serve(
    server: ServerTls,
    timeout: Duration,
) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = server.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tls::accept(&acceptor, tcp, timeout).await {
                    Ok(mut a) => {
                        let _ = tx.send(Seen::Ok {
                            sni: a.sni.clone(),
                            alpn: a.alpn.clone(),
                        });
                        let _ = a.stream.write_all(b"ok").await;
                        let _ = a.stream.shutdown().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Seen::Err(e));
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// Handshake with `sni` (None = connect by IP, so no SNI is sent); returns the served leaf.
async fn served(
    addr: std::net::SocketAddr,
    sni: Option<&str>,
    config: Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<TcpStream> {
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

fn leaf_of(s: &tokio_rustls::client::TlsStream<TcpStream>) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().expect("certs")[0].clone()
}

// ---------------------------------------------------------------- SNI selection

#[tokio::test]
async fn sni_selection_through_handshakes() {
    let exact = leaf(&["api.example.com"], false, None);
    let wild = leaf(&["*.example.com"], false, None);
    let suffix = leaf(&["example.org"], false, None);
    let (c_exact, c_wild, c_suffix) = (
        certificate(&exact, None),
        certificate(&wild, None),
        certificate(&suffix, None),
    );
    let config = Config {
        snis: vec![
            sni("api.example.com", &c_exact),
            sni("*.example.com", &c_wild),
            sni("example.*", &c_suffix),
        ],
        certificates: vec![c_exact, c_wild, c_suffix],
        ..Config::default()
    };
    assert!(tls::validate(&config).is_empty());
    let default = default_key();
    let store = CertStore::build(&config, &default).expect("store");
    let server = ServerTls::new(store, &ServerTlsOptions::default()).expect("server");
    let (addr, mut seen) = serve(server.clone(), Duration::from_secs(5)).await;
    let cfg = client_config(all_schemes(), &[b"h2", b"http/1.1"]);

    let table: &[(Option<&str>, &CertificateDer<'static>)] = &[
        (Some("api.example.com"), &der_of(&exact.0)),
        (Some("API.Example.com"), &der_of(&exact.0)),
        (Some("www.example.com"), &der_of(&wild.0)),
        // Kong's wildcard replaces exactly one label.
        (Some("a.b.example.com"), &default.cert[0]),
        (Some("example.org"), &der_of(&suffix.0)),
        (Some("example.net"), &der_of(&suffix.0)),
        (Some("unknown.test"), &default.cert[0]),
        (None, &default.cert[0]),
    ];
    for (name, want) in table {
        let s = served(addr, *name, cfg.clone()).await;
        assert_eq!(&leaf_of(&s), *want, "sni {name:?}");
        assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        match seen.recv().await.expect("seen") {
            Seen::Ok { sni, alpn } => {
                assert_eq!(
                    sni.as_deref(),
                    name.map(|n| n.to_ascii_lowercase()).as_deref()
                );
                assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
            }
            Seen::Err(e) => panic!("{name:?}: {e}"),
        }
    }

    // A catch-all sni `*` takes over unmatched names, but not clients without SNI.
    let catch = leaf(&["catch.all"], false, None);
    let mut config2 = config.clone();
    let c_catch = certificate(&catch, None);
    config2.snis.push(sni("*", &c_catch));
    config2.certificates.push(c_catch);
    server.swap_certs(CertStore::build(&config2, &default).expect("store"));
    let s = served(addr, Some("unknown.test"), cfg.clone()).await;
    assert_eq!(leaf_of(&s), der_of(&catch.0));
    let s = served(addr, None, cfg.clone()).await;
    assert_eq!(leaf_of(&s), default.cert[0]);
    let s = served(addr, Some("api.example.com"), cfg.clone()).await;
    assert_eq!(leaf_of(&s), der_of(&exact.0));

    // Resumption: once the client has read its tickets (post-handshake messages), its next
    // connection resumes, and still gets the certificate chosen for its name.
    let mut s = served(addr, Some("api.example.com"), cfg.clone()).await;
    let mut body = Vec::new();
    s.read_to_end(&mut body).await.ok();
    assert_eq!(body, b"ok");
    let s = served(addr, Some("api.example.com"), cfg.clone()).await;
    assert_eq!(
        s.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );
}

#[tokio::test]
async fn rsa_or_ecdsa_by_client_signature_schemes() {
    let rsa = leaf(&["dual.test"], true, None);
    let ec = leaf(&["dual.test"], false, None);
    // RSA is the main certificate, ECDSA the alternate: ECDSA is still preferred.
    let cert = certificate(&rsa, Some(&ec));
    let config = Config {
        snis: vec![sni("dual.test", &cert)],
        certificates: vec![cert],
        ..Config::default()
    };
    assert!(
        tls::validate(&config).is_empty(),
        "{:?}",
        tls::validate(&config)
    );
    let store = CertStore::build(&config, &default_key()).expect("store");
    let server = ServerTls::new(store, &ServerTlsOptions::default()).expect("server");
    let (addr, _seen) = serve(server, Duration::from_secs(5)).await;

    let only = |pred: fn(&SignatureScheme) -> bool| {
        all_schemes().into_iter().filter(pred).collect::<Vec<_>>()
    };
    let rsa_only = only(|s| format!("{s:?}").starts_with("RSA"));
    let ec_only = only(|s| format!("{s:?}").starts_with("ECDSA"));
    for (schemes, want, what) in [
        (all_schemes(), der_of(&ec.0), "both"),
        (ec_only, der_of(&ec.0), "ecdsa"),
        (rsa_only, der_of(&rsa.0), "rsa"),
    ] {
        let s = served(addr, Some("dual.test"), client_config(schemes, &[])).await;
        assert_eq!(leaf_of(&s), want, "{what}");
    }
}

// ---------------------------------------------------------------- robustness

#[tokio::test]
async fn garbage_and_stalled_handshakes_close_only_that_connection() {
    let server = ServerTls::new(
        CertStore::only_default(&default_key()),
        &ServerTlsOptions::default(),
    )
    .expect("server");
    let (addr, mut seen) = serve(server, Duration::from_secs(1)).await;

    // Garbage: the server answers (an alert at most) and closes.
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf))
        .await
        .expect("closed in time")
        .expect("read");
    assert!(matches!(
        seen.recv().await,
        Some(Seen::Err(AcceptError::Handshake(_)))
    ));

    // Stalled: connect and say nothing; closed after the handshake timeout.
    let started = std::time::Instant::now();
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    // Meanwhile a well-behaved client is served.
    let s = served(addr, Some("fine.test"), client_config(all_schemes(), &[])).await;
    assert_eq!(s.get_ref().1.alpn_protocol(), None);
    assert!(matches!(seen.recv().await, Some(Seen::Ok { .. })));
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut [0u8; 16]))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(matches!(
        seen.recv().await,
        Some(Seen::Err(AcceptError::Timeout(_)))
    ));

    // And the next handshake still works.
    let mut s = served(addr, Some("again.test"), client_config(all_schemes(), &[])).await;
    let mut body = Vec::new();
    s.read_to_end(&mut body).await.ok();
    assert_eq!(body, b"ok");
}

#[test]
fn default_certificate_is_created_once_and_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = tls::default_certificate(dir.path()).expect("first");
    let cert_path = dir.path().join(tls::DEFAULT_CERT_FILE);
    let key_path = dir.path().join(tls::DEFAULT_KEY_FILE);
    assert!(cert_path.exists() && key_path.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
    }
    let second = tls::default_certificate(dir.path()).expect("second");
    assert_eq!(first.cert, second.cert);
    // A broken pair is reported, never silently replaced.
    std::fs::write(&key_path, "broken").expect("write");
    assert!(tls::default_certificate(dir.path()).is_err());
}

// ---------------------------------------------------------------- upstream TLS

fn service(protocol: Protocol) -> Service {
    Service {
        id: Uuid::new_v4(),
        name: None,
        protocol,
        host: "upstream.test".into(),
        port: 443,
        path: None,
        retries: 5,
        connect_timeout: 60_000,
        write_timeout: 60_000,
        read_timeout: 60_000,
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

/// An upstream that requires a client certificate issued by `client_ca`; reports the client's
/// leaf (or the handshake error).
async fn mtls_upstream(
    chain: Vec<CertificateDer<'static>>,
    key_pem: &str,
    client_ca: &Ca,
) -> (
    std::net::SocketAddr,
    Arc<Mutex<Vec<Result<CertificateDer<'static>, String>>>>,
) {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der_of(&client_ca.cert_pem)).expect("root");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        tls::provider(),
    )
    .build()
    .expect("verifier");
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let r = match acceptor.accept(tcp).await {
                Ok(s) => Ok(s.get_ref().1.peer_certificates().expect("client cert")[0].clone()),
                Err(e) => Err(e.to_string()),
            };
            log2.lock().expect("lock").push(r);
        }
    });
    (addr, log)
}

#[tokio::test]
async fn upstream_mtls_with_client_tls() {
    let root = ca("Upstream Root");
    let inter = intermediate(&root, "Upstream Intermediate");
    let server_leaf = leaf(&["upstream.test"], false, Some(&inter));
    let chain = vec![der_of(&server_leaf.0), der_of(&inter.cert_pem)];
    let client_ca = ca("Client CA");
    let client = leaf(&["gatehouse"], false, Some(&client_ca));
    let (addr, log) = mtls_upstream(chain, &server_leaf.1, &client_ca).await;

    let client_cert = certificate(&client, None);
    let trusted = ca_entity(&root.cert_pem);
    let stranger = ca_entity(&ca("Stranger").cert_pem);
    let mut svc = service(Protocol::Https);
    svc.tls_verify = Some(true);
    svc.ca_certificates = Some(vec![trusted.id]);
    svc.client_certificate = Some(client_cert.id);
    let mut config = Config {
        services: vec![svc.clone()],
        certificates: vec![client_cert],
        ca_certificates: vec![trusted, stranger.clone()],
        ..Config::default()
    };
    assert!(
        tls::validate(&config).is_empty(),
        "{:?}",
        tls::validate(&config)
    );
    let defaults = UpstreamTlsDefaults::default();

    let connect = |tls: ClientTls, name: &'static str| {
        let log = log.clone();
        async move {
            let before = log.lock().expect("lock").len();
            let tcp = TcpStream::connect(addr).await.expect("connect");
            let r = tls::connect_tls(tcp, name, &tls).await;
            // Wait for the server's side of this handshake (every attempt is logged).
            for _ in 0..500 {
                if log.lock().expect("lock").len() > before {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            r
        }
    };

    // Verified, with the client certificate presented (leaf ← 1 intermediate ← root: depth 1).
    let tls_ok = ClientTls::for_service(&config, 0, &defaults).expect("client tls");
    assert!(tls_ok.verifies());
    connect(tls_ok.clone(), "upstream.test")
        .await
        .expect("mTLS handshake");
    assert_eq!(
        log.lock().expect("lock").last().cloned(),
        Some(Ok(der_of(&client.0)))
    );
    // Wrong name.
    assert!(connect(tls_ok, "other.test").await.is_err());

    // Depth 0 refuses the intermediate.
    config.services[0].tls_verify_depth = Some(0);
    let shallow = ClientTls::for_service(&config, 0, &defaults).expect("client tls");
    assert!(connect(shallow, "upstream.test").await.is_err());

    // A CA that did not issue the chain.
    config.services[0].tls_verify_depth = None;
    config.services[0].ca_certificates = Some(vec![stranger.id]);
    let untrusted = ClientTls::for_service(&config, 0, &defaults).expect("client tls");
    assert!(connect(untrusted, "upstream.test").await.is_err());

    // tls_verify off (Kong's default): any certificate, but the upstream still wants ours.
    config.services[0].tls_verify = None;
    let lax = ClientTls::for_service(&config, 0, &defaults).expect("client tls");
    assert!(!lax.verifies());
    connect(lax, "whatever.test")
        .await
        .expect("unverified handshake");

    // Without a client certificate the upstream refuses us.
    config.services[0].client_certificate = None;
    let anonymous = ClientTls::for_service(&config, 0, &defaults).expect("client tls");
    let r = connect(anonymous, "upstream.test").await;
    let refused = r.is_err() || matches!(log.lock().expect("lock").last(), Some(Err(_)));
    assert!(refused);

    // A dangling CA id is reported against the service's field.
    config.services[0].ca_certificates = Some(vec![Uuid::new_v4()]);
    let err = ClientTls::for_service(&config, 0, &defaults).expect_err("dangling ca");
    assert_eq!(
        (err.entity, err.index, err.field),
        ("services", 0, Some("ca_certificates"))
    );
    assert!(err.message.starts_with("CA Certificate '"));
}
