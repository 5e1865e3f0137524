//! Peak memory of one `POST /config`-sized load: read the text, `parse`, `write_config` into
//! a fresh LMDB, build nothing else. Prints VmHWM (peak RSS) from /proc/self/status at each
//! step. Run: `cargo bench -p gatehouse-store --bench peak_rss` (`GATEHOUSE_BENCH_N` sets N).

use std::time::Instant;

use gatehouse_store::Store;

#[path = "../../config/benches/support/lmdb_config.rs"]
mod lmdb_config;

fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len()..].trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let n = lmdb_config::n();
    let text = lmdb_config::config_text(n);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), 1 << 30).expect("open LMDB");
    println!(
        "input {} bytes; baseline VmRSS {} VmHWM {}",
        text.len(),
        status("VmRSS:"),
        status("VmHWM:")
    );
    let t = Instant::now();
    let config = gatehouse_config::parse(&text, &lmdb_config::options()).expect("valid config");
    let parse_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "parse {parse_ms:.1} ms; VmRSS {} VmHWM {}",
        status("VmRSS:"),
        status("VmHWM:")
    );
    let t = Instant::now();
    store
        .write_config(&config, &gatehouse_config::hash_text(&text))
        .expect("write");
    let write_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "write_config {write_ms:.1} ms; VmRSS {} VmHWM {}",
        status("VmRSS:"),
        status("VmHWM:")
    );
}
