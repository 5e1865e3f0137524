//! HTTP/2 abuse through the real listener: a rapid-reset flood (CVE-2023-44487), a header list
//! over the limit, and a CONTINUATION flood (CVE-2024-27316 family). Each must cost the attacker
//! its own connection — closed with GOAWAY, never a hang — while other clients keep being served.
//!
//! The attacks are written as raw frames (a few lines of framing, static-table HPACK only) so
//! the test controls exactly what reaches the gateway and in what batch; the well-behaved
//! clients are hyper's and `h2`'s, as a user would have.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::*;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// HPACK: `GET http://<authority>/` from the static table plus one literal authority.
fn request_block() -> Vec<u8> {
    // :method GET (2), :scheme http (6), :path / (4), :authority (1) "h2.test" without indexing.
    let mut b = vec![0x82, 0x86, 0x84, 0x01, 7];
    b.extend_from_slice(b"h2.test");
    b
}

/// HPACK literal header field without indexing, new name (lengths < 127).
fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.push(value.len() as u8);
    out.extend_from_slice(value);
}

/// Opens a raw HTTP/2 connection (preface + empty SETTINGS).
async fn raw_h2(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let mut hello = PREFACE.to_vec();
    frame(&mut hello, SETTINGS, 0, 0, &[]);
    tcp.write_all(&hello).await.expect("preface");
    tcp
}

/// Reads frames until the gateway closes the connection; returns the GOAWAY error code if one
/// came. Panics if the connection is still open after `limit` (the hang this guards against).
async fn until_closed(tcp: &mut TcpStream, limit: Duration) -> Option<u32> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let n = match tokio::time::timeout_at(deadline, tcp.read(&mut chunk)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => 0, // reset by the gateway: closed
            Err(_) => panic!("the connection is still open after {limit:?}"),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut goaway = None;
    let mut rest = &buf[..];
    while rest.len() >= 9 {
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        if rest.len() < 9 + len {
            break;
        }
        if rest[3] == GOAWAY && len >= 8 {
            let p = &rest[9..];
            goaway = Some(u32::from_be_bytes([p[4], p[5], p[6], p[7]]));
        }
        rest = &rest[9 + len..];
    }
    goaway
}

/// A well-behaved h2c client on its own connection: the status of `GET /` through hyper.
async fn well_behaved(addr: SocketAddr) -> u16 {
    let io = TokioIo::new(TcpStream::connect(addr).await.expect("connect"));
    let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    let req = http::Request::get("http://h2.test/ok")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(10), send.send_request(req))
        .await
        .expect("answered in time")
        .expect("response");
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    status
}

fn gateway() -> (Upstream, Gateway) {
    let up = Upstream::start("a");
    let yaml = json!({
        "_format_version": "3.0",
        "services": [{"name": "echo", "url": format!("http://{}", up.addr),
                      "routes": [{"paths": ["/"]}]}],
    })
    .to_string();
    let conf = "proxy_listen = 127.0.0.1:0 http2\nnginx_worker_processes = 1\n";
    let settings = gatehouse_config::Settings::load(Some(conf), Vec::<(String, String)>::new(), 1)
        .expect("settings");
    let gw = Gateway::start_with(
        &yaml,
        gatehouse_proxy::ProxyOptions::from_settings(&settings),
    );
    (up, gw)
}

#[tokio::test]
async fn rapid_reset_flood_is_cut_off_while_others_are_served() {
    let (up, gw) = gateway();
    assert_eq!(well_behaved(gw.addr).await, 200);

    // 200 requests, each cancelled right after it is sent, in one write (small enough that the
    // gateway reads all of it, so its GOAWAY is not lost to a reset).
    let mut attack = raw_h2(gw.addr).await;
    let block = request_block();
    let mut flood = Vec::new();
    for i in 0..200u32 {
        let id = 2 * i + 1;
        frame(&mut flood, HEADERS, END_HEADERS | END_STREAM, id, &block);
        frame(&mut flood, RST_STREAM, 0, id, &CANCEL.to_be_bytes());
    }
    attack.write_all(&flood).await.expect("flood written");
    let during = tokio::spawn(well_behaved(gw.addr));

    let code = until_closed(&mut attack, Duration::from_secs(10)).await;
    assert_eq!(
        code,
        Some(ENHANCE_YOUR_CALM),
        "GOAWAY ENHANCE_YOUR_CALM ends the flood"
    );
    assert_eq!(during.await.expect("client task"), 200);
    assert_eq!(well_behaved(gw.addr).await, 200, "served after the attack");
    // Most of the cancelled requests never reached the upstream.
    assert!(up.hits() < 100, "upstream saw {} requests", up.hits());
}

#[tokio::test]
async fn header_list_over_the_limit_gets_431_and_the_connection_lives_on() {
    let (_up, gw) = gateway();
    let tcp = TcpStream::connect(gw.addr).await.expect("connect");
    let (client, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.expect("ready");

    // (header count, size of each value, expected status): the limit is a 64 KiB header list
    // (RFC 7541 sizes: name + value + 32 per field). 18 × 4000 bytes is over it but still fits
    // the few CONTINUATION frames the gateway accepts, so it is refused with 431 on that stream.
    let cases = [(4, 1024, 200), (18, 4000, 431), (2, 100, 200)];
    for (count, size, status) in cases {
        let resp = send_big(&mut client, count, size)
            .await
            .expect("response")
            .expect("stream answered");
        assert_eq!(resp.status().as_u16(), status, "{count} × {size} bytes");
        client = client.ready().await.expect("the connection stays usable");
    }

    // Far more: a header block that needs more CONTINUATION frames than any allowed list ends
    // the connection (an error, never a hang), and new connections are served.
    let flood = send_big(&mut client, 200, 4000).await.expect("response");
    assert!(flood.is_err(), "the flood got an answer: {flood:?}");
    assert_eq!(well_behaved(gw.addr).await, 200);
}

/// Sends `GET /big` with `count` headers of `size` bytes on `client`. `None` if no answer came
/// in 10 s (the failure this guards against), else the stream's outcome.
async fn send_big(
    client: &mut h2::client::SendRequest<Bytes>,
    count: usize,
    size: usize,
) -> Option<Result<http::Response<h2::RecvStream>, h2::Error>> {
    let mut req = http::Request::get("http://h2.test/big");
    for i in 0..count {
        req = req.header(format!("x-big-{i}"), "v".repeat(size));
    }
    let sent = client.send_request(req.body(()).expect("request"), true);
    let resp = match sent {
        Ok((resp, _)) => resp,
        Err(e) => return Some(Err(e)),
    };
    tokio::time::timeout(Duration::from_secs(10), resp)
        .await
        .ok()
}

#[tokio::test]
async fn continuation_flood_closes_the_connection() {
    let (_up, gw) = gateway();
    let mut attack = raw_h2(gw.addr).await;
    let mut flood = Vec::new();
    frame(&mut flood, HEADERS, END_STREAM, 1, &request_block());
    // CONTINUATION frames that never set END_HEADERS, each adding a small header: far more
    // frames than a 64 KiB header list needs.
    for i in 0..100u32 {
        let mut block = Vec::new();
        literal(&mut block, format!("x-c{i}").as_bytes(), b"flood");
        frame(&mut flood, CONTINUATION, 0, 1, &block);
    }
    attack.write_all(&flood).await.expect("flood written");
    let code = until_closed(&mut attack, Duration::from_secs(10)).await;
    assert_eq!(code, Some(ENHANCE_YOUR_CALM), "closed with a GOAWAY");
    assert_eq!(well_behaved(gw.addr).await, 200, "other clients are served");
}
