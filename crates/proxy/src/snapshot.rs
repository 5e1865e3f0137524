//! The immutable snapshot every request is served from, and the cell it is published through.
//!
//! A snapshot is built from a validated [`Config`] on a control thread (router compiled, services
//! resolved to upstream targets or balancers, header values pre-rendered) and published with one
//! atomic pointer swap. A request loads the current snapshot once and keeps that `Arc` until it
//! ends, so an in-flight request never sees a half-applied config.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use gatehouse_config::{Config, Protocol, RouterFlavor, Upstream};
use gatehouse_plugins::{PluginError, Plugins, RateLimitStore};
use gatehouse_router::{Router, RouterError};
use http::HeaderValue;

use crate::balancer::{Balancer, Target};
use crate::observe::{Observability, SnapshotObs};
use crate::tls::{CertStore, ClientTls, TlsError, UpstreamTlsDefaults};

/// Config hash Kong reports while no configuration is loaded.
pub const EMPTY_HASH: &str = "00000000000000000000000000000000";

static GENERATION: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error("invalid plugin configuration: {0}")]
    Plugins(#[from] PluginError),
    #[error("service {service}: {message}")]
    Service { service: String, message: String },
    /// Certificates, CA certificates or a service's TLS fields (Kong's messages, placed by entity
    /// and index so the control side can render Kong's `fields` tree).
    #[error("invalid TLS configuration: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Tls(Vec<TlsError>),
}

/// TLS to a service's upstream: the rustls client settings and a fingerprint of the fields they
/// were built from, so pooled connections made under other settings are never reused.
pub(crate) struct UpstreamTls {
    pub client: ClientTls,
    pub fingerprint: u64,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls").finish_non_exhaustive()
    }
}

/// Where a service sends its requests.
#[derive(Debug)]
pub(crate) enum Destination {
    /// `service.host` is a plain host name or IP.
    Host(Target),
    /// `service.host` names an upstream entity: pick among its targets.
    Balancer(usize),
}

/// A service, pre-resolved for the request path.
#[derive(Debug)]
pub(crate) struct ServiceRt {
    pub destination: Destination,
    /// `Host` sent upstream unless the route preserves the client's.
    pub host_header: Option<HeaderValue>,
    pub path: Option<String>,
    pub retries: u16,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub id_header: HeaderValue,
    pub name_header: Option<HeaderValue>,
    /// `https`/`grpcs`: connect over TLS with these settings.
    pub tls: Option<Arc<UpstreamTls>>,
    /// `grpc`/`grpcs`: speak HTTP/2 to the upstream (one multiplexed connection per target).
    pub h2: bool,
}

/// A route's per-request facts, pre-rendered.
#[derive(Debug)]
pub(crate) struct RouteRt {
    pub https_only: bool,
    /// The route's protocols are grpc and/or grpcs only (Kong's 415/426 for other requests).
    pub grpc_only: bool,
    /// Only `grpcs`: a plain-text gRPC request gets `grpc-status: 1`.
    pub grpcs_only: bool,
    pub https_redirect_status_code: u16,
    pub preserve_host: bool,
    pub id_header: HeaderValue,
    pub name_header: Option<HeaderValue>,
}

/// Everything a request needs, immutable once built.
pub struct Snapshot {
    pub generation: u64,
    /// Kong's configuration hash (md5 of the loaded text), or [`EMPTY_HASH`].
    pub hash: String,
    pub config: Config,
    pub(crate) router: Arc<Router>,
    pub(crate) services: Vec<ServiceRt>,
    pub(crate) routes: Vec<RouteRt>,
    pub(crate) balancers: Arc<Vec<Balancer>>,
    pub(crate) plugins: Plugins,
    /// The plugin chains were carried over from the previous snapshot, not compiled.
    plugins_reused: bool,
    /// Certificates by SNI for the TLS listeners (the default certificate is the listener's).
    pub(crate) certs: Arc<CertStore>,
    /// Rate-limiting counters: carried from snapshot to snapshot so limits survive reloads.
    rate_limits: Arc<RateLimitStore>,
    /// Fingerprints of the parts that can be reused by the next build when unchanged
    /// (Kong's per-group hashes): routes + services → router, upstreams + targets → balancers,
    /// plugins + consumers + ACL groups (+ route/service ids) → plugin chains.
    router_group: u64,
    balancer_group: u64,
    plugins_group: u64,
    /// Metric handles and the observability hub (inherited from the previous snapshot).
    pub(crate) obs: SnapshotObs,
    cert_group: u64,
}

/// Everything compiled from a config, before the config itself moves into the snapshot. Built
/// from a borrowed config, so the control side can persist that config in parallel and commit
/// it only once this succeeded.
pub struct Built {
    router: Arc<Router>,
    services: Vec<ServiceRt>,
    routes: Vec<RouteRt>,
    balancers: Arc<Vec<Balancer>>,
    plugins: Plugins,
    plugins_reused: bool,
    certs: Arc<CertStore>,
    rate_limits: Arc<RateLimitStore>,
    router_group: u64,
    balancer_group: u64,
    plugins_group: u64,
    obs: SnapshotObs,
    cert_group: u64,
}

impl Built {
    /// Compiles `config`, reusing the router, balancers, certificates and compiled plugin
    /// chains of `previous` when the entities they are built from did not change.
    pub fn new(
        config: &Config,
        flavor: RouterFlavor,
        previous: Option<&Snapshot>,
    ) -> Result<Built, BuildError> {
        let router_group = router_fingerprint(config);
        let balancer_group = balancer_fingerprint(config);
        let router = match previous {
            Some(p) if p.router_group == router_group => p.router.clone(),
            _ => match Router::build(config, flavor) {
                Ok(router) => Arc::new(router),
                Err(e) => return Err(e.into()),
            },
        };
        let balancers = match previous {
            Some(p) if p.balancer_group == balancer_group => p.balancers.clone(),
            _ => Arc::new(
                config
                    .upstreams
                    .iter()
                    .map(|u| balancer_for(config, u))
                    .collect(),
            ),
        };
        let cert_group = cert_fingerprint(config);
        let certs = match previous {
            Some(p) if p.cert_group == cert_group => p.certs.clone(),
            _ => {
                let errors = crate::tls::validate(config);
                if !errors.is_empty() {
                    return Err(BuildError::Tls(errors));
                }
                match CertStore::from_config(config) {
                    Ok(certs) => Arc::new(certs),
                    Err(e) => return Err(BuildError::Tls(vec![e])),
                }
            }
        };
        let tls_defaults = UpstreamTlsDefaults::default();
        let rate_limits = previous.map_or_else(RateLimitStore::new, |p| p.rate_limits.clone());
        // Chains are carried over only when everything compile reads but the credentials is
        // unchanged (so validation would pass again and the chains would come out the same)
        // and the counters are the same store; the credential index is always rebuilt.
        let plugins_group = plugins_fingerprint(config);
        let (plugins, plugins_reused) = match previous {
            Some(p)
                if p.plugins_group == plugins_group
                    && p.plugins.reusable()
                    && Arc::ptr_eq(&p.rate_limits, &rate_limits) =>
            {
                (p.plugins.with_credentials(config), true)
            }
            _ => (gatehouse_plugins::compile(config, &rate_limits)?, false),
        };
        let balancer_by_name: HashMap<&str, (usize, &Upstream)> = config
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| (u.name.as_str(), (i, u)))
            .collect();

        let mut services = Vec::with_capacity(config.services.len());
        for (si, s) in config.services.iter().enumerate() {
            let service_label = s.name.clone().unwrap_or_else(|| s.id.to_string());
            let (destination, host_header) = match balancer_by_name.get(s.host.as_str()) {
                Some((index, upstream)) => {
                    let host = upstream.host_header.as_deref().unwrap_or(&s.host);
                    (Destination::Balancer(*index), header_value(host))
                }
                None => {
                    let host = if s.host.contains(':') && !s.host.starts_with('[') {
                        format!("[{}]", s.host) // a bare IPv6 literal
                    } else {
                        s.host.clone()
                    };
                    let authority = format!("{host}:{}", s.port);
                    let host_header = if s.port == default_port(s.protocol) {
                        header_value(&host)
                    } else {
                        header_value(&authority)
                    };
                    let target = Target {
                        authority: authority.into(),
                        host,
                        port: s.port,
                    };
                    (Destination::Host(target), host_header)
                }
            };
            if host_header.is_none() {
                let error = BuildError::Service {
                    service: service_label,
                    message: format!("host '{}' is not a valid Host header", s.host),
                };
                return Err(error);
            }
            services.push(ServiceRt {
                destination,
                host_header,
                path: s.path.clone(),
                retries: s.retries,
                connect_timeout: ms(s.connect_timeout),
                read_timeout: ms(s.read_timeout),
                write_timeout: ms(s.write_timeout),
                id_header: HeaderValue::from_str(&s.id.to_string())
                    .unwrap_or(HeaderValue::from_static("")),
                name_header: s.name.as_deref().and_then(header_value),
                tls: upstream_tls(config, si, &tls_defaults)?,
                h2: matches!(s.protocol, Protocol::Grpc | Protocol::Grpcs),
            });
        }

        let obs = SnapshotObs::build(previous.and_then(|p| p.obs.hub.clone()), config, &plugins);
        let routes = config
            .routes
            .iter()
            .map(|r| RouteRt {
                https_only: r.protocols.contains(&Protocol::Https)
                    && !r.protocols.contains(&Protocol::Http),
                grpc_only: !r.protocols.is_empty()
                    && r.protocols
                        .iter()
                        .all(|p| matches!(p, Protocol::Grpc | Protocol::Grpcs)),
                grpcs_only: r.protocols == [Protocol::Grpcs],
                https_redirect_status_code: r.https_redirect_status_code,
                preserve_host: r.preserve_host,
                id_header: HeaderValue::from_str(&r.id.to_string())
                    .unwrap_or(HeaderValue::from_static("")),
                name_header: r.name.as_deref().and_then(header_value),
            })
            .collect();

        Ok(Built {
            router,
            services,
            routes,
            balancers,
            plugins,
            plugins_reused,
            certs,
            rate_limits,
            router_group,
            balancer_group,
            plugins_group,
            obs,
            cert_group,
        })
    }

    /// The snapshot: this compiled state plus the config it came from.
    pub fn into_snapshot(self, config: Config, hash: String) -> Snapshot {
        Snapshot {
            generation: GENERATION.fetch_add(1, Ordering::Relaxed) + 1,
            hash,
            config,
            router: self.router,
            services: self.services,
            routes: self.routes,
            balancers: self.balancers,
            plugins: self.plugins,
            plugins_reused: self.plugins_reused,
            certs: self.certs,
            rate_limits: self.rate_limits,
            router_group: self.router_group,
            balancer_group: self.balancer_group,
            plugins_group: self.plugins_group,
            obs: self.obs,
            cert_group: self.cert_group,
        }
    }
}

/// The published snapshot: proxy threads `load()` it, the control side `store()`s a new one.
pub type SnapshotCell = Arc<ArcSwap<Snapshot>>;

fn header_value(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

fn ms(v: u32) -> Duration {
    Duration::from_millis(u64::from(v))
}

fn default_port(protocol: Protocol) -> u16 {
    match protocol {
        Protocol::Https | Protocol::Grpcs | Protocol::Tls => 443,
        _ => 80,
    }
}

impl Snapshot {
    /// Compiles a validated config. Runs on a control thread; never on a proxy thread.
    pub fn build(
        config: Config,
        hash: String,
        flavor: RouterFlavor,
    ) -> Result<Snapshot, BuildError> {
        Snapshot::build_from(config, hash, flavor, None)
    }

    /// Like [`Snapshot::build`], reusing the parts of `previous` whose entities did not
    /// change (see [`Built::new`]).
    pub fn build_from(
        config: Config,
        hash: String,
        flavor: RouterFlavor,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, BuildError> {
        Snapshot::try_build_from(config, hash, flavor, previous).map_err(|(e, _)| e)
    }

    /// [`Snapshot::build_from`] that hands the config back on failure, so the caller can
    /// describe the error against it without having cloned or rendered it up front.
    pub fn try_build_from(
        config: Config,
        hash: String,
        flavor: RouterFlavor,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, (BuildError, Box<Config>)> {
        match Built::new(&config, flavor, previous) {
            Ok(built) => Ok(built.into_snapshot(config, hash)),
            Err(e) => Err((e, Box::new(config))),
        }
    }

    /// Attaches the process's observability hub (metrics registry, log queues) and resolves
    /// this snapshot's handles; snapshots built from this one inherit the hub.
    pub fn observed(mut self, hub: Arc<Observability>) -> Snapshot {
        self.obs = SnapshotObs::build(Some(hub), &self.config, &self.plugins);
        self
    }

    /// The hub attached with [`Snapshot::observed`], if any.
    pub fn observability(&self) -> Option<&Arc<Observability>> {
        self.obs.hub.as_ref()
    }

    /// The certificates served by SNI (for tests and the Admin API; handshakes read it directly).
    pub fn certs(&self) -> &CertStore {
        &self.certs
    }

    /// The compiled router (for `explain`; the request path uses it directly).
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Whether `other` shares this snapshot's compiled router (it was reused, not rebuilt).
    pub fn shares_router_with(&self, other: &Snapshot) -> bool {
        Arc::ptr_eq(&self.router, &other.router)
    }

    /// Whether this snapshot's plugin chains were carried over from the previous snapshot
    /// (its plugins fingerprint was unchanged) rather than compiled.
    pub fn reused_plugins(&self) -> bool {
        self.plugins_reused
    }

    /// The snapshot served before any configuration is loaded: every request gets a 404.
    pub fn empty() -> Snapshot {
        Snapshot::build(
            Config::default(),
            EMPTY_HASH.to_string(),
            RouterFlavor::default(),
        )
        .unwrap_or_else(|_| unreachable!("an empty config always builds"))
    }

    pub fn is_empty(&self) -> bool {
        self.hash == EMPTY_HASH
    }

    pub fn route_count(&self) -> usize {
        self.config.routes.len()
    }
}

fn balancer_for(config: &Config, upstream: &Upstream) -> Balancer {
    let targets = config
        .targets
        .iter()
        .filter(|t| t.upstream == upstream.id)
        .filter_map(|t| split_target(&t.target).map(|target| (target, t.weight)))
        .collect();
    Balancer::new(targets)
}

/// Fingerprints of the entities a part is built from, ignoring `created_at`/`updated_at`
/// (they default to the load time and would otherwise make every load look changed). The
/// fields are destructured, not the entity cloned with its timestamps zeroed (60k
/// allocations per 10k-route load), and exhaustively, so a new field cannot be forgotten.
/// foldhash with a fixed seed: fingerprints are compared across snapshots of one process.
fn router_fingerprint(config: &Config) -> u64 {
    let mut h = fingerprint_hasher();
    for r in &config.routes {
        let gatehouse_config::Route {
            id,
            name,
            protocols,
            methods,
            hosts,
            paths,
            headers,
            snis,
            sources,
            destinations,
            https_redirect_status_code,
            strip_path,
            preserve_host,
            request_buffering,
            response_buffering,
            regex_priority,
            path_handling,
            service,
            expression,
            priority,
            tags,
            created_at: _,
            updated_at: _,
        } = r;
        (id, name, protocols, methods, hosts, paths, headers, snis).hash(&mut h);
        (
            sources,
            destinations,
            https_redirect_status_code,
            strip_path,
        )
            .hash(&mut h);
        (preserve_host, request_buffering, response_buffering).hash(&mut h);
        (
            regex_priority,
            path_handling,
            service,
            expression,
            priority,
            tags,
        )
            .hash(&mut h);
    }
    for s in &config.services {
        let gatehouse_config::Service {
            id,
            name,
            protocol,
            host,
            port,
            path,
            retries,
            connect_timeout,
            write_timeout,
            read_timeout,
            tags,
            enabled,
            client_certificate,
            tls_verify,
            tls_verify_depth,
            ca_certificates,
            created_at: _,
            updated_at: _,
        } = s;
        (
            id,
            name,
            protocol,
            host,
            port,
            path,
            retries,
            connect_timeout,
        )
            .hash(&mut h);
        (
            write_timeout,
            read_timeout,
            tags,
            enabled,
            client_certificate,
        )
            .hash(&mut h);
        (tls_verify, tls_verify_depth, ca_certificates).hash(&mut h);
    }
    h.finish()
}

fn plugins_fingerprint(config: &Config) -> u64 {
    let mut h = fingerprint_hasher();
    gatehouse_plugins::fingerprint(config, &mut h);
    h.finish()
}

fn fingerprint_hasher() -> impl Hasher {
    foldhash::fast::FixedState::default().build_hasher()
}

fn cert_fingerprint(config: &Config) -> u64 {
    let mut h = fingerprint_hasher();
    for c in &config.certificates {
        (c.id, &c.cert, &c.key, &c.cert_alt, &c.key_alt).hash(&mut h);
    }
    for s in &config.snis {
        (&s.name, s.certificate).hash(&mut h);
    }
    for c in &config.ca_certificates {
        (c.id, &c.cert).hash(&mut h);
    }
    h.finish()
}

/// The TLS settings of `config.services[index]` when its protocol uses TLS.
fn upstream_tls(
    config: &Config,
    index: usize,
    defaults: &UpstreamTlsDefaults,
) -> Result<Option<Arc<UpstreamTls>>, BuildError> {
    let Some(s) = config.services.get(index) else {
        return Ok(None);
    };
    if !ClientTls::wanted(s) {
        return Ok(None);
    }
    let client =
        ClientTls::for_service(config, index, defaults).map_err(|e| BuildError::Tls(vec![e]))?;
    let mut h = DefaultHasher::new();
    (
        s.protocol,
        s.tls_verify,
        s.tls_verify_depth,
        &s.ca_certificates,
        s.client_certificate,
    )
        .hash(&mut h);
    for c in &config.certificates {
        if Some(c.id) == s.client_certificate {
            (&c.cert, &c.key).hash(&mut h);
        }
    }
    Ok(Some(Arc::new(UpstreamTls {
        client,
        fingerprint: h.finish(),
    })))
}

fn balancer_fingerprint(config: &Config) -> u64 {
    let mut h = fingerprint_hasher();
    for u in &config.upstreams {
        let mut u = u.clone();
        (u.created_at, u.updated_at) = (0, 0);
        u.hash(&mut h);
    }
    for t in &config.targets {
        (t.id, t.upstream, &t.target, t.weight, &t.tags).hash(&mut h);
    }
    h.finish()
}

/// `host:port` (port required: the config crate fills Kong's default) into a [`Target`].
fn split_target(s: &str) -> Option<Target> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    Some(Target {
        authority: s.into(),
        host: host.to_string(),
        port,
    })
}
