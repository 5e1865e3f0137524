//! TLS for both sides of the proxy: certificates from the declarative config served by SNI on the
//! TLS listener, and TLS (optionally mutual) to `https`/`grpcs` upstreams.
//!
//! Why it looks like this:
//!
//! * **rustls with the `ring` provider.** It builds with only rustc and a C compiler (no cmake,
//!   no NASM, no system OpenSSL), which is what the project's machines and CI have. Everything
//!   that needs a crypto provider goes through [`provider`], so switching to `aws-lc-rs` later is
//!   a one-function change plus Cargo features.
//! * **Kong's semantics, not nginx's configuration surface.** SNI selection follows
//!   `kong/runloop/certificate.lua`: exact name, then `*.rest` (first label replaced), then
//!   `name.*` (last label replaced), then an sni literally named `*`, then the default
//!   certificate; a client that sends no SNI always gets the default certificate. Validation
//!   messages are Kong's (`kong/db/schema/entities/{certificates,ca_certificates}.lua`), keyed by
//!   entity and index so the config layer can place them in Kong's `fields` tree.
//! * **Heavy work off the proxy threads.** [`CertStore::build`] parses every PEM and key once per
//!   snapshot; the proxy threads only look names up in a hash map during the handshake. The
//!   [`ServerTls`] (one `rustls::ServerConfig`, shared by every proxy thread) keeps its session
//!   ticket keys and session cache across certificate swaps, so a config reload does not break
//!   resumption.
//! * **A stalled or garbage handshake costs one connection.** [`accept`] bounds the handshake with
//!   a timeout and drops only that socket.
//!
//! Files: `validate.rs` (config checks), `store.rs` (SNI → certificate, server config),
//! `default_cert.rs` (the self-signed fallback under the prefix), `conf.rs` (`kong.conf`'s
//! `ssl_*` settings in rustls terms), `accept.rs` (downstream handshake), `client.rs` (upstream
//! TLS).

mod accept;
mod client;
mod conf;
mod default_cert;
mod store;
mod validate;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use accept::{accept, AcceptError, Accepted};
pub use client::{connect_tls, ClientTls, UpstreamTlsDefaults};
pub use conf::{default_keys, family_acceptor, server_options, Family};
pub use default_cert::{
    default_certificate, default_certificate_named, DEFAULT_CERT_FILE, DEFAULT_KEY_FILE,
};
pub use store::{CertStore, ServerTls, ServerTlsOptions};
pub use validate::validate;

pub use tokio_rustls::{client::TlsStream as ClientTlsStream, server::TlsStream, TlsAcceptor};

/// One configuration problem found by the TLS layer, placed the way Kong's declarative errors
/// are: `entity` is the config collection (`certificates`, `ca_certificates`, `services`),
/// `index` the position in that collection, `field` the field the message belongs to, or `None`
/// for an entity-level check (Kong's `@entity` list).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entity}[{index}]{}: {message}", field.map(|f| format!(".{f}")).unwrap_or_default())]
pub struct TlsError {
    pub entity: &'static str,
    pub index: usize,
    pub field: Option<&'static str>,
    pub message: String,
}

impl TlsError {
    pub(crate) fn new(
        entity: &'static str,
        index: usize,
        field: Option<&'static str>,
        message: impl Into<String>,
    ) -> TlsError {
        TlsError {
            entity,
            index,
            field,
            message: message.into(),
        }
    }
}

/// The crypto provider every TLS object here is built with.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Every certificate in a PEM string, in order. Text outside PEM sections is ignored, as
/// OpenSSL does; a string with no certificate section at all is an error.
pub(crate) fn parse_cert_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut chain = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        match item {
            Ok(der) => chain.push(der),
            Err(e) => return Err(format!("x509.new: {e}")),
        }
    }
    if chain.is_empty() {
        return Err("x509.new: no PEM certificate found".into());
    }
    for der in &chain {
        if let Err(e) = x509_parser::parse_x509_certificate(der) {
            return Err(format!("x509.new: {e}"));
        }
    }
    Ok(chain)
}

/// The first private key in a PEM string (PKCS#8, PKCS#1 RSA or SEC1 EC), loaded by the
/// provider so unsupported key types are refused here rather than during a handshake.
pub(crate) fn parse_key(pem: &str) -> Result<Arc<dyn rustls::sign::SigningKey>, String> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("pkey.new:load_key: {e}"))?;
    provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| format!("pkey.new:load_key: {e}"))
}

/// A certificate chain and its key, checked to belong together.
pub(crate) fn certified_key(cert: &str, key: &str) -> Result<Arc<CertifiedKey>, String> {
    let chain = parse_cert_chain(cert).map_err(|e| format!("invalid certificate: {e}"))?;
    let key = parse_key(key).map_err(|e| format!("invalid key: {e}"))?;
    let ck = CertifiedKey::new(chain, key);
    match ck.keys_match() {
        Ok(()) => Ok(Arc::new(ck)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(Arc::new(ck)),
        Err(_) => Err("certificate does not match key".into()),
    }
}
