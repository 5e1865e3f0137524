//! The header names the request path treats specially, found in one pass over a map's names.
//!
//! A hashed `HeaderMap` lookup of a name that is absent costs as much as one that is present
//! (hashing a custom name is most of it), and most messages carry none of these names: the
//! hop-by-hop set, the client's own `X-Forwarded-*` / `X-Real-IP`. One scan over the names
//! (a length comparison for most of them) tells which lookups and removals are worth doing.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The hop-by-hop names besides `Connection` (which also names other headers to drop), with
/// the `HeaderName` each is removed by.
static HOP_BY_HOP: [(Name, HeaderName); 7] = [
    (Name::Te, header::TE),
    (Name::Trailer, header::TRAILER),
    (Name::TransferEncoding, header::TRANSFER_ENCODING),
    (Name::Upgrade, header::UPGRADE),
    (Name::ProxyAuthenticate, header::PROXY_AUTHENTICATE),
    (Name::KeepAlive, HeaderName::from_static("keep-alive")),
    (
        Name::ProxyConnection,
        HeaderName::from_static("proxy-connection"),
    ),
];

/// The names [`Present`] reports (one bit each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Name {
    Connection,
    Te,
    Trailer,
    TransferEncoding,
    Upgrade,
    ProxyAuthenticate,
    KeepAlive,
    ProxyConnection,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    XForwardedPort,
    XForwardedPath,
    XForwardedPrefix,
    XRealIp,
}

impl Name {
    /// The name as it appears in a `HeaderMap` (lowercase).
    fn as_str(self) -> &'static str {
        match self {
            Name::Connection => "connection",
            Name::Te => "te",
            Name::Trailer => "trailer",
            Name::TransferEncoding => "transfer-encoding",
            Name::Upgrade => "upgrade",
            Name::ProxyAuthenticate => "proxy-authenticate",
            Name::KeepAlive => "keep-alive",
            Name::ProxyConnection => "proxy-connection",
            Name::XForwardedFor => "x-forwarded-for",
            Name::XForwardedProto => "x-forwarded-proto",
            Name::XForwardedHost => "x-forwarded-host",
            Name::XForwardedPort => "x-forwarded-port",
            Name::XForwardedPath => "x-forwarded-path",
            Name::XForwardedPrefix => "x-forwarded-prefix",
            Name::XRealIp => "x-real-ip",
        }
    }

    /// The special name `name` is, if any. The length picks one to four candidates, so most
    /// names cost a comparison of lengths.
    fn of(name: &str) -> Option<Name> {
        let b = name.as_bytes();
        let candidate = match b.len() {
            2 => Name::Te,
            7 if b[0] == b't' => Name::Trailer,
            7 => Name::Upgrade,
            9 => Name::XRealIp,
            10 if b[0] == b'c' => Name::Connection,
            10 => Name::KeepAlive,
            15 => Name::XForwardedFor,
            16 if b[0] == b'p' => Name::ProxyConnection,
            16 => match (b[12], b[13]) {
                (b'h', _) => Name::XForwardedHost,
                (_, b'o') => Name::XForwardedPort,
                _ => Name::XForwardedPath,
            },
            17 if b[0] == b't' => Name::TransferEncoding,
            17 => Name::XForwardedProto,
            18 if b[0] == b'p' => Name::ProxyAuthenticate,
            18 => Name::XForwardedPrefix,
            _ => return None,
        };
        (name == candidate.as_str()).then_some(candidate)
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// Which of the special names a header map holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Present(u16);

impl Present {
    pub fn scan(h: &HeaderMap) -> Present {
        Present(
            h.keys()
                .filter_map(|k| Name::of(k.as_str()))
                .fold(0, |found, n| found | n.bit()),
        )
    }

    pub fn has(self, n: Name) -> bool {
        self.0 & n.bit() != 0
    }
}

/// RFC 9110 7.6.1: connection-specific headers are never forwarded, including those the
/// `Connection` header names. `present` is a [`Present::scan`] of `h`: most messages carry
/// none or only `Connection: keep-alive`, which removes nothing else and copies nothing.
pub(crate) fn strip_hop_by_hop(h: &mut HeaderMap, present: Present) {
    if present.has(Name::Connection) {
        if h.get_all(header::CONNECTION)
            .iter()
            .any(names_other_headers)
        {
            // Values are reference-counted; a second `Connection` line (rare) costs a Vec.
            let lines: Vec<HeaderValue> = h.get_all(header::CONNECTION).iter().cloned().collect();
            for list in lines.iter().filter_map(|v| v.to_str().ok()) {
                for name in list
                    .split(',')
                    .map(str::trim)
                    .filter(|n| is_header_option(n))
                {
                    h.remove(name);
                }
            }
        }
        h.remove(header::CONNECTION);
    }
    for (n, name) in &HOP_BY_HOP {
        if present.has(*n) {
            h.remove(name);
        }
    }
}

/// A `Connection` token that names a header to drop (not the `keep-alive`/`close` options;
/// Keep-Alive itself is removed as a hop-by-hop name when present).
fn is_header_option(token: &str) -> bool {
    !token.is_empty()
        && !token.eq_ignore_ascii_case("keep-alive")
        && !token.eq_ignore_ascii_case("close")
}

fn names_other_headers(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    if b.eq_ignore_ascii_case(b"keep-alive") || b.eq_ignore_ascii_case(b"close") {
        return false; // nearly every upstream response: no split, no trim
    }
    v.to_str()
        .is_ok_and(|list| list.split(',').map(str::trim).any(is_header_option))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Name; 15] = [
        Name::Connection,
        Name::Te,
        Name::Trailer,
        Name::TransferEncoding,
        Name::Upgrade,
        Name::ProxyAuthenticate,
        Name::KeepAlive,
        Name::ProxyConnection,
        Name::XForwardedFor,
        Name::XForwardedProto,
        Name::XForwardedHost,
        Name::XForwardedPort,
        Name::XForwardedPath,
        Name::XForwardedPrefix,
        Name::XRealIp,
    ];

    #[test]
    fn every_special_name_is_found_and_nothing_else() {
        for n in ALL {
            assert_eq!(Name::of(n.as_str()), Some(n), "{n:?}");
        }
        for name in [
            "host",
            "tk",
            "tracker",
            "uploads",
            "connexion",
            "keep-alivf",
            "x-real-id",
            "x-forwarded-fox",
            "x-forwarded-hosts",
            "x-forwarded-poke",
            "x-forwarded-pats",
            "x-forwarded-xxxx",
            "proxy-connectioN",
            "transfer-encodinx",
            "x-forwarded-protx",
            "x-forwarded-prefiz",
            "proxy-authorization",
        ] {
            assert_eq!(Name::of(name), None, "{name}");
        }
    }

    #[test]
    fn each_hop_by_hop_entry_removes_its_own_name() {
        for (n, name) in &HOP_BY_HOP {
            assert_eq!(n.as_str(), name.as_str());
        }
    }

    #[test]
    fn scan_reports_the_names_of_a_map() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("a"));
        assert_eq!(Present::scan(&h), Present::default());
        h.insert("x-forwarded-prefix", HeaderValue::from_static("/p"));
        h.insert("te", HeaderValue::from_static("trailers"));
        let p = Present::scan(&h);
        assert!(p.has(Name::XForwardedPrefix) && p.has(Name::Te));
        assert!(!p.has(Name::XForwardedFor) && !p.has(Name::Connection));
    }

    #[test]
    fn strip_removes_hop_by_hop_and_connection_listed_names() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("proxy-connection", "x"),
            ("x-forwarded-for", "1.2.3.4"),
            ("content-type", "text/plain"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        let p = Present::scan(&h);
        strip_hop_by_hop(&mut h, p);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-forwarded-for"]);
    }
}
