//! request-transformer (`kong/plugins/request-transformer/{schema,access}.lua`, PRIORITY
//! 801): in access, in Kong's order — `replace.uri`, `http_method`, headers (remove, rename,
//! replace, add, append), body, query string (same five). Header and query edits happen
//! here; the new path/method/Host go out through [`PluginState`] fields the proxy applies;
//! a JSON, form-urlencoded or multipart body is transformed by [`transform_body`] once the
//! proxy has buffered it (see [`crate::Plugins::needs_request_body`]).
//!
//! Header names are parsed once per config; literal values are prebuilt header values.

use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::transform::{
    append_value, encode_args, parse_args, split_pair, truthy, valid_header, Tpl,
};
use crate::body::{self, BodyKind, Part};
use crate::ctx::{PluginState, RequestCtx};
use crate::error::FieldError;
use crate::schema::{Ty, F};

fn header_ok(v: &Value) -> Result<(), String> {
    let (n, _) = split_pair(v.as_str().unwrap_or(""));
    if valid_header(n) {
        Ok(())
    } else {
        Err(format!("'{n}' is not a valid header"))
    }
}
fn colon(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or("");
    match s.find(':') {
        Some(i) if i > 0 => Ok(()),
        _ => Err(format!("invalid value: {s}")),
    }
}
fn colon_header(v: &Value) -> Result<(), String> {
    colon(v)?;
    header_ok(v)
}
fn colon_rename_header(v: &Value) -> Result<(), String> {
    colon(v)?;
    header_ok(v)?;
    let (_, val) = split_pair(v.as_str().unwrap_or(""));
    if valid_header(val) {
        Ok(())
    } else {
        Err(format!("'{val}' is not a valid header"))
    }
}
fn has_value(v: &Value) -> Result<(), String> {
    let (n, val) = split_pair(v.as_str().unwrap_or(""));
    if val.is_empty() {
        Err(format!("key '{n}' has no value"))
    } else {
        Ok(())
    }
}
fn http_method(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or("");
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!("invalid value: {s}"))
    }
}

fn empty() -> Value {
    json!([])
}

static REMOVE: &[F] = &[
    F::req("body", Ty::StrArray, empty),
    F::req("headers", Ty::StrArray, empty).check(header_ok),
    F::req("querystring", Ty::StrArray, empty),
];
static RENAME: &[F] = &[
    F::req("body", Ty::StrArray, empty).check(has_value),
    F::req("headers", Ty::StrArray, empty).check(colon_rename_header),
    F::req("querystring", Ty::StrArray, empty).check(has_value),
];
static REPLACE: &[F] = &[
    F::req("body", Ty::StrArray, empty).check(has_value),
    F::req("headers", Ty::StrArray, empty).check(colon_header),
    F::req("querystring", Ty::StrArray, empty).check(has_value),
    F::opt("uri", Ty::Str),
];
static ADD: &[F] = &[
    F::req("body", Ty::StrArray, empty).check(has_value),
    F::req("headers", Ty::StrArray, empty).check(colon_header),
    F::req("querystring", Ty::StrArray, empty).check(has_value),
];

pub(crate) static FIELDS: &[F] = &[
    F::opt("http_method", Ty::Str).check(http_method),
    F::opt("remove", Ty::Record(REMOVE)).required(),
    F::opt("rename", Ty::Record(RENAME)).required(),
    F::opt("replace", Ty::Record(REPLACE)).required(),
    F::opt("add", Ty::Record(ADD)).required(),
    F::opt("append", Ty::Record(ADD)).required(),
];

/// `remove`/`rename`/`add`/`append` of request-transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parts {
    pub body: Vec<String>,
    pub headers: Vec<String>,
    pub querystring: Vec<String>,
}

/// `replace` of request-transformer (adds `uri`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceParts {
    pub body: Vec<String>,
    pub headers: Vec<String>,
    pub querystring: Vec<String>,
    pub uri: Option<String>,
}

/// `config` of request-transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub http_method: Option<String>,
    pub remove: Parts,
    pub rename: Parts,
    pub replace: ReplaceParts,
    pub add: Parts,
    pub append: Parts,
}

impl Config {
    fn has_body_ops(&self) -> bool {
        !(self.remove.body.is_empty()
            && self.rename.body.is_empty()
            && self.replace.body.is_empty()
            && self.add.body.is_empty()
            && self.append.body.is_empty())
    }
}

pub(crate) fn check(_c: &Config, _errs: &mut Vec<FieldError>) {}

type Named = Vec<(HeaderName, Tpl)>;

pub(crate) struct Compiled {
    pub config: Config,
    remove_h: Vec<HeaderName>,
    rename_h: Vec<(HeaderName, HeaderName)>,
    replace_h: Named,
    add_h: Named,
    append_h: Named,
    replace_q: Vec<(String, Tpl)>,
    add_q: Vec<(String, Tpl)>,
    append_q: Vec<(String, Tpl)>,
    rename_q: Vec<(String, String)>,
    has_query_ops: bool,
    uri: Option<Tpl>,
    method: Option<Method>,
}

fn hname(s: &str) -> Option<HeaderName> {
    HeaderName::from_bytes(s.to_ascii_lowercase().as_bytes()).ok()
}

fn named(list: &[String]) -> Named {
    list.iter()
        .filter_map(|e| {
            let (n, v) = split_pair(e);
            Some((hname(n)?, Tpl::parse(v)))
        })
        .collect()
}

fn qnamed(list: &[String]) -> Vec<(String, Tpl)> {
    list.iter()
        .map(|e| {
            let (n, v) = split_pair(e);
            (n.to_string(), Tpl::parse(v))
        })
        .collect()
}

pub(crate) fn compile(config: Config) -> Compiled {
    let c = &config;
    Compiled {
        remove_h: c.remove.headers.iter().filter_map(|n| hname(n)).collect(),
        rename_h: c
            .rename
            .headers
            .iter()
            .filter_map(|e| {
                let (o, n) = split_pair(e);
                // Same name in another case: Kong's rename is a no-op.
                (!o.eq_ignore_ascii_case(n)).then_some((hname(o)?, hname(n)?))
            })
            .collect(),
        replace_h: named(&c.replace.headers),
        add_h: named(&c.add.headers),
        append_h: named(&c.append.headers),
        replace_q: qnamed(&c.replace.querystring),
        add_q: qnamed(&c.add.querystring),
        append_q: qnamed(&c.append.querystring),
        rename_q: c
            .rename
            .querystring
            .iter()
            .map(|e| {
                let (o, n) = split_pair(e);
                (o.to_string(), n.to_string())
            })
            .collect(),
        has_query_ops: !(c.remove.querystring.is_empty()
            && c.rename.querystring.is_empty()
            && c.replace.querystring.is_empty()
            && c.add.querystring.is_empty()
            && c.append.querystring.is_empty()),
        uri: c.replace.uri.as_deref().map(Tpl::parse),
        method: c
            .http_method
            .as_deref()
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok()),
        config,
    }
}

fn headers(c: &Compiled, st: &mut PluginState, h: &mut HeaderMap, q: &str) {
    for n in &c.remove_h {
        if *n != HOST {
            h.remove(n);
        }
    }
    for (old, new) in &c.rename_h {
        if *old == HOST || !h.contains_key(old) {
            continue;
        }
        let vals: Vec<HeaderValue> = h.get_all(old).iter().cloned().collect();
        h.remove(old);
        h.remove(new);
        for v in vals {
            h.append(new.clone(), v);
        }
    }
    for (n, t) in &c.replace_h {
        if *n == HOST {
            let v = t.header(Some(h), q);
            st.host_rewrite = Some(v.clone());
            h.insert(HOST, v);
        } else if h.contains_key(n) {
            let v = t.header(Some(h), q);
            h.insert(n.clone(), v);
        }
    }
    for (n, t) in &c.add_h {
        if *n != HOST && !h.contains_key(n) {
            let v = t.header(Some(h), q);
            h.insert(n.clone(), v);
        }
    }
    for (n, t) in &c.append_h {
        let v = t.header(Some(h), q);
        if *n == HOST {
            st.host_rewrite = Some(v.clone());
            h.insert(HOST, v);
        } else {
            h.append(n.clone(), v);
        }
    }
}

fn querystring(c: &Compiled, st: &mut PluginState, h: &HeaderMap, original: &str) {
    let q = st.query_rewrite.as_deref().unwrap_or(original);
    let mut args = parse_args(q);
    let pos = |args: &super::transform::Args, k: &str| args.iter().position(|(n, _)| n == k);
    for k in &c.config.remove.querystring {
        if let Some(i) = pos(&args, k) {
            args.remove(i);
        }
    }
    for (old, new) in &c.rename_q {
        if old == new {
            continue;
        }
        if let Some(i) = pos(&args, old) {
            let (_, v) = args.remove(i);
            match pos(&args, new) {
                Some(j) => args[j].1 = v,
                None => args.push((new.clone(), v)),
            }
        }
    }
    for (k, t) in &c.replace_q {
        if let Some(i) = pos(&args, k) {
            args[i].1 = vec![Some(t.render(Some(h), q).into_owned())];
        }
    }
    for (k, t) in &c.add_q {
        if pos(&args, k).is_none() {
            args.push((k.clone(), vec![Some(t.render(Some(h), q).into_owned())]));
        }
    }
    for (k, t) in &c.append_q {
        let v = Some(t.render(Some(h), q).into_owned());
        match pos(&args, k) {
            Some(i) => args[i].1.push(v),
            None => args.push((k.clone(), vec![v])),
        }
    }
    st.query_rewrite = Some(encode_args(args));
}

pub(crate) fn access(c: &Compiled, st: &mut PluginState, req: &mut RequestCtx<'_>) {
    if let Some(t) = &c.uri {
        let p = t.render(Some(req.headers), req.query);
        if !p.is_empty() {
            st.path_rewrite = Some(p.into_owned());
        }
    }
    if let Some(m) = &c.method {
        st.method_rewrite = Some(m.clone());
    }
    let q = req.query;
    headers(c, st, req.headers, q);
    if c.config.has_body_ops() {
        if let Some(kind) = BodyKind::of(req.headers.get(CONTENT_TYPE)) {
            st.request_body_transform = Some(kind);
        }
    }
    if c.has_query_ops {
        querystring(c, st, req.headers, q);
    }
}

/// Kong's `transform_json_body` for request bodies: `None` when nothing changed or the
/// body is not JSON (then it is sent as is). Values are the configured strings (templates
/// render with no request in scope).
pub fn transform_json_body(c: &Config, body: &[u8]) -> Option<Vec<u8>> {
    let nonempty = !body.is_empty();
    let mut params: Map<String, Value> = if nonempty {
        match serde_json::from_slice::<Value>(body).ok()? {
            Value::Object(m) => m,
            _ => return None,
        }
    } else {
        Map::new()
    };
    let mut changed = false;
    let val = |s: &str| -> Value {
        let t = Tpl::parse(s);
        Value::String(t.render(None, "").into_owned())
    };
    if nonempty {
        for k in &c.remove.body {
            params.shift_remove(k.as_str());
            changed = true;
        }
        for e in &c.rename.body {
            let (o, n) = split_pair(e);
            if o != n {
                if let Some(v) = params.shift_remove(o) {
                    params.insert(n.to_string(), v);
                    changed = true;
                }
            }
        }
        for e in &c.replace.body {
            let (k, v) = split_pair(e);
            if truthy(params.get(k)) {
                params.insert(k.to_string(), val(v));
                changed = true;
            }
        }
    }
    for e in &c.add.body {
        let (k, v) = split_pair(e);
        if !truthy(params.get(k)) {
            params.insert(k.to_string(), val(v));
            changed = true;
        }
    }
    for e in &c.append.body {
        let (k, v) = split_pair(e);
        let old = params.get_mut(k).map(Value::take);
        params.insert(k.to_string(), append_value(old, val(v)));
        changed = true;
    }
    if !changed {
        return None;
    }
    serde_json::to_vec(&Value::Object(params)).ok()
}

/// Kong's `transform_body`: by body type; `None` when nothing changed (or the body cannot be
/// parsed), so the original is sent.
pub(crate) fn transform_body(c: &Config, kind: &BodyKind, body: &[u8]) -> Option<Vec<u8>> {
    match kind {
        BodyKind::Json => transform_json_body(c, body),
        BodyKind::Form => transform_form_body(c, body),
        BodyKind::Multipart(ct) => transform_multipart_body(c, body::boundary(ct)?, body),
    }
}

fn rendered(v: &str) -> String {
    Tpl::parse(v).render(None, "").into_owned()
}

/// `transform_url_encoded_body`: remove, rename, replace (only with a non-empty body), add,
/// append; re-encoded like `ngx.encode_args` (keys sorted here for a stable order).
fn transform_form_body(c: &Config, body: &[u8]) -> Option<Vec<u8>> {
    let mut args = parse_args(std::str::from_utf8(body).ok()?);
    let pos = |args: &super::transform::Args, k: &str| args.iter().position(|(n, _)| n == k);
    let mut changed = false;
    if !body.is_empty() {
        for k in &c.remove.body {
            if let Some(i) = pos(&args, k) {
                args.remove(i);
                changed = true;
            }
        }
        for e in &c.rename.body {
            let (o, n) = split_pair(e);
            if o == n {
                continue;
            }
            if let Some(i) = pos(&args, o) {
                let (_, v) = args.remove(i);
                match pos(&args, n) {
                    Some(j) => args[j].1 = v,
                    None => args.push((n.to_string(), v)),
                }
                changed = true;
            }
        }
        for e in &c.replace.body {
            let (k, v) = split_pair(e);
            if let Some(i) = pos(&args, k) {
                args[i].1 = vec![Some(rendered(v))];
                changed = true;
            }
        }
    }
    for e in &c.add.body {
        let (k, v) = split_pair(e);
        if pos(&args, k).is_none() {
            args.push((k.to_string(), vec![Some(rendered(v))]));
            changed = true;
        }
    }
    for e in &c.append.body {
        let (k, v) = split_pair(e);
        match pos(&args, k) {
            Some(i) => args[i].1.push(Some(rendered(v))),
            None => args.push((k.to_string(), vec![Some(rendered(v))])),
        }
        changed = true;
    }
    changed.then(|| encode_args(args).into_bytes())
}

/// `transform_multipart_body`: rename, remove, replace (only with a non-empty body), add.
/// Kong has no `append` for multipart bodies. Untouched parts are kept byte for byte.
fn transform_multipart_body(c: &Config, boundary: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut parts = if body.is_empty() {
        Vec::new()
    } else {
        body::parse_multipart(body, boundary)?
    };
    let has = |parts: &[Part], k: &str| parts.iter().any(|p| p.name.as_deref() == Some(k));
    let mut changed = false;
    if !body.is_empty() {
        for e in &c.rename.body {
            let (o, n) = split_pair(e);
            if o == n {
                continue;
            }
            if let Some(p) = parts.iter().find(|p| p.name.as_deref() == Some(o)) {
                let v = p.value.clone();
                parts.retain(|p| p.name.as_deref() != Some(n) && p.name.as_deref() != Some(o));
                parts.push(Part::simple(n, &v));
                changed = true;
            }
        }
        for k in &c.remove.body {
            if has(&parts, k) {
                parts.retain(|p| p.name.as_deref() != Some(k.as_str()));
                changed = true;
            }
        }
        for e in &c.replace.body {
            let (k, v) = split_pair(e);
            if has(&parts, k) {
                parts.retain(|p| p.name.as_deref() != Some(k));
                parts.push(Part::simple(k, rendered(v).as_bytes()));
                changed = true;
            }
        }
    }
    for e in &c.add.body {
        let (k, v) = split_pair(e);
        if !has(&parts, k) {
            parts.push(Part::simple(k, rendered(v).as_bytes()));
            changed = true;
        }
    }
    changed.then(|| body::write_multipart(&parts, boundary))
}
