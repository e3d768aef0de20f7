//! Tests of the pure header rules.

use super::*;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

#[test]
fn hop_by_hop_and_connection_named_headers_go() {
    let mut h = map(&[
        ("connection", "close, X-Secret"),
        ("x-secret", "1"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("proxy-connection", "keep-alive"),
        ("x-keep", "yes"),
    ]);
    remove_hop_by_hop(&mut h);
    assert_eq!(h.len(), 1);
    assert_eq!(h["x-keep"], "yes");
}

#[test]
fn xff_is_appended_not_replaced() {
    let mut h = map(&[
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-for", "10.0.0.1"),
    ]);
    add_forwarding(
        &mut h,
        "192.0.2.9".parse().unwrap(),
        "http",
        Some("Example.test"),
    );
    assert_eq!(h["x-forwarded-for"], "203.0.113.7, 10.0.0.1, 192.0.2.9");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "Example.test");
    assert_eq!(h["forwarded"], "for=192.0.2.9;proto=http;host=Example.test");
}

#[test]
fn forwarded_quotes_ipv6_and_ports_and_appends() {
    let mut h = map(&[("forwarded", "for=198.51.100.1")]);
    add_forwarding(
        &mut h,
        "2001:db8::1".parse().unwrap(),
        "https",
        Some("a.test:8443"),
    );
    assert_eq!(
        h["forwarded"],
        "for=198.51.100.1, for=\"[2001:db8::1]\";proto=https;host=\"a.test:8443\""
    );
    assert_eq!(h["x-forwarded-for"], "2001:db8::1");
}

#[test]
fn upgrade_needs_connection_upgrade() {
    let h = map(&[
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "websocket"),
    ]);
    assert_eq!(upgrade_protocol(&h).unwrap(), "websocket");
    let h = map(&[("upgrade", "websocket")]);
    assert!(upgrade_protocol(&h).is_none());
}

#[test]
fn framing_rules() {
    let cases: &[(&[(&str, &str)], bool)] = &[
        (&[("content-length", "5")], true),
        (&[("transfer-encoding", "chunked")], true),
        (&[("transfer-encoding", "gzip, chunked")], true),
        (
            &[("content-length", "5"), ("transfer-encoding", "chunked")],
            false,
        ),
        (&[("content-length", "5"), ("content-length", "6")], false),
        (&[("content-length", "5"), ("content-length", "5")], true),
        (&[("content-length", "x")], false),
        (&[("transfer-encoding", "chunked, gzip")], false),
        (&[("transfer-encoding", "identity")], false),
        (&[], true),
    ];
    for (pairs, ok) in cases {
        assert_eq!(framing_error(&map(pairs)).is_none(), *ok, "{pairs:?}");
    }
}

#[test]
fn routing_host_strips_port_and_case() {
    assert_eq!(
        routing_host(Some("API.Example.test:8080"), None).unwrap(),
        "api.example.test"
    );
    assert_eq!(
        routing_host(Some("example.test."), None).unwrap(),
        "example.test"
    );
    assert_eq!(routing_host(None, Some("h2.test:443")).unwrap(), "h2.test");
    assert_eq!(routing_host(Some("[::1]:80"), None).unwrap(), "::1");
    assert_eq!(routing_host(None, None), None);
}

#[test]
fn host_patterns() {
    assert!(host_matches("api.example.test", "api.example.test"));
    assert!(!host_matches("api.example.test", "www.example.test"));
    assert!(host_matches("*.example.test", "a.b.example.test"));
    assert!(host_matches("*.example.test", "www.example.test"));
    assert!(!host_matches("*.example.test", "example.test"));
    assert!(!host_matches("*.example.test", "badexample.test"));
}
