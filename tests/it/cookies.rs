//! DNS cookies (RFC 7873, server cookies per RFC 9018), on the fast path,
//! hickory's UDP path and TCP: a client cookie gets a server cookie, which
//! is then accepted (sent back as it came) and exempts its holder from rate
//! limiting; a wrong one is replaced; a malformed option gets FORMERR;
//! servers sharing `cookie_secret` accept each other's cookies; over
//! `require_cookie_over`, UDP queries without a valid cookie get BADCOOKIE
//! or an empty truncated answer while cookie holders and TCP are answered.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use tokio::net::UdpSocket;

use crate::harness::dig::{self, Ask};
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::{get, post};
use crate::harness::keys::{self, Alg};

const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";
const CLIENT: [u8; 8] = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];

const BALANCED: &str = "[pools.p]
endpoints = [{ address = \"192.0.2.1\" }]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"p\"]
";

fn config(server: &str) -> String {
    format!("{}{BALANCED}", server_header(server))
}

/// `ask` on the wire with a COOKIE option holding `cookie`.
fn with_cookie(ask: &Ask, cookie: &[u8]) -> Vec<u8> {
    let mut m = ask.message();
    let mut e = m.edns.clone().expect("EDNS");
    e.options_mut()
        .insert(EdnsOption::Unknown(10, cookie.to_vec()));
    m.set_edns(e);
    m.to_vec().expect("encode")
}

/// The COOKIE option of a response.
fn cookie_of(m: &Message) -> Option<Vec<u8>> {
    match m.edns.as_ref()?.option(EdnsCode::Cookie)? {
        EdnsOption::Unknown(_, data) => Some(data.clone()),
        other => panic!("cookie decoded as {other:?}"),
    }
}

fn secret() -> geosteer::dns::cookie::Secret {
    geosteer::dns::cookie::Secret::from_hex(SECRET).expect("hex")
}

/// Whether `cookie` (client and server cookie) is valid for a client on
/// 127.0.0.1 under `SECRET`, as any RFC 9018 server would judge it.
fn valid(cookie: &[u8]) -> bool {
    let r = geosteer::dns::cookie::Received::parse(cookie).expect("well formed");
    let now = geosteer::wallclock::unix_secs() as u32;
    geosteer::dns::cookie::check(&r, &[secret()], dig::ip("127.0.0.1"), now).verdict
        == geosteer::dns::cookie::Verdict::Valid
}

/// Sends `bytes` over UDP and over TCP; both replies, decoded.
async fn both(s: SocketAddr, bytes: &[u8]) -> [Message; 2] {
    let udp = dig::udp_raw(s, bytes).await.expect("UDP reply");
    let tcp = dig::tcp_raw(s, bytes).await.expect("TCP reply");
    [udp, tcp].map(|b| Message::from_vec(&b).expect("decode"))
}

crate::both_paths! {
    async fn a_client_cookie_gets_a_server_cookie_that_is_then_kept() {
        let s = TestServer::start(&config(&format!("cookie_secret = \"{SECRET}\"")), &[]).await;
        for (name, rcode) in [
            ("www.example.test.", ResponseCode::NoError),
            ("static.example.test.", ResponseCode::NoError),
            ("nope.example.test.", ResponseCode::NXDomain),
        ] {
            let ask = Ask::new(name, RecordType::A);
            for m in both(s.dns, &with_cookie(&ask, &CLIENT)).await {
                assert_eq!(m.metadata.response_code, rcode, "{name}: {m:?}");
                let c = cookie_of(&m).unwrap_or_else(|| panic!("{name}: no cookie in {m:?}"));
                assert_eq!(c.len(), 24, "{name}");
                assert_eq!(c[..8], CLIENT, "{name}: the client cookie comes back");
                assert_eq!(c[8..12], [1, 0, 0, 0], "{name}: version 1, reserved 0");
                assert!(valid(&c), "{name}: {c:02x?}");
                // Sent back: answered as before, and the cookie kept.
                for again in both(s.dns, &with_cookie(&ask, &c)).await {
                    assert_eq!(again.metadata.response_code, rcode, "{name}");
                    assert_eq!(cookie_of(&again), Some(c.clone()), "{name}: kept");
                }
                // A wrong server cookie: answered, with a fresh one.
                let mut wrong = c.clone();
                wrong[20] ^= 0xff;
                for again in both(s.dns, &with_cookie(&ask, &wrong)).await {
                    assert_eq!(again.metadata.response_code, rcode, "{name}");
                    let fresh = cookie_of(&again).expect("a fresh cookie");
                    assert_ne!(fresh, wrong, "{name}");
                    assert!(valid(&fresh), "{name}");
                }
            }
        }
        let m = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await;
        assert_eq!(dig::addrs(&m), [dig::ip("192.0.2.1")]);
        assert_eq!(cookie_of(&m), None, "no cookie unasked");
        // Malformed lengths (RFC 7873 §5.2.2): FORMERR, no answer.
        for len in [0usize, 7, 9, 15, 41] {
            let ask = Ask::new("www.example.test.", RecordType::A);
            for m in both(s.dns, &with_cookie(&ask, &vec![7u8; len])).await {
                assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "{len} octets");
                assert!(m.answers.is_empty());
            }
        }
        let (_, metrics) = get(&format!("http://{}/metrics", s.running.admin_addr)).await;
        for line in [
            "geosteer_dns_cookies_total{result=\"client_only\"}",
            "geosteer_dns_cookies_total{result=\"valid\"}",
            "geosteer_dns_cookies_total{result=\"bad\"}",
            "geosteer_dns_cookies_total{result=\"none\"}",
        ] {
            assert!(!metrics.contains(&format!("{line} 0\n")), "{line}: {metrics}");
        }
        assert!(metrics.contains("geosteer_dns_rejected_total{reason=\"cookie\"}"), "{metrics}");
        s.stop().await;
    }

    async fn servers_sharing_a_secret_accept_each_others_cookies() {
        let a = TestServer::start(&config(&format!("cookie_secret = \"{SECRET}\"")), &[]).await;
        let b = TestServer::start(
            &config(&format!("cookie_secret = [\"dd3bdf9344b678b185a6f5cb60fca715\", \"{SECRET}\"]")),
            &[],
        )
        .await;
        let c = TestServer::start(&config(""), &[]).await;
        let ask = Ask::new("www.example.test.", RecordType::A);
        let first = Message::from_vec(
            &dig::udp_raw(a.dns, &with_cookie(&ask, &CLIENT)).await.expect("reply"),
        )
        .expect("decode");
        let cookie = cookie_of(&first).expect("cookie");
        // b accepts a's cookie (its second secret) and renews it with its first.
        let [udp, tcp] = both(b.dns, &with_cookie(&ask, &cookie)).await;
        for m in [&udp, &tcp] {
            assert_eq!(dig::addrs(m), [dig::ip("192.0.2.1")]);
            let renewed = cookie_of(m).expect("cookie");
            assert_ne!(renewed, cookie, "made with b's first secret");
            assert!(!valid(&renewed));
        }
        // c, with a secret of its own, does not: a fresh one.
        for m in both(c.dns, &with_cookie(&ask, &cookie)).await {
            assert_eq!(dig::addrs(&m), [dig::ip("192.0.2.1")]);
            assert_ne!(cookie_of(&m).expect("cookie"), cookie);
        }
        let valid_on = |metrics: &str| {
            metrics
                .lines()
                .find(|l| l.starts_with("geosteer_dns_cookies_total{result=\"valid\"}"))
                .map(|l| l.to_string())
        };
        let (_, mb) = get(&format!("http://{}/metrics", b.running.admin_addr)).await;
        let (_, mc) = get(&format!("http://{}/metrics", c.running.admin_addr)).await;
        assert_eq!(valid_on(&mb).as_deref(), Some("geosteer_dns_cookies_total{result=\"valid\"} 2"), "{mb}");
        assert_eq!(valid_on(&mc).as_deref(), Some("geosteer_dns_cookies_total{result=\"valid\"} 0"), "{mc}");
        a.stop().await;
        b.stop().await;
        c.stop().await;
    }

    async fn a_valid_cookie_is_exempt_from_rate_limiting() {
        let s = TestServer::start(
            &config(&format!(
                "cookie_secret = \"{SECRET}\"\n[server.rrl]\nresponses_per_second = 2\nwindow = \"5s\"\nslip = 0\nexempt = []"
            )),
            &[],
        )
        .await;
        let ask = Ask::new("www.example.test.", RecordType::A);
        let first = Message::from_vec(
            &dig::udp_raw(s.dns, &with_cookie(&ask, &CLIENT)).await.expect("reply"),
        )
        .expect("decode");
        let cookie = cookie_of(&first).expect("cookie");
        // Two accounts' worth used; then 30 with the cookie: all answered.
        let (full, _, _) = burst(s.dns, &with_cookie(&ask, &cookie), 30).await;
        assert_eq!(full, 30);
        // Without: cut to the rate (the burst may straddle a second).
        let (full, _, _) = burst(s.dns, &ask.wire(), 30).await;
        assert!(full <= 4, "{full} answered without a cookie");
        // A client cookie alone proves nothing.
        let (full, _, _) = burst(s.dns, &with_cookie(&ask, &CLIENT), 30).await;
        assert!(full <= 4, "{full} answered with a client cookie alone");
        // ANY goes to hickory's handler on the fast path: exempt there too.
        let any = Ask::new("www.example.test.", RecordType::ANY);
        let (full, _, _) = burst(s.dns, &with_cookie(&any, &cookie), 20).await;
        assert_eq!(full, 20);
        s.stop().await;
    }

    async fn over_require_cookie_over_cookieless_queries_are_sent_away() {
        let s = TestServer::start(
            &config(&format!(
                "cookie_secret = \"{SECRET}\"\nrequire_cookie_over = 5\n[server.rrl]\nresponses_per_second = 10000\nexempt = []"
            )),
            &[],
        )
        .await;
        let ask = Ask::new("www.example.test.", RecordType::A);
        let first = Message::from_vec(
            &dig::udp_raw(s.dns, &with_cookie(&ask, &CLIENT)).await.expect("reply"),
        )
        .expect("decode");
        let cookie = cookie_of(&first).expect("cookie");
        // A client cookie alone: BADCOOKIE with a fresh cookie once over 5.
        let (full, badcookie, truncated) = burst(s.dns, &with_cookie(&ask, &CLIENT), 30).await;
        assert!(full <= 10 && badcookie >= 20 && truncated == 0, "{full} {badcookie} {truncated}");
        // No cookie at all: an empty answer with TC set.
        let (full, badcookie, truncated) = burst(s.dns, &ask.wire(), 30).await;
        assert!(full <= 10 && truncated >= 20 && badcookie == 0, "{full} {badcookie} {truncated}");
        // The cookie holder: every query answered in full.
        let (full, _, _) = burst(s.dns, &with_cookie(&ask, &cookie), 30).await;
        assert_eq!(full, 30);
        // TCP is never asked for a cookie.
        let m = dig::tcp(s.dns, &ask).await;
        assert_eq!(dig::addrs(&m), [dig::ip("192.0.2.1")]);
        let (_, metrics) = get(&format!("http://{}/metrics", s.running.admin_addr)).await;
        for line in [
            "geosteer_dns_cookie_required_total{answer=\"badcookie\"}",
            "geosteer_dns_cookie_required_total{answer=\"truncated\"}",
        ] {
            assert!(metrics.contains(line) && !metrics.contains(&format!("{line} 0\n")), "{line}: {metrics}");
        }
        s.stop().await;
    }
}

/// Sends `n` copies of `query` (IDs 0..n) from one socket, then collects the
/// replies for a second: (full answers, BADCOOKIE answers, empty truncated).
async fn burst(server: SocketAddr, query: &[u8], n: u16) -> (usize, usize, usize) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    for id in 0..n {
        let mut wire = query.to_vec();
        wire[..2].copy_from_slice(&id.to_be_bytes());
        sock.send_to(&wire, server).await.expect("send");
        // Loopback drops what the server's socket buffer cannot hold.
        if id % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let (mut full, mut bad, mut truncated) = (0, 0, 0);
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok((len, _))) =
        tokio::time::timeout(Duration::from_secs(1), sock.recv_from(&mut buf)).await
    {
        let m = Message::from_vec(&buf[..len]).expect("decode");
        if m.metadata.response_code == ResponseCode::BADCOOKIE {
            assert!(m.answers.is_empty() && cookie_of(&m).is_some(), "{m:?}");
            bad += 1;
        } else if m.metadata.truncation {
            assert!(m.answers.is_empty(), "{m:?}");
            truncated += 1;
        } else {
            assert_eq!(dig::addrs(&m), [dig::ip("192.0.2.1")], "{m:?}");
            full += 1;
        }
    }
    (full, bad, truncated)
}

/// dig (BIND 9.18) sends a client cookie by default: it gets a server cookie
/// it calls good, and `+cookie=` with it is answered with the same one.
#[tokio::test]
async fn dig_learns_and_returns_a_cookie() {
    let s = TestServer::start(&config(&format!("cookie_secret = \"{SECRET}\"")), &[]).await;
    let out = dig::real_dig(s.dns, &["www.example.test", "A"]).await;
    let line = out
        .lines()
        .find(|l| l.starts_with("; COOKIE: "))
        .unwrap_or_else(|| panic!("no cookie: {out}"));
    assert!(line.ends_with(" (good)"), "{line}");
    let hex = line["; COOKIE: ".len()..]
        .trim_end_matches(" (good)")
        .to_string();
    assert_eq!(hex.len(), 48, "{line}");
    let bytes: Vec<u8> = (0..48)
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    assert!(valid(&bytes), "{hex}");
    let again = dig::real_dig(s.dns, &["www.example.test", "A", &format!("+cookie={hex}")]).await;
    assert!(
        again.contains(&format!("; COOKIE: {hex} (good)")),
        "{again}"
    );
    assert!(again.contains("192.0.2.1"), "{again}");
    // Over TCP as well.
    let tcp = dig::real_dig(
        s.dns,
        &["www.example.test", "A", "+tcp", &format!("+cookie={hex}")],
    )
    .await;
    assert!(tcp.contains(&format!("; COOKIE: {hex} (good)")), "{tcp}");
    s.stop().await;
}

/// Without `cookie_secret` the secret is made at start-up and a reload
/// keeps it: a cookie from before the reload is still taken after it.
#[tokio::test]
async fn a_reload_keeps_the_secret_made_at_start() {
    let s = TestServer::start(&config(""), &[]).await;
    let ask = Ask::new("www.example.test.", RecordType::A);
    let m = dig::udp(s.dns, &ask).await;
    assert_eq!(cookie_of(&m), None);
    let first = Message::from_vec(
        &dig::udp_raw(s.dns, &with_cookie(&ask, &CLIENT))
            .await
            .expect("reply"),
    )
    .expect("decode");
    let cookie = cookie_of(&first).expect("cookie");
    let base = format!("http://{}", s.running.admin_addr);
    assert_eq!(post(&format!("{base}/api/v1/reload"), None).await.0, 200);
    let m = Message::from_vec(
        &dig::udp_raw(s.dns, &with_cookie(&ask, &cookie))
            .await
            .expect("reply"),
    )
    .expect("decode");
    assert_eq!(
        cookie_of(&m),
        Some(cookie.clone()),
        "kept across the reload"
    );
    // Setting a secret by reload takes effect at once (no restart).
    let text = std::fs::read_to_string(s.config_path()).expect("config");
    let text = text.replacen(
        "[server]\n",
        &format!("[server]\ncookie_secret = \"{SECRET}\"\n"),
        1,
    );
    std::fs::write(s.config_path(), text).expect("write");
    let (code, body) = post(&format!("{base}/api/v1/reload"), None).await;
    assert_eq!(code, 200, "{body}");
    assert!(
        !body.contains("cookie_secret"),
        "not a pending restart: {body}"
    );
    let m = Message::from_vec(
        &dig::udp_raw(s.dns, &with_cookie(&ask, &cookie))
            .await
            .expect("reply"),
    )
    .expect("decode");
    let renewed = cookie_of(&m).expect("cookie");
    assert_ne!(renewed, cookie);
    assert!(valid(&renewed));
    s.stop().await;
}

/// A signed answer to a DO query carries its RRSIGs and the cookie, which
/// sits in the OPT record (never signed), on every path.
#[tokio::test]
async fn signed_answers_carry_the_cookie() {
    for fast in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = keys::generate(dir.path(), "zone.pem", Alg::EcdsaP256);
        let pem = std::fs::read(&key).expect("key");
        let cfg = config(&format!("cookie_secret = \"{SECRET}\""))
            .replace("fast_path = true", &format!("fast_path = {fast}"))
            .replace("fast_path = false", &format!("fast_path = {fast}"))
            + "[dnssec.\"example.test\"]\nkeys = [\"zone.pem\"]\n";
        let s = TestServer::start(&cfg, &[("zone.pem", &pem)]).await;
        for name in [
            "www.example.test.",
            "static.example.test.",
            "nope.example.test.",
        ] {
            let ask = Ask::new(name, RecordType::A).dnssec_ok();
            for m in both(s.dns, &with_cookie(&ask, &CLIENT)).await {
                let sigs = m
                    .answers
                    .iter()
                    .chain(m.authorities.iter())
                    .filter(|r| r.record_type() == RecordType::RRSIG)
                    .count();
                assert!(sigs > 0, "fast_path={fast} {name}: no RRSIG in {m:?}");
                assert!(m.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok));
                assert!(
                    valid(&cookie_of(&m).expect("cookie")),
                    "fast_path={fast} {name}"
                );
            }
        }
        s.stop().await;
    }
}
