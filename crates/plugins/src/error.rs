//! Validation errors, one per bad field, in a form the config layer can fold into Kong's
//! `fields` tree: entity `plugins`, the plugin's index, then the path inside the entity
//! (`config`, `config.second`, `config.key_names[0]`, `@entity`, `name`, `consumer`, …).

use std::fmt;

use uuid::Uuid;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    /// 0-based array index (Kong's JSON errors render arrays as arrays, so this is the
    /// position in that array).
    Index(usize),
}

/// One bad field, as Kong would report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Index of the plugin in `Config::plugins`.
    pub plugin_index: usize,
    pub plugin_id: Uuid,
    pub plugin_name: String,
    /// Path inside the plugin entity; `[Key("@entity")]` for entity checks.
    pub path: Vec<Seg>,
    pub message: String,
}

impl FieldError {
    /// An error at `path` with the plugin fields filled in later by [`crate::compile`].
    pub(crate) fn at(path: &[Seg], message: &str) -> FieldError {
        FieldError {
            plugin_index: 0,
            plugin_id: Uuid::nil(),
            plugin_name: String::new(),
            path: path.to_vec(),
            message: message.to_string(),
        }
    }

    pub(crate) fn key(path: &str, message: impl Into<String>) -> FieldError {
        FieldError {
            plugin_index: 0,
            plugin_id: Uuid::nil(),
            plugin_name: String::new(),
            path: path.split('.').map(|k| Seg::Key(k.to_string())).collect(),
            message: message.into(),
        }
    }

    /// `config.key_names[0]`-style rendering of [`FieldError::path`].
    pub fn path_string(&self) -> String {
        let mut s = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }
}

/// Everything wrong with the plugins of one configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    pub errors: Vec<FieldError>,
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(
                f,
                "plugins[{}] ({} {}): {}: {}",
                e.plugin_index,
                e.plugin_name,
                e.plugin_id,
                e.path_string(),
                e.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for PluginError {}
