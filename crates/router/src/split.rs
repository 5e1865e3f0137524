//! Splitting multi-path routes (Kong PR #10615, `transform.lua split_routes_and_services_by_path`).
//!
//! Kong's priority has room for one path kind and one prefix length per matcher, so a route
//! whose paths mix regexes and prefixes, or prefixes of different lengths, becomes one matcher per
//! group, each with its own priority and a derived id (which decides ties). A match on any of
//! them reports the original route.

use uuid::Uuid;

use crate::matcher::is_regex_path;

/// Namespace of the UUIDv5 ids Kong gives split sub-routes.
const SPLIT_NAMESPACE: Uuid = Uuid::from_u128(0x7f145bf9_0dce_4f91_98eb_debbce4b9f6b);

/// Groups `paths` by kind: all regexes together, prefixes by byte length; groups are ordered by
/// first appearance, paths keep their order inside a group.
pub(crate) fn group_paths(paths: &[String]) -> Vec<Vec<&str>> {
    let mut groups: Vec<(Option<usize>, Vec<&str>)> = Vec::new();
    for p in paths {
        let key = if is_regex_path(p) {
            None
        } else {
            Some(p.len())
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(p),
            None => groups.push((key, vec![p])),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

/// The id Kong derives for sub-route `n` (1-based) of route `id`.
pub(crate) fn sub_route_id(id: &Uuid, n: usize) -> Uuid {
    let name = format!("{}#{}", id.hyphenated(), n);
    Uuid::new_v5(&SPLIT_NAMESPACE, name.as_bytes())
}
