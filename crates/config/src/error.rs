//! Config errors in Kong's shape. STUB: being written.

/// Why a declarative config was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON/YAML, or not a map at the top.
    #[error("failed parsing declarative configuration: {0}")]
    Parse(String),
    /// Schema violations, as Kong's `fields` tree plus a flat list.
    #[error("declarative config is invalid: {message}")]
    Invalid {
        message: String,
        fields: serde_json::Value,
        flattened: Vec<serde_json::Value>,
    },
}
