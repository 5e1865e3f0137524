//! SNI → certificate selection and the server-side rustls configuration.
//!
//! [`CertStore`] is immutable and built per snapshot (off the proxy threads). Kong looks a
//! client's SNI up as up to four exact keys (`certificate.lua`, `produce_wild_snis`): the name
//! itself, the name with its first label replaced by `*` (only for names of three or more labels),
//! the name with its last label replaced by `*`, and the catch-all sni `*`. So a wildcard covers
//! exactly one label, and one hash map holds every kind of sni.
//!
//! [`ServerTls`] is built once at start-up: one `rustls::ServerConfig` shared by every proxy
//! thread, whose certificate resolver points at the current `CertStore` through an `ArcSwap`.
//! Swapping certificates therefore keeps ticket keys and the session cache (resumption keeps
//! working across reloads, and across threads with `SO_REUSEPORT`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use gatehouse_config::model::Config;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SignatureAlgorithm};
use tokio_rustls::TlsAcceptor;
use uuid::Uuid;

use super::{certified_key, provider, TlsError};

/// The main certificate of a Kong certificate entity and its optional alternate (`cert_alt`),
/// ordered so the ECDSA one (smaller, faster handshakes; Kong's documented preference) is tried
/// first.
#[derive(Debug)]
struct CertPair {
    id: Option<Uuid>,
    preferred: Arc<CertifiedKey>,
    other: Option<Arc<CertifiedKey>>,
}

impl CertPair {
    fn new(id: Option<Uuid>, main: Arc<CertifiedKey>, alt: Option<Arc<CertifiedKey>>) -> CertPair {
        match alt {
            Some(alt) if !is_ecdsa(&main) && is_ecdsa(&alt) => CertPair {
                id,
                preferred: alt,
                other: Some(main),
            },
            alt => CertPair {
                id,
                preferred: main,
                other: alt,
            },
        }
    }

    /// The first key the client can verify a signature from; the preferred one when it can verify
    /// neither (the handshake then fails in rustls with a proper alert).
    fn choose(&self, schemes: &[rustls::SignatureScheme]) -> Arc<CertifiedKey> {
        if let Some(other) = &self.other {
            if self.preferred.key.choose_scheme(schemes).is_none()
                && other.key.choose_scheme(schemes).is_some()
            {
                return other.clone();
            }
        }
        self.preferred.clone()
    }
}

fn is_ecdsa(ck: &CertifiedKey) -> bool {
    matches!(
        ck.key.algorithm(),
        SignatureAlgorithm::ECDSA | SignatureAlgorithm::ED25519
    )
}

/// Certificates by SNI for one snapshot.
pub struct CertStore {
    by_name: HashMap<String, Arc<CertPair>>,
    /// `None` in a snapshot's store: the listener's resolver falls back to the default
    /// certificate it owns (loaded from the prefix once, not per config).
    default: Option<Arc<CertPair>>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("snis", &self.by_name.len())
            .finish()
    }
}

impl CertStore {
    /// Parses every certificate that an sni refers to (each once) and indexes the snis. `default`
    /// is served to clients without SNI and to names nothing matches. Fails on the first
    /// certificate that does not load; [`super::validate`] reports all of them with Kong's
    /// messages, so run it first.
    pub fn build(config: &Config, default: &Arc<CertifiedKey>) -> Result<CertStore, TlsError> {
        let mut store = CertStore::from_config(config)?;
        store.default = Some(Arc::new(CertPair::new(None, default.clone(), None)));
        Ok(store)
    }

    /// [`CertStore::build`] without a default certificate: names nothing matches resolve to
    /// nothing here, and [`CertStore::resolve_or`] falls back to another store.
    pub fn from_config(config: &Config) -> Result<CertStore, TlsError> {
        let mut by_cert: HashMap<Uuid, Arc<CertPair>> = HashMap::new();
        let mut by_name = HashMap::with_capacity(config.snis.len());
        for (si, sni) in config.snis.iter().enumerate() {
            let pair = match by_cert.get(&sni.certificate) {
                Some(p) => p.clone(),
                None => {
                    let Some((ci, cert)) = config
                        .certificates
                        .iter()
                        .enumerate()
                        .find(|(_, c)| c.id == sni.certificate)
                    else {
                        return Err(TlsError::new(
                            "snis",
                            si,
                            Some("certificate"),
                            format!("no SSL certificate configured for sni: {}", sni.name),
                        ));
                    };
                    let main = certified_key(&cert.cert, &cert.key)
                        .map_err(|m| TlsError::new("certificates", ci, None, m))?;
                    let alt = match (&cert.cert_alt, &cert.key_alt) {
                        (Some(c), Some(k)) => Some(certified_key(c, k).map_err(|m| {
                            TlsError::new("certificates", ci, None, format!("alternative {m}"))
                        })?),
                        _ => None,
                    };
                    let pair = Arc::new(CertPair::new(Some(cert.id), main, alt));
                    by_cert.insert(cert.id, pair.clone());
                    pair
                }
            };
            by_name.insert(normalise(&sni.name), pair);
        }
        Ok(CertStore {
            by_name,
            default: None,
        })
    }

    /// An empty store: every client gets `default`.
    pub fn only_default(default: &Arc<CertifiedKey>) -> CertStore {
        CertStore {
            by_name: HashMap::new(),
            default: Some(Arc::new(CertPair::new(None, default.clone(), None))),
        }
    }

    /// A store serving `keys` (e.g. `ssl_cert`'s list) to every client: the first ECDSA and the
    /// first RSA key, chosen per handshake by what the client can verify; the first key when
    /// there is only one kind.
    pub fn only_defaults(keys: &[Arc<CertifiedKey>]) -> Option<CertStore> {
        let first = keys.first()?;
        let ecdsa = keys.iter().find(|k| is_ecdsa(k));
        let other = keys.iter().find(|k| !is_ecdsa(k));
        let pair = match (ecdsa, other) {
            (Some(e), Some(o)) => CertPair::new(None, e.clone(), Some(o.clone())),
            _ => CertPair::new(None, first.clone(), None),
        };
        Some(CertStore {
            by_name: HashMap::new(),
            default: Some(Arc::new(pair)),
        })
    }

    /// The id of the certificate entity served for `sni`, `None` for the default certificate.
    /// (What the handshake does, for tests, the Admin API and debugging.)
    pub fn certificate_for(&self, sni: Option<&str>) -> Option<Uuid> {
        self.find(sni).and_then(|p| p.id)
    }

    /// Whether the store holds no sni at all (then every client gets the default certificate).
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    fn find(&self, sni: Option<&str>) -> Option<&Arc<CertPair>> {
        let Some(sni) = sni else {
            return self.default.as_ref();
        };
        if self.by_name.is_empty() {
            return self.default.as_ref(); // no allocation for the common no-sni config
        }
        let sni = normalise(sni);
        if let Some(p) = self.by_name.get(&sni) {
            return Some(p);
        }
        let (prefix, suffix) = wildcards(&sni);
        for key in [prefix, suffix].into_iter().flatten() {
            if let Some(p) = self.by_name.get(&key) {
                return Some(p);
            }
        }
        self.by_name.get("*").or(self.default.as_ref())
    }

    /// The key to serve for `hello`: this store's match, else `fallback`'s.
    pub fn resolve_or(
        &self,
        hello: &ClientHello<'_>,
        fallback: &CertStore,
    ) -> Option<Arc<CertifiedKey>> {
        let pair = self
            .find(hello.server_name())
            .or_else(|| fallback.find(hello.server_name()))?;
        Some(pair.choose(hello.signature_schemes()))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.find(hello.server_name())?
                .choose(hello.signature_schemes()),
        )
    }
}

/// DNS names compare case-insensitively; a trailing dot is dropped (as Kong does for route snis).
fn normalise(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Kong's `produce_wild_snis`: `a.b.c` → (`*.b.c`, `a.b.*`); `b.c` → (None, `b.*`); a name that
/// already holds a leading/trailing `*` is its own wildcard.
fn wildcards(sni: &str) -> (Option<String>, Option<String>) {
    let star = sni.find('*');
    let prefix = match star {
        Some(0) => Some(sni.to_owned()),
        Some(_) => None,
        None => sni.split_once('.').and_then(|(first, rest)| {
            let has_two_more = rest
                .split_once('.')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty());
            (!first.is_empty() && has_two_more).then(|| format!("*.{rest}"))
        }),
    };
    let suffix = match star {
        Some(i) if i + 1 == sni.len() => Some(sni.to_owned()),
        Some(_) => None,
        None => sni.rsplit_once('.').and_then(|(head, last)| {
            let head_label = head.rsplit('.').next().unwrap_or("");
            (!last.is_empty() && !head_label.is_empty()).then(|| format!("{head}.*"))
        }),
    };
    (prefix, suffix)
}

/// The resolver the shared `ServerConfig` holds: the current snapshot's [`CertStore`].
struct SwapResolver(ArcSwap<CertStore>);

impl fmt::Debug for SwapResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SwapResolver")
    }
}

impl ResolvesServerCert for SwapResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.load().resolve(hello)
    }
}

/// Server-side TLS settings (Kong: `ssl_protocols`, `ssl_session_tickets`,
/// `ssl_session_cache_size`; ALPN follows `http2` being on the listener).
#[derive(Debug, Clone)]
pub struct ServerTlsOptions {
    /// ALPN protocols in server preference order; empty = no ALPN.
    pub alpn: Vec<Vec<u8>>,
    /// Stateless resumption (RFC 5077 tickets / TLS 1.3 tickets), rotated keys.
    pub session_tickets: bool,
    /// Stateful resumption cache entries (0 = no cache).
    pub session_cache_size: usize,
    /// Offer TLS 1.2 / TLS 1.3 (Kong's default `ssl_protocols = TLSv1.2 TLSv1.3`).
    pub tls12: bool,
    pub tls13: bool,
    /// The TLS 1.2 cipher suites to offer (`ssl_ciphers` with `ssl_cipher_suite = custom`);
    /// `None`: all of the provider's. TLS 1.3 suites are always all offered.
    pub tls12_suites: Option<Vec<rustls::SupportedCipherSuite>>,
}

impl Default for ServerTlsOptions {
    fn default() -> Self {
        ServerTlsOptions {
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            session_tickets: true,
            // Kong's 10m shared cache holds about 40 000 sessions.
            session_cache_size: 40_960,
            tls12: true,
            tls13: true,
            tls12_suites: None,
        }
    }
}

/// The TLS listener's configuration: clone it into every proxy thread (it is two `Arc`s).
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    resolver: Arc<SwapResolver>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("alpn", &self.config.alpn_protocols)
            .finish()
    }
}

impl ServerTls {
    /// Builds the shared server configuration serving `certs`.
    pub fn new(certs: CertStore, options: &ServerTlsOptions) -> Result<ServerTls, TlsError> {
        let resolver = Arc::new(SwapResolver(ArcSwap::from_pointee(certs)));
        let config = server_config(resolver.clone(), options)?;
        Ok(ServerTls {
            config: Arc::new(config),
            resolver,
        })
    }

    /// A server configuration whose certificates come from `resolver` (the proxy's resolver
    /// reads the current snapshot's store, so certificates swap with the config).
    pub fn with_resolver(
        resolver: Arc<dyn ResolvesServerCert>,
        options: &ServerTlsOptions,
    ) -> Result<ServerTls, TlsError> {
        let config = server_config(resolver, options)?;
        Ok(ServerTls {
            config: Arc::new(config),
            resolver: Arc::new(SwapResolver(ArcSwap::from_pointee(CertStore {
                by_name: HashMap::new(),
                default: None,
            }))),
        })
    }

    /// Serves `certs` from the next handshake on (in-flight handshakes finish with the old
    /// store), for a [`ServerTls::new`] configuration. Call it where the snapshot is swapped.
    pub fn swap_certs(&self, certs: CertStore) {
        self.resolver.0.store(Arc::new(certs));
    }

    /// The certificates being served now (by a [`ServerTls::new`] configuration).
    pub fn certs(&self) -> Arc<CertStore> {
        self.resolver.0.load_full()
    }

    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }
}

fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
    options: &ServerTlsOptions,
) -> Result<ServerConfig, TlsError> {
    {
        let server_err = |m: String| TlsError::new("server", 0, None, m);
        let versions: &[&rustls::SupportedProtocolVersion] = match (options.tls12, options.tls13) {
            (true, true) => &[&rustls::version::TLS13, &rustls::version::TLS12],
            (true, false) => &[&rustls::version::TLS12],
            _ => &[&rustls::version::TLS13],
        };
        let provider = match &options.tls12_suites {
            None => provider(),
            Some(tls12) => {
                let base = provider();
                let mut p = (*base).clone();
                p.cipher_suites = base
                    .cipher_suites
                    .iter()
                    .filter(|s| matches!(s, rustls::SupportedCipherSuite::Tls13(_)))
                    .chain(tls12.iter())
                    .copied()
                    .collect();
                Arc::new(p)
            }
        };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| server_err(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = options.alpn.clone();
        config.session_storage = if options.session_cache_size > 0 {
            ServerSessionMemoryCache::new(options.session_cache_size)
        } else {
            Arc::new(rustls::server::NoServerSessionStorage {})
        };
        if options.session_tickets {
            config.ticketer =
                rustls::crypto::ring::Ticketer::new().map_err(|e| server_err(e.to_string()))?;
            // TLS 1.3: hand out two tickets, like OpenSSL, so a client can open two resumed
            // connections in parallel.
            config.send_tls13_tickets = 2;
        } else {
            config.send_tls13_tickets = 0;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::wildcards;

    #[test]
    fn kong_wildcard_keys() {
        let w = |s: &str| wildcards(s);
        assert_eq!(
            w("a.example.com"),
            (Some("*.example.com".into()), Some("a.example.*".into()))
        );
        assert_eq!(w("example.com"), (None, Some("example.*".into())));
        assert_eq!(w("localhost"), (None, None));
        assert_eq!(w("*.example.com"), (Some("*.example.com".into()), None));
        assert_eq!(w("example.*"), (None, Some("example.*".into())));
    }
}
