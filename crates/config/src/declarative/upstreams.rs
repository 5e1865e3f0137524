//! Upstreams and targets: load-balancer entities, with Kong's healthcheck defaults filled in
//! and target ports completed the way Kong's DAO does.

use serde_json::{Map, Value};

use crate::doc;
use uuid::Uuid;

use super::rec::{self, Rec};
use crate::model::{Target, Upstream};

pub(crate) fn target(r: &mut Rec, now_ms: f64) -> Option<Target> {
    let target = r.checked("target", true, |t| match rec::parse_host_port(t) {
        Ok((_, Some(p))) if p > 65535 => Err(format!(
            "Invalid target ('{t}'); not a valid hostname or ip address"
        )),
        Ok(_) => Ok(()),
        Err(()) => Err(format!(
            "Invalid target ('{t}'); not a valid hostname or ip address"
        )),
    });
    let weight = r.int("weight", 0, 65535).unwrap_or(100) as u32;
    let tags = r.tags();
    let ts = |r: &mut Rec, f| match r.raw(f) {
        None => now_ms,
        Some(v) => v.as_f64().unwrap_or_else(|| {
            r.err(f, rec::type_name("number"));
            now_ms
        }),
    };
    let created_at = ts(r, "created_at");
    let updated_at = ts(r, "updated_at");
    let target = target?;
    let full = match rec::parse_host_port(&target) {
        Ok((_, Some(_))) => target,
        _ if target.contains(':') && !target.starts_with('[') => format!("[{target}]:8000"),
        _ => format!("{target}:8000"),
    };
    Some(Target {
        id: Uuid::nil(),
        upstream: Uuid::nil(),
        target: full,
        weight,
        tags,
        created_at,
        updated_at,
    })
}

fn healthcheck_defaults() -> Value {
    serde_json::json!({
        "active": {
            "type": "http", "timeout": 1, "concurrency": 10, "http_path": "/",
            "https_verify_certificate": true,
            "healthy": {"interval": 0, "http_statuses": [200, 302], "successes": 0},
            "unhealthy": {"interval": 0, "http_statuses": [429, 404, 500, 501, 502, 503, 504, 505],
                          "tcp_failures": 0, "timeouts": 0, "http_failures": 0}
        },
        "passive": {
            "type": "http",
            "healthy": {"http_statuses": [200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
                                          300, 301, 302, 303, 304, 305, 306, 307, 308], "successes": 0},
            "unhealthy": {"http_statuses": [429, 500, 503], "tcp_failures": 0, "timeouts": 0, "http_failures": 0}
        },
        "threshold": 0
    })
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

pub(crate) fn upstream(r: &mut Rec, now: i64) -> Option<Upstream> {
    const HASH: &[&str] = &[
        "none",
        "consumer",
        "ip",
        "header",
        "cookie",
        "path",
        "query_arg",
        "uri_capture",
    ];
    let name = r.checked("name", true, |n| match rec::parse_host_port(n) {
        Err(()) => Err(format!("Invalid name ('{n}'); must be a valid hostname")),
        Ok((rec::HostKind::Ip, _)) => Err(format!("Invalid name ('{n}'); no ip addresses allowed")),
        Ok((_, Some(_))) => Err(format!("Invalid name ('{n}'); no port allowed")),
        Ok(_) => Ok(()),
    });
    let hash_on = r.one_of("hash_on", HASH).unwrap_or_else(|| "none".into());
    let hash_fallback = r
        .one_of("hash_fallback", HASH)
        .unwrap_or_else(|| "none".into());
    let algorithm = r
        .one_of(
            "algorithm",
            &[
                "consistent-hashing",
                "least-connections",
                "round-robin",
                "latency",
            ],
        )
        .unwrap_or_else(|| {
            if hash_on != "none" {
                "consistent-hashing".into()
            } else {
                "round-robin".into()
            }
        });
    let slots = r.int("slots", 10, 65536).unwrap_or(10000) as u32;
    let host_header = r.checked("host_header", false, rec::validate_host_with_optional_port);
    let mut extra = Map::new();
    for f in [
        "hash_on_header",
        "hash_fallback_header",
        "hash_on_cookie",
        "hash_on_query_arg",
        "hash_fallback_query_arg",
        "hash_on_uri_capture",
        "hash_fallback_uri_capture",
    ] {
        if let Some(s) = r.string(f) {
            extra.insert(f.into(), Value::String(s));
        }
    }
    let cookie_path = r
        .checked("hash_on_cookie_path", false, rec::validate_path)
        .unwrap_or_else(|| "/".into());
    extra.insert("hash_on_cookie_path".into(), Value::String(cookie_path));
    extra.insert(
        "use_srv_name".into(),
        Value::Bool(r.boolean("use_srv_name").unwrap_or(false)),
    );
    let mut hc = healthcheck_defaults();
    match r.raw("healthchecks") {
        None => {}
        Some(v @ doc::Value::Object(_)) => merge(&mut hc, &v.to_json()),
        Some(_) => r.err("healthchecks", rec::type_name("record")),
    }
    extra.insert("healthchecks".into(), hc);
    if hash_on == "header" && !r.present("hash_on_header") {
        r.err("hash_on_header", "required field missing");
        r.entity_err("failed conditional validation given value of field 'hash_on'");
    }
    if hash_on == "cookie" && !r.present("hash_on_cookie") {
        r.err("hash_on_cookie", "required field missing");
        r.entity_err("failed conditional validation given value of field 'hash_on'");
    }
    Some(Upstream {
        id: Uuid::nil(),
        name: name?,
        algorithm,
        hash_on,
        hash_fallback,
        slots,
        host_header,
        extra,
        tags: r.tags(),
        created_at: r.timestamp("created_at", now),
        updated_at: r.timestamp("updated_at", now),
    })
}
