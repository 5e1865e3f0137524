//! `kong.conf`'s TLS server settings turned into rustls terms: the default certificates of a
//! listener family (`ssl_cert`, `admin_ssl_cert`, `status_ssl_cert`, else the generated one), and
//! the protocol versions, cipher suites and resumption settings.
//!
//! Runs at start-up (file reads), never on a proxy thread. rustls implements TLS 1.2 and 1.3 with
//! ECDHE key exchange and AEAD ciphers only, which is everything Mozilla's `modern` and
//! `intermediate` suites (Kong's default) contain. What it cannot do — TLS 1.0/1.1, CBC, DHE —
//! is left out with a warning rather than failing the start, since the `old` suite lists those
//! only for ancient clients and every modern one is still served. `ssl_session_timeout` is
//! parsed but not applied: rustls' ticketer rotates its keys every 6 hours on its own and its
//! session cache evicts by size only.

use std::io;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use gatehouse_config::settings::{SslSettings, TlsVersion};
use rustls::sign::CertifiedKey;
use rustls::SupportedCipherSuite;

use super::default_cert::default_certificate_named;
use super::store::{CertStore, ServerTls, ServerTlsOptions};
use super::{certified_key, provider};

/// Which listener family a set of default certificates is for: its `kong.conf` key prefix and
/// the file name prefix of its generated certificate (Kong's `admin-kong-default.crt`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Proxy,
    Admin,
    Status,
}

impl Family {
    fn key_prefix(self) -> &'static str {
        match self {
            Family::Proxy => "",
            Family::Admin => "admin_",
            Family::Status => "status_",
        }
    }

    fn file_prefix(self) -> &'static str {
        match self {
            Family::Proxy => "",
            Family::Admin => "admin-",
            Family::Status => "status-",
        }
    }
}

/// The default certificates of `family`: each `<family>ssl_cert`/`_key` pair (a path, a PEM
/// string, or base64 of one), or the certificate generated under `<prefix>/ssl/` when none is
/// configured. Errors use Kong's wording (`ssl_cert: failed loading certificate from …`).
pub fn default_keys(
    ssl: &SslSettings,
    family: Family,
    prefix: &Path,
) -> io::Result<Vec<Arc<CertifiedKey>>> {
    let (certs, keys) = match family {
        Family::Proxy => (&ssl.cert, &ssl.cert_key),
        Family::Admin => (&ssl.admin_cert, &ssl.admin_cert_key),
        Family::Status => (&ssl.status_cert, &ssl.status_cert_key),
    };
    if certs.is_empty() {
        return Ok(vec![default_certificate_named(
            prefix,
            family.file_prefix(),
        )?]);
    }
    let p = family.key_prefix();
    let mut out = Vec::with_capacity(certs.len());
    for (cert, key) in certs.iter().zip(keys) {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        let cert_pem = pem_entry(cert).map_err(|_| {
            invalid(format!(
                "{p}ssl_cert: failed loading certificate from {cert}"
            ))
        })?;
        let key_pem = pem_entry(key)
            .map_err(|_| invalid(format!("{p}ssl_cert_key: failed loading key from {key}")))?;
        let ck = certified_key(&cert_pem, &key_pem)
            .map_err(|e| invalid(format!("{p}ssl_cert {cert} / {p}ssl_cert_key {key}: {e}")))?;
        out.push(ck);
    }
    Ok(out)
}

/// The TLS acceptor of an `ssl` Admin or Status listener: its family's certificates (no SNI
/// selection: Kong serves `admin_ssl_cert` to everyone), the `ssl_*` protocol settings, ALPN
/// HTTP/1.1. Logs what rustls cannot honour.
pub fn family_acceptor(
    ssl: &SslSettings,
    family: Family,
    prefix: &Path,
) -> io::Result<tokio_rustls::TlsAcceptor> {
    let keys = default_keys(ssl, family, prefix)?;
    let store =
        CertStore::only_defaults(&keys).ok_or_else(|| io::Error::other("no TLS certificate"))?;
    let (mut options, warnings) = server_options(ssl)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    options.alpn = vec![b"http/1.1".to_vec()];
    let server = ServerTls::new(store, &options).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(server.acceptor())
}

/// A `kong.conf` certificate entry: a file when one exists at that path, else the PEM itself,
/// else base64 of it (Kong's `try_decode_base64`).
fn pem_entry(entry: &str) -> Result<String, ()> {
    let path = Path::new(entry);
    if path.is_file() {
        return std::fs::read_to_string(path).map_err(|_| ());
    }
    if entry.contains("-----BEGIN") {
        return Ok(entry.to_owned());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(entry.trim())
        .map_err(|_| ())?;
    String::from_utf8(bytes).map_err(|_| ())
}

/// The listener options `ssl` asks for (ALPN is the caller's). Returns the options and
/// warnings for what rustls cannot do.
pub fn server_options(ssl: &SslSettings) -> io::Result<(ServerTlsOptions, Vec<String>)> {
    let mut warnings = Vec::new();
    let mut options = ServerTlsOptions {
        tls12: ssl.protocols.contains(&TlsVersion::Tls1_2),
        tls13: ssl.protocols.contains(&TlsVersion::Tls1_3),
        session_tickets: ssl.session_tickets,
        // nginx: one megabyte of shared cache holds about 4000 sessions.
        session_cache_size: (ssl.session_cache_size.saturating_mul(4000) >> 20) as usize,
        ..ServerTlsOptions::default()
    };
    if ssl.protocols.iter().any(|v| *v < TlsVersion::Tls1_2) {
        warnings
            .push("TLSv1 and TLSv1.1 are not offered (rustls implements TLS 1.2 and 1.3)".into());
    }
    if !options.tls12 && !options.tls13 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "ssl_protocols: none of the protocols is supported; enable TLSv1.2 or TLSv1.3",
        ));
    }
    if ssl.cipher_suite == "custom" {
        if let Some(list) = &ssl.ciphers {
            let suites = tls12_suites(list);
            if suites.is_empty() && options.tls12 {
                if !options.tls13 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "ssl_ciphers: no TLS 1.2 cipher suite Gatehouse supports in '{list}'"
                        ),
                    ));
                }
                warnings.push(format!(
                    "ssl_ciphers '{list}' names no supported TLS 1.2 suite: only TLS 1.3 is offered"
                ));
                options.tls12 = false;
            }
            options.tls12_suites = Some(suites);
        }
    }
    Ok((options, warnings))
}

/// The TLS 1.2 suites of an OpenSSL cipher list that rustls implements, in the list's order
/// (TLS 1.3 suites are configured apart in OpenSSL and always kept here).
fn tls12_suites(list: &str) -> Vec<SupportedCipherSuite> {
    use rustls::CipherSuite as C;
    let mut out: Vec<SupportedCipherSuite> = Vec::new();
    for name in list.split([':', ' ', ',']).filter(|s| !s.is_empty()) {
        let id = match name {
            "ECDHE-ECDSA-AES128-GCM-SHA256" => C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            "ECDHE-RSA-AES128-GCM-SHA256" => C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            "ECDHE-ECDSA-AES256-GCM-SHA384" => C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            "ECDHE-RSA-AES256-GCM-SHA384" => C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            "ECDHE-ECDSA-CHACHA20-POLY1305" => C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            "ECDHE-RSA-CHACHA20-POLY1305" => C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            _ => continue,
        };
        if let Some(s) = provider().cipher_suites.iter().find(|s| s.suite() == id) {
            if !out.iter().any(|o| o.suite() == id) {
                out.push(*s);
            }
        }
    }
    out
}
