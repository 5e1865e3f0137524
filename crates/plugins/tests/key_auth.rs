//! key-auth behaviours documented by Kong (`kong/plugins/key-auth`, spec 03-access).
mod common;
use common::*;

fn with(cfg: &str) -> gatehouse_plugins::Plugins {
    plugins(&format!(
        "{BASE}plugins:\n- name: key-auth\n  route: r0\n  config: {cfg}\n"
    ))
}

#[test]
fn table() {
    struct Case {
        cfg: &'static str,
        req: fn() -> Req,
        status: u16,
        message: Option<&'static str>,
        www_auth: Option<&'static str>,
    }
    let cases = [
        Case {
            cfg: "{}",
            req: || Req::get("/r0"),
            status: 401,
            message: Some("No API key found in request"),
            www_auth: Some("Key"),
        },
        Case {
            cfg: "{realm: service}",
            req: || Req::get("/r0"),
            status: 401,
            message: Some("No API key found in request"),
            www_auth: Some("Key realm=\"service\""),
        },
        Case {
            cfg: "{}",
            req: || Req::get("/r0?apikey="),
            status: 401,
            message: Some("No API key found in request"),
            www_auth: Some("Key"),
        },
        Case {
            cfg: "{}",
            req: || Req::get("/r0?apikey=nope"),
            status: 401,
            message: Some("Unauthorized"),
            www_auth: Some("Key"),
        },
        Case {
            cfg: "{}",
            req: || Req::get("/r0").header("apikey", "nope"),
            status: 401,
            message: Some("Unauthorized"),
            www_auth: Some("Key"),
        },
        Case {
            cfg: "{}",
            req: || Req::get("/r0?apikey=a&apikey=b"),
            status: 401,
            message: Some("Duplicate API key found"),
            www_auth: Some("Key"),
        },
        Case {
            cfg: "{}",
            req: || Req::get("/r0").header("apikey", "a").header("apikey", "b"),
            status: 401,
            message: Some("Duplicate API key found"),
            www_auth: Some("Key"),
        },
        Case {
            cfg: "{}",
            req: || Req::get("/r0?apikey=alice-key"),
            status: 200,
            message: None,
            www_auth: None,
        },
        Case {
            cfg: "{}",
            req: || Req::get("/r0").header("ApiKey", "alice-key"),
            status: 200,
            message: None,
            www_auth: None,
        },
        Case {
            cfg: "{key_in_header: false}",
            req: || Req::get("/r0").header("apikey", "alice-key"),
            status: 401,
            message: Some("No API key found in request"),
            www_auth: Some("Key"),
        },
        Case {
            cfg: "{key_in_query: false}",
            req: || Req::get("/r0?apikey=alice-key"),
            status: 401,
            message: Some("No API key found in request"),
            www_auth: Some("Key"),
        },
        Case {
            cfg: "{key_names: [x-key, apikey]}",
            req: || Req::get("/r0?apikey=bob-key"),
            status: 200,
            message: None,
            www_auth: None,
        },
        Case {
            cfg: "{key_names: [x-key]}",
            req: || Req::get("/r0").header("x-key", "bob-key"),
            status: 200,
            message: None,
            www_auth: None,
        },
        Case {
            cfg: "{anonymous: anon}",
            req: || Req::get("/r0"),
            status: 200,
            message: None,
            www_auth: None,
        },
        Case {
            cfg: "{anonymous: ghost}",
            req: || Req::get("/r0"),
            status: 500,
            message: Some("anonymous consumer ghost is configured but doesn't exist"),
            www_auth: None,
        },
        Case {
            cfg: "{run_on_preflight: false}",
            req: || {
                let mut r = Req::get("/r0");
                r.method = http::Method::OPTIONS;
                r
            },
            status: 200,
            message: None,
            www_auth: None,
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        let p = with(c.cfg);
        let o = run(&p, (c.req)());
        assert_eq!(o.status.as_u16(), c.status, "case {i} ({})", c.cfg);
        if let Some(m) = c.message {
            let b = o.body();
            assert_eq!(b["message"], m, "case {i}");
            assert_eq!(
                b["request_id"], "rid-1",
                "case {i}: kong.response.error carries request_id"
            );
            assert_eq!(
                o.resp("content-type"),
                Some("application/json; charset=utf-8")
            );
        }
        assert_eq!(o.resp("www-authenticate"), c.www_auth, "case {i}");
    }
}

#[test]
fn consumer_headers_on_success_and_anonymous() {
    let cfg = config(&format!("{BASE}plugins:\n- name: key-auth\n  route: r0\n"));
    let p = gatehouse_plugins::compile(&cfg, &gatehouse_plugins::RateLimitStore::new()).unwrap();
    let alice = &cfg.consumers[0];
    let cred = &cfg.keyauth_credentials[0];
    let o = run(
        &p,
        Req::get("/r0?apikey=alice-key")
            .header("x-anonymous-consumer", "true")
            .header("x-consumer-username", "spoof"),
    );
    assert!(o.exit.is_none());
    assert_eq!(o.up("x-consumer-id"), Some(alice.id.to_string().as_str()));
    assert_eq!(o.up("x-consumer-custom-id"), Some("a-1"));
    assert_eq!(o.up("x-consumer-username"), Some("alice"));
    assert_eq!(
        o.up("x-credential-identifier"),
        Some(cred.id.to_string().as_str())
    );
    assert_eq!(o.up("x-anonymous-consumer"), None);
    assert_eq!(o.state.consumer, Some(0));

    // bob has no custom_id: a spoofed header is cleared.
    let o = run(
        &p,
        Req::get("/r0")
            .header("apikey", "bob-key")
            .header("x-consumer-custom-id", "spoof"),
    );
    assert_eq!(o.up("x-consumer-custom-id"), None);
    assert_eq!(o.up("x-consumer-username"), Some("bob"));

    let p = with("{anonymous: anon}");
    let o = run(
        &p,
        Req::get("/r0?apikey=wrong").header("x-credential-identifier", "spoof"),
    );
    assert!(o.exit.is_none());
    assert_eq!(o.up("x-anonymous-consumer"), Some("true"));
    assert_eq!(o.up("x-consumer-username"), Some("anon"));
    assert_eq!(o.up("x-credential-identifier"), None);
    assert_eq!(o.state.credential, None);
    // anonymous by id works as well
    let mut cfg = cfg;
    let anon_id = cfg.consumers[2].id;
    cfg.plugins[0].config = serde_json::json!({ "anonymous": anon_id.to_string() });
    let p = gatehouse_plugins::compile(&cfg, &gatehouse_plugins::RateLimitStore::new()).unwrap();
    let o = run(&p, Req::get("/r0"));
    assert!(o.exit.is_none());
    assert_eq!(o.up("x-consumer-username"), Some("anon"));
}

#[test]
fn hide_credentials_strips_header_and_query() {
    let p = with("{hide_credentials: true}");
    let o = run(&p, Req::get("/r0?a=1&apikey=alice-key&b=2"));
    assert!(o.exit.is_none());
    assert_eq!(o.state.query_rewrite.as_deref(), Some("a=1&b=2"));
    let o = run(&p, Req::get("/r0?x=1").header("apikey", "alice-key"));
    assert!(o.exit.is_none());
    assert_eq!(o.up("apikey"), None);
    assert_eq!(
        o.state.query_rewrite, None,
        "query untouched when the key was not in it"
    );
    let p = with("{}");
    let o = run(&p, Req::get("/r0").header("apikey", "alice-key"));
    assert_eq!(o.up("apikey"), Some("alice-key"));
}

#[test]
fn only_on_its_route() {
    let p = with("{}");
    assert!(run(&p, Req::get("/r1").route(Some(1), Some(0)))
        .exit
        .is_none());
    assert!(run(&p, Req::get("/r0")).exit.is_some());
}
