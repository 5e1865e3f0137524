//! Entity endpoints against a real listener after a real `POST /config`: lists, pagination,
//! tag filters, nested forms, lookups by id and endpoint key, 404s and the DB-less 405s.

mod support;

use serde_json::Value;
use support::*;

fn names(v: &Value, field: &str) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {v}"))
        .iter()
        .map(|e| e[field].as_str().unwrap_or("<none>").to_string())
        .collect()
}

fn loaded() -> Admin {
    let admin = Admin::start();
    admin.load(&sample());
    admin
}

#[test]
fn collections_list_every_kind_in_id_order() {
    let a = loaded();
    let services = a.json("/services");
    assert_eq!(names(&services, "name"), ["svc-a", "svc-b", "svc-c"]);
    assert_eq!(services["next"], Value::Null);
    assert!(services.get("offset").is_none());
    let cases: &[(&str, usize)] = &[
        ("/routes", 2),
        ("/consumers", 2),
        ("/plugins", 2),
        ("/upstreams", 1),
        ("/certificates", 1),
        ("/snis", 2),
        ("/ca_certificates", 0),
        ("/key-auths", 1),
        ("/basic-auths", 1),
        ("/acls", 1),
        ("/jwts", 1),
    ];
    for (path, n) in cases {
        let v = a.json(path);
        let data = v["data"].as_array().expect("data array");
        assert_eq!(data.len(), *n, "{path}: {v}");
        let ids: Vec<&str> = data.iter().filter_map(|e| e["id"].as_str()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "{path} is in id order");
    }
    // Foreign keys are {"id": …}, credentials keep Kong's DB-less output.
    let routes = a.json("/routes");
    assert!(routes["data"][0]["service"]["id"].is_string());
    let ka = a.json("/key-auths");
    assert_eq!(ka["data"][0]["key"], "alice-key");
    assert_eq!(ka["data"][0]["consumer"]["id"], ID_CONSUMER);
    let ba = a.json("/basic-auths");
    let pw = ba["data"][0]["password"].as_str().expect("password");
    assert_ne!(pw, "s3cret", "basic-auth passwords are returned hashed");
    assert_eq!(pw.len(), 40, "sha1 hex");
    // Certificates carry their SNI names, sorted.
    let certs = a.json("/certificates");
    assert_eq!(
        certs["data"][0]["snis"],
        serde_json::json!(["a.example.test", "b.example.test"])
    );
    // Kong disables /targets: use /upstreams/{u}/targets.
    assert_eq!(a.get("/targets").status, 404);
}

#[test]
fn size_pages_walk_with_next() {
    let a = loaded();
    let first = a.json("/services?size=2");
    assert_eq!(names(&first, "name"), ["svc-a", "svc-b"]);
    let next = first["next"].as_str().expect("next link");
    let offset = first["offset"].as_str().expect("offset");
    assert!(next.starts_with("/services?offset="), "{next}");
    assert!(next.ends_with("&size=2"), "{next}");
    assert!(!offset.is_empty());
    let second = a.json(next);
    assert_eq!(names(&second, "name"), ["svc-c"]);
    assert_eq!(second["next"], Value::Null);

    // Tags and size are carried into `next`, as Kong does.
    let tagged = a.json("/services?size=1&tags=team-x");
    // The off strategy never pages below 2.
    assert_eq!(names(&tagged, "name"), ["svc-a", "svc-c"]);
    assert_eq!(tagged["next"], Value::Null);
    let consumers = a.json("/consumers?size=1");
    assert_eq!(consumers["data"].as_array().map(Vec::len), Some(2));
}

#[test]
fn size_and_offset_errors_are_kongs() {
    let a = loaded();
    let cases: &[(&str, u64, &str)] = &[
        ("/services?size=abc", 9, "size must be a number"),
        (
            "/services?size=0",
            9,
            "size must be an integer between 1 and 1000",
        ),
        (
            "/services?size=1001",
            9,
            "size must be an integer between 1 and 1000",
        ),
        (
            "/services?size=2.5",
            9,
            "size must be an integer between 1 and 1000",
        ),
        (
            "/services?offset=%21%21",
            7,
            "'!!' is not a valid offset: bad base64 encoding",
        ),
        (
            "/services?tags=a,b/c",
            11,
            "invalid option (tags: invalid filter syntax)",
        ),
        (
            "/services?tags=a,b,c,d,e,f",
            11,
            "invalid option (tags: cannot query more than 5 tags)",
        ),
    ];
    for (path, code, msg) in cases {
        let r = a.get(path);
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        let v = r.json();
        assert_eq!(v["code"], *code, "{path}: {v}");
        assert_eq!(v["message"], *msg, "{path}");
    }
    let v = a.get("/services?tags=a,b/c").json();
    assert_eq!(v["name"], "invalid options");
    assert_eq!(v["options"]["tags"], "invalid filter syntax");
}

#[test]
fn tag_filters_and_or() {
    let a = loaded();
    let cases: &[(&str, &[&str])] = &[
        ("/services?tags=team-x", &["svc-a", "svc-c"]),
        ("/services?tags=team-x,prod", &["svc-a"]),
        ("/services?tags=team-x/team-y", &["svc-a", "svc-b", "svc-c"]),
        ("/services?tags=prod/team-y", &["svc-a", "svc-b"]),
        ("/services?tags=nobody", &[]),
        ("/services/svc-a/routes?tags=prod", &["route-a"]),
    ];
    for (path, want) in cases {
        assert_eq!(names(&a.json(path), "name"), *want, "{path}");
    }
}

#[test]
fn lookups_by_id_and_endpoint_key() {
    let a = loaded();
    let cases: &[(&str, &str, &str)] = &[
        ("/services/svc-b", "id", ID_SVC_B),
        (&format!("/services/{ID_SVC_A}"), "name", "svc-a"),
        ("/routes/route-a", "name", "route-a"),
        ("/consumers/alice", "id", ID_CONSUMER),
        (&format!("/consumers/{ID_CONSUMER}"), "username", "alice"),
        ("/upstreams/backend.internal", "id", ID_UPSTREAM),
        ("/snis/a.example.test", "name", "a.example.test"),
        ("/certificates/a.example.test", "id", ID_CERT),
        ("/key-auths/alice-key", "key", "alice-key"),
        ("/basic-auths/alice-basic", "username", "alice-basic"),
        ("/jwts/alice-jwt", "key", "alice-jwt"),
        ("/services/svc-a/", "name", "svc-a"),
    ];
    for (path, field, want) in cases {
        let v = a.json(path);
        assert_eq!(v[*field], *want, "{path}: {v}");
    }
    let cert = a.json(&format!("/certificates/{ID_CERT}"));
    assert_eq!(cert["snis"].as_array().map(Vec::len), Some(2));
    let by_custom = a.json("/consumers?custom_id=alice-42");
    assert_eq!(names(&by_custom, "username"), ["alice"]);
    assert_eq!(by_custom["next"], Value::Null);
}

#[test]
fn nested_forms() {
    let a = loaded();
    assert_eq!(
        names(&a.json("/services/svc-a/routes"), "name"),
        ["route-a"]
    );
    assert_eq!(
        names(&a.json(&format!("/services/{ID_SVC_B}/routes")), "name"),
        ["route-b"]
    );
    assert_eq!(
        names(&a.json("/services/svc-c/routes"), "name"),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&a.json("/services/svc-a/plugins"), "name"),
        ["key-auth"]
    );
    assert_eq!(
        names(&a.json("/routes/route-a/plugins"), "name"),
        ["request-termination"]
    );
    assert_eq!(a.json("/routes/route-b/service")["name"], "svc-b");
    assert_eq!(
        names(&a.json("/consumers/alice/key-auth"), "key"),
        ["alice-key"]
    );
    assert_eq!(
        names(&a.json("/consumers/alice/basic-auth"), "username"),
        ["alice-basic"]
    );
    assert_eq!(names(&a.json("/consumers/alice/acls"), "group"), ["admins"]);
    assert_eq!(names(&a.json("/consumers/alice/jwt"), "key"), ["alice-jwt"]);
    assert_eq!(
        names(&a.json("/consumers/bob/key-auth"), "key"),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&a.json("/consumers/alice/plugins"), "name"),
        Vec::<String>::new()
    );
    assert_eq!(a.json("/key-auths/alice-key/consumer")["username"], "alice");
    let targets = a.json("/upstreams/backend.internal/targets");
    assert_eq!(targets["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        a.json("/upstreams/backend.internal/targets/10.0.0.2:80")["weight"],
        50
    );
    let all = a.json("/upstreams/backend.internal/targets/all");
    assert_eq!(all["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        names(&a.json("/certificates/a.example.test/snis"), "name").len(),
        2
    );
    assert_eq!(a.json("/services/svc-a/routes/route-a")["name"], "route-a");
    assert_eq!(a.json("/consumers/alice/acls/admins")["group"], "admins");

    // Nested pages link back to the nested path, without carrying size.
    let page = a.json("/upstreams/backend.internal/targets?size=2");
    assert_eq!(page["next"], Value::Null);
}

#[test]
fn unknown_things_are_404_not_found() {
    let a = loaded();
    let paths = [
        "/services/nope",
        "/services/00000000-0000-4000-8000-0000000000ff",
        "/services/nope/routes",
        "/routes/nope/service",
        "/services/svc-b/routes/route-a",
        "/consumers/nobody/key-auth",
        "/upstreams/backend.internal/targets/10.9.9.9:80",
        "/nothing-here",
        "/services/svc-a/nothing",
        "/targets/00000000-0000-4000-8000-0000000000ff",
        "/snis/a.example.test/certificate",
    ];
    for p in paths {
        let r = a.get(p);
        assert_eq!(r.status, 404, "{p}: {}", r.body);
        assert_eq!(r.json(), serde_json::json!({"message": "Not found"}), "{p}");
        assert!(r.header("x-kong-admin-latency").is_some(), "{p}");
    }
    let r = a.get("/certificates/unknown.example.test");
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (404, "SNI not found".into())
    );
    // No endpoint key: a non-UUID is an invalid primary key.
    let r = a.get("/acls/admins");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["name"], "invalid primary key");
}

#[test]
fn writes_answer_405_operation_unsupported() {
    let a = loaded();
    let unsupported = |entity: &str, verb: &str, by: Option<&str>| match by {
        Some(f) => format!("cannot {verb} '{entity}' entities by '{f}' when not using a database"),
        None => format!("cannot {verb} '{entity}' entities when not using a database"),
    };
    let cases: Vec<(&str, String, String)> = vec![
        (
            "POST",
            "/services".into(),
            unsupported("services", "create", None),
        ),
        (
            "POST",
            "/key-auths".into(),
            unsupported("keyauth_credentials", "create", None),
        ),
        (
            "PUT",
            format!("/services/{ID_SVC_A}"),
            unsupported("services", "create or update", None),
        ),
        (
            "PUT",
            "/services/svc-a".into(),
            unsupported("services", "create or update", Some("name")),
        ),
        (
            "PATCH",
            format!("/services/{ID_SVC_A}"),
            unsupported("services", "update", None),
        ),
        (
            "PATCH",
            "/consumers/alice".into(),
            unsupported("consumers", "update", Some("username")),
        ),
        (
            "DELETE",
            format!("/services/{ID_SVC_A}"),
            unsupported("services", "remove", None),
        ),
        (
            "DELETE",
            "/routes/route-a".into(),
            unsupported("routes", "remove", Some("name")),
        ),
        (
            "POST",
            "/services/svc-a/routes".into(),
            unsupported("routes", "create", None),
        ),
        (
            "POST",
            "/consumers/alice/key-auth".into(),
            unsupported("keyauth_credentials", "create", None),
        ),
        (
            "PATCH",
            "/routes/route-a/service".into(),
            unsupported("services", "update", None),
        ),
        (
            "PUT",
            "/routes/route-a/service".into(),
            unsupported("services", "create or update", None),
        ),
        (
            "DELETE",
            "/services/svc-a/routes/route-a".into(),
            unsupported("routes", "remove", Some("name")),
        ),
    ];
    for (method, path, msg) in cases {
        let r = a.call(method, &path, "application/json", b"{}");
        assert_eq!(r.status, 405, "{method} {path}: {}", r.body);
        let v = r.json();
        assert_eq!(v["code"], 12, "{method} {path}");
        assert_eq!(v["name"], "operation unsupported");
        assert_eq!(v["message"], msg, "{method} {path}");
    }
    // Methods an endpoint does not define.
    for (method, path) in [
        ("PUT", "/services"),
        ("DELETE", "/services"),
        ("POST", "/services/svc-a"),
        ("DELETE", "/routes/route-a/service"),
        ("PUT", "/config"),
        ("DELETE", "/status"),
        ("POST", "/plugins/enabled"),
    ] {
        let r = a.call(method, path, "application/json", b"{}");
        assert_eq!(r.status, 405, "{method} {path}: {}", r.body);
        assert_eq!(
            r.json(),
            serde_json::json!({"message": "Method not allowed"}),
            "{method} {path}"
        );
        assert!(r.header("x-kong-admin-latency").is_some());
    }
    // Deleting what does not exist succeeds without doing anything (the DAO's answer).
    let r = a.call(
        "DELETE",
        "/services/00000000-0000-4000-8000-0000000000ff",
        "",
        b"",
    );
    assert_eq!(r.status, 204);
    // The config is untouched.
    assert_eq!(
        a.json("/services")["data"].as_array().map(Vec::len),
        Some(3)
    );
    // OPTIONS lists the endpoint's methods.
    let r = a.call("OPTIONS", "/services", "", b"");
    assert_eq!(
        (r.status, r.header("allow")),
        (204, Some("GET, HEAD, OPTIONS, POST"))
    );
}

#[test]
fn tags_endpoint() {
    let a = loaded();
    let v = a.json("/tags/prod");
    let rows = v["data"].as_array().expect("data");
    let mut kinds: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["entity_name"].as_str())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["plugins", "routes", "services"]);
    assert!(rows
        .iter()
        .all(|r| r["tag"] == "prod" && r["entity_id"].is_string()));
    assert!(rows.iter().any(|r| r["entity_id"] == ID_SVC_A));
    assert_eq!(v["next"], Value::Null);
    let page = a.json("/tags/team-x?size=2");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(a.json("/tags/none")["data"], serde_json::json!([]));
    let all = a.json("/tags?size=3");
    let next = all["next"].as_str().expect("more tags");
    assert!(next.starts_with("/tags?offset="), "{next}");
    assert!(a.json(next)["data"]
        .as_array()
        .is_some_and(|d| !d.is_empty()));
}

#[test]
fn empty_node_lists_nothing() {
    let a = Admin::start();
    let v = a.json("/services");
    assert_eq!(v, serde_json::json!({"data": [], "next": null}));
    assert_eq!(a.get("/services/anything").status, 404);
}
