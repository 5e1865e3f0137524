//! Reading one entity record the way Kong's schema validator does: each accessor checks the
//! type and constraints of one field and records Kong's message for it, so entity code reads as
//! a list of fields. Unread keys become "unknown field" at the end.

use crate::doc::{Map, Value};
use uuid::Uuid;

use crate::error::{ErrKey, ErrTree};

pub(crate) struct Rec<'a> {
    pub obj: &'a Map<'a>,
    pub errs: ErrTree,
    /// Keys read so far, by position in `obj` (records have a handful of keys: a linear scan
    /// beats hashing each lookup). Positions past 63 go to `seen_more`.
    seen: u64,
    seen_more: Vec<usize>,
}

/// Keys every record may carry without being read.
const ALWAYS_KNOWN: [&str; 2] = ["_comment", "_ignore"];

pub(crate) fn type_name(kind: &str) -> String {
    match kind {
        "integer" | "array" => format!("expected an {kind}"),
        _ => format!("expected a {kind}"),
    }
}

impl<'a> Rec<'a> {
    pub fn new(obj: &'a Map<'a>) -> Self {
        Rec {
            obj,
            errs: ErrTree::default(),
            seen: 0,
            seen_more: Vec::new(),
        }
    }

    /// Position and value of `field` in the record.
    fn find(&self, field: &str) -> Option<(usize, &'a Value<'a>)> {
        self.obj
            .iter()
            .enumerate()
            .find(|(_, (k, _))| *k == field)
            .map(|(i, (_, v))| (i, v))
    }

    /// Marks `field` as read (known), returning its value (which may be null).
    fn mark(&mut self, field: &str) -> Option<&'a Value<'a>> {
        let (i, v) = self.find(field)?;
        if i < 64 {
            self.seen |= 1 << i;
        } else {
            self.seen_more.push(i);
        }
        Some(v)
    }

    pub fn err(&mut self, field: &str, msg: impl Into<String>) {
        self.errs.set(ErrKey::name(field), msg);
    }

    pub fn entity_err(&mut self, msg: impl Into<String>) {
        self.errs.push_entity(msg);
    }

    pub fn has_err(&self, field: &str) -> bool {
        matches!(&self.errs, ErrTree::Node(m)
            if m.keys().any(|k| matches!(k, ErrKey::Name(n) if n == field)))
    }

    /// The raw value, `None` when absent or null.
    pub fn raw(&mut self, field: &'a str) -> Option<&'a Value<'a>> {
        match self.mark(field) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn present(&self, field: &str) -> bool {
        !matches!(self.find(field), None | Some((_, Value::Null)))
    }

    pub fn string(&mut self, field: &'a str) -> Option<String> {
        let v = self.raw(field)?;
        match v.as_str() {
            None => {
                self.err(field, type_name("string"));
                None
            }
            Some("") => {
                self.err(field, "length must be at least 1");
                None
            }
            Some(s) => Some(s.to_string()),
        }
    }

    pub fn req_string(&mut self, field: &'a str) -> Option<String> {
        if !self.present(field) {
            self.mark(field);
            self.err(field, "required field missing");
            return None;
        }
        self.string(field)
    }

    /// A string checked by `check`, which returns Kong's message on failure.
    pub fn checked(
        &mut self,
        field: &'a str,
        required: bool,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Option<String> {
        let s = if required {
            self.req_string(field)
        } else {
            self.string(field)
        }?;
        match check(&s) {
            Ok(()) => Some(s),
            Err(e) => {
                self.err(field, e);
                None
            }
        }
    }

    pub fn one_of(&mut self, field: &'a str, allowed: &[&str]) -> Option<String> {
        self.checked(field, false, |s| one_of(s, allowed))
    }

    pub fn int(&mut self, field: &'a str, min: i64, max: i64) -> Option<i64> {
        let v = self.raw(field)?;
        match as_int(v) {
            None => {
                self.err(field, type_name("integer"));
                None
            }
            Some(n) if n < min || n > max => {
                self.err(field, format!("value should be between {min} and {max}"));
                None
            }
            Some(n) => Some(n),
        }
    }

    pub fn boolean(&mut self, field: &'a str) -> Option<bool> {
        let v = self.raw(field)?;
        match v.as_bool() {
            None => {
                self.err(field, type_name("boolean"));
                None
            }
            b => b,
        }
    }

    /// An array (or set) of strings, each checked by `check`; element errors sit at `field.i`.
    pub fn strings(
        &mut self,
        field: &'a str,
        kind: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Option<Vec<String>> {
        let v = self.raw(field)?;
        let Some(arr) = v.as_array() else {
            // An empty JSON object decodes the same as an empty array in Lua.
            if matches!(v, Value::Object(m) if m.is_empty()) {
                return Some(Vec::new());
            }
            self.err(field, type_name(kind));
            return None;
        };
        let mut out = Vec::with_capacity(arr.len());
        let mut sub = ErrTree::default();
        for (i, e) in arr.iter().enumerate() {
            match e.as_str() {
                None => sub.set(ErrKey::Idx(i + 1), type_name("string")),
                Some("") => sub.set(ErrKey::Idx(i + 1), "length must be at least 1"),
                Some(s) => match check(s) {
                    Ok(()) => out.push(s.to_string()),
                    Err(m) => sub.set(ErrKey::Idx(i + 1), m),
                },
            }
        }
        if sub.is_empty() {
            if kind == "set" {
                let mut seen = std::collections::HashSet::new();
                out.retain(|s| seen.insert(s.clone()));
            }
            Some(out)
        } else {
            self.errs.put(ErrKey::name(field), sub);
            None
        }
    }

    pub fn tags(&mut self) -> Vec<String> {
        self.strings("tags", "set", validate_tag)
            .unwrap_or_default()
    }

    pub fn uuid(&mut self, field: &'a str) -> Option<Uuid> {
        let s = self.string(field)?;
        match parse_uuid(&s) {
            Some(u) => Some(u),
            None => {
                self.err(field, "expected a valid UUID");
                None
            }
        }
    }

    /// `created_at`/`updated_at`: an integer when given, else the load time.
    pub fn timestamp(&mut self, field: &'a str, now: i64) -> i64 {
        let v = self.raw(field);
        match v.map(as_int) {
            None => now,
            Some(Some(n)) => n,
            Some(None) => {
                self.err(field, type_name("integer"));
                now
            }
        }
    }

    /// Finishes the record: any key nobody read is an unknown field.
    pub fn finish(mut self) -> ErrTree {
        for (i, k) in self.obj.keys().enumerate() {
            let seen = if i < 64 {
                self.seen & (1 << i) != 0
            } else {
                self.seen_more.contains(&i)
            };
            if !seen && !ALWAYS_KNOWN.contains(&k) {
                self.errs.set(ErrKey::Name(k.to_string()), "unknown field");
            }
        }
        self.errs
    }
}

pub(crate) fn as_int(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 9.0e18).then_some(f as i64)
}

pub(crate) fn parse_uuid(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::parse_str(s).ok()
}

pub(crate) fn one_of(s: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&s) {
        Ok(())
    } else {
        Err(format!("expected one of: {}", allowed.join(", ")))
    }
}

pub(crate) const PROTOCOLS: &[&str] = &[
    "grpc",
    "grpcs",
    "http",
    "https",
    "tcp",
    "tls",
    "tls_passthrough",
    "udp",
];

pub(crate) fn validate_tag(tag: &str) -> Result<(), String> {
    let ok = tag
        .bytes()
        .all(|b| b == b' ' || (33..=126).contains(&b) && b != b',' && b != b'/' || b >= 128);
    if ok {
        Ok(())
    } else {
        Err(format!("invalid tag '{tag}': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"))
    }
}

pub(crate) fn validate_utf8_name(name: &str) -> Result<(), String> {
    let ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~') || !c.is_ascii());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid value '{name}': the only accepted ascii characters are alphanumerics or ., -, _, and ~"
        ))
    }
}

/// What `kong.tools.ip.normalize_ip` makes of a host string.
pub(crate) enum HostKind {
    Name,
    Ip,
}

/// Splits `host[:port]`, classifying the host; `Err(())` when it is not a name or an address.
pub(crate) fn parse_host_port(s: &str) -> Result<(HostKind, Option<u32>), ()> {
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, tail) = rest.split_once(']').ok_or(())?;
        addr.parse::<std::net::Ipv6Addr>().map_err(|_| ())?;
        let port = match tail {
            "" => None,
            t => Some(
                t.strip_prefix(':')
                    .ok_or(())?
                    .parse::<u32>()
                    .map_err(|_| ())?,
            ),
        };
        return Ok((HostKind::Ip, port));
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((HostKind::Ip, None));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u32>().map_err(|_| ())?)),
        None => (s, None),
    };
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok((HostKind::Ip, port));
    }
    let valid = !host.is_empty()
        && host.split('.').all(|l| !l.is_empty())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if valid {
        Ok((HostKind::Name, port))
    } else {
        Err(())
    }
}

pub(crate) fn validate_host(h: &str) -> Result<(), String> {
    match parse_host_port(h) {
        Err(()) => Err(format!("invalid value: {h}")),
        Ok((_, Some(_))) => Err("must not have a port".into()),
        Ok(_) => Ok(()),
    }
}

pub(crate) fn validate_host_with_optional_port(h: &str) -> Result<(), String> {
    match parse_host_port(h) {
        Err(()) => Err(format!("invalid value: {h}")),
        Ok((_, Some(p))) if p > 65535 => Err("invalid port number".into()),
        Ok(_) => Ok(()),
    }
}

pub(crate) fn validate_wildcard_host(h: &str) -> Result<(), String> {
    let mut host = h.to_string();
    if let Some(idx) = h.find('*') {
        if idx != 0 && idx != h.len() - 1 {
            return Err("wildcard must be leftmost or rightmost character".into());
        }
        if h.matches('*').count() > 1 {
            return Err("only one wildcard must be specified".into());
        }
        host = h.replace('*', "wildcard");
    }
    match parse_host_port(&host) {
        Err(()) => Err(format!("invalid value: {host}")),
        Ok((HostKind::Ip, _)) => Err("must not be an IP".into()),
        Ok((_, Some(_))) => Err("must not have a port".into()),
        Ok(_) => Ok(()),
    }
}

pub(crate) fn validate_ip_or_cidr(s: &str) -> Result<(), String> {
    let bad = || format!("invalid ip or cidr range: '{s}'");
    let (ip, mask) = match s.split_once('/') {
        Some((ip, m)) => (ip, Some(m.parse::<u8>().map_err(|_| bad())?)),
        None => (s, None),
    };
    let max = if ip.parse::<std::net::Ipv4Addr>().is_ok() {
        32
    } else if ip.parse::<std::net::Ipv6Addr>().is_ok() {
        128
    } else {
        return Err(bad());
    };
    match mask {
        Some(m) if m > max => Err(bad()),
        _ => Ok(()),
    }
}

/// `typedefs.path` minus the leading `/` and `//` checks, which callers order themselves.
pub(crate) fn validate_path_chars(path: &str) -> Result<(), (String, bool)> {
    let ok = path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-~/%:@!$&'()*+,;=".contains(&b));
    if !ok {
        return Err((
            format!("invalid path: '{path}' (characters outside of the reserved list of RFC 3986 found)"),
            false,
        ));
    }
    percent_check(path).map_err(|e| (e, true))
}

pub(crate) fn percent_check(path: &str) -> Result<(), String> {
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let good =
                b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
            if !good {
                let end = (i + 3).min(b.len());
                let frag = String::from_utf8_lossy(&b[i..end]);
                return Err(format!("invalid url-encoded value: '{frag}'"));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// `typedefs.path` (service paths, `hash_on_cookie_path`).
pub(crate) fn validate_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("should start with: /".into());
    }
    if path.contains("//") {
        return Err("must not have empty segments".into());
    }
    validate_path_chars(path).map_err(|(e, _)| e)
}
