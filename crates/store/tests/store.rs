//! Store against a real LMDB env in a temp dir. heed refuses two envs on one path in a process,
//! so every test uses its own dir and drops a store before reopening it.

use std::path::Path;

use gatehouse_config::{
    Acl, Certificate, Config, Consumer, KeyAuthCredential, PathHandling, Plugin, Protocol, Route,
    Service, Sni, Target, Upstream,
};
use gatehouse_store::{Store, StoreError};
use serde_json::json;
use uuid::Uuid;

type R = Result<(), StoreError>;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn open(dir: &Path) -> Result<Store, StoreError> {
    Store::open(&dir.join("dbless.lmdb"), 16 << 20)
}

fn service(n: u128, name: Option<&str>) -> Service {
    Service {
        id: id(n),
        name: name.map(String::from),
        protocol: Protocol::Http,
        host: "example.com".into(),
        port: 80,
        path: None,
        retries: 5,
        connect_timeout: 60000,
        write_timeout: 60000,
        read_timeout: 60000,
        tags: vec![],
        enabled: true,
        client_certificate: None,
        tls_verify: None,
        tls_verify_depth: None,
        ca_certificates: None,
        created_at: 1,
        updated_at: 1,
    }
}

fn route(n: u128, name: &str, svc: Option<Uuid>) -> Route {
    Route {
        id: id(n),
        name: Some(name.into()),
        protocols: vec![Protocol::Http, Protocol::Https],
        methods: None,
        hosts: None,
        paths: Some(vec!["/".into()]),
        headers: None,
        snis: None,
        sources: None,
        destinations: None,
        https_redirect_status_code: 426,
        strip_path: true,
        preserve_host: false,
        request_buffering: true,
        response_buffering: true,
        regex_priority: 0,
        path_handling: PathHandling::V0,
        service: svc,
        expression: None,
        priority: None,
        tags: vec![],
        created_at: 1,
        updated_at: 1,
    }
}

fn consumer(n: u128, username: &str) -> Consumer {
    Consumer {
        id: id(n),
        username: Some(username.into()),
        custom_id: None,
        tags: vec![],
        created_at: 1,
        updated_at: 1,
    }
}

fn full_config() -> Config {
    Config {
        services: vec![service(2, Some("s2")), service(1, Some("s1"))],
        routes: vec![
            route(10, "r1", Some(id(1))),
            route(11, "r2", Some(id(1))),
            route(12, "r3", Some(id(2))),
        ],
        upstreams: vec![Upstream {
            id: id(20),
            name: "up".into(),
            algorithm: "round-robin".into(),
            hash_on: "none".into(),
            hash_fallback: "none".into(),
            slots: 10000,
            host_header: None,
            extra: serde_json::Map::new(),
            tags: vec![],
            created_at: 1,
            updated_at: 1,
        }],
        targets: vec![Target {
            id: id(21),
            upstream: id(20),
            target: "10.0.0.1:8000".into(),
            weight: 100,
            tags: vec![],
            created_at: 1.5,
            updated_at: 1.5,
        }],
        consumers: vec![consumer(30, "alice")],
        plugins: vec![Plugin {
            id: id(40),
            name: "key-auth".into(),
            instance_name: Some("ka".into()),
            route: None,
            service: Some(id(1)),
            consumer: None,
            config: json!({"key_names": ["apikey"]}),
            protocols: vec![Protocol::Http],
            enabled: true,
            tags: vec!["t".into()],
            created_at: 1,
            updated_at: 1,
        }],
        certificates: vec![Certificate {
            id: id(50),
            cert: "CERT".into(),
            key: "KEY".into(),
            cert_alt: None,
            key_alt: None,
            tags: vec![],
            created_at: 1,
            updated_at: 1,
        }],
        snis: vec![Sni {
            id: id(51),
            name: "a.example".into(),
            certificate: id(50),
            tags: vec![],
            created_at: 1,
            updated_at: 1,
        }],
        keyauth_credentials: vec![KeyAuthCredential {
            id: id(60),
            consumer: id(30),
            key: "secret".into(),
            ttl: None,
            tags: vec![],
            created_at: 1,
        }],
        acls: vec![Acl {
            id: id(70),
            consumer: id(30),
            group: "g".into(),
            tags: vec![],
            created_at: 1,
        }],
        ..Default::default()
    }
}

/// `full_config` as `read_config` returns it: every Vec sorted by id.
fn sorted(mut c: Config) -> Config {
    c.services.sort_by_key(|e| e.id);
    c.routes.sort_by_key(|e| e.id);
    c
}

#[test]
fn empty_store_has_nothing() -> R {
    let dir = tmp();
    let store = open(dir.path())?;
    assert_eq!(store.hash()?, None);
    assert_eq!(store.read_config()?, None);
    assert_eq!(store.page("services", None, 10)?, (vec![], None));
    Ok(())
}

#[test]
fn round_trip_and_hash() -> R {
    let dir = tmp();
    let store = open(dir.path())?;
    store.write_config(&full_config(), "abc123")?;
    assert_eq!(store.hash()?.as_deref(), Some("abc123"));
    let (config, hash) = store.read_config()?.expect("a config");
    assert_eq!(hash, "abc123");
    assert_eq!(config, sorted(full_config()));
    // Empty config is still "a config" (Kong stores the empty hash).
    store.write_config(&Config::default(), "00000000000000000000000000000000")?;
    assert_eq!(
        store.read_config()?,
        Some((Config::default(), "00000000000000000000000000000000".into()))
    );
    Ok(())
}

#[test]
fn overwrite_replaces_everything() -> R {
    let dir = tmp();
    let store = open(dir.path())?;
    store.write_config(&full_config(), "one")?;
    let second = Config {
        services: vec![service(99, Some("only"))],
        ..Default::default()
    };
    store.write_config(&second, "two")?;
    assert_eq!(store.read_config()?, Some((second, "two".into())));
    assert_eq!(store.select("routes", &id(10))?, None);
    assert_eq!(store.select_by_unique("services", "name", "s1")?, None);
    assert_eq!(
        store.select_by_unique("consumers", "username", "alice")?,
        None
    );
    assert!(store
        .select_by_unique("services", "name", "only")?
        .is_some());
    assert_eq!(
        store.page_by_foreign("routes", "service", &id(1), None, 10)?,
        (vec![], None)
    );
    Ok(())
}

#[test]
fn lookups_follow_pointers() -> R {
    let dir = tmp();
    let store = open(dir.path())?;
    store.write_config(&full_config(), "h")?;
    let s1 = store
        .select_by_unique("services", "name", "s1")?
        .expect("s1");
    assert_eq!(s1["id"], json!(id(1).to_string()));
    let cred = store
        .select_by_unique("keyauth_credentials", "key", "secret")?
        .expect("cred");
    assert_eq!(cred["consumer"], json!({ "id": id(30).to_string() }));
    assert!(store
        .select_by_unique("plugins", "instance_name", "ka")?
        .is_some());
    assert!(store
        .select_by_unique("snis", "name", "a.example")?
        .is_some());
    assert!(store.select("upstreams", &id(20))?.is_some());

    let (routes, next) = store.page_by_foreign("routes", "service", &id(1), None, 1)?;
    assert_eq!(routes.len(), 1);
    let (more, end) = store.page_by_foreign("routes", "service", &id(1), next.as_deref(), 1)?;
    assert_eq!((more.len(), end), (1, None));
    assert_eq!(more[0]["name"], json!("r2"));
    let (targets, _) = store.page_by_foreign("targets", "upstream", &id(20), None, 10)?;
    assert_eq!(targets[0]["target"], json!("10.0.0.1:8000"));
    let (plugins, _) = store.page_by_foreign("plugins", "service", &id(1), None, 10)?;
    assert_eq!(plugins.len(), 1);
    Ok(())
}

#[test]
fn paging() -> R {
    let dir = tmp();
    let store = open(dir.path())?;
    let services: Vec<Service> = (1..=7).map(|n| service(n, None)).collect();
    store.write_config(
        &Config {
            services,
            ..full_config()
        },
        "h",
    )?;
    let mut seen = Vec::new();
    let mut offset: Option<Vec<u8>> = None;
    let mut pages = 0;
    loop {
        let (page, next) = store.page("services", offset.as_deref(), 3)?;
        pages += 1;
        seen.extend(page.iter().map(|v| v["id"].clone()));
        match next {
            Some(n) => offset = Some(n),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<_> = (1..=7).map(|n| json!(id(n).to_string())).collect();
    assert_eq!(seen, expected);
    // Exactly one full page: no offset.
    let (page, next) = store.page("routes", None, 3)?;
    assert_eq!((page.len(), next), (3, None));
    // Size 0 is treated as 1; unknown entity and foreign offsets are harmless.
    assert_eq!(store.page("routes", None, 0)?.0.len(), 1);
    assert_eq!(store.page("nope", None, 5)?, (vec![], None));
    assert_eq!(store.page("routes", Some(b"A"), 5)?.0.len(), 3);
    assert_eq!(store.page("routes", Some(b"Z"), 5)?, (vec![], None));
    Ok(())
}

#[test]
fn map_full_keeps_previous_config() -> R {
    let dir = tmp();
    let store = Store::open(&dir.path().join("lmdb"), 64 * 1024)?;
    let small = Config {
        services: vec![service(1, Some("s1"))],
        ..Default::default()
    };
    store.write_config(&small, "small")?;
    let big_tags: Vec<String> = (0..50)
        .map(|i| format!("tag-{i}-{}", "x".repeat(40)))
        .collect();
    let big = Config {
        services: (0..500)
            .map(|n| Service {
                tags: big_tags.clone(),
                ..service(n + 100, None)
            })
            .collect(),
        ..Default::default()
    };
    let err = store.write_config(&big, "big").expect_err("map full");
    assert!(matches!(err, StoreError::MapFull), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Configuration does not fit in LMDB database, consider raising the \"lmdb_map_size\" config for Kong"
    );
    assert_eq!(store.read_config()?, Some((small, "small".into())));
    Ok(())
}

#[test]
fn reopen_persists() -> R {
    let dir = tmp();
    let store = open(dir.path())?;
    store.write_config(&full_config(), "persisted")?;
    let clone = store.clone();
    // A second env on the same path in one process is refused while the first lives.
    assert!(matches!(open(dir.path()), Err(StoreError::Open { .. })));
    drop(store);
    drop(clone);
    let store = open(dir.path())?;
    assert!(!store.was_wiped());
    assert_eq!(
        store.read_config()?,
        Some((sorted(full_config()), "persisted".into()))
    );
    Ok(())
}

#[test]
fn duplicates_are_refused_atomically() -> R {
    let dir = tmp();
    let store = open(dir.path())?;
    store.write_config(&full_config(), "good")?;
    let dup_id = Config {
        services: vec![service(1, None), service(1, None)],
        ..Default::default()
    };
    let err = store
        .write_config(&dup_id, "bad")
        .expect_err("duplicate id");
    assert!(err.to_string().contains("duplicate services id"), "{err}");
    let dup_name = Config {
        services: vec![service(1, Some("x")), service(2, Some("x"))],
        ..Default::default()
    };
    let err = store
        .write_config(&dup_name, "bad")
        .expect_err("duplicate name");
    assert!(
        err.to_string().contains("duplicate services name 'x'"),
        "{err}"
    );
    assert_eq!(store.hash()?.as_deref(), Some("good"));
    Ok(())
}
