//! The PROXY protocol (HAProxy's spec, v1 text and v2 binary) on `proxy_listen` entries marked
//! `proxy_protocol`: a load balancer in front tells who the client is in a header sent before
//! anything else on the connection (before TLS, before HTTP).
//!
//! As in nginx, a listener marked `proxy_protocol` requires the header: a connection without a
//! valid one is closed (logged at info level). The address it carries becomes the client address
//! only when the connecting peer is in `trusted_ips` and `real_ip_header = proxy_protocol`
//! (nginx's realip module, which Kong configures that way); otherwise it is read and ignored.
//!
//! The header is peeked first and then consumed to its exact length, so the bytes after it stay
//! in the socket for the TLS or HTTP layer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// v1's longest line ("PROXY TCP6 " + two full IPv6 addresses + two ports + CRLF).
const V1_MAX: usize = 107;
/// v2: 16-byte fixed part + the addresses and TLVs (we accept up to this much).
const V2_MAX: usize = 16 + 512;

/// What a header said: the client's address, or `None` for `UNKNOWN` / `LOCAL` (a health check
/// from the balancer itself: the connection's own address stands).
pub(crate) type Source = Option<SocketAddr>;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A full header of this many bytes.
    Done(usize, Source),
    /// Not enough bytes yet.
    Partial,
    Invalid(&'static str),
}

/// Parses a header at the start of `buf`.
pub(crate) fn parse(buf: &[u8]) -> Parsed {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        return if n < V2_SIGNATURE.len() {
            Parsed::Partial
        } else {
            parse_v2(buf)
        };
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        return if n < 6 {
            Parsed::Partial
        } else {
            parse_v1(buf)
        };
    }
    Parsed::Invalid("no PROXY protocol header")
}

fn parse_v1(buf: &[u8]) -> Parsed {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Parsed::Invalid("PROXY v1 line too long")
        } else {
            Parsed::Partial
        };
    };
    let Ok(line) = std::str::from_utf8(&buf[6..end]) else {
        return Parsed::Invalid("PROXY v1 line is not text");
    };
    let mut parts = line.split(' ');
    let source = match parts.next() {
        Some("UNKNOWN") => None,
        Some(fam @ ("TCP4" | "TCP6")) => {
            let fields: Vec<&str> = parts.collect();
            let [src, _dst, sport, _dport] = fields[..] else {
                return Parsed::Invalid("PROXY v1 needs 4 fields");
            };
            let Ok(ip) = src.parse::<IpAddr>() else {
                return Parsed::Invalid("PROXY v1 source address");
            };
            if (fam == "TCP4") != ip.is_ipv4() {
                return Parsed::Invalid("PROXY v1 address family");
            }
            let Ok(port) = sport.parse::<u16>() else {
                return Parsed::Invalid("PROXY v1 source port");
            };
            Some(SocketAddr::new(ip, port))
        }
        _ => return Parsed::Invalid("PROXY v1 protocol"),
    };
    Parsed::Done(end + 2, source)
}

fn parse_v2(buf: &[u8]) -> Parsed {
    if buf.len() < 16 {
        return Parsed::Partial;
    }
    let (ver_cmd, fam) = (buf[12], buf[13]);
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if ver_cmd >> 4 != 2 {
        return Parsed::Invalid("PROXY v2 version");
    }
    if 16 + len > V2_MAX {
        return Parsed::Invalid("PROXY v2 header too long");
    }
    if buf.len() < 16 + len {
        return Parsed::Partial;
    }
    let body = &buf[16..16 + len];
    let source = match (ver_cmd & 0x0f, fam) {
        (0, _) => None, // LOCAL
        (1, 0x11 | 0x12) if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let port = u16::from_be_bytes([body[8], body[9]]);
            Some(SocketAddr::new(IpAddr::V4(ip), port))
        }
        (1, 0x21 | 0x22) if body.len() >= 36 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&body[..16]);
            let port = u16::from_be_bytes([body[32], body[33]]);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        (1, 0x00 | 0x31 | 0x32) => None, // UNSPEC, unix sockets
        (1, _) => return Parsed::Invalid("PROXY v2 addresses"),
        _ => return Parsed::Invalid("PROXY v2 command"),
    };
    Parsed::Done(16 + len, source)
}

/// Reads the header off `stream` within `timeout`, leaving what follows in the socket.
pub(crate) async fn read(stream: &mut TcpStream, timeout: Duration) -> Result<Source, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = [0u8; V2_MAX];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(0)) => return Err("closed before the PROXY protocol header".into()),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("timed out waiting for the PROXY protocol header".into()),
        };
        match parse(&buf[..n]) {
            Parsed::Done(len, source) => {
                stream
                    .read_exact(&mut buf[..len])
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(source);
            }
            Parsed::Invalid(why) => return Err(why.into()),
            // peek returns at once while bytes are queued: wait for more to arrive.
            Parsed::Partial => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let v2 = |cmd: u8, fam: u8, body: &[u8]| {
            let mut b = V2_SIGNATURE.to_vec();
            b.extend_from_slice(&[0x20 | cmd, fam]);
            b.extend_from_slice(&(body.len() as u16).to_be_bytes());
            b.extend_from_slice(body);
            b.extend_from_slice(b"GET / HTTP/1.1\r\n");
            b
        };
        let v4 = [10, 0, 0, 7, 10, 0, 0, 1, 0x1f, 0x90, 0x01, 0xbb];
        let mut v6 = [0u8; 36];
        v6[15] = 1;
        v6[32..34].copy_from_slice(&8080u16.to_be_bytes());
        let addr = |s: &str| Some(s.parse::<SocketAddr>().expect("addr"));
        // (bytes, expected)
        let cases: Vec<(Vec<u8>, Parsed)> = vec![
            (
                b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\nGET /".to_vec(),
                Parsed::Done(45, addr("192.0.2.1:56324")),
            ),
            (
                b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\n".to_vec(),
                Parsed::Done(45, addr("[2001:db8::1]:4000")),
            ),
            (b"PROXY UNKNOWN\r\n".to_vec(), Parsed::Done(15, None)),
            (b"PROXY TCP4 192.0.2".to_vec(), Parsed::Partial),
            (b"PRO".to_vec(), Parsed::Partial),
            (
                b"PROXY TCP4 ::1 ::1 1 2\r\n".to_vec(),
                Parsed::Invalid("PROXY v1 address family"),
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n".to_vec(),
                Parsed::Invalid("PROXY v1 source port"),
            ),
            (
                b"GET / HTTP/1.1\r\n".to_vec(),
                Parsed::Invalid("no PROXY protocol header"),
            ),
            (vec![b'P'; 200], Parsed::Invalid("no PROXY protocol header")),
            (v2(1, 0x11, &v4), Parsed::Done(28, addr("10.0.0.7:8080"))),
            (v2(1, 0x21, &v6), Parsed::Done(52, addr("[::1]:8080"))),
            (v2(0, 0x00, &[]), Parsed::Done(16, None)),
            (v2(1, 0x11, &v4)[..20].to_vec(), Parsed::Partial),
            (V2_SIGNATURE[..5].to_vec(), Parsed::Partial),
            (v2(1, 0x11, &v4[..4]), Parsed::Invalid("PROXY v2 addresses")),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                parse(&bytes),
                expected,
                "{:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}
