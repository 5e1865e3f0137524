//! basic-auth and jwt behaviours documented by Kong (spec `03-plugins/{10-basic-auth,
//! 16-jwt}`): messages, status codes, `WWW-Authenticate`, consumer headers, anonymous.
mod common;
use common::*;

use base64::Engine;

const USERS: &str = r#"
- username: carol
  custom_id: c-1
  basicauth_credentials:
  - username: carol
    password: s3cret:x
  jwt_secrets:
  - key: carol-iss
    secret: carol-secret
  - key: carol-b64
    secret: "c2VjcmV0LWJ5dGVz"
    algorithm: HS512
"#;

fn yaml(plugin: &str, cfg: &str, extra: &str) -> String {
    format!("{BASE}{USERS}{extra}plugins:\n- name: {plugin}\n  route: r0\n  config: {cfg}\n")
}

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

#[test]
fn basic_auth_table() {
    struct Case {
        cfg: &'static str,
        headers: Vec<(&'static str, String)>,
        status: u16,
        www: Option<&'static str>,
    }
    let cases = [
        Case {
            cfg: "{}",
            headers: vec![],
            status: 401,
            www: Some("Basic realm=\"service\""),
        },
        Case {
            cfg: "{realm: api}",
            headers: vec![],
            status: 401,
            www: Some("Basic realm=\"api\""),
        },
        Case {
            cfg: "{}",
            headers: vec![("authorization", "Bearer x".into())],
            status: 401,
            www: Some("Basic realm=\"service\""),
        },
        Case {
            cfg: "{}",
            headers: vec![("authorization", basic("carol:wrong"))],
            status: 401,
            www: Some("Basic realm=\"service\""),
        },
        Case {
            cfg: "{}",
            headers: vec![("authorization", basic("nobody:s3cret:x"))],
            status: 401,
            www: Some("Basic realm=\"service\""),
        },
        Case {
            cfg: "{}",
            headers: vec![("authorization", basic("carol:s3cret:x"))],
            status: 200,
            www: None,
        },
        Case {
            cfg: "{}",
            headers: vec![(
                "authorization",
                basic("carol:s3cret:x").replace("Basic", "basic"),
            )],
            status: 200,
            www: None,
        },
        Case {
            cfg: "{}",
            headers: vec![("proxy-authorization", basic("carol:s3cret:x"))],
            status: 200,
            www: None,
        },
        // an unknown user in Proxy-Authorization falls back to Authorization
        Case {
            cfg: "{}",
            headers: vec![
                ("proxy-authorization", basic("x:y")),
                ("authorization", basic("carol:s3cret:x")),
            ],
            status: 200,
            www: None,
        },
        // a known user with a bad password in Proxy-Authorization does not
        Case {
            cfg: "{}",
            headers: vec![
                ("proxy-authorization", basic("carol:bad")),
                ("authorization", basic("carol:s3cret:x")),
            ],
            status: 401,
            www: Some("Basic realm=\"service\""),
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        let p = plugins(&yaml("basic-auth", c.cfg, ""));
        let mut r = Req::get("/r0");
        for (k, v) in &c.headers {
            r = r.header(k, v);
        }
        let o = run(&p, r);
        assert_eq!(o.status.as_u16(), c.status, "case {i}");
        assert_eq!(o.resp("www-authenticate"), c.www, "case {i}");
        if c.status == 401 {
            assert_eq!(o.body()["message"], "Unauthorized", "case {i}");
            assert_eq!(o.body()["request_id"], "rid-1", "case {i}");
        } else {
            assert_eq!(o.up("x-consumer-username"), Some("carol"), "case {i}");
            assert_eq!(o.up("x-consumer-custom-id"), Some("c-1"), "case {i}");
            assert_eq!(o.up("x-credential-identifier"), Some("carol"), "case {i}");
            assert!(o.up("x-anonymous-consumer").is_none());
            // credentials stay unless hide_credentials
            assert!(o.up("authorization").is_some() || o.up("proxy-authorization").is_some());
        }
    }
}

#[test]
fn basic_auth_hide_and_anonymous() {
    let p = plugins(&yaml("basic-auth", "{hide_credentials: true}", ""));
    let o = run(
        &p,
        Req::get("/r0")
            .header("authorization", &basic("carol:s3cret:x"))
            .header("proxy-authorization", "x"),
    );
    assert_eq!(o.status.as_u16(), 200);
    assert!(o.up("authorization").is_none());
    assert!(o.up("proxy-authorization").is_none());

    let p = plugins(&yaml("basic-auth", "{anonymous: anon}", ""));
    let o = run(
        &p,
        Req::get("/r0").header("authorization", &basic("carol:bad")),
    );
    assert!(o.exit.is_none());
    assert_eq!(o.up("x-consumer-username"), Some("anon"));
    assert_eq!(o.up("x-anonymous-consumer"), Some("true"));

    let p = plugins(&yaml("basic-auth", "{anonymous: ghost}", ""));
    let o = run(&p, Req::get("/r0"));
    assert_eq!(o.status.as_u16(), 500);
    assert_eq!(
        o.body()["message"],
        "anonymous consumer ghost is configured but doesn't exist"
    );
}

// ---- jwt ----

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn hs_token(alg: &str, claims: serde_json::Value, secret: &[u8]) -> String {
    use hmac::Mac;
    let head = b64(serde_json::json!({"typ": "JWT", "alg": alg})
        .to_string()
        .as_bytes());
    let body = b64(claims.to_string().as_bytes());
    let data = format!("{head}.{body}");
    let sig = match alg {
        "HS256" => {
            let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            m.update(data.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut m = hmac::Hmac::<sha2::Sha512>::new_from_slice(secret).unwrap();
            m.update(data.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
    };
    format!("{data}.{}", b64(&sig))
}

const NOW: i64 = 1_700_000_000_000;

#[test]
fn jwt_table() {
    let good = || {
        hs_token(
            "HS256",
            serde_json::json!({"iss": "carol-iss"}),
            b"carol-secret",
        )
    };
    struct Case {
        cfg: &'static str,
        req: Box<dyn Fn() -> Req>,
        status: u16,
        body: serde_json::Value,
        www: Option<&'static str>,
    }
    let bearer =
        |t: String| move || Req::get("/r0").header("authorization", &format!("Bearer {t}"));
    let err = "Bearer error=\"invalid_token\"";
    let m = |s: &str| serde_json::json!({"message": s});
    let cases = vec![
        Case {
            cfg: "{}",
            req: Box::new(|| Req::get("/r0")),
            status: 401,
            body: m("Unauthorized"),
            www: Some("Bearer"),
        },
        Case {
            cfg: "{realm: kong}",
            req: Box::new(|| Req::get("/r0")),
            status: 401,
            body: m("Unauthorized"),
            www: Some("Bearer realm=\"kong\""),
        },
        Case {
            cfg: "{}",
            req: Box::new(bearer(good())),
            status: 200,
            body: serde_json::Value::Null,
            www: None,
        },
        Case {
            cfg: "{}",
            req: Box::new(move || Req::get(&format!("/r0?jwt={}", good()))),
            status: 200,
            body: serde_json::Value::Null,
            www: None,
        },
        Case {
            cfg: "{cookie_names: [tok]}",
            req: Box::new(move || {
                Req::get("/r0").header("cookie", &format!("a=b; tok={}", good()))
            }),
            status: 200,
            body: serde_json::Value::Null,
            www: None,
        },
        Case {
            cfg: "{header_names: [x-jwt]}",
            req: Box::new(move || Req::get("/r0").header("x-jwt", &format!("bearer {}", good()))),
            status: 200,
            body: serde_json::Value::Null,
            www: None,
        },
        Case {
            cfg: "{}",
            req: Box::new(move || {
                Req::get(&format!(
                    "/r0?jwt={}",
                    hs_token(
                        "HS256",
                        serde_json::json!({"iss": "carol-iss", "x": 1}),
                        b"carol-secret"
                    )
                ))
                .header("authorization", &format!("Bearer {}", good()))
            }),
            status: 401,
            body: m("Multiple tokens provided"),
            www: Some(err),
        },
        Case {
            cfg: "{}",
            req: Box::new(bearer("a.b.c".into())),
            status: 401,
            body: m("Bad token; invalid JSON"),
            www: Some(err),
        },
        Case {
            cfg: "{}",
            req: Box::new(bearer(format!(
                "{}.{}.x",
                b64(b"{\"alg\":\"none\"}"),
                b64(b"{}")
            ))),
            status: 401,
            body: m("Bad token; invalid alg"),
            www: Some(err),
        },
        Case {
            cfg: "{}",
            req: Box::new(bearer(hs_token(
                "HS256",
                serde_json::json!({"sub": 1}),
                b"k",
            ))),
            status: 401,
            body: m("No mandatory 'iss' in claims"),
            www: Some(err),
        },
        Case {
            cfg: "{}",
            req: Box::new(bearer(hs_token(
                "HS256",
                serde_json::json!({"iss": ""}),
                b"k",
            ))),
            status: 401,
            body: m("Invalid 'iss' in claims"),
            www: Some(err),
        },
        Case {
            cfg: "{}",
            req: Box::new(bearer(hs_token(
                "HS256",
                serde_json::json!({"iss": "nope"}),
                b"k",
            ))),
            status: 401,
            body: m("No credentials found for given 'iss'"),
            www: Some(err),
        },
        Case {
            cfg: "{key_claim_name: kid}",
            req: Box::new(bearer(hs_token(
                "HS256",
                serde_json::json!({"kid": "carol-iss"}),
                b"carol-secret",
            ))),
            status: 200,
            body: serde_json::Value::Null,
            www: None,
        },
        Case {
            cfg: "{}",
            req: Box::new(bearer(hs_token(
                "HS512",
                serde_json::json!({"iss": "carol-iss"}),
                b"carol-secret",
            ))),
            status: 401,
            body: m("Invalid algorithm"),
            www: Some(err),
        },
        Case {
            cfg: "{}",
            req: Box::new(bearer(hs_token(
                "HS256",
                serde_json::json!({"iss": "carol-iss"}),
                b"wrong",
            ))),
            status: 401,
            body: m("Invalid signature"),
            www: Some(err),
        },
        // secret_is_base64: the stored secret is base64 of the signing key
        Case {
            cfg: "{secret_is_base64: true}",
            req: Box::new(bearer(hs_token(
                "HS512",
                serde_json::json!({"iss": "carol-b64"}),
                b"secret-bytes",
            ))),
            status: 200,
            body: serde_json::Value::Null,
            www: None,
        },
        Case {
            cfg: "{}",
            req: Box::new(bearer(hs_token(
                "HS512",
                serde_json::json!({"iss": "carol-b64"}),
                b"secret-bytes",
            ))),
            status: 401,
            body: m("Invalid signature"),
            www: Some(err),
        },
        // claims
        Case {
            cfg: "{claims_to_verify: [exp]}",
            req: Box::new(bearer(hs_token(
                "HS256",
                serde_json::json!({"iss": "carol-iss", "exp": NOW / 1000}),
                b"carol-secret",
            ))),
            status: 401,
            body: serde_json::json!({"exp": "token expired"}),
            www: Some(err),
        },
        Case {
            cfg: "{claims_to_verify: [exp]}",
            req: Box::new(bearer(hs_token(
                "HS256",
                serde_json::json!({"iss": "carol-iss", "exp": NOW / 1000 + 1}),
                b"carol-secret",
            ))),
            status: 200,
            body: serde_json::Value::Null,
            www: None,
        },
        Case {
            cfg: "{claims_to_verify: [exp, nbf]}",
            req: Box::new(bearer(hs_token(
                "HS256",
                serde_json::json!({"iss": "carol-iss", "exp": "soon", "nbf": NOW / 1000 + 5}),
                b"carol-secret",
            ))),
            status: 401,
            body: serde_json::json!({"exp": "must be a number", "nbf": "token not valid yet"}),
            www: Some(err),
        },
        Case {
            cfg: "{claims_to_verify: [exp], maximum_expiration: 60}",
            req: Box::new(bearer(hs_token(
                "HS256",
                serde_json::json!({"iss": "carol-iss", "exp": NOW / 1000 + 61}),
                b"carol-secret",
            ))),
            status: 401,
            body: serde_json::json!({"exp": "exceeds maximum allowed expiration"}),
            www: Some(err),
        },
        Case {
            cfg: "{run_on_preflight: false}",
            req: Box::new(|| Req::get("/r0").method("OPTIONS")),
            status: 200,
            body: serde_json::Value::Null,
            www: None,
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        let p = plugins(&yaml("jwt", c.cfg, ""));
        let o = run(&p, (c.req)().at(NOW));
        assert_eq!(
            o.status.as_u16(),
            c.status,
            "case {i}: {:?}",
            o.exit.as_ref().map(|e| &e.body)
        );
        assert_eq!(o.resp("www-authenticate"), c.www, "case {i}");
        if c.status == 401 {
            assert_eq!(o.body(), c.body, "case {i}");
        } else if !c.cfg.contains("preflight") {
            assert_eq!(o.up("x-consumer-username"), Some("carol"), "case {i}");
            assert!(
                o.up("x-credential-identifier")
                    .unwrap()
                    .starts_with("carol-"),
                "case {i}"
            );
        }
    }
}

#[test]
fn jwt_schema_and_anonymous() {
    let cfg = config(&yaml("jwt", "{maximum_expiration: 10}", ""));
    let errs = gatehouse_plugins::compile(&cfg, &gatehouse_plugins::RateLimitStore::new())
        .err()
        .unwrap()
        .errors;
    let got: Vec<_> = errs
        .iter()
        .map(|e| (e.path_string(), e.message.clone()))
        .collect();
    assert!(
        got.contains(&(
            "config.claims_to_verify".into(),
            "expected to contain: exp".into()
        )),
        "{got:?}"
    );
    let p = plugins(&yaml("jwt", "{anonymous: anon}", ""));
    let o = run(&p, Req::get("/r0").header("authorization", "Bearer a.b.c"));
    assert!(o.exit.is_none());
    assert_eq!(o.up("x-anonymous-consumer"), Some("true"));
}

#[test]
fn jwt_rsa_and_ecdsa() {
    use rsa::pkcs8::EncodePublicKey;
    use rsa::signature::{SignatureEncoding, Signer};
    let mut rng = rand_core::OsRng;
    let rsa_key = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let rsa_pem = rsa_key
        .to_public_key()
        .to_public_key_pem(Default::default())
        .unwrap();
    let p256_key = p256::ecdsa::SigningKey::random(&mut rng);
    let p256_pem = p256_key
        .verifying_key()
        .to_public_key_pem(Default::default())
        .unwrap();
    let p384_key = p384::ecdsa::SigningKey::random(&mut rng);
    let p384_pem = p384_key
        .verifying_key()
        .to_public_key_pem(Default::default())
        .unwrap();
    let indent = |s: &str| {
        s.lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    };
    let extra = format!(
        "- username: dave\n  jwt_secrets:\n  - key: rs\n    algorithm: RS256\n    rsa_public_key: |\n{}  - key: rs512\n    algorithm: RS512\n    rsa_public_key: |\n{}  - key: es\n    algorithm: ES256\n    rsa_public_key: |\n{}  - key: es384\n    algorithm: ES384\n    rsa_public_key: |\n{}",
        indent(&rsa_pem), indent(&rsa_pem), indent(&p256_pem), indent(&p384_pem)
    );
    let p = plugins(&yaml("jwt", "{}", &extra));
    let token = |alg: &str, iss: &str, sign: &dyn Fn(&[u8]) -> Vec<u8>| {
        let head = b64(serde_json::json!({"typ": "JWT", "alg": alg})
            .to_string()
            .as_bytes());
        let body = b64(serde_json::json!({"iss": iss}).to_string().as_bytes());
        let data = format!("{head}.{body}");
        format!("{data}.{}", b64(&sign(data.as_bytes())))
    };
    let rs256 = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(rsa_key.clone());
    let rs512 = rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(rsa_key);
    let cases: Vec<(String, u16)> = vec![
        (token("RS256", "rs", &|d| rs256.sign(d).to_vec()), 200),
        (token("RS512", "rs512", &|d| rs512.sign(d).to_vec()), 200),
        (token("RS256", "rs512", &|d| rs256.sign(d).to_vec()), 401), // Invalid algorithm
        (token("RS256", "rs", &|d| rs512.sign(d).to_vec()), 401),
        (
            token("ES256", "es", &|d| {
                let s: p256::ecdsa::Signature = p256_key.sign(d);
                s.to_bytes().to_vec()
            }),
            200,
        ),
        (
            token("ES384", "es384", &|d| {
                let s: p384::ecdsa::Signature = p384_key.sign(d);
                s.to_bytes().to_vec()
            }),
            200,
        ),
        (token("ES256", "es", &|_| vec![0u8; 64]), 401),
    ];
    for (i, (t, status)) in cases.iter().enumerate() {
        let o = run(
            &p,
            Req::get("/r0").header("authorization", &format!("Bearer {t}")),
        );
        assert_eq!(
            o.status.as_u16(),
            *status,
            "case {i}: {:?}",
            o.exit.as_ref().map(|e| &e.body)
        );
        if *status == 200 {
            assert_eq!(o.up("x-consumer-username"), Some("dave"));
        }
    }
}
