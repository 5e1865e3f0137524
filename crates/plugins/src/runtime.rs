//! The phases the proxy calls, in Kong's order and with Kong's rules:
//!
//! * rewrite — global plugins only (the route is not known to Kong yet);
//! * access — the collecting phase: walk the chain, resolve each plugin's config for the
//!   current consumer (so a consumer-scoped config applies only to plugins after the auth
//!   plugin that identified the consumer), run it; once a plugin exits, the rest are still
//!   collected but not run;
//! * header_filter / log — every collected plugin, also after an early exit.
//!
//! Everything here is synchronous and allocation-free by itself; the only allocations are
//! the outputs (error bodies, new header values, map growth). The one exception is
//! [`Plugins::run_access_async`], for chains with a plugin that does I/O in access
//! (rate-limiting `policy: redis`); the proxy uses it only when [`Plugins::needs_async`].

use http::{HeaderMap, StatusCode};

use crate::compile::{proto_bit, Chain, Entry, Instance, Plugins};
use crate::ctx::{Exit, PluginState, RequestCtx, NONE};
use crate::plugins::{self, Compiled};

impl Plugins {
    /// The precomputed chain for a request: the route's (a route belongs to one service),
    /// else the service's, else the global one.
    #[inline]
    pub fn chain_for(&self, route: Option<usize>, service: Option<usize>) -> &Chain {
        if let Some(c) = route.and_then(|r| self.route_chains.get(r)) {
            return c;
        }
        if let Some(c) = service.and_then(|s| self.service_chains.get(s)) {
            return c;
        }
        &self.global_chain
    }

    /// Whether any plugin could run for this route (the proxy may skip all plugin calls
    /// when not).
    pub fn is_empty_for(&self, route: Option<usize>, service: Option<usize>) -> bool {
        self.chain_for(route, service).is_empty() && self.rewrite.is_empty()
    }

    /// rewrite: global plugins only.
    pub fn run_rewrite(&self, st: &mut PluginState, req: &mut RequestCtx<'_>) -> Option<Exit> {
        let _ = (st, req);
        // No implemented plugin has a rewrite handler yet; `self.rewrite` lists them when
        // one does (correlation-id/pre-function in Kong).
        None
    }

    /// Whether [`Plugins::run_access_async`] must be used for this request's chain (some
    /// config does I/O in access: rate-limiting `policy: redis`).
    pub fn needs_async(&self, st: &PluginState) -> bool {
        self.chain_for(st.route, st.service).needs_async
    }

    /// access: resolves and runs the chain; `Some(exit)` = answer with it (then still call
    /// `run_header_filter` on its headers and `run_log`).
    pub fn run_access(&self, st: &mut PluginState, req: &mut RequestCtx<'_>) -> Option<Exit> {
        let chain = self.chain_for(st.route, st.service);
        let n = chain.entries.len().min(st.resolved.len());
        st.resolved_len = n as u8;
        let bit = proto_bit(req.protocol);
        let mut exit = None;
        for (i, e) in chain.entries.iter().take(n).enumerate() {
            let Some(inst) = self.collect_one(i, e, bit, st, req) else {
                continue;
            };
            if let Some(x) = self.access_one(inst, st, req) {
                st.exited = true;
                exit = Some(x);
            }
        }
        exit
    }

    /// [`Plugins::run_access`] for chains where [`Plugins::needs_async`] holds: the same
    /// collecting and early-exit rules, awaiting the plugins that do I/O.
    pub async fn run_access_async(
        &self,
        st: &mut PluginState,
        req: &mut RequestCtx<'_>,
    ) -> Option<Exit> {
        let chain = self.chain_for(st.route, st.service);
        let n = chain.entries.len().min(st.resolved.len());
        st.resolved_len = n as u8;
        let bit = proto_bit(req.protocol);
        let mut exit = None;
        for (i, e) in chain.entries.iter().take(n).enumerate() {
            let Some(inst) = self.collect_one(i, e, bit, st, req) else {
                continue;
            };
            let x = match &*inst.compiled {
                Compiled::RateLimiting(c) if c.redis.is_some() => {
                    plugins::rate_limiting::access_redis(c, self, st, req).await
                }
                _ => self.access_one(inst, st, req),
            };
            if let Some(x) = x {
                st.exited = true;
                exit = Some(x);
            }
        }
        exit
    }

    /// Collects chain entry `i`: resolves its config for the current consumer and records
    /// it; returns the instance to run, `None` when it does not apply or a plugin exited.
    fn collect_one(
        &self,
        i: usize,
        e: &Entry,
        bit: u16,
        st: &mut PluginState,
        req: &mut RequestCtx<'_>,
    ) -> Option<&Instance> {
        let idx = e.resolve(st.consumer);
        st.resolved[i] = NONE;
        if idx == NONE {
            return None;
        }
        let inst = self.instances.get(idx as usize)?;
        if inst.protocols & bit == 0 {
            return None;
        }
        st.resolved[i] = idx;
        if let Compiled::Cors(_) = &*inst.compiled {
            plugins::cors::collect(st, req);
        }
        if st.exited {
            return None; // collected, not executed
        }
        Some(inst)
    }

    fn access_one(
        &self,
        inst: &Instance,
        st: &mut PluginState,
        req: &mut RequestCtx<'_>,
    ) -> Option<Exit> {
        match &*inst.compiled {
            Compiled::KeyAuth(c) => plugins::key_auth::access(c, &self.creds, st, req),
            Compiled::RateLimiting(c) => plugins::rate_limiting::access(c, self, st, req),
            Compiled::RequestTermination(c) => {
                plugins::request_termination::access(c, st.route, st.service, req)
            }
            Compiled::Acl(c) => plugins::acl::access(c, &self.creds, st, req),
            Compiled::IpRestriction(c) => plugins::ip_restriction::access(c, req),
            Compiled::CorrelationId(c) => {
                plugins::correlation_id::access(c, st, req);
                None
            }
            Compiled::Cors(c) => plugins::cors::access(c, st, req),
            Compiled::RequestSizeLimiting(c) => plugins::request_size::access(c, st, req),
            Compiled::BasicAuth(c) => plugins::basic_auth::access(c, &self.creds, st, req),
            Compiled::Jwt(c) => plugins::jwt::access(c, &self.creds, st, req),
            Compiled::RequestTransformer(c) => {
                plugins::request_transformer::access(c, st, req);
                None
            }
            Compiled::ResponseTransformer(_)
            | Compiled::Prometheus(_)
            | Compiled::HttpLog(_)
            | Compiled::FileLog(_)
            | Compiled::OpenTelemetry(_)
            | Compiled::NotImplemented(_) => None,
        }
    }

    /// Collected instances, in order (global base configs if access never ran, e.g. on a
    /// 404).
    pub(crate) fn collected<'s>(
        &'s self,
        st: &'s PluginState,
    ) -> impl Iterator<Item = &'s Instance> + 's {
        self.collected_indexed(st).map(|(_, i)| i)
    }

    /// [`Plugins::collected`] with each instance's index.
    pub(crate) fn collected_indexed<'s>(
        &'s self,
        st: &'s PluginState,
    ) -> impl Iterator<Item = (usize, &'s Instance)> + 's {
        let from_access = st.resolved[..st.resolved_len as usize]
            .iter()
            .filter(|&&i| i != NONE)
            .copied();
        let global = (st.resolved_len == 0 && st.route.is_none())
            .then(|| {
                self.global_chain
                    .entries
                    .iter()
                    .map(|e| e.base)
                    .filter(|&i| i != NONE)
            })
            .into_iter()
            .flatten();
        from_access
            .chain(global)
            .filter_map(|i| Some((i as usize, self.instances.get(i as usize)?)))
    }

    /// header_filter: on the upstream's response headers or on an [`Exit`]'s headers.
    pub fn run_header_filter(
        &self,
        st: &mut PluginState,
        status: StatusCode,
        headers: &mut HeaderMap,
    ) {
        let _ = status;
        let mut body = false;
        for inst in self.collected(st) {
            match &*inst.compiled {
                Compiled::RateLimiting(c) => plugins::rate_limiting::header_filter(c, st, headers),
                Compiled::CorrelationId(c) => {
                    plugins::correlation_id::header_filter(c, st, headers)
                }
                Compiled::Cors(c) => plugins::cors::header_filter(c, st, headers),
                Compiled::ResponseTransformer(c) => {
                    body |= plugins::response_transformer::header_filter(c, headers)
                }
                _ => {}
            }
        }
        if body {
            st.response_body_transform = true;
        }
    }

    /// log: after the response is sent. No I/O here; counters only.
    pub fn run_log(&self, st: &PluginState, status: StatusCode) {
        let _ = status;
        for inst in self.collected(st) {
            // Local rate-limiting counted atomically in access: nothing to flush. Metrics
            // plugins will push to per-thread counters here.
            let _ = inst;
        }
    }
}
