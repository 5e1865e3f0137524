//! Authentication plugins through the real proxy (real upstream, real client): basic-auth,
//! jwt (every signature family, header/query/cookie, claims), key-auth `key_in_body`, and
//! the `Accept`-dependent bodies of `kong.response.error`.

#[path = "support/jwt_keys.rs"]
mod jwt_keys;
mod support;

use jwt_keys::*;
use support::*;

/// A PEM as a YAML block scalar under a key indented by `indent` spaces.
fn pem_block(pem: &str, indent: usize) -> String {
    let pad = " ".repeat(indent + 2);
    pem.lines()
        .map(|l| format!("{pad}{l}\n"))
        .collect::<String>()
}

fn config(up: &Upstream) -> String {
    let key = |k: &str, alg: &str, pem: &str| {
        format!(
            "  - key: {k}\n    algorithm: {alg}\n    rsa_public_key: |\n{}",
            pem_block(pem, 4)
        )
    };
    format!(
        r#"
_format_version: "3.0"
services:
- name: svc
  url: http://{addr}
  routes:
  - name: basic
    paths: [/basic]
    plugins:
    - name: basic-auth
      config: {{hide_credentials: true}}
  - name: basic-anon
    paths: [/basic-anon]
    plugins:
    - name: basic-auth
      config: {{anonymous: anon}}
  - name: jwt
    paths: [/jwt]
    plugins:
    - name: jwt
      config: {{claims_to_verify: [exp], cookie_names: [jwt_cookie]}}
  - name: jwt-nbf
    paths: [/jwt-nbf]
    plugins:
    - name: jwt
      config: {{claims_to_verify: [nbf]}}
  - name: jwt-kid
    paths: [/jwt-kid]
    plugins:
    - name: jwt
      config: {{key_claim_name: kid}}
  - name: body
    paths: [/body]
    plugins:
    - name: key-auth
      config: {{key_in_body: true, hide_credentials: true}}
  - name: keys
    paths: [/keys]
    plugins:
    - name: key-auth
consumers:
- username: anon
- username: alice
  custom_id: a-1
  keyauth_credentials:
  - key: alice-key
  basicauth_credentials:
  - username: alice
    password: pw-a
  jwt_secrets:
  - key: hs-key
    algorithm: HS256
    secret: hs-secret
  - key: hs384-key
    algorithm: HS384
    secret: hs384-secret
{rs}{es}{es512}{ed}- username: bob
  keyauth_credentials:
  - key: bob-key
"#,
        addr = up.addr,
        rs = key("rs-key", "RS256", RS256_PEM),
        es = key("es-key", "ES256", ES256_PEM),
        es512 = key("es512-key", "ES512", ES512_PEM),
        ed = key("ed-key", "EdDSA", EDDSA_PEM),
    )
}

#[test]
fn basic_auth() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&config(&up));
    // (path, Authorization, status, consumer upstream)
    let cases: [(&str, Option<&str>, u16, Option<&str>); 7] = [
        ("/basic", Some("Basic YWxpY2U6cHctYQ=="), 200, Some("alice")),
        ("/basic", Some("basic YWxpY2U6cHctYQ=="), 200, Some("alice")),
        ("/basic", Some("Basic YWxpY2U6d3Jvbmc="), 401, None),
        ("/basic", Some("Basic bm9ib2R5OnB3LWE="), 401, None),
        ("/basic", Some("Basic %%%"), 401, None),
        ("/basic", None, 401, None),
        ("/basic-anon", None, 200, Some("anon")),
    ];
    for (path, auth, status, consumer) in cases {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let r = get(gw.addr, path, &headers);
        assert_eq!(r.status, status, "{path} {auth:?}: {}", r.body);
        match consumer {
            Some(c) => {
                assert_eq!(r.upstream_header("x-consumer-username").as_deref(), Some(c));
                let anonymous = r.upstream_header("x-anonymous-consumer");
                if c == "alice" {
                    assert_eq!(
                        r.upstream_header("x-consumer-custom-id").as_deref(),
                        Some("a-1")
                    );
                    assert_eq!(
                        r.upstream_header("x-credential-identifier").as_deref(),
                        Some("alice")
                    );
                    assert!(anonymous.is_none());
                    assert!(
                        r.upstream_header("authorization").is_none(),
                        "hide_credentials removes Authorization"
                    );
                } else {
                    assert_eq!(anonymous.as_deref(), Some("true"));
                }
            }
            None => {
                assert_eq!(r.json()["message"], "Unauthorized");
                assert_eq!(
                    r.header("www-authenticate"),
                    Some("Basic realm=\"service\"")
                );
            }
        }
    }
    assert_eq!(up.hits(), 3);
}

#[test]
fn jwt_algorithms_and_token_locations() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&config(&up));
    let bearer = |t: &str| format!("Bearer {t}");
    for (name, token) in [
        ("HS256", HS256_VALID),
        ("HS384", HS384_VALID),
        ("RS256", RS256_VALID),
        ("ES256", ES256_VALID),
        ("ES512", ES512_VALID),
        ("EdDSA", EDDSA_VALID),
    ] {
        let r = get(gw.addr, "/jwt", &[("authorization", &bearer(token))]);
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert_eq!(
            r.upstream_header("x-consumer-username").as_deref(),
            Some("alice")
        );
        assert!(
            r.upstream_header("x-credential-identifier").is_some(),
            "{name}"
        );
    }
    let r = get(gw.addr, &format!("/jwt?jwt={HS256_VALID}"), &[]);
    assert_eq!(r.status, 200, "query: {}", r.body);
    let cookie = format!("other=1; jwt_cookie={HS256_VALID}");
    let r = get(gw.addr, "/jwt", &[("cookie", &cookie)]);
    assert_eq!(r.status, 200, "cookie: {}", r.body);
    let r = get(
        gw.addr,
        "/jwt-kid",
        &[("authorization", &bearer(HS256_KID_CLAIM))],
    );
    assert_eq!(r.status, 200, "key_claim_name: {}", r.body);
}

#[test]
fn jwt_rejections_with_kongs_bodies() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&config(&up));
    // One signature character changed (in the middle, so the base64 stays canonical).
    let mut tampered = HS256_VALID.to_string();
    let i = tampered.len() - 10;
    let c = if &tampered[i..=i] == "A" { "B" } else { "A" };
    tampered.replace_range(i..=i, c);
    let invalid_token = Some("Bearer error=\"invalid_token\"");
    // (path, token, expected body, WWW-Authenticate)
    let cases: Vec<(&str, Option<&str>, serde_json::Value, Option<&str>)> = vec![
        (
            "/jwt",
            None,
            serde_json::json!({"message": "Unauthorized"}),
            Some("Bearer"),
        ),
        (
            "/jwt",
            Some(HS256_EXPIRED),
            serde_json::json!({"exp": "token expired"}),
            invalid_token,
        ),
        (
            "/jwt-nbf",
            Some(HS256_NOT_YET),
            serde_json::json!({"nbf": "token not valid yet"}),
            invalid_token,
        ),
        (
            "/jwt-nbf",
            Some(HS256_VALID),
            serde_json::json!({"nbf": "must be a number"}),
            invalid_token,
        ),
        (
            "/jwt",
            Some(HS256_UNKNOWN_KEY),
            serde_json::json!({"message": "No credentials found for given 'iss'"}),
            invalid_token,
        ),
        (
            "/jwt",
            Some(HS256_NO_ISS),
            serde_json::json!({"message": "No mandatory 'iss' in claims"}),
            invalid_token,
        ),
        (
            "/jwt",
            Some(HS256_WRONG_SECRET),
            serde_json::json!({"message": "Invalid signature"}),
            invalid_token,
        ),
        (
            "/jwt",
            Some(&tampered),
            serde_json::json!({"message": "Invalid signature"}),
            invalid_token,
        ),
        (
            "/jwt",
            Some(ES256_AS_HS256),
            serde_json::json!({"message": "Invalid algorithm"}),
            invalid_token,
        ),
    ];
    for (path, token, body, www) in cases {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        let r = get(gw.addr, path, &headers);
        assert_eq!(r.status, 401, "{path} {token:?}: {}", r.body);
        assert_eq!(
            r.json(),
            body,
            "{path}: jwt answers with exit (no request_id)"
        );
        assert_eq!(r.header("www-authenticate"), www, "{path} {body}");
    }
    let r = get(gw.addr, "/jwt", &[("authorization", "Bearer not.a-token")]);
    assert_eq!(r.status, 401);
    assert!(r.json()["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("Bad token; ")));
    assert_eq!(up.hits(), 0);
}

const BOUNDARY: &str = "gh-test-boundary";

fn multipart(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (n, v) in fields {
        out.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{v}\r\n"
        ));
    }
    out.push_str(&format!("--{BOUNDARY}--\r\n"));
    out
}

#[test]
fn key_auth_key_in_body_and_hide_credentials() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&config(&up));
    let form = "application/x-www-form-urlencoded";
    let json = "application/json";
    let mp_ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let mp_in = multipart(&[("apikey", "bob-key"), ("note", "hi there")]);
    let mp_out = multipart(&[("note", "hi there")]);
    // (content type, body, status, consumer or message, body the upstream got)
    let cases: Vec<(&str, String, u16, &str, Option<String>)> = vec![
        (
            form,
            "apikey=alice-key&x=1".into(),
            200,
            "alice",
            Some("x=1".into()),
        ),
        (
            form,
            "x=1&apikey=alice%2Dkey".into(),
            200,
            "alice",
            Some("x=1".into()),
        ),
        (
            json,
            r#"{"apikey":"bob-key","a":1}"#.into(),
            200,
            "bob",
            Some(r#"{"a":1}"#.into()),
        ),
        (&mp_ct, mp_in, 200, "bob", Some(mp_out)),
        (
            json,
            r#"{"apikey":["a","b"]}"#.into(),
            401,
            "Duplicate API key found",
            None,
        ),
        (
            form,
            "apikey=a&apikey=b".into(),
            401,
            "Duplicate API key found",
            None,
        ),
        (form, "x=1".into(), 401, "No API key found in request", None),
        (
            json,
            r#"{"apikey":"nope"}"#.into(),
            401,
            "Unauthorized",
            None,
        ),
        (
            "text/plain",
            "apikey=alice-key".into(),
            401,
            "No API key found in request",
            None,
        ),
    ];
    for (ct, body, status, who, upstream_body) in cases {
        let r = send(gw.addr, "POST", "/body", &[("content-type", ct)], &body);
        assert_eq!(r.status, status, "{ct} {body:?}: {}", r.body);
        match upstream_body {
            Some(b) => {
                assert_eq!(
                    r.upstream_header("x-consumer-username").as_deref(),
                    Some(who)
                );
                assert_eq!(
                    r.json()["body"],
                    b.as_str(),
                    "{ct}: key removed from the body"
                );
                assert_eq!(
                    r.upstream_header("content-length"),
                    Some(b.len().to_string()),
                    "Content-Length fixed"
                );
            }
            None => assert_eq!(r.json()["message"], who, "{ct} {body:?}"),
        }
    }
    // The header still wins, and a body is then passed on untouched.
    let r = send(
        gw.addr,
        "POST",
        "/body",
        &[("apikey", "alice-key"), ("content-type", form)],
        "apikey=bob-key",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.upstream_header("x-consumer-username").as_deref(),
        Some("alice")
    );
    assert_eq!(r.json()["body"], "apikey=bob-key");
    // Without key_in_body the body is not looked at (and streams).
    let r = send(
        gw.addr,
        "POST",
        "/keys",
        &[("content-type", form)],
        "apikey=alice-key",
    );
    assert_eq!(r.status, 401);
}

#[test]
fn error_bodies_follow_accept() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&config(&up));
    let msg = "No API key found in request";
    // (Accept, Content-Type, body must contain)
    let cases: [(Option<&str>, &str, &str); 8] = [
        (
            None,
            "application/json; charset=utf-8",
            "\"message\":\"No API key found in request\"",
        ),
        (
            Some("*/*"),
            "application/json; charset=utf-8",
            "\"request_id\":\"",
        ),
        (
            Some("image/png"),
            "application/json; charset=utf-8",
            "\"message\"",
        ),
        (
            Some("text/html"),
            "text/html; charset=utf-8",
            "<p>No API key found in request.</p>",
        ),
        (
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            "text/html; charset=utf-8",
            "<title>Error</title>",
        ),
        (
            Some("application/xml"),
            "application/xml; charset=utf-8",
            "<message>No API key found in request</message>",
        ),
        (
            Some("text/html;q=0.5, text/plain"),
            "text/plain; charset=utf-8",
            "No API key found in request\nrequest_id: ",
        ),
        (Some("text/*"), "text/plain; charset=utf-8", msg),
    ];
    for (accept, ct, needle) in cases {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
        let r = get(gw.addr, "/keys", &headers);
        assert_eq!(r.status, 401, "{accept:?}");
        assert_eq!(r.header("content-type"), Some(ct), "{accept:?}");
        assert!(r.body.contains(needle), "{accept:?}: {}", r.body);
        if let Some(id) = r.header("x-kong-request-id") {
            assert!(r.body.contains(id), "{accept:?}: request_id in the body");
        }
        assert_eq!(r.header("www-authenticate"), Some("Key"));
    }
    // The gateway's own errors too.
    let r = get(gw.addr, "/nowhere", &[("accept", "application/xml")]);
    assert_eq!(r.status, 404);
    assert!(r
        .body
        .contains("<message>no Route matched with those values</message>"));
    assert!(r.body.contains("<requestid>"));
    // Other plugins' errors too.
    let r = get(gw.addr, "/basic", &[("accept", "text/html")]);
    assert!(r.body.contains("<p>Unauthorized.</p>"), "{}", r.body);
}
