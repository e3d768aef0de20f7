//! resolve: keeps `host` endpoints resolved. One task per distinct host
//! name asks `[server] resolvers` (and nothing else: no system
//! configuration, no hosts file, no cache) for its A and AAAA records,
//! again at their TTL bounded to `[min_refresh, max_refresh]` (at
//! `min_refresh` after a failure), and hands each result to the health
//! writer as a [`Command::Resolved`], like a probe result. What the
//! addresses mean (staleness, probes, the endpoint's state) is `health`'s;
//! queries only ever read the published snapshot, never a resolver.
//!
//! In a signed zone, a new address set is signed here, before the writer
//! publishes it ([`presign`]): the answers of every balanced name using the
//! endpoint, each family's whole set at `ttl` and `min_ttl`, go into the
//! zone's signature cache, so the first query finds them signed. A subset
//! (some addresses failing their probes) is signed when first asked and
//! cached, as for any answer not prepared in advance.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use tokio::sync::mpsc::Sender;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, EndpointTarget, PoolId, ServerConfig};
use crate::state::{Command, Shared, Snapshot};

/// Addresses of one family kept from one resolution at most (sorted, the
/// lowest first): an answer stays a sensible size whatever upstream says.
pub const MAX_PER_FAMILY: usize = 16;

/// How long one query to the resolvers may take, per attempt.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// One resolution: the addresses (both families, sorted) and the TTL to
/// resolve again at, or why it failed.
pub type Resolution = Result<(Vec<IpAddr>, u32), String>;

/// The endpoints, (pool, index), that are one host name.
pub type Targets = Vec<(PoolId, u32)>;

/// Every host name of `config` and the endpoints, (pool, index), it is.
pub fn hosts(config: &Config) -> Vec<(Arc<str>, Targets)> {
    let mut out: Vec<(Arc<str>, Targets)> = Vec::new();
    for (p, pool) in config.pools.iter().enumerate() {
        for (i, e) in pool.endpoints.iter().enumerate() {
            let EndpointTarget::Host(name) = &e.target else {
                continue;
            };
            let target = (PoolId(p as u32), i as u32);
            match out.iter_mut().find(|(n, _)| n == name) {
                Some((_, targets)) => targets.push(target),
                None => out.push((name.clone(), vec![target])),
            }
        }
    }
    out
}

/// A resolver that asks only `server.resolvers` (UDP, TCP on truncation).
pub fn resolver(server: &ServerConfig) -> Result<TokioResolver, String> {
    let servers = server
        .resolvers
        .iter()
        .map(|a| {
            let mut udp = ConnectionConfig::udp();
            udp.port = a.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = a.port();
            NameServerConfig::new(a.ip(), true, vec![udp, tcp])
        })
        .collect();
    let mut builder = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(servers),
        TokioRuntimeProvider::default(),
    );
    let opts = builder.options_mut();
    // Every refresh asks upstream: the TTL is ours to follow.
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.ndots = 0;
    opts.timeout = QUERY_TIMEOUT;
    opts.attempts = 2;
    builder.build().map_err(|e| e.to_string())
}

/// Resolves `name`'s A and AAAA records. A family without records is
/// empty; no address at all, or any failure, is an error (the last
/// addresses are kept, see `health::resolved`).
pub async fn resolve(resolver: &TokioResolver, name: &str) -> Resolution {
    let fqdn = format!("{name}.");
    let (a, aaaa) = tokio::join!(
        family(resolver, &fqdn, RecordType::A),
        family(resolver, &fqdn, RecordType::AAAA)
    );
    let (mut a, mut aaaa) = (a?, aaaa?);
    let ttl = match (a.1, aaaa.1) {
        (Some(x), Some(y)) => x.min(y),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => return Err(format!("{name} has no A or AAAA records")),
    };
    a.0.append(&mut aaaa.0);
    Ok((a.0, ttl))
}

/// One family: its addresses (at most [`MAX_PER_FAMILY`]) and the smallest
/// TTL of the answer (CNAMEs on the way included); None without records.
async fn family(
    resolver: &TokioResolver,
    fqdn: &str,
    rtype: RecordType,
) -> Result<(Vec<IpAddr>, Option<u32>), String> {
    match resolver.lookup(fqdn, rtype).await {
        Ok(lookup) => {
            let mut ips: Vec<IpAddr> = lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) if rtype == RecordType::A => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) if rtype == RecordType::AAAA => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect();
            ips.sort();
            ips.dedup();
            ips.truncate(MAX_PER_FAMILY);
            let ttl = lookup.answers().iter().map(|r| r.ttl).min();
            Ok((ips.clone(), ttl.filter(|_| !ips.is_empty())))
        }
        Err(e) if e.is_nx_domain() => Err(format!(
            "{} does not exist (NXDOMAIN)",
            fqdn.trim_end_matches('.')
        )),
        Err(e) if e.is_no_records_found() => Ok((Vec::new(), None)),
        Err(e) => Err(format!("{rtype} {}: {e}", fqdn.trim_end_matches('.'))),
    }
}

/// When to resolve again after `resolution`: its TTL within `(min, max)`;
/// `min` after a failure.
pub fn next_refresh(resolution: &Resolution, (min, max): (Duration, Duration)) -> Duration {
    match resolution {
        Ok((_, ttl)) => Duration::from_secs(u64::from(*ttl)).clamp(min, max),
        Err(_) => min,
    }
}

/// Resolves every host of `config` once, all at the same time, for
/// start-up (each bounded by the resolver's timeouts).
pub async fn first_round(config: &Config) -> Vec<(Vec<(PoolId, u32)>, Resolution)> {
    let hosts = hosts(config);
    if hosts.is_empty() {
        return Vec::new();
    }
    let resolver = match resolver(&config.server) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot build the resolver for host endpoints: {e}");
            return Vec::new();
        }
    };
    let mut set = tokio::task::JoinSet::new();
    for (name, targets) in hosts {
        let resolver = resolver.clone();
        set.spawn(async move { (targets, resolve(&resolver, &name).await) });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(r) = joined {
            out.push(r);
        }
    }
    out
}

/// Starts one task per host name of `config`, for config `generation`:
/// each resolves its name (at once, then at the TTL) and sends the result
/// to the writer, until `cancel` (a reload cancels them and starts the new
/// generation's).
pub fn spawn(
    config: &Config,
    (shared, generation): (Arc<Shared>, u64),
    commands: Sender<Command>,
    cancel: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let hosts = hosts(config);
    if hosts.is_empty() {
        return Vec::new();
    }
    let resolver = match resolver(&config.server) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot build the resolver for host endpoints: {e}");
            return Vec::new();
        }
    };
    let refresh = config.server.refresh;
    hosts
        .into_iter()
        .map(|(name, targets)| {
            tokio::spawn(work(
                (name, targets),
                resolver.clone(),
                (shared.clone(), generation, refresh),
                commands.clone(),
                cancel.clone(),
            ))
        })
        .collect()
}

async fn work(
    (name, targets): (Arc<str>, Vec<(PoolId, u32)>),
    resolver: TokioResolver,
    (shared, generation, refresh): (Arc<Shared>, u64, (Duration, Duration)),
    commands: Sender<Command>,
    cancel: CancellationToken,
) {
    let mut signed: Option<Vec<IpAddr>> = None;
    let mut failing = false;
    loop {
        let resolution = tokio::select! {
            _ = cancel.cancelled() => return,
            r = resolve(&resolver, &name) => r,
        };
        let wait = next_refresh(&resolution, refresh);
        // One line when it starts failing and one when it is back, not one
        // per retry through an hour of stale_for.
        match (&resolution, failing) {
            (Ok((ips, ttl)), true) => {
                tracing::info!(host = %name, ?ips, ttl, "a host endpoint resolves again");
            }
            (Ok((ips, ttl)), false) => tracing::debug!(host = %name, ?ips, ttl, "resolved"),
            (Err(e), false) => {
                tracing::warn!(host = %name, error = %e, "cannot resolve a host endpoint (its last addresses are kept for stale_for)");
            }
            (Err(e), true) => tracing::debug!(host = %name, error = %e, "still cannot resolve"),
        }
        failing = resolution.is_err();
        if let Ok((ips, _)) = &resolution
            && signed.as_ref() != Some(ips)
        {
            let snap = shared.load_full();
            if snap.generation == generation && snap.dnssec.zones.iter().any(Option::is_some) {
                let (ips, targets) = (ips.clone(), targets.clone());
                let _ = tokio::task::spawn_blocking(move || presign(&snap, &targets, &ips)).await;
            }
            signed = Some(ips.clone());
        }
        let cmd = Command::Resolved {
            generation,
            targets: targets.clone(),
            result: resolution.map(|(ips, _)| ips),
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            sent = commands.send(cmd) => if sent.is_err() { return },
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Signs the answers `ips` make for every balanced name (in a signed zone)
/// whose pools hold one of `targets`: each family's whole set, at the
/// name's `ttl` and `min_ttl`, into the zone's signature cache.
pub fn presign(snap: &Snapshot, targets: &[(PoolId, u32)], ips: &[IpAddr]) {
    use hickory_resolver::proto::rr::{LowerName, Name};
    let now = crate::wallclock::unix_secs() as u32;
    for b in &snap.config.balance {
        if !b
            .reachable_pools()
            .any(|p| targets.iter().any(|t| t.0 == p))
        {
            continue;
        }
        let Ok(name) = Name::from_ascii(&b.name) else {
            continue;
        };
        let Some(zone) = snap
            .zones
            .find_index(&LowerName::new(&name))
            .and_then(|i| snap.dnssec.zone(i))
        else {
            continue;
        };
        for v4 in [true, false] {
            let set: Vec<IpAddr> = ips
                .iter()
                .copied()
                .filter(|ip| ip.is_ipv4() == v4)
                .collect();
            if set.is_empty() {
                continue;
            }
            let mut ttls = vec![b.ttl, b.min_ttl];
            ttls.dedup();
            for ttl in ttls {
                let records = crate::dnssec::address_records(&name, ttl, &set);
                zone.balanced_sigs(&records, now);
            }
        }
    }
}
