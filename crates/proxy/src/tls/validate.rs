//! Config-time checks of certificates and CA certificates, with Kong's messages.
//!
//! Kong validates in two stages and so do we: field validators first (`cert`, `key`, `cert_alt`,
//! `key_alt` must each parse: `invalid certificate: …` / `invalid key: …`), then entity checks
//! (Kong's `@entity` list), each of which runs only when the fields it reads are valid. The
//! `cert_alt`/`key_alt` "all or none" rule is already enforced by the declarative parser
//! (`config::declarative::entities`), so it is not repeated here.

use std::time::{SystemTime, UNIX_EPOCH};

use gatehouse_config::model::{CaCertificate, Certificate, Config};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{parse_cert_chain, parse_key, TlsError};

const NOT_MATCH: &str = "certificate does not match key";
const ALT_NOT_MATCH: &str = "alternative certificate does not match key";
const SAME_TYPE: &str = "certificate and alternative certificate need to have different type \
     (e.g. RSA and ECDSA), the provided certificates were both of the same type";
const ONE_AT_A_TIME: &str = "please submit only one certificate at a time";
const EXPIRED: &str = "certificate expired, \"Not After\" time is in the past";
const NOT_CA: &str =
    "certificate does not appear to be a CA because it is missing the \"CA\" basic constraint";

/// Every TLS problem in `config`, in entity order. An empty vector means the certificates and CA
/// certificates are usable by [`super::CertStore::build`] and [`super::ClientTls`].
pub fn validate(config: &Config) -> Vec<TlsError> {
    let mut errors = Vec::new();
    for (i, c) in config.certificates.iter().enumerate() {
        certificate(i, c, &mut errors);
    }
    let now = unix_now();
    for (i, c) in config.ca_certificates.iter().enumerate() {
        ca_certificate(i, c, now, &mut errors);
    }
    errors
}

/// The parsed pieces of one certificate/key pair (`None` where the field was invalid).
struct Parsed {
    spki_cert: Option<Vec<u8>>,
    spki_key: Option<Option<Vec<u8>>>,
    key_type: Option<Vec<u8>>,
}

fn parse_pair(
    i: usize,
    cert: &str,
    key: &str,
    fields: (&'static str, &'static str),
    errors: &mut Vec<TlsError>,
) -> Parsed {
    let mut parsed = Parsed {
        spki_cert: None,
        spki_key: None,
        key_type: None,
    };
    match parse_cert_chain(cert) {
        Ok(chain) => {
            if let Some((spki, alg)) = chain.first().and_then(|der| spki_of(der)) {
                parsed.spki_cert = Some(spki);
                parsed.key_type = Some(alg);
            }
        }
        Err(e) => errors.push(TlsError::new(
            "certificates",
            i,
            Some(fields.0),
            format!("invalid certificate: {e}"),
        )),
    }
    match parse_key(key) {
        Ok(k) => parsed.spki_key = Some(k.public_key().map(|s| s.as_ref().to_vec())),
        Err(e) => errors.push(TlsError::new(
            "certificates",
            i,
            Some(fields.1),
            format!("invalid key: {e}"),
        )),
    }
    parsed
}

fn certificate(i: usize, c: &Certificate, errors: &mut Vec<TlsError>) {
    let main = parse_pair(i, &c.cert, &c.key, ("cert", "key"), errors);
    let alt = match (&c.cert_alt, &c.key_alt) {
        (Some(cert), Some(key)) => Some(parse_pair(i, cert, key, ("cert_alt", "key_alt"), errors)),
        _ => None,
    };
    if let (Some(cert), Some(key)) = (&main.spki_cert, &main.spki_key) {
        // A key type the provider cannot describe (None) cannot be compared: accept, as rustls does.
        if key.as_ref().is_some_and(|k| k != cert) {
            errors.push(TlsError::new("certificates", i, None, NOT_MATCH));
        }
    }
    let Some(alt) = alt else { return };
    if let (Some(cert), Some(key)) = (&alt.spki_cert, &alt.spki_key) {
        if key.as_ref().is_some_and(|k| k != cert) {
            errors.push(TlsError::new("certificates", i, None, ALT_NOT_MATCH));
        }
    }
    if let (Some(a), Some(b)) = (&main.key_type, &alt.key_type) {
        if a == b {
            errors.push(TlsError::new("certificates", i, None, SAME_TYPE));
        }
    }
}

fn ca_certificate(i: usize, c: &CaCertificate, now: i64, errors: &mut Vec<TlsError>) {
    let chain = match parse_cert_chain(&c.cert) {
        Ok(chain) => chain,
        Err(e) => {
            errors.push(TlsError::new(
                "ca_certificates",
                i,
                Some("cert"),
                format!("invalid certificate: {e}"),
            ));
            return;
        }
    };
    if chain.len() > 1 {
        errors.push(TlsError::new("ca_certificates", i, None, ONE_AT_A_TIME));
        return;
    }
    let Some(Ok((_, x509))) = chain.first().map(|der| X509Certificate::from_der(der)) else {
        return; // parse_cert_chain already proved it parses
    };
    if x509.validity().not_after.timestamp() < now {
        errors.push(TlsError::new("ca_certificates", i, None, EXPIRED));
        return;
    }
    let is_ca = matches!(x509.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    if !is_ca {
        errors.push(TlsError::new("ca_certificates", i, None, NOT_CA));
    }
}

/// The DER SubjectPublicKeyInfo of a certificate (as rustls' `SigningKey::public_key` renders a
/// key) and its algorithm OID (Kong compares key *types*: RSA vs EC).
fn spki_of(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (_, x509) = X509Certificate::from_der(der).ok()?;
    let spki = x509.public_key();
    Some((
        spki.raw.to_vec(),
        spki.algorithm.algorithm.as_bytes().to_vec(),
    ))
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
