//! request-termination, acl and ip-restriction behaviours from Kong's docs and specs.
#![allow(clippy::type_complexity)]
mod common;
use common::*;

fn one(name: &str, cfg: &str) -> gatehouse_plugins::Plugins {
    plugins(&format!("{BASE}plugins:\n- name: key-auth\n  route: r0\n- name: {name}\n  route: r0\n  config: {cfg}\n"))
}

#[test]
fn request_termination_table() {
    // (config, request, status, body, content-type)
    let cases: &[(&str, &str, u16, &str, Option<&str>)] = &[
        (
            "{}",
            "/r0?apikey=bob-key",
            503,
            r#"{"message":"Service unavailable"}"#,
            Some("application/json; charset=utf-8"),
        ),
        (
            "{status_code: 404}",
            "/r0?apikey=bob-key",
            404,
            r#"{"message":"Not found"}"#,
            Some("application/json; charset=utf-8"),
        ),
        ("{status_code: 418}", "/r0?apikey=bob-key", 418, "", None),
        (
            "{status_code: 403, message: go away}",
            "/r0?apikey=bob-key",
            403,
            r#"{"message":"go away"}"#,
            Some("application/json; charset=utf-8"),
        ),
        (
            "{status_code: 200, body: '<h1>hi</h1>', content_type: text/html}",
            "/r0?apikey=bob-key",
            200,
            "<h1>hi</h1>",
            Some("text/html"),
        ),
        ("{trigger: x-stop}", "/r0?apikey=bob-key", 200, "", None),
        (
            "{trigger: x-stop}",
            "/r0?apikey=bob-key&x-stop=1",
            503,
            r#"{"message":"Service unavailable"}"#,
            Some("application/json; charset=utf-8"),
        ),
    ];
    for (i, (cfg, path, status, body, ct)) in cases.iter().enumerate() {
        let p = one("request-termination", cfg);
        let o = run(&p, Req::get(path));
        assert_eq!(o.status.as_u16(), *status, "case {i}");
        if *status != 200 {
            let e = o.exit.as_ref().unwrap();
            assert_eq!(std::str::from_utf8(&e.body).unwrap(), *body, "case {i}");
            assert_eq!(o.resp("content-type"), *ct, "case {i}");
        }
    }
    let p = one("request-termination", "{trigger: x-stop}");
    assert_eq!(
        run(&p, Req::get("/r0?apikey=bob-key").header("X-Stop", "y"))
            .status
            .as_u16(),
        503
    );
}

#[test]
fn request_termination_echo() {
    let p = one("request-termination", "{echo: true, status_code: 200}");
    let mut r = Req::get("/r0?apikey=bob-key&a=1&a=2&flag").header("x-h", "v");
    r.method = http::Method::POST;
    let o = run(&p, r);
    assert_eq!(o.status.as_u16(), 200);
    let b = o.body();
    assert_eq!(b["message"], serde_json::Value::Null);
    assert_eq!(b["request"]["method"], "POST");
    assert_eq!(b["request"]["path"], "/r0");
    assert_eq!(b["request"]["headers"]["x-h"], "v");
    assert_eq!(b["request"]["query"]["a"], serde_json::json!(["1", "2"]));
    assert_eq!(b["request"]["query"]["flag"], true);
    assert_eq!(b["matched_route"]["name"], "r0");
    assert_eq!(b["matched_service"]["name"], "svc");
    assert!(b["kong"]["worker_pid"].is_number());
}

#[test]
fn acl_table() {
    // (config, key or none, status, message, X-Consumer-Groups upstream)
    let cases: &[(&str, Option<&str>, u16, Option<&str>, Option<&str>)] = &[
        (
            "{allow: [admins]}",
            Some("alice-key"),
            200,
            None,
            Some("admins, users"),
        ),
        (
            "{allow: [admins]}",
            Some("bob-key"),
            403,
            Some("You cannot consume this service"),
            None,
        ),
        (
            "{deny: [admins]}",
            Some("alice-key"),
            403,
            Some("You cannot consume this service"),
            None,
        ),
        (
            "{deny: [admins]}",
            Some("bob-key"),
            200,
            None,
            Some("users"),
        ),
        (
            "{allow: [users], hide_groups_header: true}",
            Some("bob-key"),
            200,
            None,
            None,
        ),
        (
            "{allow: [nobody-has-this]}",
            Some("alice-key"),
            403,
            Some("You cannot consume this service"),
            None,
        ),
    ];
    for (i, (cfg, key, status, msg, groups)) in cases.iter().enumerate() {
        let p = one("acl", cfg);
        let path = match key {
            Some(k) => format!("/r0?apikey={k}"),
            None => "/r0".into(),
        };
        let o = run(&p, Req::get(&path).header("x-consumer-groups", "spoofed"));
        assert_eq!(o.status.as_u16(), *status, "case {i}");
        if let Some(m) = msg {
            assert_eq!(o.body()["message"], *m, "case {i}");
            assert_eq!(o.body()["request_id"], "rid-1", "case {i}");
        } else if let Some(g) = groups {
            assert_eq!(o.up("x-consumer-groups"), Some(*g), "case {i}");
        } else {
            assert_eq!(
                o.up("x-consumer-groups"),
                Some("spoofed"),
                "case {i}: hidden, left as is"
            );
        }
    }
    // no authentication plugin at all → 401
    let p = plugins(&format!(
        "{BASE}plugins:\n- name: acl\n  route: r0\n  config: {{allow: [users]}}\n"
    ));
    let o = run(&p, Req::get("/r0"));
    assert_eq!(o.status.as_u16(), 401);
    assert_eq!(o.body()["message"], "Unauthorized");
    // anonymous consumer without groups is refused by an allow list
    let p = plugins(&format!("{BASE}plugins:\n- name: key-auth\n  route: r0\n  config: {{anonymous: anon}}\n- name: acl\n  route: r0\n  config: {{allow: [users]}}\n"));
    assert_eq!(run(&p, Req::get("/r0")).status.as_u16(), 403);
}

#[test]
fn ip_restriction_table() {
    let cases: &[(&str, &str, u16)] = &[
        ("{allow: [10.0.0.0/8]}", "10.1.2.3", 200),
        ("{allow: [10.0.0.0/8]}", "11.1.2.3", 403),
        ("{deny: [10.0.0.1]}", "10.0.0.1", 403),
        ("{deny: [10.0.0.1]}", "10.0.0.2", 200),
        ("{allow: [0.0.0.0/0], deny: [10.0.0.0/24]}", "10.0.0.9", 403),
        ("{allow: ['2001:db8::/32']}", "2001:db8::1", 200),
        ("{allow: ['2001:db8::/32']}", "2001:db9::1", 403),
        (
            "{allow: [1.2.3.4], status: 401, message: nope}",
            "9.9.9.9",
            401,
        ),
    ];
    for (i, (cfg, ip, status)) in cases.iter().enumerate() {
        let p = plugins(&format!(
            "{BASE}plugins:\n- name: ip-restriction\n  route: r0\n  config: {cfg}\n"
        ));
        let o = run(&p, Req::get("/r0").ip(ip));
        assert_eq!(o.status.as_u16(), *status, "case {i}");
        if *status != 200 {
            let expected = if cfg.contains("nope") {
                "nope"
            } else {
                "Your IP address is not allowed"
            };
            assert_eq!(o.body()["message"], expected, "case {i}");
            assert_eq!(o.body()["request_id"], "rid-1");
        }
    }
}
