//! Runtime weights, as an operator uses them: `geosteer weight` shifts the
//! share of answers at once, shows in status and the events, survives a
//! reload, and `--reset` brings the config's weight back. Bad requests get
//! clear errors. The weight reaches queries as a command to the health
//! writer, like a drain: no reload. The same for a proxy backend's server:
//! `geosteer weight --backend` shifts the share of proxied requests.

use std::process::Output;

use hickory_proto::rr::RecordType;
use reqwest::Method;

use crate::harness::dig::{self, Ask, ip};
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::{get, get_json, post, send};
use crate::harness::origin::Origin;

fn config(extra: &str) -> String {
    format!(
        "{}
[pools.eu]
endpoints = [{{ address = \"192.0.2.1\" }}, {{ address = \"192.0.2.2\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]
",
        server_header(extra)
    )
}

/// How many of `n` A answers are 192.0.2.2.
async fn share_of_two(s: &TestServer, n: usize) -> usize {
    let ask = Ask::new("www.example.test.", RecordType::A);
    let mut hits = 0;
    for _ in 0..n {
        let m = dig::udp(s.dns, &ask).await;
        let a = dig::addrs(&m);
        assert_eq!(a.len(), 1, "one address per answer: {a:?}");
        hits += usize::from(a[0] == ip("192.0.2.2"));
    }
    hits
}

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

fn endpoint<'v>(status: &'v serde_json::Value, addr: &str) -> &'v serde_json::Value {
    status["pools"][0]["endpoints"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["address"] == addr))
        .unwrap_or_else(|| panic!("no endpoint {addr} in {status}"))
}

#[tokio::test]
async fn a_runtime_weight_shifts_answers_survives_a_reload_and_resets() {
    let s = TestServer::start(&config(""), &[]).await;
    let admin = s.running.admin_addr.to_string();
    let base = format!("http://{admin}");

    // 1:1 by config: about half of 400 (binomial sd 10; bounds at 6 sd).
    let before = share_of_two(&s, 400).await;
    assert!((140..=260).contains(&before), "1:1 gave {before}/400");

    let out = cli(&["weight", "eu", "192.0.2.2", "4", "--admin", &admin]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "eu 192.0.2.2: weight 4"
    );
    // 1:4: 320 of 400 expected (sd 8).
    let after = share_of_two(&s, 400).await;
    assert!((272..=368).contains(&after), "1:4 gave {after}/400");

    let (_, status) = get_json(&format!("{base}/api/v1/status")).await;
    let e = endpoint(&status, "192.0.2.2");
    assert_eq!(
        (e["weight"].as_u64(), e["config_weight"].as_u64()),
        (Some(4), Some(1))
    );
    assert!(endpoint(&status, "192.0.2.1")["config_weight"].is_null());
    let text = cli(&["status", "--admin", &admin]).await;
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.contains("192.0.2.2 w 4 (config 1)"), "{text}");
    assert!(!text.contains("192.0.2.1 w"), "{text}");
    let (_, events) = get_json(&format!("{base}/api/v1/events")).await;
    let weight_event = events["events"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["kind"] == "weight"))
        .unwrap_or_else(|| panic!("no weight event: {events}"));
    assert_eq!(weight_event["endpoint"], "192.0.2.2");
    assert_eq!(weight_event["from"], "config weight 1");

    // A reload keeps it (the endpoint is still there).
    let (code, body) = post(&format!("{base}/api/v1/reload"), None).await;
    assert_eq!(code, 200, "{body}");
    let (_, status) = get_json(&format!("{base}/api/v1/status")).await;
    assert_eq!(endpoint(&status, "192.0.2.2")["weight"].as_u64(), Some(4));
    let kept = share_of_two(&s, 400).await;
    assert!(
        (272..=368).contains(&kept),
        "after reload 1:4 gave {kept}/400"
    );

    let out = cli(&["weight", "eu", "192.0.2.2", "--reset", "--admin", &admin]).await;
    assert!(out.status.success(), "{out:?}");
    let (_, status) = get_json(&format!("{base}/api/v1/status")).await;
    let e = endpoint(&status, "192.0.2.2");
    assert_eq!(
        (e["weight"].as_u64(), e["config_weight"].as_u64()),
        (Some(1), None)
    );
    let reset = share_of_two(&s, 400).await;
    assert!((140..=260).contains(&reset), "reset 1:1 gave {reset}/400");
    s.stop().await;
}

#[tokio::test]
async fn bad_weight_requests_get_clear_errors_and_change_nothing() {
    let s = TestServer::start(&config("admin_token = \"t0k\""), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    let url =
        |pool: &str, addr: &str| format!("{base}/api/v1/pools/{pool}/endpoints/{addr}/weight");
    let tok = Some("t0k");
    // (method, url, JSON body, token, status, what the error says)
    type Case<'a> = (
        Method,
        String,
        Option<&'a str>,
        Option<&'a str>,
        u16,
        &'a str,
    );
    let cases: [Case; 8] = [
        (
            Method::POST,
            url("eu", "192.0.2.2"),
            Some(r#"{"weight":0}"#),
            tok,
            400,
            "1-10000",
        ),
        // A weight has no expiry: a "for" is refused, not dropped.
        (
            Method::POST,
            url("eu", "192.0.2.2"),
            Some(r#"{"weight":3,"for":"1h"}"#),
            tok,
            400,
            "unknown field `for`",
        ),
        (
            Method::POST,
            url("eu", "192.0.2.2"),
            Some(r#"{"weight":10001}"#),
            tok,
            400,
            "1-10000",
        ),
        (
            Method::POST,
            url("eu", "192.0.2.2"),
            Some("weight=3"),
            tok,
            400,
            "expected",
        ),
        (
            Method::POST,
            url("nope", "192.0.2.2"),
            Some(r#"{"weight":3}"#),
            tok,
            404,
            "no pool",
        ),
        (
            Method::POST,
            url("eu", "192.0.2.9"),
            Some(r#"{"weight":3}"#),
            tok,
            404,
            "no endpoint",
        ),
        (
            Method::POST,
            url("eu", "192.0.2.2"),
            Some(r#"{"weight":3}"#),
            None,
            401,
            "token",
        ),
        (
            Method::DELETE,
            url("eu", "192.0.2.2"),
            None,
            None,
            401,
            "token",
        ),
    ];
    for (method, u, body, token, want, says) in cases {
        let (code, text) = send(method.clone(), &u, body, token).await;
        assert_eq!(code, want, "{method} {u} {body:?}: {text}");
        assert!(text.contains(says), "{method} {u} {body:?}: {text}");
    }
    let (_, status) = get(&format!("{base}/api/v1/status")).await;
    assert!(
        !status.contains("config_weight"),
        "nothing changed: {status}"
    );
    let (code, _) = send(
        Method::POST,
        &url("eu", "192.0.2.2"),
        Some(r#"{"weight":3}"#),
        tok,
    )
    .await;
    assert_eq!(code, 200, "with the token and a good weight it applies");
    s.stop().await;
}

// === proxy backends' servers ===

/// A proxy on port 0 in front of `a` and `b` (config weight 1 each),
/// balanced by `algorithm`.
fn proxy_config(a: &Origin, b: &Origin, algorithm: &str) -> String {
    format!(
        "{}
[[proxy]]
listen = \"127.0.0.1:0\"
mode = \"http\"
routes = [{{ path_prefix = \"/\", backend = \"web\" }}]
[backends.web]
algorithm = \"{algorithm}\"
servers = [{{ address = \"{}\" }}, {{ address = \"{}\" }}]
retries = 0
",
        config(""),
        a.addr(),
        b.addr()
    )
}

/// How many of `n` proxied requests `b` served (by its own count).
async fn proxied_to(s: &TestServer, b: &Origin, n: usize) -> usize {
    let url = format!("http://{}/", s.running.proxy_addrs[0]);
    let before = b.hits();
    for _ in 0..n {
        let (code, body) = get(&url).await;
        assert_eq!(code, 200, "{body}");
    }
    (b.hits() - before) as usize
}

fn server<'v>(status: &'v serde_json::Value, addr: &str) -> &'v serde_json::Value {
    status["backends"][0]["servers"]
        .as_array()
        .and_then(|ss| ss.iter().find(|s| s["address"] == addr))
        .unwrap_or_else(|| panic!("no server {addr} in {status}"))
}

#[tokio::test]
async fn a_proxy_server_weight_shifts_requests_survives_a_reload_and_resets() {
    let (a, b) = (Origin::named("a").await, Origin::named("b").await);
    let s = TestServer::start(&proxy_config(&a, &b, "weighted_round_robin"), &[]).await;
    let admin = s.running.admin_addr.to_string();
    let base = format!("http://{admin}");
    let bs = b.addr().to_string();
    let bs = bs.as_str();

    // 1:1 by config. Smooth weighted round robin is exact (200); the bounds
    // are a binomial draw's (sd 10, 6 sd), so they hold whatever the order.
    let before = proxied_to(&s, &b, 400).await;
    assert!((140..=260).contains(&before), "1:1 gave {before}/400");

    let out = cli(&["weight", "--backend", "web", bs, "4", "--admin", &admin]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("backend web {bs}: weight 4")
    );
    // 1:4 from the very next request: 320 of 400 expected (sd 8).
    let after = proxied_to(&s, &b, 400).await;
    assert!((272..=368).contains(&after), "1:4 gave {after}/400");

    let (_, status) = get_json(&format!("{base}/api/v1/status")).await;
    let sv = server(&status, bs);
    assert_eq!(
        (sv["weight"].as_u64(), sv["config_weight"].as_u64()),
        (Some(4), Some(1)),
        "{sv}"
    );
    assert!(server(&status, &a.addr().to_string())["config_weight"].is_null());
    let text = cli(&["status", "--admin", &admin]).await;
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.contains(&format!("{bs} w 4 (config 1)")), "{text}");
    let (_, events) = get_json(&format!("{base}/api/v1/events")).await;
    let weight_event = events["events"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["kind"] == "weight"))
        .unwrap_or_else(|| panic!("no weight event: {events}"));
    assert_eq!(
        (
            &weight_event["backend"],
            &weight_event["endpoint"],
            &weight_event["from"]
        ),
        (
            &serde_json::json!("web"),
            &serde_json::json!(bs),
            &serde_json::json!("config weight 1")
        ),
        "{weight_event}"
    );
    assert!(
        weight_event["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("weight 4")),
        "{weight_event}"
    );

    // A reload keeps it: the server is still there.
    let (code, body) = post(&format!("{base}/api/v1/reload"), None).await;
    assert_eq!(code, 200, "{body}");
    let (_, status) = get_json(&format!("{base}/api/v1/status")).await;
    assert_eq!(server(&status, bs)["weight"].as_u64(), Some(4));
    let kept = proxied_to(&s, &b, 400).await;
    assert!(
        (272..=368).contains(&kept),
        "after reload 1:4 gave {kept}/400"
    );

    let out = cli(&[
        "weight",
        "--backend",
        "web",
        bs,
        "--reset",
        "--admin",
        &admin,
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("backend web {bs}: weight reset to the config's")
    );
    let (_, status) = get_json(&format!("{base}/api/v1/status")).await;
    let sv = server(&status, bs);
    assert_eq!(
        (sv["weight"].as_u64(), sv["config_weight"].as_u64()),
        (Some(1), None),
        "{sv}"
    );
    let reset = proxied_to(&s, &b, 400).await;
    assert!((140..=260).contains(&reset), "reset 1:1 gave {reset}/400");
    s.stop().await;
}

#[tokio::test]
async fn bad_server_weight_requests_get_clear_errors_and_change_nothing() {
    let (a, b) = (Origin::named("a").await, Origin::named("b").await);
    let s = TestServer::start(&proxy_config(&a, &b, "ip_hash"), &[]).await;
    let admin = s.running.admin_addr.to_string();
    let base = format!("http://{admin}");
    let bs = b.addr().to_string();
    let bs = bs.as_str();
    let url = |backend: &str, server: &str| {
        format!("{base}/api/v1/backends/{backend}/servers/{server}/weight")
    };
    // (method, url, JSON body, status, what the error says)
    let cases: [(Method, String, Option<&str>, u16, &str); 6] = [
        (
            Method::POST,
            url("web", bs),
            Some(r#"{"weight":0}"#),
            400,
            "1-10000",
        ),
        (
            Method::POST,
            url("web", bs),
            Some(r#"{"weight":10001}"#),
            400,
            "1-10000",
        ),
        (
            Method::POST,
            url("web", bs),
            Some("weight=3"),
            400,
            "expected",
        ),
        (
            Method::POST,
            url("nope", bs),
            Some(r#"{"weight":3}"#),
            404,
            "no proxy backend",
        ),
        (
            Method::POST,
            url("web", "127.0.0.1:9"),
            Some(r#"{"weight":3}"#),
            404,
            "has no server",
        ),
        (
            Method::DELETE,
            url("web", "not-an-address"),
            None,
            404,
            "host:port",
        ),
    ];
    for (method, u, body, want, says) in cases {
        let (code, text) = send(method.clone(), &u, body, None).await;
        assert_eq!(code, want, "{method} {u} {body:?}: {text}");
        assert!(text.contains(says), "{method} {u} {body:?}: {text}");
    }
    let (_, status) = get(&format!("{base}/api/v1/status")).await;
    assert!(
        !status.contains("config_weight"),
        "nothing changed: {status}"
    );
    // The CLI checks its arguments before asking.
    for args in [
        &["weight", "--backend", "web", bs][..],
        &["weight", "--backend", "web", bs, "four"][..],
        &["weight", "--backend", "web", bs, "4", "--reset"][..],
        &["weight", "eu", "192.0.2.2", "4", "5"][..],
    ] {
        let mut args = args.to_vec();
        args.extend(["--admin", admin.as_str()]);
        let out = cli(&args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
    // ip_hash weighs too: weight 10000 on b takes nearly every client
    // (a's share is 1/10001 per client in expectation).
    let (code, text) = send(
        Method::POST,
        &url("web", bs),
        Some(r#"{"weight":10000}"#),
        None,
    )
    .await;
    assert_eq!(code, 200, "{text}");
    let to_b = proxied_to(&s, &b, 20).await;
    assert_eq!(to_b, 20, "ip_hash with weights 1:10000");
    s.stop().await;
}
