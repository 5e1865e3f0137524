//! Config errors in Kong's shape.
//!
//! Validation builds an [`ErrTree`] that mirrors the Lua error table Kong produces (1-based
//! integer keys for array positions, string keys for fields and names). From it we render the
//! three things clients see: the `fields` JSON (cjson encodes integer-keyed tables as arrays,
//! padding holes with `null`), the `message` (Penlight's `pretty.write(t, "")`), and the
//! `flattened_errors` list Kong builds when `flatten_errors` is requested.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Map, Value};

const CODE: u64 = 14;
const NAME: &str = "invalid declarative configuration";
const PARSE_PREFIX: &str = "failed parsing declarative configuration";

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

/// A key in the error tree: an array position (1-based, as in Lua) or a name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrKey {
    Idx(usize),
    Name(String),
}

impl ErrKey {
    pub fn name(s: &str) -> ErrKey {
        ErrKey::Name(s.to_string())
    }

    fn as_text(&self) -> String {
        match self {
            ErrKey::Idx(i) => i.to_string(),
            ErrKey::Name(s) => s.clone(),
        }
    }
}

/// Kong's validation error table.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrTree {
    Msg(String),
    List(Vec<String>),
    Node(BTreeMap<ErrKey, ErrTree>),
}

impl Default for ErrTree {
    fn default() -> Self {
        ErrTree::Node(BTreeMap::new())
    }
}

impl ErrTree {
    pub fn is_empty(&self) -> bool {
        matches!(self, ErrTree::Node(m) if m.is_empty())
    }

    /// The subtree at `key`, turning this value (and a message found there) into a node.
    pub fn child(&mut self, key: ErrKey) -> &mut ErrTree {
        if !matches!(self, ErrTree::Node(_)) {
            *self = ErrTree::default();
        }
        match self {
            ErrTree::Node(m) => {
                let slot = m.entry(key).or_default();
                if !matches!(slot, ErrTree::Node(_)) {
                    *slot = ErrTree::default();
                }
                slot
            }
            _ => unreachable!("just made a node"),
        }
    }

    /// Sets a message at `key`, keeping an earlier message there (first error wins, as in Kong).
    pub fn set(&mut self, key: ErrKey, msg: impl Into<String>) {
        if !matches!(self, ErrTree::Node(_)) {
            *self = ErrTree::default();
        }
        if let ErrTree::Node(m) = self {
            m.entry(key).or_insert_with(|| ErrTree::Msg(msg.into()));
        }
    }

    /// Replaces whatever is at `key`.
    pub fn put(&mut self, key: ErrKey, tree: ErrTree) {
        if !matches!(self, ErrTree::Node(_)) {
            *self = ErrTree::default();
        }
        if let ErrTree::Node(m) = self {
            m.insert(key, tree);
        }
    }

    /// Appends a message to the list at `key` (`@entity` checks, reference errors).
    pub fn push(&mut self, key: ErrKey, msg: impl Into<String>) {
        if !matches!(self, ErrTree::Node(_)) {
            *self = ErrTree::default();
        }
        if let ErrTree::Node(m) = self {
            match m.entry(key).or_insert_with(|| ErrTree::List(Vec::new())) {
                ErrTree::List(v) => v.push(msg.into()),
                other => *other = ErrTree::List(vec![msg.into()]),
            }
        }
    }

    pub fn push_entity(&mut self, msg: impl Into<String>) {
        self.push(ErrKey::name("@entity"), msg);
    }

    /// cjson's rendering of the Lua table.
    pub fn to_json(&self) -> Value {
        match self {
            ErrTree::Msg(s) => Value::String(s.clone()),
            ErrTree::List(v) => Value::Array(v.iter().cloned().map(Value::String).collect()),
            ErrTree::Node(m) => {
                let all_idx =
                    !m.is_empty() && m.keys().all(|k| matches!(k, ErrKey::Idx(i) if *i > 0));
                if all_idx {
                    let max = m
                        .keys()
                        .filter_map(|k| match k {
                            ErrKey::Idx(i) => Some(*i),
                            ErrKey::Name(_) => None,
                        })
                        .max()
                        .unwrap_or(0);
                    let mut arr = vec![Value::Null; max];
                    for (k, v) in m {
                        if let ErrKey::Idx(i) = k {
                            arr[*i - 1] = v.to_json();
                        }
                    }
                    Value::Array(arr)
                } else {
                    let mut obj = Map::new();
                    for (k, v) in m {
                        obj.insert(k.as_text(), v.to_json());
                    }
                    Value::Object(obj)
                }
            }
        }
    }

    /// Penlight's `pretty.write(t, "")`: array part first, then sorted names, then other indexes.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.pretty_into(&mut out);
        out
    }

    fn pretty_into(&self, out: &mut String) {
        match self {
            ErrTree::Msg(s) => out.push_str(&lua_quote(s)),
            ErrTree::List(v) => {
                out.push('{');
                let parts: Vec<String> = v.iter().map(|s| lua_quote(s)).collect();
                out.push_str(&parts.join(","));
                out.push('}');
            }
            ErrTree::Node(m) => {
                let mut parts = Vec::new();
                let mut seq = 1;
                while let Some(v) = m.get(&ErrKey::Idx(seq)) {
                    parts.push(v.pretty());
                    seq += 1;
                }
                for (k, v) in m {
                    if let ErrKey::Name(n) = k {
                        let key = if is_lua_ident(n) {
                            n.clone()
                        } else {
                            format!("[{}]", lua_quote(n))
                        };
                        parts.push(format!("{key}={}", v.pretty()));
                    }
                }
                for (k, v) in m {
                    if let ErrKey::Idx(i) = k {
                        if *i >= seq || *i == 0 {
                            parts.push(format!("[{i}]={}", v.pretty()));
                        }
                    }
                }
                out.push('{');
                out.push_str(&parts.join(","));
                out.push('}');
            }
        }
    }
}

fn is_lua_ident(s: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
        "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
    ];
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !KEYWORDS.contains(&s)
}

fn lua_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Child collections Kong lifts out of a parent when flattening, with the child's fk field.
fn children_of(entity: &str) -> &'static [(&'static str, &'static str)] {
    match entity {
        "services" => &[("routes", "service"), ("plugins", "service")],
        "routes" => &[("plugins", "route")],
        "consumers" => &[
            ("plugins", "consumer"),
            ("keyauth_credentials", "consumer"),
            ("basicauth_credentials", "consumer"),
            ("acls", "consumer"),
            ("jwt_secrets", "consumer"),
        ],
        "upstreams" => &[("targets", "upstream")],
        "certificates" => &[("snis", "certificate")],
        _ => &[],
    }
}

fn is_uuid(v: &Value) -> Option<&str> {
    v.as_str()
        .filter(|s| uuid::Uuid::parse_str(s).is_ok() && s.len() == 36)
}

fn join(ns: &str, field: &str) -> String {
    if ns.is_empty() {
        field.to_string()
    } else {
        format!("{ns}.{field}")
    }
}

fn categorize(errs: &ErrTree, ns: &str, out: &mut Vec<Value>) {
    let ErrTree::Node(m) = errs else { return };
    for (k, v) in m {
        let field = k.as_text();
        match (k, v) {
            (ErrKey::Name(n), ErrTree::Msg(s)) if n == "@entity" => {
                out.push(json!({"type": "entity", "message": s}))
            }
            (ErrKey::Name(n), ErrTree::List(l)) if n == "@entity" => {
                for s in l {
                    out.push(json!({"type": "entity", "message": s}));
                }
            }
            (_, ErrTree::Msg(s)) => {
                out.push(json!({"type": "field", "field": join(ns, &field), "message": s}))
            }
            (_, ErrTree::List(l)) => {
                for (i, s) in l.iter().enumerate() {
                    let f = join(&join(ns, &field), &(i + 1).to_string());
                    out.push(json!({"type": "field", "field": f, "message": s}));
                }
            }
            (_, ErrTree::Node(_)) => categorize(v, &join(ns, &field), out),
        }
    }
}

fn add_entity_errors(
    etype: &str,
    mut entity: Map<String, Value>,
    err: &ErrTree,
    out: &mut Vec<Value>,
) {
    let mut err = match err {
        ErrTree::Node(m) if m.is_empty() => return,
        ErrTree::Node(_) => err.clone(),
        other => {
            let mut t = ErrTree::default();
            t.put(ErrKey::name("@entity"), other.clone());
            t
        }
    };
    let pk = entity
        .get("id")
        .and_then(is_uuid)
        .map(|s| json!({ "id": s }));
    for (child, fk) in children_of(etype) {
        let Some(Value::Array(items)) = entity.get(*child).cloned() else {
            continue;
        };
        entity.remove(*child);
        let child_err = match &mut err {
            ErrTree::Node(m) => m.remove(&ErrKey::name(child)),
            _ => None,
        };
        let Some(ErrTree::Node(child_err)) = child_err else {
            continue;
        };
        for (i, item) in items.into_iter().enumerate() {
            let Value::Object(mut item) = item else {
                continue;
            };
            let Some(e) = child_err.get(&ErrKey::Idx(i + 1)) else {
                continue;
            };
            if !item.contains_key(*fk) {
                if let Some(pk) = &pk {
                    item.insert((*fk).to_string(), pk.clone());
                }
            }
            add_entity_errors(child, item, e, out);
        }
    }
    if err.is_empty() {
        return;
    }
    let mut errors = Vec::new();
    categorize(&err, "", &mut errors);
    if errors.is_empty() {
        return;
    }
    let mut rec = Map::new();
    if let Some(n) = entity
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        rec.insert("entity_name".into(), json!(n));
    }
    if let Some(id) = entity.get("id").and_then(is_uuid) {
        rec.insert("entity_id".into(), json!(id));
    }
    if let Some(Value::Array(tags)) = entity.get("tags") {
        if tags.iter().all(Value::is_string) {
            rec.insert("entity_tags".into(), Value::Array(tags.clone()));
        }
    }
    let singular = etype.strip_suffix('s').unwrap_or(etype);
    rec.insert("entity_type".into(), json!(singular));
    rec.insert("entity".into(), Value::Object(entity));
    rec.insert("errors".into(), Value::Array(errors));
    out.push(Value::Object(rec));
}

/// Kong's `flatten_errors(input, err_t)`.
pub fn flatten_errors(input: &Value, tree: &ErrTree) -> Vec<Value> {
    let mut out = Vec::new();
    let ErrTree::Node(sections) = tree else {
        return out;
    };
    for (etype, section) in sections {
        let (ErrKey::Name(etype), ErrTree::Node(items)) = (etype, section) else {
            continue;
        };
        let Some(Value::Array(entities)) = input.get(etype) else {
            continue;
        };
        for (k, e) in items {
            let ErrKey::Idx(i) = k else { continue };
            if let Some(Value::Object(entity)) = entities.get(i.wrapping_sub(1)) {
                add_entity_errors(etype, entity.clone(), e, &mut out);
            }
        }
    }
    out
}

impl ConfigError {
    /// An `Invalid` error from a validation tree and the document it describes.
    pub fn from_tree(tree: &ErrTree, input: &Value) -> ConfigError {
        ConfigError::Invalid {
            message: format!("declarative config is invalid: {}", tree.pretty()),
            fields: tree.to_json(),
            flattened: flatten_errors(input, tree),
        }
    }

    /// Kong's 400 body for `POST /config` (`flatten` = the `flatten_errors` query flag).
    pub fn kong_body(&self, flatten: bool) -> Value {
        let (message, fields, flattened) = match self {
            ConfigError::Parse(reason) => {
                let err = format!("{PARSE_PREFIX}: {reason}");
                let mut t = ErrTree::default();
                t.set(ErrKey::name("error"), err.clone());
                (
                    format!("declarative config is invalid: {}", t.pretty()),
                    json!({ "error": err }),
                    Vec::new(),
                )
            }
            ConfigError::Invalid {
                message,
                fields,
                flattened,
            } => (message.clone(), fields.clone(), flattened.clone()),
        };
        let mut body = json!({
            "code": CODE,
            "name": NAME,
            "message": message,
            "fields": fields,
        });
        if flatten {
            body["flattened_errors"] = Value::Array(flattened);
        }
        body
    }

    /// A readable multi-line report for the CLI: one line per error, naming entity and field.
    pub fn cli_report(&self) -> String {
        match self {
            ConfigError::Parse(reason) => format!("{PARSE_PREFIX}: {reason}\n"),
            ConfigError::Invalid {
                fields, flattened, ..
            } => {
                let mut out = String::from("declarative config is invalid:\n");
                for f in flattened {
                    let etype = f
                        .get("entity_type")
                        .and_then(Value::as_str)
                        .unwrap_or("entity");
                    let who = f
                        .get("entity_name")
                        .and_then(Value::as_str)
                        .map(|n| format!("'{n}'"))
                        .or_else(|| {
                            f.get("entity_id")
                                .and_then(Value::as_str)
                                .map(|s| format!("id {s}"))
                        })
                        .unwrap_or_else(|| "(unnamed)".to_string());
                    for e in f
                        .get("errors")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
                        match e.get("field").and_then(Value::as_str) {
                            Some(field) => {
                                let _ = writeln!(out, "  {etype} {who}: field '{field}': {msg}");
                            }
                            None => {
                                let _ = writeln!(out, "  {etype} {who}: {msg}");
                            }
                        }
                    }
                }
                if let Value::Object(sections) = fields {
                    for (k, v) in sections {
                        report_unflattened(k, v, &mut out);
                    }
                }
                out
            }
        }
    }
}

/// Errors Kong leaves out of `flattened_errors`: top-level fields and name-keyed sections.
fn report_unflattened(key: &str, v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            let _ = writeln!(out, "  {key}: {s}");
        }
        Value::Object(m) => {
            for (name, e) in m {
                if name.parse::<usize>().is_ok() {
                    continue;
                }
                let msgs: Vec<String> = match e {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a
                        .iter()
                        .map(|x| x.as_str().unwrap_or_default().to_string())
                        .collect(),
                    other => vec![other.to_string()],
                };
                for m in msgs {
                    let _ = writeln!(out, "  {key} '{name}': {m}");
                }
            }
        }
        _ => {}
    }
}
