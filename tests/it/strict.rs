//! Strict input (issue 18, items 2-4): an explicit NXNAME query gets
//! FORMERR and the CO flag turns a signed compact denial into NXDOMAIN (RFC
//! 9824); classes other than IN and CH are REFUSED, never answered from IN
//! data; malformed ECS gets FORMERR (RFC 7871 §6); an unknown opcode gets a
//! bare NOTIMP that passes ISC genreport's `opcode` and `opcodeflg` checks;
//! each such query is counted in /metrics, and a flood of them makes a
//! bounded number of log lines. On the fast path, hickory's UDP path and
//! TCP.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, RecordType};

use crate::harness::dig::{self, Ask};
use crate::harness::geosteer::{FAST_PATH, TestServer, ZONE, server_header};
use crate::harness::http::get;
use crate::harness::keys::{self, Alg};

const BALANCED: &str = "[pools.p]
endpoints = [{ address = \"192.0.2.1\" }]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"p\"]
";

async fn start(signed: bool) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keys::generate(dir.path(), "zone.pem", Alg::EcdsaP256);
    let pem = std::fs::read(&key).expect("key");
    let dnssec = if signed {
        "[dnssec.\"example.test\"]\nkeys = [\"zone.pem\"]\n"
    } else {
        ""
    };
    let cfg = format!("{}{BALANCED}{dnssec}", server_header(""));
    TestServer::start(&cfg, &[("zone.pem", &pem)]).await
}

/// Sends `bytes` over UDP and TCP; returns both replies.
async fn both(s: &TestServer, bytes: &[u8]) -> [Vec<u8>; 2] {
    let udp = dig::udp_raw(s.dns, bytes).await.expect("UDP reply");
    let tcp = dig::tcp_raw(s.dns, bytes).await.expect("TCP reply");
    [udp, tcp]
}

fn rcode_of(reply: &[u8]) -> ResponseCode {
    Message::from_vec(reply)
        .expect("decode")
        .metadata
        .response_code
}

/// An A query for `name` whose OPT carries one ECS option of `family`,
/// `source` prefix and `addr` octets as given.
fn ecs_query(name: &str, family: u16, source: u8, addr: &[u8]) -> Vec<u8> {
    let mut b = Ask::new(name, RecordType::A).no_edns().wire();
    b[11] = 1; // ARCOUNT
    let mut opt = vec![0u8, 0, 41, 0x04, 0xd0, 0, 0, 0, 0];
    let len = 4 + 4 + addr.len();
    opt.extend_from_slice(&(len as u16).to_be_bytes());
    opt.extend_from_slice(&8u16.to_be_bytes());
    opt.extend_from_slice(&((4 + addr.len()) as u16).to_be_bytes());
    opt.extend_from_slice(&family.to_be_bytes());
    opt.extend_from_slice(&[source, 0]);
    opt.extend_from_slice(addr);
    b.extend_from_slice(&opt);
    b
}

async fn input_checks() {
    let s = start(false).await;
    // Classes: HS, NONE, ANY refused, nothing of IN's given.
    for class in [DNSClass::HS, DNSClass::NONE, DNSClass::ANY] {
        let ask = Ask::new("www.example.test.", RecordType::A).class(class);
        for reply in both(&s, &ask.wire()).await {
            let m = Message::from_vec(&reply).expect("decode");
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::Refused,
                "{class}: {m:?}"
            );
            assert!(m.answers.is_empty(), "{class}: {m:?}");
        }
    }
    // IN and CH still answered.
    let m = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await;
    assert_eq!(dig::addrs(&m), [dig::ip("192.0.2.1")]);
    let ch = Ask::new("id.server.", RecordType::TXT).class(DNSClass::CH);
    assert_ne!(
        rcode_of(&both(&s, &ch.wire()).await[0]),
        ResponseCode::FormErr
    );

    // NXNAME (128) asked for explicitly: FORMERR.
    let nx = Ask::new("www.example.test.", RecordType::Unknown(128));
    for reply in both(&s, &nx.wire()).await {
        assert_eq!(rcode_of(&reply), ResponseCode::FormErr);
    }

    // ECS: one octet too many, bits past the prefix: FORMERR; canonical: answered.
    for (what, bytes, want) in [
        (
            "extra octet",
            ecs_query("www.example.test.", 1, 24, &[5, 9, 0, 0]),
            ResponseCode::FormErr,
        ),
        (
            "bits past /20",
            ecs_query("www.example.test.", 1, 20, &[5, 9, 15]),
            ResponseCode::FormErr,
        ),
        (
            "bits past /0",
            ecs_query("www.example.test.", 2, 0, &[1]),
            ResponseCode::FormErr,
        ),
        (
            "canonical /20",
            ecs_query("www.example.test.", 1, 20, &[5, 9, 0]),
            ResponseCode::NoError,
        ),
        (
            "canonical /24",
            ecs_query("www.example.test.", 1, 24, &[5, 9, 1]),
            ResponseCode::NoError,
        ),
    ] {
        for reply in both(&s, &bytes).await {
            assert_eq!(rcode_of(&reply), want, "{what}");
        }
    }

    // genreport `opcode` and `opcodeflg`: opcode 15, header only, without
    // and with every flag (AA TC RD / RA Z AD CD) set.
    for flags in [[0x78u8, 0x00], [0x7f, 0xf0]] {
        let query = [0x12, 0x34, flags[0], flags[1], 0, 0, 0, 0, 0, 0, 0, 0];
        for reply in both(&s, &query).await {
            assert_eq!(
                reply,
                [0x12, 0x34, 0xf8, 0x04, 0, 0, 0, 0, 0, 0, 0, 0],
                "NOTIMP, opcode 15 echoed, no other flag, no records ({flags:x?})"
            );
        }
    }
    // Counted in /metrics, by reason.
    let (code, text) = get(&format!("http://{}/metrics", s.running.admin_addr)).await;
    assert_eq!(code, 200);
    for reason in ["opcode", "class", "ecs", "nxname"] {
        let line = format!("geosteer_dns_rejected_total{{reason=\"{reason}\"}} ");
        let n: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line} in /metrics"));
        assert!(n >= 2, "{reason}: {n}");
    }
    let (ok, out) = crate::metrics::promtool_check(&text);
    assert!(ok && out.trim().is_empty(), "promtool: {out}");
    s.stop().await;
}

#[tokio::test]
async fn bad_input_gets_the_error_knot_gives_fast() {
    FAST_PATH.scope(true, input_checks()).await;
}

#[tokio::test]
async fn bad_input_gets_the_error_knot_gives_hickory() {
    FAST_PATH.scope(false, input_checks()).await;
}

#[tokio::test]
async fn real_dig_sees_genreport_opcodeflg_answered() {
    let s = start(false).await;
    let out = dig::real_dig(
        s.dns,
        &[
            "+noedns",
            "+header-only",
            "+opcode=15",
            "+tcflag",
            "+rec",
            "+raflag",
            "+cd",
            "+ad",
            "+aaflag",
            "+zflag",
        ],
    )
    .await;
    assert!(out.contains("status: NOTIMP"), "{out}");
    assert!(out.contains("flags: qr;"), "only QR set: {out}");
    s.stop().await;
}

/// A DO query for `name`, with the CO flag if `co`.
fn do_query(name: &str, co: bool) -> Vec<u8> {
    let mut m = Ask::new(name, RecordType::A).dnssec_ok().message();
    if co && let Some(e) = m.edns.as_mut() {
        e.flags_mut().z |= 0x4000;
    }
    m.to_vec().expect("encode")
}

fn nsec_lists_nxname(m: &Message) -> bool {
    m.authorities.iter().any(|r| match &r.data {
        RData::DNSSEC(DNSSECRData::NSEC(n)) => {
            n.type_bit_maps().any(|t| t == RecordType::Unknown(128))
        }
        _ => false,
    })
}

async fn compact_ok() {
    let s = start(true).await;
    // Twice each: the second is served from the cached proof.
    for _ in 0..2 {
        for (co, want) in [
            (false, ResponseCode::NoError),
            (true, ResponseCode::NXDomain),
        ] {
            for reply in both(&s, &do_query("nope.example.test.", co)).await {
                let m = Message::from_vec(&reply).expect("decode");
                assert_eq!(m.metadata.response_code, want, "CO {co}: {m:?}");
                assert!(
                    m.answers.is_empty() && nsec_lists_nxname(&m),
                    "CO {co}: {m:?}"
                );
                let echoed = m.edns.as_ref().is_some_and(|e| e.flags().z & 0x4000 != 0);
                assert_eq!(echoed, co, "CO echoed only when asked: {m:?}");
            }
        }
    }
    // A name that exists stays NOERROR with CO (NODATA).
    for reply in both(&s, &do_query("static.example.test.", true)).await {
        let m = Message::from_vec(&reply).expect("decode");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(!m.answers.is_empty(), "{m:?}");
    }
    s.stop().await;
}

#[tokio::test]
async fn compact_ok_makes_a_missing_name_nxdomain_fast() {
    FAST_PATH.scope(true, compact_ok()).await;
}

#[tokio::test]
async fn compact_ok_makes_a_missing_name_nxdomain_hickory() {
    FAST_PATH.scope(false, compact_ok()).await;
}

/// Kills the server if the test fails half-way.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// 3,000 unknown-opcode packets (loopback, bounded) make at most a few
/// summary lines in the real binary's log, which count them.
#[test]
fn a_flood_of_unknown_opcodes_logs_a_summary_not_a_line_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!("{}{BALANCED}", server_header(""));
    let config_path = dir.path().join("geosteer.toml");
    std::fs::write(&config_path, &config).expect("write config");
    std::fs::write(dir.path().join("example.test.zone"), ZONE).expect("write zone");
    let notify_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    let log = dir.path().join("log");
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(Stdio::from(
                std::fs::File::options()
                    .append(true)
                    .open(&log)
                    .expect("log file"),
            ))
            .spawn()
            .expect("start geosteer"),
    );
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("READY within 20 s");
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    let port: u16 = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS=answering DNS on 127.0.0.1:"))
        .and_then(|p| p.split(',').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("READY names the DNS address: {ready:?}"));
    let before = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();

    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    udp.set_read_timeout(Some(Duration::from_millis(2)))
        .expect("timeout");
    let mut answered = 0;
    for i in 0..3000u16 {
        let id = i.to_be_bytes();
        let q = [id[0], id[1], 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        udp.send_to(&q, ("127.0.0.1", port)).expect("send");
        if i % 50 == 0 {
            // Paced a little: loopback buffers are not the subject here.
            std::thread::sleep(Duration::from_millis(2));
        }
        while udp.recv(&mut buf).is_ok() {
            answered += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    while udp.recv(&mut buf).is_ok() {
        answered += 1;
    }
    assert!(answered > 0, "some NOTIMP answers came back");
    let _ = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status();
    let _ = (0..100).find(|_| {
        std::thread::sleep(Duration::from_millis(50));
        server.0.try_wait().ok().flatten().is_some()
    });
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let after: Vec<String> = BufReader::new(text.as_bytes())
        .lines()
        .map_while(Result::ok)
        .skip(before)
        .collect();
    let about: Vec<&String> = after
        .iter()
        .filter(|l| l.contains("rejected") || l.to_lowercase().contains("op_code"))
        .collect();
    assert!(
        !about.is_empty() && about.len() <= 3,
        "a summary line or few for 3,000 packets, got {}:\n{}",
        about.len(),
        after.join("\n")
    );
    assert!(
        after.len() <= 10,
        "the log grew by {} lines:\n{}",
        after.len(),
        after.join("\n")
    );
    assert!(about[0].contains("opcode=1"), "{}", about[0]);
}
