//! The fallback certificate served when no sni matches (Kong's `kong-default.crt`).
//!
//! Kong generates it into `<prefix>/ssl/` at the first start and reuses it afterwards, so clients
//! that pinned it keep working across restarts. We do the same with the same file names; a pair
//! that Kong (or an operator) left there is loaded as it is, RSA or ECDSA. We generate ECDSA P-256:
//! `ring` cannot generate RSA keys, and every client from the last decade accepts P-256.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::sign::CertifiedKey;

use super::certified_key;

/// `<prefix>/` + this: the default certificate (PEM).
pub const DEFAULT_CERT_FILE: &str = "ssl/kong-default.crt";
/// `<prefix>/` + this: its private key (PKCS#8 PEM, mode 0600).
pub const DEFAULT_KEY_FILE: &str = "ssl/kong-default.key";

/// Loads `<prefix>/ssl/kong-default.{crt,key}`, generating a self-signed pair first when the
/// certificate does not exist (the key is written first, so a key without a certificate is a
/// generation that was cut short). A pair that exists but does not load is an error (never silently replaced: it may
/// be the operator's). Blocking file I/O: call it at start-up, off the proxy threads.
pub fn default_certificate(prefix: &Path) -> io::Result<Arc<CertifiedKey>> {
    default_certificate_named(prefix, "")
}

/// [`default_certificate`] for another listener family: `<prefix>/ssl/<family>kong-default.*`
/// (Kong's `admin-kong-default.crt`, `status-kong-default.crt`).
pub fn default_certificate_named(prefix: &Path, family: &str) -> io::Result<Arc<CertifiedKey>> {
    let cert_path = prefix.join(format!("ssl/{family}kong-default.crt"));
    let key_path = prefix.join(format!("ssl/{family}kong-default.key"));
    if !cert_path.exists() {
        generate(&cert_path, &key_path)?;
    }
    let cert = fs::read_to_string(&cert_path)?;
    let key = fs::read_to_string(&key_path)?;
    certified_key(&cert, &key).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} / {}: {e}", cert_path.display(), key_path.display()),
        )
    })
}

fn generate(cert_path: &Path, key_path: &Path) -> io::Result<()> {
    let other =
        |e: rcgen::Error| io::Error::other(format!("generating the default certificate: {e}"));
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(other)?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).map_err(other)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CountryName, "US");
    dn.push(rcgen::DnType::StateOrProvinceName, "California");
    dn.push(rcgen::DnType::LocalityName, "San Francisco");
    dn.push(rcgen::DnType::OrganizationName, "Kong");
    dn.push(rcgen::DnType::OrganizationalUnitName, "IT Department");
    dn.push(rcgen::DnType::CommonName, "localhost");
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365 * 20);
    let cert = params.self_signed(&key).map_err(other)?;

    if let Some(dir) = cert_path.parent() {
        fs::create_dir_all(dir)?;
    }
    // Key first, written to a temporary name and renamed, so a crash never leaves a certificate
    // without its key (which would make every later start fail).
    write_private(key_path, key.serialize_pem().as_bytes())?;
    let tmp = cert_path.with_extension("crt.tmp");
    fs::write(&tmp, cert.pem())?;
    fs::rename(&tmp, cert_path)
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("key.tmp");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    io::Write::write_all(&mut opts.open(&tmp)?, bytes)?;
    fs::rename(&tmp, path)
}
