//! Response rate limiting over real UDP: a burst from one client prefix is
//! cut to the configured rate, every second response over it slips out
//! truncated, TCP is never limited, and exempt prefixes are not charged.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

use crate::harness::dig::{self, Ask};
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::get;

/// Sends `n` queries for `name` from one socket as fast as it can, then
/// collects what comes back within a second: (full answers, truncated).
async fn burst(server: SocketAddr, name: &str, n: u16) -> (usize, usize) {
    burst_of(server, name, RecordType::A, n).await
}

async fn burst_of(server: SocketAddr, name: &str, qtype: RecordType, n: u16) -> (usize, usize) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let ask = Ask::new(name, qtype);
    for id in 0..n {
        let mut wire = ask.wire();
        wire[..2].copy_from_slice(&id.to_be_bytes());
        sock.send_to(&wire, server).await.expect("send");
    }
    let (mut full, mut truncated) = (0, 0);
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok((len, _))) =
        tokio::time::timeout(Duration::from_secs(1), sock.recv_from(&mut buf)).await
    {
        let m = Message::from_vec(&buf[..len]).expect("decode");
        if m.metadata.truncation {
            assert!(m.answers.is_empty(), "a slip carries no records");
            truncated += 1;
        } else {
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            full += 1;
        }
    }
    (full, truncated)
}

fn config(rrl: &str) -> String {
    server_header(&format!("[server.rrl]\n{rrl}"))
}

crate::both_paths! {
    async fn a_burst_is_cut_to_the_rate_and_slips_every_second_drop() {
        let s = TestServer::start(
            &config("responses_per_second = 5\nwindow = \"5s\"\nslip = 2\nexempt = []\n"),
            &[],
        )
        .await;
        let (full, truncated) = burst(s.dns, "static.example.test.", 40).await;
        // 5 a second; the burst may straddle a second's edge (5 more).
        assert!((5..=10).contains(&full), "{full} full answers");
        let over = 40 - full;
        assert!(
            (over / 2 - 1..=over / 2 + 1).contains(&truncated),
            "{truncated} slips of {over} over the limit"
        );
        // TCP is never limited.
        for _ in 0..10 {
            let m = dig::tcp(s.dns, &Ask::new("static.example.test.", RecordType::A)).await;
            assert_eq!(dig::addrs(&m), vec![dig::ip("192.0.2.10")]);
        }
        // Another name is another account.
        let (other, _) = burst(s.dns, "ns1.example.test.", 3).await;
        assert_eq!(other, 3);
        // What the fast path hands to hickory (ANY) is limited as well.
        let (full, truncated) = burst_of(s.dns, "www.example.test.", RecordType::ANY, 30).await;
        assert!((5..=10).contains(&full) && truncated > 0, "ANY: {full} full, {truncated} slips");
        let (_, metrics) = get(&format!("http://{}/metrics", s.running.admin_addr)).await;
        assert!(metrics.contains("geosteer_dns_rrl_dropped_total"), "{metrics}");
        assert!(!metrics.contains("geosteer_dns_rrl_slipped_total 0\n"), "{metrics}");
        s.stop().await;
    }

    async fn loopback_is_exempt_by_default_and_rrl_can_be_turned_off() {
        for rrl in ["responses_per_second = 1\n", "enabled = false\nresponses_per_second = 1\nexempt = []\n"] {
            let s = TestServer::start(&config(rrl), &[]).await;
            let (full, truncated) = burst(s.dns, "static.example.test.", 30).await;
            assert_eq!((full, truncated), (30, 0), "{rrl}");
            s.stop().await;
        }
    }
}
