//! The data plane: per-core proxy threads, the immutable [`Snapshot`] they serve from, per-thread
//! upstream connection pools, balancers, and the request path.
//!
//! This is the only crate that touches hyper. Everything heavy (parsing, validation, building the
//! router and balancers) happens in [`Snapshot::build`], which the control side runs off the proxy
//! threads; the proxy threads only ever `load()` the current snapshot.
#![forbid(unsafe_code)]

mod balancer;
mod body;
mod conn;
mod forwarded;
mod grpc;
mod h1;
mod logs;
mod names;
mod observe;
mod otel;
mod pool;
mod proxy_protocol;
mod request;
mod respond;
mod server;
mod snapshot;
mod timer;
pub mod tls;
mod upgrade;

pub use gatehouse_metrics as metrics;
pub use observe::Observability;
pub use server::{Proxy, ProxyOptions};
pub use snapshot::{BuildError, Built, Snapshot, SnapshotCell};

/// Gatehouse version, as reported in `Via`/`Server` headers and by the Admin API.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
