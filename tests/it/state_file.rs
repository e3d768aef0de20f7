//! `[server] state_file`: a single node keeps its drains, runtime weights and
//! overrides across a restart; a corrupt file is refused loudly and moved
//! aside, never dropped; an entry for an endpoint the config no longer has
//! is dropped and the rest applies. A proxy server's runtime weight is kept too.

use std::net::IpAddr;

use hickory_proto::rr::RecordType;

use crate::harness::dig::{self, Ask, ip};
use crate::harness::geosteer::{ZONE, server_header, write_config};
use crate::harness::http::{get_json, send};
use geosteer::app::{self, Running};

fn config() -> String {
    format!(
        "{}
[pools.eu]
endpoints = [{{ address = \"192.0.2.1\" }}, {{ address = \"192.0.2.2\" }}, {{ address = \"192.0.2.3\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]
answers = 3
",
        server_header("state_file = \"state/geosteer.json\"")
    )
}

async fn answer(r: &Running) -> Vec<IpAddr> {
    let m = dig::udp(
        r.dns_addrs[0],
        &Ask::new("www.example.test.", RecordType::A),
    )
    .await;
    let mut a = dig::addrs(&m);
    a.sort();
    a
}

async fn post(r: &Running, path: &str, body: Option<&str>) {
    let url = format!("http://{}{path}", r.admin_addr);
    let method = if body.is_some() || path.ends_with("drain") {
        reqwest::Method::POST
    } else {
        reqwest::Method::DELETE
    };
    let (code, text) = send(method, &url, body, None).await;
    assert_eq!(code, 200, "{path}: {text}");
}

fn endpoint<'v>(status: &'v serde_json::Value, addr: &str) -> &'v serde_json::Value {
    status["pools"][0]["endpoints"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["address"] == addr))
        .unwrap_or_else(|| panic!("no endpoint {addr} in {status}"))
}

#[tokio::test]
async fn a_restart_keeps_a_drain_a_weight_and_an_override() {
    let (dir, path) = write_config(&config(), &[("example.test.zone", ZONE.as_bytes())]);
    std::fs::create_dir(dir.path().join("state")).expect("state dir");
    let r = app::start(&path).await.expect("start");
    assert_eq!(
        answer(&r).await,
        vec![ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")]
    );
    post(&r, "/api/v1/pools/eu/endpoints/192.0.2.3/drain", None).await;
    post(
        &r,
        "/api/v1/pools/eu/endpoints/192.0.2.2/weight",
        Some(r#"{"weight": 7}"#),
    )
    .await;
    post(
        &r,
        "/api/v1/pools/eu/endpoints/192.0.2.1/override",
        Some(r#"{"state": "down", "reason": "disk swap"}"#),
    )
    .await;
    assert_eq!(answer(&r).await, vec![ip("192.0.2.2")]);
    // On disk before the API answered: no wait.
    let file = std::fs::read_to_string(dir.path().join("state/geosteer.json")).expect("saved");
    assert!(
        file.contains("disk swap") && file.contains("\"weight\": 7"),
        "{file}"
    );
    r.stop().await;

    let r = app::start(&path).await.expect("restart");
    assert_eq!(answer(&r).await, vec![ip("192.0.2.2")], "all three kept");
    let (_, status) = get_json(&format!("http://{}/api/v1/status", r.admin_addr)).await;
    assert_eq!(endpoint(&status, "192.0.2.3")["draining"], true);
    assert_eq!(endpoint(&status, "192.0.2.2")["weight"], 7);
    assert_eq!(
        endpoint(&status, "192.0.2.1")["override"]["reason"],
        "disk swap"
    );

    // Undone, and a restart keeps that too.
    post(&r, "/api/v1/pools/eu/endpoints/192.0.2.3/undrain", None).await;
    post(&r, "/api/v1/pools/eu/endpoints/192.0.2.2/weight", None).await;
    post(&r, "/api/v1/pools/eu/endpoints/192.0.2.1/override", None).await;
    r.stop().await;
    let r = app::start(&path).await.expect("restart again");
    assert_eq!(
        answer(&r).await,
        vec![ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")]
    );
    r.stop().await;
}

#[tokio::test]
async fn a_corrupt_state_file_is_refused_and_kept_aside() {
    let (dir, path) = write_config(&config(), &[("example.test.zone", ZONE.as_bytes())]);
    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("state dir");
    let file = state.join("geosteer.json");
    std::fs::write(&file, b"{\"version\": 1, \"endpoints\": [{\"pool\": \"eu\"").expect("write");
    let err = match app::start(&path).await {
        Ok(r) => {
            r.stop().await;
            panic!("started with a corrupt state file");
        }
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(
        err.contains("is corrupt") && err.contains(".corrupt-"),
        "{err}"
    );
    let aside: Vec<String> = std::fs::read_dir(&state)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        aside.len() == 1 && aside[0].starts_with("geosteer.json.corrupt-"),
        "{aside:?}"
    );
    assert!(
        std::fs::read_to_string(state.join(&aside[0]))
            .expect("kept")
            .contains("\"pool\": \"eu\""),
        "the bytes are kept as they were"
    );

    // An entry for an endpoint the config no longer has is dropped; the
    // rest applies.
    std::fs::write(
        &file,
        br#"{"version": 1, "endpoints": [
            {"pool": "eu", "endpoint": "192.0.2.9", "drained": true},
            {"pool": "gone", "endpoint": "192.0.2.1", "drained": true},
            {"pool": "eu", "endpoint": "192.0.2.2", "drained": true}]}"#,
    )
    .expect("write");
    let r = app::start(&path)
        .await
        .expect("starts, dropping what is gone");
    assert_eq!(answer(&r).await, vec![ip("192.0.2.1"), ip("192.0.2.3")]);
    r.stop().await;
}

#[tokio::test]
async fn a_state_file_that_cannot_be_written_stops_the_start() {
    // No `state` folder: every save would fail, and the admin API would
    // acknowledge drains that a restart forgets.
    let (dir, path) = write_config(&config(), &[("example.test.zone", ZONE.as_bytes())]);
    let err = match app::start(&path).await {
        Ok(r) => {
            r.stop().await;
            panic!("started with a state_file it cannot write");
        }
        Err(e) => e.to_string(),
    };
    let file = dir.path().join("state/geosteer.json");
    assert!(
        err.contains(&file.display().to_string()) && err.contains("cannot write it"),
        "{err}"
    );
    // With the folder, it starts and the file is there at once.
    std::fs::create_dir(dir.path().join("state")).expect("state dir");
    let r = app::start(&path).await.expect("start");
    let text = std::fs::read_to_string(&file).expect("written at start");
    assert!(text.contains("\"version\": 1"), "{text}");
    r.stop().await;
}

#[tokio::test]
async fn a_restart_keeps_a_proxy_servers_weight() {
    let config = format!(
        "{}[backends.web]\nalgorithm = \"weighted_round_robin\"\nservers = [{{ address = \"127.0.0.1:9\" }}, {{ address = \"127.0.0.1:10\", weight = 2 }}]\n",
        config()
    );
    let (dir, path) = write_config(&config, &[("example.test.zone", ZONE.as_bytes())]);
    std::fs::create_dir(dir.path().join("state")).expect("state dir");
    let r = app::start(&path).await.expect("start");
    post(
        &r,
        "/api/v1/backends/web/servers/127.0.0.1:10/weight",
        Some(r#"{"weight": 5}"#),
    )
    .await;
    let file = std::fs::read_to_string(dir.path().join("state/geosteer.json")).expect("saved");
    let saved: serde_json::Value = serde_json::from_str(&file).expect("JSON");
    assert_eq!(
        saved["servers"],
        serde_json::json!([{ "backend": "web", "server": "127.0.0.1:10", "weight": 5 }]),
        "{file}"
    );
    r.stop().await;

    let server = |status: &serde_json::Value| status["backends"][0]["servers"][1].clone();
    let r = app::start(&path).await.expect("restart");
    let (_, status) = get_json(&format!("http://{}/api/v1/status", r.admin_addr)).await;
    let s = server(&status);
    assert_eq!(
        (s["weight"].as_u64(), s["config_weight"].as_u64()),
        (Some(5), Some(2)),
        "{s}"
    );
    post(&r, "/api/v1/backends/web/servers/127.0.0.1:10/weight", None).await;
    r.stop().await;
    let r = app::start(&path).await.expect("restart again");
    let (_, status) = get_json(&format!("http://{}/api/v1/status", r.admin_addr)).await;
    let s = server(&status);
    assert_eq!(
        (s["weight"].as_u64(), s["config_weight"].as_u64()),
        (Some(2), None),
        "the reset was kept too: {s}"
    );
    r.stop().await;
}

#[tokio::test]
async fn a_gradual_drain_resumes_after_a_restart_and_one_that_ended_meanwhile_drains() {
    // A `drain --over` under way was not saved: after a restart the
    // endpoint came back at full weight, as if never drained.
    let (dir, path) = write_config(&config(), &[("example.test.zone", ZONE.as_bytes())]);
    std::fs::create_dir(dir.path().join("state")).expect("state dir");
    let r = app::start(&path).await.expect("start");
    post(
        &r,
        "/api/v1/pools/eu/endpoints/192.0.2.3/drain",
        Some(r#"{"over": "1h"}"#),
    )
    .await;
    let status_url = |r: &Running| format!("http://{}/api/v1/status", r.admin_addr);
    let (_, status) = get_json(&status_url(&r)).await;
    let before = endpoint(&status, "192.0.2.3")["ramp"].clone();
    assert_eq!(before["direction"], "down", "{status}");
    r.stop().await;

    let r = app::start(&path).await.expect("restart");
    let (_, status) = get_json(&status_url(&r)).await;
    let after = &endpoint(&status, "192.0.2.3")["ramp"];
    assert_eq!(after["direction"], "down", "{status}");
    assert_eq!(after["start_unix_ms"], before["start_unix_ms"], "{status}");
    assert_eq!(after["end_unix_ms"], before["end_unix_ms"], "{status}");
    r.stop().await;

    // Ended while stopped: drained from the start on.
    std::fs::write(
        dir.path().join("state/geosteer.json"),
        br#"{"version": 1, "endpoints": [
            {"pool": "eu", "endpoint": "192.0.2.3",
             "drain_over": {"start_unix_ms": 1000, "end_unix_ms": 2000}}]}"#,
    )
    .expect("write");
    let r = app::start(&path).await.expect("start with an ended drain");
    crate::harness::eventually::eventually(
        std::time::Duration::from_secs(5),
        "the ended gradual drain drains",
        async || {
            let got = answer(&r).await;
            if got == vec![ip("192.0.2.1"), ip("192.0.2.2")] {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        },
    )
    .await;
    let (_, status) = get_json(&status_url(&r)).await;
    assert_eq!(endpoint(&status, "192.0.2.3")["draining"], true, "{status}");
    r.stop().await;
}
