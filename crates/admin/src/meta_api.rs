//! Endpoints about the API itself and cross-entity views: `/plugins/enabled`, `/endpoints`,
//! `/tags` and `/tags/{tag}` (Kong's `kong/api/routes/{plugins,kong,tags}.lua`).

use axum::extract::{RawQuery, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use gatehouse_config::Config;

use crate::kinds::{self, KINDS};
use crate::paging::{query_args, unescape_uri, PageReq};
use crate::AdminState;

/// `GET /plugins/enabled`: the `plugins` setting with `bundled` expanded.
pub async fn plugins_enabled(State(s): State<AdminState>) -> impl IntoResponse {
    let mut names = s.control.options().plugins.clone();
    names.sort();
    Json(json!({ "enabled_plugins": names }))
}

/// Every route pattern, written as Kong writes them (`/services/{services}`).
pub fn endpoint_list(plugins: &[String]) -> Vec<String> {
    let mut out: Vec<String> = [
        "/",
        "/config",
        "/endpoints",
        "/plugins/enabled",
        "/schemas/{name}",
        "/schemas/{db_entity_name}/validate",
        "/status",
        "/tags",
        "/tags/{tags}",
        "/upstreams/{upstreams}/targets/all",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for kind in KINDS.iter().filter(|k| k.enabled(plugins)) {
        out.push(format!("/{}", kind.api));
        out.push(format!("/{}/{{{}}}", kind.api, kind.name));
        for (field, target) in kind.fks {
            let Some(parent) = kinds::by_name(target) else {
                continue;
            };
            out.push(format!("/{}/{{{}}}/{field}", kind.api, kind.name));
            out.push(format!(
                "/{}/{{{}}}/{}",
                parent.api, parent.name, kind.nested
            ));
            out.push(format!(
                "/{}/{{{}}}/{}/{{{}}}",
                parent.api, parent.name, kind.nested, kind.name
            ));
        }
    }
    out.retain(|p| {
        let segs: Vec<&str> = p.trim_start_matches('/').split('/').collect();
        !kinds::disabled(&segs)
    });
    // Kong sorts segment-wise: "/" compares lowest.
    out.sort_by_key(|p| p.replace('/', "\0"));
    out.dedup();
    out
}

/// `GET /endpoints`.
pub async fn endpoints(State(s): State<AdminState>) -> impl IntoResponse {
    Json(json!({ "data": endpoint_list(&s.control.options().plugins) }))
}

/// `{entity_name, entity_id, tag}` rows, optionally for one tag, in entity id order.
fn tag_rows(cfg: &Config, plugins: &[String], only: Option<&str>) -> Vec<Value> {
    let mut rows = Vec::new();
    for kind in KINDS.iter().filter(|k| k.enabled(plugins)) {
        for item in kinds::items(cfg, kind) {
            let tags = item.get("tags").and_then(Value::as_array);
            for tag in tags.into_iter().flatten().filter_map(Value::as_str) {
                if only.is_none_or(|t| t == tag) {
                    rows.push(json!({
                        "entity_name": kind.name,
                        "entity_id": kinds::id_of(&item),
                        "tag": tag,
                    }));
                }
            }
        }
    }
    rows.sort_by_key(row_key);
    rows
}

fn row_key(v: &Value) -> String {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    format!(
        "{}\u{1}{}\u{1}{}",
        s("entity_id"),
        s("entity_name"),
        s("tag")
    )
}

/// `GET /tags`.
pub async fn tags(State(s): State<AdminState>, RawQuery(q): RawQuery) -> Response {
    let args = query_args(q.as_deref());
    let req = match PageReq::parse(&without_tags(args)) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let snap = s.control.cell().load_full();
    let rows = tag_rows(&snap.config, &s.control.options().plugins, None);
    req.respond_by(rows, "/tags", false, row_key)
}

/// `GET /tags/{tag}`.
pub async fn tag(State(s): State<AdminState>, uri: Uri) -> Response {
    let raw_tag = uri
        .path()
        .trim_start_matches("/tags/")
        .trim_end_matches('/');
    let tag = unescape_uri(raw_tag);
    let args = query_args(uri.query());
    let req = match PageReq::parse(&without_tags(args)) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let snap = s.control.cell().load_full();
    let rows = tag_rows(&snap.config, &s.control.options().plugins, Some(&tag));
    req.respond_by(rows, &format!("/tags/{raw_tag}"), false, row_key)
}

/// `/tags` pages are not filtered by a `tags` argument.
fn without_tags(args: Vec<(String, String)>) -> Vec<(String, String)> {
    args.into_iter().filter(|(k, _)| k != "tags").collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_sorted_segment_wise() {
        let list = endpoint_list(&["key-auth".to_string()]);
        let pos = |p: &str| list.iter().position(|e| e == p);
        assert!(pos("/services/{services}/routes").is_some());
        assert!(pos("/consumers/{consumers}/key-auth").is_some());
        assert!(pos("/consumers/{consumers}/basic-auth").is_none());
        assert!(pos("/targets").is_none());
        assert!(pos("/services") < pos("/services/{services}"));
        assert!(pos("/services/{services}/routes") < pos("/snis"));
    }
}
