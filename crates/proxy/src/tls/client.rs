//! TLS to upstreams (services with protocol `https`/`grpcs`/`tls`), with Kong's per-service knobs.
//!
//! Kong (`kong/runloop/upstream_ssl.lua`, `nginx_kong.lua`) sets, per request:
//! * `tls_verify` — null means the global `proxy_ssl_verify`, which is **off**: by default the
//!   upstream's certificate is not checked at all (the handshake signature still is).
//! * `tls_verify_depth` — null means nginx's `proxy_ssl_verify_depth 1`. OpenSSL's depth counts
//!   intermediates: depth N accepts leaf ← N intermediates ← trust anchor. rustls has no such knob,
//!   so the verifier below checks the *built* path (not the presented list) against it.
//! * `ca_certificates` — when set, the trust store is exactly those CAs (Kong builds a fresh X509
//!   store from them); when null, the system store (`lua_ssl_trusted_certificate = system`).
//! * `client_certificate` — presented for mutual TLS.
//! * SNI — `proxy_ssl_name $upstream_host`: the `Host` sent upstream, without port.
//!
//! One [`ClientTls`] per service, built with the snapshot; its config keeps a TLS session cache,
//! so reconnects to the same upstream resume.

use std::io;
use std::sync::{Arc, OnceLock};

use gatehouse_config::model::{Config, Protocol, Service};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use uuid::Uuid;

use super::{parse_cert_chain, provider, TlsError};

/// Gateway-wide defaults a service's null fields fall back to.
#[derive(Debug, Clone)]
pub struct UpstreamTlsDefaults {
    /// Kong's `proxy_ssl_verify` (nginx default: off).
    pub verify: bool,
    /// nginx's `proxy_ssl_verify_depth` (default 1).
    pub verify_depth: u8,
    /// ALPN offered upstream: empty for `https` (nginx offers none), `h2` for `grpcs`.
    pub alpn: Vec<Vec<u8>>,
}

impl Default for UpstreamTlsDefaults {
    fn default() -> Self {
        UpstreamTlsDefaults {
            verify: false,
            verify_depth: 1,
            alpn: Vec::new(),
        }
    }
}

/// The client side of TLS for one service.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
    verify: bool,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("verify", &self.verify)
            .finish()
    }
}

impl ClientTls {
    /// The TLS settings for `config.services[index]`. Errors name the service's field; a
    /// `ca_certificates` id that is not in the config is Kong's runtime error
    /// `CA Certificate '<id>' does not exist`, reported here at build time instead.
    pub fn for_service(
        config: &Config,
        index: usize,
        defaults: &UpstreamTlsDefaults,
    ) -> Result<ClientTls, TlsError> {
        let Some(service) = config.services.get(index) else {
            return Err(TlsError::new("services", index, None, "no such service"));
        };
        let err = |field, m: String| TlsError::new("services", index, Some(field), m);
        let verify = service.tls_verify.unwrap_or(defaults.verify);
        let depth = service.tls_verify_depth.unwrap_or(defaults.verify_depth);
        let roots = match &service.ca_certificates {
            Some(ids) => Arc::new(ca_store(config, ids).map_err(|m| err("ca_certificates", m))?),
            None => system_roots(),
        };
        let client_cert = match service.client_certificate {
            Some(id) => Some(client_cert(config, id).map_err(|m| err("client_certificate", m))?),
            None => None,
        };
        let mut alpn = defaults.alpn.clone();
        if alpn.is_empty() && service.protocol == Protocol::Grpcs {
            alpn.push(b"h2".to_vec());
        }
        ClientTls::new(verify.then_some((roots, depth)), client_cert, alpn)
            .map_err(|m| TlsError::new("services", index, None, m))
    }

    /// Whether this service's TLS applies at all (Kong only uses it for TLS protocols).
    pub fn wanted(service: &Service) -> bool {
        matches!(
            service.protocol,
            Protocol::Https | Protocol::Grpcs | Protocol::Tls
        )
    }

    /// The general constructor: `verify` = trust anchors and maximum intermediates, or `None` to
    /// accept any certificate; `client_cert` = chain and key for mutual TLS.
    pub fn new(
        verify: Option<(Arc<RootCertStore>, u8)>,
        client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
        alpn: Vec<Vec<u8>>,
    ) -> Result<ClientTls, String> {
        let provider = provider();
        let algs = provider.signature_verification_algorithms;
        let is_verifying = verify.is_some();
        let verifier: Arc<dyn ServerCertVerifier> = match verify {
            Some((roots, depth)) => Arc::new(Verifier {
                roots,
                max_intermediates: usize::from(depth),
                algs,
            }),
            None => Arc::new(NoVerifier { algs }),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match client_cert {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn;
        Ok(ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
            verify: is_verifying,
        })
    }

    pub fn verifies(&self) -> bool {
        self.verify
    }
}

/// Client handshake over an established connection. `server_name` is the upstream `Host`
/// (without port): sent as SNI when it is a DNS name and verified against the certificate when
/// verification is on; an IP address is verified against the certificate's IP SANs.
pub async fn connect_tls<IO>(
    io: IO,
    server_name: &str,
    tls: &ClientTls,
) -> io::Result<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let host = server_name
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(server_name);
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host:?}: {e}")))?;
    tls.connector.connect(name, io).await
}

fn ca_store(config: &Config, ids: &[Uuid]) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    for id in ids {
        let ca = config
            .ca_certificates
            .iter()
            .find(|c| c.id == *id)
            .ok_or_else(|| format!("CA Certificate '{id}' does not exist"))?;
        for der in parse_cert_chain(&ca.cert)? {
            store
                .add(der)
                .map_err(|e| format!("CA Certificate '{id}': {e}"))?;
        }
    }
    Ok(store)
}

fn client_cert(
    config: &Config,
    id: Uuid,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let cert = config
        .certificates
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| format!("certificate {id} not found"))?;
    let chain = parse_cert_chain(&cert.cert).map_err(|e| format!("invalid certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(cert.key.as_bytes())
        .map_err(|e| format!("invalid key: pkey.new:load_key: {e}"))?;
    Ok((chain, key))
}

/// The operating system's trust store, read once per process (Kong's
/// `lua_ssl_trusted_certificate = system`). Unreadable entries are skipped with a warning.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            for e in &loaded.errors {
                tracing::warn!(error = %e, "loading the system trust store");
            }
            let mut store = RootCertStore::empty();
            let (ok, bad) = store.add_parsable_certificates(loaded.certs);
            tracing::debug!(ok, bad, "system trust store loaded");
            Arc::new(store)
        })
        .clone()
}

/// webpki path validation with OpenSSL's depth limit applied to the path that was built.
#[derive(Debug)]
struct Verifier {
    roots: Arc<RootCertStore>,
    max_intermediates: usize,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ee = webpki::EndEntityCert::try_from(end_entity).map_err(pki_error)?;
        let max = self.max_intermediates;
        let depth_ok = |path: &webpki::VerifiedPath<'_>| {
            if path.intermediate_certificates().count() > max {
                Err(webpki::Error::MaximumPathDepthExceeded)
            } else {
                Ok(())
            }
        };
        ee.verify_for_usage(
            self.algs.all,
            &self.roots.roots,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            Some(&depth_ok),
        )
        .map_err(pki_error)?;
        ee.verify_is_valid_for_subject_name(server_name)
            .map_err(pki_error)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// `tls_verify = false`: any certificate is accepted; the handshake signature is still checked
/// (as OpenSSL does), so the peer must hold the key of the certificate it sent.
#[derive(Debug)]
struct NoVerifier {
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

fn pki_error(e: webpki::Error) -> rustls::Error {
    use rustls::CertificateError as C;
    let kind = match e {
        webpki::Error::UnknownIssuer => C::UnknownIssuer,
        webpki::Error::CertExpired { .. } => C::Expired,
        webpki::Error::CertNotValidYet { .. } => C::NotValidYet,
        webpki::Error::CertNotValidForName(_) => C::NotValidForName,
        webpki::Error::InvalidSignatureForPublicKey => C::BadSignature,
        other => C::Other(rustls::OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(kind)
}
