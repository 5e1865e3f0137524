//! Path normalisation and the v0 upstream-path algorithm. STUB: being written.

/// Why a request path cannot be routed (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPath;

/// Normalises a raw request path (no query) into `out` as Kong does before routing.
pub fn normalize(raw: &str, out: &mut String) -> Result<(), BadPath> {
    let _ = (raw, out);
    todo!()
}

/// Writes the upstream path (Kong v0 algorithm, then escaped) into `out`.
/// `req_path` is the normalised request path, `strip_len` comes from [`crate::Match`].
pub fn upstream_path(service_path: Option<&str>, req_path: &str, strip_len: usize, out: &mut String) {
    let _ = (service_path, req_path, strip_len, out);
    todo!()
}
