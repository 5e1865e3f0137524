//! Shared parts for the binary's tests: spawning `gatehouse start`, free ports, a minimal
//! real HTTP/1.1 client.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.1 GET over a real socket: (status, headers + body text).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http_get_with(addr, path, "Host: localhost\r\n")
}

/// A GET with `headers` (complete `Name: value\r\n` lines, Host included).
pub fn http_get_with(addr: SocketAddr, path: &str, headers: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.get(9..12)?.parse().ok()?;
    Some((status, buf))
}

pub struct Node {
    pub child: Child,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub status: SocketAddr,
}

impl Node {
    pub fn start(prefix: &Path, declarative: Option<&str>) -> Node {
        Self::start_with(prefix, declarative, "")
    }

    /// [`Node::start`] with extra `kong.conf` lines.
    pub fn start_with(prefix: &Path, declarative: Option<&str>, extra_conf: &str) -> Node {
        let (proxy, admin, status) = (free_port(), free_port(), free_port());
        let mut conf = format!(
            "prefix = {}\nproxy_listen = 127.0.0.1:{proxy}\nadmin_listen = 127.0.0.1:{admin}\nstatus_listen = 127.0.0.1:{status}\nnginx_worker_processes = 2\n{extra_conf}",
            prefix.display()
        );
        if let Some(yaml) = declarative {
            let file = prefix.join("kong.yml");
            std::fs::create_dir_all(prefix).unwrap();
            std::fs::write(&file, yaml.replace("STATUS_PORT", &status.to_string())).unwrap();
            conf.push_str(&format!("declarative_config = {}\n", file.display()));
        }
        let conf_file = prefix.with_extension("conf");
        std::fs::write(&conf_file, conf).unwrap();
        let child = bin()
            .args(["start", "-c"])
            .arg(&conf_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let node = Node {
            child,
            proxy: ([127, 0, 0, 1], proxy).into(),
            admin: ([127, 0, 0, 1], admin).into(),
            status: ([127, 0, 0, 1], status).into(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_get(node.status, "/status").is_none() {
            assert!(Instant::now() < deadline, "gatehouse did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }

    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "gatehouse did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a new connection: (status, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .ok()?;
    s.write_all(body).ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.get(9..12)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Waits until `f` returns Some, or panics after `secs`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
