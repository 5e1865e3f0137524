//! acl (`kong/plugins/acl`, PRIORITY 950): allow or deny by the consumer's groups. Group
//! names are interned at compile time, so the check compares small integers.

use http::{HeaderName, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::credentials::Credentials;
use crate::ctx::{Exit, PluginState, RequestCtx};
use crate::error::FieldError;
use crate::respond;
use crate::schema::{Ty, F};

pub(crate) static FIELDS: &[F] = &[
    F::opt("allow", Ty::StrArray),
    F::opt("deny", Ty::StrArray),
    F::req("hide_groups_header", Ty::Bool, || json!(false)),
    F::req("always_use_authenticated_groups", Ty::Bool, || json!(false)),
];

/// `config` of acl.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub hide_groups_header: bool,
    pub always_use_authenticated_groups: bool,
}

pub(crate) fn check(c: &Config, errs: &mut Vec<FieldError>) {
    let allow = c.allow.as_ref().is_some_and(|a| !a.is_empty());
    let deny = c.deny.as_ref().is_some_and(|a| !a.is_empty());
    if allow && deny {
        errs.push(FieldError::key(
            "@entity",
            "exactly one of these fields must be non-empty: 'config.allow', 'config.deny'",
        ));
    } else if !allow && !deny {
        errs.push(FieldError::key(
            "@entity",
            "at least one of these fields must be non-empty: 'config.allow', 'config.deny'",
        ));
    }
}

pub(crate) struct Compiled {
    pub config: Config,
    deny: bool,
    /// Interned ids of the configured groups (names no consumer has are dropped: they can
    /// never match).
    groups: Vec<u32>,
}

pub(crate) fn compile(config: Config, creds: &Credentials) -> Compiled {
    let deny = config.deny.as_ref().is_some_and(|d| !d.is_empty());
    let names = if deny { &config.deny } else { &config.allow };
    let groups = names
        .iter()
        .flatten()
        .filter_map(|g| creds.group_ids.get(g.as_str()).copied())
        .collect();
    Compiled {
        config,
        deny,
        groups,
    }
}

static X_CONSUMER_GROUPS: HeaderName = HeaderName::from_static("x-consumer-groups");

pub(crate) fn access(
    c: &Compiled,
    creds: &Credentials,
    st: &mut PluginState,
    req: &mut RequestCtx<'_>,
) -> Option<Exit> {
    let forbidden = || {
        Some(respond::error(
            StatusCode::FORBIDDEN,
            "You cannot consume this service",
            req.err(),
        ))
    };
    // Authenticated groups (ldap/oauth2 scopes) are not produced by any plugin here yet.
    let Some(consumer) = st.consumer.and_then(|i| creds.consumers.get(i as usize)) else {
        if st.credential.is_some() {
            return forbidden();
        }
        return Some(respond::error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            req.err(),
        ));
    };
    let in_group = consumer.groups.iter().any(|g| c.groups.contains(g));
    let blocked = if c.deny { in_group } else { !in_group };
    if blocked {
        return forbidden();
    }
    if !c.config.hide_groups_header {
        match &consumer.groups_header {
            Some(v) => {
                req.headers.insert(X_CONSUMER_GROUPS.clone(), v.clone());
            }
            // Kong sets the header to "" (concat of no groups) for an allowed consumer.
            None => {
                req.headers.insert(
                    X_CONSUMER_GROUPS.clone(),
                    http::HeaderValue::from_static(""),
                );
            }
        }
    }
    None
}
