//! Path normalisation and the v0 upstream path, end to end through the router.
//! The path-handling table holds every v0 row of Kong's `spec/fixtures/router_path_handling_tests.lua`
//! (v1 rows are left out: the ATC flavors always behave as v0).

mod common;

use common::*;
use gatehouse_config::RouterFlavor;
use gatehouse_router::path::{normalize, upstream_path, BadPath};
use gatehouse_router::Router;

const BOTH: &[bool] = &[false, true];
const STRIP: &[bool] = &[true];
const KEEP: &[bool] = &[false];

/// (service path, route path (None: host-only route), strip values, request path, v0 upstream path)
type Row = (
    &'static str,
    Option<&'static str>,
    &'static [bool],
    &'static str,
    &'static str,
);

#[rustfmt::skip]
const PATH_HANDLING: &[Row] = &[
    ("/", Some("/"), BOTH, "/", "/"),
    ("/", Some("/"), BOTH, "/route", "/route"),
    ("/", Some("/"), BOTH, "/route/", "/route/"),
    ("/", Some("/"), BOTH, "/routereq", "/routereq"),
    ("/", Some("/"), BOTH, "/route/req", "/route/req"),
    ("/", Some("/route"), KEEP, "/route", "/route"),
    ("/", Some("/route"), KEEP, "/route/", "/route/"),
    ("/", Some("/route"), KEEP, "/routereq", "/routereq"),
    ("/", Some("/route"), STRIP, "/route", "/"),
    ("/", Some("/route"), STRIP, "/route/", "/"),
    ("/", Some("/route"), STRIP, "/routereq", "/req"),
    ("/", Some("/route/"), KEEP, "/route/", "/route/"),
    ("/", Some("/route/"), KEEP, "/route/req", "/route/req"),
    ("/", Some("/route/"), STRIP, "/route/", "/"),
    ("/", Some("/route/"), STRIP, "/route/req", "/req"),
    ("/srv", Some("/rou"), KEEP, "/roureq", "/srv/roureq"),
    ("/srv", Some("/rou"), STRIP, "/roureq", "/srv/req"),
    ("/srv/", Some("/rou"), KEEP, "/rou", "/srv/rou"),
    ("/srv/", Some("/rou"), STRIP, "/rou", "/srv"),
    ("/service", Some("/"), BOTH, "/", "/service"),
    ("/service", Some("/"), BOTH, "/route", "/service/route"),
    ("/service", Some("/"), BOTH, "/route/", "/service/route/"),
    ("/service", Some("/"), BOTH, "/routereq", "/service/routereq"),
    ("/service", Some("/"), BOTH, "/route/req", "/service/route/req"),
    ("/service", Some("/route"), KEEP, "/route", "/service/route"),
    ("/service", Some("/route"), KEEP, "/route/", "/service/route/"),
    ("/service", Some("/route"), KEEP, "/routereq", "/service/routereq"),
    ("/service", Some("/route"), STRIP, "/route", "/service"),
    ("/service", Some("/route"), STRIP, "/route/", "/service/"),
    ("/service", Some("/route"), STRIP, "/routereq", "/service/req"),
    ("/service", Some("/route/"), KEEP, "/route/", "/service/route/"),
    ("/service", Some("/route/"), KEEP, "/route/req", "/service/route/req"),
    ("/service", Some("/route/"), STRIP, "/route/", "/service/"),
    ("/service", Some("/route/"), STRIP, "/route/req", "/service/req"),
    ("/service/", Some("/"), BOTH, "/route/", "/service/route/"),
    ("/service/", Some("/"), BOTH, "/", "/service/"),
    ("/service/", Some("/"), BOTH, "/route", "/service/route"),
    ("/service/", Some("/"), BOTH, "/routereq", "/service/routereq"),
    ("/service/", Some("/"), BOTH, "/route/req", "/service/route/req"),
    ("/service/", Some("/route"), KEEP, "/route", "/service/route"),
    ("/service/", Some("/route"), KEEP, "/route/", "/service/route/"),
    ("/service/", Some("/route"), KEEP, "/routereq", "/service/routereq"),
    ("/service/", Some("/route"), STRIP, "/route", "/service"),
    ("/service/", Some("/route"), STRIP, "/route/", "/service/"),
    ("/service/", Some("/route"), STRIP, "/routereq", "/service/req"),
    ("/service/", Some("/route/"), KEEP, "/route/", "/service/route/"),
    ("/service/", Some("/route/"), KEEP, "/route/req", "/service/route/req"),
    ("/service/", Some("/route/"), STRIP, "/route/", "/service/"),
    ("/service/", Some("/route/"), STRIP, "/route/req", "/service/req"),
    // host-only routes
    ("/", None, BOTH, "/", "/"),
    ("/", None, BOTH, "/route", "/route"),
    ("/", None, BOTH, "/route/", "/route/"),
    ("/service", None, BOTH, "/", "/service"),
    ("/service", None, BOTH, "/route", "/service/route"),
    ("/service", None, BOTH, "/route/", "/service/route/"),
    ("/service/", None, BOTH, "/", "/service/"),
    ("/service/", None, BOTH, "/route", "/service/route"),
    ("/service/", None, BOTH, "/route/", "/service/route/"),
    // dot remainders after stripping
    ("/service", Some("/route"), STRIP, "/route./req", "/service/req"),
    ("/service/", Some("/route"), STRIP, "/route./req", "/service/req"),
    ("/service", Some("/route"), STRIP, "/route%2E/req", "/service/req"),
    ("/service/", Some("/route"), STRIP, "/route%2E/req", "/service/req"),
    ("/service", Some("/route"), STRIP, "/route%2e/req", "/service/req"),
    ("/service/", Some("/route"), STRIP, "/route%2e/req", "/service/req"),
    ("/service", Some("/route"), STRIP, "/route../req", "/service/req"),
    ("/service/", Some("/route"), STRIP, "/route../req", "/service/req"),
    ("/service", Some("/route"), STRIP, "/route%2E%2E/req", "/service/req"),
    ("/service/", Some("/route"), STRIP, "/route%2E%2E/req", "/service/req"),
    ("/service", Some("/route"), STRIP, "/route%2e%2E/req", "/service/req"),
    ("/service/", Some("/route"), STRIP, "/route%2e%2E/req", "/service/req"),
    ("/service", Some("/route"), KEEP, "/route./req", "/service/route./req"),
    ("/service/", Some("/route"), KEEP, "/route./req", "/service/route./req"),
    ("/service", Some("/route"), KEEP, "/route%2E/req", "/service/route./req"),
    ("/service/", Some("/route"), KEEP, "/route%2E/req", "/service/route./req"),
    ("/service", Some("/route"), KEEP, "/route%2e/req", "/service/route./req"),
    ("/service/", Some("/route"), KEEP, "/route%2e/req", "/service/route./req"),
    ("/service", Some("/route"), KEEP, "/route../req", "/service/route../req"),
    ("/service/", Some("/route"), KEEP, "/route../req", "/service/route../req"),
    ("/service", Some("/route"), KEEP, "/route%2E%2E/req", "/service/route../req"),
    ("/service/", Some("/route"), KEEP, "/route%2E%2E/req", "/service/route../req"),
    ("/service", Some("/route"), KEEP, "/route%2e%2E/req", "/service/route../req"),
    ("/service/", Some("/route"), KEEP, "/route%2e%2E/req", "/service/route../req"),
];

/// Normalises `raw`, routes it through a one-route router and returns the upstream path.
fn through_router(
    service_path: &str,
    route_path: Option<String>,
    strip: bool,
    raw: &str,
) -> String {
    let mut r = route(1).hosts(&["localbin.com"]).strip(strip).service(10);
    if let Some(p) = route_path {
        r.paths = Some(vec![p]);
    }
    let mut cfg = config(vec![r]);
    cfg.services = vec![service(10, Some(service_path))];
    let router = Router::build(&cfg, RouterFlavor::TraditionalCompatible).unwrap();
    let mut path = String::new();
    normalize(raw, &mut path).unwrap();
    let req = GET
        .host("localbin.com")
        .path(Box::leak(path.clone().into_boxed_str()));
    let m = find(&router, req).unwrap_or_else(|| panic!("no match for {raw}"));
    let mut out = String::new();
    upstream_path(
        cfg.services[0].path.as_deref(),
        &path,
        m.strip_len,
        &mut out,
    );
    out
}

#[test]
fn path_handling_fixture_prefix_routes() {
    for (i, (svc, rp, strips, req, want)) in PATH_HANDLING.iter().enumerate() {
        for &strip in *strips {
            let got = through_router(svc, rp.map(str::to_owned), strip, req);
            assert_eq!(
                &got, want,
                "row {i}: service {svc} route {rp:?} strip {strip} req {req}"
            );
        }
    }
}

#[test]
fn path_handling_fixture_regex_routes() {
    // Kong reruns the rows that have a route path with `~/[0]?<rest>`, a regex that matches the
    // same bytes.
    for (i, (svc, rp, strips, req, want)) in PATH_HANDLING.iter().enumerate() {
        let Some(rp) = rp else { continue };
        let regex = format!("~/[0]?{}", &rp[1..]);
        for &strip in *strips {
            let got = through_router(svc, Some(regex.clone()), strip, req);
            assert_eq!(
                &got, want,
                "row {i}: service {svc} route {regex} strip {strip} req {req}"
            );
        }
    }
}

#[test]
fn upstream_path_without_service_path_and_escaping() {
    #[rustfmt::skip]
    let cases: &[(Option<&str>, &str, usize, &str)] = &[
        (None, "/", 0, "/"),
        (None, "/a/b", 0, "/a/b"),
        (None, "/a/b", 2, "/b"),
        (Some("/s p"), "/x", 0, "/s%20p/x"),
        (Some("/"), "/café", 0, "/caf%C3%A9"),
        (Some("/"), "/a b\"<>^`{|}", 0, "/a%20b%22%3C%3E%5E%60%7B%7C%7D"),
        (Some("/"), "/keep!#$&'()*+,/:;=?@[\\]-_.~%2F", 0, "/keep!#$&'()*+,/:;=?@[\\]-_.~%2F"),
        (Some(""), "/x", 0, "/x"),
        (Some("/s"), "/x", 99, "/s"),       // strip_len past the end: nothing left
        (Some("/s"), "/é", 2, "/s/%A9"),    // mid-character strip_len must not panic
    ];
    let mut out = String::new();
    for (svc, req, strip_len, want) in cases {
        upstream_path(*svc, req, *strip_len, &mut out);
        assert_eq!(&out, want, "{svc:?} {req} {strip_len}");
    }
}

#[test]
fn normalization() {
    #[rustfmt::skip]
    let cases: &[(&str, Result<&str, BadPath>)] = &[
        ("", Ok("")),
        ("/", Ok("/")),
        ("/a/b", Ok("/a/b")),
        ("/a//b///c", Ok("/a/b/c")),
        ("//", Ok("/")),
        ("/a/./b", Ok("/a/b")),
        ("/a/../b", Ok("/b")),
        ("/a/b/..", Ok("/a/")),
        ("/a/b/.", Ok("/a/b/")),
        ("/..", Ok("/")),
        ("/../../a", Ok("/a")),
        ("/a/.../b", Ok("/a/.../b")),
        ("/.hidden/x", Ok("/.hidden/x")),
        ("/a./b", Ok("/a./b")),
        ("/%2e%2e/a", Ok("/a")),
        ("/x/%2E%2e/a", Ok("/a")),
        ("/%7Euser", Ok("/~user")),
        ("/%41%62%63", Ok("/Abc")),
        ("/a%2fb", Ok("/a%2Fb")),          // reserved: kept, upper-case hex
        ("/a%2Fb", Ok("/a%2Fb")),
        ("/%21%2a%27%28%29%3b%3a%40%26%3d%2b%24%2c%3f%25%23%5b%5d",
            Ok("/%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%3F%25%23%5B%5D")),
        ("/%20space", Ok("/ space")),
        ("/caf%C3%A9", Ok("/café")),
        ("/bad%FF", Ok("/bad%FF")),         // would not be UTF-8: left encoded
        ("/bad%ff/%41", Ok("/bad%FF/A")),
        ("/%", Err(BadPath)),
        ("/%4", Err(BadPath)),
        ("/%zz", Err(BadPath)),
        ("/%4g", Err(BadPath)),
        ("/a/%2e%2", Err(BadPath)),
        ("/ünï/./côdé", Ok("/ünï/côdé")),
        ("a/../b", Ok("/b")),
        ("./a", Ok("a")),
        ("/a/%2e", Ok("/a/")),
    ];
    let mut out = String::from("garbage");
    for (raw, want) in cases {
        let got = normalize(raw, &mut out).map(|()| out.as_str());
        assert_eq!(got, want.clone(), "{raw:?}");
    }
}

#[test]
fn normalize_never_panics_on_odd_bytes() {
    let mut out = String::new();
    let samples = [
        "/%",
        "%%",
        "/%\u{0}",
        "/..%2F..",
        "/\u{7f}/\u{fffd}",
        "/./../.",
        "..",
        ".",
        "/.",
        "//..//",
    ];
    for s in samples {
        let _ = normalize(s, &mut out);
    }
    for b in 0u8..=127 {
        let s = format!("/{}%{}{}/./..", char::from(b), char::from(b), char::from(b));
        let _ = normalize(&s, &mut out);
    }
}
