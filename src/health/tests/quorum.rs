//! The health book in a fleet: other vantages' votes (`FleetView`) decide
//! an endpoint's and a pool's state by quorum; drains come from the fleet.

use super::*;

/// What two other vantages say about `pair` (endpoint 0) and `solo`.
fn remote(pair_up: [bool; 2], solo_degraded: [bool; 2]) -> fleet::FleetView {
    use fleet::{PoolVerdict, RemoteNode, Verdict};
    let mut view = fleet::FleetView {
        node: "n1".into(),
        connected: true,
        ..Default::default()
    };
    for (i, name) in ["n2", "n3"].iter().enumerate() {
        let mut node = RemoteNode::default();
        let verdict = Verdict {
            up: pair_up[i],
            reason: (!pair_up[i]).then(|| "refused".into()),
            latency_ms: Some(5.0),
            error_rate: 0.0,
            since: 1,
        };
        node.endpoints
            .entry("pair".into())
            .or_default()
            .insert("192.0.2.1".parse().expect("ip"), verdict);
        node.pools.insert(
            "solo".into(),
            PoolVerdict {
                degraded: solo_degraded[i],
                latency_ms: None,
                error_rate: 0.0,
            },
        );
        view.remote.insert((*name).into(), node);
    }
    view
}

#[test]
fn in_a_fleet_an_endpoint_is_down_by_quorum_of_fresh_vantages() {
    let config = base();
    let (pair, solo) = (pool(&config, "pair"), pool(&config, "solo"));
    let mut book = HealthBook::new(&config, 1);
    all_up(&mut book, &config, pair, 0);
    all_up(&mut book, &config, solo, 0);
    // This node alone sees pair/0 down (fall = 3): 1 of 3 is no majority.
    for i in 1..=3 {
        book.observe(probe(pair, 0, false, 10), at(i * 100), 1000);
    }
    assert_eq!(ep_state(&book, pair, 0), EndpointState::Down, "alone");
    book.set_fleet(std::sync::Arc::new(remote([true, true], [false, false])));
    let e = &book.view().pools[pair.index()].endpoints[0];
    assert_eq!(
        (e.state, e.local, e.votes),
        (
            EndpointState::Up,
            EndpointState::Down,
            Some(fleet::Votes { down: 1, total: 3 })
        )
    );
    // A second vantage agrees: 2 of 3.
    book.set_fleet(std::sync::Arc::new(remote([false, true], [false, false])));
    assert_eq!(ep_state(&book, pair, 0), EndpointState::Down);
    // The others' leases expire: this node decides alone again (1 of 1).
    let mut view = remote([true, true], [false, false]);
    view.last_contact = 1_000;
    for n in view.remote.values_mut() {
        n.info = Some(fleet::NodeInfo {
            location: None,
            config: String::new(),
            lease_ms: 2_000,
            started: 0,
            instance: String::new(),
            version: String::new(),
            config_revision: None,
            config_failed: None,
        });
    }
    let mut graced = view.clone();
    assert!(!view.expire(2_999), "leases still live");
    assert!(view.expire(3_000));
    assert_eq!(view.vantages(), 1);
    assert_eq!(view.departed.len(), 2);
    // With a partition grace, a node cut off from etcd keeps the others'
    // verdicts (frozen) past their leases, until the grace has passed.
    graced.partition_grace_ms = 10_000;
    graced.connected = false;
    assert!(graced.frozen(), "cut off with remote verdicts");
    assert_eq!(graced.frozen_until(), Some(11_000));
    assert!(!graced.expire(10_999), "the grace still runs");
    assert_eq!(graced.vantages(), 3);
    assert!(graced.expire(11_000));
    assert_eq!(graced.vantages(), 1);
    assert!(!graced.frozen());
    assert_eq!(graced.frozen_until(), None);
    book.set_fleet(std::sync::Arc::new(view));
    assert_eq!(ep_state(&book, pair, 0), EndpointState::Down);
}

#[test]
fn in_a_fleet_a_pool_is_degraded_by_quorum_and_drains_come_from_the_fleet() {
    let config = base();
    let (pair, solo) = (pool(&config, "pair"), pool(&config, "solo"));
    let mut book = HealthBook::new(&config, 1);
    all_up(&mut book, &config, pair, 0);
    all_up(&mut book, &config, solo, 0);
    book.set_fleet(std::sync::Arc::new(remote([true, true], [true, false])));
    assert_eq!(
        pool_state(&book, solo),
        PoolState::Healthy,
        "1 of 3 judge it degraded"
    );
    book.set_fleet(std::sync::Arc::new(remote([true, true], [true, true])));
    assert_eq!(pool_state(&book, solo), PoolState::Degraded, "2 of 3");
    let v = book.view();
    assert!(!v.pools[solo.index()].degraded_here);
    assert_eq!(
        v.pools[solo.index()].degraded_votes,
        Some(fleet::Votes { down: 2, total: 3 })
    );
    // A fleet-wide drain of pair/1 applies; its removal returns it.
    let mut drained = remote([true, true], [false, false]);
    drained.drains.entry("pair".into()).or_default().insert(
        "192.0.2.2".parse().expect("ip"),
        crate::health::fleet::DrainRecord {
            by: "n2".into(),
            at: 1,
            over_ms: None,
        },
    );
    book.set_fleet(std::sync::Arc::new(drained.clone()));
    assert!(book.view().pools[pair.index()].endpoints[1].draining);
    // Lifted on this node only (etcd unreachable): back in answers here.
    let ip: crate::config::EndpointKey = "192.0.2.2".parse().expect("ip");
    drained.local_undrains.insert(
        ("pair".into(), ip.clone()),
        fleet::LocalUndrain {
            at: 5,
            lifted: fleet::DrainRecord {
                by: "n2".into(),
                at: 1,
                over_ms: None,
            },
        },
    );
    assert!(drained.undrained_locally("pair", &ip) && !drained.drained("pair", &ip));
    assert!(
        drained.drain_record("pair", &ip).is_some(),
        "etcd's record kept"
    );
    book.set_fleet(std::sync::Arc::new(drained));
    assert!(!book.view().pools[pair.index()].endpoints[1].draining);
    book.set_fleet(std::sync::Arc::new(remote([true, true], [false, false])));
    assert!(!book.view().pools[pair.index()].endpoints[1].draining);
    // Pools without a monitor take no votes: always up.
    let plain = pool(&config, "plain");
    assert_eq!(book.view().pools[plain.index()].endpoints[0].votes, None);
}

#[test]
fn a_local_undrain_is_written_to_etcd_only_over_the_drain_it_lifted() {
    use fleet::{DrainRecord, LocalUndrain, Reconcile, reconcile};
    let record = |by: &str, at| DrainRecord {
        by: by.into(),
        at,
        over_ms: None,
    };
    let local = LocalUndrain {
        at: 50,
        lifted: record("n2", 10),
    };
    // etcd still holds the drain it lifted: nobody changed it meanwhile.
    assert_eq!(reconcile(&local, Some(&record("n2", 10))), Reconcile::Write);
    // Undrained in etcd meanwhile: nothing to write, the fleet agrees.
    assert_eq!(reconcile(&local, None), Reconcile::Agreed);
    // Drained again meanwhile (a newer record, by anyone): etcd wins.
    assert_eq!(
        reconcile(&local, Some(&record("n3", 70))),
        Reconcile::EtcdWins(record("n3", 70))
    );
    assert_eq!(
        reconcile(&local, Some(&record("n2", 70))),
        Reconcile::EtcdWins(record("n2", 70))
    );
}

#[test]
fn a_fleet_drain_with_a_ramp_ramps_from_the_records_times_then_drains() {
    let config = base();
    let pair = pool(&config, "pair");
    let ip: crate::config::EndpointKey = "192.0.2.2".parse().expect("ip");
    let mut view = remote([true, true], [false, false]);
    view.drains.entry("pair".into()).or_default().insert(
        ip,
        fleet::DrainRecord {
            by: "n2".into(),
            at: 9_000,
            over_ms: Some(6_000),
        },
    );
    let view = std::sync::Arc::new(view);
    let mut book = HealthBook::new(&config, 1);
    all_up(&mut book, &config, pair, 0);
    book.tick(at(10), 10_000);
    book.set_fleet(view.clone());
    book.step_ramps(12_000);
    let e = &book.view().pools[pair.index()].endpoints[1];
    assert!(!e.draining, "ramping, not drained yet");
    assert_eq!(
        e.ramp
            .map(|r| (r.direction, r.start_unix_ms, r.end_unix_ms)),
        Some((crate::health::ramp::Direction::Down, 9_000, 15_000)),
        "the record's times, not this node's"
    );
    assert_eq!(e.ramp_permille, 500, "half way");
    // At its end: drained, and the record keeps it so.
    book.step_ramps(15_000);
    let e = &book.view().pools[pair.index()].endpoints[1];
    assert!(e.draining && e.ramp.is_none(), "{e:?}");
    book.tick(at(20), 15_100);
    book.set_fleet(view.clone());
    assert!(book.view().pools[pair.index()].endpoints[1].draining);
    // A node that hears of it after its end drains at once.
    let mut late = HealthBook::new(&config, 1);
    all_up(&mut late, &config, pair, 0);
    late.tick(at(10), 20_000);
    late.set_fleet(view.clone());
    let e = &late.view().pools[pair.index()].endpoints[1];
    assert!(e.draining && e.ramp.is_none(), "{e:?}");
    // The record gone (undrained): back in rotation, no ramp down left.
    book.set_fleet(std::sync::Arc::new(remote([true, true], [false, false])));
    let e = &book.view().pools[pair.index()].endpoints[1];
    assert!(!e.draining, "{e:?}");
    assert!(
        e.ramp
            .is_none_or(|r| r.direction != crate::health::ramp::Direction::Down)
    );
}
