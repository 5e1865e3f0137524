//! Consumers and credentials indexed once per snapshot, so an auth plugin does one hash-map
//! probe by the presented key and then only clones prebuilt header values (a `HeaderValue`
//! clone is a reference-count bump): nothing is formatted or looked up by string per request
//! beyond that probe. Kong reads these through `kong.cache` with negative caching; with an
//! immutable snapshot the index *is* the cache.

use std::collections::HashMap;

use gatehouse_config::Config;
use http::HeaderValue;
use uuid::Uuid;

/// A consumer with its upstream header values prebuilt.
pub struct ConsumerRt {
    pub id: Uuid,
    pub id_header: HeaderValue,
    pub username_header: Option<HeaderValue>,
    pub custom_id_header: Option<HeaderValue>,
    /// ACL groups as interned ids, in the order of the `acls` entities.
    pub groups: Vec<u32>,
    /// `X-Consumer-Groups` value: the group names joined with `", "` (None when no groups).
    pub groups_header: Option<HeaderValue>,
}

/// A key-auth or basic-auth credential.
pub struct CredentialRt {
    pub id: Uuid,
    pub consumer: u32,
    pub id_header: HeaderValue,
    /// Kong treats `ttl == 0` as expired.
    pub expired: bool,
    /// basic-auth only: the stored (hashed) password.
    pub password: String,
}

/// A jwt secret (`jwt_secrets` entity) with its key material decoded once per snapshot.
pub struct JwtCredRt {
    pub id: Uuid,
    pub consumer: u32,
    /// `X-Credential-Identifier`: Kong sends the secret's `key`.
    pub key_header: HeaderValue,
    pub algorithm: String,
    pub(crate) key: crate::plugins::jwt_crypto::KeyMaterial,
}

/// All lookups the auth and ACL plugins need.
#[derive(Default)]
pub struct Credentials {
    pub consumers: Vec<ConsumerRt>,
    pub consumer_by_id: HashMap<Uuid, u32>,
    pub consumer_by_username: HashMap<Box<str>, u32>,
    pub keyauth: Vec<CredentialRt>,
    pub keyauth_by_key: HashMap<Box<str>, u32>,
    pub basicauth: Vec<CredentialRt>,
    pub basicauth_by_username: HashMap<Box<str>, u32>,
    pub jwt: Vec<JwtCredRt>,
    pub jwt_by_key: HashMap<Box<str>, u32>,
    /// ACL group name → interned id.
    pub group_ids: HashMap<Box<str>, u32>,
}

pub(crate) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""))
}

impl Credentials {
    pub fn build(config: &Config) -> Credentials {
        let mut c = Credentials::default();
        for (i, consumer) in config.consumers.iter().enumerate() {
            let i = i as u32;
            c.consumer_by_id.insert(consumer.id, i);
            if let Some(u) = &consumer.username {
                c.consumer_by_username.entry(u.as_str().into()).or_insert(i);
            }
            c.consumers.push(ConsumerRt {
                id: consumer.id,
                id_header: header_value(&consumer.id.to_string()),
                username_header: consumer.username.as_deref().map(header_value),
                custom_id_header: consumer.custom_id.as_deref().map(header_value),
                groups: Vec::new(),
                groups_header: None,
            });
        }
        let mut names: Vec<Vec<&str>> = vec![Vec::new(); c.consumers.len()];
        for acl in &config.acls {
            let Some(&ci) = c.consumer_by_id.get(&acl.consumer) else {
                continue;
            };
            let next = c.group_ids.len() as u32;
            let gid = *c.group_ids.entry(acl.group.as_str().into()).or_insert(next);
            let consumer = &mut c.consumers[ci as usize];
            if !consumer.groups.contains(&gid) {
                consumer.groups.push(gid);
                names[ci as usize].push(&acl.group);
            }
        }
        for (consumer, names) in c.consumers.iter_mut().zip(&names) {
            if !names.is_empty() {
                consumer.groups_header = Some(header_value(&names.join(", ")));
            }
        }
        for k in &config.keyauth_credentials {
            let Some(&ci) = c.consumer_by_id.get(&k.consumer) else {
                continue;
            };
            let idx = c.keyauth.len() as u32;
            c.keyauth_by_key.entry(k.key.as_str().into()).or_insert(idx);
            c.keyauth.push(CredentialRt {
                id: k.id,
                consumer: ci,
                id_header: header_value(&k.id.to_string()),
                expired: k.ttl == Some(0),
                password: String::new(),
            });
        }
        for b in &config.basicauth_credentials {
            let Some(&ci) = c.consumer_by_id.get(&b.consumer) else {
                continue;
            };
            let idx = c.basicauth.len() as u32;
            c.basicauth_by_username
                .entry(b.username.as_str().into())
                .or_insert(idx);
            c.basicauth.push(CredentialRt {
                id: b.id,
                consumer: ci,
                // Kong sends the credential's username as X-Credential-Identifier.
                id_header: header_value(&b.username),
                expired: false,
                password: b.password.clone(),
            });
        }
        for j in &config.jwt_secrets {
            let Some(&ci) = c.consumer_by_id.get(&j.consumer) else {
                continue;
            };
            let idx = c.jwt.len() as u32;
            c.jwt_by_key.entry(j.key.as_str().into()).or_insert(idx);
            c.jwt.push(JwtCredRt {
                id: j.id,
                consumer: ci,
                key_header: header_value(&j.key),
                algorithm: j.algorithm.clone(),
                key: crate::plugins::jwt_crypto::KeyMaterial::build(
                    &j.algorithm,
                    j.secret.as_deref(),
                    j.rsa_public_key.as_deref(),
                ),
            });
        }
        c
    }

    /// The `X-Credential-Identifier` value of a credential.
    pub fn identifier_header(&self, c: crate::ctx::CredentialRef) -> Option<&HeaderValue> {
        use crate::ctx::CredentialRef::*;
        match c {
            KeyAuth(i) => self.keyauth.get(i as usize).map(|c| &c.id_header),
            BasicAuth(i) => self.basicauth.get(i as usize).map(|c| &c.id_header),
            Jwt(i) => self.jwt.get(i as usize).map(|c| &c.key_header),
        }
    }

    /// The entity id of a credential (rate-limiting `limit_by = credential`).
    pub fn credential_id(&self, c: crate::ctx::CredentialRef) -> Option<Uuid> {
        use crate::ctx::CredentialRef::*;
        match c {
            KeyAuth(i) => self.keyauth.get(i as usize).map(|c| c.id),
            BasicAuth(i) => self.basicauth.get(i as usize).map(|c| c.id),
            Jwt(i) => self.jwt.get(i as usize).map(|c| c.id),
        }
    }

    /// Kong's `load_consumer(x, by_username = true)`: by id when `x` is a UUID, else by
    /// username.
    pub fn find_consumer(&self, id_or_username: &str) -> Option<u32> {
        if let Ok(id) = Uuid::parse_str(id_or_username) {
            if let Some(&i) = self.consumer_by_id.get(&id) {
                return Some(i);
            }
        }
        self.consumer_by_username.get(id_or_username).copied()
    }
}
