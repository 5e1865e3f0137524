//! The HTTP/1.1 upstream client against a scripted upstream that writes exact bytes: response
//! framing (RFC 9112 6.3) and the smuggling cases a proxy must refuse or neutralise, connection
//! reuse after each kind of response, retries of stale keep-alive connections, timeouts in the
//! middle of a body, and request body framing.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse_config::Settings;
use gatehouse_proxy::ProxyOptions;
use support::{get, raw, send, Gateway};

/// What the scripted upstream does with request number `n` (0-based, over all connections).
#[derive(Clone)]
enum Act {
    /// Write these bytes and keep reading requests on the connection.
    Reply(Vec<u8>),
    /// Write these bytes, then close.
    ReplyClose(Vec<u8>),
    /// Close without answering.
    Drop,
    /// Write these bytes, then stall for the given time.
    Stall(Vec<u8>, Duration),
}

struct Scripted {
    addr: SocketAddr,
    conns: Arc<AtomicUsize>,
    /// Every request received, raw (head and body).
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Scripted {
    fn requests(&self) -> Vec<String> {
        let seen = self.seen.lock().expect("lock");
        seen.iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }
}

fn scripted(script: impl Fn(usize) -> Act + Send + Sync + 'static) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let conns = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(script);
    let (c, s) = (conns.clone(), seen.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            c.fetch_add(1, Ordering::SeqCst);
            let (s, script) = (s.clone(), script.clone());
            std::thread::spawn(move || {
                while let Some(req) = read_request(&mut conn) {
                    let n = {
                        let mut seen = s.lock().expect("lock");
                        seen.push(req);
                        seen.len() - 1
                    };
                    match script(n) {
                        Act::Reply(b) => {
                            if conn.write_all(&b).is_err() {
                                return;
                            }
                        }
                        Act::ReplyClose(b) => {
                            let _ = conn.write_all(&b);
                            return;
                        }
                        Act::Drop => return,
                        Act::Stall(b, d) => {
                            let _ = conn.write_all(&b);
                            std::thread::sleep(d);
                            return;
                        }
                    }
                }
            });
        }
    });
    Scripted { addr, conns, seen }
}

/// One request: the head, then a body by Content-Length or chunked framing.
fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        while !buf.ends_with(b"\r\n0\r\n\r\n") && !buf.ends_with(b"\r\n\r\n0\r\n\r\n") {
            match s.read(&mut byte) {
                Ok(1) => buf.push(byte[0]),
                _ => return None,
            }
        }
    } else if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).ok()?;
        buf.extend_from_slice(&body);
    }
    Some(buf)
}

/// One proxy thread, so every request shares one upstream pool and reuse can be counted.
fn gateway(up: SocketAddr, extra: &str) -> Gateway {
    let conf = "proxy_listen = 127.0.0.1:0\nnginx_worker_processes = 1\n";
    let settings = Settings::load(Some(conf), Vec::<(String, String)>::new(), 1).expect("settings");
    Gateway::start_with(
        &format!(
            "_format_version: '3.0'\nservices:\n- name: s\n  url: http://{up}\n{extra}  routes:\n  - name: r\n    paths: ['/']\n"
        ),
        ProxyOptions::from_settings(&settings),
    )
}

#[test]
fn response_framing_and_connection_reuse() {
    // (upstream response, status the client sees, body it sees, upstream connection reused)
    let cases: &[(&str, u16, &str, bool)] = &[
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello", true),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3;x=y\r\nllo\r\n0\r\nX-T: 1\r\n\r\n",
            200,
            "hello",
            true,
        ),
        // Both framings: chunked wins, the length is not forwarded, the connection is closed.
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            200,
            "hello",
            false,
        ),
        ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", true),
        ("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", 204, "", true),
        ("HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 200, "ok", true),
        ("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", false),
        ("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 200, "ok", true),
        ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 200, "ok", false),
        // More bytes than the length: the extra never reaches a later request.
        ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad", 200, "ok", false),
        // Refused heads: 502, and the connection is not used again.
        ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", 502, "", false),
        ("HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok", 502, "", false),
        ("HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", 502, "", false),
        ("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 502, "", false),
        ("HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok", 502, "", false),
        ("HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", 502, "", false),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", 502, "", false),
        ("SSH-2.0-OpenSSH\r\n\r\n", 502, "", false),
    ];
    for &(wire, status, body, reused) in cases {
        let up = scripted(move |_| Act::Reply(wire.as_bytes().to_vec()));
        let gw = gateway(up.addr, "");
        for _ in 0..2 {
            let seen = get(gw.addr, "/x", &[]);
            assert_eq!(seen.status, status, "{wire:?}");
            if status < 500 {
                assert_eq!(seen.body, body, "{wire:?}");
            } else {
                assert!(
                    seen.body.contains("An invalid response was received"),
                    "{wire:?}: {}",
                    seen.body
                );
            }
            assert!(
                seen.headers.get("content-length").is_none_or(|v| v != "3"),
                "{wire:?}"
            );
        }
        let conns = up.conns.load(Ordering::SeqCst);
        assert_eq!(conns == 1, reused, "{wire:?}: {conns} upstream connections");
    }
}

#[test]
fn close_delimited_and_head_responses() {
    let up = scripted(|_| Act::ReplyClose(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nall of it".to_vec()));
    let gw = gateway(up.addr, "");
    assert_eq!(get(gw.addr, "/", &[]).body, "all of it");
    let up = scripted(|_| Act::Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n".to_vec()));
    let gw = gateway(up.addr, "");
    for _ in 0..2 {
        let seen = send(gw.addr, "HEAD", "/", &[], "");
        assert_eq!((seen.status, seen.body.as_str()), (200, ""));
        assert_eq!(seen.header("content-length"), Some("9"));
    }
    assert_eq!(up.conns.load(Ordering::SeqCst), 1);
}

#[test]
fn oversized_response_heads_are_502() {
    let big = format!(
        "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
        "a".repeat(70_000)
    );
    let many: String = (0..150).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("HTTP/1.1 200 OK\r\n{many}Content-Length: 0\r\n\r\n");
    for wire in [big, many] {
        let up = scripted(move |_| Act::Reply(wire.clone().into_bytes()));
        let gw = gateway(up.addr, "");
        assert_eq!(get(gw.addr, "/", &[]).status, 502);
    }
}

#[test]
fn a_pooled_connection_the_upstream_closed_is_not_used() {
    // The upstream advertises keep-alive, then closes each connection after answering.
    let up =
        scripted(|_| Act::ReplyClose(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()));
    let gw = gateway(up.addr, "  retries: 0\n");
    for _ in 0..3 {
        assert_eq!(get(gw.addr, "/", &[]).body, "ok");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(up.conns.load(Ordering::SeqCst), 3);
}

#[test]
fn a_connection_closed_without_an_answer_is_retried_only_when_safe() {
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    // Request 0 is answered (the connection is pooled); request 1 arrives on it and the
    // upstream closes without answering: the race a keep-alive pool cannot rule out.
    let script = |n| match n {
        1 => Act::Drop,
        _ => Act::Reply(OK.to_vec()),
    };
    let up = scripted(script);
    let gw = gateway(up.addr, "  retries: 0\n");
    assert_eq!(get(gw.addr, "/", &[]).status, 200);
    // A GET goes again on a fresh connection, without counting as a retry.
    assert_eq!(get(gw.addr, "/", &[]).body, "ok");
    assert_eq!(up.requests().len(), 3);

    // A POST that was sent is never sent twice (nginx's rule): 502.
    let up = scripted(script);
    let gw = gateway(up.addr, "  retries: 5\n");
    assert_eq!(send(gw.addr, "POST", "/", &[], "a=1").status, 200);
    assert_eq!(send(gw.addr, "POST", "/", &[], "a=2").status, 502);
    let reqs = up.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");

    // An upstream that drops every GET: tried 1 + retries times, then 502.
    let up = scripted(|_| Act::Drop);
    let gw = gateway(up.addr, "  retries: 2\n");
    assert_eq!(get(gw.addr, "/", &[]).status, 502);
    assert_eq!(up.requests().len(), 3);
}

#[test]
fn a_body_that_stalls_is_cut_after_read_timeout() {
    let up = scripted(|_| {
        Act::Stall(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello".to_vec(),
            Duration::from_secs(5),
        )
    });
    let gw = gateway(up.addr, "  read_timeout: 300\n");
    let started = Instant::now();
    let seen = get(gw.addr, "/", &[]);
    assert_eq!(seen.status, 200);
    assert_ne!(seen.body, "hello", "the body must not look complete");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The same stall before the head: 504.
    let up = scripted(|_| Act::Stall(Vec::new(), Duration::from_secs(5)));
    let gw = gateway(up.addr, "  read_timeout: 300\n");
    assert_eq!(get(gw.addr, "/", &[]).status, 504);
}

#[test]
fn request_bodies_go_upstream_with_one_framing() {
    let up = scripted(|_| Act::Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()));
    let gw = gateway(up.addr, "");
    // A sized body keeps its length; a large one too.
    assert_eq!(send(gw.addr, "POST", "/", &[], "a=1").status, 200);
    let large = "x".repeat(100_000);
    assert_eq!(send(gw.addr, "PUT", "/", &[], &large).status, 200);
    // A chunked body goes chunked; with both framings from the client, only chunked.
    let chunked = b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    assert_eq!(raw(gw.addr, chunked).0, 200);
    let reqs = up.requests();
    assert_eq!(reqs.len(), 3);
    assert!(
        reqs[0]
            .to_ascii_lowercase()
            .contains("content-length: 3\r\n"),
        "{}",
        reqs[0]
    );
    assert!(reqs[0].ends_with("\r\n\r\na=1"));
    assert!(reqs[1]
        .to_ascii_lowercase()
        .contains("content-length: 100000\r\n"));
    assert!(reqs[1].ends_with(&large));
    let lower = reqs[2].to_ascii_lowercase();
    assert!(
        lower.contains("transfer-encoding: chunked\r\n"),
        "{}",
        reqs[2]
    );
    assert!(!lower.contains("content-length"), "{}", reqs[2]);
    let body = reqs[2].split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let mut decoded = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size, 16).expect("hex size");
        if n == 0 {
            break;
        }
        decoded.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    assert_eq!(decoded, "abcde");
}

#[test]
fn bytes_right_after_a_101_reach_the_client() {
    let up = scripted(|_| {
        Act::Stall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-test\r\nConnection: upgrade\r\n\r\nEARLY".to_vec(),
            Duration::from_millis(300),
        )
    });
    let gw = gateway(up.addr, "");
    let (status, head, body) = raw(
        gw.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: x-test\r\n\r\n",
    );
    assert_eq!(status, 101, "{head}");
    assert_eq!(body, "EARLY");
    let reqs = up.requests();
    assert!(
        reqs[0].to_ascii_lowercase().contains("upgrade: x-test\r\n"),
        "{}",
        reqs[0]
    );
}

/// Sockets of this process connected to `port` and waiting for us to close (CLOSE_WAIT).
fn close_wait_to(port: u16) -> usize {
    let tcp = std::fs::read_to_string("/proc/self/net/tcp").unwrap_or_default();
    tcp.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3
                && f[3] == "08"
                && f[2]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
        .count()
}

#[test]
fn idle_connections_the_upstream_closed_are_closed_by_the_sweep() {
    let up =
        scripted(|_| Act::ReplyClose(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()));
    let gw = gateway(up.addr, "");
    assert_eq!(get(gw.addr, "/", &[]).body, "ok");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        close_wait_to(up.addr.port()),
        1,
        "pooled, closed by the upstream"
    );
    let started = Instant::now();
    while close_wait_to(up.addr.port()) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "still in CLOSE_WAIT"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
