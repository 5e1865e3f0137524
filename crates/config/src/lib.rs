//! Gatehouse configuration: Kong's declarative format (`kong.yml`, `_format_version` 3.0, with
//! in-memory migration of 1.1 / 2.1) and Kong's settings (`kong.conf` + `KONG_*`).
//!
//! Pure: no file or network I/O. Callers hand in text and environment pairs; this crate returns
//! validated values or errors shaped like Kong's, so the same code serves the CLI, the Admin API
//! and start-up.
#![forbid(unsafe_code)]

pub mod declarative;
pub mod doc;
pub mod error;
pub mod model;
pub mod settings;

pub use declarative::{decode, hash_text, parse, parse_doc, parse_value, ParseOptions};
pub use error::ConfigError;
pub use model::*;
pub use settings::{RouterFlavor, Settings, SettingsError};
