//! The RRL table with a fixed clock (seconds are arguments).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::*;
use crate::config::{RrlConfig, ZoneConfig};

fn config(rate: u32, window: u32, slip: u32) -> RrlConfig {
    RrlConfig {
        responses_per_second: rate,
        window_secs: window,
        slip,
        exempt: Vec::new(),
        ..RrlConfig::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn slots_pack_and_unpack() {
    for balance in [-300, -1, 0, 1, 20, MAX_BALANCE, -MAX_BALANCE] {
        let s = Slot {
            used: true,
            tag: 0xbeef,
            second: 65_000,
            balance,
            slips: 250,
        };
        assert_eq!(Slot::unpack(s.pack()), s, "{balance}");
    }
}

#[test]
fn a_flood_is_cut_to_the_rate_with_every_second_drop_slipped() {
    let rrl = Rrl::new(1024, Arc::default());
    let c = config(5, 15, 2);
    let client = ip("198.51.100.7");
    let verdicts: Vec<Verdict> = (0..25)
        .map(|_| rrl.check(&c, client, Kind::Positive, b"www.example.test.", 100))
        .collect();
    let sent = verdicts.iter().filter(|v| **v == Verdict::Send).count();
    let slipped = verdicts.iter().filter(|v| **v == Verdict::Slip).count();
    assert_eq!(sent, 5, "{verdicts:?}");
    assert_eq!(slipped, 10, "every second one over the limit: {verdicts:?}");
    assert_eq!(rrl.counters.dropped.load(Ordering::Relaxed), 10);
    // Same /24, another host: the same account.
    assert_ne!(
        rrl.check(
            &c,
            ip("198.51.100.200"),
            Kind::Positive,
            b"www.example.test.",
            100
        ),
        Verdict::Send
    );
    // Another name, or another prefix: another account.
    assert_eq!(
        rrl.check(&c, client, Kind::Positive, b"static.example.test.", 100),
        Verdict::Send
    );
    assert_eq!(
        rrl.check(
            &c,
            ip("198.51.101.7"),
            Kind::Positive,
            b"www.example.test.",
            100
        ),
        Verdict::Send
    );
}

#[test]
fn debt_must_be_paid_before_answers_resume() {
    let rrl = Rrl::new(1024, Arc::default());
    let c = config(2, 3, 0);
    let client = ip("2001:db8:1:2::1");
    // 2 sent, then 100 over: the debt stops at rate × window = 6.
    for _ in 0..102 {
        rrl.check(&c, client, Kind::NxDomain, b"example.test.", 10);
    }
    // Two seconds later the account holds -6 + 4 = -2: still dropped.
    assert_eq!(
        rrl.check(&c, client, Kind::NxDomain, b"example.test.", 12),
        Verdict::Drop
    );
    // Well after the window: answers again, at the rate (2 a second), and
    // another host of the same /56 shares the account.
    assert_eq!(
        rrl.check(&c, client, Kind::NxDomain, b"example.test.", 20),
        Verdict::Send
    );
    assert_eq!(
        rrl.check(
            &c,
            ip("2001:db8:1:ff::9"),
            Kind::NxDomain,
            b"example.test.",
            20
        ),
        Verdict::Send
    );
    assert_eq!(
        rrl.check(
            &c,
            ip("2001:db8:1:ff::9"),
            Kind::NxDomain,
            b"example.test.",
            20
        ),
        Verdict::Drop
    );
    assert_eq!(
        rrl.check(
            &c,
            ip("2001:db8:1:100::9"),
            Kind::NxDomain,
            b"example.test.",
            20
        ),
        Verdict::Send
    );
}

#[test]
fn a_flood_of_distinct_sources_fits_the_table() {
    let rrl = Rrl::new(1000, Arc::default());
    assert_eq!(
        rrl.slots.len(),
        1024,
        "rounded up to a power of two, never grown"
    );
    let c = config(1, 15, 2);
    for i in 0..200_000u32 {
        let client = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 | (i << 8)));
        rrl.check(&c, client, Kind::Positive, b"www.example.test.", 5);
    }
    assert_eq!(rrl.slots.len(), 1024);
}

#[test]
fn exempt_and_disabled_are_not_charged() {
    let mut c = RrlConfig::default();
    assert!(
        !Rrl::applies(&c, ip("127.0.0.1")),
        "loopback is exempt by default"
    );
    assert!(!Rrl::applies(&c, ip("::1")));
    assert!(Rrl::applies(&c, ip("192.0.2.1")));
    c.enabled = false;
    assert!(!Rrl::applies(&c, ip("192.0.2.1")));
}

#[test]
fn responses_are_charged_by_name_zone_or_rcode() {
    // A response to `WWW.Example.test A`: header, question.
    let mut resp = vec![0x12, 0x34, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0];
    for label in ["WWW", "Example", "test"] {
        resp.push(label.len() as u8);
        resp.extend_from_slice(label.as_bytes());
    }
    resp.extend_from_slice(&[0, 0, 1, 0, 1]);
    resp.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 1]);
    let zones = [ZoneConfig {
        origin: "example.test.".into(),
        path: "z".into(),
        transfer: None,
        dnssec: None,
    }];
    let mut buf = [0u8; 256];
    assert_eq!(
        classify(&resp, &zones, &mut buf),
        Some((Kind::Positive, &b"www.example.test."[..]))
    );
    let mut nx = resp.clone();
    nx[3] = 0x03;
    assert_eq!(
        classify(&nx, &zones, &mut buf),
        Some((Kind::NxDomain, &b"example.test."[..]))
    );
    let mut refused = resp.clone();
    refused[3] = 0x05;
    assert_eq!(
        classify(&refused, &zones, &mut buf).map(|c| c.0),
        Some(Kind::Error)
    );
    assert_eq!(classify(&resp[..10], &zones, &mut buf), None);
    // The slip: header and question only, TC set, no records.
    let mut slip = resp.clone();
    truncate_to_slip(&mut slip);
    assert_eq!(slip.len(), 12 + 18 + 4);
    assert_eq!(slip[2] & 0x02, 0x02);
    assert_eq!(&slip[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
}
