//! Table-driven tests of config parsing and validation.

use std::path::Path;
use std::time::Duration;

use super::bulk;
use super::*;

const MIN: &str = "[server]\ndns_listen = [\"127.0.0.1:5353\"]\n[zones]\n\"Example.TEST.\" = \"zones/example.test.zone\"\n";

fn parse_ok(text: &str) -> (Config, Vec<Warning>) {
    parse(
        text,
        Path::new("/etc/geosteer/g.toml"),
        Path::new("/etc/geosteer"),
        "",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> String {
    match parse(text, Path::new("g.toml"), Path::new("."), "") {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_and_relative_paths() {
    let (c, _) = parse_ok(&format!(
        "{MIN}[pools.p]\nendpoints = [{{ address = \"192.0.2.1\" }}]\n[[balance]]\nname = \"WWW.example.test\"\npolicy = \"geo\"\npools = [\"p\"]\n"
    ));
    assert_eq!(c.zones[0].origin, "example.test.");
    assert_eq!(
        c.zones[0].path,
        Path::new("/etc/geosteer/zones/example.test.zone")
    );
    assert_eq!(c.server.admin_listen.to_string(), "127.0.0.1:8053");
    assert_eq!(c.server.health_query_allow.len(), 2);
    let b = &c.balance[0];
    assert_eq!(
        (b.name.as_str(), b.ttl, b.answers),
        ("www.example.test.", 30, 1)
    );
    assert_eq!(c.pools[0].weight, 1);
    assert_eq!(c.pools[0].min_healthy, 1);
}

#[test]
fn monitor_defaults_and_durations() {
    let (c, w) = parse_ok(&format!(
        "{MIN}[monitors.m]\ntype = \"http\"\ninterval = \"2s\"\ntimeout = \"500ms\"\nmax_latency = \"250ms\"\nwindow = \"2m\"\n"
    ));
    let m = &c.monitors[0];
    assert_eq!(
        (m.port, m.interval, m.timeout, m.window),
        (
            80,
            Duration::from_secs(2),
            Duration::from_millis(500),
            Duration::from_secs(120)
        )
    );
    assert_eq!((m.rise, m.fall, m.min_samples), (2, 3, 10));
    assert_eq!(m.worst_case_removal(), Duration::from_millis(6500));
    assert!(w.iter().any(|w| w.message.contains("6s 500ms")), "{w:?}");
}

#[test]
fn errors_name_their_key_path() {
    let cases = [
        (
            format!(
                "{MIN}[pools.p]\nendpoints = [{{ address = \"192.0.2.1\" }}, {{ address = \"nope\" }}]\n"
            ),
            "pools.p.endpoints[1].address",
        ),
        (
            format!("{MIN}[pools.p]\nendpoints = [{{ address = \"192.0.2.1\", weight = -1 }}]\n"),
            "pools.p.endpoints[0].weight",
        ),
        (
            format!("{MIN}[pools.p]\nendpoints = []\n"),
            "pools.p.endpoints",
        ),
        (
            format!(
                "{MIN}[pools.p]\nmin_healthy = 3\nendpoints = [{{ address = \"192.0.2.1\" }}]\n"
            ),
            "pools.p.min_healthy",
        ),
        (
            format!(
                "{MIN}[pools.p]\nmonitor = \"nope\"\nendpoints = [{{ address = \"192.0.2.1\" }}]\n"
            ),
            "pools.p.monitor",
        ),
        (
            format!("{MIN}[monitors.m]\ntype = \"icmp\"\n"),
            "monitors.m.type",
        ),
        (
            format!("{MIN}[monitors.m]\ntype = \"http\"\nmax_error_rate = 5.0\n"),
            "monitors.m.max_error_rate",
        ),
        (
            format!("{MIN}[monitors.m]\ntype = \"tcp\"\npath = \"/x\"\n"),
            "monitors.m.path",
        ),
        (format!("{MIN}bogus = 1\n"), "bogus"),
        (
            "[server]\ndns_listen = [\"localhost:53\"]\n".to_string(),
            "server.dns_listen[0]",
        ),
        (
            format!(
                "{MIN}[backends.b]\nalgorithm = \"fastest\"\nservers = [{{ address = \"127.0.0.1:1\" }}]\n"
            ),
            "backends.b.algorithm",
        ),
        (
            format!("{MIN}[[proxy]]\nlisten = \"127.0.0.1:0\"\nmode = \"tcp\"\n"),
            "proxy[0].backend",
        ),
        (
            format!(
                "{MIN}[[proxy]]\nlisten = \"127.0.0.1:0\"\nmode = \"http\"\nroutes = [{{ backend = \"nope\" }}]\n"
            ),
            "proxy[0].routes[0].backend",
        ),
    ];
    for (text, key) in cases {
        let e = parse_err(&text);
        assert!(e.contains(key), "expected key {key:?} in {e:?}");
    }
}

#[test]
fn toml_syntax_errors_name_the_line() {
    let e = parse_err("[server]\ndns_listen = [\"127.0.0.1:5353\"\n");
    assert!(e.starts_with("g.toml:"), "{e}");
}

#[test]
fn proximity_needs_locations() {
    let e = parse_err(&format!(
        "{MIN}[pools.p]\nendpoints = [{{ address = \"192.0.2.1\" }}]\n[[balance]]\nname = \"a.example.test\"\npolicy = \"proximity\"\npools = [\"p\"]\n"
    ));
    assert!(e.contains("pools.p.location"), "{e}");
}

const TWO_POOLS: &str = "[pools.a]\nendpoints = [{ address = \"192.0.2.1\" }]\n[pools.b]\nendpoints = [{ address = \"192.0.2.2\" }]\n";

/// A geo name with `subnets` written as given, then a second name.
fn geo_with(subnets: &str) -> String {
    format!(
        "{MIN}{TWO_POOLS}[[balance]]\nname = \"www.example.test\"\npolicy = \"geo\"\npools = [\"a\", \"b\"]\n{subnets}[[balance]]\nname = \"api.example.test\"\npolicy = \"failover\"\npools = [\"b\"]\n"
    )
}

fn subnets_of(c: &Config) -> Vec<(String, Vec<String>)> {
    c.balance[0]
        .subnets
        .iter()
        .map(|(net, pools)| {
            let names = pools.iter().map(|p| c.pool(*p).name.clone()).collect();
            (net.to_string(), names)
        })
        .collect()
}

#[test]
fn a_subnets_table_reads_the_same_by_the_bulk_reader_and_by_toml() {
    let inline = geo_with(
        "subnets = { \"10.0.0.0/8\" = [\"a\"], \"10.1.0.0/16\" = [\"b\", \"a\"], \"2001:db8::/32\" = [] }\n",
    );
    let table = geo_with(
        "[balance.subnets]\n\"10.0.0.0/8\" = [\"a\"]  # comment\n\n\"10.1.0.0/16\" = [ \"b\" , \"a\", ]\n\t\"2001:db8::/32\" = []\n",
    );
    // An escape is beyond the bulk reader: toml reads the whole file.
    let escaped = geo_with(
        "[balance.subnets]\n\"10.0.0.0/8\" = [\"a\"]\n\"10.1.0.0/16\" = [\"\\u0062\", \"a\"]\n\"2001:db8::/32\" = []\n",
    );
    assert!(bulk::extract(&table).is_some());
    assert!(bulk::extract(&escaped).is_none());
    let want = subnets_of(&parse_ok(&inline).0);
    assert_eq!(
        want,
        [
            ("10.0.0.0/8".to_string(), vec!["a".to_string()]),
            (
                "10.1.0.0/16".to_string(),
                vec!["b".to_string(), "a".to_string()]
            ),
            ("2001:db8::/32".to_string(), vec![]),
        ]
    );
    for text in [&table, &escaped] {
        let (c, _) = parse_ok(text);
        assert_eq!(subnets_of(&c), want, "{text}");
        assert!(c.balance[1].subnets.is_empty());
    }
}

#[test]
fn subnets_table_errors_are_the_same_as_without_the_bulk_reader() {
    let cases = [
        // Key paths from validation.
        (
            geo_with("[balance.subnets]\n\"10.0.0.1/8\" = [\"a\"]\n"),
            "balance[0].subnets.10.0.0.1/8: 10.0.0.1/8 has host bits set",
        ),
        (
            geo_with("[balance.subnets]\n\"10.0.0.0/8\" = [\"a\", \"zz\"]\n"),
            "balance[0].subnets.10.0.0.0/8[1]: no pool named \"zz\"",
        ),
        (
            geo_with("[balance.subnets]\n\"10.0.0.1\" = [\"a\"]\n\"10.0.0.1/32\" = [\"b\"]\n"),
            "balance[0].subnets.10.0.0.1/32: 10.0.0.1/32 is listed twice",
        ),
        // A key written twice: toml's error, or (bulk reader) the same network twice.
        (
            geo_with("[balance.subnets]\n\"10.0.0.0/8\" = [\"a\"]\n\"10.0.0.0/8\" = [\"b\"]\n"),
            "balance[0].subnets.10.0.0.0/8: 10.0.0.0/8 is listed twice",
        ),
        // What only toml catches: the bulk reader hands these back to it.
        (
            geo_with(
                "[balance.subnets]\n\"10.0.0.0/8\" = [\"a\"]\n[balance.subnets]\n\"11.0.0.0/8\" = [\"a\"]\n",
            ),
            "g.toml:15",
        ),
        (
            geo_with(
                "subnets = { \"10.0.0.0/8\" = [\"a\"] }\n[balance.subnets]\n\"11.0.0.0/8\" = [\"a\"]\n",
            ),
            "g.toml:14",
        ),
        (
            format!(
                "{MIN}{TWO_POOLS}[balance.subnets]\n\"10.0.0.0/8\" = [\"a\"]\n[[balance]]\nname = \"a.example.test\"\n"
            ),
            "g.toml",
        ),
    ];
    for (text, want) in cases {
        let e = parse_err(&text);
        assert!(e.contains(want), "expected {want:?} in {e:?} for\n{text}");
    }
}

#[test]
fn lines_after_a_bulk_read_table_keep_their_numbers() {
    let text = geo_with("[balance.subnets]\n\"10.0.0.0/8\" = [\"a\"]\n\"11.0.0.0/8\" = [\"b\"]\n")
        + "ttl = = 1\n";
    assert!(bulk::extract(&text).is_some());
    let line = text.lines().count();
    let e = parse_err(&text);
    assert!(e.starts_with(&format!("g.toml:{line}")), "line {line}: {e}");
}

#[test]
fn node_name_defaults_to_the_host_name_the_shell_passes() {
    let cluster = "[cluster]\netcd = [\"http://127.0.0.1:2379\"]\n";
    let text = format!("{MIN}{cluster}");
    let (c, _) = parse(&text, Path::new("g.toml"), Path::new("."), "edge-7")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.cluster.map(|c| c.node).as_deref(), Some("edge-7"));
    // `node` wins over the host name; no host name and no node is an error.
    let (c, _) = parse(
        &format!("{text}node = \"fra1\"\n"),
        Path::new("g.toml"),
        Path::new("."),
        "edge-7",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.cluster.map(|c| c.node).as_deref(), Some("fra1"));
    assert!(parse_err(&text).contains("cluster.node"));
}

#[test]
fn cluster_defaults_errors_and_quorum_arithmetic() {
    let pool = "[monitors.web]\ntype = \"tcp\"\nquorum = 0.5\n[pools.p]\nmonitor = \"web\"\nendpoints = [{ address = \"192.0.2.1\" }]\n";
    let (c, warnings) = parse_ok(&format!(
        "{MIN}{pool}[cluster]\netcd = [\"https://127.0.0.1:2379\"]\nnode = \"fra1\"\nlocation = [50.1, 8.7]\nca = \"ca.pem\"\n"
    ));
    let cl = c.cluster.as_ref().expect("cluster");
    assert_eq!(
        (cl.node.as_str(), cl.prefix.as_str()),
        ("fra1", "/geosteer")
    );
    assert_eq!(cl.lease, Duration::from_secs(10));
    assert_eq!(cl.location, Some((50.1, 8.7)));
    assert_eq!(cl.ca.as_deref(), Some(Path::new("/etc/geosteer/ca.pem")));
    let arithmetic = warnings
        .iter()
        .find(|w| w.key == "monitors.web.quorum")
        .map(|w| w.message.clone())
        .unwrap_or_default();
    assert!(
        arithmetic.contains("1 of 1, 2 of 2, 2 of 3, 3 of 4, 3 of 5"),
        "{arithmetic}"
    );
    // Alone, no quorum warning.
    let (alone, warnings) = parse_ok(&format!("{MIN}{pool}"));
    assert!(alone.cluster.is_none());
    assert!(!warnings.iter().any(|w| w.key.ends_with("quorum")));

    for (bad, key) in [
        ("etcd = []\nnode = \"a\"\n", "cluster.etcd"),
        (
            "etcd = [\"127.0.0.1:2379\"]\nnode = \"a\"\n",
            "cluster.etcd[0]",
        ),
        (
            "etcd = [\"http://e:2379\"]\nnode = \"a/b\"\n",
            "cluster.node",
        ),
        (
            "etcd = [\"http://e:2379\"]\nnode = \"a\"\nprefix = \"geo/\"\n",
            "cluster.prefix",
        ),
        (
            "etcd = [\"http://e:2379\"]\nnode = \"a\"\nlease = \"1s\"\n",
            "cluster.lease",
        ),
        (
            "etcd = [\"http://e:2379\"]\nnode = \"a\"\nusername = \"u\"\n",
            "cluster.username",
        ),
        (
            "etcd = [\"http://e:2379\"]\nnode = \"a\"\nca = \"ca.pem\"\n",
            "cluster.ca",
        ),
        (
            "etcd = [\"http://e:2379\"]\nnode = \"a\"\nlocation = [95.0, 0.0]\n",
            "cluster.location",
        ),
        (
            "etcd = [\"http://e:2379\"]\nnode = \"a\"\nnodes = 3\n",
            "cluster",
        ),
    ] {
        let e = parse_err(&format!("{MIN}[cluster]\n{bad}"));
        assert!(e.contains(key), "{bad}: {e}");
    }
    let e = parse_err(&format!(
        "{MIN}[monitors.web]\ntype = \"tcp\"\nquorum = 1.0\n"
    ));
    assert!(e.contains("monitors.web.quorum"), "{e}");
    let e = parse_err(&MIN.replace("[server]\n", "[server]\nprobe_source = \"localhost\"\n"));
    assert!(e.contains("server.probe_source"), "{e}");
}

#[test]
fn the_fingerprint_ignores_per_node_tables_and_comments_only() {
    let shared = "[pools.p]\nendpoints = [{ address = \"192.0.2.1\" }]\n";
    let a = format!("[server]\ndns_listen = [\"127.0.0.1:1\"]\n{shared}[cluster]\nnode = \"a\"\n");
    let b = format!(
        "# node b\n[server]\ndns_listen = [\"127.0.0.1:2\"]\nprobe_source = \"127.0.0.12\"\n\n{shared}[cluster]\nnode = \"b\"\n"
    );
    assert_eq!(fingerprint(&a), fingerprint(&b));
    let c = a.replace("192.0.2.1", "192.0.2.9");
    assert_ne!(fingerprint(&a), fingerprint(&c));
}

#[test]
fn nsid_and_version_are_optional_printable_strings() {
    let (c, _) = parse_ok(MIN);
    assert_eq!((c.server.nsid, c.server.version), (None, None));
    let with = MIN.replace(
        "[zones]",
        "nsid = \"fra1\"\nversion = \"geosteer 1.0\"\n[zones]",
    );
    let (c, _) = parse_ok(&with);
    assert_eq!(c.server.nsid.as_deref(), Some("fra1"));
    assert_eq!(c.server.version.as_deref(), Some("geosteer 1.0"));
    let long = "x".repeat(129);
    for (value, key, says) in [
        ("\"\"", "server.nsid", "must not be empty"),
        (
            &format!("\"{long}\""),
            "server.nsid",
            "129 bytes long; at most 128",
        ),
        ("\"fra\\u00e91\"", "server.nsid", "not printable ASCII"),
        ("\"a\\tb\"", "server.nsid", "not printable ASCII"),
    ] {
        let e = parse_err(&MIN.replace("[zones]", &format!("nsid = {value}\n[zones]")));
        assert!(e.contains(key) && e.contains(says), "{value}: {e}");
    }
    let e = parse_err(&MIN.replace(
        "[zones]",
        &format!("version = \"{}\"\n[zones]", "v".repeat(256)),
    ));
    assert!(
        e.contains("server.version") && e.contains("at most 255"),
        "{e}"
    );
}

#[test]
fn cookie_secrets_are_hex_and_made_when_absent() {
    use super::CookieSecret as Secret;
    let (a, _) = parse_ok(MIN);
    assert!(a.server.cookie_secret_generated);
    assert!(a.server.cookie_secrets.is_empty(), "made by state::Loaded");
    assert_eq!(a.server.require_cookie_over, None);
    let one = "e5e973e5a6b2a43f48e7dc849e37bfcf";
    let two = "dd3bdf9344b678b185a6f5cb60fca715";
    let (c, _) = parse_ok(&MIN.replace(
        "[zones]",
        &format!("cookie_secret = \"{one}\"\nrequire_cookie_over = 50\n[zones]"),
    ));
    assert!(!c.server.cookie_secret_generated);
    assert_eq!(
        c.server.cookie_secrets,
        [Secret::from_hex(one).expect("hex")]
    );
    assert_eq!(c.server.require_cookie_over, Some(50));
    assert!(!format!("{:?}", c.server).contains("e5e9"), "never printed");
    let (c, _) = parse_ok(&MIN.replace(
        "[zones]",
        &format!("cookie_secret = [\"{two}\", \"{one}\"]\n[zones]"),
    ));
    assert_eq!(c.server.cookie_secrets.len(), 2);
    assert_eq!(
        c.server.cookie_secrets[0],
        Secret::from_hex(two).expect("hex")
    );
    for (value, key) in [
        ("\"abc\"", "server.cookie_secret"),
        (&format!("[\"{one}\", \"xyz\"]"), "server.cookie_secret[1]"),
        ("[]", "server.cookie_secret"),
    ] {
        let e = parse_err(&MIN.replace("[zones]", &format!("cookie_secret = {value}\n[zones]")));
        assert!(e.contains(key), "{value}: {e}");
    }
    let e = parse_err(&MIN.replace("[zones]", "require_cookie_over = 0\n[zones]"));
    assert!(e.contains("server.require_cookie_over"), "{e}");
}

#[test]
fn transfer_tables_attach_to_their_zone() {
    let secret = "3q2+7wAAAAD/////AQIDBAUGBwgJCgsMDQ4PEBESExQ=";
    let ok = format!(
        "{MIN}[transfer.\"example.test\"]\nallow_transfer = [\"192.0.2.0/24\", \"2001:db8::1\"]\n\
         notify = [\"192.0.2.53\", \"[2001:db8::53]:5300\"]\ntsig = {{ name = \"Xfr.Key\", secret = \"{secret}\" }}\n"
    );
    let (c, warnings) = parse_ok(&ok);
    let t = c.zones[0].transfer.as_ref().expect("transfer attached");
    assert_eq!(t.allow.len(), 2);
    assert_eq!(
        t.notify,
        [
            "192.0.2.53:53".parse::<SocketAddr>().unwrap(),
            "[2001:db8::53]:5300".parse().unwrap()
        ]
    );
    let key = t.tsig.as_ref().expect("key");
    assert_eq!((key.name.as_str(), key.secret.len()), ("xfr.key.", 32));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(
        !format!("{key:?}").contains(secret),
        "Debug must not print the secret"
    );

    let (c, _) = parse_ok(MIN);
    assert!(c.zones[0].transfer.is_none(), "no table: transfers refused");
    let short = ok.replace(secret, "c2hvcnQ=");
    let (_, warnings) = parse_ok(&short);
    assert!(
        warnings.iter().any(|w| w.message.contains("at least 32")),
        "{warnings:?}"
    );
    let (_, warnings) = parse_ok(&format!(
        "{MIN}[transfer.\"example.test\"]\nnotify = [\"192.0.2.53\"]\n"
    ));
    assert!(
        warnings
            .iter()
            .any(|w| w.message.contains("every transfer of this zone is refused")),
        "{warnings:?}"
    );
    for (text, says) in [
        (
            format!("{MIN}[transfer.\"other.test\"]\nallow_transfer = [\"192.0.2.1\"]\n"),
            "other.test. is not a zone of [zones]",
        ),
        (
            format!("{MIN}[transfer.\"example.test\"]\nallow_transfer = [\"192.0.2.1/16\"]\n"),
            "transfer.\"example.test\".allow_transfer[0]",
        ),
        (
            format!("{MIN}[transfer.\"example.test\"]\nnotify = [\"nowhere\"]\n"),
            "transfer.\"example.test\".notify[0]",
        ),
        (ok.replace(secret, "not base64!"), "is not base64"),
        (
            format!("{MIN}[transfer.\"example.test\"]\nallow = [\"192.0.2.1\"]\n"),
            "transfer.example.test.allow: unknown key `allow`",
        ),
    ] {
        let e = parse_err(&text);
        assert!(e.contains(says), "{text}\n=> {e}");
    }
}

#[test]
fn dnssec_tables_attach_to_their_zone() {
    let ok = format!(
        "{MIN}[dnssec.\"example.test\"]\nkeys = [\"k/zsk.pem\", \"k/ksk.pem\"]\nksk = \"k/ksk.pem\"\n"
    );
    let (c, _) = parse_ok(&ok);
    let d = c.zones[0].dnssec.as_ref().expect("dnssec attached");
    assert_eq!(d.keys.len(), 2);
    assert_eq!(d.ksk.as_deref(), Some(Path::new("/etc/geosteer/k/ksk.pem")));
    assert_eq!(d.validity, Duration::from_secs(7 * 86_400));
    assert_eq!(
        d.refresh,
        Duration::from_secs(7 * 86_400 / 2),
        "default: half the validity"
    );
    for (text, says) in [
        (
            format!("{MIN}[dnssec.\"other.test\"]\nkeys = [\"a.pem\"]\n"),
            "other.test. is not a zone of [zones]",
        ),
        (
            format!("{MIN}[dnssec.\"example.test\"]\nkeys = []\n"),
            "needs at least one key",
        ),
        (
            format!("{MIN}[dnssec.\"example.test\"]\nkeys = [\"a.pem\"]\nksk = \"b.pem\"\n"),
            "is not one of keys",
        ),
        (
            format!("{MIN}[dnssec.\"example.test\"]\nkeys = [\"a.pem\"]\nksk = \"a.pem\"\n"),
            "a KSK needs a second key",
        ),
        (
            format!(
                "{MIN}[dnssec.\"example.test\"]\nkeys = [\"a.pem\"]\nsignature_validity = \"1d\"\nrefresh = \"2d\"\n"
            ),
            "must be shorter than signature_validity",
        ),
        (
            format!("{MIN}[dnssec.\"example.test\"]\nkeys = [\"a.pem\"]\nnsec = \"nsec3\"\n"),
            "\"compact\" (RFC 9824 compact denial) or \"chain\"",
        ),
        (
            format!(
                "{MIN}[dnssec.\"example.test\"]\nkeys = [\"a.pem\"]\nsignature_validity = \"10s\"\n"
            ),
            "at least 60s",
        ),
    ] {
        let e = parse_err(&text);
        assert!(e.contains(says), "{text}\n=> {e}");
    }
}

#[test]
fn endpoint_is_one_of_address_cname_or_host() {
    let pool = |e: &str| format!("{MIN}[pools.p]\nendpoints = [{e}]\n");
    let e = parse_err(&pool("{ weight = 2 }"));
    assert!(
        e.contains("pools.p.endpoints[0].address")
            && e.contains("needs one of address, cname or host"),
        "{e}"
    );
    let e = parse_err(&pool(
        "{ address = \"192.0.2.1\", cname = \"a.example.net\" }",
    ));
    assert!(
        e.contains("pools.p.endpoints[0].cname") && e.contains("not both address and cname"),
        "{e}"
    );
    let e = parse_err(&pool("{ cname = \"not a name\" }"));
    assert!(e.contains("is not a valid domain name"), "{e}");
    let e = parse_err(&pool("{ cname = \"192.0.2.1\" }"));
    assert!(e.contains("is not a valid domain name"), "{e}");
    let e = parse_err(&pool("{ host = \"lb.example.com\" }"));
    assert!(
        e.contains("pools.p.endpoints[0].host")
            && e.contains("[server] resolvers, which is not set"),
        "{e}"
    );
}

#[test]
fn host_endpoints_need_resolvers_and_bounds() {
    let with = |server: &str, pool: &str| {
        MIN.replace(
            "dns_listen = [\"127.0.0.1:5353\"]\n",
            &format!("dns_listen = [\"127.0.0.1:5353\"]\n{server}"),
        ) + &format!("[pools.p]\n{pool}")
    };
    let hosts = "endpoints = [{ host = \"LB-1.example.com.\" }, { host = \"lb-2.example.com\" }]\n";
    let (c, _) = parse_ok(&with(
        "resolvers = [\"127.0.0.1:5300\", \"[::1]:53\"]\n",
        hosts,
    ));
    assert_eq!(c.server.resolvers.len(), 2);
    assert_eq!(
        c.server.refresh,
        (Duration::from_secs(5), Duration::from_secs(300))
    );
    assert_eq!(c.server.stale_for, Duration::from_secs(3600));
    assert!(c.pools[0].answers_hosts());
    assert_eq!(
        c.pools[0].endpoints[0].target,
        EndpointTarget::Host("lb-1.example.com".into())
    );
    let (c, _) = parse_ok(&with(
        "resolvers = [\"127.0.0.1:5300\"]\nmin_refresh = \"1s\"\nmax_refresh = \"10s\"\nstale_for = \"2s\"\n",
        hosts,
    ));
    assert_eq!(
        (c.server.refresh, c.server.stale_for),
        (
            (Duration::from_secs(1), Duration::from_secs(10)),
            Duration::from_secs(2)
        )
    );
    let e = parse_err(&with("resolvers = [\"127.0.0.1\"]\n", hosts));
    assert!(
        e.contains("server.resolvers[0]") && e.contains("expected IP:PORT"),
        "{e}"
    );
    let e = parse_err(&with(
        "resolvers = [\"127.0.0.1:53\"]\nmin_refresh = \"500ms\"\n",
        hosts,
    ));
    assert!(
        e.contains("server.min_refresh") && e.contains("at least 1s"),
        "{e}"
    );
    let e = parse_err(&with(
        "resolvers = [\"127.0.0.1:53\"]\nmin_refresh = \"20s\"\nmax_refresh = \"10s\"\n",
        hosts,
    ));
    assert!(
        e.contains("server.max_refresh") && e.contains("shorter than min_refresh"),
        "{e}"
    );
    let e = parse_err(&with(
        "resolvers = [\"127.0.0.1:53\"]\n",
        "endpoints = [{ host = \"lb.example.com\" }, { address = \"192.0.2.1\" }]\n",
    ));
    assert!(e.contains("mixes host and address endpoints"), "{e}");
}

#[test]
fn endpoint_keys_parse_and_print() {
    let ip: EndpointKey = "2001:DB8::1".parse().expect("ip");
    assert_eq!(ip, EndpointKey::Address("2001:db8::1".parse().expect("ip")));
    assert_eq!(ip.to_string(), "2001:db8::1");
    let name: EndpointKey = "WWW.CDN-a.example.net.".parse().expect("name");
    assert_eq!(name, EndpointKey::Name("www.cdn-a.example.net".into()));
    assert_eq!(name.to_string(), "www.cdn-a.example.net");
    assert!("not a name".parse::<EndpointKey>().is_err());
    let target = EndpointTarget::Cname("www.cdn-a.example.net".into());
    assert_eq!(target.key(), name);
    assert_eq!(
        EndpointTarget::Address("192.0.2.1".parse().expect("ip"))
            .key()
            .to_string(),
        "192.0.2.1"
    );
}

#[test]
fn an_external_monitor_has_no_probe_settings_and_checks_no_backend() {
    let (c, _) = parse_ok(&format!(
        "{MIN}[monitors.deploy]\ntype = \"external\"\n[pools.p]\nmonitor = \"deploy\"\nendpoints = [{{ address = \"192.0.2.1\" }}]\n"
    ));
    assert_eq!(c.monitors[0].kind, MonitorKind::External);
    let e = parse_err(&format!(
        "{MIN}[monitors.deploy]\ntype = \"external\"\nport = 8080\npath = \"/\"\n"
    ));
    assert!(
        e.contains("monitors.deploy.port") && e.contains("monitors.deploy.path"),
        "{e}"
    );
    assert!(e.contains("its health is pushed"), "{e}");
    let e = parse_err(&format!(
        "{MIN}[monitors.deploy]\ntype = \"external\"\n[backends.b]\nmonitor = \"deploy\"\nservers = [{{ address = \"127.0.0.1:8080\" }}]\n"
    ));
    assert!(e.contains("backends.b.monitor"), "{e}");
    let e = parse_err(&format!("{MIN}[monitors.m]\ntype = \"icmp\"\n"));
    assert!(e.contains("http, https, tcp or external"), "{e}");
}

#[test]
fn capacity_keys_are_checked_with_their_key_path() {
    let pool = |keys: &str| {
        format!("{MIN}[pools.p]\n{keys}\nendpoints = [{{ address = \"192.0.2.1\" }}]\n")
    };
    let (c, _) = parse_ok(&pool("capacity = 1000\nslow_start = \"60s\""));
    let cap = c.pools[0].capacity.expect("capacity");
    assert_eq!((cap.max, cap.spill_at), (1000.0, 0.9));
    assert_eq!(
        c.pools[0].slow_start,
        Some(std::time::Duration::from_secs(60))
    );
    for (keys, path, says) in [
        ("load = \"reported\"", "pools.p.load", "needs `capacity`"),
        ("spill_at = 0.5", "pools.p.spill_at", "needs `capacity`"),
        ("capacity = 0", "pools.p.capacity", "above 0"),
        (
            "capacity = 10\nspill_at = 1.5",
            "pools.p.spill_at",
            "at most 1",
        ),
        (
            "capacity = 10\nload = \"sometimes\"",
            "pools.p.load",
            "expected reported or proxy",
        ),
        ("slow_start = \"soon\"", "pools.p.slow_start", ""),
    ] {
        let e = parse_err(&pool(keys));
        assert!(e.contains(path) && e.contains(says), "{keys}: {e}");
    }
}

#[test]
fn load_sources_proxy_and_load_header() {
    // proxy: fine, but warned when no backend names the pool.
    let (c, w) = parse_ok(&format!(
        "{MIN}[pools.p]\ncapacity = 20\nload = \"proxy\"\nendpoints = [{{ address = \"192.0.2.1\" }}]\n"
    ));
    assert_eq!(c.pools[0].capacity.map(|c| c.load), Some(LoadSource::Proxy));
    let w = format!("{w:?}");
    assert!(
        w.contains("pools.p.load") && w.contains("no backend names this pool"),
        "{w}"
    );
    // load_header on the monitor: the pool's load comes from it.
    let monitor = |extra: &str| {
        format!(
            "{MIN}[monitors.m]\ntype = \"http\"\nload_header = \"X-Load\"\n[pools.p]\nmonitor = \"m\"\n{extra}endpoints = [{{ address = \"192.0.2.1\" }}]\n"
        )
    };
    let (c, _) = parse_ok(&monitor("capacity = 100\n"));
    assert_eq!(
        c.pools[0].capacity.map(|c| c.load),
        Some(LoadSource::Header)
    );
    assert_eq!(c.monitors[0].load_header.as_deref(), Some("x-load"));
    let (c, w) = parse_ok(&monitor(""));
    assert!(c.pools[0].capacity.is_none());
    assert!(format!("{w:?}").contains("load_header of monitor m is not used"));
    let (c, w) = parse_ok(&monitor("capacity = 100\nload = \"proxy\"\n"));
    assert_eq!(c.pools[0].capacity.map(|c| c.load), Some(LoadSource::Proxy));
    assert!(format!("{w:?}").contains("load_header of monitor m is not used"));
    for (monitor, says) in [
        (
            "type = \"tcp\"\nload_header = \"X-Load\"",
            "only applies to http",
        ),
        (
            "type = \"http\"\nload_header = \"bad header\"",
            "not an HTTP header name",
        ),
    ] {
        let e = parse_err(&format!("{MIN}[monitors.m]\n{monitor}\n"));
        assert!(
            e.contains("monitors.m.load_header") && e.contains(says),
            "{e}"
        );
    }
}

#[test]
fn cname_pools_hold_one_kind_and_chains_end() {
    let (c, _) = parse_ok(&format!(
        "{MIN}[pools.p]\nendpoints = [{{ cname = \"WWW.cdn-a.example.NET.\", weight = 2 }}]\n"
    ));
    assert_eq!(
        c.pools[0].endpoints[0].target,
        EndpointTarget::Cname("www.cdn-a.example.net".into())
    );
    assert!(c.pools[0].answers_cname());
    // A mix of kinds, named at the first endpoint of the other kind.
    let e = parse_err(&format!(
        "{MIN}[pools.p]\nendpoints = [{{ address = \"192.0.2.1\" }}, {{ cname = \"a.example.net\" }}]\n"
    ));
    assert!(
        e.contains("pools.p.endpoints[1].cname")
            && e.contains("pool p mixes address and cname endpoints"),
        "{e}"
    );
    let balance = |name: &str, pool: &str, extra: &str| {
        format!(
            "[[balance]]\nname = \"{name}\"\npolicy = \"failover\"\npools = [\"{pool}\"]\n{extra}"
        )
    };
    let to = |pool: &str, target: &str| {
        format!("[pools.{pool}]\nendpoints = [{{ cname = \"{target}\" }}]\n")
    };
    // "all" cannot be a CNAME answer.
    let e = parse_err(&format!(
        "{MIN}{}{}",
        to("p", "a.example.net"),
        balance("www.example.test", "p", "on_all_down = \"all\"\n")
    ));
    assert!(
        e.contains("balance[0].on_all_down") && e.contains("cannot apply"),
        "{e}"
    );
    // A loop through balanced names.
    let e = parse_err(&format!(
        "{MIN}{}{}{}{}",
        to("to-b", "b.example.test"),
        to("to-a", "a.example.test."),
        balance("a.example.test", "to-b", ""),
        balance("b.example.test", "to-a", "")
    ));
    assert!(
        e.contains(
            "CNAME loop through balanced names: a.example.test → b.example.test → a.example.test"
        ),
        "{e}"
    );
    // The loop is the error, once: not also a chain too long per name.
    assert!(!e.contains("starts a chain"), "{e}");
    assert_eq!(e.matches("CNAME loop").count(), 1, "{e}");
    // Nine CNAMEs in a row: n0 → n1 → ... → n8 → out.
    let mut text = MIN.to_string();
    for i in 0..9 {
        let target = if i == 8 {
            "out.example.net".to_string()
        } else {
            format!("n{}.example.test", i + 1)
        };
        text.push_str(&to(&format!("p{i}"), &target));
        text.push_str(&balance(
            &format!("n{i}.example.test"),
            &format!("p{i}"),
            "",
        ));
    }
    let e = parse_err(&text);
    assert!(
        e.contains("balance[0].name")
            && e.contains("starts a chain of 9 CNAMEs")
            && e.contains("at most 8"),
        "{e}"
    );
    // Eight is fine: n0 points out of our names, n1 starts eight.
    let eight = text.replacen(
        "cname = \"n1.example.test\"",
        "cname = \"out.example.net\"",
        1,
    );
    parse_ok(&eight);
}
