//! In-memory migration of `_format_version` 1.1 / 2.1 files to 3.0, and the path normaliser
//! both the migration and route validation rely on.
//!
//! Only route paths change between formats: before 3.0 a path was a regex whenever it looked
//! like one, since 3.0 regexes carry a `~` prefix and prefixes must be normalized.

use crate::doc::Value;

const RESERVED: &[u8] = b"!*'();:@&=+$,/?%#[]";
const MIGRATE_RESERVED: &[u8] = b"!#$%&'()*+,/:;=?@[]";

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Replaces every `%XX` with `decode(byte, original)`.
fn map_percent(s: &str, decode: impl Fn(u8, &str) -> String) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let orig = String::from_utf8_lossy(&b[i..i + 3]).into_owned();
                out.extend_from_slice(decode(h * 16 + l, &orig).as_bytes());
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_byte(n: u8) -> String {
    String::from_utf8_lossy(&[n]).into_owned()
}

/// Kong's `kong.tools.uri.normalize(uri, true)`: decode unreserved `%XX` (reserved ones keep
/// upper-case hex), resolve dot segments and merge slashes.
pub fn normalize_path(uri: &str) -> String {
    if uri.is_empty() || uri == "/" {
        return uri.to_string();
    }
    let mut uri = if uri.contains('%') {
        map_percent(uri, |n, orig| {
            if RESERVED.contains(&n) {
                orig.to_ascii_uppercase()
            } else {
                decode_byte(n)
            }
        })
    } else {
        uri.to_string()
    };
    if !uri.contains('.') && !uri.contains("//") {
        return uri;
    }
    let mut out: Vec<String> = Vec::new();
    while !uri.is_empty() {
        if uri == "/." {
            uri = "/".into();
        } else if uri == "/.." {
            uri = "/".into();
            out.pop();
        } else if uri == "." || uri == ".." {
            uri.clear();
        } else if let Some(rest) = uri.strip_prefix("../") {
            uri = rest.to_string();
        } else if let Some(rest) = uri.strip_prefix("./") {
            uri = rest.to_string();
        } else if uri.starts_with("/./") {
            uri = uri[2..].to_string();
        } else if uri.starts_with("/../") {
            uri = uri[3..].to_string();
            out.pop();
        } else if uri.starts_with("//") {
            uri = uri[1..].to_string();
        } else {
            let start = usize::from(uri.starts_with('/'));
            let end = uri[start..]
                .find('/')
                .map(|i| i + start)
                .unwrap_or(uri.len());
            out.push(uri[..end].to_string());
            uri = uri[end..].to_string();
        }
    }
    out.concat()
}

fn is_plain(path: &str) -> bool {
    path.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-_~/%".contains(&b))
}

/// Kong's `migrate_path_280_300`.
pub fn migrate_path(path: &str) -> String {
    if is_plain(path) {
        return normalize_path(path);
    }
    let decoded = map_percent(path, |n, orig| {
        if MIGRATE_RESERVED.contains(&n) {
            return orig.to_ascii_uppercase();
        }
        match n {
            b'.' | b'^' | b'-' | b'{' | b'}' | b'\\' | b'|' => format!("\\{}", n as char),
            _ => decode_byte(n),
        }
    });
    format!("~{decoded}")
}

fn migrate_routes(routes: Option<&mut Value<'_>>) {
    let Some(Value::Array(routes)) = routes else {
        return;
    };
    for r in routes {
        if let Some(Value::Array(paths)) = r.get_mut("paths") {
            for p in paths {
                if let Value::String(s) = p {
                    *s = migrate_path(s).into();
                }
            }
        }
    }
}

/// Migrates a 1.1 / 2.1 document in place and relabels it 3.0.
pub fn migrate(doc: &mut Value<'_>) {
    let version = doc.get("_format_version").and_then(Value::as_str);
    if !matches!(version, Some("1.1") | Some("2.1")) {
        return;
    }
    migrate_routes(doc.get_mut("routes"));
    if let Some(Value::Array(services)) = doc.get_mut("services") {
        for s in services {
            migrate_routes(s.get_mut("routes"));
        }
    }
    if let Value::Object(m) = doc {
        m.insert("_format_version", Value::String("3.0".into()));
    }
}
