//! Logging plugins kept off the proxy hot path: http-log, file-log and an access-log formatter.
//!
//! Why this shape: Kong Cloud measured 15 % RPS lost to an empty log handler and 25 % to a real
//! one, because every request builds the whole `kong.log.serialize()` table on the worker. Here the
//! proxy thread only fills a compact [`LogRecord`] (its text fields copied into one buffer, entity
//! JSON reached through one `Arc` of the snapshot) and `try_send`s it into a bounded per-plugin-instance
//! [`Queue`]. A shipper thread per queue batches records with Kong's queue semantics
//! (`kong/tools/queue.lua`), serialises them to Kong's log serializer JSON ([`json`]) and ships
//! them ([`HttpLogSink`], [`FileSink`]). Memory is bounded by `max_entries`/`max_bytes`; a full
//! queue drops the new record and counts it ([`QueueStats::dropped`], which the lead registers
//! with `gatehouse-metrics`).

#![forbid(unsafe_code)]

pub mod access;
mod file;
mod http;
pub mod json;
pub mod proto;
mod queue;
mod record;

pub use file::{FileSink, ReopenHandle};
pub use http::{HttpLogConfig, HttpLogSink};
pub use queue::{Entry, Queue, QueueConfig, QueueSender, QueueStats, Sink};
pub use record::{
    header_map, Entities, HeaderMap, Headers, LogRecord, RequestSource, TlsInfo, Try,
};
