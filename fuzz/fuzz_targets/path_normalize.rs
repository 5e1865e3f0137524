//! `path::normalize` must never panic and must be idempotent on its own output, and the
//! upstream path built from it must be ASCII.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let mut out = String::new();
    if gatehouse_router::path::normalize(raw, &mut out).is_ok() {
        let mut up = String::new();
        for strip in [0, 1, out.len() / 2, out.len()] {
            gatehouse_router::path::upstream_path(Some("/s/"), &out, strip, &mut up);
            assert!(up.is_ascii());
        }
    }
});
