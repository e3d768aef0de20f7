//! Sticky answers (`sticky = true`): a client subnet gets the same endpoint
//! query after query, the answer's ECS scope is that subnet, and draining
//! one of four endpoints moves only the subnets it held.

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::rr::RecordType;

use crate::harness::dig::{self, Ask};
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::{get_json, post};

fn config(sticky: bool) -> String {
    format!(
        "{}
[pools.eu]
endpoints = [{{ address = \"192.0.2.1\" }}, {{ address = \"192.0.2.2\" }}, {{ address = \"192.0.2.3\" }}, {{ address = \"192.0.2.4\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]
sticky = {sticky}
",
        server_header("")
    )
}

/// The subnet `10.i/8.i%256.0/24`.
fn subnet(i: u32) -> String {
    format!("10.{}.{}.0/24", i / 256, i % 256)
}

/// The one address answered to `subnet`, and the response's ECS scope.
async fn ask(s: &TestServer, subnet: &str) -> (IpAddr, u8) {
    let m = dig::udp(
        s.dns,
        &Ask::new("www.example.test.", RecordType::A).ecs(subnet),
    )
    .await;
    let a = dig::addrs(&m);
    assert_eq!(a.len(), 1, "one address for {subnet}: {m:?}");
    let scope = dig::ecs(&m).map_or(0, |(_, _, scope)| scope);
    (a[0], scope)
}

crate::both_paths! {
    async fn a_subnet_gets_the_same_endpoint_every_time() {
        let s = TestServer::start(&config(true), &[]).await;
        let mut seen = std::collections::HashSet::new();
        for i in 0..20 {
            let net = subnet(i * 7);
            let (first, scope) = ask(&s, &net).await;
            assert_eq!(scope, 24, "the answer is valid for the /24 only");
            seen.insert(first);
            for _ in 0..19 {
                assert_eq!(ask(&s, &net).await.0, first, "{net} moved");
            }
        }
        // 20 subnets over four equal endpoints: more than one is used
        // (all 20 on one endpoint has probability 4 × 4^-20).
        assert!(seen.len() > 1, "{seen:?}");
        s.stop().await;
    }
}

#[tokio::test]
async fn without_sticky_one_subnet_gets_several_endpoints() {
    // The contrast: the random draw gives one /24 more than one endpoint
    // (all 40 alike has probability 4 × 4^-40).
    let s = TestServer::start(&config(false), &[]).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..40 {
        seen.insert(ask(&s, "10.0.1.0/24").await.0);
    }
    assert!(seen.len() > 1, "{seen:?}");
    s.stop().await;
}

#[tokio::test]
async fn draining_one_of_four_endpoints_moves_only_its_subnets() {
    let s = TestServer::start(&config(true), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    let mut before: HashMap<String, IpAddr> = HashMap::new();
    for i in 0..200 {
        let net = subnet(i);
        before.insert(net.clone(), ask(&s, &net).await.0);
    }
    let gone: IpAddr = "192.0.2.3".parse().unwrap();
    let (code, body) = post(
        &format!("{base}/api/v1/pools/eu/endpoints/192.0.2.3/drain"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let mut moved = 0;
    for (net, was) in &before {
        let now = ask(&s, net).await.0;
        assert_ne!(now, gone, "{net} still answered by the drained endpoint");
        if now != *was {
            moved += 1;
            assert_eq!(*was, gone, "{net} moved from {was} to {now}");
        }
    }
    // Only the drained endpoint's subnets moved: about 50 of 200.
    assert!(moved > 0 && moved <= 80, "{moved} of 200 moved");
    // explain says why.
    let (_, explain) = get_json(&format!(
        "{base}/api/v1/explain?name=www.example.test&client=10.0.5.9"
    ))
    .await;
    let steps = explain.to_string();
    assert!(
        steps.contains("sticky: endpoints by rendezvous hash of 10.0.5.0/24"),
        "{steps}"
    );
    s.stop().await;
}
