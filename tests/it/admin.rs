//! The admin HTTP API (DESIGN §5) over a real socket, and the CLI against it.

use std::process::Output;
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::both_paths;
use crate::harness::dig::{self, Ask, addrs, ip};
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::{get, get_json, post};
use crate::harness::origin::Origin;

fn config(extra_server: &str, a: &Origin, b: &Origin) -> String {
    format!(
        "{}
[monitors.web]
type = \"http\"
interval = \"200ms\"
timeout = \"100ms\"
[pools.eu]
monitor = \"web\"
endpoints = [{{ address = \"192.0.2.1\", probe = \"{}\" }}, {{ address = \"192.0.2.2\", probe = \"{}\" }}]
[pools.us]
endpoints = [{{ address = \"192.0.2.9\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\", \"us\"]
answers = 2
",
        server_header(extra_server),
        a.addr(),
        b.addr()
    )
}

async fn answer(s: &TestServer) -> Vec<std::net::IpAddr> {
    let mut a = addrs(&dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await);
    a.sort();
    a
}

#[tokio::test]
async fn drain_and_undrain_take_effect_on_the_next_query() {
    let (a, b) = (Origin::start().await, Origin::start().await);
    let s = TestServer::start(&config("", &a, &b), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    assert_eq!(answer(&s).await, vec![ip("192.0.2.1"), ip("192.0.2.2")]);
    let (code, body) = post(
        &format!("{base}/api/v1/pools/eu/endpoints/192.0.2.1/drain"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    for _ in 0..10 {
        assert_eq!(
            answer(&s).await,
            vec![ip("192.0.2.2")],
            "drained endpoint answered"
        );
    }
    let (_, st) = get_json(&format!("{base}/api/v1/status")).await;
    assert_eq!(st["pools"][0]["name"], "eu");
    assert_eq!(st["pools"][0]["endpoints"][0]["draining"], true);
    let (code, _) = post(
        &format!("{base}/api/v1/pools/eu/endpoints/192.0.2.1/undrain"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(answer(&s).await, vec![ip("192.0.2.1"), ip("192.0.2.2")]);
    // Unknown pool or endpoint: 404 with a message.
    let (code, body) = post(
        &format!("{base}/api/v1/pools/nope/endpoints/192.0.2.1/drain"),
        None,
    )
    .await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no pool named"));
    let (code, _) = post(
        &format!("{base}/api/v1/pools/eu/endpoints/192.0.2.77/drain"),
        None,
    )
    .await;
    assert_eq!(code, 404);
    s.stop().await;
}

#[tokio::test]
async fn a_token_protects_every_post() {
    let (a, b) = (Origin::start().await, Origin::start().await);
    let s = TestServer::start(&config("admin_token = \"s3cret\"", &a, &b), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    let drain = format!("{base}/api/v1/pools/eu/endpoints/192.0.2.1/drain");
    assert_eq!(post(&drain, None).await.0, 401);
    assert_eq!(post(&drain, Some("wrong")).await.0, 401);
    assert_eq!(post(&format!("{base}/api/v1/reload"), None).await.0, 401);
    assert_eq!(answer(&s).await.len(), 2, "a refused drain changed nothing");
    assert_eq!(post(&drain, Some("s3cret")).await.0, 200);
    assert_eq!(answer(&s).await, vec![ip("192.0.2.2")]);
    // GETs stay open.
    assert_eq!(get(&format!("{base}/api/v1/status")).await.0, 200);
    s.stop().await;
}

#[tokio::test]
async fn serve_refuses_a_public_admin_address_without_a_token() {
    let (a, b) = (Origin::start().await, Origin::start().await);
    let cfg = config("", &a, &b).replace(
        "admin_listen = \"127.0.0.1:0\"",
        "admin_listen = \"0.0.0.0:0\"",
    );
    let (_dir, path) = crate::harness::geosteer::write_config(
        &cfg,
        &[(
            "example.test.zone",
            crate::harness::geosteer::ZONE.as_bytes(),
        )],
    );
    let err = geosteer::app::start(&path)
        .await
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("admin_token"), "{err}");
}

#[tokio::test]
async fn pool_health_status_codes_follow_the_pool_state() {
    let (a, b) = (Origin::start().await, Origin::start().await);
    let s = TestServer::start(&config("", &a, &b), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    let (code, v) = get_json(&format!("{base}/api/v1/pools/eu/health")).await;
    assert_eq!(code, 200);
    assert_eq!(v["state"], "healthy");
    assert_eq!(v["endpoints"].as_array().unwrap().len(), 2);
    a.kill().await;
    b.kill().await;
    let start = std::time::Instant::now();
    loop {
        let (code, v) = get_json(&format!("{base}/api/v1/pools/eu/health")).await;
        if code == 503 {
            assert_eq!(v["state"], "down");
            assert!(
                v["endpoints"][0]["last_error"]
                    .as_str()
                    .unwrap_or("")
                    .contains("refused"),
                "{v}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "pool never went down: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        get(&format!("{base}/api/v1/pools/nope/health")).await.0,
        404
    );
    s.stop().await;
}

both_paths! {
async fn metrics_page_explain_and_health_txt() {
    let (a, b) = (Origin::start().await, Origin::start().await);
    let s = TestServer::start(&config("", &a, &b), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    answer(&s).await;
    let _ = dig::udp(s.dns, &Ask::new("nope.example.test.", RecordType::A)).await;
    let (code, m) = get(&format!("{base}/metrics")).await;
    assert_eq!(code, 200);
    assert!(
        m.contains(
            "geosteer_dns_queries_total{name=\"www.example.test\",type=\"A\",rcode=\"NOERROR\"} 1"
        ),
        "{m}"
    );
    assert!(
        m.contains("geosteer_dns_queries_total{name=\"other\",type=\"A\",rcode=\"NXDOMAIN\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("geosteer_dns_pool_picks_total{name=\"www.example.test\",pool=\"eu\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("geosteer_pool_state{pool=\"eu\",state=\"healthy\"} 1"),
        "{m}"
    );
    assert!(m.contains("geosteer_probe_results_total"), "{m}");
    let (code, page) = get(&format!("{base}/")).await;
    assert_eq!(code, 200);
    assert!(
        page.contains("192.0.2.1") && page.contains("http-equiv=\"refresh\""),
        "{page}"
    );
    let (code, e) = get_json(&format!(
        "{base}/api/v1/explain?name=www.example.test&type=A&client=8.8.8.0/24"
    ))
    .await;
    assert_eq!(code, 200, "{e}");
    assert_eq!(e["trace"]["pool"], "eu");
    let (code, _) = get(&format!(
        "{base}/api/v1/explain?name=nope.example.test&client=1.2.3.4"
    ))
    .await;
    assert_eq!(code, 400);
    // The CLI against the live API.
    let out = cli(&[
        "explain",
        "--name",
        "www.example.test",
        "--client",
        "8.8.8.0/24",
        "--admin",
        &base,
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("pick: eu"));
    let out = cli(&["status", "--admin", &base]).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && table.contains("192.0.2.2") && table.contains("healthy"),
        "{table}"
    );
    let out = cli(&["drain", "eu", "192.0.2.2", "--admin", &base]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(answer(&s).await, vec![ip("192.0.2.1")]);
    // _health TXT reflects live state.
    let m = dig::udp(
        s.dns,
        &Ask::new("_health.www.example.test.", RecordType::TXT),
    )
    .await;
    let txt = dig::txts(&m);
    assert!(
        txt[0].starts_with("pool=eu state=healthy up=1/2 draining=1"),
        "{txt:?}"
    );
    assert!(
        txt[0].contains("latency=") && !txt[0].contains("latency=-"),
        "probes measured latency: {txt:?}"
    );
    s.stop().await;
}
}

#[tokio::test]
async fn proxy_traffic_shows_in_metrics_by_status_class_and_latency() {
    use crate::harness::origin::Mode;
    let origin = Origin::start().await;
    let config = format!(
        "{}
[[proxy]]
listen = \"127.0.0.1:0\"
mode = \"http\"
routes = [{{ backend = \"web\" }}]
[backends.web]
servers = [{{ address = \"{}\" }}]
max_fails = 100
",
        server_header(""),
        origin.addr()
    );
    let s = TestServer::start(&config, &[]).await;
    let proxy = format!("http://{}/", s.running.proxy_addrs[0]);
    for _ in 0..3 {
        assert_eq!(get(&proxy).await.0, 200);
    }
    origin.set_mode(Mode::Failing);
    assert_eq!(get(&proxy).await.0, 500);
    let (code, m) = get(&format!("http://{}/metrics", s.running.admin_addr)).await;
    assert_eq!(code, 200);
    let l = format!("backend=\"web\",server=\"{}\"", origin.addr());
    for line in [
        format!("geosteer_proxy_requests_total{{{l}}} 4"),
        format!("geosteer_proxy_responses_total{{{l},class=\"2xx\"}} 3"),
        format!("geosteer_proxy_responses_total{{{l},class=\"5xx\"}} 1"),
        format!("geosteer_proxy_errors_total{{{l}}} 1"),
        format!("geosteer_proxy_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} 4"),
        format!("geosteer_proxy_request_duration_seconds_count{{{l}}} 4"),
        "# TYPE geosteer_proxy_idle_connections gauge".to_string(),
    ] {
        assert!(m.contains(&line), "missing {line} in:\n{m}");
    }
    // Each family's samples follow its own TYPE line (Prometheus text format).
    let type_at = m
        .find("# TYPE geosteer_proxy_responses_total")
        .expect("TYPE");
    let first = m.find("geosteer_proxy_responses_total{").expect("sample");
    let next_type = m[type_at + 1..].find("# TYPE").map(|i| i + type_at + 1);
    assert!(first > type_at && next_type.is_none_or(|n| first < n));
    s.stop().await;
}

/// Runs the CLI off the runtime thread: it talks to the admin API this
/// test's runtime serves, so blocking here would deadlock both.
async fn cli(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(&args)
            .output()
            .expect("run geosteer")
    })
    .await
    .expect("cli task")
}
