//! Overrides and pushed health, as an operator and a deployment pipeline use
//! them: `geosteer override ... down` takes a passing endpoint out, `up`
//! keeps a failing one in (a drain still wins), `--for` ends it by itself;
//! a pool whose monitor is `type = "external"` answers with what was pushed
//! and loses an endpoint whose push was not refreshed within its ttl. Each
//! change is an event and shows in status, explain and /metrics.

use std::net::IpAddr;
use std::process::Output;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use reqwest::Method;

use crate::harness::dig::{self, Ask, ip};
use crate::harness::eventually::{eventually, until};
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::{get, get_json, send};
use crate::harness::origin::{Mode, Origin};

async fn cli(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(&args)
            .env_remove("GEOSTEER_ADMIN")
            .env_remove("GEOSTEER_ADMIN_TOKEN")
            .output()
            .expect("run geosteer")
    })
    .await
    .expect("join")
}

/// The sorted addresses of one A answer for www.example.test.
async fn answer(s: &TestServer) -> Vec<IpAddr> {
    let m = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await;
    let mut a = dig::addrs(&m);
    a.sort();
    a
}

async fn answers_become(s: &TestServer, want: &[&str], what: &str) {
    let want: Vec<IpAddr> = want.iter().map(|a| ip(a)).collect();
    eventually(Duration::from_secs(5), what, async || {
        let got = answer(s).await;
        if got == want {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await
}

fn endpoint<'v>(status: &'v serde_json::Value, addr: &str) -> &'v serde_json::Value {
    status["pools"][0]["endpoints"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["address"] == addr))
        .unwrap_or_else(|| panic!("no endpoint {addr} in {status}"))
}

fn events_of(events: &serde_json::Value, kind: &str) -> Vec<serde_json::Value> {
    events["events"]
        .as_array()
        .map(|es| es.iter().filter(|e| e["kind"] == kind).cloned().collect())
        .unwrap_or_default()
}

fn probed_config(ok: &Origin, failing: &Origin) -> String {
    format!(
        "{}
[monitors.web]
type = \"http\"
interval = \"200ms\"
timeout = \"100ms\"
rise = 1
fall = 1
[pools.eu]
monitor = \"web\"
endpoints = [{{ address = \"192.0.2.1\", probe = \"{}\" }}, {{ address = \"192.0.2.2\", probe = \"{}\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]
answers = 2
",
        server_header(""),
        ok.addr(),
        failing.addr()
    )
}

#[tokio::test]
async fn an_override_takes_a_passing_endpoint_out_and_keeps_a_failing_one_in() {
    let ok = Origin::start().await;
    let failing = Origin::start().await;
    failing.set_mode(Mode::Failing);
    let s = TestServer::start(&probed_config(&ok, &failing), &[]).await;
    let admin = s.running.admin_addr.to_string();
    let base = format!("http://{admin}");
    answers_become(&s, &["192.0.2.1"], "the failing endpoint out by its checks").await;

    // Up despite its failing checks.
    let out = cli(&[
        "override",
        "eu",
        "192.0.2.2",
        "up",
        "--reason",
        "check is a false alarm",
        "--admin",
        &admin,
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "eu 192.0.2.2: override up (check is a false alarm)"
    );
    // Applied before the command returned: the very next answer has it.
    assert_eq!(answer(&s).await, vec![ip("192.0.2.1"), ip("192.0.2.2")]);
    let (_, status) = get_json(&format!("{base}/api/v1/status")).await;
    let e = endpoint(&status, "192.0.2.2");
    assert_eq!(e["state"], "up", "{e}");
    assert_eq!(e["health"], "down", "its checks still fail: {e}");
    assert_eq!(e["override"]["state"], "up");
    assert_eq!(e["override"]["reason"], "check is a false alarm");
    let text = cli(&["status", "--admin", &admin]).await;
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(
        text.contains("override up: check is a false alarm"),
        "{text}"
    );
    let (_, explain) = get_json(&format!(
        "{base}/api/v1/explain?name=www.example.test&type=A&client=198.51.100.1"
    ))
    .await;
    assert_eq!(
        explain["overrides"][0], "eu 192.0.2.2: override up (check is a false alarm)",
        "{explain}"
    );
    let (_, page) = get(&format!("{base}/")).await;
    assert!(page.contains("override up: check is a false alarm"), "page");

    // A drain wins over a forced up.
    let out = cli(&["drain", "eu", "192.0.2.2", "--admin", &admin]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(answer(&s).await, vec![ip("192.0.2.1")]);
    let out = cli(&["undrain", "eu", "192.0.2.2", "--admin", &admin]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(answer(&s).await, vec![ip("192.0.2.1"), ip("192.0.2.2")]);

    // Down despite passing checks, for one second.
    let out = cli(&[
        "override",
        "eu",
        "192.0.2.1",
        "down",
        "--reason",
        "maintenance",
        "--for",
        "1s",
        "--admin",
        &admin,
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(answer(&s).await, vec![ip("192.0.2.2")]);
    let (_, metrics) = get(&format!("{base}/metrics")).await;
    for line in [
        "geosteer_endpoint_overrides{pool=\"eu\",state=\"up\"} 1",
        "geosteer_endpoint_overrides{pool=\"eu\",state=\"down\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in /metrics");
    }
    // The writer's tick ends it.
    answers_become(&s, &["192.0.2.1", "192.0.2.2"], "the 1s override expired").await;

    // Cleared: the checks decide again.
    let out = cli(&["override", "eu", "192.0.2.2", "--clear", "--admin", &admin]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(answer(&s).await, vec![ip("192.0.2.1")]);

    let (_, events) = get_json(&format!("{base}/api/v1/events")).await;
    let overrides = events_of(&events, "override");
    let seen: Vec<(String, String)> = overrides
        .iter()
        .map(|e| {
            (
                format!("{} {}", e["endpoint"].as_str().unwrap_or(""), e["state"]),
                e["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let has = |endpoint_state: &str, reason: &str| {
        seen.iter()
            .any(|(s, r)| s == endpoint_state && r.contains(reason))
    };
    assert!(
        has("192.0.2.2 \"override up\"", "check is a false alarm"),
        "{seen:?}"
    );
    assert!(
        has("192.0.2.1 \"override down\"", "maintenance, until"),
        "{seen:?}"
    );
    assert!(has("192.0.2.1 \"expired\"", "maintenance"), "{seen:?}");
    assert!(
        has("192.0.2.2 \"cleared\"", "check is a false alarm"),
        "{seen:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_override_requests_get_clear_errors() {
    let ok = Origin::start().await;
    let s = TestServer::start(&probed_config(&ok, &ok), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    let url =
        |pool: &str, addr: &str| format!("{base}/api/v1/pools/{pool}/endpoints/{addr}/override");
    let cases: [(String, &str, u16, &str); 6] = [
        (
            url("eu", "192.0.2.1"),
            r#"{"state":"sideways","reason":"x"}"#,
            400,
            "must be",
        ),
        (
            url("eu", "192.0.2.1"),
            r#"{"state":"down"}"#,
            400,
            "needs a reason",
        ),
        (
            url("eu", "192.0.2.1"),
            r#"{"state":"down","reason":"x","for":"soon"}"#,
            400,
            "invalid duration",
        ),
        (
            url("eu", "192.0.2.1"),
            r#"{"state":"down","reason":"x","until":"1h"}"#,
            400,
            "expected",
        ),
        (
            url("nope", "192.0.2.1"),
            r#"{"state":"down","reason":"x"}"#,
            404,
            "no pool",
        ),
        (
            url("eu", "192.0.2.9"),
            r#"{"state":"down","reason":"x"}"#,
            404,
            "no endpoint",
        ),
    ];
    for (u, body, want, says) in cases {
        let (code, text) = send(Method::POST, &u, Some(body), None).await;
        assert_eq!(code, want, "{u} {body}: {text}");
        assert!(text.contains(says), "{u} {body}: {text}");
    }
    let (_, status) = get(&format!("{base}/api/v1/status")).await;
    assert!(
        !status.contains("\"override\""),
        "nothing changed: {status}"
    );
    s.stop().await;
}

fn external_config() -> String {
    format!(
        "{}
[monitors.deploy]
type = \"external\"
[pools.eu]
monitor = \"deploy\"
endpoints = [{{ address = \"192.0.2.1\" }}, {{ address = \"192.0.2.2\" }}]
[pools.probed]
endpoints = [{{ address = \"192.0.2.9\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]
answers = 2
",
        server_header("")
    )
}

#[tokio::test]
async fn pushed_health_answers_and_goes_down_when_not_refreshed() {
    let s = TestServer::start(&external_config(), &[]).await;
    let admin = s.running.admin_addr.to_string();
    let base = format!("http://{admin}");
    let url =
        |pool: &str, addr: &str| format!("{base}/api/v1/pools/{pool}/endpoints/{addr}/health");

    // Nothing pushed yet: unknown, out of answers (the pool is down).
    let (_, status) = get_json(&format!("{base}/api/v1/status")).await;
    assert_eq!(endpoint(&status, "192.0.2.1")["health"], "unknown");

    let (code, body) = send(
        Method::PUT,
        &url("eu", "192.0.2.1"),
        Some(r#"{"status":"up","ttl":"1s","latency_ms":12}"#),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let out = cli(&[
        "push",
        "eu",
        "192.0.2.2",
        "up",
        "--ttl",
        "60s",
        "--reason",
        "deployed",
        "--admin",
        &admin,
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(answer(&s).await, vec![ip("192.0.2.1"), ip("192.0.2.2")]);
    let (_, status) = get_json(&format!("{base}/api/v1/status")).await;
    assert_eq!(endpoint(&status, "192.0.2.1")["pushed"]["ttl_ms"], 1000);

    // Not refreshed within 1 s: down, with the reason, and an event.
    answers_become(&s, &["192.0.2.2"], "the 1s push expired").await;
    let (_, status) = get_json(&format!("{base}/api/v1/status")).await;
    let e = endpoint(&status, "192.0.2.1");
    assert_eq!(e["health"], "down");
    assert_eq!(e["last_error"], "no health pushed within its ttl (1s)");
    let (_, events) = get_json(&format!("{base}/api/v1/events")).await;
    assert!(
        events_of(&events, "endpoint")
            .iter()
            .any(|e| e["endpoint"] == "192.0.2.1"
                && e["state"] == "down"
                && e["reason"].as_str().is_some_and(|r| r.contains("ttl"))),
        "{events}"
    );

    // Pushed down: out at once, with the pusher's reason.
    let (code, body) = send(
        Method::PUT,
        &url("eu", "192.0.2.2"),
        Some(r#"{"status":"down","ttl":"60s","reason":"rollout failed"}"#),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (_, status) = get_json(&format!("{base}/api/v1/status")).await;
    assert_eq!(
        endpoint(&status, "192.0.2.2")["last_error"],
        "rollout failed"
    );
    // Back up by a push.
    let (code, _) = send(
        Method::PUT,
        &url("eu", "192.0.2.1"),
        Some(r#"{"status":"up","ttl":"60s"}"#),
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(answer(&s).await, vec![ip("192.0.2.1")]);

    // Refused: a pool checked by probes (or none), a bad status, a bad ttl.
    for (u, body, want, says) in [
        (
            url("probed", "192.0.2.9"),
            r#"{"status":"up","ttl":"30s"}"#,
            409,
            "type = \\\"external\\\"",
        ),
        (
            url("eu", "192.0.2.1"),
            r#"{"status":"fine","ttl":"30s"}"#,
            400,
            "must be",
        ),
        (
            url("eu", "192.0.2.1"),
            r#"{"status":"up","ttl":"0s"}"#,
            400,
            "ttl must be",
        ),
        (
            url("eu", "192.0.2.1"),
            r#"{"status":"up"}"#,
            400,
            "expected",
        ),
    ] {
        let (code, text) = send(Method::PUT, &u, Some(body), None).await;
        assert_eq!(code, want, "{u} {body}: {text}");
        assert!(text.contains(says), "{u} {body}: {text}");
    }
    until(
        Duration::from_millis(10),
        "nothing else changed",
        async || answer(&s).await == vec![ip("192.0.2.1")],
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn an_override_for_a_hundred_thousand_years_is_recorded_and_the_writer_lives_on() {
    // Past the year 9999 RFC 3339 has no text: the event's "until" once
    // panicked the health writer, so that every later drain, weight or
    // override answered "the health writer is not running".
    let ok = Origin::start().await;
    let s = TestServer::start(&probed_config(&ok, &ok), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    answers_become(&s, &["192.0.2.1", "192.0.2.2"], "both endpoints up").await;
    let url = format!("{base}/api/v1/pools/eu/endpoints/192.0.2.2/override");
    let (code, text) = send(
        Method::POST,
        &url,
        Some(r#"{"state":"down","reason":"retired","for":"100000y"}"#),
        None,
    )
    .await;
    assert_eq!(code, 200, "{text}");
    assert_eq!(answer(&s).await, vec![ip("192.0.2.1")]);
    let (_, events) = get_json(&format!("{base}/api/v1/events")).await;
    let reasons: Vec<String> = events_of(&events, "override")
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("retired, until after 9999-12-31T23:59:59Z")),
        "{reasons:?}"
    );
    // The writer still takes commands.
    let drain = format!("{base}/api/v1/pools/eu/endpoints/192.0.2.1/drain");
    let (code, text) = send(Method::POST, &drain, None, None).await;
    assert_eq!(code, 200, "{text}");
    let (_, page) = get(&format!("{base}/")).await;
    assert!(page.contains("retired"), "page");
    let (code, text) = send(Method::DELETE, &url, None, None).await;
    assert_eq!(code, 200, "{text}");
    assert_eq!(answer(&s).await, vec![ip("192.0.2.2")]);
    s.stop().await;
}
