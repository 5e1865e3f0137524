//! ip-restriction (`kong/plugins/ip-restriction`, PRIORITY 990): deny list first, then allow
//! list, against the client IP; CIDRs are parsed once per config.

use std::net::IpAddr;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ctx::{Exit, RequestCtx};
use crate::error::FieldError;
use crate::respond;
use crate::schema::{Ty, F};

fn ip_or_cidr(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or("");
    match parse_cidr(s) {
        Some(_) => Ok(()),
        None => Err(format!("invalid ip or cidr range: '{s}'")),
    }
}

pub(crate) static FIELDS: &[F] = &[
    F::opt("allow", Ty::StrArray).check(ip_or_cidr),
    F::opt("deny", Ty::StrArray).check(ip_or_cidr),
    F::opt("status", Ty::Num),
    F::opt("message", Ty::Str),
];

/// `config` of ip-restriction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub status: Option<f64>,
    pub message: Option<String>,
}

pub(crate) fn check(c: &Config, errs: &mut Vec<FieldError>) {
    if c.allow.as_ref().is_none_or(|a| a.is_empty()) && c.deny.as_ref().is_none_or(|a| a.is_empty())
    {
        errs.push(FieldError::key(
            "@entity",
            "at least one of these fields must be non-empty: 'config.allow', 'config.deny'",
        ));
    }
}

/// An address with its prefix length, stored as IPv6 (IPv4 mapped) for one comparison path.
#[derive(Debug, Clone, Copy)]
struct Cidr {
    net: u128,
    mask: u128,
}

fn to_v6_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn parse_cidr(s: &str) -> Option<Cidr> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u32>().ok()?)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let (max, offset) = if ip.is_ipv4() { (32, 96) } else { (128, 0) };
    let len = len.unwrap_or(max);
    if len > max {
        return None;
    }
    let bits = len + offset;
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    Some(Cidr {
        net: to_v6_bits(ip) & mask,
        mask,
    })
}

pub(crate) struct Compiled {
    pub config: Config,
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
    status: StatusCode,
    message: String,
}

pub(crate) fn compile(config: Config) -> Compiled {
    let parse = |l: &Option<Vec<String>>| -> Vec<Cidr> {
        l.iter().flatten().filter_map(|s| parse_cidr(s)).collect()
    };
    Compiled {
        allow: parse(&config.allow),
        deny: parse(&config.deny),
        status: config
            .status
            .and_then(|s| StatusCode::from_u16(s as u16).ok())
            .unwrap_or(StatusCode::FORBIDDEN),
        message: config
            .message
            .clone()
            .unwrap_or_else(|| "Your IP address is not allowed".to_string()),
        config,
    }
}

fn matches(list: &[Cidr], ip: u128) -> bool {
    list.iter().any(|c| ip & c.mask == c.net)
}

pub(crate) fn access(c: &Compiled, req: &RequestCtx<'_>) -> Option<Exit> {
    let ip = to_v6_bits(req.client_ip);
    let refused = (!c.deny.is_empty() && matches(&c.deny, ip))
        || (!c.allow.is_empty() && !matches(&c.allow, ip));
    refused.then(|| respond::error(c.status, &c.message, req.err()))
}
