//! Evaluating a compiled expression against a request (atc-router `interpreter.rs`).
//!
//! Values are read straight from the request: path segments are slices of the path, header
//! values come from the [`crate::Headers`] callback, query arguments are split from the raw
//! query string. Only `lower()` on a value with non-ASCII or long upper-case text and
//! percent-encoded query arguments allocate.

use std::borrow::Cow;
use std::net::IpAddr;

use super::{Expr, Field, Node, Op, Predicate, Rhs};
use crate::matcher::Ctx;

/// One field value.
#[derive(Clone, Copy)]
enum Val<'v> {
    Str(&'v str),
    Int(i64),
    Ip(IpAddr),
}

/// Path segments as Kong's `fields.lua` splits them: leading `/` skipped, trailing empty
/// segments dropped.
fn segments(path: &str) -> impl Iterator<Item = (usize, &str)> + Clone {
    let body = path.strip_prefix('/').unwrap_or(path).trim_end_matches('/');
    let base = path.len() - path.strip_prefix('/').unwrap_or(path).len();
    let empty = body.is_empty();
    body.split('/')
        .scan(base, |off, s| {
            let start = *off;
            *off += s.len() + 1;
            Some((start, s))
        })
        .filter(move |_| !empty)
}

/// Decodes `%xx` and `+` like `ngx.decode_args`.
fn decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
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

/// Calls `f` with each value of `field` until it returns true (stop).
fn each_value(field: &Field, cx: &Ctx<'_, '_>, f: &mut dyn FnMut(Val<'_>) -> bool) {
    let req = cx.req;
    match field {
        Field::Protocol => {
            f(Val::Str(if req.https { "https" } else { "http" }));
        }
        Field::Sni => {
            if let Some(s) = req.sni {
                f(Val::Str(s));
            }
        }
        Field::Method => {
            f(Val::Str(req.method));
        }
        Field::Host => {
            f(Val::Str(cx.host));
        }
        Field::Path => {
            f(Val::Str(req.path));
        }
        Field::Segment(n) => {
            if let Some((_, s)) = segments(req.path).nth(*n) {
                f(Val::Str(s));
            }
        }
        Field::Segments(a, b) => {
            let mut it = segments(req.path).skip(*a);
            if let (Some((start, _)), Some((end, last))) = (it.next(), it.nth(b - a - 1)) {
                if let Some(s) = req.path.get(start..end + last.len()) {
                    f(Val::Str(s));
                }
            }
        }
        Field::SegmentsLen => {
            f(Val::Int(segments(req.path).count() as i64));
        }
        Field::Header(name) => {
            req.headers.any_value(name, &mut |v| f(Val::Str(v)));
        }
        Field::Query(name) => {
            let Some(q) = cx.extra.query else { return };
            for arg in q.split('&').filter(|a| !a.is_empty()) {
                let (k, v) = arg.split_once('=').unwrap_or((arg, ""));
                if *decode(k) == **name && f(Val::Str(&decode(v))) {
                    return;
                }
            }
        }
        Field::SrcIp => {
            if let Some(a) = cx.extra.src {
                f(Val::Ip(a.ip()));
            }
        }
        Field::SrcPort => {
            if let Some(a) = cx.extra.src {
                f(Val::Int(i64::from(a.port())));
            }
        }
        Field::DstIp => {
            if let Some(ip) = cx.extra.dst_ip {
                f(Val::Ip(ip));
            }
        }
        Field::DstPort => {
            f(Val::Int(i64::try_from(cx.port).unwrap_or(i64::MAX)));
        }
    }
}

const STACK_LOWER: usize = 256;

/// Calls `f` with `s` lower-cased (Rust's Unicode `to_lowercase`, as atc-router does).
fn with_lower<T>(s: &str, f: impl FnOnce(&str) -> T) -> T {
    if s.is_ascii() {
        if !s.bytes().any(|b| b.is_ascii_uppercase()) {
            return f(s);
        }
        if s.len() <= STACK_LOWER {
            let mut buf = [0u8; STACK_LOWER];
            let lowered = &mut buf[..s.len()];
            lowered.copy_from_slice(s.as_bytes());
            lowered.make_ascii_lowercase();
            if let Ok(l) = std::str::from_utf8(lowered) {
                return f(l);
            }
        }
    }
    f(&s.to_lowercase())
}

impl Predicate {
    /// One value against the predicate; records what `http.path` matched for strip_path.
    fn test(&self, v: Val<'_>, path_hit: &mut Option<usize>) -> bool {
        match v {
            Val::Str(s) if self.lower => with_lower(s, |l| self.test_str(l, path_hit)),
            Val::Str(s) => self.test_str(s, path_hit),
            Val::Int(i) => {
                let Rhs::Int(r) = self.rhs else { return false };
                match self.op {
                    Op::Eq => i == r,
                    Op::Ne => i != r,
                    Op::Gt => i > r,
                    Op::Ge => i >= r,
                    Op::Lt => i < r,
                    Op::Le => i <= r,
                    _ => false,
                }
            }
            Val::Ip(ip) => match (&self.rhs, self.op) {
                (Rhs::Ip(r), Op::Eq) => ip == *r,
                (Rhs::Ip(r), Op::Ne) => ip != *r,
                (Rhs::Cidr(c), Op::In) => c.contains(&ip),
                (Rhs::Cidr(c), Op::NotIn) => !c.contains(&ip),
                _ => false,
            },
        }
    }

    fn test_str(&self, s: &str, path_hit: &mut Option<usize>) -> bool {
        let is_path = self.field == Field::Path;
        match (&self.rhs, self.op) {
            (Rhs::Regex(re), Op::Regex) => match re.find(s) {
                Some(m) => {
                    if is_path {
                        *path_hit = Some(m.len());
                    }
                    true
                }
                None => false,
            },
            (Rhs::Str(r), op) => {
                let ok = match op {
                    Op::Eq => s == &**r,
                    Op::Ne => s != &**r,
                    Op::Prefix => s.starts_with(&**r),
                    Op::Postfix => s.ends_with(&**r),
                    Op::Contains => s.contains(&**r),
                    _ => false,
                };
                if ok && is_path && matches!(op, Op::Eq | Op::Prefix) {
                    *path_hit = Some(r.len());
                }
                ok
            }
            _ => false,
        }
    }

    fn eval(&self, cx: &Ctx<'_, '_>, path_hit: &mut Option<usize>) -> bool {
        let mut seen = false;
        let mut verdict = None;
        each_value(&self.field, cx, &mut |v| {
            seen = true;
            let ok = self.test(v, path_hit);
            if self.any && ok {
                verdict = Some(true);
                return true;
            }
            if !self.any && !ok {
                verdict = Some(false);
                return true;
            }
            false
        });
        verdict.unwrap_or(!self.any && seen)
    }
}

fn eval_node(n: &Node<Predicate>, cx: &Ctx<'_, '_>, path_hit: &mut Option<usize>) -> bool {
    match n {
        Node::And(a, b) => eval_node(a, cx, path_hit) && eval_node(b, cx, path_hit),
        Node::Or(a, b) => eval_node(a, cx, path_hit) || eval_node(b, cx, path_hit),
        Node::Not(a) => !eval_node(a, cx, path_hit),
        Node::Pred(p) => p.eval(cx, path_hit),
    }
}

impl Expr {
    /// Whether the request matches; `Some(len)` of what `http.path` matched (0 if nothing).
    pub(crate) fn eval(&self, cx: &Ctx<'_, '_>) -> Option<usize> {
        let mut path_hit = None;
        eval_node(&self.root, cx, &mut path_hit).then(|| path_hit.unwrap_or(0))
    }
}
