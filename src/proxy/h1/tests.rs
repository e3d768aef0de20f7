//! Tests of the pure parts of the forwarding path: chunked boundaries and
//! head rewriting. The IO is tested end to end in tests/it/proxy/ and tests/it/proxy_h1.rs.

use std::net::{IpAddr, Ipv4Addr};

use super::chunked::{Chunked, Scan};
use super::head::{Body, Parsed, parse_request, parse_response};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));

fn request(raw: &str) -> (Parsed, String) {
    let mut out = Vec::new();
    let parsed = parse_request(raw.as_bytes(), 100, CLIENT, "http", &mut out);
    (parsed, String::from_utf8(out).unwrap())
}

#[test]
fn chunked_end_found_at_every_split() {
    let body =
        b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";
    let next = b"GET / HTTP/1.1\r\n";
    let mut all = body.to_vec();
    all.extend_from_slice(next);
    for split in 0..=all.len() {
        let mut c = Chunked::default();
        let (a, b) = all.split_at(split);
        let end = match c.scan(a).unwrap() {
            Scan::End(k) => k,
            Scan::More => {
                a.len()
                    + match c.scan(b).unwrap() {
                        Scan::End(k) => k,
                        Scan::More => panic!("no end at split {split}"),
                    }
            }
        };
        assert_eq!(end, body.len(), "split {split}");
    }
}

#[test]
fn chunked_framing_errors_are_refused() {
    for bad in [
        &b"x\r\n"[..],
        b"\r\n",
        b"4\nWiki\r\n",           // bare LF after the size
        b"4\r\nWikiX\r\n",        // data longer than its size
        b"11111111111111111\r\n", // 17 hex digits
        b"0\r\nTrailer: x\n\r\n", // bare LF in trailers
        b"0\r\n\rX",              // final CRLF broken
    ] {
        let mut c = Chunked::default();
        assert!(c.scan(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn request_head_is_rewritten_for_the_server() {
    let raw = "GET /a/b?q=1 HTTP/1.1\r\nHost: App.Test:8080\r\nConnection: keep-alive, X-Secret\r\n\
         X-Secret: s\r\nKeep-Alive: timeout=5\r\nX-Forwarded-For: 192.0.2.1\r\n\
         X-Forwarded-Proto: https\r\nForwarded: for=192.0.2.1\r\nAccept: */*\r\n\r\nrest";
    let (parsed, out) = request(raw);
    let Parsed::Done(req) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(req.host.as_deref(), Some("app.test"));
    assert_eq!(req.path, "/a/b");
    assert_eq!(req.body, Body::None);
    assert!(req.keep_alive && req.idempotent && !req.is_head);
    assert_eq!(req.head_len, raw.find("rest").unwrap());
    assert!(out.starts_with("GET /a/b?q=1 HTTP/1.1\r\n"), "{out}");
    let lower = out.to_ascii_lowercase();
    for gone in ["x-secret", "keep-alive", "connection", "https"] {
        assert!(!lower.contains(gone), "{gone} left in {out}");
    }
    assert!(out.contains("Host: App.Test:8080\r\n"));
    assert!(out.contains("Accept: */*\r\n"));
    assert!(
        out.contains("x-forwarded-for: 192.0.2.1, 10.0.0.7\r\n"),
        "{out}"
    );
    assert!(out.contains("x-forwarded-proto: http\r\n"));
    assert!(out.contains("x-forwarded-host: App.Test:8080\r\n"));
    assert!(
        out.contains(
            "forwarded: for=192.0.2.1, for=10.0.0.7;proto=http;host=\"App.Test:8080\"\r\n"
        ),
        "{out}"
    );
    assert!(out.ends_with("\r\n\r\n") && !out.contains("rest"));
}

#[test]
fn request_framing_is_strict() {
    for (raw, status) in [
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            400,
        ),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nBad Name: b\r\n\r\n", 400),
    ] {
        match request(raw).0 {
            Parsed::Reject { status: s, .. } => assert_eq!(s, status, "{raw}"),
            other => panic!("{raw}: {other:?}"),
        }
    }
    let (Parsed::Done(req), out) =
        request("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
    else {
        panic!()
    };
    assert_eq!(req.body, Body::Chunked);
    assert!(!req.idempotent);
    assert!(
        out.contains("Transfer-Encoding: gzip, chunked\r\n"),
        "{out}"
    );
    let (Parsed::Done(req), _) = request("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n")
    else {
        panic!()
    };
    assert_eq!(req.body, Body::Length(12));
}

#[test]
fn connection_cannot_strip_framing_or_host() {
    let (parsed, out) = request(
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: content-length, host, x-y\r\nX-Y: 1\r\n\r\n",
    );
    let Parsed::Done(req) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(req.body, Body::Length(3));
    assert!(out.contains("Content-Length: 3\r\n"), "{out}");
    assert!(out.contains("Host: a\r\n"), "{out}");
    assert!(!out.contains("X-Y"), "{out}");
}

#[test]
fn what_this_path_does_not_speak_is_handed_off() {
    for raw in [
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: x\r\n\r\n",
        "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
        "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
    ] {
        assert!(matches!(request(raw).0, Parsed::Handoff), "{raw}");
    }
    assert!(matches!(request("PR").0, Parsed::Partial));
    assert!(matches!(
        request("GET / HTTP/1.1\r\nHost: x\r\n").0,
        Parsed::Partial
    ));
}

#[test]
fn response_framing_and_reuse() {
    let parse = |raw: &str, head: bool, client_close: bool| {
        let mut out = Vec::new();
        let r = parse_response(raw.as_bytes(), head, client_close, &mut out)
            .unwrap()
            .unwrap();
        (r, String::from_utf8(out).unwrap())
    };
    let (r, out) = parse(
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=4\r\nX-A: 1\r\n\r\nhello",
        false,
        false,
    );
    assert_eq!(
        (r.status, r.body, r.reusable, r.close_client),
        (200, Body::Length(5), true, false)
    );
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\n"
    );
    let (r, out) = parse(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
        false,
        true,
    );
    assert_eq!(
        (r.body, r.reusable, r.close_client),
        (Body::Chunked, false, true)
    );
    assert!(
        !out.to_ascii_lowercase().contains("content-length"),
        "{out}"
    );
    assert!(
        out.contains("Transfer-Encoding: chunked\r\nconnection: close\r\n"),
        "{out}"
    );
    let (r, out) = parse("HTTP/1.0 200 OK\r\n\r\n", false, false);
    assert_eq!(
        (r.body, r.reusable, r.close_client),
        (Body::Close, false, true)
    );
    assert!(out.contains("connection: close"));
    let (r, _) = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, false);
    assert_eq!((r.body, r.reusable), (Body::None, true));
    let (r, _) = parse(
        "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n",
        false,
        false,
    );
    assert_eq!(
        (r.body, r.reusable, r.close_client),
        (Body::None, false, false)
    );
    let (r, out) = parse("HTTP/1.1 100 Continue\r\n\r\n", false, true);
    assert_eq!((r.status, r.body, r.close_client), (100, Body::None, false));
    assert_eq!(out, "HTTP/1.1 100 Continue\r\n\r\n");
    let mut out = Vec::new();
    for bad in [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 Odd\r\n\r\n",
    ] {
        assert!(
            parse_response(bad.as_bytes(), false, false, &mut out).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn hostile_bytes_never_panic() {
    // Mutations of valid messages reach deeper than pure noise.
    let seeds: [&[u8]; 3] = [
        b"POST /x?y HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close, X\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc",
        b"5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::new();
    for round in 0..60_000 {
        let mut bytes = seeds[round % seeds.len()].to_vec();
        for _ in 0..(next() % 6) {
            let i = (next() as usize) % bytes.len();
            match next() % 3 {
                0 => bytes[i] = next() as u8,
                1 => bytes.truncate(i.max(1)),
                _ => bytes.insert(
                    i,
                    [b'\r', b'\n', b':', b',', b' ', b'0'][(next() % 6) as usize],
                ),
            }
        }
        let _ = parse_request(&bytes, 100, CLIENT, "http", &mut out);
        let _ = parse_response(&bytes, round % 2 == 0, false, &mut out);
        let mut c = Chunked::default();
        let (a, b) = bytes.split_at(bytes.len() / 2);
        if let Ok(Scan::More) = c.scan(a) {
            let _ = c.scan(b);
        }
    }
}
