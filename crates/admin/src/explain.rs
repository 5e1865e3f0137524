//! `gatehouse explain` and `GET /debug/explain`: which route a request would take, why (Kong's
//! priority bits), what would go upstream, and which candidates lost. Off the hot path: it
//! evaluates every route.

use axum::http::Uri;
use serde_json::{json, Value};

use gatehouse_config::{Config, Protocol};
use gatehouse_proxy::Snapshot;
use gatehouse_router::{path, Request, RequestExtra};
use gatehouse_router::{Candidate, Outcome, PriorityBreakdown};

/// Headers given on the command line or the query string.
struct Given<'a>(&'a [(String, String)]);

impl gatehouse_router::Headers for Given<'_> {
    fn any_value(&self, lower_name: &str, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.0
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case(lower_name) && f(v))
    }
}

fn route_label(config: &Config, route: usize) -> Value {
    let r = &config.routes[route];
    json!({ "id": r.id, "name": r.name })
}

fn breakdown(b: &PriorityBreakdown) -> Value {
    match b {
        PriorityBreakdown::Classic {
            match_weight,
            plain_host_only,
            header_count,
            regex_url,
            regex_priority,
            uri_length,
        } => json!({
            "match_weight": match_weight,
            "plain_host_only": plain_host_only,
            "header_count": header_count,
            "regex_url": regex_url,
            "regex_priority": regex_priority,
            "uri_length": uri_length,
        }),
        PriorityBreakdown::Expression { priority } => json!({ "expression_priority": priority }),
    }
}

fn candidate(config: &Config, c: &Candidate) -> Value {
    let outcome = match &c.outcome {
        Outcome::Matched { .. } => json!("matched, lower priority"),
        Outcome::Rejected { field } => json!(format!("{field} did not match")),
    };
    json!({
        "route": route_label(config, c.route),
        "priority": c.priority,
        "breakdown": breakdown(&c.breakdown),
        "outcome": outcome,
    })
}

/// Explains how `method url` (with `headers`) would be routed by `snap`.
pub fn explain(
    snap: &Snapshot,
    method: &str,
    url: &str,
    headers: &[(String, String)],
) -> Result<Value, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("invalid URL '{url}': {e}"))?;
    let https = uri.scheme_str() == Some("https");
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    let host = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map_or(authority, |(_, v)| v.as_str());
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let mut norm = String::new();
    path::normalize(uri.path(), &mut norm).map_err(|_| format!("invalid path '{}'", uri.path()))?;
    let sni = https.then(|| uri.host().unwrap_or(""));
    let req = Request {
        method,
        host,
        dst_port: port,
        path: &norm,
        sni,
        https,
        headers: &Given(headers),
    };
    let extra = RequestExtra::default().with_query(uri.query().unwrap_or(""));
    let e = snap.router().explain_with(&req, &extra);
    let config = &snap.config;

    let mut out = json!({
        "request": { "method": method, "url": url, "normalized_path": norm },
        "matched": null,
        "rejected_before": e.rejected_before.iter().map(|c| candidate(config, c)).collect::<Vec<_>>(),
        "shadowed": e.shadowed.iter().map(|c| candidate(config, c)).collect::<Vec<_>>(),
        "evaluated": e.evaluated,
    });
    if let (Some(m), Some(w)) = (e.matched, &e.winner) {
        let route = &config.routes[m.route];
        let upstream = m.service.map(|s| {
            let svc = &config.services[s];
            let mut p = String::new();
            path::upstream_path(svc.path.as_deref(), &norm, m.strip_len, &mut p);
            if let Some(q) = uri.query() {
                p.push('?');
                p.push_str(q);
            }
            let scheme = match svc.protocol {
                Protocol::Https | Protocol::Grpcs => "https",
                _ => "http",
            };
            let host_header = if route.preserve_host {
                host.to_string()
            } else {
                svc.host.clone()
            };
            json!({
                "service": { "id": svc.id, "name": svc.name },
                "url": format!("{scheme}://{}:{}{p}", svc.host, svc.port),
                "host_header": host_header,
            })
        });
        out["matched"] = json!({
            "route": route_label(config, m.route),
            "priority": w.priority,
            "breakdown": breakdown(&w.breakdown),
            "stripped_prefix": m.prefix(&norm),
            "upstream": upstream,
        });
    }
    Ok(out)
}

/// The human-readable form printed by `gatehouse explain`.
pub fn to_text(v: &Value) -> String {
    let mut s = String::new();
    let name = |r: &Value| {
        r["name"]
            .as_str()
            .map_or_else(|| r["id"].to_string(), str::to_string)
    };
    match &v["matched"] {
        Value::Null => s.push_str(
            "no route matched (Kong answers 404 \"no Route matched with those values\")\n",
        ),
        m => {
            s.push_str(&format!(
                "matched route: {} ({})\n",
                name(&m["route"]),
                m["route"]["id"]
            ));
            s.push_str(&format!(
                "  priority {} = {}\n",
                m["priority"], m["breakdown"]
            ));
            if let Some(p) = m["stripped_prefix"].as_str() {
                s.push_str(&format!("  stripped prefix: {p}\n"));
            }
            match &m["upstream"] {
                Value::Null => s.push_str(
                    "  no service: Kong answers 503 \"no Service found with those values\"\n",
                ),
                u => s.push_str(&format!(
                    "  upstream: {} (Host: {}) via service {}\n",
                    u["url"].as_str().unwrap_or(""),
                    u["host_header"].as_str().unwrap_or(""),
                    name(&u["service"])
                )),
            }
        }
    }
    for (title, key) in [
        ("evaluated before and rejected", "rejected_before"),
        ("also matched but lost on priority", "shadowed"),
    ] {
        if let Some(list) = v[key].as_array().filter(|l| !l.is_empty()) {
            s.push_str(&format!("{title}:\n"));
            for c in list {
                s.push_str(&format!(
                    "  {} priority {}: {}\n",
                    name(&c["route"]),
                    c["priority"],
                    c["outcome"].as_str().unwrap_or("")
                ));
            }
        }
    }
    s.push_str(&format!("routes evaluated: {}\n", v["evaluated"]));
    s
}

/// `GET /debug/explain?method=GET&url=http://host/path&header=x-a:%201` (loopback clients only).
pub async fn debug_explain(
    axum::extract::State(s): axum::extract::State<crate::AdminState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    if !peer.ip().to_canonical().is_loopback() {
        return crate::kong_error::message(
            StatusCode::FORBIDDEN,
            "/debug/explain is only served to loopback clients",
        );
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let Some(url) = get("url") else {
        return crate::kong_error::message(StatusCode::BAD_REQUEST, "missing 'url' query argument");
    };
    let method = get("method").unwrap_or("GET");
    let headers: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k == "header")
        .filter_map(|(_, v)| v.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let snap = s.control.cell().load_full();
    match explain(&snap, method, url, &headers) {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => crate::kong_error::message(StatusCode::BAD_REQUEST, e),
    }
}
