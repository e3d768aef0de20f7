//! A fleet of two serving CNAME endpoints: both nodes answer the same CNAME,
//! a vantage's verdict on a name counts in the quorum as for an address, a
//! fleet-wide drain of a name (its key in etcd is the name) moves both
//! nodes, and an undrain brings both back.

use super::*;

/// Both nodes' CNAME answers for www.
async fn cnames(nodes: &[&TestServer]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for n in nodes {
        let m = dig::udp(n.dns, &Ask::new("www.example.test.", RecordType::A)).await;
        out.push(
            m.answers
                .iter()
                .filter_map(|r| match &r.data {
                    hickory_proto::rr::RData::CNAME(c) => Some(c.0.to_string()),
                    _ => None,
                })
                .collect(),
        );
    }
    out
}

async fn all_cname(nodes: &[&TestServer], want: &str, why: &str) {
    eventually_every(
        Duration::from_secs(10),
        Duration::from_millis(100),
        &format!("{why}: every node answers CNAME {want}"),
        async || {
            let got = cnames(nodes).await;
            if got.iter().all(|c| c == &vec![want.to_string()]) {
                Ok(())
            } else {
                Err(format!("got {got:?}"))
            }
        },
    )
    .await
}

#[tokio::test]
async fn two_nodes_agree_on_cname_answers_and_drain_a_name_together() {
    let etcd = Etcd::start();
    let (fleet, a, _b) = fleet_of_three("cname", &etcd, 0.5).await;
    let cname_pools = |c: String| {
        c.replace(
            &format!("{{ address = \"{A}\", probe = \"{}\" }}", fleet.a),
            &format!(
                "{{ cname = \"cdn-a.example.net\", probe = \"{}\" }}",
                fleet.a
            ),
        )
        .replace(
            &format!("{{ address = \"{B}\", probe = \"{}\" }}", fleet.b),
            &format!(
                "{{ cname = \"cdn-b.example.net\", probe = \"{}\" }}",
                fleet.b
            ),
        )
    };
    let config = |n: u8| {
        let c = cname_pools(fleet.config(n, None));
        assert!(
            c.contains("cdn-a.example.net") && c.contains("cdn-b.example.net"),
            "{c}"
        );
        c
    };
    // A name that answers CNAMEs holds no other data: the zone without
    // www's TXT.
    let zone = ZONE.replace("www IN TXT \"hello\"\n", "");
    let db = mmdb::standard_country_db();
    let files: [(&str, &[u8]); 2] = [
        ("country.mmdb", &db),
        ("example.test.zone", zone.as_bytes()),
    ];
    let n1 = TestServer::start(&config(1), &files).await;
    let n2 = TestServer::start(&config(2), &files).await;
    let nodes = [&n1, &n2];
    until(Duration::from_secs(10), "two vantages", async || {
        vantages(&n1).await == 2 && vantages(&n2).await == 2
    })
    .await;
    all_cname(&nodes, "cdn-a.example.net.", "all healthy").await;

    // Both vantages lose cdn-a: more than half, so both steer to cdn-b.
    a.set_mode_from(&source(1), Mode::Close);
    a.set_mode_from(&source(2), Mode::Close);
    all_cname(
        &nodes,
        "cdn-b.example.net.",
        "cdn-a down from both vantages",
    )
    .await;
    a.set_mode_from(&source(1), Mode::Ok);
    a.set_mode_from(&source(2), Mode::Ok);
    all_cname(&nodes, "cdn-a.example.net.", "cdn-a back").await;

    // A fleet-wide drain of the name, asked of node 1, moves node 2 too; its
    // etcd key is the name.
    let admin = n1.running.admin_addr;
    let (code, body) = post(
        &format!("http://{admin}/api/v1/pools/a/endpoints/CDN-A.example.net./drain"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    all_cname(&nodes, "cdn-b.example.net.", "cdn-a drained fleet-wide").await;
    let drains = cluster(&n2).await["drains"].clone();
    assert_eq!(drains[0]["pool"], "a", "{drains}");
    assert_eq!(drains[0]["address"], "cdn-a.example.net", "{drains}");
    let (code, body) = post(
        &format!("http://{admin}/api/v1/pools/a/endpoints/cdn-a.example.net/undrain"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    all_cname(&nodes, "cdn-a.example.net.", "undrained").await;
    n1.stop().await;
    n2.stop().await;
}
