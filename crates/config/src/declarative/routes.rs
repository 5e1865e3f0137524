//! Route validation: Kong's `routes.lua` fields plus the per-protocol subschemas
//! (`routes_subschemas.lua`) that decide which match attributes a route must or must not set.

use std::collections::BTreeMap;

use crate::doc::Value;
use uuid::Uuid;

use super::migrate::normalize_path;
use super::rec::{self, Rec, PROTOCOLS};
use crate::error::{ErrKey, ErrTree};
use crate::model::{CidrPort, PathHandling, Protocol, Route};
use crate::settings::RouterFlavor;

fn validate_method(m: &str) -> Result<(), String> {
    if m.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!("invalid value: {m}"))
    }
}

fn validate_route_host(h: &str) -> Result<(), String> {
    if h.matches('*').count() > 1 {
        return Err("invalid wildcard: must have at most one wildcard".into());
    }
    if h.contains('*') && !(h.starts_with("*.") || h.ends_with(".*")) {
        return Err("invalid wildcard: must be placed at leftmost or rightmost label".into());
    }
    rec::validate_host_with_optional_port(&h.replace('*', "abc"))
}

fn regex_error(text: String) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or(text)
}

/// What `regex::Regex::new` would refuse, without building the matcher (the router compiles
/// it later): the parse (syntax and translation errors have the same text as `regex::Error`),
/// then the forward and reverse Thompson NFAs under regex's default 10 MiB size limit, the step
/// that fails with "Compiled regex exceeds size limit".
fn check_regex(re: &str) -> Result<(), String> {
    use regex_automata::nfa::thompson;
    const NFA_SIZE_LIMIT: usize = 10 * (1 << 20);
    let hir = regex_syntax::Parser::new()
        .parse(re)
        .map_err(|e| e.to_string())?;
    for reverse in [false, true] {
        let config = thompson::Config::new()
            .nfa_size_limit(Some(NFA_SIZE_LIMIT))
            .shrink(false)
            .reverse(reverse)
            .which_captures(if reverse {
                thompson::WhichCaptures::None
            } else {
                thompson::WhichCaptures::All
            });
        if let Err(e) = thompson::Compiler::new()
            .configure(config)
            .build_from_hir(&hir)
        {
            return Err(match e.size_limit() {
                Some(limit) => format!("Compiled regex exceeds size limit of {limit} bytes."),
                None => e.to_string(),
            });
        }
    }
    Ok(())
}

fn validate_route_path(p: &str) -> Result<(), String> {
    if !(p.starts_with('/') || p.starts_with("~/")) {
        return Err("should start with: / (fixed path) or ~/ (regex path)".into());
    }
    if p.contains("//") {
        return Err("must not have empty segments".into());
    }
    if let Err((e, true)) = rec::validate_path_chars(p.strip_prefix('~').unwrap_or(p)) {
        return Err(e);
    }
    match p.strip_prefix('~') {
        None => {
            let n = normalize_path(p);
            if n != p {
                return Err(format!("non-normalized path, consider use '{n}' instead"));
            }
            Ok(())
        }
        Some(re) => check_regex(re)
            .map_err(|e| format!("invalid regex: '{re}' (PCRE returned: {})", regex_error(e))),
    }
}

fn validate_header_name(n: &str) -> Result<(), String> {
    if n.eq_ignore_ascii_case("host") {
        return Err(
            "cannot contain 'host' header, which must be specified in the 'hosts' attribute".into(),
        );
    }
    if n.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(format!(
            "bad header name '{n}', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
        ))
    }
}

fn headers(r: &mut Rec) -> Option<BTreeMap<String, Vec<String>>> {
    let v = r.raw("headers")?;
    let Some(map) = v.as_object() else {
        if matches!(v, Value::Array(a) if a.is_empty()) {
            return Some(BTreeMap::new());
        }
        r.err("headers", rec::type_name("map"));
        return None;
    };
    let mut out = BTreeMap::new();
    let mut sub = ErrTree::default();
    for (k, vals) in map.iter() {
        if let Err(e) = validate_header_name(k) {
            r.err("headers", e);
            return None;
        }
        let Some(arr) = vals.as_array() else {
            sub.set(ErrKey::Name(k.to_string()), rec::type_name("array"));
            continue;
        };
        let mut list = Vec::new();
        for (i, x) in arr.iter().enumerate() {
            match x.as_str() {
                Some(s) => list.push(s.to_string()),
                None => sub
                    .child(ErrKey::Name(k.to_string()))
                    .set(ErrKey::Idx(i + 1), rec::type_name("string")),
            }
        }
        out.insert(k.to_string(), list);
    }
    if !sub.is_empty() {
        r.errs.put(ErrKey::name("headers"), sub);
        return None;
    }
    Some(out)
}

fn cidr_ports(r: &mut Rec, field: &'static str) -> Option<Vec<CidrPort>> {
    let v = r.raw(field)?;
    let Some(arr) = v.as_array() else {
        r.err(field, rec::type_name("set"));
        return None;
    };
    let mut out = Vec::new();
    let mut sub = ErrTree::default();
    for (i, el) in arr.iter().enumerate() {
        let key = ErrKey::Idx(i + 1);
        let Some(obj) = el.as_object() else {
            sub.set(key, rec::type_name("record"));
            continue;
        };
        let mut er = Rec::new(obj);
        let ip = er.checked("ip", false, rec::validate_ip_or_cidr);
        let port = er.int("port", 0, 65535).map(|p| p as u16);
        if !er.present("ip") && !er.present("port") {
            er.entity_err("at least one of these fields must be non-empty: 'ip', 'port'");
        }
        let e = er.finish();
        if e.is_empty() {
            out.push(CidrPort { ip, port });
        } else {
            sub.put(key, e);
        }
    }
    if sub.is_empty() {
        Some(out)
    } else {
        r.errs.put(ErrKey::name(field), sub);
        None
    }
}

fn nonempty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

fn quoted(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| format!("'{f}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn route(r: &mut Rec, now: i64, flavor: RouterFlavor) -> Option<Route> {
    let expr = flavor == RouterFlavor::Expressions;
    let name = r.checked("name", false, rec::validate_utf8_name);
    let protocols: Option<Vec<Protocol>> =
        match r.strings("protocols", "set", |s| rec::one_of(s, PROTOCOLS)) {
            None if r.has_err("protocols") => None,
            None => Some(vec![Protocol::Http, Protocol::Https]),
            Some(v) if v.is_empty() => {
                r.err("protocols", "length must be at least 1");
                None
            }
            Some(v) => Some(v.iter().filter_map(|p| Protocol::parse(p)).collect()),
        };
    if let Some(ps) = &protocols {
        let group = |p: &Protocol| match p {
            Protocol::Http | Protocol::Https => 0,
            Protocol::Tcp | Protocol::Tls | Protocol::Udp => 1,
            Protocol::TlsPassthrough => 2,
            Protocol::Grpc | Protocol::Grpcs => 3,
        };
        if ps.iter().any(|p| group(p) != group(&ps[0])) {
            r.err(
                "protocols",
                "these sets are mutually exclusive: ('http', 'https'), ('tcp', 'tls', 'udp'), ('tls_passthrough'), ('grpc', 'grpcs')",
            );
        }
    }
    let https_redirect_status_code = match r.int("https_redirect_status_code", i64::MIN, i64::MAX) {
        None => 426,
        Some(c) if [426, 301, 302, 307, 308].contains(&c) => c as u16,
        Some(_) => {
            r.err(
                "https_redirect_status_code",
                "expected one of: 426, 301, 302, 307, 308",
            );
            426
        }
    };
    let strip_path_given = r.boolean("strip_path");
    let preserve_host = r.boolean("preserve_host").unwrap_or(false);
    let request_buffering = r.boolean("request_buffering").unwrap_or(true);
    let response_buffering = r.boolean("response_buffering").unwrap_or(true);
    let tags = r.tags();
    let snis = r.strings("snis", "set", rec::validate_wildcard_host);
    let sources = cidr_ports(r, "sources");
    let destinations = cidr_ports(r, "destinations");
    let methods = r.strings("methods", "set", validate_method);
    let hosts = r.strings("hosts", "array", validate_route_host);
    let paths = r.strings("paths", "array", validate_route_path);
    let headers = headers(r);
    let regex_priority = r.int("regex_priority", i64::MIN, i64::MAX).unwrap_or(0);
    let path_handling = match r.one_of("path_handling", &["v0", "v1"]).as_deref() {
        Some("v1") => PathHandling::V1,
        _ => PathHandling::V0,
    };
    let (expression, priority) = if expr {
        (
            r.string("expression"),
            Some(r.int("priority", 0, (1i64 << 46) - 1).unwrap_or(0) as u64),
        )
    } else {
        (None, None)
    };
    let created_at = r.timestamp("created_at", now);
    let updated_at = r.timestamp("updated_at", now);
    let protocols = protocols?;

    let has = |f: &str| -> bool {
        match f {
            "methods" => nonempty(&methods),
            "hosts" => nonempty(&hosts),
            "paths" => nonempty(&paths),
            "snis" => nonempty(&snis),
            "sources" => nonempty(&sources),
            "destinations" => nonempty(&destinations),
            "headers" => headers.as_ref().is_some_and(|h| !h.is_empty()),
            "expression" => expression.is_some(),
            _ => false,
        }
    };
    let tls_family = [
        Protocol::Grpcs,
        Protocol::Https,
        Protocol::Tls,
        Protocol::TlsPassthrough,
    ];
    if has("snis") && !protocols.iter().any(|p| tls_family.contains(p)) {
        r.err("snis", "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'");
        r.entity_err("failed conditional validation given value of field 'protocols'");
    }
    let contains = |p: Protocol| protocols.contains(&p);
    let must_be_null = |r: &mut Rec, fields: &[&str], msg: &str| {
        for f in fields {
            if r.present(f) && !r.has_err(f) {
                r.err(f, msg.replace("{}", f));
            }
        }
    };
    let at_least = |r: &mut Rec, fields: Vec<&str>, when: &str| {
        if fields.iter().any(|f| has(f)) {
            return;
        }
        if fields.iter().any(|f| r.has_err(f)) {
            return;
        }
        let msg = if fields == ["snis"] || fields == ["snis", "expression"] {
            format!("must set snis when 'protocols' is {when}")
        } else {
            format!(
                "must set one of {} when 'protocols' is {when}",
                quoted(&fields)
            )
        };
        r.entity_err(msg);
    };
    let with_expr = |mut v: Vec<&'static str>| {
        if expr {
            v.push("expression");
        }
        v
    };
    let strip_path;
    match protocols[0] {
        Protocol::Http | Protocol::Https => {
            strip_path = strip_path_given.unwrap_or(true);
            if !expr {
                must_be_null(
                    r,
                    &["sources", "destinations"],
                    "cannot set '{}' when 'protocols' is 'http' or 'https'",
                );
            }
            if contains(Protocol::Https) {
                at_least(
                    r,
                    with_expr(vec!["methods", "hosts", "headers", "paths", "snis"]),
                    "'https'",
                );
            } else {
                at_least(
                    r,
                    with_expr(vec!["methods", "hosts", "headers", "paths"]),
                    "'http'",
                );
            }
        }
        Protocol::Grpc | Protocol::Grpcs => {
            strip_path = strip_path_given.unwrap_or(false);
            if strip_path {
                r.err(
                    "strip_path",
                    "cannot set 'strip_path' when 'protocols' is 'grpc' or 'grpcs'",
                );
            }
            must_be_null(
                r,
                &["methods"],
                "cannot set 'methods' when 'protocols' is 'grpc' or 'grpcs'",
            );
            if !expr {
                must_be_null(
                    r,
                    &["sources", "destinations"],
                    "cannot set '{}' when 'protocols' is 'grpc' or 'grpcs'",
                );
            }
            if contains(Protocol::Grpcs) {
                at_least(
                    r,
                    with_expr(vec!["hosts", "headers", "paths", "snis"]),
                    "'grpcs'",
                );
            } else {
                at_least(r, with_expr(vec!["hosts", "headers", "paths"]), "'grpc'");
            }
        }
        _ => {
            strip_path = strip_path_given.unwrap_or(true);
            must_be_null(
                r,
                &["methods", "hosts", "paths", "headers"],
                "cannot set '{}' when 'protocols' is 'tcp', 'tls', 'tls_passthrough' or 'udp'",
            );
            if protocols
                .iter()
                .any(|p| matches!(p, Protocol::Tcp | Protocol::Tls | Protocol::Udp))
            {
                at_least(
                    r,
                    with_expr(vec!["sources", "destinations", "snis"]),
                    "'tcp', 'tls' or 'udp'",
                );
            }
            if contains(Protocol::TlsPassthrough) {
                at_least(r, with_expr(vec!["snis"]), "'tls_passthrough'");
            }
        }
    }
    if expr {
        let others = [
            "snis",
            "sources",
            "destinations",
            "methods",
            "hosts",
            "paths",
            "headers",
        ]
        .iter()
        .any(|f| has(f));
        let prefix = "Router Expression failed validation: ";
        let fields = "'methods', 'hosts', 'paths', 'headers', 'snis', 'sources' or 'destinations'";
        if expression.is_some() && others {
            r.entity_err(format!(
                "{prefix}cannot set 'expression' with {fields} simultaneously"
            ));
        } else if expression.is_some() && regex_priority != 0 {
            r.entity_err(format!(
                "{prefix}cannot set 'regex_priority' with 'expression' simultaneously"
            ));
        } else if others && priority.unwrap_or(0) != 0 {
            r.entity_err(format!(
                "{prefix}cannot set 'priority' with {fields} simultaneously"
            ));
        }
    }
    Some(Route {
        id: Uuid::nil(),
        name,
        protocols,
        methods,
        hosts,
        paths,
        headers,
        snis,
        sources,
        destinations,
        https_redirect_status_code,
        strip_path,
        preserve_host,
        request_buffering,
        response_buffering,
        regex_priority,
        path_handling,
        service: None,
        expression,
        priority,
        tags,
        created_at,
        updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `check_regex` accepts and refuses exactly what `regex::Regex::new` does, with its text.
    #[test]
    fn regex_check_matches_regex_crate() {
        let patterns = [
            r"/movies/(?<id>\d+)",
            r"/svc/item/[0-9]+$",
            r"/a(",
            r"/[a-",
            r"/\p{Foo}",
            r"/(?P<n>a)(?P<n>b)",
            r"/(?-u)\xFF",
            r"/a**",
            r"/a{1000}{1000}",
            r"/\w{100}{100}",
            r"/(?i)ünïcode",
            r"/x{2,1}",
        ];
        for p in patterns {
            let ours = check_regex(p).map_err(regex_error);
            let theirs = regex::Regex::new(p)
                .map(|_| ())
                .map_err(|e| regex_error(e.to_string()));
            assert_eq!(ours, theirs, "{p}");
        }
    }
}
