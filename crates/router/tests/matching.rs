//! Table tests for route matching and priority, one table per rule. Inputs and expectations
//! follow Kong's `traditional_compatible` behaviour (`spec/01-unit/08-router_spec.lua`).

mod common;

use common::*;
use gatehouse_config::RouterFlavor;
use gatehouse_router::Router;

/// Builds a router from `routes` and checks every `(request, expected route index)` row.
fn run(table: &str, routes: Vec<gatehouse_config::Route>, cases: &[(Req, Option<usize>)]) {
    let router = Router::build(&config(routes), RouterFlavor::TraditionalCompatible)
        .unwrap_or_else(|e| panic!("{table}: build failed: {e}"));
    for (i, (req, want)) in cases.iter().enumerate() {
        let got = matched(&router, *req);
        assert_eq!(
            got, *want,
            "{table} row {i}: {} {}:{} {} headers={:?} https={} sni={:?}",
            req.method, req.host, req.port, req.path, req.headers, req.https, req.sni
        );
    }
}

#[test]
fn hosts() {
    run(
        "hosts",
        vec![
            route(1).hosts(&["example.com"]),
            route(2).hosts(&["*.wild.com"]),
            route(3).hosts(&["api.*"]),
            route(4).hosts(&["port.com:8080"]),
            route(5).hosts(&["*.both.com:9000"]),
            route(6).hosts(&["[::1]"]),
        ],
        &[
            (GET.host("example.com"), Some(0)),
            (GET.host("EXAMPLE.com"), None),         // case-sensitive
            (GET.host("example.com:1234"), Some(0)), // no port in the route: any port
            (GET.host("example.com:80"), Some(0)),
            (GET.host("example.com.au"), None),
            (GET.host("a.wild.com"), Some(1)),
            (GET.host("a.b.wild.com"), Some(1)), // one or more labels
            (GET.host("wild.com"), None),
            (GET.host("a.wild.com:443"), Some(1)),
            (GET.host("api.foo"), Some(2)),
            (GET.host("api.foo.bar"), Some(2)),
            (GET.host("apix.foo"), None),
            (GET.host("port.com").port(8080), Some(3)),
            (GET.host("port.com").port(8000), None),
            (GET.host("port.com:8080").port(8000), Some(3)), // Host port overrides dst port
            (GET.host("port.com:9999").port(8080), None),
            (GET.host("x.both.com:9000"), Some(4)),
            (GET.host("x.both.com").port(9000), Some(4)),
            (GET.host("x.both.com:9001"), None),
            (GET.host("example.com:abc"), None), // non-numeric port: the whole value is the host
            (GET.host("[::1]"), Some(5)),
            (GET.host("other.com"), None),
            (GET.host(""), None),
        ],
    );
}

#[test]
fn methods() {
    run(
        "methods",
        vec![
            route(1).methods(&["GET", "POST"]),
            route(2).methods(&["PUT"]).paths(&["/x"]),
        ],
        &[
            (GET, Some(0)),
            (GET.method("POST"), Some(0)),
            (GET.method("get"), None), // exact, case-sensitive
            (GET.method("DELETE"), None),
            (GET.method("PUT").path("/x/y"), Some(1)),
            (GET.method("PUT").path("/"), None),
        ],
    );
}

#[test]
fn prefix_vs_regex() {
    run(
        "prefix_vs_regex",
        vec![
            route(1).paths(&["/foo"]),
            route(2).paths(&[r"~/foo/\d+$"]),
            route(3).paths(&["/"]),
        ],
        &[
            (GET.path("/foo"), Some(0)),
            (GET.path("/foobar"), Some(0)), // byte prefix, no segment boundary
            (GET.path("/foo/123"), Some(1)), // any regex beats any prefix
            (GET.path("/foo/123/x"), Some(0)),
            (GET.path("/foo/abc"), Some(0)),
            (GET.path("/fo"), Some(2)),
            (GET.path("/FOO"), Some(2)), // case-sensitive
            (GET.path("/"), Some(2)),
        ],
    );
}

#[test]
fn regex_anchoring_and_strip_len() {
    let routes = vec![
        route(1).paths(&[r"~/users/(?<id>\d+)"]),
        route(2).paths(&["~/a|/b"]), // "^" only anchors the first alternative, as in Kong
        route(3).paths(&["~/keep/[a-z]+"]).strip(false),
        route(4).paths(&["/plain"]),
    ];
    let router = Router::build(&config(routes), RouterFlavor::TraditionalCompatible).unwrap();
    let cases: &[(&str, Option<(usize, usize)>)] = &[
        ("/users/42", Some((0, 9))),
        ("/users/42/extra", Some((0, 9))), // not anchored at the end
        ("/x/users/42", None),             // anchored at the start
        ("/users/x", None),
        ("/a", Some((1, 2))),
        ("/x/b", Some((1, 2))), // matched "/b": Kong strips the matched length
        ("/keep/abc/d", Some((2, 0))), // strip_path false
        ("/plain/x", Some((3, 6))),
        ("/plai", None),
    ];
    for (path, want) in cases {
        let got = find(&router, GET.path(path)).map(|m| (m.route, m.strip_len));
        assert_eq!(got, *want, "path {path}");
    }
}

#[test]
fn headers() {
    run(
        "headers",
        vec![
            route(1).header("X-Version", &["v1", "V2"]),
            route(2).header("x-regex", &[r"~*^Ab\d+$"]),
            route(3).header("x-quirk", &[r"~*^\D+$"]), // lowered pattern: \D becomes \d
            route(4).header("X_Under", &["yes"]),
            route(5).header("a", &["1"]).header("b", &["2"]),
            route(6).header("x-uni", &["ÉTÉ"]), // Lua lowers ASCII only
        ],
        &[
            (GET.headers(&[("x-version", "v1")]), Some(0)),
            (GET.headers(&[("x-version", "V1")]), Some(0)),
            (GET.headers(&[("x-version", "v2")]), Some(0)),
            (GET.headers(&[("x-version", "v3")]), None),
            (
                GET.headers(&[("x-version", "v3"), ("x-version", "v2")]),
                Some(0),
            ), // any value
            (GET.headers(&[("x-other", "v1")]), None),
            (GET.headers(&[("x-regex", "AB12")]), Some(1)),
            (GET.headers(&[("x-regex", "ab12")]), Some(1)),
            (GET.headers(&[("x-regex", "xab12")]), None),
            (GET.headers(&[("x-quirk", "123")]), Some(2)),
            (GET.headers(&[("x-quirk", "abc")]), None),
            (GET.headers(&[("x-under", "YES")]), Some(3)),
            (GET.headers(&[("a", "1")]), None),
            (GET.headers(&[("a", "1"), ("b", "2")]), Some(4)),
            (GET.headers(&[("x-uni", "ÉTÉ")]), None),
            (GET.headers(&[("x-uni", "Été")]), None),
        ],
    );
}

#[test]
fn header_regex_on_long_and_unicode_values() {
    let long: &'static str = Box::leak(format!("AB{}", "9".repeat(400)).into_boxed_str());
    let long_headers: &'static [(&str, &str)] =
        Box::leak(vec![("x-regex", long)].into_boxed_slice());
    run(
        "header_regex_fallbacks",
        vec![
            route(1).header("x-regex", &[r"~*^ab\d+$"]),
            route(2).header("x-u", &["~*^é+$"]),
        ],
        &[
            (GET.headers(long_headers), Some(0)),
            (GET.headers(&[("x-u", "ÉÉ")]), Some(1)),
            (GET.headers(&[("x-u", "éé")]), Some(1)),
        ],
    );
}

#[test]
fn snis_only_on_https() {
    run(
        "snis",
        vec![
            route(1).snis(&["secure.com"]),
            route(2).snis(&["*.wild.com"]).paths(&["/w"]),
            route(3).snis(&["dot.com."]).paths(&["/d"]),
        ],
        &[
            (GET, Some(0)), // plain http: the SNI predicate does not apply
            (GET.https(Some("secure.com")), Some(0)),
            (GET.https(Some("other.com")), None),
            (GET.https(None), None),
            (GET.path("/w"), Some(1)),
            (GET.path("/w").https(Some("a.wild.com")), Some(1)),
            (GET.path("/w").https(Some("secure.com")), Some(0)),
            (GET.path("/d").https(Some("dot.com")), Some(2)), // trailing dot dropped
        ],
    );
}

#[test]
fn priority_ordering() {
    run(
        "regex_priority",
        vec![
            route(1).paths(&["~/p/.*"]),
            route(2).paths(&["~/p/a.*"]).regex_priority(10),
            route(3).paths(&["/q"]),
            route(4).paths(&["/q/long"]),
        ],
        &[
            (GET.path("/p/abc"), Some(1)),
            (GET.path("/p/x"), Some(0)),
            (GET.path("/q/long/x"), Some(3)), // longer prefix wins
            (GET.path("/q/l"), Some(2)),
        ],
    );
    run(
        "regex_priority_ignored_for_prefix",
        vec![
            route(1).paths(&["/r/longer"]),
            route(2).paths(&["/r"]).regex_priority(100),
        ],
        &[(GET.path("/r/longer"), Some(0))],
    );
    run(
        "more_fields_wins",
        vec![
            route(9).paths(&["/very/long/path/indeed"]),
            route(1).hosts(&["h.com"]).paths(&["/"]),
            route(2).hosts(&["h.com"]).paths(&["/"]).methods(&["GET"]),
        ],
        &[
            (GET.host("h.com").path("/very/long/path/indeed"), Some(2)),
            (
                GET.host("h.com")
                    .method("POST")
                    .path("/very/long/path/indeed"),
                Some(1),
            ),
            (GET.host("x.com").path("/very/long/path/indeed"), Some(0)),
        ],
    );
    run(
        "plain_host_beats_wildcard",
        vec![
            route(9).hosts(&["*.x.com"]),
            route(1).hosts(&["a.x.com"]),
            route(8).hosts(&["a.x.*"]),
        ],
        &[
            (GET.host("a.x.com"), Some(1)),
            (GET.host("b.x.com"), Some(0)),
            (GET.host("a.x.org"), Some(2)),
        ],
    );
    run(
        "more_headers_beat_longer_paths",
        vec![
            route(9).paths(&["/long/path"]).header("a", &["1"]),
            route(1)
                .paths(&["/"])
                .header("a", &["1"])
                .header("b", &["2"]),
        ],
        &[
            (
                GET.path("/long/path").headers(&[("a", "1"), ("b", "2")]),
                Some(1),
            ),
            (GET.path("/long/path").headers(&[("a", "1")]), Some(0)),
        ],
    );
    run(
        "larger_uuid_wins_ties",
        vec![
            route(1).paths(&["/same"]),
            route(3).paths(&["/same"]),
            route(2).paths(&["/same"]),
        ],
        &[(GET.path("/same"), Some(1))],
    );
    run(
        "regex_beats_wildcard_free_prefix_with_same_fields",
        vec![
            route(9).paths(&["/exact/match"]),
            route(1).paths(&["~/exact"]),
        ],
        &[(GET.path("/exact/match"), Some(1))],
    );
}

#[test]
fn multi_path_splitting() {
    // Route 0 mixes a short prefix, a regex and a long prefix. Unsplit, its priority would be
    // the regex one for every path; split, only its regex group outranks route 1.
    run(
        "split",
        vec![
            route(1).paths(&["/a", "~/r/\\d+", "/a/b/c/d"]),
            route(2).paths(&["/a/b"]),
            route(3).paths(&["~/r/1"]).regex_priority(5),
        ],
        &[
            (GET.path("/a/x"), Some(0)),
            (GET.path("/a/b/x"), Some(1)), // "/a/b" (4 bytes) beats route 0's "/a" group
            (GET.path("/a/b/c/d/e"), Some(0)), // route 0's 8-byte group beats "/a/b"
            (GET.path("/r/2"), Some(0)),
            (GET.path("/r/1"), Some(2)),
        ],
    );
    let r = route(1).paths(&["/a", "~/r", "/b", "/a/b/c/d"]);
    let router = Router::build(&config(vec![r]), RouterFlavor::TraditionalCompatible).unwrap();
    assert_eq!(router.len(), 3, "one matcher per regex/length group");
    for p in ["/a", "/b", "/r", "/a/b/c/d"] {
        assert_eq!(matched(&router, GET.path(p)), Some(0), "{p}");
    }
    // Same-length prefixes stay in one matcher.
    let r = route(1).paths(&["/aa", "/bb"]);
    let router = Router::build(&config(vec![r]), RouterFlavor::TraditionalCompatible).unwrap();
    assert_eq!(router.len(), 1);
}

#[test]
fn services_enabled_disabled_and_serviceless() {
    let mut disabled = service(100, None);
    disabled.enabled = false;
    let mut cfg = config(vec![
        route(1).paths(&["/off"]).service(100),
        route(2).paths(&["/on"]).service(200),
        route(3).paths(&["/none"]),
        route(4).paths(&["/"]).service(100),
    ]);
    cfg.services = vec![disabled, service(200, None)];
    let router = Router::build(&cfg, RouterFlavor::TraditionalCompatible).unwrap();
    assert_eq!(find(&router, GET.path("/off")), None);
    assert_eq!(
        find(&router, GET.path("/on")).map(|m| (m.route, m.service)),
        Some((1, Some(1)))
    );
    assert_eq!(
        find(&router, GET.path("/none")).map(|m| (m.route, m.service)),
        Some((2, None))
    );
}

#[test]
fn misses_and_odd_input() {
    let routes = vec![
        route(1).hosts(&["h.com"]).paths(&["/x"]).methods(&["GET"]),
        route(2).paths(&["~/r/\\d+"]).header("x", &["~*y"]),
    ];
    run(
        "misses",
        routes,
        &[
            (GET.path("/x"), None),
            (GET.host("h.com").path("/y"), None),
            (GET.host("h.com").path("/x").method("POST"), None),
            (GET.path("/r/1"), None),
            (GET.path("/r/1").headers(&[("x", "zzz")]), None),
            (GET.path("/r/1").headers(&[("x", "\u{0}\u{7f}ÿY")]), Some(1)),
            (GET.host("h.com:").path("/x"), None),
            (GET.host(":::").path("\u{fffd}%zz"), None),
            (GET.host("h.com:99999999999999999999999").path("/x"), None),
        ],
    );
    let empty = Router::build(&config(vec![]), RouterFlavor::TraditionalCompatible).unwrap();
    assert!(empty.is_empty());
    assert_eq!(find(&empty, GET), None);
}

#[test]
fn protocols_not_matched_in_compat_but_in_expressions() {
    use gatehouse_config::Protocol;
    let mut http_only = route(1).paths(&["/h"]);
    http_only.protocols = vec![Protocol::Http];
    let mut https_only = route(2).paths(&["/s"]);
    https_only.protocols = vec![Protocol::Https];
    let mut tcp = route(3).paths(&["/t"]);
    tcp.protocols = vec![Protocol::Tcp];
    let cfg = config(vec![http_only, https_only, tcp]);
    let compat = Router::build(&cfg, RouterFlavor::TraditionalCompatible).unwrap();
    assert_eq!(matched(&compat, GET.path("/h").https(None)), Some(0));
    assert_eq!(matched(&compat, GET.path("/s")), Some(1));
    assert_eq!(
        matched(&compat, GET.path("/t")),
        None,
        "stream routes are not HTTP routes"
    );
    let expr = Router::build(&cfg, RouterFlavor::Expressions).unwrap();
    assert_eq!(matched(&expr, GET.path("/h").https(None)), None);
    assert_eq!(matched(&expr, GET.path("/h")), Some(0));
    assert_eq!(
        matched(&expr, GET.path("/s")),
        Some(1),
        "https-only routes keep no predicate"
    );
}

#[test]
fn build_errors() {
    let mut expr = route(1);
    expr.expression = Some("http.path == \"/\"".into());
    // An expression route needs the expressions flavor.
    assert!(Router::build(
        &config(vec![expr.clone()]),
        RouterFlavor::TraditionalCompatible
    )
    .is_err());
    assert!(Router::build(&config(vec![expr]), RouterFlavor::Expressions).is_ok());
    for (name, r) in [
        ("bad regex", route(2).paths(&["~/(unclosed"])),
        ("look-around", route(3).paths(&["~/(?=x)"])),
        ("no fields", route(4)),
    ] {
        for flavor in [
            RouterFlavor::TraditionalCompatible,
            RouterFlavor::Expressions,
        ] {
            assert!(
                Router::build(&config(vec![r.clone()]), flavor).is_err(),
                "{name}"
            );
        }
    }
}
