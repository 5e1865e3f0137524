//! Gatehouse's plugin runtime: Kong 3.x plugin semantics at near-zero per-request cost.
//!
//! * [`compile`] validates every `plugins` entity with Kong's schema (defaults, messages),
//!   types each config and builds per-route [`Chain`]s once per snapshot.
//! * The proxy drives the phases per request with a [`RequestCtx`] (borrowed request) and a
//!   [`PluginState`] (owned, fixed-size), see [`Plugins::run_access`] and friends.
//! * No hyper here: only `http` types, so the proxy owns I/O and the plugins own semantics.
//!
//! Call order for one request (see the README of the crate in the report / lib docs):
//! `PluginState::new(route, service)` → `run_rewrite` → `run_access` (→ `Exit`?) →
//! proxy or answer → `run_header_filter(status, &mut headers)` → send → `run_log`.
#![forbid(unsafe_code)]

mod api;
mod body;
mod compile;
mod credentials;
mod ctx;
mod error;
mod plugins;
mod query;
mod respond;
mod runtime;
mod schema;

pub use api::{Observer, ObserverRef};
pub use compile::{compile, fingerprint, Chain, Plugins};
pub use credentials::{ConsumerRt, CredentialRt, Credentials, JwtCredRt};
pub use ctx::{now_ms, CredentialRef, Exit, PluginState, RequestCtx, MAX_CHAIN, UNSPECIFIED_IP};
pub use error::{FieldError, PluginError, Seg};
pub use plugins::acl::Config as AclConfig;
pub use plugins::basic_auth::Config as BasicAuthConfig;
pub use plugins::correlation_id::Config as CorrelationIdConfig;
pub use plugins::cors::Config as CorsConfig;
pub use plugins::ip_restriction::Config as IpRestrictionConfig;
pub use plugins::jwt::Config as JwtConfig;
pub use plugins::key_auth::Config as KeyAuthConfig;
pub use plugins::observers::{
    FileLogConfig, HttpLogConfig, OpenTelemetryConfig, PrometheusConfig, PropagationConfig,
    QueueConfig,
};
pub use plugins::rate_limiting::{Config as RateLimitingConfig, RedisConfig};
pub use plugins::request_size::Config as RequestSizeLimitingConfig;
pub use plugins::request_termination::Config as RequestTerminationConfig;
pub use plugins::request_transformer::{
    transform_json_body as transform_request_json_body, Config as RequestTransformerConfig,
};
pub use plugins::response_transformer::{
    transform_json_body as transform_response_json_body, Config as ResponseTransformerConfig,
};
pub use plugins::rl_store::RateLimitStore;
pub use plugins::IMPLEMENTED;
pub use respond::{kong_error, kong_exit, ErrorCtx, ErrorFormat};
