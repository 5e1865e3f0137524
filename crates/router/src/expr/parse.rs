//! A hand-written recursive-descent parser for the ATC grammar (atc-router `atc_grammar.pest`
//! and `parser.rs`), reproducing the PEG's choices byte for byte: ordered alternatives, greedy
//! bounded repetitions, implicit whitespace only between tokens of non-atomic rules, and the
//! Pratt quirk that `||` binds tighter than `&&`. It works on bytes with explicit bounds checks,
//! so no input can make it panic; nesting depth is capped so no input can overflow the stack.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Cidr, ExprError, Lhs, Node, Op, RawPredicate, Value};

/// Deepest nesting of parentheses / transformation functions accepted.
const MAX_DEPTH: usize = 128;

pub(super) struct Parser<'s> {
    src: &'s str,
    b: &'s [u8],
    pos: usize,
    depth: usize,
}

type R<T> = Result<T, ExprError>;

impl<'s> Parser<'s> {
    pub(super) fn new(src: &'s str) -> Self {
        Parser {
            src,
            b: src.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    fn err<T>(&self, at: usize, message: impl Into<String>) -> R<T> {
        Err(ExprError::at(self.src, at, message))
    }

    fn ws(&mut self) {
        while matches!(self.b.get(self.pos), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self
            .b
            .get(self.pos..)
            .is_some_and(|r| r.starts_with(lit.as_bytes()))
        {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    /// `matcher = { SOI ~ expression ~ EOI }`
    pub(super) fn parse_matcher(&mut self) -> R<Node<RawPredicate>> {
        self.ws();
        let e = self.expression()?;
        self.ws();
        if self.pos != self.b.len() {
            return self.err(self.pos, "expected `&&`, `||`, `)` or end of input");
        }
        Ok(e)
    }

    /// `expression = { term ~ (logical_operator ~ term)* }`, folded with `&&` below `||`.
    fn expression(&mut self) -> R<Node<RawPredicate>> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(self.pos, "expression nested too deeply");
        }
        let mut and = self.or_chain()?;
        loop {
            let save = self.pos;
            self.ws();
            if self.eat("&&") {
                self.ws();
                let rhs = self.or_chain()?;
                and = Node::And(Box::new(and), Box::new(rhs));
            } else {
                self.pos = save;
                break;
            }
        }
        self.depth -= 1;
        Ok(and)
    }

    fn or_chain(&mut self) -> R<Node<RawPredicate>> {
        let mut or = self.term()?;
        loop {
            let save = self.pos;
            self.ws();
            if self.eat("||") {
                self.ws();
                let rhs = self.term()?;
                or = Node::Or(Box::new(or), Box::new(rhs));
            } else {
                self.pos = save;
                break;
            }
        }
        Ok(or)
    }

    /// `term = { predicate | parenthesised_expression }`,
    /// `parenthesised_expression = { not_op? ~ "(" ~ expression ~ ")" }`
    fn term(&mut self) -> R<Node<RawPredicate>> {
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() => Ok(Node::Pred(self.predicate()?)),
            Some(b'!' | b'(') => {
                let not = self.eat("!");
                self.ws();
                if !self.eat("(") {
                    return self.err(self.pos, "expected `(` after `!`");
                }
                self.ws();
                let inner = self.expression()?;
                self.ws();
                if !self.eat(")") {
                    return self.err(self.pos, "expected `)`");
                }
                Ok(if not {
                    Node::Not(Box::new(inner))
                } else {
                    inner
                })
            }
            _ => self.err(self.pos, "expected a predicate, `(` or `!(`"),
        }
    }

    /// `ident = @{ ASCII_ALPHA ~ (ASCII_ALPHANUMERIC | "_" | ".")* }`
    fn ident(&mut self) -> R<&'s str> {
        let start = self.pos;
        if !self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            return self.err(start, "expected a field name");
        }
        self.pos += 1;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
        {
            self.pos += 1;
        }
        Ok(self.src.get(start..self.pos).unwrap_or(""))
    }

    /// `lhs = { transform_func | ident }`, `transform_func = { ident ~ "(" ~ lhs ~ ")" }`
    fn lhs(&mut self) -> R<Lhs> {
        let start = self.pos;
        let name = self.ident()?;
        let after = self.pos;
        self.ws();
        if !self.eat("(") {
            self.pos = after;
            return Ok(Lhs {
                field: name.to_owned(),
                lower: false,
                any: false,
            });
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(self.pos, "expression nested too deeply");
        }
        self.ws();
        let mut inner = self.lhs()?;
        self.ws();
        if !self.eat(")") {
            return self.err(self.pos, "expected `)`");
        }
        self.depth -= 1;
        match name {
            "lower" => inner.lower = true,
            "any" => inner.any = true,
            other => return self.err(start, format!("unknown transformation function: {other}")),
        }
        Ok(inner)
    }

    /// `predicate = { lhs ~ binary_operator ~ rhs }`
    fn predicate(&mut self) -> R<RawPredicate> {
        let start = self.pos;
        let lhs = self.lhs()?;
        self.ws();
        let op_at = self.pos;
        let op = self.operator()?;
        self.ws();
        let rhs_at = self.pos;
        let rhs = self.rhs()?;
        Ok(RawPredicate {
            lhs,
            op,
            rhs,
            at: start,
            op_at,
            rhs_at,
        })
    }

    fn operator(&mut self) -> R<Op> {
        for (lit, op) in [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("~", Op::Regex),
            ("^=", Op::Prefix),
            ("=^", Op::Postfix),
            (">=", Op::Ge),
            (">", Op::Gt),
            ("<=", Op::Le),
            ("<", Op::Lt),
            ("in", Op::In),
        ] {
            if self.eat(lit) {
                return Ok(op);
            }
        }
        // The grammar allows any whitespace in `not in`, but atc-router panics (unreachable!)
        // on anything but a single space, so Kong can never have accepted another spelling.
        if self.eat("not in") {
            return Ok(Op::NotIn);
        }
        if self.eat("contains") {
            return Ok(Op::Contains);
        }
        self.err(self.pos, "expected an operator")
    }

    /// `rhs = { str_literal | rawstr_literal | ip_literal | int_literal }`
    fn rhs(&mut self) -> R<Value> {
        let start = self.pos;
        if self.eat("\"") {
            return self.string(start);
        }
        if self.eat("r#\"") {
            let rest = self.src.get(self.pos..).unwrap_or("");
            return match rest.find("\"#") {
                Some(end) => {
                    self.pos += end + 2;
                    Ok(Value::Str(rest[..end].to_owned()))
                }
                None => self.err(start, "unterminated raw string"),
            };
        }
        if let Some(v) = self.ip_literal()? {
            return Ok(v);
        }
        self.int_literal()
    }

    fn string(&mut self, start: usize) -> R<Value> {
        let mut s = String::new();
        let rest = self.src.get(self.pos..).unwrap_or("");
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(Value::Str(s));
                }
                '\\' => match chars.next() {
                    Some((_, '"')) => s.push('"'),
                    Some((_, '\\')) => s.push('\\'),
                    Some((_, 'n')) => s.push('\n'),
                    Some((_, 'r')) => s.push('\r'),
                    Some((_, 't')) => s.push('\t'),
                    _ => return self.err(self.pos + i, "invalid escape in string"),
                },
                c => s.push(c),
            }
        }
        self.err(start, "unterminated string")
    }

    /// Up to `max` bytes satisfying `f`, greedily; returns how many.
    fn run(&self, at: usize, max: usize, f: impl Fn(u8) -> bool) -> usize {
        let mut n = 0;
        while n < max && self.b.get(at + n).is_some_and(|&c| f(c)) {
            n += 1;
        }
        n
    }

    /// `ipv4_literal = @{ ASCII_DIGIT{1,3} ~ ("." ~ ASCII_DIGIT{1,3}){3} }`; end or None.
    fn ipv4_end(&self, at: usize) -> Option<usize> {
        let mut p = at;
        for i in 0..4 {
            if i > 0 {
                if self.b.get(p) != Some(&b'.') {
                    return None;
                }
                p += 1;
            }
            let n = self.run(p, 3, |c| c.is_ascii_digit());
            if n == 0 {
                return None;
            }
            p += n;
        }
        Some(p)
    }

    /// `ipv6_literal = @{ (":" | HEX{1,4}) ~ ":" ~ (HEX{1,4} | ":")* }`; end or None.
    fn ipv6_end(&self, at: usize) -> Option<usize> {
        let mut p = at;
        if self.b.get(p) == Some(&b':') {
            p += 1;
        } else {
            let n = self.run(p, 4, |c| c.is_ascii_hexdigit());
            if n == 0 {
                return None;
            }
            p += n;
        }
        if self.b.get(p) != Some(&b':') {
            return None;
        }
        p += 1;
        loop {
            let n = self.run(p, 4, |c| c.is_ascii_hexdigit());
            if n > 0 {
                p += n;
            } else if self.b.get(p) == Some(&b':') {
                p += 1;
            } else {
                return Some(p);
            }
        }
    }

    /// `"/" ~ ASCII_DIGIT{1,max}` after `at`; end or None.
    fn mask_end(&self, at: usize, max: usize) -> Option<usize> {
        if self.b.get(at) != Some(&b'/') {
            return None;
        }
        let n = self.run(at + 1, max, |c| c.is_ascii_digit());
        (n > 0).then_some(at + 1 + n)
    }

    /// `ip_literal = _{ ipv4_cidr | ipv6_cidr | ipv4 | ipv6 }`
    fn ip_literal(&mut self) -> R<Option<Value>> {
        let at = self.pos;
        let v4 = self.ipv4_end(at);
        let v6 = self.ipv6_end(at);
        let text = |end: usize| self.src.get(at..end).unwrap_or("");
        let value = if let Some(end) = v4.and_then(|e| self.mask_end(e, 2)) {
            self.pos = end;
            Value::Cidr(self.cidr(text(end), at, false)?)
        } else if let Some(end) = v6.and_then(|e| self.mask_end(e, 3)) {
            self.pos = end;
            Value::Cidr(self.cidr(text(end), at, true)?)
        } else if let Some(end) = v4 {
            self.pos = end;
            match text(end).parse::<Ipv4Addr>() {
                Ok(ip) => Value::Ip(IpAddr::V4(ip)),
                Err(e) => return self.err(at, format!("invalid IPv4 address: {e}")),
            }
        } else if let Some(end) = v6 {
            self.pos = end;
            match text(end).parse::<Ipv6Addr>() {
                Ok(ip) => Value::Ip(IpAddr::V6(ip)),
                Err(e) => return self.err(at, format!("invalid IPv6 address: {e}")),
            }
        } else {
            return Ok(None);
        };
        Ok(Some(value))
    }

    /// Parses `addr/len` like the `cidr` crate: the host bits must be zero.
    fn cidr(&self, text: &str, at: usize, v6: bool) -> R<Cidr> {
        let (addr, len) = text.split_once('/').unwrap_or((text, ""));
        let Ok(len) = len.parse::<u8>() else {
            return self.err(at, "invalid CIDR mask");
        };
        let addr: IpAddr = if v6 {
            match addr.parse::<Ipv6Addr>() {
                Ok(a) => IpAddr::V6(a),
                Err(e) => return self.err(at, format!("invalid IPv6 CIDR: {e}")),
            }
        } else {
            match addr.parse::<Ipv4Addr>() {
                Ok(a) => IpAddr::V4(a),
                Err(e) => return self.err(at, format!("invalid IPv4 CIDR: {e}")),
            }
        };
        match Cidr::new(addr, len) {
            Some(c) => Ok(c),
            None => self.err(at, "invalid CIDR: bad length or host bits set"),
        }
    }

    /// `int_literal = ${ "-"? ~ (oct_digits | "0x" ~ hex_digits | dec_digits) }`
    fn int_literal(&mut self) -> R<Value> {
        let at = self.pos;
        let neg = self.eat("-");
        let p = self.pos;
        let oct = if self.b.get(p) == Some(&b'0') {
            self.run(p + 1, usize::MAX, |c| (b'0'..=b'7').contains(&c))
        } else {
            0
        };
        let (digits, radix, end) = if oct > 0 {
            (self.src.get(p..p + 1 + oct), 8, p + 1 + oct)
        } else if self.b.get(p..p + 2) == Some(b"0x") {
            let n = self.run(p + 2, usize::MAX, |c| c.is_ascii_hexdigit());
            if n == 0 {
                self.pos = at;
                return self.err(at, "expected a string, IP address, CIDR or integer");
            }
            (self.src.get(p + 2..p + 2 + n), 16, p + 2 + n)
        } else {
            let n = self.run(p, usize::MAX, |c| c.is_ascii_digit());
            if n == 0 {
                self.pos = at;
                return self.err(at, "expected a string, IP address, CIDR or integer");
            }
            (self.src.get(p..p + n), 10, p + n)
        };
        self.pos = end;
        match i64::from_str_radix(digits.unwrap_or(""), radix) {
            Ok(v) => Ok(Value::Int(if neg { -v } else { v })),
            Err(e) => self.err(at, format!("invalid integer: {e}")),
        }
    }
}
