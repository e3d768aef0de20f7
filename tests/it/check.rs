//! `geosteer check` on good and broken configs: exit codes, and messages that
//! name the file, the line where known, and the key.

use std::process::Command;

use crate::harness::geosteer::{ZONE, server_header, write_config};

fn check(config: &str, files: &[(&str, &[u8])]) -> (bool, String) {
    let mut all: Vec<(&str, &[u8])> = files.to_vec();
    if !files.iter().any(|(n, _)| *n == "example.test.zone") {
        all.push(("example.test.zone", ZONE.as_bytes()));
    }
    let (_dir, path) = write_config(config, &all);
    let out = Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("run geosteer check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const GOOD_POOLS: &str = "
[monitors.web]
type = \"http\"
interval = \"5s\"
timeout = \"3s\"
fall = 3
[pools.us]
monitor = \"web\"
endpoints = [{ address = \"192.0.2.1\" }]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"us\"]
";

#[test]
fn a_good_config_passes_with_operator_warnings() {
    let (ok, out) = check(&format!("{}{GOOD_POOLS}", server_header("")), &[]);
    assert!(ok, "{out}");
    assert!(out.contains("interval × fall + timeout = 18s"), "{out}");
}

#[test]
fn the_shipped_default_config_passes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/geosteer.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .args(["check", "--config", path])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The config the Containerfile installs as /etc/geosteer/geosteer.toml,
/// with its GeoIP path (/usr/share/geosteer/geoip in the image) pointed at
/// the checkout's copy and the example zone beside it, as in the image.
#[test]
fn the_container_config_passes() {
    let root = env!("CARGO_MANIFEST_DIR");
    let shipped = std::fs::read_to_string(format!("{root}/dist/container/geosteer.toml"))
        .expect("dist/container/geosteer.toml");
    assert!(shipped.contains("\"/usr/share/geosteer/geoip/country.mmdb\""));
    assert!(shipped.contains("dns_listen = [\"0.0.0.0:53\"]"));
    let config = shipped.replace("/usr/share/geosteer/geoip/", &format!("{root}/geoip/"));
    let zone = std::fs::read(format!("{root}/zones/example.test.zone")).expect("zone");
    let (dir, path) = write_config(&config, &[]);
    std::fs::create_dir(dir.path().join("zones")).expect("zones folder");
    std::fs::write(dir.path().join("zones/example.test.zone"), zone).expect("zone");
    let out = Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("run geosteer check");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A broken config: its text, extra files beside it, and what the error must name.
type Case<'a> = (String, Vec<(&'a str, &'a [u8])>, &'a [&'a str]);

#[test]
fn each_broken_config_names_its_key_or_line() {
    let base = server_header("");
    let cases: Vec<Case> = vec![
        // wrong type
        (
            format!("{base}{}", GOOD_POOLS.replace("fall = 3", "fall = \"three\"")),
            vec![],
            &["monitors.web.fall", "geosteer.toml:"],
        ),
        // unknown key
        (format!("{base}{GOOD_POOLS}\n[pools.eu]\nendpoints = [{{ address = \"192.0.2.2\", wieght = 2 }}]\n"), vec![], &["pools.eu.endpoints[0]", "wieght"]),
        // missing zone file
        (base.replace("example.test.zone", "missing.zone") + GOOD_POOLS, vec![], &["missing.zone", "cannot read zone file"]),
        // bad zone line
        (
            format!("{base}{GOOD_POOLS}"),
            vec![("example.test.zone", b"$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1 host 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 999.0.0.1\n" as &[u8])],
            &["example.test.zone:5", "zone parse error"],
        ),
        // unknown pool
        (format!("{base}{}", GOOD_POOLS.replace("pools = [\"us\"]", "pools = [\"us\", \"mars\"]")), vec![], &["balance[0].pools[1]", "mars"]),
        // bad weight
        (format!("{base}{GOOD_POOLS}\n[pools.eu]\nendpoints = [{{ address = \"192.0.2.2\" }}, {{ address = \"192.0.2.3\", weight = 0 }}]\n"), vec![], &["pools.eu.endpoints[1].weight"]),
        // timeout not shorter than interval
        (format!("{base}{}", GOOD_POOLS.replace("timeout = \"3s\"", "timeout = \"5s\"")), vec![], &["monitors.web.timeout", "shorter than interval"]),
        // balanced name outside every zone
        (format!("{base}{}", GOOD_POOLS.replace("www.example.test", "www.example.org")), vec![], &["balance[0].name", "not inside any zone"]),
        // zone holding A at a balanced name
        (
            format!("{base}{GOOD_POOLS}"),
            vec![("example.test.zone", format!("{ZONE}www IN A 192.0.2.200\n").into_bytes().leak() as &[u8])],
            &["balance[0].name", "must not hold A records"],
        ),
        // duplicate balanced names
        (format!("{base}{GOOD_POOLS}[[balance]]\nname = \"WWW.example.test.\"\npolicy = \"geo\"\npools = [\"us\"]\n"), vec![], &["balance[1].name", "balanced twice"]),
        // bad duration, bad policy, bad subnet
        (format!("{base}{}", GOOD_POOLS.replace("\"5s\"", "\"5 parsecs\"")), vec![], &["monitors.web.interval"]),
        (format!("{base}{}", GOOD_POOLS.replace("\"failover\"", "\"closest\"")), vec![], &["balance[0].policy", "closest"]),
        (format!("{base}{GOOD_POOLS}subnets = {{ \"10.0.0.1/8\" = [\"us\"] }}\n"), vec![], &["balance[0].subnets.10.0.0.1/8", "host bits"]),
    ];
    for (config, files, needles) in cases {
        let (ok, out) = check(&config, &files);
        assert!(!ok, "expected failure for:\n{config}\n--- got:\n{out}");
        for n in needles {
            assert!(out.contains(n), "expected {n:?} in:\n{out}");
        }
    }
}

/// A key the server's user cannot read (openssl writes 0600 for its owner;
/// the systemd unit's DynamicUser is nobody's owner): `check` names the
/// permission, the mode and owner, and the ways out, never "make a key".
#[test]
fn an_unreadable_dnssec_key_names_the_permission_and_the_way_out() {
    use std::os::unix::fs::PermissionsExt;
    let config = format!(
        "{}{GOOD_POOLS}\n[dnssec.\"example.test\"]\nkeys = [\"k.pem\"]\n",
        server_header("")
    );
    let (dir, path) = write_config(&config, &[("example.test.zone", ZONE.as_bytes())]);
    let key =
        crate::harness::keys::generate(dir.path(), "k.pem", crate::harness::keys::Alg::EcdsaP256);
    let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
    assert_eq!(
        mode & 0o077,
        0,
        "openssl wrote the key readable by others: {mode:o}"
    );
    // The folder is open to anyone, the key is not: as another user (as
    // root, nobody through setpriv; else the key loses its owner's bits).
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for f in ["geosteer.toml", "example.test.zone"] {
        std::fs::set_permissions(dir.path().join(f), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    // A copy of the binary any user can run (the build folder may not be).
    let bin = dir.path().join("geosteer");
    std::fs::hard_link(env!("CARGO_BIN_EXE_geosteer"), &bin)
        .or_else(|_| std::fs::copy(env!("CARGO_BIN_EXE_geosteer"), &bin).map(|_| ()))
        .expect("binary");
    let root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let out = if root.unwrap_or(false) {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .expect("run setpriv (util-linux)")
    } else {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        Command::new(&bin)
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .expect("run geosteer check")
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("k.pem"), "{text}");
    assert!(
        text.contains("cannot read the key: permission denied (mode 0"),
        "{text}"
    );
    assert!(text.contains("LoadCredential="), "{text}");
    assert!(!text.contains("make one with"), "{text}");
}

/// Every problem of one file in one run, each on its own line with its line
/// number: the semantic ones (found after deserializing, located from the
/// parser's spans).
#[test]
fn four_errors_in_one_file_are_four_lines_with_line_numbers() {
    let config = format!(
        "{}{GOOD_POOLS}
[pools.eu]
endpoints = [
  {{ address = \"192.0.2.2\" }},
  {{ address = \"192.0.2.3\", weight = 0 }},
]
[[balance]]
name = \"www.example.org\"
policy = \"closest\"
pools = [\"eu\", \"mars\"]
",
        server_header("")
    );
    let line_of = |needle: &str| {
        config
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle}"))
            + 1
    };
    let (ok, out) = check(&config, &[]);
    assert!(!ok, "{out}");
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 4, "{out}");
    for (key, needle) in [
        ("pools.eu.endpoints[1].weight", "weight = 0"),
        ("balance[1].name", "www.example.org"),
        ("balance[1].policy", "closest"),
        ("balance[1].pools[1]", "mars"),
    ] {
        let want = format!("geosteer.toml:{}: {key}: ", line_of(needle));
        assert!(
            errors.iter().any(|e| e.contains(&want)),
            "no {want:?} in:\n{out}"
        );
    }
}

/// Unknown keys no longer stop the parser at the first: two at different
/// levels, a bad duration and an unknown pool are four lines, each with its
/// line number, in the order of the file, and the exit status is 1.
#[test]
fn unknown_keys_and_semantic_errors_are_reported_together() {
    let config = format!(
        "{}{}
[pools.eu]
endpoints = [{{ address = \"192.0.2.2\", wieght = 2 }}]
",
        server_header("listen_dns = [\"127.0.0.1:53\"]"),
        GOOD_POOLS
            .replace("interval = \"5s\"", "interval = \"5 parsecs\"")
            .replace("pools = [\"us\"]", "pools = [\"us\", \"mars\"]")
    );
    let line_of = |needle: &str| {
        config
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle}"))
            + 1
    };
    let (dir, path) = write_config(&config, &[("example.test.zone", ZONE.as_bytes())]);
    let out = Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("run geosteer check");
    drop(dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 4, "{text}");
    let want = [
        (
            "server.listen_dns",
            "listen_dns",
            "unknown key `listen_dns`, expected one of `dns_listen`",
        ),
        ("monitors.web.interval", "parsecs", "invalid duration"),
        ("balance[0].pools[1]", "mars", "no pool named \"mars\""),
        (
            "pools.eu.endpoints[0].wieght",
            "wieght",
            "unknown key `wieght`",
        ),
    ];
    for (i, (key, needle, says)) in want.into_iter().enumerate() {
        let at = format!("geosteer.toml:{}: {key}: {says}", line_of(needle));
        assert!(errors[i].contains(&at), "line {i}: no {at:?} in:\n{text}");
    }
}

/// A TOML syntax error stops the parser: one error, with line and column,
/// saying that other problems show once it is fixed.
#[test]
fn a_syntax_error_names_line_and_column() {
    let config = format!(
        "{}[pools.us]\nendpoints = [{{ address = \"192.0.2.1\" }}\n",
        server_header("")
    );
    let line = config
        .lines()
        .position(|l| l.starts_with("endpoints"))
        .expect("endpoints")
        + 1;
    let (ok, out) = check(&config, &[]);
    assert!(!ok, "{out}");
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{out}");
    // The column where the parser gave up: the end of the unclosed array.
    let at = format!("geosteer.toml:{line}:39: ");
    assert!(errors[0].contains(&at), "no {at:?} in {out}");
    assert!(errors[0].contains("TOML syntax: "), "{out}");
    assert!(errors[0].contains("parsing stops at the first"), "{out}");
}

/// Every rule that refuses a zone file names itself, the record and the
/// line it is written on (the example zone has 7 lines: what is added is
/// line 8 and on).
#[test]
fn each_zone_rule_names_itself_and_the_line() {
    let config = format!("{}{GOOD_POOLS}", server_header(""));
    let cases: [(String, &[&str]); 7] = [
        (
            format!("{ZONE}alias IN CNAME static\nalias IN CNAME ns1\n"),
            &[
                "example.test.zone:9: more than one CNAME at alias.example.test.: a name has one CNAME (RFC 1034 §3.6.2), the first at line 8",
            ],
        ),
        (
            format!("{ZONE}ns.other.test. IN A 192.0.2.9\n"),
            &[
                "example.test.zone:8: record outside the zone: ns.other.test. A is not in example.test.",
            ],
        ),
        (
            format!("{ZONE}alias IN A 192.0.2.5\nalias IN CNAME static\n"),
            &[
                "example.test.zone:9: CNAME and other data at alias.example.test.: A beside the CNAME, the A at line 8",
            ],
        ),
        (
            format!("{ZONE}@ IN SOA ns1 host 2 3600 600 86400 60\n"),
            &["example.test.zone:8: duplicate SOA"],
        ),
        (
            format!("{ZONE}sub IN SOA ns1 host 2 3600 600 86400 60\n"),
            &["example.test.zone:8: SOA outside the apex: sub.example.test."],
        ),
        (
            ZONE.replace(
                "@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60\n",
                "",
            ),
            &["example.test.zone: no SOA at the apex: zone example.test. has no SOA record"],
        ),
        (
            format!("{ZONE}www IN A 192.0.2.200\n"),
            &[
                "example.test.zone:8: balance[0].name: balanced name in the zone file: www.example.test. is balanced, so its zone file must not hold A records",
            ],
        ),
    ];
    for (zone, needles) in cases {
        let (ok, out) = check(&config, &[("example.test.zone", zone.as_bytes())]);
        assert!(!ok, "expected failure for:\n{zone}\n--- got:\n{out}");
        for n in needles {
            assert!(out.contains(n), "expected {n:?} in:\n{out}");
        }
    }
}

#[test]
fn notify_receivers_are_checked_with_their_lines() {
    let config = format!(
        "{}{GOOD_POOLS}\n[[notify]]\nurl = \"mailto:ops@example.test\"\n\n[[notify]]\nurl = \"http://127.0.0.1:9/hook\"\nevents = [\"pool\", \"nonsense\"]\n",
        server_header("")
    );
    let (ok, text) = check(&config, &[]);
    assert!(!ok, "{text}");
    let line_of = |needle: &str| {
        config
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{needle} not in the config"))
    };
    assert!(
        text.contains(&format!(
            ":{}: notify[0].url: \"mailto:ops@example.test\" is not a webhook URL",
            line_of("mailto")
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            ":{}: notify[1].events[1]: unknown event kind \"nonsense\"; valid kinds: endpoint, pool, drain",
            line_of("nonsense")
        )),
        "{text}"
    );
}

/// A name that can answer a CNAME (a pool of `cname` endpoints) holds no
/// other data: the zone file's TXT at it is refused, with its line, and a
/// pool mixing kinds is refused with the pool's name and line.
#[test]
fn a_cname_name_holds_no_other_data_and_a_pool_one_kind() {
    let config = format!(
        "{}[pools.cdn]\nendpoints = [{{ cname = \"www.cdn-a.example.net\" }}]\n\n[[balance]]\nname = \"www.example.test\"\npolicy = \"failover\"\npools = [\"cdn\"]\n",
        server_header("")
    );
    let (ok, out) = check(&config, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("example.test.zone:7: balance[0].name: balanced name in the zone file: www.example.test. answers CNAMEs (a pool of cname endpoints), so its zone file must hold no record for it, here TXT"),
        "{out}"
    );
    let mixed = format!(
        "{}[pools.cdn]\nendpoints = [\n  {{ cname = \"www.cdn-a.example.net\" }},\n  {{ address = \"192.0.2.1\" }},\n]\n",
        server_header("")
    );
    let (ok, out) = check(&mixed, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            ":14: pools.cdn.endpoints[1].address: pool cdn mixes cname and address endpoints"
        ),
        "{out}"
    );
}

/// Host endpoints: check names the endpoint when `[server] resolvers` is
/// missing, a resolver that is not `IP:port`, an external monitor for a
/// pool of them; a good config passes.
#[test]
fn host_endpoints_need_resolvers() {
    let pool = "[pools.cloud]\nendpoints = [{ host = \"lb-123.eu-west-1.elb.example.com\" }]\n\n[[balance]]\nname = \"lb.example.test\"\npolicy = \"failover\"\npools = [\"cloud\"]\n";
    let (ok, out) = check(&format!("{}{pool}", server_header("")), &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("pools.cloud.endpoints[0].host: host endpoints are resolved through [server] resolvers, which is not set"),
        "{out}"
    );
    let (ok, out) = check(
        &format!("{}{pool}", server_header("resolvers = [\"192.0.2.53\"]")),
        &[],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("server.resolvers[0]: invalid address \"192.0.2.53\": expected IP:PORT"),
        "{out}"
    );
    let external = format!(
        "{}[monitors.pushed]\ntype = \"external\"\n{}",
        server_header("resolvers = [\"192.0.2.53:53\"]"),
        pool.replace("[pools.cloud]\n", "[pools.cloud]\nmonitor = \"pushed\"\n")
    );
    let (ok, out) = check(&external, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("pools.cloud.monitor: pushed is an external monitor"),
        "{out}"
    );
    let (ok, out) = check(
        &format!(
            "{}{pool}",
            server_header("resolvers = [\"192.0.2.53:53\", \"[2001:db8::53]:5353\"]")
        ),
        &[],
    );
    assert!(ok, "{out}");
}
