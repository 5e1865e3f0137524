//! `kong.conf`'s TLS settings on the real binary, checked with a real rustls client: which
//! certificate each listener serves (`ssl_cert`, `admin_ssl_cert`, generated defaults), which
//! protocol versions `ssl_cipher_suite` / `ssl_protocols` allow, and `ssl` on the Admin and
//! Status listeners.

mod common;
#[path = "../../proxy/tests/support/tls_client.rs"]
mod tls_client;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use common::*;

/// What a TLS client got from `addr`: the leaf certificate it was served and the answer to
/// `GET path` over that connection, or the handshake error.
fn tls_get(
    addr: SocketAddr,
    sni: &str,
    version: &'static rustls::SupportedProtocolVersion,
    path: &str,
) -> Result<(CertificateDer<'static>, String), String> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .expect("versions")
    .dangerous()
    .with_custom_certificate_verifier(tls_client::any_cert_verifier())
    .with_no_client_auth();
    let name = ServerName::try_from(sni.to_owned()).expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut out = String::new();
    // A close without close_notify still carries the whole answer.
    let read = tls.read_to_string(&mut out);
    if out.is_empty() {
        return Err(format!("{read:?}"));
    }
    let leaf = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .cloned()
        .ok_or("no certificate")?;
    Ok((leaf.into_owned(), out))
}

fn self_signed(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
    let cert = params.self_signed(&key).expect("cert");
    (cert.pem(), key.serialize_pem())
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem")
}

struct Running {
    child: Child,
    proxy: SocketAddr,
    admin: SocketAddr,
    status: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `gatehouse start` with TLS on every listener family plus `extra` conf lines.
fn start(prefix: &Path, extra: &str) -> Running {
    let (proxy, admin, status) = (free_port(), free_port(), free_port());
    let conf = format!(
        "prefix = {}\nproxy_listen = 127.0.0.1:{proxy} ssl\nadmin_listen = 127.0.0.1:{admin} ssl\n\
         status_listen = 127.0.0.1:{status} ssl\nnginx_worker_processes = 1\n{extra}\n",
        prefix.display()
    );
    std::fs::create_dir_all(prefix).expect("prefix");
    let conf_file = prefix.join("kong.conf");
    std::fs::write(&conf_file, conf).expect("conf");
    let child = bin()
        .args(["start", "-c"])
        .arg(&conf_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let node = Running {
        child,
        proxy: ([127, 0, 0, 1], proxy).into(),
        admin: ([127, 0, 0, 1], admin).into(),
        status: ([127, 0, 0, 1], status).into(),
    };
    // `ssl_protocols` applies to every listener family, so probe with either version.
    wait_for(20, "the TLS status listener", || {
        [&rustls::version::TLS13, &rustls::version::TLS12]
            .into_iter()
            .find_map(|v| tls_get(node.status, "localhost", v, "/status").ok())
    });
    node
}

#[test]
fn ssl_cert_admin_and_status_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = dir.path().join("servroot");
    let proxy_cert = self_signed("proxy.test");
    let cert_file = dir.path().join("proxy.crt");
    std::fs::write(&cert_file, &proxy_cert.0).expect("write");
    // A key given as base64 of its PEM, as Kong allows.
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(&proxy_cert.1);
    let node = start(
        &prefix,
        &format!(
            "ssl_cert = {}\nssl_cert_key = {key_b64}",
            cert_file.display()
        ),
    );
    let v13 = &rustls::version::TLS13;

    // The proxy serves ssl_cert when no sni matches (no config: 404 from the router).
    let (leaf, answer) = tls_get(node.proxy, "any.test", v13, "/").expect("proxy handshake");
    assert_eq!(leaf, der(&proxy_cert.0));
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");

    // Admin and Status serve their own generated certificates over TLS.
    for (addr, file, path) in [
        (node.admin, "ssl/admin-kong-default.crt", "/status"),
        (node.status, "ssl/status-kong-default.crt", "/status"),
    ] {
        let (leaf, answer) = tls_get(addr, "localhost", v13, path).expect("handshake");
        let generated = std::fs::read_to_string(prefix.join(file)).expect(file);
        assert_eq!(leaf, der(&generated), "{file}");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    // ssl_cert was given, so no proxy default certificate is generated.
    assert!(!prefix.join("ssl/kong-default.crt").exists());
}

#[test]
fn cipher_suite_and_protocols_pick_tls_versions() {
    // (conf, TLS 1.2 accepted, TLS 1.3 accepted)
    let cases = [
        ("", true, true),
        ("ssl_cipher_suite = modern", false, true),
        (
            "ssl_cipher_suite = custom\nssl_protocols = TLSv1.2\n\
             ssl_ciphers = ECDHE-ECDSA-AES256-GCM-SHA384:DHE-RSA-AES128-SHA",
            true,
            false,
        ),
    ];
    for (conf, tls12, tls13) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = start(&dir.path().join("servroot"), conf);
        for (version, expected) in [
            (&rustls::version::TLS12, tls12),
            (&rustls::version::TLS13, tls13),
        ] {
            let got = tls_get(node.proxy, "x.test", version, "/").is_ok();
            assert_eq!(got, expected, "{conf:?} {version:?}");
        }
    }
}

#[test]
fn bad_ssl_settings_stop_the_start_with_kongs_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    // (conf, message)
    let cases = [
        ("ssl_cert = /nope.crt", "ssl_cert_key must be specified"),
        (
            "ssl_cert = /nope.crt\nssl_cert_key = /nope.key",
            "ssl_cert: failed loading certificate from /nope.crt",
        ),
        ("ssl_cipher_suite = best", "Undefined cipher suite best"),
    ];
    for (i, (extra, message)) in cases.iter().enumerate() {
        let prefix = dir.path().join(format!("p{i}"));
        std::fs::create_dir_all(&prefix).expect("prefix");
        let conf = format!(
            "prefix = {}\nproxy_listen = 127.0.0.1:{} ssl\nadmin_listen = off\nstatus_listen = off\n{extra}\n",
            prefix.display(),
            free_port()
        );
        let file = prefix.join("kong.conf");
        std::fs::write(&file, conf).expect("conf");
        let out = bin()
            .args(["start", "-c"])
            .arg(&file)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{extra}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{extra}: {stderr}");
    }
}
