//! Path normalisation and the v0 upstream-path algorithm.
//!
//! Kong routes on a *normalised* path (`kong/tools/uri.lua normalize(uri, true)`) and then builds
//! the upstream path from that same normalised path with its `v0` rules (the ATC flavors ignore a
//! route's `path_handling = v1`). Both steps must be byte-for-byte identical to Kong's, because
//! the upstream sees the result and route matching depends on it.
//!
//! Everything here works on bytes, never panics on odd input, and writes into caller-owned
//! buffers so a request costs no allocation once the buffers have grown.

/// Why a request path cannot be routed (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPath;

impl std::fmt::Display for BadPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid percent-encoding in request path")
    }
}

impl std::error::Error for BadPath {}

/// Bytes whose `%xx` escape stays encoded (RFC 3986 reserved plus `%`): decoding them would
/// change what the path means.
fn is_reserved(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'*'
            | b'\''
            | b'('
            | b')'
            | b';'
            | b':'
            | b'@'
            | b'&'
            | b'='
            | b'+'
            | b'$'
            | b','
            | b'/'
            | b'?'
            | b'%'
            | b'#'
            | b'['
            | b']'
    )
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Normalises a raw request path (no query) into `out` as Kong does before routing:
/// decode `%xx` except reserved characters (kept, with upper-case hex), resolve `.`/`..`
/// segments, merge `//`. A `%` not followed by two hex digits is a [`BadPath`].
///
/// Kong hands the decoded bytes to the ATC router, which needs UTF-8; when decoding would
/// produce invalid UTF-8, the non-ASCII escapes are left encoded (upper-case hex) instead.
pub fn normalize(raw: &str, out: &mut String) -> Result<(), BadPath> {
    let mut buf = std::mem::take(out).into_bytes();
    let result = normalize_bytes(raw.as_bytes(), true, &mut buf).and_then(|()| {
        String::from_utf8(buf).or_else(|err| {
            let mut buf = err.into_bytes();
            normalize_bytes(raw.as_bytes(), false, &mut buf)?;
            // Only ASCII was decoded and the input was UTF-8, so this cannot fail; fall back to
            // an empty (unroutable) path rather than panic if it somehow does.
            Ok(String::from_utf8(buf).unwrap_or_default())
        })
    });
    match result {
        Ok(s) => {
            *out = s;
            Ok(())
        }
        Err(e) => {
            out.clear();
            Err(e)
        }
    }
}

fn normalize_bytes(raw: &[u8], decode_non_ascii: bool, b: &mut Vec<u8>) -> Result<(), BadPath> {
    b.clear();
    percent_decode(raw, decode_non_ascii, b)?;
    remove_dot_segments(b);
    Ok(())
}

fn percent_decode(raw: &[u8], decode_non_ascii: bool, b: &mut Vec<u8>) -> Result<(), BadPath> {
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'%' {
            b.push(c);
            i += 1;
            continue;
        }
        let hi = raw.get(i + 1).copied().and_then(hex_val).ok_or(BadPath)?;
        let lo = raw.get(i + 2).copied().and_then(hex_val).ok_or(BadPath)?;
        let v = hi * 16 + lo;
        if is_reserved(v) || (!decode_non_ascii && v >= 0x80) {
            b.extend_from_slice(&[b'%', HEX_UPPER[usize::from(hi)], HEX_UPPER[usize::from(lo)]]);
        } else {
            b.push(v);
        }
        i += 3;
    }
    Ok(())
}

/// Kong's dot-segment removal with slash merging, done in place: the output (`b[..w]`) never
/// grows faster than the input is consumed (`b[r..n]`). Output segments are "/name" (or "name"
/// for a first segment without a leading slash), so the last one starts at the last `/`.
fn remove_dot_segments(b: &mut Vec<u8>) {
    let n = b.len();
    let mut r = 0;
    let mut w = 0;
    let pop = |b: &[u8], w: usize| b[..w].iter().rposition(|&c| c == b'/').unwrap_or(0);
    while r < n {
        let rest = &b[r..n];
        if rest == b"/." || rest == b"/.." {
            // The remaining input becomes a lone "/": rewrite its last byte (at or after `r`,
            // so no output byte is touched) and continue from there.
            if rest.len() == 3 {
                w = pop(b, w);
            }
            r = n - 1;
            b[r] = b'/';
        } else if rest == b"." || rest == b".." {
            r = n;
        } else if rest.starts_with(b"../") {
            r += 3;
        } else if rest.starts_with(b"./") || rest.starts_with(b"/./") {
            r += 2;
        } else if rest.starts_with(b"/../") {
            r += 3;
            w = pop(b, w);
        } else if rest.starts_with(b"//") {
            r += 1;
        } else {
            let end = rest[1..]
                .iter()
                .position(|&c| c == b'/')
                .map_or(n, |p| r + 1 + p);
            b.copy_within(r..end, w);
            w += end - r;
            r = end;
        }
    }
    b.truncate(w);
}

/// Whether Kong's `escape` leaves byte `c` as is in an upstream path.
fn is_upstream_safe(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'/'
                | b':'
                | b';'
                | b'='
                | b'?'
                | b'@'
                | b'['
                | b'\\'
                | b']'
                | b'-'
                | b'_'
                | b'.'
                | b'~'
                | b'%'
        )
}

/// Appends `bytes` to `out`, percent-encoding (upper-case hex) every byte Kong's `escape`
/// would encode. The output is always ASCII.
pub fn escape_into(bytes: &[u8], out: &mut String) {
    for &c in bytes {
        if is_upstream_safe(c) {
            out.push(char::from(c));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(c >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(c & 0xF)]));
        }
    }
}

/// Kong's `sanitize_uri_postfix`: a remainder of `.`/`..` is dropped, as is one leading
/// `./` or `../`.
fn sanitize_postfix(x: &[u8]) -> &[u8] {
    if x == b"." || x == b".." {
        return &[];
    }
    if let Some(rest) = x.strip_prefix(b"./") {
        return rest;
    }
    if let Some(rest) = x.strip_prefix(b"../") {
        return rest;
    }
    x
}

/// Writes the upstream path (Kong v0 algorithm, then escaped) into `out` (cleared first).
/// `req_path` is the normalised request path, `strip_len` comes from [`crate::Match`].
///
/// `strip_len == 0` is treated as "no strip". That is exact for Kong: a stripping route that
/// matched on something other than its path counts as having matched `/`, and stripping `/`
/// gives the same result as not stripping in every v0 branch. (The one case it cannot express
/// is a regex path that matched the empty string on the request path `/` with a service path
/// not ending in `/`.)
pub fn upstream_path(
    service_path: Option<&str>,
    req_path: &str,
    strip_len: usize,
    out: &mut String,
) {
    out.clear();
    let s = service_path.unwrap_or("/").as_bytes();
    let r = req_path.as_bytes();
    let strip = strip_len > 0;
    let x = sanitize_postfix(r.get(strip_len..).unwrap_or(&[]));
    let s_trimmed = s.strip_suffix(b"/");
    let r_ends_slash = r.last() == Some(&b'/');

    let mut put = |parts: &[&[u8]]| {
        for p in parts {
            escape_into(p, out);
        }
    };
    match (s_trimmed, strip) {
        // service path ends with '/'
        (Some(s_minus), true) => {
            if x.is_empty() {
                if s == b"/" {
                    put(&[b"/"]);
                } else if r_ends_slash {
                    put(&[s]);
                } else {
                    put(&[s_minus]);
                }
            } else if x[0] == b'/' {
                put(&[s_minus, x]);
            } else {
                put(&[s, x]);
            }
        }
        (Some(_), false) => put(&[s, r.get(1..).unwrap_or(&[])]),
        // service path does not end with '/'
        (None, true) => {
            if x.is_empty() {
                if r.len() > 1 && r_ends_slash {
                    put(&[s, b"/"]);
                } else {
                    put(&[s]);
                }
            } else if x[0] == b'/' {
                put(&[s, x]);
            } else {
                put(&[s, b"/", x]);
            }
        }
        (None, false) => {
            if r == b"/" {
                put(&[s]);
            } else {
                put(&[s, r]);
            }
        }
    }
}
