//! Signature checks for the jwt plugin, with pure-Rust RustCrypto crates (no OpenSSL, so the
//! gateway builds with only Rust and a C compiler). Key material is decoded once per
//! snapshot (PEM parsing is far too slow for the request path); a request does one MAC or
//! one public-key verification.
//!
//! Kong (`kong/plugins/jwt/jwt_parser.lua`) supports HS/RS/ES/PS × 256/384/512 and EdDSA.
//! All of them here: ES512 with `p521`, EdDSA (Ed25519, the curve Kong's keys use) with
//! `ring`.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

/// Decoded key material of one `jwt_secrets` entity.
pub(crate) enum KeyMaterial {
    /// HS*: the secret as given, and base64(url)-decoded for `secret_is_base64`.
    Hmac {
        raw: Option<Vec<u8>>,
        b64: Option<Vec<u8>>,
    },
    Rsa(Box<rsa::RsaPublicKey>),
    P256(Box<p256::ecdsa::VerifyingKey>),
    P384(Box<p384::ecdsa::VerifyingKey>),
    P521(Box<p521::ecdsa::VerifyingKey>),
    /// The raw 32-byte Ed25519 public key.
    Ed25519([u8; 32]),
    /// No usable key (missing or unparsable `rsa_public_key`): Kong's `Invalid key/secret`
    /// when absent.
    Missing,
}

/// Kong's `jwt:base64_decode`: base64url with the padding restored; `None` when invalid.
pub(crate) fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let t = s.trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .or_else(|| {
            // ngx.decode_base64url is lenient about the standard alphabet too.
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(t)
                .ok()
        })
}

impl KeyMaterial {
    pub(crate) fn build(algorithm: &str, secret: Option<&str>, pem: Option<&str>) -> KeyMaterial {
        if algorithm.starts_with("HS") {
            return KeyMaterial::Hmac {
                raw: secret.map(|s| s.as_bytes().to_vec()),
                b64: secret.and_then(b64url_decode),
            };
        }
        let Some(pem) = pem.map(str::trim) else {
            return KeyMaterial::Missing;
        };
        if algorithm.starts_with("RS") || algorithm.starts_with("PS") {
            use rsa::pkcs1::DecodeRsaPublicKey;
            use rsa::pkcs8::DecodePublicKey;
            let k = rsa::RsaPublicKey::from_public_key_pem(pem)
                .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem));
            return k.map_or(KeyMaterial::Missing, |k| KeyMaterial::Rsa(Box::new(k)));
        }
        use p256::pkcs8::DecodePublicKey;
        match algorithm {
            "ES256" => p256::ecdsa::VerifyingKey::from_public_key_pem(pem)
                .map_or(KeyMaterial::Missing, |k| KeyMaterial::P256(Box::new(k))),
            "ES384" => p384::ecdsa::VerifyingKey::from_public_key_pem(pem)
                .map_or(KeyMaterial::Missing, |k| KeyMaterial::P384(Box::new(k))),
            "ES512" => p521::PublicKey::from_public_key_pem(pem)
                .ok()
                .and_then(|k| p521::ecdsa::VerifyingKey::from_affine(*k.as_affine()).ok())
                .map_or(KeyMaterial::Missing, |k| KeyMaterial::P521(Box::new(k))),
            "EdDSA" => ed25519_from_pem(pem).map_or(KeyMaterial::Missing, KeyMaterial::Ed25519),
            _ => KeyMaterial::Missing,
        }
    }

    /// The key for `alg` as the handler picks it (`None` = `Invalid key/secret`).
    pub(crate) fn usable(&self, secret_is_base64: bool) -> Option<Key<'_>> {
        match self {
            KeyMaterial::Hmac { raw, b64 } => {
                let k = if secret_is_base64 { b64 } else { raw };
                k.as_deref().map(Key::Secret)
            }
            KeyMaterial::Missing => None,
            other => Some(Key::Public(other)),
        }
    }
}

/// DER prefix of an Ed25519 `SubjectPublicKeyInfo` (RFC 8410): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 }, BIT STRING (33 bytes, no unused bits) }, followed by the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// An Ed25519 public key from a `-----BEGIN PUBLIC KEY-----` PEM (the form Kong takes in
/// `rsa_public_key` for EdDSA).
fn ed25519_from_pem(pem: &str) -> Option<[u8; 32]> {
    let body = pem
        .strip_prefix("-----BEGIN PUBLIC KEY-----")?
        .trim_end()
        .strip_suffix("-----END PUBLIC KEY-----")?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let key = der.strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    key.try_into().ok()
}

pub(crate) enum Key<'a> {
    Secret(&'a [u8]),
    Public(&'a KeyMaterial),
}

fn hmac_ok<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8], sig: &[u8]) -> bool {
    match <M as Mac>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.verify_slice(sig).is_ok()
        }
        Err(_) => false,
    }
}

/// Verifies `sig` over `data` (`header_b64.claims_b64`) with `alg`.
pub(crate) fn verify(alg: &str, key: &Key<'_>, data: &[u8], sig: &[u8]) -> bool {
    match (alg, key) {
        ("HS256", Key::Secret(k)) => hmac_ok::<Hmac<Sha256>>(k, data, sig),
        ("HS384", Key::Secret(k)) => hmac_ok::<Hmac<Sha384>>(k, data, sig),
        ("HS512", Key::Secret(k)) => hmac_ok::<Hmac<Sha512>>(k, data, sig),
        (_, Key::Public(KeyMaterial::Rsa(k))) => verify_rsa(alg, k, data, sig),
        ("ES256", Key::Public(KeyMaterial::P256(k))) => {
            use p256::ecdsa::signature::Verifier;
            p256::ecdsa::Signature::from_slice(sig).is_ok_and(|s| k.verify(data, &s).is_ok())
        }
        ("ES384", Key::Public(KeyMaterial::P384(k))) => {
            use p384::ecdsa::signature::Verifier;
            p384::ecdsa::Signature::from_slice(sig).is_ok_and(|s| k.verify(data, &s).is_ok())
        }
        ("ES512", Key::Public(KeyMaterial::P521(k))) => {
            use p521::ecdsa::signature::Verifier;
            p521::ecdsa::Signature::from_slice(sig).is_ok_and(|s| k.verify(data, &s).is_ok())
        }
        ("EdDSA", Key::Public(KeyMaterial::Ed25519(k))) => {
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, k)
                .verify(data, sig)
                .is_ok()
        }
        _ => false,
    }
}

fn verify_rsa(alg: &str, k: &rsa::RsaPublicKey, data: &[u8], sig: &[u8]) -> bool {
    use rsa::signature::Verifier;
    fn pkcs1<D>(k: &rsa::RsaPublicKey, data: &[u8], sig: &[u8]) -> bool
    where
        D: sha2::Digest + rsa::pkcs8::AssociatedOid,
    {
        let vk = rsa::pkcs1v15::VerifyingKey::<D>::new(k.clone());
        rsa::pkcs1v15::Signature::try_from(sig).is_ok_and(|s| vk.verify(data, &s).is_ok())
    }
    fn pss<D>(k: &rsa::RsaPublicKey, data: &[u8], sig: &[u8]) -> bool
    where
        D: sha2::Digest + sha2::digest::FixedOutputReset,
    {
        let vk = rsa::pss::VerifyingKey::<D>::new(k.clone());
        rsa::pss::Signature::try_from(sig).is_ok_and(|s| vk.verify(data, &s).is_ok())
    }
    match alg {
        "RS256" => pkcs1::<Sha256>(k, data, sig),
        "RS384" => pkcs1::<Sha384>(k, data, sig),
        "RS512" => pkcs1::<Sha512>(k, data, sig),
        "PS256" => pss::<Sha256>(k, data, sig),
        "PS384" => pss::<Sha384>(k, data, sig),
        "PS512" => pss::<Sha512>(k, data, sig),
        _ => false,
    }
}
