//! The `expressions` flavor: Kong's ATC language (atc-router), parsed and type-checked once at
//! build, then evaluated directly against the request with no per-request context object.
//!
//! [`parse`](parse) follows the grammar (including `||` binding tighter than `&&` and `!` only
//! before parentheses); this module resolves field names against Kong's HTTP schema
//! (`kong/router/fields.lua`), applies atc-router's `semantics.rs` type rules, and [`eval`]
//! implements `interpreter.rs`: all-values semantics unless `any()`, a missing or empty field
//! makes a predicate false (`!=` and `not in` included), `lower()` is Unicode lower-casing.
//! Errors carry the byte offset, line and column, so a config error can point at the spot.

mod eval;
mod parse;

use std::net::IpAddr;

use regex::Regex;

use crate::cache::KeySpec;

/// A parse or type error in an expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at line {line}, column {column})")]
pub struct ExprError {
    pub message: String,
    /// Byte offset into the expression.
    pub offset: usize,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
}

impl ExprError {
    fn at(src: &str, offset: usize, message: impl Into<String>) -> ExprError {
        let offset = offset.min(src.len());
        let before = src.get(..offset).unwrap_or(src);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ExprError {
            message: message.into(),
            offset,
            line,
            column,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Regex,
    Prefix,
    Postfix,
    Gt,
    Ge,
    Lt,
    Le,
    In,
    NotIn,
    Contains,
}

/// An IP network with its host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    fn new(addr: IpAddr, len: u8) -> Option<Cidr> {
        let c = Cidr { addr, len };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (len <= max && c.contains(&addr) && c.network_bits(&addr) == c.bits()).then_some(c)
    }

    fn bits(&self) -> u128 {
        match self.addr {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        }
    }

    fn network_bits(&self, ip: &IpAddr) -> u128 {
        let (v, width) = match ip {
            IpAddr::V4(a) => (u128::from(u32::from(*a)), 32u32),
            IpAddr::V6(a) => (u128::from(*a), 128u32),
        };
        let host = width.saturating_sub(u32::from(self.len));
        if host >= 128 {
            0
        } else {
            (v >> host) << host
        }
    }

    pub(crate) fn contains(&self, ip: &IpAddr) -> bool {
        self.addr.is_ipv4() == ip.is_ipv4()
            && self.network_bits(ip) == self.network_bits(&self.addr)
    }
}

/// A literal right-hand side as parsed.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Str(String),
    Int(i64),
    Ip(IpAddr),
    Cidr(Cidr),
}

#[derive(Debug, Clone)]
pub(crate) struct Lhs {
    field: String,
    lower: bool,
    any: bool,
}

#[derive(Debug)]
pub(crate) struct RawPredicate {
    lhs: Lhs,
    op: Op,
    rhs: Value,
    /// Offsets of the predicate, its operator and its right-hand side.
    at: usize,
    op_at: usize,
    rhs_at: usize,
}

#[derive(Debug)]
pub(crate) enum Node<P> {
    And(Box<Node<P>>, Box<Node<P>>),
    Or(Box<Node<P>>, Box<Node<P>>),
    Not(Box<Node<P>>),
    Pred(P),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Str,
    Int,
    Ip,
}

/// Kong's HTTP fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    Protocol,
    Sni,
    Method,
    Host,
    Path,
    /// `http.path.segments.N`
    Segment(usize),
    /// `http.path.segments.N_M` (N < M), segments N..=M joined by `/`.
    Segments(usize, usize),
    SegmentsLen,
    /// Lower-case header name with `-`.
    Header(Box<str>),
    Query(Box<str>),
    SrcIp,
    SrcPort,
    DstIp,
    DstPort,
}

impl Field {
    fn resolve(name: &str) -> Option<Field> {
        Some(match name {
            "net.protocol" => Field::Protocol,
            "tls.sni" => Field::Sni,
            "http.method" => Field::Method,
            "http.host" => Field::Host,
            "http.path" => Field::Path,
            "http.path.segments.len" => Field::SegmentsLen,
            "net.src.ip" => Field::SrcIp,
            "net.src.port" => Field::SrcPort,
            "net.dst.ip" => Field::DstIp,
            // `net.port` is Kong's deprecated name for `net.dst.port`.
            "net.dst.port" | "net.port" => Field::DstPort,
            _ => {
                if let Some(h) = name.strip_prefix("http.headers.") {
                    if h.is_empty() {
                        return None;
                    }
                    let h: String = h
                        .chars()
                        .map(|c| {
                            if c == '_' {
                                '-'
                            } else {
                                c.to_ascii_lowercase()
                            }
                        })
                        .collect();
                    return Some(Field::Header(h.into()));
                }
                if let Some(q) = name.strip_prefix("http.queries.") {
                    return (!q.is_empty()).then(|| Field::Query(q.into()));
                }
                let seg = name.strip_prefix("http.path.segments.")?;
                let num = |s: &str| {
                    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| s.parse::<usize>().ok())
                        .flatten()
                };
                return match seg.split_once('_') {
                    None => num(seg).map(Field::Segment),
                    Some((a, b)) => match (num(a), num(b)) {
                        (Some(a), Some(b)) if a < b => Some(Field::Segments(a, b)),
                        _ => None,
                    },
                };
            }
        })
    }

    fn ty(&self) -> Type {
        match self {
            Field::SegmentsLen | Field::SrcPort | Field::DstPort => Type::Int,
            Field::SrcIp | Field::DstIp => Type::Ip,
            _ => Type::Str,
        }
    }
}

/// A checked right-hand side.
#[derive(Debug)]
pub(crate) enum Rhs {
    Str(Box<str>),
    Regex(Regex),
    Int(i64),
    Ip(IpAddr),
    Cidr(Cidr),
}

/// A checked predicate.
#[derive(Debug)]
pub(crate) struct Predicate {
    field: Field,
    lower: bool,
    any: bool,
    op: Op,
    rhs: Rhs,
}

/// A compiled expression.
#[derive(Debug)]
pub struct Expr {
    root: Node<Predicate>,
}

fn check(src: &str, p: RawPredicate) -> Result<Predicate, ExprError> {
    let err = |at: usize, m: &str| Err(ExprError::at(src, at, m));
    let Some(field) = Field::resolve(&p.lhs.field) else {
        return err(p.at, &format!("Unknown LHS field {:?}", p.lhs.field));
    };
    let ty = field.ty();
    let rhs = match (p.op, p.rhs) {
        (Op::Regex, Value::Str(s)) => match Regex::new(&s) {
            Ok(re) => Rhs::Regex(re),
            Err(e) => return err(p.rhs_at, &format!("invalid regex: {e}")),
        },
        (Op::Regex, _) => {
            return err(
                p.rhs_at,
                "regex operator can only be used with String operands",
            )
        }
        (_, Value::Str(s)) => Rhs::Str(s.into()),
        (_, Value::Int(i)) => Rhs::Int(i),
        (_, Value::Ip(ip)) => Rhs::Ip(ip),
        (_, Value::Cidr(c)) => Rhs::Cidr(c),
    };
    let rhs_ty = match &rhs {
        Rhs::Str(_) | Rhs::Regex(_) => Some(Type::Str),
        Rhs::Int(_) => Some(Type::Int),
        Rhs::Ip(_) => Some(Type::Ip),
        Rhs::Cidr(_) => None,
    };
    if !matches!(p.op, Op::Regex | Op::In | Op::NotIn) && rhs_ty != Some(ty) {
        return err(
            p.rhs_at,
            "Type mismatch between the LHS and RHS values of predicate",
        );
    }
    if p.lhs.lower && ty != Type::Str {
        return err(
            p.at,
            "lower-case transformation function only supported with String type fields",
        );
    }
    let ok = match p.op {
        Op::Eq | Op::Ne => true,
        Op::Regex => ty == Type::Str,
        Op::Prefix | Op::Postfix | Op::Contains => matches!(rhs, Rhs::Str(_)),
        Op::Gt | Op::Ge | Op::Lt | Op::Le => matches!(rhs, Rhs::Int(_)),
        Op::In | Op::NotIn => ty == Type::Ip && matches!(rhs, Rhs::Cidr(_)),
    };
    if !ok {
        return err(p.op_at, "operator not supported for these operand types");
    }
    Ok(Predicate {
        field,
        lower: p.lhs.lower,
        any: p.lhs.any,
        op: p.op,
        rhs,
    })
}

fn check_tree(src: &str, n: Node<RawPredicate>) -> Result<Node<Predicate>, ExprError> {
    Ok(match n {
        Node::And(a, b) => Node::And(
            Box::new(check_tree(src, *a)?),
            Box::new(check_tree(src, *b)?),
        ),
        Node::Or(a, b) => Node::Or(
            Box::new(check_tree(src, *a)?),
            Box::new(check_tree(src, *b)?),
        ),
        Node::Not(a) => Node::Not(Box::new(check_tree(src, *a)?)),
        Node::Pred(p) => Node::Pred(check(src, p)?),
    })
}

impl Expr {
    /// Parses and type-checks `src`.
    pub fn parse(src: &str) -> Result<Expr, ExprError> {
        let raw = parse::Parser::new(src).parse_matcher()?;
        Ok(Expr {
            root: check_tree(src, raw)?,
        })
    }

    /// Top-level conjuncts (what every match must satisfy).
    fn conjuncts(&self) -> Vec<&Predicate> {
        let mut out = Vec::new();
        let mut stack = vec![&self.root];
        while let Some(n) = stack.pop() {
            match n {
                Node::And(a, b) => {
                    stack.push(a);
                    stack.push(b);
                }
                Node::Pred(p) => out.push(p),
                _ => {}
            }
        }
        out
    }

    /// A host every match has (`http.host == "x"` at the top level), for the index.
    pub(crate) fn required_host(&self) -> Option<&str> {
        self.conjuncts()
            .into_iter()
            .find_map(|p| match (&p.field, p.op, &p.rhs) {
                (Field::Host, Op::Eq, Rhs::Str(s)) if !p.lower => Some(&**s),
                _ => None,
            })
    }

    /// A literal every matching path starts with (`http.path ^= "x"` or `== "x"`).
    pub(crate) fn required_path_prefix(&self) -> Option<&str> {
        self.conjuncts()
            .into_iter()
            .find_map(|p| match (&p.field, p.op, &p.rhs) {
                (Field::Path, Op::Eq | Op::Prefix, Rhs::Str(s)) if !p.lower => Some(&**s),
                _ => None,
            })
    }

    /// Records the request fields this expression reads.
    pub(crate) fn uses(&self, spec: &mut KeySpec) {
        let mut stack = vec![&self.root];
        while let Some(n) = stack.pop() {
            match n {
                Node::And(a, b) | Node::Or(a, b) => {
                    stack.push(a);
                    stack.push(b);
                }
                Node::Not(a) => stack.push(a),
                Node::Pred(p) => match &p.field {
                    Field::Method => spec.method = true,
                    Field::Host => spec.host = true,
                    Field::Sni => spec.sni = true,
                    Field::DstPort => spec.port = true,
                    Field::SrcIp => spec.src_ip = true,
                    Field::SrcPort => spec.src_port = true,
                    Field::DstIp => spec.dst_ip = true,
                    Field::Header(h) => spec.add_header(h),
                    Field::Query(q) => spec.add_query(q),
                    Field::Protocol
                    | Field::Path
                    | Field::Segment(_)
                    | Field::Segments(..)
                    | Field::SegmentsLen => {}
                },
            }
        }
    }
}
