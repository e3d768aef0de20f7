//! Cookies against RFC 9018 Appendix A's worked examples, the time window
//! and the lengths RFC 7873 allows.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn secret(s: &str) -> Secret {
    Secret::from_hex(s).expect("secret")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn received(s: &str) -> Received {
    Received::parse(&hex(s)).expect("well formed")
}

const A: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

#[test]
fn rfc9018_a1_a_new_server_cookie() {
    let c = check(
        &received("2464c4abcf10c957"),
        &[secret(A)],
        ip("198.51.100.100"),
        1559731985,
    );
    assert_eq!(c.verdict, Verdict::ClientOnly);
    assert_eq!(
        c.reply.to_vec(),
        hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480")
    );
}

#[test]
fn rfc9018_a2_renewed_after_half_an_hour() {
    let c = check(
        &received("2464c4abcf10c957010000005cf79f111f8130c3eee29480"),
        &[secret(A)],
        ip("198.51.100.100"),
        1559734385,
    );
    assert_eq!(c.verdict, Verdict::Valid);
    assert_eq!(
        c.reply.to_vec(),
        hex("2464c4abcf10c957010000005cf7a871d4a564a1442aca77")
    );
    // Ten minutes after it was made it is sent back as it came.
    let sent = "2464c4abcf10c957010000005cf79f111f8130c3eee29480";
    let c = check(
        &received(sent),
        &[secret(A)],
        ip("198.51.100.100"),
        1559731985 + 600,
    );
    assert_eq!(c.verdict, Verdict::Valid);
    assert_eq!(c.reply.to_vec(), hex(sent));
}

#[test]
fn rfc9018_a3_reserved_octets_as_sent_and_another_client() {
    // Made with the reserved octets set: they are part of the hash.
    let cookie = "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5";
    let stamp = 0x5cf78f71;
    let c = check(
        &received(cookie),
        &[secret(A)],
        ip("203.0.113.203"),
        stamp + 60,
    );
    assert_eq!(c.verdict, Verdict::Valid);
    // Valid and a minute old: sent back as it came.
    assert_eq!(c.reply.to_vec(), hex(cookie));
    // The same cookie from another address is not valid.
    let other = check(
        &received(cookie),
        &[secret(A)],
        ip("203.0.113.204"),
        stamp + 60,
    );
    assert_eq!(other.verdict, Verdict::Bad);
    assert_eq!(
        make(
            &secret(A),
            &[0xfc, 0x93, 0xfc, 0x62, 0x80, 0x7d, 0xdb, 0x86],
            ip("203.0.113.203"),
            1559734700
        )
        .to_vec(),
        hex("010000005cf7a9acf73a7810aca2381e")
    );
}

#[test]
fn rfc9018_a4_ipv6_and_a_rolled_secret() {
    let old = secret("dd3bdf9344b678b185a6f5cb60fca715");
    let new = secret("445536bcd2513298075a5d379663c962");
    let client = ip("2001:db8:220:1:59de:d0f4:8769:82b8");
    let held = received("22681ab97d52c298010000005cf7c57926556bd0934c72f8");
    let fresh = hex("22681ab97d52c298010000005cf7c609a6bb79d16625507a");
    // Old secret still accepted: valid, and renewed with the new one.
    let c = check(&held, &[new, old], client, 1559741961);
    assert_eq!(c.verdict, Verdict::Valid);
    assert_eq!(c.reply.to_vec(), fresh);
    // Old secret gone: not valid, and the same fresh cookie.
    let c = check(&held, &[new], client, 1559741961);
    assert_eq!(c.verdict, Verdict::Bad);
    assert_eq!(c.reply.to_vec(), fresh);
    // The same client over IPv4-mapped IPv6 is the IPv4 client.
    let v4 = ip("198.51.100.100");
    let mapped = ip("::ffff:198.51.100.100");
    let cc = [1, 2, 3, 4, 5, 6, 7, 8];
    assert_eq!(make(&new, &cc, v4, 7), make(&new, &cc, mapped, 7));
}

#[test]
fn an_hour_old_to_five_minutes_ahead() {
    let s = [secret(A)];
    let client = ip("192.0.2.1");
    let cc = [9u8; 8];
    let now = 1_700_000_000u32;
    let at = |stamp: u32| {
        let mut bytes = cc.to_vec();
        bytes.extend_from_slice(&make(&s[0], &cc, client, stamp));
        check(&Received::parse(&bytes).expect("ok"), &s, client, now)
    };
    for (offset, valid, kept) in [
        (0i64, true, true),
        (-1800, true, true),
        (-1801, true, false),
        (-3600, true, false),
        (-3601, false, false),
        (300, true, true),
        (301, false, false),
    ] {
        let stamp = (i64::from(now) + offset) as u32;
        let c = at(stamp);
        assert_eq!(c.verdict == Verdict::Valid, valid, "offset {offset}");
        assert_eq!(
            c.reply[CLIENT_LEN + 4..CLIENT_LEN + 8] == stamp.to_be_bytes(),
            kept,
            "offset {offset}: kept or renewed"
        );
    }
    // Across the wrap of the 32-bit stamp: an hour less a second old.
    let old = u32::MAX - 1000;
    let mut bytes = cc.to_vec();
    bytes.extend_from_slice(&make(&s[0], &cc, client, old));
    let c = check(&Received::parse(&bytes).expect("ok"), &s, client, 2598);
    assert_eq!(c.verdict, Verdict::Valid);
}

#[test]
fn lengths_rfc7873_allows() {
    for n in [0, 1, 7, 9, 15, 41, 60] {
        assert_eq!(Received::parse(&vec![0; n]), Err(Malformed), "{n}");
    }
    for n in [8, 16, 24, 32, 40] {
        let r = Received::parse(&vec![1; n]).expect("well formed");
        assert_eq!(r.server().len(), n - 8);
        // A server cookie that is not a version-1 16-octet one is not ours.
        let c = check(&r, &[secret(A)], ip("192.0.2.1"), 100);
        let want = if n == 8 {
            Verdict::ClientOnly
        } else {
            Verdict::Bad
        };
        assert_eq!(c.verdict, want, "{n}");
    }
}

#[test]
fn secrets_are_32_hex_digits_and_never_printed() {
    assert_eq!(
        Secret::from_hex("000102030405060708090A0b0c0d0e0f"),
        Some(Secret([
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
        ]))
    );
    for bad in [
        "",
        "00",
        "000102030405060708090a0b0c0d0e0",
        "000102030405060708090a0b0c0d0e0g",
        "+00102030405060708090a0b0c0d0e0f",
    ] {
        assert_eq!(Secret::from_hex(bad), None, "{bad}");
    }
    assert_eq!(format!("{:?}", secret(A)), "CookieSecret(..)");
}

#[test]
fn the_option_is_found_in_a_message() {
    use hickory_proto::op::{Edns, Message, Query};
    use hickory_proto::rr::rdata::opt::EdnsOption;
    use hickory_proto::rr::{Name, RecordType};
    let mut m = Message::query();
    m.add_query(Query::query(
        Name::from_ascii("a.example.").expect("name"),
        RecordType::A,
    ));
    assert_eq!(in_message(&m.to_vec().expect("encode")), None);
    let mut e = Edns::new();
    e.options_mut()
        .insert(EdnsOption::Unknown(OPTION, hex("2464c4abcf10c957")));
    m.set_edns(e);
    let bytes = m.to_vec().expect("encode");
    assert_eq!(in_message(&bytes), Some(Ok(received("2464c4abcf10c957"))));
    let mut e = Edns::new();
    e.options_mut()
        .insert(EdnsOption::Unknown(OPTION, vec![0; 12]));
    m.set_edns(e);
    assert_eq!(
        in_message(&m.to_vec().expect("encode")),
        Some(Err(Malformed))
    );
}
