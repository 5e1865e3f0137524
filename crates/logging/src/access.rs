//! Access-log lines in Kong's proxy access log format (nginx `combined` plus the request id):
//!
//! `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
//! "$http_referer" "$http_user_agent" kong_request_id: "$kong_request_id"`
//!
//! Formatted on the shipper thread; `$time_local` is written in UTC (`+0000`).

use std::io::Write as _;

use crate::record::LogRecord;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 → (year, month 1-12, day 1-31) (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `10/Oct/2000:13:55:36 +0000` for ms since the epoch.
pub fn time_local(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    let mon = MONTHS
        .get((m as usize).wrapping_sub(1))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{d:02}/{mon}/{y}:{:02}:{:02}:{:02} +0000",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

fn header<'a>(r: &'a LogRecord, name: &str) -> &'a [u8] {
    r.request_header(name).unwrap_or(b"-")
}

/// nginx escapes `"` `\` and non-printable bytes in variables as `\xHH`.
fn esc(out: &mut Vec<u8>, v: &[u8]) {
    for &b in v {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            let _ = write!(out, "\\x{b:02X}");
        } else {
            out.push(b);
        }
    }
}

/// Appends one access-log line (without the trailing newline).
pub fn format(r: &LogRecord, out: &mut Vec<u8>) {
    let _ = write!(
        out,
        "{} - - [{}] \"",
        r.client_ip,
        time_local(r.started_at_ms)
    );
    esc(out, r.method().as_bytes());
    out.push(b' ');
    esc(out, r.uri().as_bytes());
    let _ = write!(
        out,
        " {}\" {} {} \"",
        r.http_version, r.status, r.response_size
    );
    esc(out, header(r, "referer"));
    out.extend_from_slice(b"\" \"");
    esc(out, header(r, "user-agent"));
    out.extend_from_slice(b"\" kong_request_id: \"");
    esc(out, r.request_id());
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_nginx_combined() {
        assert_eq!(time_local(971_186_136_000), "10/Oct/2000:13:55:36 +0000");
        let mut r = LogRecord::empty();
        r.started_at_ms = 971_186_136_000;
        r.set_request(
            b"abc",
            "GET",
            "/a?b=\"c\"",
            "",
            &crate::header_map(&[("User-Agent", "curl/8")]),
        );
        r.status = 200;
        r.response_size = 512;
        let mut out = Vec::new();
        format(&r, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=\\x22c\\x22 HTTP/1.1\" 200 512 \"-\" \"curl/8\" kong_request_id: \"abc\""
        );
    }
}
