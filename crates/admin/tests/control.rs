//! A config that validates but cannot be built (here: a certificate whose key does not match)
//! is refused after LMDB's write transaction was already prepared alongside the build: the
//! transaction must be aborted, so both the served snapshot and the stored config stay as they
//! were.

use std::sync::Arc;

use arc_swap::ArcSwap;
use gatehouse_admin::control::{LoadError, Source};
use gatehouse_admin::Control;
use gatehouse_config::settings::BUNDLED_PLUGINS;
use gatehouse_config::{ParseOptions, RouterFlavor};
use gatehouse_proxy::Snapshot;
use gatehouse_store::Store;

fn pair(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
    let cert = params.self_signed(&key).expect("cert");
    (cert.pem(), key.serialize_pem())
}

fn config(cert: &str, key: &str) -> String {
    serde_json::json!({
        "_format_version": "3.0",
        "services": [{"name": "s1", "url": "http://127.0.0.1:9", "routes": [{"name": "r1", "paths": ["/"]}]}],
        "certificates": [{"cert": cert, "key": key, "snis": ["a.test"]}],
    })
    .to_string()
}

#[test]
fn a_config_refused_by_the_build_is_not_persisted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("lmdb"), 64 << 20).expect("store");
    let cell = Arc::new(ArcSwap::from_pointee(Snapshot::empty()));
    let options = ParseOptions {
        plugins: BUNDLED_PLUGINS.iter().map(|p| p.to_string()).collect(),
        router_flavor: RouterFlavor::TraditionalCompatible,
    };
    let control = Control::new(cell.clone(), store, options);

    let (good_cert, good_key) = pair("a.test");
    let loaded = control
        .load(Source::Text(config(&good_cert, &good_key)))
        .unwrap_or_else(|e| panic!("the good config loads: {e}"));
    let good_hash = loaded.snapshot.hash.clone();
    assert_eq!(
        control.store().hash().expect("hash"),
        Some(good_hash.clone())
    );

    let (_, other_key) = pair("b.test");
    let refused = control.load(Source::Text(config(&good_cert, &other_key)));
    assert!(
        matches!(refused, Err(LoadError::Invalid(_))),
        "a mismatched key is a validation error"
    );
    assert_eq!(
        cell.load().hash,
        good_hash,
        "the served snapshot is unchanged"
    );
    assert_eq!(
        control.store().hash().expect("hash"),
        Some(good_hash),
        "the stored config is unchanged"
    );
    let (stored, _) = control
        .store()
        .read_config()
        .expect("read")
        .expect("a stored config");
    assert_eq!(stored.certificates.len(), 1);
    assert_eq!(
        stored.certificates[0].key, good_key,
        "the stored key is the good one"
    );
}
