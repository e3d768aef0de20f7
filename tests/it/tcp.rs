//! DNS over TCP per RFC 7766: pipelined queries on one connection, the idle
//! timeout, and the connection limit that closes the connection idle longest
//! instead of turning new clients away.

use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::dig::{self, Ask};
use crate::harness::geosteer::{TestServer, server_header};

fn framed(ask: &Ask, id: u16) -> Vec<u8> {
    let mut wire = ask.wire();
    wire[..2].copy_from_slice(&id.to_be_bytes());
    let mut out = (wire.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&wire);
    out
}

async fn read_answer(stream: &mut TcpStream) -> Message {
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut len))
        .await
        .expect("an answer in time")
        .expect("read length");
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await.expect("read answer");
    Message::from_vec(&buf).expect("decode")
}

/// True when the server closed the connection (EOF) within `within`.
async fn closed(stream: &mut TcpStream, within: Duration) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn several_queries_on_one_connection_are_all_answered() {
    let s = TestServer::start(&server_header(""), &[]).await;
    let mut c = TcpStream::connect(s.dns).await.expect("connect");
    let mut burst = Vec::new();
    let names = [
        "static.example.test.",
        "ns1.example.test.",
        "nope.example.test.",
    ];
    for (i, name) in names.iter().enumerate() {
        burst.extend(framed(&Ask::new(name, RecordType::A), 100 + i as u16));
    }
    c.write_all(&burst).await.expect("write");
    let mut ids = Vec::new();
    for _ in names {
        let m = read_answer(&mut c).await;
        ids.push(m.metadata.id);
        match m.metadata.id {
            100 => assert_eq!(dig::addrs(&m), vec![dig::ip("192.0.2.10")]),
            101 => assert_eq!(dig::addrs(&m), vec![dig::ip("127.0.0.1")]),
            102 => assert_eq!(
                m.metadata.response_code,
                hickory_proto::op::ResponseCode::NXDomain
            ),
            other => panic!("unexpected answer id {other}"),
        }
    }
    ids.sort();
    assert_eq!(ids, vec![100, 101, 102], "every query answered once");
    // The connection stays open for more.
    c.write_all(&framed(&Ask::new("static.example.test.", RecordType::A), 7))
        .await
        .expect("write");
    assert_eq!(read_answer(&mut c).await.metadata.id, 7);
    s.stop().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_timeout() {
    let s = TestServer::start(&server_header("tcp_idle_timeout = \"300ms\""), &[]).await;
    let mut c = TcpStream::connect(s.dns).await.expect("connect");
    c.write_all(&framed(&Ask::new("static.example.test.", RecordType::A), 1))
        .await
        .expect("write");
    assert_eq!(read_answer(&mut c).await.metadata.id, 1);
    assert!(
        closed(&mut c, Duration::from_secs(5)).await,
        "closed once idle"
    );
    s.stop().await;
}

#[tokio::test]
async fn at_the_limit_the_connection_idle_longest_makes_room() {
    let s = TestServer::start(&server_header("tcp_max_connections = 20"), &[]).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(s.dns).await.expect("connect"));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut fresh = TcpStream::connect(s.dns).await.expect("connect");
    fresh
        .write_all(&framed(&Ask::new("static.example.test.", RecordType::A), 9))
        .await
        .expect("write");
    assert_eq!(
        read_answer(&mut fresh).await.metadata.id,
        9,
        "the new client is answered"
    );
    assert!(
        closed(&mut idle[0], Duration::from_secs(5)).await,
        "the oldest idle one was closed"
    );
    assert!(
        !closed(&mut idle[19], Duration::from_millis(300)).await,
        "the newest idle one stays"
    );
    s.stop().await;
}

#[tokio::test]
async fn two_thousand_idle_connections_do_not_lock_a_new_client_out() {
    // The default limit (1,000): the test holds 2,000 connections open.
    let s = TestServer::start(&server_header(""), &[]).await;
    // From 127.0.0.2: their 2,000 ephemeral ports are then taken on that
    // address only, never one another test picks on 127.0.0.1.
    let mut idle = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let from = tokio::net::TcpSocket::new_v4().expect("socket");
        from.bind("127.0.0.2:0".parse().expect("addr"))
            .expect("bind 127.0.0.2");
        match from.connect(s.dns).await {
            Ok(c) => idle.push(c),
            Err(e) => panic!("connection {} failed: {e} (raise `ulimit -n`)", idle.len()),
        }
    }
    let m = dig::tcp(s.dns, &Ask::new("static.example.test.", RecordType::A)).await;
    assert_eq!(dig::addrs(&m), vec![dig::ip("192.0.2.10")]);
    // UDP is unaffected too.
    let m = dig::udp(s.dns, &Ask::new("static.example.test.", RecordType::A)).await;
    assert_eq!(dig::addrs(&m), vec![dig::ip("192.0.2.10")]);
    drop(idle);
    s.stop().await;
}
