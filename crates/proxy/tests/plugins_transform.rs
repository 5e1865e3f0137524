//! request-transformer and response-transformer through the real proxy: headers, query
//! strings and bodies (JSON, form-urlencoded, multipart) as the upstream and the client see
//! them.

mod support;

use serde_json::json;
use support::*;

fn config(up: &Upstream) -> String {
    format!(
        r#"
_format_version: "3.0"
services:
- name: svc
  url: http://{addr}
  routes:
  - name: rt
    paths: [/rt]
    plugins:
    - name: request-transformer
      config:
        remove: {{headers: [x-remove], querystring: [drop], body: [secret]}}
        rename: {{headers: ["x-old:x-new"], querystring: ["old:new"], body: ["before:after"]}}
        replace: {{headers: ["x-replace:replaced"], querystring: ["rq:rv"], body: ["rb:replaced-body"]}}
        add:
          headers: ["x-added:yes", "x-replace:not-added", "x-tpl:$(query_params.keep)"]
          querystring: ["aq:av"]
          body: ["added:body-value"]
        append: {{headers: ["x-app:one"], querystring: ["ap:1"], body: ["list:x"]}}
  - name: rt-uri
    paths: [/rt-uri]
    plugins:
    - name: request-transformer
      config: {{http_method: POST, replace: {{uri: /new/path}}}}
  - name: resp
    paths: [/resp]
    plugins:
    - name: response-transformer
      config:
        remove: {{json: [method]}}
        rename: {{headers: ["x-upstream:x-backend"], json: ["uri:path"]}}
        replace: {{json: ["upstream:replaced"]}}
        add:
          headers: ["x-added:a", "x-backend:not-added"]
          json: ["added:true", "num:42"]
          json_types: [boolean, number]
        append: {{headers: ["x-app:1"], json: ["list:x"]}}
"#,
        addr = up.addr
    )
}

#[test]
fn request_transformer_headers_and_querystring() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&config(&up));
    let r = get(
        gw.addr,
        "/rt?drop=1&old=o&rq=q&keep=k",
        &[("x-remove", "1"), ("x-old", "moved"), ("x-replace", "orig")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // (upstream header, value; None = absent)
    let expect: [(&str, Option<&str>); 7] = [
        ("x-remove", None),
        ("x-old", None),
        ("x-new", Some("moved")),
        ("x-replace", Some("replaced")),
        ("x-added", Some("yes")),
        ("x-app", Some("one")),
        ("x-tpl", Some("k")),
    ];
    for (name, value) in expect {
        assert_eq!(r.upstream_header(name).as_deref(), value, "{name}");
    }
    assert_eq!(
        r.json()["uri"],
        "/?ap=1&aq=av&keep=k&new=o&rq=rv",
        "remove, rename, replace, add, append (re-encoded, keys sorted)"
    );

    // replace only touches what exists; add does not override.
    let r = get(gw.addr, "/rt", &[]);
    assert_eq!(r.upstream_header("x-replace").as_deref(), Some("not-added"));
    assert_eq!(r.json()["uri"], "/?ap=1&aq=av");

    let r = get(gw.addr, "/rt-uri?a=1", &[]);
    assert_eq!(r.json()["method"], "POST");
    assert_eq!(r.json()["uri"], "/new/path?a=1");
}

const BOUNDARY: &str = "rt-boundary";

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
fn request_transformer_bodies() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&config(&up));
    let mp_ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let mp_in = multipart(&[
        ("secret", "s"),
        ("before", "b"),
        ("rb", "orig"),
        ("keep", "1"),
    ]);
    let mp_out = multipart(&[
        ("keep", "1"),
        ("after", "b"),
        ("rb", "replaced-body"),
        ("added", "body-value"),
    ]);
    // (content type, body sent, body the upstream must get)
    let cases: Vec<(&str, String, String)> = vec![
        (
            "application/x-www-form-urlencoded",
            "secret=s&before=b&rb=orig&keep=1".into(),
            "added=body-value&after=b&keep=1&list=x&rb=replaced-body".into(),
        ),
        (
            "application/x-www-form-urlencoded",
            String::new(),
            "added=body-value&list=x".into(),
        ),
        (&mp_ct, mp_in, mp_out), // Kong has no append for multipart
        ("text/plain", "secret=s".into(), "secret=s".into()),
    ];
    for (ct, sent, want) in cases {
        let r = send(gw.addr, "POST", "/rt", &[("content-type", ct)], &sent);
        assert_eq!(r.status, 200, "{ct}: {}", r.body);
        assert_eq!(r.json()["body"], want.as_str(), "{ct} {sent:?}");
        assert_eq!(
            r.upstream_header("content-length"),
            Some(want.len().to_string()),
            "{ct}: Content-Length fixed"
        );
    }

    let r = send(
        gw.addr,
        "POST",
        "/rt",
        &[("content-type", "application/json")],
        r#"{"secret":"s","before":"b","rb":"orig","keep":1}"#,
    );
    let got: serde_json::Value =
        serde_json::from_str(r.json()["body"].as_str().unwrap_or("")).expect("JSON upstream");
    assert_eq!(
        got,
        json!({"keep": 1, "after": "b", "rb": "replaced-body", "added": "body-value", "list": ["x"]})
    );

    // A JSON body that does not parse is passed on as is.
    let r = send(
        gw.addr,
        "POST",
        "/rt",
        &[("content-type", "application/json")],
        "{not json",
    );
    assert_eq!(r.json()["body"], "{not json");
}

#[test]
fn response_transformer_headers_and_json() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&config(&up));
    let r = get(gw.addr, "/resp?q=1", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-upstream"), None, "renamed");
    assert_eq!(r.header("x-backend"), Some("a"));
    assert_eq!(r.header("x-added"), Some("a"));
    assert_eq!(r.header("x-app"), Some("1"));
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str()),
        "Content-Length matches the new body"
    );
    let j = r.json();
    assert!(j.get("method").is_none(), "removed: {j}");
    assert!(j.get("uri").is_none(), "renamed: {j}");
    assert_eq!(j["path"], "/?q=1");
    assert_eq!(j["upstream"], "replaced");
    assert_eq!(j["added"], json!(true), "json_types boolean");
    assert_eq!(j["num"], json!(42), "json_types number");
    assert_eq!(j["list"], json!(["x"]));
    assert!(j["headers"].is_object(), "untouched fields stay");
}
