//! Declarative config: parse (JSON first, then YAML), migrate, validate, fill defaults, derive ids.
//!
//! The pipeline follows Kong's `declarative_config.lua`: migrate 1.1/2.1 paths, validate every
//! record against its schema (all errors collected into one tree), then derive ids, check
//! uniqueness and resolve references. Any error leaves nothing half-built.

mod entities;
mod migrate;
mod rec;
mod resolve;
mod routes;
mod upstreams;

use std::time::{SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};

use crate::doc::{self, Value};

use crate::error::{ConfigError, ErrKey, ErrTree};
use crate::model::Config;
use crate::settings::RouterFlavor;

pub use migrate::{migrate_path, normalize_path};
pub use resolve::{entity_id, hash_password};

/// What validation depends on outside the file itself.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Names of the enabled plugins (the `plugins` setting, `bundled` expanded).
    pub plugins: Vec<String>,
    pub router_flavor: RouterFlavor,
}

/// Kong's config hash: md5 hex of the raw text.
pub fn hash_text(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses text (JSON or YAML) into a validated [`Config`].
pub fn parse(text: &str, opts: &ParseOptions) -> Result<Config, ConfigError> {
    let mut doc = decode(text)?;
    let config = parse_doc(&mut doc, opts);
    drop(doc);
    config
}

/// Decodes text as JSON (strings borrowed from `text`), else as YAML.
pub fn decode(text: &str) -> Result<Value<'_>, ConfigError> {
    match doc::from_json_str(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => match serde_yaml_ng::from_str::<serde_json::Value>(text) {
            Ok(v @ serde_json::Value::Object(_)) => Ok(Value::from_json(v)),
            Ok(_) => Err(ConfigError::Parse("expected an object".into())),
            Err(e) => Err(ConfigError::Parse(e.to_string())),
        },
    }
}

/// Entity collections Kong knows that Gatehouse accepts but does not use yet.
const IGNORED_ENTITIES: &[&str] = &["vaults", "key_sets", "keys", "filter_chains"];

const ENTITY_ORDER: &[&str] = &[
    "certificates",
    "ca_certificates",
    "snis",
    "consumers",
    "upstreams",
    "targets",
    "services",
    "routes",
    "plugins",
    "keyauth_credentials",
    "basicauth_credentials",
    "acls",
    "jwt_secrets",
];

/// Validates an already-parsed document (e.g. the `config` table of a `POST /config`).
pub fn parse_value(doc: serde_json::Value, opts: &ParseOptions) -> Result<Config, ConfigError> {
    parse_doc(&mut Value::from_json(doc), opts)
}

/// Validates a decoded document (see [`decode`]), migrating it in place. Nothing of the
/// document is kept: the caller may free it as soon as this returns.
pub fn parse_doc(doc: &mut Value<'_>, opts: &ParseOptions) -> Result<Config, ConfigError> {
    if doc.is_object() {
        migrate::migrate(doc);
    }
    let doc: &Value = doc;
    let Some(obj) = doc.as_object() else {
        return Err(ConfigError::Parse("expected an object".into()));
    };
    let mut errs = ErrTree::default();
    match obj.get("_format_version") {
        None | Some(Value::Null) => {
            errs.set(ErrKey::name("_format_version"), "required field missing")
        }
        Some(Value::String(v)) if v == "3.0" => {}
        Some(Value::String(_)) => errs.set(
            ErrKey::name("_format_version"),
            "expected one of: 1.1, 2.1, 3.0",
        ),
        Some(_) => errs.set(ErrKey::name("_format_version"), "expected a string"),
    }
    let transform = match obj.get("_transform") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errs.set(ErrKey::name("_transform"), "expected a boolean");
            true
        }
    };
    if obj
        .get("_comment")
        .is_some_and(|v| !v.is_null() && !v.is_string())
    {
        errs.set(ErrKey::name("_comment"), "expected a string");
    }
    if obj
        .get("_ignore")
        .is_some_and(|v| !v.is_null() && !v.is_array())
    {
        errs.set(ErrKey::name("_ignore"), "expected an array");
    }
    for (k, v) in obj.iter() {
        let known = k == "_format_version"
            || matches!(k, "_transform" | "_comment" | "_ignore")
            || entities::known_entity(k, &opts.plugins);
        if IGNORED_ENTITIES.contains(&k) {
            if !v.is_null() && !v.is_array() {
                errs.set(ErrKey::Name(k.to_string()), "expected an array");
            }
            continue;
        }
        if !known {
            errs.set(ErrKey::Name(k.to_string()), "unknown field");
        }
    }

    let now_d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut ctx = entities::Ctx {
        plugins: &opts.plugins,
        known: entities::ALL_ENTITIES
            .iter()
            .copied()
            .filter(|e| entities::known_entity(e, &opts.plugins))
            .collect(),
        flavor: opts.router_flavor,
        now: now_d.as_secs() as i64,
        now_ms: (now_d.as_millis() as f64) / 1000.0,
        items: Vec::new(),
    };
    for entity in ENTITY_ORDER {
        if !entities::known_entity(entity, &opts.plugins) {
            continue;
        }
        if let Some(v) = obj.get(entity).filter(|v| !v.is_null()) {
            ctx.walk(entity, v, None, &mut errs);
        }
    }
    if !errs.is_empty() {
        return Err(ConfigError::from_tree(&errs, &doc.to_json()));
    }
    let resolved = resolve::resolve(ctx.items, transform)
        .map_err(|t| ConfigError::from_tree(&t, &doc.to_json()))?;
    Ok(resolved.build())
}
