//! The expression parser and type checker must never panic, whatever the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        let _ = gatehouse_router::expr::Expr::parse(src);
    }
});
