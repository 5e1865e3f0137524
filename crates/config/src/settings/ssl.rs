//! Kong's TLS server settings: `ssl_cert`/`ssl_cert_key` (and the `admin_`/`status_` twins),
//! `ssl_cipher_suite`, `ssl_ciphers`, `ssl_protocols`, `ssl_session_tickets`,
//! `ssl_session_timeout`, `ssl_session_cache_size`.
//!
//! Only the syntax and the cross-key rules of `kong/conf_loader/init.lua` live here (this crate
//! does no I/O): certificate entries stay as written — a path, the PEM itself, or its base64 —
//! and are read and parsed when the listeners start. `ssl_cipher_suite` is resolved to the TLS
//! versions it implies, as Kong's `CIPHER_SUITES` table does; with `custom`, `ssl_protocols` and
//! `ssl_ciphers` are the user's.

use std::time::Duration;

use super::{values, ListenAddr};

/// TLS protocol versions as Kong and nginx spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls1_0,
    Tls1_1,
    Tls1_2,
    Tls1_3,
}

impl TlsVersion {
    fn parse(s: &str) -> Option<TlsVersion> {
        Some(match s {
            "TLSv1" => TlsVersion::Tls1_0,
            "TLSv1.1" => TlsVersion::Tls1_1,
            "TLSv1.2" => TlsVersion::Tls1_2,
            "TLSv1.3" => TlsVersion::Tls1_3,
            _ => return None,
        })
    }
}

/// What a named `ssl_cipher_suite` means (Kong's `conf_constants.CIPHER_SUITES`, from Mozilla's
/// server-side TLS recommendations): its protocol versions. Its TLS 1.2 ciphers are all
/// ECDHE with AES-GCM or ChaCha20-Poly1305 — exactly what rustls implements — plus DHE and
/// CBC suites for `old`, which rustls does not offer at all.
fn suite_protocols(suite: &str) -> Option<&'static [TlsVersion]> {
    use TlsVersion::*;
    Some(match suite {
        "modern" => &[Tls1_3],
        "intermediate" => &[Tls1_2, Tls1_3],
        "old" => &[Tls1_0, Tls1_1, Tls1_2, Tls1_3],
        "fips" => &[Tls1_2],
        _ => return None,
    })
}

/// Kong's TLS server settings.
#[derive(Debug, Clone)]
pub struct SslSettings {
    /// `ssl_cert`: the proxy's default certificates (served when no sni matches), each a path,
    /// a PEM string or base64 of one. Empty: the generated default certificate.
    pub cert: Vec<String>,
    pub cert_key: Vec<String>,
    pub admin_cert: Vec<String>,
    pub admin_cert_key: Vec<String>,
    pub status_cert: Vec<String>,
    pub status_cert_key: Vec<String>,
    /// `ssl_cipher_suite`: modern, intermediate (default), old, fips or custom.
    pub cipher_suite: String,
    /// `ssl_ciphers` (OpenSSL names, `:`-separated); used with `ssl_cipher_suite = custom`.
    pub ciphers: Option<String>,
    /// The protocol versions in force: the suite's, or `ssl_protocols` with `custom`.
    pub protocols: Vec<TlsVersion>,
    pub session_tickets: bool,
    pub session_timeout: Duration,
    /// `ssl_session_cache_size` in bytes (nginx stores about 4000 sessions per MiB).
    pub session_cache_size: u64,
    /// `ssl_protocols` as given (applies only with `custom`).
    raw_protocols: Vec<TlsVersion>,
}

impl Default for SslSettings {
    fn default() -> Self {
        SslSettings {
            cert: Vec::new(),
            cert_key: Vec::new(),
            admin_cert: Vec::new(),
            admin_cert_key: Vec::new(),
            status_cert: Vec::new(),
            status_cert_key: Vec::new(),
            cipher_suite: "intermediate".into(),
            ciphers: None,
            protocols: vec![TlsVersion::Tls1_2, TlsVersion::Tls1_3],
            session_tickets: true,
            session_timeout: Duration::from_secs(86_400),
            session_cache_size: 10 << 20,
            raw_protocols: vec![TlsVersion::Tls1_2, TlsVersion::Tls1_3],
        }
    }
}

/// The keys [`SslSettings::apply`] handles.
pub const SSL_KEYS: &[&str] = &[
    "ssl_cert",
    "ssl_cert_key",
    "admin_ssl_cert",
    "admin_ssl_cert_key",
    "status_ssl_cert",
    "status_ssl_cert_key",
    "ssl_cipher_suite",
    "ssl_ciphers",
    "ssl_protocols",
    "ssl_session_tickets",
    "ssl_session_timeout",
    "ssl_session_cache_size",
];

impl SslSettings {
    /// Sets one of [`SSL_KEYS`] from its raw value.
    pub(super) fn apply(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "ssl_cert" => self.cert = values::list(value),
            "ssl_cert_key" => self.cert_key = values::list(value),
            "admin_ssl_cert" => self.admin_cert = values::list(value),
            "admin_ssl_cert_key" => self.admin_cert_key = values::list(value),
            "status_ssl_cert" => self.status_cert = values::list(value),
            "status_ssl_cert_key" => self.status_cert_key = values::list(value),
            "ssl_cipher_suite" => {
                if value != "custom" && suite_protocols(value).is_none() {
                    return Err(format!("Undefined cipher suite {value}"));
                }
                self.cipher_suite = value.into();
            }
            "ssl_ciphers" => self.ciphers = Some(value.into()),
            "ssl_protocols" => {
                let mut out = Vec::new();
                for p in value.split_whitespace() {
                    let v = TlsVersion::parse(p).ok_or_else(|| {
                        format!("unknown protocol '{p}' (TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)")
                    })?;
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
                if out.is_empty() {
                    return Err("must name at least one protocol".into());
                }
                out.sort();
                self.raw_protocols = out;
            }
            "ssl_session_tickets" => self.session_tickets = values::boolean(value)?,
            "ssl_session_timeout" => self.session_timeout = time(value)?,
            "ssl_session_cache_size" => self.session_cache_size = values::size(value)?,
            _ => return Err(format!("'{key}' is not a TLS setting")),
        }
        Ok(())
    }

    /// Kong's cross-key checks, for each listener family with an `ssl` entry, and the cipher
    /// suite resolved to protocol versions.
    pub(super) fn finish(
        &mut self,
        proxy: &[ListenAddr],
        admin: &[ListenAddr],
        status: &[ListenAddr],
        errors: &mut Vec<String>,
    ) {
        let families = [
            ("", proxy, &self.cert, &self.cert_key),
            ("admin_", admin, &self.admin_cert, &self.admin_cert_key),
            ("status_", status, &self.status_cert, &self.status_cert_key),
        ];
        for (prefix, listen, cert, key) in families {
            if !listen.iter().any(|l| l.ssl) {
                continue;
            }
            if !cert.is_empty() && key.is_empty() {
                errors.push(format!("{prefix}ssl_cert_key must be specified"));
            } else if !key.is_empty() && cert.is_empty() {
                errors.push(format!("{prefix}ssl_cert must be specified"));
            } else if cert.len() != key.len() {
                errors.push(format!(
                    "{prefix}ssl_cert was specified {} times while {prefix}ssl_cert_key was \
                     specified {} times",
                    cert.len(),
                    key.len()
                ));
            }
        }
        self.protocols = match suite_protocols(&self.cipher_suite) {
            Some(p) => p.to_vec(),
            None => self.raw_protocols.clone(),
        };
    }
}

/// An nginx time (`ssl_session_timeout`): a number with an optional unit (ms, s, m, h, d, w;
/// seconds without one).
fn time(value: &str) -> Result<Duration, String> {
    const USAGE: &str = "must be a time such as 300, 10m, 12h or 1d";
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let n: u64 = digits.parse().map_err(|_| USAGE.to_string())?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(USAGE.into()),
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| "is too large".into())
}
