//! verdict: whether an HTTP probe's response passes its monitor (pure).
//!
//! A response passes when its status is one of `expect_status` (any 2xx when
//! that is empty) and, when `expect_body` is set, the first [`BODY_PREFIX`]
//! bytes of the body contain it. Connection-level failures are classified
//! by the shells (`http`, `tcp`), not here.

use crate::config::MonitorConfig;

/// How much of a response body a probe reads and searches.
pub const BODY_PREFIX: usize = 5120;

/// Judges one response: `Err` holds the reason a status page shows
/// (`status 503`, `body mismatch`).
pub fn judge(status: u16, body_prefix: &[u8], monitor: &MonitorConfig) -> Result<(), String> {
    let status_ok = if monitor.expect_status.is_empty() {
        (200..300).contains(&status)
    } else {
        monitor.expect_status.contains(&status)
    };
    if !status_ok {
        return Err(format!("status {status}"));
    }
    if let Some(expect) = monitor.expect_body.as_deref() {
        let body = &body_prefix[..body_prefix.len().min(BODY_PREFIX)];
        if !contains(body, expect.as_bytes()) {
            return Err("body mismatch".to_string());
        }
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::MonitorKind;

    fn monitor(expect_status: &[u16], expect_body: Option<&str>) -> MonitorConfig {
        MonitorConfig {
            name: "web".into(),
            kind: MonitorKind::Http,
            port: 80,
            path: "/".into(),
            host: None,
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(3),
            rise: 2,
            fall: 3,
            expect_status: expect_status.to_vec(),
            expect_body: expect_body.map(str::to_string),
            window: Duration::from_secs(60),
            max_error_rate: 0.01,
            min_samples: 10,
            max_latency: Duration::from_millis(500),
            tls_skip_verify: false,
            quorum: 0.5,
            load_header: None,
        }
    }

    #[test]
    fn judges_status_and_body() {
        let long = [vec![b'x'; BODY_PREFIX], b"ok".to_vec()].concat();
        // (expect_status, expect_body, status, body, verdict)
        type Case<'a> = (
            &'a [u16],
            Option<&'a str>,
            u16,
            &'a [u8],
            Result<(), &'a str>,
        );
        let cases: &[Case] = &[
            (&[], None, 200, b"", Ok(())),
            (&[], None, 204, b"", Ok(())),
            (&[], None, 301, b"", Err("status 301")),
            (&[], None, 503, b"", Err("status 503")),
            (&[200], None, 204, b"", Err("status 204")),
            (&[200, 404], None, 404, b"", Ok(())),
            (&[], Some("ok"), 200, b"all ok here", Ok(())),
            (&[], Some("ok"), 200, b"nope", Err("body mismatch")),
            (&[], Some("ok"), 500, b"ok", Err("status 500")),
            (&[], Some("ok"), 200, &long, Err("body mismatch")),
        ];
        for (i, (status_set, body_want, status, body, want)) in cases.iter().enumerate() {
            let got = judge(*status, body, &monitor(status_set, *body_want));
            assert_eq!(got, want.map_err(str::to_string), "case {i}");
        }
    }
}
