//! The status page's history in a real browser: an origin dies, and the page
//! headless Chromium renders shows the endpoint down with its reason and the
//! event row; `GET /api/v1/events` and `geosteer status --events` agree.
//!
//! Chromium is driven through its command line (`--dump-dom`,
//! `--screenshot`), not WebDriver or the DevTools protocol
//! (fantoccini, chromiumoxide): the page is server-rendered HTML with no
//! script, so the DOM after load is all there is to check, and the command
//! line needs no extra crate, no driver process and no port of its own.
//! `--virtual-time-budget` runs the page's clock past its 5 s refresh, so the
//! DOM dumped is the one the page's own refresh fetched, not only the first
//! load: the page counts its refreshes in `<body data-refreshes>` and the
//! test checks it. (The refresh is a script that fetches the page and swaps
//! the body in, not a `<meta http-equiv="refresh">` navigation: with one,
//! `--virtual-time-budget` never returns.)

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::eventually::eventually;
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::{get_json, post};
use crate::harness::origin::Origin;

/// Virtual time the page is given: past its 5 s refresh.
const VIRTUAL_TIME_MS: u32 = 7_000;
/// Real time one Chromium run may take.
const CHROMIUM_DEADLINE: Duration = Duration::from_secs(90);

fn config(a: &Origin, b: &Origin) -> String {
    format!(
        "{}
[monitors.web]
type = \"http\"
interval = \"200ms\"
timeout = \"100ms\"
rise = 1
fall = 1
window = \"30s\"
[pools.eu]
monitor = \"web\"
endpoints = [{{ address = \"192.0.2.1\", probe = \"{}\" }}, {{ address = \"192.0.2.2\", probe = \"{}\" }}]
[pools.us]
endpoints = [{{ address = \"192.0.2.9\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\", \"us\"]
",
        server_header(""),
        a.addr(),
        b.addr()
    )
}

/// The Chromium binary (Debian's `chromium`), or a clear failure: this test
/// never skips.
fn chromium() -> String {
    let bin = std::env::var("GEOSTEER_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    match Command::new(&bin).arg("--version").output() {
        Ok(out) if out.status.success() => bin,
        Ok(out) => panic!(
            "{bin} --version failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "headless Chromium is needed for the status page test and `{bin}` cannot run ({e}): \
             install it (Debian: apt-get install chromium; .ci/run does) or set GEOSTEER_CHROMIUM"
        ),
    }
}

/// Runs Chromium headless on `url` with `args`; returns its stdout. Blocking:
/// call it off the runtime (the server under test runs on it).
fn run_chromium(bin: &str, profile: &Path, args: &[String], url: &str) -> String {
    let mut child = Command::new(bin)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1100,620",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={VIRTUAL_TIME_MS}"))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let started = Instant::now();
    loop {
        if child.try_wait().expect("chromium wait").is_some() {
            break;
        }
        if started.elapsed() > CHROMIUM_DEADLINE {
            let _ = child.kill();
            panic!("{bin} did not finish within {CHROMIUM_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("chromium output");
    assert!(
        out.status.success(),
        "{bin} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Where the screenshot goes: `GEOSTEER_SCREENSHOT`, else target/status-page.png.
fn screenshot_path() -> PathBuf {
    match std::env::var_os("GEOSTEER_SCREENSHOT") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/status-page.png"),
    }
}

/// The `<tr>` elements of `html` that contain every one of `needles`.
fn rows_with<'a>(html: &'a str, needles: &[&str]) -> Vec<&'a str> {
    html.split("<tr")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap_or(r))
        .filter(|r| needles.iter().all(|n| r.contains(n)))
        .collect()
}

#[tokio::test]
async fn the_status_page_shows_a_dead_origin_and_its_event_in_chromium() {
    let bin = chromium();
    let (a, b) = (Origin::start().await, Origin::start().await);
    let s = TestServer::start(&config(&a, &b), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);

    a.kill().await;
    // Wait until the API says the endpoint is down.
    let reason = eventually(Duration::from_secs(10), "endpoint down", async || {
        let (_, st) = get_json(&format!("{base}/api/v1/status")).await;
        let e = &st["pools"][0]["endpoints"][0];
        if e["state"] == "down" {
            Ok(e["last_error"].as_str().unwrap_or("").to_string())
        } else {
            Err(format!("{st}"))
        }
    })
    .await;
    assert!(!reason.is_empty(), "a down endpoint without a reason");

    // A drain and a failed reload are recorded too.
    let (code, body) = post(
        &format!("{base}/api/v1/pools/eu/endpoints/192.0.2.2/drain"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let good = std::fs::read_to_string(s.config_path()).expect("config");
    std::fs::write(s.config_path(), "[server\n").expect("write config");
    assert!(
        s.running.reload().await.is_err(),
        "a broken config reloaded"
    );
    std::fs::write(s.config_path(), good).expect("write config");

    // The JSON history: the down event, with the same reason, newest first.
    let (code, ev) = get_json(&format!("{base}/api/v1/events")).await;
    assert_eq!(code, 200, "{ev}");
    let events = ev["events"].as_array().expect("events array");
    let down = events
        .iter()
        .find(|e| e["kind"] == "endpoint" && e["endpoint"] == "192.0.2.1")
        .unwrap_or_else(|| panic!("no endpoint event in {ev}"));
    assert_eq!(down["state"], "down", "{ev}");
    assert_eq!(down["from"], "up", "{ev}");
    assert_eq!(down["pool"], "eu", "{ev}");
    assert_eq!(down["reason"], reason.as_str(), "{ev}");
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or(""),
                e["state"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(kinds[0], ("reload", "failed"), "{ev}");
    assert!(kinds.contains(&("drain", "drained")), "{ev}");
    assert!(kinds.contains(&("pool", "down")), "{ev}");
    let times: Vec<u64> = events
        .iter()
        .map(|e| e["at_unix_ms"].as_u64().expect("at_unix_ms"))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );
    let pools = ev["pools"].as_array().expect("pools array");
    assert_eq!(pools[0]["pool"], "eu", "{ev}");
    assert_eq!(pools[0]["window_ms"], 30_000, "{ev}");
    assert!(!pools[0]["samples"].as_array().expect("samples").is_empty());

    // The CLI's readable list.
    let admin = base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(["status", "--events", "--admin", &admin])
            .output()
            .expect("run geosteer status --events")
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines().any(|l| l.contains("eu 192.0.2.1")
            && l.contains("down (was up)")
            && l.contains(&reason)),
        "status --events:\n{text}"
    );

    // The page, rendered by Chromium after its own refresh.
    let profile = tempfile::tempdir().expect("chromium profile dir");
    let shot = screenshot_path();
    if let Some(dir) = shot.parent() {
        std::fs::create_dir_all(dir).expect("screenshot folder");
    }
    let _ = std::fs::remove_file(&shot);
    let (url, prof, b2) = (
        format!("{base}/"),
        profile.path().to_path_buf(),
        bin.clone(),
    );
    let dom = tokio::task::spawn_blocking(move || {
        run_chromium(&b2, &prof, &["--dump-dom".to_string()], &url)
    })
    .await
    .expect("join");
    assert!(
        dom.contains("<body data-refreshes=\"1\">"),
        "the page did not refresh itself once within {VIRTUAL_TIME_MS} ms of virtual time:\n{dom}"
    );
    let endpoint_rows = rows_with(&dom, &["class=\"endpoint down\"", "192.0.2.1"]);
    assert_eq!(
        endpoint_rows.len(),
        1,
        "no down row for 192.0.2.1 in:\n{dom}"
    );
    assert!(
        endpoint_rows[0].contains(&reason),
        "the down row lacks the reason {reason:?}: {}",
        endpoint_rows[0]
    );
    let event_rows = rows_with(
        &dom,
        &["class=\"event ev-endpoint\"", "eu 192.0.2.1", "down"],
    );
    assert!(
        event_rows
            .iter()
            .any(|r| r.contains(&reason) && r.contains("(was up)")),
        "no event row for 192.0.2.1 going down ({reason}) in:\n{dom}"
    );
    assert!(
        rows_with(
            &dom,
            &["id=\"pool-eu\"", "<svg class=\"spark\"", "<polyline"]
        )
        .len()
            == 1,
        "no sparkline for pool eu in:\n{dom}"
    );

    let (url, prof, shot_arg) = (
        format!("{base}/"),
        profile.path().to_path_buf(),
        format!("--screenshot={}", shot.display()),
    );
    tokio::task::spawn_blocking(move || run_chromium(&bin, &prof, &[shot_arg], &url))
        .await
        .expect("join");
    let size = std::fs::metadata(&shot)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()))
        .len();
    assert!(
        size > 1_000,
        "screenshot {} is {size} bytes",
        shot.display()
    );

    drop(b);
    s.stop().await;
}
