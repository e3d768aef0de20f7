//! `[[notify]]`: the webhook half of the validator (URL, event kinds,
//! headers, timeouts, queue, format).

use super::super::raw::RawNotify;
use super::super::*;
use super::Validator;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(300);
const DEFAULT_QUEUE: u32 = 1000;
/// A bigger queue is a configuration mistake (events are small, but a
/// receiver that far behind is better dropped and counted).
const MAX_QUEUE: u32 = 1_000_000;

impl Validator<'_> {
    pub(super) fn notify(&mut self, raw: &[RawNotify]) -> Vec<NotifyConfig> {
        let mut out: Vec<NotifyConfig> = Vec::new();
        for (i, n) in raw.iter().enumerate() {
            let key = |k: &str| format!("notify[{i}].{k}");
            let name = match self.notify_url(&key("url"), &n.url) {
                Some(default) => n.name.clone().unwrap_or(default),
                None => n.name.clone().unwrap_or_else(|| format!("notify[{i}]")),
            };
            if name.is_empty() || name.chars().any(|c| c.is_control()) {
                self.err(
                    key("name"),
                    "must be a non-empty name without control characters",
                );
            }
            if out.iter().any(|o| o.name == name) {
                self.err(
                    key("name"),
                    format!("two receivers are named {name:?} (set `name` to tell them apart in metrics)"),
                );
            }
            let events = match &n.events {
                None => EVENT_KINDS.iter().map(|k| k.to_string()).collect(),
                Some(list) => {
                    if list.is_empty() {
                        self.err(
                            key("events"),
                            "is empty: leave it out to receive every event",
                        );
                    }
                    for (j, kind) in list.iter().enumerate() {
                        if !EVENT_KINDS.contains(&kind.as_str()) {
                            self.err(
                                format!("notify[{i}].events[{j}]"),
                                format!(
                                    "unknown event kind {kind:?}; valid kinds: {}",
                                    EVENT_KINDS.join(", ")
                                ),
                            );
                        }
                    }
                    list.clone()
                }
            };
            let mut headers = Vec::new();
            for (h, v) in &n.headers {
                let k = format!("notify[{i}].headers.{h}");
                if h.is_empty() || !h.bytes().all(is_token_byte) {
                    self.err(&k, format!("{h:?} is not an HTTP header name"));
                } else if h.eq_ignore_ascii_case("content-type")
                    || h.eq_ignore_ascii_case("content-length")
                    || h.eq_ignore_ascii_case("host")
                {
                    self.err(&k, format!("{h} is set by geosteer itself"));
                }
                if v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                    self.err(&k, "an HTTP header value may not hold control characters");
                }
                headers.push((h.clone(), v.clone()));
            }
            let timeout = self.duration(&key("timeout"), n.timeout.as_deref(), DEFAULT_TIMEOUT);
            let retry_for =
                self.duration(&key("retry_for"), n.retry_for.as_deref(), DEFAULT_RETRY_FOR);
            let queue = n.queue.unwrap_or(DEFAULT_QUEUE);
            if queue == 0 || queue > MAX_QUEUE {
                self.err(key("queue"), format!("must be 1 to {MAX_QUEUE} events"));
            }
            let format = match n.format.as_deref() {
                None | Some("json") => NotifyFormat::Json,
                Some("alertmanager") => NotifyFormat::Alertmanager,
                Some(other) => {
                    self.err(
                        key("format"),
                        format!("unknown format {other:?}; expected \"json\" or \"alertmanager\""),
                    );
                    NotifyFormat::Json
                }
            };
            out.push(NotifyConfig {
                name,
                url: n.url.clone(),
                events,
                headers,
                timeout,
                retry_for,
                queue: queue as usize,
                format,
            });
        }
        out
    }

    /// Checks a receiver URL; returns its default name (host, port, path).
    fn notify_url(&mut self, key: &str, text: &str) -> Option<String> {
        let parsed = url::Url::parse(text);
        let url = match parsed {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
            Ok(_) | Err(_) => {
                self.err(
                    key,
                    format!("{text:?} is not a webhook URL: expected http://HOST[:PORT]/PATH or https://…"),
                );
                return None;
            }
        };
        let host = url.host_str().unwrap_or_default();
        Some(match url.port() {
            Some(p) => format!("{host}:{p}{}", url.path()),
            None => format!("{host}{}", url.path()),
        })
    }
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const MIN: &str = "[server]\ndns_listen = [\"127.0.0.1:5353\"]\n[zones]\n\"example.test\" = \"example.test.zone\"\n";

    fn parse(notify: &str) -> Result<Config, String> {
        crate::config::parse(
            &format!("{MIN}{notify}"),
            Path::new("g.toml"),
            Path::new("."),
            "",
        )
        .map(|(c, _)| c)
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_every_key() {
        let c = parse("[[notify]]\nurl = \"https://hooks.example/geo?token=x\"\n").expect("ok");
        let n = &c.notify[0];
        assert_eq!(n.name, "hooks.example/geo", "no query in the name");
        assert_eq!(n.events, EVENT_KINDS);
        assert_eq!(n.timeout, Duration::from_secs(5));
        assert_eq!(n.retry_for, Duration::from_secs(300));
        assert_eq!(n.queue, 1000);
        assert_eq!(n.format, NotifyFormat::Json);
        let c = parse(
            "[[notify]]\nname = \"am\"\nurl = \"http://127.0.0.1:9093/api/v2/alerts\"\nevents = [\"endpoint\", \"pool\"]\nheaders = { Authorization = \"Bearer t\" }\ntimeout = \"2s\"\nretry_for = \"1m\"\nqueue = 10\nformat = \"alertmanager\"\n",
        )
        .expect("ok");
        let n = &c.notify[0];
        assert_eq!(n.name, "am");
        assert!(n.wants("pool") && !n.wants("drain"));
        assert_eq!(n.headers, [("Authorization".into(), "Bearer t".into())]);
        assert_eq!(n.timeout, Duration::from_secs(2));
        assert_eq!(n.retry_for, Duration::from_secs(60));
        assert_eq!(n.queue, 10);
        assert_eq!(n.format, NotifyFormat::Alertmanager);
    }

    #[test]
    fn bad_urls_kinds_headers_and_formats_are_named() {
        let e = parse("[[notify]]\nurl = \"ftp://x/\"\n").expect_err("scheme");
        assert!(
            e.contains("notify[0].url") && e.contains("not a webhook URL"),
            "{e}"
        );
        let e = parse("[[notify]]\nurl = \"http://\"\n").expect_err("no host");
        assert!(e.contains("not a webhook URL"), "{e}");
        let e = parse("[[notify]]\nurl = \"http://x/\"\nevents = [\"pool\", \"fleet_of_ships\"]\n")
            .expect_err("kind");
        assert!(
            e.contains("notify[0].events[1]")
                && e.contains("unknown event kind \"fleet_of_ships\"")
                && e.contains("valid kinds: endpoint, pool, drain"),
            "{e}"
        );
        let e = parse(
            "[[notify]]\nurl = \"http://x/\"\nheaders = { \"Bad Name\" = \"v\", Host = \"h\" }\n",
        )
        .expect_err("headers");
        assert!(
            e.contains("not an HTTP header name") && e.contains("set by geosteer"),
            "{e}"
        );
        let e = parse("[[notify]]\nurl = \"http://x/\"\nformat = \"xml\"\n").expect_err("format");
        assert!(e.contains("unknown format \"xml\""), "{e}");
        let e = parse("[[notify]]\nurl = \"http://x/\"\nqueue = 0\n").expect_err("queue");
        assert!(e.contains("notify[0].queue"), "{e}");
        let e = parse("[[notify]]\nurl = \"http://x/a\"\n[[notify]]\nurl = \"http://x/a\"\n")
            .expect_err("twice");
        assert!(e.contains("two receivers are named \"x/a\""), "{e}");
    }
}
