//! `/metrics` as Prometheus reads it: a server that has answered DNS, run
//! probes and proxied requests passes `promtool check metrics` without a word.

use std::io::Write;
use std::process::{Command, Stdio};

use hickory_proto::rr::RecordType;

use crate::harness::dig::{self, Ask};
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::get;
use crate::harness::origin::{Mode, Origin};

#[tokio::test]
async fn promtool_finds_nothing_to_say_about_metrics() {
    let (a, b) = (Origin::start().await, Origin::start().await);
    let config = format!(
        "{}
[monitors.web]
type = \"http\"
interval = \"200ms\"
timeout = \"100ms\"
[pools.eu]
monitor = \"web\"
endpoints = [{{ address = \"192.0.2.1\", probe = \"{a}\" }}, {{ address = \"192.0.2.2\", probe = \"{b}\" }}]
[pools.us]
endpoints = [{{ address = \"192.0.2.9\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\", \"us\"]
[[proxy]]
listen = \"127.0.0.1:0\"
mode = \"http\"
routes = [{{ backend = \"web\" }}]
[backends.web]
servers = [{{ address = \"{a}\" }}, {{ address = \"{b}\" }}]
pool = \"eu\"
monitor = \"web\"
max_fails = 100
",
        server_header(""),
        a = a.addr(),
        b = b.addr(),
    );
    let s = TestServer::start(&config, &[]).await;
    // DNS: a balanced answer, an NXDOMAIN, a TXT.
    let _ = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await;
    let _ = dig::udp(s.dns, &Ask::new("nope.example.test.", RecordType::A)).await;
    let _ = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::TXT)).await;
    // Proxy: successes, then a 5xx.
    let proxy = format!("http://{}/", s.running.proxy_addrs[0]);
    for _ in 0..4 {
        assert_eq!(get(&proxy).await.0, 200);
    }
    b.set_mode(Mode::Failing);
    a.set_mode(Mode::Failing);
    assert_eq!(get(&proxy).await.0, 500);
    let (code, m) = get(&format!("http://{}/metrics", s.running.admin_addr)).await;
    assert_eq!(code, 200);
    // Each source did show up, so promtool checks real samples.
    for needle in [
        "geosteer_dns_queries_total{name=\"www.example.test\",type=\"A\",rcode=\"NOERROR\"} 1",
        "geosteer_dns_queries_total{name=\"other\",type=\"A\",rcode=\"NXDOMAIN\"} 1",
        "geosteer_probe_duration_seconds_bucket{pool=\"eu\"",
        "geosteer_probe_results_total{pool=\"eu\"",
        "geosteer_backend_probe_results_total{backend=\"web\"",
        "geosteer_backend_probe_duration_seconds_bucket{backend=\"web\"",
        "geosteer_proxy_request_duration_seconds_count{backend=\"web\"",
        "geosteer_proxy_responses_total{backend=\"web\"",
        "geosteer_pool_state{pool=\"eu\",state=\"healthy\"}",
    ] {
        assert!(m.contains(needle), "missing {needle} in:\n{m}");
    }
    let (ok, out) = promtool_check(&m);
    assert!(
        ok && out.is_empty(),
        "promtool check metrics complained:\n{out}\n--- metrics:\n{m}"
    );
    s.stop().await;
}

/// `promtool check metrics` with `text` on stdin: (exit 0, stdout + stderr).
pub fn promtool_check(text: &str) -> (bool, String) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!(
            "promtool is needed for this test and could not be run ({e}): install \
             Debian's `prometheus` package (apt-get install prometheus), as .ci/run does"
        ),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let mut said = String::from_utf8_lossy(&out.stdout).into_owned();
    said.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), said)
}
