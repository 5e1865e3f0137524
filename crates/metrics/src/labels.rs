//! Label values are escaped once, when a series block is created, into the exact bytes the
//! renderer writes; a scrape then only copies bytes.

use std::fmt::Write as _;

/// The label values identifying one `(service, route, workspace)` series block.
///
/// Kong's values: `service` = service name, else its host; `route` = route name, else its id;
/// `workspace` = workspace name (`default` in DB-less).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteLabels {
    pub service: String,
    pub route: String,
    pub workspace: String,
}

impl RouteLabels {
    /// Kong's label choice: `service.name or service.host`, `route.name or route.id`.
    pub fn kong(
        service_name: Option<&str>,
        service_host: &str,
        route_name: Option<&str>,
        route_id: &str,
        workspace: &str,
    ) -> Self {
        RouteLabels {
            service: service_name.unwrap_or(service_host).to_owned(),
            route: route_name.unwrap_or(route_id).to_owned(),
            workspace: workspace.to_owned(),
        }
    }
}

/// Escapes a label value like Kong's `prometheus.lua`: non-printable bytes are dropped,
/// `\` and `"` are escaped (so the value is valid in the text exposition format).
pub(crate) fn escape(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {}
            c => out.push(c),
        }
    }
}

/// `name="value"` with the value escaped.
pub(crate) fn pair(name: &str, value: &str) -> String {
    let mut s = String::with_capacity(name.len() + value.len() + 3);
    let _ = write!(s, "{name}=\"");
    escape(value, &mut s);
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(super::pair("a", "x\"y\\z\n\u{1}"), "a=\"x\\\"y\\\\z\\n\"");
    }
}
