//! Certificates that cannot be served are config validation errors in Kong's shape (400, code
//! 14, `fields.certificates[i]`), and a refused load changes nothing.

mod support;

use serde_json::{json, Value};
use support::*;

fn pair(names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    let cert = params.self_signed(&key).expect("cert");
    (cert.pem(), key.serialize_pem())
}

fn expired_ca() -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    params.self_signed(&key).expect("cert").pem()
}

fn post(a: &Admin, doc: &Value) -> (u16, Value) {
    let r = a.call(
        "POST",
        "/config",
        "application/json",
        doc.to_string().as_bytes(),
    );
    let status = r.status;
    (status, r.json())
}

#[test]
fn unusable_certificates_are_code_14_errors() {
    let a = Admin::start();
    let good = pair(&["a.test"]);
    let other = pair(&["b.test"]);
    let (status, _) = post(
        &a,
        &json!({"_format_version": "3.0", "certificates": [{"cert": good.0, "key": good.1, "snis": ["a.test"]}]}),
    );
    assert_eq!(status, 201, "a matching pair loads");

    // (certificates entry, where the error is, expected message start)
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"cert": good.0, "key": other.1}),
            "@entity",
            "certificate does not match key",
        ),
        (
            json!({"cert": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", "key": good.1}),
            "cert",
            "invalid certificate",
        ),
        (
            json!({"cert": good.0, "key": "not a key"}),
            "key",
            "invalid key",
        ),
    ];
    for (entry, field, message) in cases {
        let (status, v) = post(
            &a,
            &json!({"_format_version": "3.0", "certificates": [entry]}),
        );
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["code"], 14, "{v}");
        let at = &v["fields"]["certificates"][0][field];
        let text = at
            .as_str()
            .map(str::to_string)
            .or_else(|| at[0].as_str().map(str::to_string));
        assert!(
            text.as_deref().is_some_and(|t| t.starts_with(message)),
            "{field}: expected {message:?} in {v}"
        );
    }

    let (status, v) = post(
        &a,
        &json!({"_format_version": "3.0", "ca_certificates": [{"cert": expired_ca()}]}),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["fields"]["ca_certificates"][0]["@entity"][0],
        "certificate expired, \"Not After\" time is in the past",
        "{v}"
    );

    let (status, v) = post(
        &a,
        &json!({"_format_version": "3.0", "snis": [{"name": "x.test", "certificate": {"id": "7e1b0a55-0000-4000-8000-000000000000"}}]}),
    );
    assert_eq!(
        status, 400,
        "an sni without its certificate is refused: {v}"
    );
    assert_eq!(v["code"], 14, "{v}");
    let (status, _) = post(
        &a,
        &json!({"_format_version": "3.0", "certificates": [{"cert": good.0, "key": good.1, "snis": ["a.test"]}]}),
    );
    assert_eq!(status, 201, "the gateway still loads good configs");
}
