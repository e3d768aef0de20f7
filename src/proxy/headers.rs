//! headers: the pure header rules of the L7 proxy.
//!
//! Hop-by-hop removal (the fixed list plus every name in `Connection`), the
//! forwarding headers (`X-Forwarded-For` appended, `X-Forwarded-Proto`,
//! `X-Forwarded-Host`, RFC 7239 `Forwarded` appended), framing checks and the
//! routing host. No IO; the shell in `forward` applies these to live messages.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
pub(crate) const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes hop-by-hop headers and every header the `Connection` header names.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The protocol a client asks to upgrade to, when the request is a valid
/// HTTP/1.1 upgrade (`Connection: upgrade` plus `Upgrade: X`).
pub fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !connection_upgrade {
        return None;
    }
    headers.get(header::UPGRADE).cloned()
}

/// Puts back the two headers an upgrade needs after hop-by-hop removal.
pub fn restore_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
}

/// Adds the forwarding headers for a request from `client` that arrived over
/// `proto` (`http`/`https`) for `host` (the Host the client sent).
pub fn add_forwarding(headers: &mut HeaderMap, client: IpAddr, proto: &str, host: Option<&str>) {
    // X-Forwarded-For: append to whatever earlier proxies wrote, as one line.
    let mut xff: Vec<String> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    xff.push(client.to_string());
    if let Ok(v) = HeaderValue::from_str(&xff.join(", ")) {
        headers.insert(&X_FORWARDED_FOR, v);
    }
    headers.insert(
        &X_FORWARDED_PROTO,
        HeaderValue::from_static(proto_static(proto)),
    );
    match host.and_then(|h| HeaderValue::from_str(h).ok()) {
        Some(h) => {
            headers.insert(&X_FORWARDED_HOST, h);
        }
        None => {
            headers.remove(&X_FORWARDED_HOST);
        }
    }
    // Forwarded (RFC 7239): append one element for this hop.
    let element = forwarded_element(client, proto, host);
    let mut all: Vec<String> = headers
        .get_all(header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    all.push(element);
    if let Ok(v) = HeaderValue::from_str(&all.join(", ")) {
        headers.insert(header::FORWARDED, v);
    }
}

/// This hop's element of RFC 7239 `Forwarded`: `for=..;proto=..[;host=..]`.
pub(crate) fn forwarded_element(client: IpAddr, proto: &str, host: Option<&str>) -> String {
    let mut element = format!(
        "for={};proto={}",
        forwarded_node(client),
        proto_static(proto)
    );
    if let Some(h) = host {
        element.push_str(";host=");
        element.push_str(&forwarded_value(h));
    }
    element
}

pub(crate) fn proto_static(proto: &str) -> &'static str {
    if proto == "https" { "https" } else { "http" }
}

/// RFC 7239 §6: IPv6 nodes are bracketed and the whole value quoted.
fn forwarded_node(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    }
}

/// A token as is; anything else as a quoted-string.
fn forwarded_value(v: &str) -> String {
    let token = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if token {
        v.to_string()
    } else {
        let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    }
}

/// Why a request's framing is refused (answered 400). hyper already refuses
/// most of these on HTTP/1 before we see the request; this is the second line
/// for what reaches us (and for HTTP/2).
pub fn framing_error(headers: &HeaderMap) -> Option<&'static str> {
    let te: Vec<&HeaderValue> = headers.get_all(header::TRANSFER_ENCODING).iter().collect();
    let cl: Vec<&HeaderValue> = headers.get_all(header::CONTENT_LENGTH).iter().collect();
    if !te.is_empty() && !cl.is_empty() {
        return Some("both Content-Length and Transfer-Encoding");
    }
    if let Some(first) = cl.first()
        && cl.iter().any(|v| v != first)
    {
        return Some("conflicting Content-Length values");
    }
    if let Some(first) = cl.first()
        && first
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .is_none()
    {
        return Some("invalid Content-Length");
    }
    if let Some(last) = te.last() {
        let final_coding = last
            .to_str()
            .ok()
            .and_then(|s| s.rsplit(',').next())
            .map(|s| s.trim().to_ascii_lowercase());
        if final_coding.as_deref() != Some("chunked") {
            return Some("Transfer-Encoding must end in chunked");
        }
    }
    None
}

/// The host a request is for, for routing: lower case, without port or
/// trailing dot. `host_header` wins over the URI authority (HTTP/2).
pub fn routing_host(host_header: Option<&str>, authority: Option<&str>) -> Option<String> {
    let raw = host_header.or(authority)?.trim();
    let without_port = if let Some(rest) = raw.strip_prefix('[') {
        // [v6]:port
        rest.split(']').next().unwrap_or(rest)
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => raw,
        }
    };
    let h = without_port.trim_end_matches('.').to_ascii_lowercase();
    (!h.is_empty()).then_some(h)
}

/// Does a route's host pattern (exact, or `*.suffix`) match `host`?
pub fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests;
