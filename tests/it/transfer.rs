//! Zone transfers out: a real Knot DNS secondary pulls the zone from
//! geosteer (AXFR), is told of a reload by NOTIFY and pulls the change
//! (IXFR), with and without TSIG; the real `dig` checks TSIG over a
//! multi-message transfer; disallowed clients, missing or wrong keys and
//! zones without `[transfer]` are refused.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::both_paths;
use crate::harness::dig::{self, Ask, addrs, ip, real_dig, txts};
use crate::harness::eventually::{eventually, eventually_every};
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::knot::{self, Knot, Secondary};

const KEY: &str = "xfr-key.";
const SECRET: &str = "3q2+7wAAAAD/////AQIDBAUGBwgJCgsMDQ4PEBESExQ=";
const WRONG: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn zone(serial: u32, extra: &str) -> String {
    format!(
        "$ORIGIN example.test.
$TTL 300
@ IN SOA ns1.example.test. hostmaster.example.test. {serial} 3600 600 86400 60
@ IN NS ns1.example.test.
ns1 IN A 127.0.0.1
static IN A 192.0.2.10
www IN TXT \"hello\"
{extra}"
    )
}

/// example.test with www balanced, and `[transfer]` as given.
fn config(transfer: &str) -> String {
    format!(
        "{}[pools.eu]
endpoints = [{{ address = \"192.0.2.2\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]

{transfer}
",
        server_header("")
    )
}

async fn wait_for<F: Fn(&Message) -> bool>(
    server: SocketAddr,
    ask: &Ask,
    ok: F,
    what: &str,
    knot: &Knot,
) {
    let what = format!("Knot getting {what}");
    eventually_every(
        Duration::from_secs(15),
        Duration::from_millis(100),
        &what,
        async || {
            if let Some(reply) =
                dig::udp_raw_wait(server, &ask.wire(), Duration::from_millis(500)).await
                && let Ok(m) = Message::from_vec(&reply)
                && ok(&m)
            {
                return Ok(());
            }
            Err(format!("its log:\n{}", knot.log()))
        },
    )
    .await;
}

/// Knot as secondary: holds the zone after the first transfer (without the
/// balanced name's addresses), and after a reload that changes the serial it
/// is told by NOTIFY (its refresh timer is an hour) and transfers only the
/// difference.
async fn knot_follows_the_primary(tsig: bool) {
    let knot_addr = knot::free_addr();
    let key_line = if tsig {
        format!("tsig = {{ name = \"{KEY}\", secret = \"{SECRET}\" }}\n")
    } else {
        String::new()
    };
    let transfer = format!(
        "[transfer.\"example.test\"]\nallow_transfer = [\"127.0.0.0/8\"]\nnotify = [\"{knot_addr}\"]\n{key_line}"
    );
    let zone1 = zone(1, "");
    let server = TestServer::start(
        &config(&transfer),
        &[("example.test.zone", zone1.as_bytes())],
    )
    .await;
    let knot = Knot::start(
        knot_addr,
        &Secondary {
            zone: "example.test.",
            primary: server.dns,
            tsig: tsig.then_some((KEY, SECRET)),
        },
    );

    let is = |want: &str| {
        let want = ip(want);
        move |m: &Message| m.metadata.response_code == ResponseCode::NoError && addrs(m) == [want]
    };
    let static_a = Ask::new("static.example.test.", RecordType::A);
    wait_for(knot_addr, &static_a, is("192.0.2.10"), "the zone", &knot).await;

    // The zone file's records are there, the balanced name's addresses not:
    // only geosteer nodes answer those.
    let txt = dig::udp(knot_addr, &Ask::new("www.example.test.", RecordType::TXT)).await;
    assert_eq!(txts(&txt), ["hello"]);
    let a = dig::udp(knot_addr, &Ask::new("www.example.test.", RecordType::A)).await;
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(
        addrs(&a).is_empty(),
        "a secondary must not serve balanced addresses: {a:?}"
    );
    let geosteer_a = dig::udp(server.dns, &Ask::new("www.example.test.", RecordType::A)).await;
    assert_eq!(addrs(&geosteer_a), [ip("192.0.2.2")]);

    // A new serial, one record changed and one added.
    let zone2 = zone(2, "added IN A 192.0.2.99\n").replace("192.0.2.10", "192.0.2.11");
    std::fs::write(server.path("example.test.zone"), zone2).expect("write zone");
    server.running.reload().await.expect("reload");
    let added = Ask::new("added.example.test.", RecordType::A);
    wait_for(
        knot_addr,
        &added,
        is("192.0.2.99"),
        "the new serial (NOTIFY)",
        &knot,
    )
    .await;
    let changed = dig::udp(knot_addr, &static_a).await;
    assert_eq!(addrs(&changed), [ip("192.0.2.11")]);
    let log = knot.log();
    assert!(
        log.contains("IXFR, incoming") && log.contains("serial 1 -> 2"),
        "Knot should have pulled an IXFR 1 -> 2:\n{log}"
    );
    assert!(
        !log.contains("fallback to AXFR"),
        "IXFR fell back to AXFR:\n{log}"
    );
    // The same, counted for /metrics.
    let t = &server.running.registry.transfers;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        load(&t.axfr) >= 1 && load(&t.ixfr_incremental) >= 1,
        "{t:?}"
    );
    eventually(
        Duration::from_secs(10),
        "a NOTIFY counted as answered",
        async || {
            if load(&t.notify_answered) == 0 {
                Err(format!("{t:?}"))
            } else {
                Ok(())
            }
        },
    )
    .await;
    drop(knot);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knot_secondary_follows_reloads() {
    knot_follows_the_primary(false).await;
}

// Knot signs its SOA queries too: over UDP they reach the fast path's
// fallback or hickory's server, so both run.
both_paths! {
async fn knot_secondary_follows_reloads_with_tsig() {
    knot_follows_the_primary(true).await;
}
}

/// An AXFR (or IXFR, from serial 0) query over TCP: the first message's rcode.
async fn xfr(server: SocketAddr, zone: &str, qtype: RecordType) -> ResponseCode {
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    let origin = Name::from_ascii(zone).expect("name");
    m.add_query(Query::query(origin.clone(), qtype));
    if qtype == RecordType::IXFR {
        let soa = SOA::new(origin.clone(), origin.clone(), 0, 3600, 600, 86400, 60);
        m.authorities
            .push(Record::from_rdata(origin, 0, RData::SOA(soa)));
    }
    let bytes = m.to_vec().expect("encode");
    let reply = dig::tcp_raw(server, &bytes).await.expect("a TCP answer");
    let reply = Message::from_vec(&reply).expect("decode");
    assert_eq!(reply.metadata.id, 7);
    reply.metadata.response_code
}

both_paths! {
async fn transfers_need_an_allowed_address_and_the_key() {
    // 3,000 more records: the transfer takes several messages, each signed.
    let generated = "$GENERATE 1-3000 host$ IN TXT \"record $ of the generated set\"\n";
    let zone1 = zone(1, generated);
    let transfer = format!(
        "[transfer.\"example.test\"]\nallow_transfer = [\"127.0.0.1\"]\ntsig = {{ name = \"{KEY}\", secret = \"{SECRET}\" }}\n"
    );
    let server = TestServer::start(
        &config(&transfer),
        &[("example.test.zone", zone1.as_bytes())],
    )
    .await;
    let key = format!("hmac-sha256:{KEY}:{SECRET}");

    // dig checks the TSIG of every message.
    let out = real_dig(server.dns, &["example.test", "AXFR", "-y", &key]).await;
    let size = out
        .lines()
        .find(|l| l.starts_with(";; XFR size:"))
        .unwrap_or_else(|| panic!("no transfer: {out}"));
    assert!(size.contains("3006 records"), "{size}");
    let messages: u32 = size
        .split("messages ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(messages > 3, "expected a multi-message transfer: {size}");
    assert!(
        !out.contains("failed") && !out.contains("Couldn't verify"),
        "{out}"
    );
    assert!(
        out.lines()
            .filter(|l| l.contains("TSIG") && l.contains("NOERROR"))
            .count() as u32
            == messages,
        "every message carries a TSIG:\n{}",
        out.lines()
            .filter(|l| l.contains("TSIG"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The wrong key: NOTAUTH with BADSIG; no key: REFUSED; a signed query
    // from an address not allowed: REFUSED.
    let out = real_dig(
        server.dns,
        &[
            "example.test",
            "AXFR",
            "-y",
            &format!("hmac-sha256:{KEY}:{WRONG}"),
        ],
    )
    .await;
    assert!(out.contains("BADSIG") && !out.contains("XFR size"), "{out}");
    assert_eq!(
        xfr(server.dns, "example.test.", RecordType::AXFR).await,
        ResponseCode::Refused
    );
    let out = real_dig(
        server.dns,
        &["-b", "127.0.0.2", "example.test", "AXFR", "-y", &key],
    )
    .await;
    assert!(
        out.contains("Transfer failed") && !out.contains("XFR size"),
        "{out}"
    );
    let log_ok = real_dig(
        server.dns,
        &["-b", "127.0.0.1", "example.test", "IXFR=1", "-y", &key],
    )
    .await;
    assert!(
        log_ok.contains("XFR size: 1 records") && !log_ok.contains("Couldn't verify"),
        "IXFR from the current serial is the SOA alone: {log_ok}"
    );

    // A zone not served: NOTAUTH.
    assert_eq!(
        xfr(server.dns, "other.test.", RecordType::AXFR).await,
        ResponseCode::NotAuth
    );

    let refused = server
        .running
        .registry
        .transfers
        .refused
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(refused >= 4, "wrong key, no key, address, zone: {refused}");

    // Over UDP: an IXFR gets the SOA alone (come back over TCP).
    let out = real_dig(
        server.dns,
        &["+notcp", "example.test", "IXFR=0", "-y", &key],
    )
    .await;
    let soas = out.lines().filter(|l| l.contains("\tSOA\t")).count();
    assert!(
        soas == 1 && out.contains("(UDP)") && !out.contains("Couldn't verify"),
        "{out}"
    );
    server.stop().await;
}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_transfer_table_transfers_are_refused() {
    let server = TestServer::start(&config(""), &[]).await;
    for qtype in [RecordType::AXFR, RecordType::IXFR] {
        assert_eq!(
            xfr(server.dns, "example.test.", qtype).await,
            ResponseCode::Refused,
            "{qtype}"
        );
    }
    // Ordinary queries on the same TCP listener are unaffected.
    let m = dig::tcp(server.dns, &Ask::new("static.example.test.", RecordType::A)).await;
    assert_eq!(addrs(&m), [ip("192.0.2.10")]);
    let soa = dig::udp(server.dns, &Ask::new("example.test.", RecordType::SOA)).await;
    assert!(matches!(
        soa.answers.first().map(|r| &r.data),
        Some(RData::SOA(_))
    ));
    server.stop().await;
}
