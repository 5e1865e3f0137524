//! Query-string lookups without building a table of arguments (Kong's `get_query()` builds
//! one per call). Names and values are percent-decoded (`+` is a space) only when they
//! contain an escape, so the common case borrows from the request.

use std::borrow::Cow;

/// What a query argument looks like, in Lua's terms (`query[name]`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Arg<'a> {
    Absent,
    /// `?name` without `=`: Lua sees `true`, not a string.
    Flag,
    One(Cow<'a, str>),
    /// Given more than once: Lua sees a table.
    Many,
}

pub(crate) fn decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn pairs(query: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (p, None),
        })
}

/// Looks `name` up (case-sensitive, like nginx's args).
pub(crate) fn get<'a>(query: &'a str, name: &str) -> Arg<'a> {
    let mut found = Arg::Absent;
    for (k, v) in pairs(query) {
        if decode(k) != name {
            continue;
        }
        if !matches!(found, Arg::Absent) {
            return Arg::Many;
        }
        found = match v {
            Some(v) => Arg::One(decode(v)),
            None => Arg::Flag,
        };
    }
    found
}

/// Whether `name` is present at all.
pub(crate) fn has(query: &str, name: &str) -> bool {
    !matches!(get(query, name), Arg::Absent)
}

/// The query without any `name` argument (others kept byte for byte, in order).
pub(crate) fn without(query: &str, name: &str) -> String {
    let mut out = String::with_capacity(query.len());
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let k = part.split_once('=').map_or(part, |(k, _)| k);
        if decode(k) == name {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(get("a=1&apikey=k", "apikey"), Arg::One("k".into()));
        assert_eq!(get("apikey=a%20b+c", "apikey"), Arg::One("a b c".into()));
        assert_eq!(get("apikey=1&apikey=2", "apikey"), Arg::Many);
        assert_eq!(get("apikey", "apikey"), Arg::Flag);
        assert_eq!(get("x=1", "apikey"), Arg::Absent);
        assert_eq!(get("api%6Bey=z", "apikey"), Arg::One("z".into()));
        assert_eq!(get("apikey=%", "apikey"), Arg::One("%".into()));
        assert_eq!(without("a=1&apikey=k&b=2", "apikey"), "a=1&b=2");
        assert_eq!(without("apikey=k", "apikey"), "");
    }
}
