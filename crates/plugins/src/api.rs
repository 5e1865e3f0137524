//! What the proxy asks the runtime besides the phases: bodies (request-size-limiting's
//! streaming limit, request/response-transformer's JSON bodies) and the observer plugins
//! (prometheus, http-log, file-log, opentelemetry) whose work lives in other crates.
//!
//! Everything here reads [`PluginState`] filled in by access/header_filter, so the proxy
//! pays nothing for it unless a plugin asked (a flag or an `Option` check).

use std::sync::Arc;

use uuid::Uuid;

use crate::compile::Plugins;
use crate::ctx::{Exit, PluginState};
use crate::plugins::observers::{
    FileLogConfig, HttpLogConfig, OpenTelemetryConfig, PrometheusConfig,
};
use crate::plugins::{self, Compiled};
use crate::respond::ErrorCtx;

/// An observer plugin that applies to a request, with its id (stable across reloads: key
/// queues and files by it) and typed config.
#[derive(Debug, Clone)]
pub enum Observer {
    Prometheus(Uuid, Arc<PrometheusConfig>),
    HttpLog(Uuid, Arc<HttpLogConfig>),
    FileLog(Uuid, Arc<FileLogConfig>),
    OpenTelemetry(Uuid, Arc<OpenTelemetryConfig>),
}

/// A borrowed [`Observer`]: what the proxy's log phase walks per request (no refcount
/// traffic on configs shared by every proxy thread). `index` is the instance's position in
/// the snapshot, stable for the snapshot's life (key per-snapshot resources by it).
#[derive(Debug, Clone, Copy)]
pub enum ObserverRef<'a> {
    Prometheus(&'a PrometheusConfig),
    HttpLog(usize, &'a HttpLogConfig),
    FileLog(usize, &'a FileLogConfig),
    OpenTelemetry(usize, &'a OpenTelemetryConfig),
}

fn observer(id: Uuid, c: &Compiled) -> Option<Observer> {
    Some(match c {
        Compiled::Prometheus(c) => Observer::Prometheus(id, c.clone()),
        Compiled::HttpLog(c) => Observer::HttpLog(id, c.clone()),
        Compiled::FileLog(c) => Observer::FileLog(id, c.clone()),
        Compiled::OpenTelemetry(c) => Observer::OpenTelemetry(id, c.clone()),
        _ => return None,
    })
}

impl Plugins {
    /// Byte limit for a request body sent without a valid Content-Length (chunked): the
    /// proxy counts bytes while streaming and, past it, stops and answers
    /// [`Plugins::request_body_too_large`] (Kong reads the body before proxying).
    pub fn request_body_limit(&self, st: &PluginState) -> Option<u64> {
        st.body_limit
    }

    /// The 413 (417 with `Expect: 100-continue`) `Request size limit exceeded` answer.
    pub fn request_body_too_large(&self, st: &PluginState, err: ErrorCtx<'_>) -> Exit {
        plugins::request_size::too_large(st.expect_continue, err)
    }

    /// Whether access must see the whole request body ([`crate::RequestCtx::body`]): some
    /// key-auth in the route's chain has `key_in_body`. The proxy reads it before access
    /// and afterwards sends [`PluginState::body_rewrite`] when set, else what it read.
    pub fn needs_body_in_access(&self, route: Option<usize>, service: Option<usize>) -> bool {
        self.chain_for(route, service).needs_body
    }

    /// Whether request-transformer must see the whole request body (JSON, form-urlencoded
    /// or multipart): the proxy then buffers it, calls [`Plugins::transform_request_body`]
    /// and fixes Content-Length.
    pub fn needs_request_body(&self, st: &PluginState) -> bool {
        st.request_body_transform.is_some()
    }

    /// The transformed request body, or `None` to send the original.
    pub fn transform_request_body(&self, st: &PluginState, body: &[u8]) -> Option<Vec<u8>> {
        let kind = st.request_body_transform.as_ref()?;
        self.collected(st).find_map(|i| match &*i.compiled {
            Compiled::RequestTransformer(c) => {
                plugins::request_transformer::transform_body(&c.config, kind, body)
            }
            _ => None,
        })
    }

    /// Whether response-transformer must edit the (JSON) response body; header_filter has
    /// already removed `Content-Length`. The proxy buffers the body and calls
    /// [`Plugins::transform_response_body`].
    pub fn needs_response_body(&self, st: &PluginState) -> bool {
        st.response_body_transform
    }

    /// The transformed response body, or `None` to send the original.
    pub fn transform_response_body(&self, st: &PluginState, body: &[u8]) -> Option<Vec<u8>> {
        if !st.response_body_transform {
            return None;
        }
        self.collected(st).find_map(|i| match &*i.compiled {
            Compiled::ResponseTransformer(c) => {
                plugins::response_transformer::transform_json_body(&c.config, body)
            }
            _ => None,
        })
    }

    /// Observer plugins that apply to this request (collected in access, or the global
    /// ones when no route matched), in chain order. Call after access (e.g. in log).
    pub fn observers<'s>(&'s self, st: &'s PluginState) -> impl Iterator<Item = Observer> + 's {
        self.collected(st)
            .filter_map(|i| observer(i.id, &i.compiled))
    }

    /// [`Plugins::observers`] without cloning: borrowed configs plus instance indexes.
    pub fn observer_refs<'s>(
        &'s self,
        st: &'s PluginState,
    ) -> impl Iterator<Item = ObserverRef<'s>> + 's {
        self.collected_indexed(st).filter_map(|(index, i)| {
            Some(match &*i.compiled {
                Compiled::Prometheus(c) => ObserverRef::Prometheus(c),
                Compiled::HttpLog(c) => ObserverRef::HttpLog(index, c),
                Compiled::FileLog(c) => ObserverRef::FileLog(index, c),
                Compiled::OpenTelemetry(c) => ObserverRef::OpenTelemetry(index, c),
                _ => return None,
            })
        })
    }

    /// Every observer plugin of the snapshot with its instance index (as in
    /// [`ObserverRef`]), to set up queues, files and exporters once per snapshot.
    pub fn observer_instances(&self) -> Vec<(usize, Observer)> {
        self.instances
            .iter()
            .enumerate()
            .filter_map(|(n, i)| observer(i.id, &i.compiled).map(|o| (n, o)))
            .collect()
    }

    /// Every enabled observer plugin of the snapshot (to set up queues, files, exporters
    /// once per snapshot).
    pub fn all_observers(&self) -> Vec<Observer> {
        self.instances
            .iter()
            .filter_map(|i| observer(i.id, &i.compiled))
            .collect()
    }
}
