//! Live health end to end: real HTTP origins that die, fail, slow down and
//! recover; probes with short intervals; answers over real DNS. Time bounds are
//! generous (the measured figures are in benches/failover.sh).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::both_paths;
use crate::harness::dig::{self, Ask, addrs, ip};
use crate::harness::eventually::{eventually, eventually_every};
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::origin::{Mode, Origin};

/// Two regions: eu (two endpoints, preferred) and us (one endpoint). Each
/// endpoint is probed on its own origin through `probe`.
fn config(monitor: &str, eu: [&Origin; 2], us: &Origin, extra: &str) -> String {
    format!(
        "{}
[monitors.web]
type = \"http\"
path = \"/healthz\"
{monitor}
[pools.eu]
monitor = \"web\"
endpoints = [{{ address = \"192.0.2.1\", probe = \"{}\" }}, {{ address = \"192.0.2.2\", probe = \"{}\" }}]
[pools.us]
monitor = \"web\"
endpoints = [{{ address = \"192.0.2.9\", probe = \"{}\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\", \"us\"]
answers = 2
{extra}
",
        server_header(""),
        eu[0].addr(),
        eu[1].addr(),
        us.addr()
    )
}

const FAST: &str = "interval = \"200ms\"\ntimeout = \"100ms\"\nrise = 2\nfall = 2";

async fn answer(s: &TestServer) -> Vec<IpAddr> {
    let mut a = addrs(&dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await);
    a.sort();
    a
}

/// Polls until `want` holds, returning how long it took; panics after `bound`.
async fn until(
    s: &TestServer,
    bound: Duration,
    what: &str,
    want: impl Fn(&[IpAddr]) -> bool,
) -> Duration {
    let start = Instant::now();
    eventually_every(bound, Duration::from_millis(20), what, async || {
        let got = answer(s).await;
        if want(&got) {
            Ok(())
        } else {
            Err(format!("still {got:?}"))
        }
    })
    .await;
    start.elapsed()
}

fn eu_both(a: &[IpAddr]) -> bool {
    a == [ip("192.0.2.1"), ip("192.0.2.2")]
}

both_paths! {
async fn a_dead_endpoint_leaves_answers_within_interval_times_fall_plus_timeout() {
    let (e1, e2, u) = (
        Origin::start().await,
        Origin::start().await,
        Origin::start().await,
    );
    let s = TestServer::start(&config(FAST, [&e1, &e2], &u, ""), &[]).await;
    // Start-up ran a full probe round: the first answer already has both.
    assert_eq!(answer(&s).await, vec![ip("192.0.2.1"), ip("192.0.2.2")]);
    e1.kill().await;
    // Bound: 200ms × 2 + 100ms = 500ms, plus up to one interval of phase and
    // the publish delay; assert a generous 5 s.
    let took = until(
        &s,
        Duration::from_secs(5),
        "dead endpoint still answered",
        |a| a == [ip("192.0.2.2")],
    )
    .await;
    eprintln!("dead endpoint left answers after {took:?}");
    for _ in 0..20 {
        assert_eq!(answer(&s).await, vec![ip("192.0.2.2")]);
    }
    e1.revive().await;
    until(
        &s,
        Duration::from_secs(5),
        "revived endpoint not back",
        eu_both,
    )
    .await;
    s.stop().await;
}
}

both_paths! {
async fn a_failing_region_is_steered_away_and_back_with_hysteresis() {
    let (e1, e2, u) = (
        Origin::start().await,
        Origin::start().await,
        Origin::start().await,
    );
    let s = TestServer::start(&config(FAST, [&e1, &e2], &u, ""), &[]).await;
    assert!(eu_both(&answer(&s).await));
    e1.set_mode(Mode::Failing);
    e2.set_mode(Mode::Failing);
    until(
        &s,
        Duration::from_secs(5),
        "failing region still answered",
        |a| a == [ip("192.0.2.9")],
    )
    .await;
    e1.set_mode(Mode::Ok);
    e2.set_mode(Mode::Ok);
    // Back only after `rise` good probes (2 × 200 ms): not instantly.
    let back = Instant::now();
    until(
        &s,
        Duration::from_secs(5),
        "recovered region not back",
        eu_both,
    )
    .await;
    assert!(
        back.elapsed() >= Duration::from_millis(150),
        "came back after {:?}, faster than rise allows",
        back.elapsed()
    );
    s.stop().await;
}
}

both_paths! {
async fn a_slow_region_is_degraded_and_steered_away() {
    let (e1, e2, u) = (
        Origin::start().await,
        Origin::start().await,
        Origin::start().await,
    );
    let monitor =
        "interval = \"300ms\"\ntimeout = \"250ms\"\nrise = 2\nfall = 2\nmax_latency = \"60ms\"";
    let s = TestServer::start(&config(monitor, [&e1, &e2], &u, ""), &[]).await;
    assert!(eu_both(&answer(&s).await));
    e1.set_mode(Mode::Slow(Duration::from_millis(150)));
    e2.set_mode(Mode::Slow(Duration::from_millis(150)));
    until(
        &s,
        Duration::from_secs(8),
        "slow region still answered",
        |a| a == [ip("192.0.2.9")],
    )
    .await;
    let snap = s.running.shared.load_full();
    let eu = snap.config.pool_id("eu").unwrap();
    assert_eq!(
        snap.health.pool(eu).unwrap().state,
        geosteer::health::PoolState::Degraded
    );
    assert_eq!(
        snap.health.pool(eu).unwrap().up,
        2,
        "slow endpoints stay up: degraded, not down"
    );
    e1.set_mode(Mode::Ok);
    e2.set_mode(Mode::Ok);
    until(
        &s,
        Duration::from_secs(10),
        "region not back after latency recovered",
        eu_both,
    )
    .await;
    s.stop().await;
}
}

both_paths! {
async fn an_error_rate_over_threshold_degrades_the_region() {
    let (e1, e2, u) = (
        Origin::start().await,
        Origin::start().await,
        Origin::start().await,
    );
    // fall is high so failing endpoints stay up: only the error rate can act.
    let monitor = "interval = \"200ms\"\ntimeout = \"150ms\"\nrise = 2\nfall = 1000\nmax_error_rate = 0.2\nmin_samples = 4\nwindow = \"3s\"";
    let s = TestServer::start(&config(monitor, [&e1, &e2], &u, ""), &[]).await;
    assert!(eu_both(&answer(&s).await));
    e1.set_mode(Mode::Failing);
    until(
        &s,
        Duration::from_secs(8),
        "region with 50% errors still answered",
        |a| a == [ip("192.0.2.9")],
    )
    .await;
    // The rate that tipped the region over can dip back to the threshold
    // when a good probe lands first (degraded holds for `rise` rounds); with
    // one endpoint failing every probe it heads for 0.5.
    eventually(
        Duration::from_secs(5),
        "error rate over 0.2",
        async || {
            let snap = s.running.shared.load_full();
            let eu = snap.config.pool_id("eu").unwrap();
            let h = snap.health.pool(eu).unwrap();
            assert_eq!(h.state, geosteer::health::PoolState::Degraded);
            if h.error_rate > 0.2 {
                Ok(())
            } else {
                Err(format!("error rate {}", h.error_rate))
            }
        },
    )
    .await;
    s.stop().await;
}
}

both_paths! {
async fn every_region_down_fails_open_to_the_fallback() {
    let (e1, e2, u) = (
        Origin::start().await,
        Origin::start().await,
        Origin::start().await,
    );
    let s = TestServer::start(&config(FAST, [&e1, &e2], &u, "fallback = \"us\""), &[]).await;
    for o in [&e1, &e2, &u] {
        o.kill().await;
    }
    // Wait until every region is down: before that, us answers as the next
    // region in order, which is not failing open.
    let admin = format!("http://{}", s.running.admin_addr);
    let start = Instant::now();
    for pool in ["eu", "us"] {
        let url = format!("{admin}/api/v1/pools/{pool}/health");
        let what = format!("{pool} down");
        let left = Duration::from_secs(5).saturating_sub(start.elapsed());
        eventually_every(left, Duration::from_millis(20), &what, async || {
            match crate::harness::http::get(&url).await.0 {
                503 => Ok(()),
                code => Err(format!("status {code}")),
            }
        })
        .await;
    }
    // us is down too, but it is the fallback: answered anyway, all endpoints.
    assert_eq!(answer(&s).await, [ip("192.0.2.9")]);
    let (_, metrics) = crate::harness::http::get(&format!("{admin}/metrics")).await;
    assert!(
        metrics.contains(
            "geosteer_dns_fail_open_total{name=\"www.example.test\",mode=\"fallback\"} 1"
        ),
        "{metrics}"
    );
    s.stop().await;
}
}

both_paths! {
async fn the_first_answer_after_start_up_already_follows_health() {
    let (e1, e2, u) = (
        Origin::start().await,
        Origin::start().await,
        Origin::start().await,
    );
    e1.kill().await;
    e2.set_mode(Mode::Failing);
    // Slow interval: only the start-up round can have set the state.
    let monitor = "interval = \"10s\"\ntimeout = \"500ms\"\nrise = 2\nfall = 2";
    let s = TestServer::start(&config(monitor, [&e1, &e2], &u, ""), &[]).await;
    assert_eq!(
        answer(&s).await,
        vec![ip("192.0.2.9")],
        "a dead region must never be answered"
    );
    s.stop().await;
}
}

both_paths! {
async fn the_latency_policy_uses_measured_latency() {
    let (e1, e2, u) = (
        Origin::start().await,
        Origin::start().await,
        Origin::start().await,
    );
    e1.set_mode(Mode::Slow(Duration::from_millis(80)));
    e2.set_mode(Mode::Slow(Duration::from_millis(80)));
    let monitor = "interval = \"200ms\"\ntimeout = \"180ms\"\nmax_latency = \"1s\"";
    let cfg = config(monitor, [&e1, &e2], &u, "")
        .replace("policy = \"failover\"", "policy = \"latency\"");
    let s = TestServer::start(&cfg, &[]).await;
    until(
        &s,
        Duration::from_secs(5),
        "latency policy did not pick the fast region",
        |a| a == [ip("192.0.2.9")],
    )
    .await;
    s.stop().await;
}
}
