//! head: HTTP/1.1 message heads on the forwarding path. A request head is
//! parsed with httparse, checked for framing (RFC 9112 §6) and rewritten into
//! the bytes sent to the server in one pass over the parsed fields; a
//! response head likewise into the bytes sent to the client. Pure: bytes in,
//! bytes and a verdict out.
//!
//! Rewriting drops hop-by-hop fields and every field `Connection` names,
//! merges `X-Forwarded-For` and `Forwarded` (this hop appended), replaces
//! `X-Forwarded-Proto`/`-Host`, and keeps `Transfer-Encoding` and
//! `Content-Length` as they came, because the body is passed on unchanged.

use std::mem::MaybeUninit;
use std::net::IpAddr;

use super::super::headers::{HOP_BY_HOP, forwarded_element, proto_static, routing_host};

/// Header fields parsed per message on this path; `max_headers` above it is
/// capped here.
pub(super) const MAX_HEADERS: usize = 128;

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    None,
    Length(u64),
    Chunked,
    /// Until the server closes (responses only).
    Close,
}

/// A request head, parsed and rewritten.
#[derive(Debug)]
pub(super) struct Request {
    /// Bytes of the head in the buffer it was parsed from.
    pub head_len: usize,
    pub is_head: bool,
    pub idempotent: bool,
    pub body: Body,
    /// The client keeps the connection after this exchange.
    pub keep_alive: bool,
    /// For routing: lower case, no port.
    pub host: Option<String>,
    /// For routing: the path without the query.
    pub path: String,
}

impl Request {
    /// Whether the client connection can carry another request after an
    /// answer that read none of this one's body (a body left unread leaves
    /// the connection unframed).
    pub(super) fn keeps_without_body(&self) -> bool {
        self.keep_alive && self.body == Body::None
    }
}

/// A response head, parsed and rewritten.
#[derive(Debug)]
pub(super) struct Response {
    pub head_len: usize,
    pub status: u16,
    pub body: Body,
    /// The server connection can carry another request afterwards.
    pub reusable: bool,
    /// The client connection closes after this response.
    pub close_client: bool,
}

/// The verdict on the bytes of a request head received so far.
#[derive(Debug)]
pub(super) enum Parsed {
    Done(Request),
    Partial,
    /// For hyper's full server: HTTP/1.0, upgrades, HTTP/2 prior knowledge,
    /// absolute-form and CONNECT targets.
    Handoff,
    Reject {
        status: u16,
        why: &'static str,
    },
}

fn reject(status: u16, why: &'static str) -> Parsed {
    Parsed::Reject { status, why }
}

/// Tokens of a `Connection` value that name other fields.
#[derive(Default)]
struct Connection<'b> {
    close: bool,
    keep_alive: bool,
    upgrade: bool,
    named: Vec<&'b [u8]>,
}

impl<'b> Connection<'b> {
    fn add(&mut self, value: &'b [u8]) {
        for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            } else if !token.is_empty() {
                self.named.push(token);
            }
        }
    }

    fn names(&self, name: &str) -> bool {
        self.named
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name.as_bytes()))
    }
}

fn is(name: &str, lower: &str) -> bool {
    name.eq_ignore_ascii_case(lower)
}

fn content_length(value: &[u8]) -> Option<u64> {
    let v = value.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Is `chunked` the final coding of the last `Transfer-Encoding` line?
fn ends_chunked(last_te: &[u8]) -> bool {
    last_te
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends the values of every `name` field, trimmed, joined by ", ".
fn push_joined(out: &mut Vec<u8>, headers: &[httparse::Header<'_>], name: &str) {
    for h in headers.iter().filter(|h| is(h.name, name)) {
        let v = h.value.trim_ascii();
        if !v.is_empty() {
            out.extend_from_slice(v);
            out.extend_from_slice(b", ");
        }
    }
}

/// Parses the request head at the start of `buf` and, when it is complete
/// and acceptable, writes the head to send to the server into `out`.
pub(super) fn parse_request(
    buf: &[u8],
    max_headers: usize,
    client: IpAddr,
    proto: &str,
    out: &mut Vec<u8>,
) -> Parsed {
    // HTTP/2 with prior knowledge: hyper's server reads the preface.
    if buf.len() < 4 {
        if b"PRI ".starts_with(buf) {
            return Parsed::Partial;
        }
    } else if buf.starts_with(b"PRI ") {
        return Parsed::Handoff;
    }
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len =
        match req.parse_with_uninit_headers(buf, &mut slots[..max_headers.clamp(1, MAX_HEADERS)]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Parsed::Partial,
            Err(httparse::Error::TooManyHeaders) => return reject(431, "too many header fields"),
            Err(httparse::Error::Version) => return reject(505, "unsupported HTTP version"),
            Err(_) => return reject(400, "malformed request head"),
        };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return reject(400, "malformed request line");
    };
    let origin_form = target.starts_with('/') || (target == "*" && method == "OPTIONS");
    if version == 0 || method == "CONNECT" || !origin_form {
        return Parsed::Handoff;
    }

    let mut connection = Connection::default();
    let (mut lengths, mut length) = (0, None);
    let mut last_te: Option<&[u8]> = None;
    let (mut hosts, mut host) = (0, None);
    for h in req.headers.iter() {
        let name = h.name;
        if is(name, "content-length") {
            lengths += 1;
            length = Some(content_length(h.value));
        } else if is(name, "transfer-encoding") {
            last_te = Some(h.value);
        } else if is(name, "connection") {
            connection.add(h.value);
        } else if is(name, "upgrade") {
            connection.upgrade = true;
        } else if is(name, "host") {
            hosts += 1;
            host = Some(h.value);
        }
    }
    if connection.upgrade {
        return Parsed::Handoff;
    }
    let body = match (last_te, length) {
        (Some(_), Some(_)) => return reject(400, "both Content-Length and Transfer-Encoding"),
        (Some(te), None) if ends_chunked(te) => Body::Chunked,
        (Some(_), None) => return reject(400, "Transfer-Encoding must end in chunked"),
        (None, Some(_)) if lengths > 1 => return reject(400, "more than one Content-Length"),
        (None, Some(None)) => return reject(400, "invalid Content-Length"),
        (None, Some(Some(0))) | (None, None) => Body::None,
        (None, Some(Some(n))) => Body::Length(n),
    };
    let host = match (hosts, host.map(std::str::from_utf8)) {
        (1, Some(Ok(h))) => h,
        (0, _) => return reject(400, "missing Host"),
        (1, _) => return reject(400, "invalid Host"),
        _ => return reject(400, "more than one Host"),
    };

    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for h in req.headers.iter() {
        let name = h.name;
        let dropped = (HOP_BY_HOP.iter().any(|hop| is(name, hop))
            && !is(name, "transfer-encoding"))
            || is(name, "x-forwarded-for")
            || is(name, "x-forwarded-proto")
            || is(name, "x-forwarded-host")
            || is(name, "forwarded")
            // Framing and Host stay whatever Connection says: the body is
            // framed by them here, so the server must see them too.
            || connection.names(name)
                && !is(name, "content-length")
                && !is(name, "transfer-encoding")
                && !is(name, "host");
        if !dropped {
            push_field(out, name.as_bytes(), h.value);
        }
    }
    let proto = proto_static(proto);
    out.extend_from_slice(b"x-forwarded-for: ");
    push_joined(out, req.headers, "x-forwarded-for");
    out.extend_from_slice(client.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    push_field(out, b"x-forwarded-proto", proto.as_bytes());
    push_field(out, b"x-forwarded-host", host.trim().as_bytes());
    out.extend_from_slice(b"forwarded: ");
    push_joined(out, req.headers, "forwarded");
    out.extend_from_slice(forwarded_element(client, proto, Some(host.trim())).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");

    Parsed::Done(Request {
        head_len,
        is_head: method == "HEAD",
        idempotent: matches!(
            method,
            "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
        ),
        body,
        keep_alive: !connection.close,
        host: routing_host(Some(host), None),
        path: target.split('?').next().unwrap_or(target).to_string(),
    })
}

/// Parses the response head at the start of `buf` and, when complete, writes
/// the head to send to the client into `out`. `Ok(None)`: more bytes needed.
/// `client_close`: the client connection closes after this response anyway.
pub(super) fn parse_response(
    buf: &[u8],
    request_is_head: bool,
    client_close: bool,
    out: &mut Vec<u8>,
) -> Result<Option<Response>, &'static str> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let head_len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err("too many header fields in response"),
        Err(_) => return Err("malformed response head"),
    };
    let (Some(status), Some(version)) = (resp.code, resp.version) else {
        return Err("malformed status line");
    };
    if status < 100 {
        return Err("status code below 100");
    }
    if status == 101 {
        return Err("101 Switching Protocols to a request that asked for no upgrade");
    }
    let mut connection = Connection::default();
    let mut length: Option<u64> = None;
    let mut last_te: Option<&[u8]> = None;
    for h in resp.headers.iter() {
        if is(h.name, "content-length") {
            let n = content_length(h.value).ok_or("invalid Content-Length in response")?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length in response");
            }
            length = Some(n);
        } else if is(h.name, "transfer-encoding") {
            last_te = Some(h.value);
        } else if is(h.name, "connection") {
            connection.add(h.value);
        }
    }
    let informational = (100..200).contains(&status);
    let body = if request_is_head || informational || status == 204 || status == 304 {
        Body::None
    } else {
        match (last_te, length) {
            (Some(te), _) if ends_chunked(te) => Body::Chunked,
            (Some(_), _) | (None, None) => Body::Close,
            (None, Some(0)) => Body::None,
            (None, Some(n)) => Body::Length(n),
        }
    };
    let keep_alive = if version == 1 {
        !connection.close
    } else {
        connection.keep_alive
    };
    let reusable = keep_alive && body != Body::Close && !(last_te.is_some() && length.is_some());
    let close_client = !informational && (client_close || body == Body::Close);

    out.clear();
    out.extend_from_slice(format!("HTTP/1.1 {status} ").as_bytes());
    out.extend_from_slice(resp.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in resp.headers.iter() {
        let name = h.name;
        // The body goes on unchanged, so its framing fields stay (a length
        // next to a coding is dropped: the coding wins).
        let framing =
            is(name, "transfer-encoding") || is(name, "content-length") && last_te.is_none();
        let dropped = HOP_BY_HOP.iter().any(|hop| is(name, hop)) || connection.names(name);
        if framing || !dropped && !is(name, "content-length") {
            push_field(out, name.as_bytes(), h.value);
        }
    }
    if close_client {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Some(Response {
        head_len,
        status,
        body,
        reusable,
        close_client,
    }))
}

/// A response the proxy writes itself: plain text, always framed by length;
/// without the body itself when answering a HEAD request.
pub(super) fn local(
    out: &mut Vec<u8>,
    status: u16,
    body: &str,
    close: bool,
    retry_after: Option<u64>,
    to_head: bool,
) {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    out.clear();
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n",
            body.len()
        )
        .as_bytes(),
    );
    if let Some(secs) = retry_after {
        out.extend_from_slice(format!("retry-after: {secs}\r\n").as_bytes());
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !to_head {
        out.extend_from_slice(body.as_bytes());
    }
}
