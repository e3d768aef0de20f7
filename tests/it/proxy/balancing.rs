//! Balancing algorithms and routing: which server each request reaches.

use super::*;

#[tokio::test]
async fn round_robin_exact_sequence() {
    let (a, b, c) = (
        Origin::named("a").await,
        Origin::named("b").await,
        Origin::named("c").await,
    );
    let (_p, addr) = start(http_config("round_robin", &[&a, &b, &c], &[], "")).await;
    assert_eq!(served(addr, 7).await, ["a", "b", "c", "a", "b", "c", "a"]);
}

#[tokio::test]
async fn weighted_round_robin_is_smooth() {
    let (a, b) = (Origin::named("a").await, Origin::named("b").await);
    let (_p, addr) = start(http_config("weighted_round_robin", &[&a, &b], &[3, 1], "")).await;
    assert_eq!(
        served(addr, 8).await,
        ["a", "a", "b", "a", "a", "a", "b", "a"]
    );
}

#[tokio::test]
async fn least_connections_steers_around_long_requests() {
    let (a, b) = (Origin::named("a").await, Origin::named("b").await);
    let (_p, addr) = start(http_config("least_connections", &[&a, &b], &[], "")).await;
    let slow = tokio::spawn(async move { get(addr, "/slow/1500").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // a holds the long request: every short one goes to b meanwhile.
    assert_eq!(served(addr, 4).await, ["b", "b", "b", "b"]);
    let slow = tokio::time::timeout(T, slow).await.unwrap().unwrap();
    assert_eq!(slow.served_by(), "a");
    // Both idle again: ties rotate.
    let after = served(addr, 4).await;
    assert!(
        after.contains(&"a".to_string()) && after.contains(&"b".to_string()),
        "{after:?}"
    );
}

#[tokio::test]
async fn ip_hash_is_sticky_and_remaps_only_the_drained_servers_clients() {
    let (a, b, c) = (
        Origin::named("a").await,
        Origin::named("b").await,
        Origin::named("c").await,
    );
    let (p, addr) = start(http_config("ip_hash", &[&a, &b, &c], &[], "")).await;
    let sources: Vec<IpAddr> = (2..26).map(|i| IpAddr::from([127, 0, 0, i])).collect();
    let mut before = Vec::new();
    for s in &sources {
        let first = get_from(*s, addr, "/").await.served_by();
        assert_eq!(
            get_from(*s, addr, "/").await.served_by(),
            first,
            "sticky for {s}"
        );
        before.push(first);
    }
    assert!(
        before.iter().any(|n| n == "c"),
        "some client on c: {before:?}"
    );
    p.drain("web", c.addr(), true).unwrap();
    for (s, was) in sources.iter().zip(&before) {
        let now = get_from(*s, addr, "/").await.served_by();
        if was == "c" {
            assert_ne!(now, "c");
        } else {
            assert_eq!(&now, was, "client {s} moved although its server stayed");
        }
    }
}

#[tokio::test]
async fn power_of_two_spreads() {
    let (a, b, c) = (
        Origin::named("a").await,
        Origin::named("b").await,
        Origin::named("c").await,
    );
    let (_p, addr) = start(http_config("power_of_two", &[&a, &b, &c], &[], "")).await;
    served(addr, 60).await;
    for o in [&a, &b, &c] {
        assert!(o.hits() >= 5, "{} got {}", o.name(), o.hits());
    }
}

#[tokio::test]
async fn routes_by_host_and_path() {
    let (a, b, c) = (
        Origin::named("a").await,
        Origin::named("b").await,
        Origin::named("c").await,
    );
    let cfg = config(&format!(
        "[[proxy]]\nlisten = \"127.0.0.1:0\"\nmode = \"http\"\nroutes = [\n\
         {{ host = \"API.example.test\", path_prefix = \"/v1/\", backend = \"a\" }},\n\
         {{ host = \"*.example.test\", backend = \"b\" }},\n\
         {{ host = \"other.test\", path_prefix = \"/\", backend = \"c\" }} ]\n\
         [backends.a]\nservers = [{{ address = \"{}\" }}]\n\
         [backends.b]\nservers = [{{ address = \"{}\" }}]\n\
         [backends.c]\nservers = [{{ address = \"{}\" }}]\n",
        a.addr(),
        b.addr(),
        c.addr()
    ));
    let (_p, addr) = start(cfg).await;
    let ask = |host: &'static str, path: &'static str| async move {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        parse(&raw(addr, req.as_bytes()).await)
    };
    assert_eq!(ask("api.example.test:8080", "/v1/x").await.served_by(), "a");
    assert_eq!(ask("api.example.test", "/v2/x").await.served_by(), "b");
    assert_eq!(ask("www.EXAMPLE.test", "/").await.served_by(), "b");
    assert_eq!(ask("other.test", "/").await.served_by(), "c");
    let r = ask("unknown.test", "/x").await;
    assert_eq!(r.status, 404);
    assert!(
        r.body.contains("no route for host \"unknown.test\""),
        "{}",
        r.body
    );
}
