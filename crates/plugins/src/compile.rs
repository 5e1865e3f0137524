//! Once per snapshot, off the proxy threads: validate every plugin entity, type its config,
//! and precompute one [`Chain`] per route (and per service, and a global one) so the request
//! path never looks plugins up by name or walks all of them.
//!
//! Kong resolves each plugin's config lazily in access with an 8-level precedence (R+S+C,
//! R+C, S+C, R+S, C, R, S, Global; first hit wins, no merging) because the consumer is known
//! only once an auth plugin ran. Route and service are known up front, so here each chain
//! entry holds the winner among the non-consumer levels (`base`) plus a small map
//! consumer → config of the consumer-scoped configs that beat `base`; the request path does
//! one hash probe, and only when that map exists.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use gatehouse_config::{Config, Protocol};
use serde_json::Value;
use uuid::Uuid;

use crate::credentials::Credentials;
use crate::ctx::NONE;
use crate::error::{FieldError, PluginError, Seg};
use crate::plugins::rl_store::RateLimitStore;
use crate::plugins::{self, Compiled, Typed, BUNDLED};

/// One enabled plugin entity, compiled.
#[derive(Clone)]
pub(crate) struct Instance {
    pub id: Uuid,
    pub name: &'static str,
    /// Bit per [`Protocol`] (see [`proto_bit`]).
    pub protocols: u16,
    /// Shared by the instances of one distinct config when [`shareable`].
    pub compiled: Arc<Compiled>,
}

pub(crate) fn proto_bit(p: Protocol) -> u16 {
    1 << (p as u16)
}

/// One plugin name in a chain.
#[derive(Clone)]
pub(crate) struct Entry {
    /// Instance index of the config that applies without a consumer (or `NONE`).
    pub base: u32,
    /// Consumer index → instance index, for consumer-scoped configs that outrank `base`.
    pub by_consumer: Option<HashMap<u32, u32>>,
}

impl Entry {
    #[inline]
    pub(crate) fn resolve(&self, consumer: Option<u32>) -> u32 {
        if let (Some(map), Some(c)) = (&self.by_consumer, consumer) {
            if let Some(&i) = map.get(&c) {
                return i;
            }
        }
        self.base
    }
}

/// The plugins that may run on one route (or service, or globally), in Kong's order:
/// PRIORITY descending, then name descending.
#[derive(Default, Clone)]
pub struct Chain {
    pub(crate) entries: Vec<Entry>,
    /// Some config in the chain does I/O in access (rate-limiting `policy: redis`): the proxy
    /// must call [`Plugins::run_access_async`].
    pub(crate) needs_async: bool,
    /// Some key-auth in the chain reads the body (`key_in_body`): the proxy reads it before
    /// access.
    pub(crate) needs_body: bool,
}

impl Chain {
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Everything the runtime needs for one config snapshot.
pub struct Plugins {
    pub(crate) instances: Vec<Instance>,
    pub(crate) route_chains: Vec<Chain>,
    pub(crate) service_chains: Vec<Chain>,
    pub(crate) global_chain: Chain,
    /// Global instances with a rewrite handler, in order.
    pub(crate) rewrite: Vec<u32>,
    pub(crate) creds: Credentials,
    pub(crate) service_ids: Vec<Uuid>,
    not_implemented: Vec<(Uuid, String)>,
    /// Some request-termination echoes routes and services as JSON (timestamps included),
    /// which [`fingerprint`] does not cover: these chains are never reused.
    echoes_entities: bool,
}

impl Plugins {
    /// The credential/consumer index of this snapshot.
    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// Enabled plugins Gatehouse accepts but does not run yet (id, name).
    pub fn not_implemented(&self) -> &[(Uuid, String)] {
        &self.not_implemented
    }

    /// The normalised config (Kong's defaults filled in) of an enabled plugin, as JSON.
    pub fn config_of(&self, id: Uuid) -> Option<Value> {
        let inst = self.instances.iter().find(|i| i.id == id)?;
        inst.compiled.config_json()
    }

    /// Whether a later config with the same [`fingerprint`] may keep these compiled plugins
    /// instead of compiling its own.
    pub fn reusable(&self) -> bool {
        !self.echoes_entities
    }

    /// These compiled plugins and chains for `config`, whose [`fingerprint`] equals the one
    /// they were compiled from (and [`Plugins::reusable`]), with `config`'s credentials: the
    /// credential lists are outside the fingerprint because key-auth and jwt credentials
    /// without an id get a new random one at each load (as in Kong), and nothing but the
    /// credential index reads them. Shares the compiled configs (rate-limiting counters
    /// included); the chains are copied, not compiled.
    pub fn with_credentials(&self, config: &Config) -> Plugins {
        Plugins {
            instances: self.instances.clone(),
            route_chains: self.route_chains.clone(),
            service_chains: self.service_chains.clone(),
            global_chain: self.global_chain.clone(),
            rewrite: self.rewrite.clone(),
            creds: Credentials::build(config),
            service_ids: self.service_ids.clone(),
            not_implemented: self.not_implemented.clone(),
            echoes_entities: self.echoes_entities,
        }
    }

    /// Plugin names of a chain, in execution order (for tests and the debug API).
    pub fn chain_names(&self, chain: &Chain) -> Vec<&'static str> {
        chain
            .entries
            .iter()
            .filter_map(|e| {
                let i = if e.base != NONE {
                    e.base
                } else {
                    *e.by_consumer.as_ref()?.values().next()?
                };
                Some(self.instances[i as usize].name)
            })
            .collect()
    }
}

/// Level of a config for a request on (route, service) by a consumer; lower wins.
fn rank(route: bool, service: bool, consumer: bool) -> u8 {
    match (route, service, consumer) {
        (true, true, true) => 0,
        (true, false, true) => 1,
        (false, true, true) => 2,
        (true, true, false) => 3,
        (false, false, true) => 4,
        (true, false, false) => 5,
        (false, true, false) => 6,
        (false, false, false) => 7,
    }
}

struct Scoped {
    inst: u32,
    route: Option<usize>,
    service: Option<usize>,
    consumer: Option<u32>,
}

/// Instances of one plugin name, indexed by scope.
#[derive(Default)]
struct Group<'a> {
    by_route: HashMap<usize, Vec<&'a Scoped>>,
    by_service: HashMap<usize, Vec<&'a Scoped>>,
    unscoped: Vec<&'a Scoped>,
}

fn build_entry(g: &Group<'_>, route: Option<usize>, service: Option<usize>) -> Option<Entry> {
    let none = Vec::new();
    let cands = route
        .map_or(&none, |r| g.by_route.get(&r).unwrap_or(&none))
        .iter()
        .filter(|s| s.service.is_none() || s.service == service)
        .chain(
            service
                .map_or(&none, |s| g.by_service.get(&s).unwrap_or(&none))
                .iter()
                .filter(|s| s.route.is_none()),
        )
        .chain(g.unscoped.iter());
    let mut base: Option<(u8, u32)> = None;
    let mut consumer_best: HashMap<u32, (u8, u32)> = HashMap::new();
    for s in cands {
        let r = rank(s.route.is_some(), s.service.is_some(), s.consumer.is_some());
        match s.consumer {
            None => {
                if base.is_none_or(|(br, _)| r < br) {
                    base = Some((r, s.inst));
                }
            }
            Some(c) => {
                let e = consumer_best.entry(c).or_insert((u8::MAX, NONE));
                if r < e.0 {
                    *e = (r, s.inst);
                }
            }
        }
    }
    let base_rank = base.map_or(u8::MAX, |b| b.0);
    let map: HashMap<u32, u32> = consumer_best
        .into_iter()
        .filter(|(_, (r, _))| *r < base_rank)
        .map(|(c, (_, i))| (c, i))
        .collect();
    if base.is_none() && map.is_empty() {
        return None;
    }
    Some(Entry {
        base: base.map_or(NONE, |b| b.1),
        by_consumer: (!map.is_empty()).then_some(map),
    })
}

fn warn_not_implemented(name: &str) {
    static WARNED: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let mut w = WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if !w.iter().any(|n| n == name) {
        tracing::warn!(
            plugin = name,
            "plugin is not implemented by Gatehouse yet; it is accepted and skipped"
        );
        w.push(name.to_string());
    }
}

/// Schema validation results per distinct plugin config, for one load. Kong's benchmark shape
/// (and most real configs) repeat the same few configs on thousands of routes: each distinct
/// (name, config) is validated once, found again by a hash of the config and confirmed by
/// comparing the config itself, and compiled once when its compiled form depends on nothing
/// but the config (see [`shareable`]): 20,000 instances of two configs hold two compiled
/// configs, not 20,000 (they were ~60 % of a snapshot's heap).
#[derive(Default)]
struct Validated<'c> {
    seen: HashMap<(&'c str, u64), Vec<usize>>,
    outcomes: Vec<Outcome<'c>>,
}

struct Outcome<'c> {
    config: &'c Value,
    typed: Option<Typed>,
    errors: Vec<FieldError>,
    compiled: Option<Arc<Compiled>>,
}

impl<'c> Validated<'c> {
    /// Validates (or finds) `config`; returns its outcome's index.
    fn validate(&mut self, name: &'c str, config: &'c Value, errs: &mut Vec<FieldError>) -> usize {
        let mut h = std::hash::DefaultHasher::new();
        hash_value(config, &mut h);
        let slot = self.seen.entry((name, h.finish())).or_default();
        for &i in slot.iter() {
            if let Some(o) = self.outcomes.get(i).filter(|o| o.config == config) {
                errs.extend(o.errors.iter().cloned());
                return i;
            }
        }
        let mut errors = Vec::new();
        let typed = plugins::validate(name, config, &mut errors);
        errs.extend(errors.iter().cloned());
        slot.push(self.outcomes.len());
        self.outcomes.push(Outcome {
            config,
            typed,
            errors,
            compiled: None,
        });
        self.outcomes.len() - 1
    }
}

/// Whether a compiled config depends only on the typed config (and the snapshot's
/// credentials), so identical configs may share it. Rate-limiting holds its instance's
/// counters; observers (already shared) and not-yet-implemented plugins stay per instance.
fn shareable(t: &Typed) -> bool {
    !matches!(
        t,
        Typed::RateLimiting(_)
            | Typed::Prometheus(_)
            | Typed::HttpLog(_)
            | Typed::FileLog(_)
            | Typed::OpenTelemetry(_)
            | Typed::NotImplemented(_)
    )
}

type Echo = (Arc<Vec<Value>>, Arc<Vec<Value>>);

/// Compiles one plugin entity's typed config.
fn compile_one(
    t: Typed,
    p: &gatehouse_config::Plugin,
    store: &Arc<RateLimitStore>,
    creds: &Credentials,
    config: &Config,
    echo_json: &mut Option<Echo>,
) -> Compiled {
    match t {
        Typed::KeyAuth(c) => Compiled::KeyAuth(plugins::key_auth::compile(c, creds)),
        Typed::RateLimiting(c) => {
            let scope = (p.route, p.service);
            let rl = plugins::rate_limiting::compile(c, p.id, scope, store.clone());
            Compiled::RateLimiting(rl)
        }
        Typed::RequestTermination(c) => {
            let mut rt = plugins::request_termination::compile(c);
            if rt.config.echo {
                let (r, s) = echo_json
                    .get_or_insert_with(|| {
                        let to = |v: Vec<Value>| Arc::new(v);
                        (
                            to(config
                                .routes
                                .iter()
                                .filter_map(|r| serde_json::to_value(r).ok())
                                .collect()),
                            to(config
                                .services
                                .iter()
                                .filter_map(|s| serde_json::to_value(s).ok())
                                .collect()),
                        )
                    })
                    .clone();
                rt.echo_route = r;
                rt.echo_service = s;
            }
            Compiled::RequestTermination(rt)
        }
        Typed::Acl(c) => Compiled::Acl(plugins::acl::compile(c, creds)),
        Typed::IpRestriction(c) => Compiled::IpRestriction(plugins::ip_restriction::compile(c)),
        Typed::CorrelationId(c) => Compiled::CorrelationId(plugins::correlation_id::compile(c)),
        Typed::Cors(c) => Compiled::Cors(plugins::cors::compile(c)),
        Typed::RequestSizeLimiting(c) => {
            Compiled::RequestSizeLimiting(plugins::request_size::compile(c))
        }
        Typed::BasicAuth(c) => Compiled::BasicAuth(plugins::basic_auth::compile(c, creds)),
        Typed::Jwt(c) => Compiled::Jwt(plugins::jwt::compile(c, creds)),
        Typed::RequestTransformer(c) => {
            Compiled::RequestTransformer(plugins::request_transformer::compile(c))
        }
        Typed::ResponseTransformer(c) => {
            Compiled::ResponseTransformer(plugins::response_transformer::compile(c))
        }
        Typed::Prometheus(c) => Compiled::Prometheus(Arc::new(c)),
        Typed::HttpLog(c) => Compiled::HttpLog(Arc::new(c)),
        Typed::FileLog(c) => Compiled::FileLog(Arc::new(c)),
        Typed::OpenTelemetry(c) => Compiled::OpenTelemetry(Arc::new(c)),
        Typed::NotImplemented(v) => Compiled::NotImplemented(v),
    }
}

/// Hashes a JSON value in document order (equal values in another key order just miss the
/// cache; they are still compared before reuse).
fn hash_value(v: &Value, h: &mut impl Hasher) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => {
            h.write_u8(1);
            b.hash(h);
        }
        Value::Number(n) => {
            h.write_u8(2);
            match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => i.hash(h),
                (None, Some(u)) => u.hash(h),
                _ => n.as_f64().unwrap_or_default().to_bits().hash(h),
            }
        }
        Value::String(s) => {
            h.write_u8(3);
            s.hash(h);
        }
        Value::Array(a) => {
            h.write_u8(4);
            h.write_usize(a.len());
            a.iter().for_each(|x| hash_value(x, h));
        }
        Value::Object(m) => {
            h.write_u8(5);
            h.write_usize(m.len());
            for (k, x) in m {
                k.hash(h);
                hash_value(x, h);
            }
        }
    }
}

/// Validates every plugin of `config` and compiles the per-route chains. `store` holds the
/// rate-limiting counters and must be the same `Arc` across snapshots for counters to
/// survive reloads.
pub fn compile(config: &Config, store: &Arc<RateLimitStore>) -> Result<Plugins, PluginError> {
    let mut errors = Vec::new();
    let mut typed = Vec::with_capacity(config.plugins.len());
    let mut validated = Validated::default();
    for (pi, p) in config.plugins.iter().enumerate() {
        let mut errs = Vec::new();
        let t = match BUNDLED.iter().find(|(n, _)| *n == p.name) {
            None => {
                errs.push(FieldError::key(
                    "name",
                    format!(
                        "plugin '{}' not enabled; add it to the 'plugins' configuration property",
                        p.name
                    ),
                ));
                None
            }
            Some(_) => {
                if plugins::no_consumer(&p.name) && p.consumer.is_some() {
                    errs.push(FieldError::key("consumer", "value must be null"));
                }
                if let Some(allowed) = plugins::allowed_protocols(&p.name) {
                    for (j, proto) in p.protocols.iter().enumerate() {
                        if !allowed.contains(proto) {
                            let list: Vec<&str> = allowed.iter().map(|p| p.as_str()).collect();
                            let mut e = FieldError::key(
                                "protocols",
                                format!("expected one of: {}", list.join(", ")),
                            );
                            e.path.push(Seg::Index(j));
                            errs.push(e);
                        }
                    }
                }
                Some(validated.validate(&p.name, &p.config, &mut errs))
            }
        };
        for mut e in errs {
            e.plugin_index = pi;
            e.plugin_id = p.id;
            e.plugin_name = p.name.clone();
            errors.push(e);
        }
        typed.push(t);
    }
    if !errors.is_empty() {
        return Err(PluginError { errors });
    }

    let creds = Credentials::build(config);
    let route_idx: HashMap<Uuid, usize> = config
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id, i))
        .collect();
    let service_idx: HashMap<Uuid, usize> = config
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id, i))
        .collect();
    let mut echo_json: Option<Echo> = None;

    let mut instances = Vec::new();
    let mut scoped: Vec<(usize, Scoped)> = Vec::new(); // (bundled index, scope)
    let mut not_implemented = Vec::new();
    for (p, t) in config.plugins.iter().zip(typed) {
        let (Some(oi), true) = (t, p.enabled) else {
            continue;
        };
        let Some(outcome) = validated.outcomes.get_mut(oi) else {
            continue;
        };
        let Some(t) = outcome.typed.as_ref() else {
            continue;
        };
        let Some(bi) = plugins::bundled_index(&p.name) else {
            continue;
        };
        if let Typed::NotImplemented(_) = t {
            warn_not_implemented(&p.name);
            not_implemented.push((p.id, p.name.clone()));
        }
        let compiled = match &outcome.compiled {
            Some(shared) => shared.clone(),
            None => {
                let share = shareable(t);
                let c = compile_one(t.clone(), p, store, &creds, config, &mut echo_json);
                let c = Arc::new(c);
                if share {
                    outcome.compiled = Some(c.clone());
                }
                c
            }
        };
        let inst = instances.len() as u32;
        instances.push(Instance {
            id: p.id,
            name: BUNDLED[bi].0,
            protocols: p.protocols.iter().fold(0, |m, pr| m | proto_bit(*pr)),
            compiled,
        });
        // A plugin on a route/service/consumer missing from this config can never apply.
        let route = p.route.map(|r| route_idx.get(&r).copied());
        let service = p.service.map(|s| service_idx.get(&s).copied());
        let consumer = p.consumer.map(|c| creds.consumer_by_id.get(&c).copied());
        if matches!(route, Some(None))
            || matches!(service, Some(None))
            || matches!(consumer, Some(None))
        {
            continue;
        }
        scoped.push((
            bi,
            Scoped {
                inst,
                route: route.flatten(),
                service: service.flatten(),
                consumer: consumer.flatten(),
            },
        ));
    }

    // Plugin names in execution order: PRIORITY desc, then name desc.
    let mut order: Vec<usize> = (0..BUNDLED.len()).collect();
    order.sort_by(|&a, &b| {
        BUNDLED[b]
            .1
            .cmp(&BUNDLED[a].1)
            .then(BUNDLED[b].0.cmp(BUNDLED[a].0))
    });
    let mut groups: Vec<Group<'_>> = (0..BUNDLED.len()).map(|_| Group::default()).collect();
    for (bi, s) in &scoped {
        let g = &mut groups[*bi];
        match (s.route, s.service) {
            (Some(r), _) => g.by_route.entry(r).or_default().push(s),
            (None, Some(sv)) => g.by_service.entry(sv).or_default().push(s),
            (None, None) => g.unscoped.push(s),
        }
    }
    let active: Vec<&Group<'_>> = order
        .iter()
        .map(|&bi| &groups[bi])
        .filter(|g| !(g.by_route.is_empty() && g.by_service.is_empty() && g.unscoped.is_empty()))
        .collect();
    let is_async = |i: &u32| {
        instances
            .get(*i as usize)
            .is_some_and(|inst: &Instance| inst.compiled.needs_async())
    };
    let chain = |route: Option<usize>, service: Option<usize>| {
        let entries: Vec<Entry> = active
            .iter()
            .filter_map(|g| build_entry(g, route, service))
            .collect();
        let needs_async = entries.iter().any(|e| {
            is_async(&e.base)
                || e.by_consumer
                    .as_ref()
                    .is_some_and(|m| m.values().any(is_async))
        });
        let needs_body = entries.iter().any(|e| {
            instances.get(e.base as usize).is_some_and(|inst: &Instance| {
                matches!(&*inst.compiled, Compiled::KeyAuth(k) if k.config.key_in_body)
            })
        });
        Chain {
            entries,
            needs_async,
            needs_body,
        }
    };
    let route_chains = config
        .routes
        .iter()
        .map(|r| {
            let r_idx = route_idx.get(&r.id).copied();
            let s_idx = r.service.and_then(|s| service_idx.get(&s).copied());
            chain(r_idx, s_idx)
        })
        .collect();
    let service_chains = (0..config.services.len())
        .map(|s| chain(None, Some(s)))
        .collect();
    let global_chain = chain(None, None);
    let rewrite = Vec::new(); // no implemented plugin has a rewrite handler yet

    Ok(Plugins {
        instances,
        route_chains,
        service_chains,
        global_chain,
        rewrite,
        creds,
        service_ids: config.services.iter().map(|s| s.id).collect(),
        not_implemented,
        echoes_entities: echo_json.is_some(),
    })
}

/// Kong's per-group hash for the plugins part of a snapshot: everything [`compile`] reads
/// apart from the credential lists (plugin entities, the order and ids of routes and services
/// with each route's service, consumers, ACL groups), except `created_at`/`updated_at`, which
/// default to the load time and would make every load look changed. Entities are destructured
/// exhaustively, so a new field cannot be forgotten. Configs with equal fingerprints compile to
/// the same chains, so the control side keeps the previous ones ([`Plugins::with_credentials`])
/// instead of validating and compiling 20,000 plugins again. Key-auth, basic-auth and jwt
/// credentials only feed the credential index, which is rebuilt at every load. The caller
/// brings the hasher (the snapshot's fixed-seed one: fingerprints are compared across
/// snapshots of one process).
pub fn fingerprint(config: &Config, h: &mut impl Hasher) {
    h.write_usize(config.plugins.len());
    for p in &config.plugins {
        let gatehouse_config::Plugin {
            id,
            name,
            instance_name,
            route,
            service,
            consumer,
            config,
            protocols,
            enabled,
            tags,
            created_at: _,
            updated_at: _,
        } = p;
        (id, name, instance_name, route, service, consumer).hash(h);
        (protocols, enabled, tags).hash(h);
        hash_value(config, h);
    }
    h.write_usize(config.routes.len());
    for r in &config.routes {
        (r.id, r.service).hash(h);
    }
    h.write_usize(config.services.len());
    for s in &config.services {
        s.id.hash(h);
    }
    h.write_usize(config.consumers.len());
    for c in &config.consumers {
        let gatehouse_config::Consumer {
            id,
            username,
            custom_id,
            tags,
            created_at: _,
            updated_at: _,
        } = c;
        (id, username, custom_id, tags).hash(h);
    }
    h.write_usize(config.acls.len());
    for a in &config.acls {
        let gatehouse_config::Acl {
            id,
            consumer,
            group,
            tags,
            created_at: _,
        } = a;
        (id, consumer, group, tags).hash(h);
    }
}
