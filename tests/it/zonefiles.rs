//! Zone files as BIND reads them: every file of the corpus in `tests/zones`
//! loads in geosteer with exactly the records `named-checkzone -D` prints,
//! and a file geosteer cannot load is refused with its file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use hickory_proto::rr::{LowerName, Name, RecordSet, RrKey};
use hickory_proto::serialize::txt::Parser;

use crate::harness::geosteer::write_config;

/// Every corpus file and its origin (see tests/zones/README.md).
const CORPUS: &[(&str, &str)] = &[
    ("bind-classic.zone", "example.com."),
    ("no-ttl.zone", "example.net."),
    ("rfc1035-ttl.zone", "example.org."),
    ("include.zone", "example.com."),
    ("generate.zone", "example.com."),
    ("reverse.zone", "2.0.192.in-addr.arpa."),
    ("services.zone", "example.com."),
    ("ttl-class-order.zone", "example.com."),
    ("at-everywhere.zone", "example.com."),
    ("registrar-export.zone", "example.com."),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zones")
}

/// `named-checkzone -D` on `file`, run in the corpus folder (where BIND
/// resolves `$INCLUDE`): (the zone as BIND loaded it, BIND's messages).
fn named_checkzone(file: &str, origin: &str) -> (String, String) {
    let out_file = tempfile::NamedTempFile::new().expect("temp file");
    let out = Command::new("named-checkzone")
        .current_dir(corpus_dir())
        .args(["-D", "-o"])
        .arg(out_file.path())
        .args([origin, file])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run named-checkzone ({e}): this test compares geosteer with BIND; \
                 install it with `apt-get install -y bind9-utils`"
            )
        });
    let messages = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "named-checkzone refused corpus file {file}:\n{messages}"
    );
    let text = std::fs::read_to_string(out_file.path()).expect("read named-checkzone output");
    (text, messages)
}

/// One line per record: owner (lower case), TTL, class, type, RDATA.
fn flatten(records: &BTreeMap<RrKey, RecordSet>) -> Vec<String> {
    let mut out: Vec<String> = records
        .values()
        .flat_map(|set| set.records_without_rrsigs())
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                LowerName::new(&r.name),
                r.ttl,
                r.dns_class,
                r.record_type(),
                r.data
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_corpus_loads_with_the_records_named_checkzone_prints() {
    // Every file in the folder is in the list, so none is silently left out.
    let mut on_disk: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("tests/zones")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".zone"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CORPUS.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "tests/zones and CORPUS disagree");

    let mut total = 0;
    for (file, origin) in CORPUS {
        let path = corpus_dir().join(file);
        let (ours, warnings) = geosteer::zone::read_zone(&path, origin)
            .unwrap_or_else(|e| panic!("geosteer refused {file}, which BIND loads: {e}"));
        let (bind_text, messages) = named_checkzone(file, origin);
        let origin_name = Name::from_str(origin).expect("origin");
        let (_, theirs) = Parser::new(bind_text.as_str(), None, Some(origin_name))
            .parse()
            .unwrap_or_else(|e| panic!("cannot read named-checkzone's output for {file}: {e}"));
        let (ours, theirs) = (flatten(&ours), flatten(&theirs));
        let only_ours: Vec<&String> = ours.iter().filter(|r| !theirs.contains(r)).collect();
        let only_bind: Vec<&String> = theirs.iter().filter(|r| !ours.contains(r)).collect();
        assert!(
            only_ours.is_empty() && only_bind.is_empty(),
            "{file}: geosteer and BIND load different records\n\
             only geosteer: {only_ours:#?}\nonly BIND: {only_bind:#?}"
        );
        assert!(
            ours.len() >= 4,
            "{file}: too few records to compare: {ours:?}"
        );
        total += ours.len();
        // Where BIND falls back to the SOA MINIMUM, geosteer warns on the same line.
        for line in messages.lines() {
            if let Some(head) = line.strip_suffix(": no TTL specified; using SOA MINTTL instead") {
                let at = head.rsplit(':').next().unwrap_or("");
                assert!(
                    warnings
                        .iter()
                        .any(|w| w.key.ends_with(&format!("{file}:{at}"))
                            && w.message.contains("SOA MINIMUM")),
                    "{file}: BIND says {line:?}; geosteer warned {warnings:?}"
                );
            }
        }
    }
    assert!(total > 100, "the corpus holds {total} records");
}

#[test]
fn check_prints_the_soa_minimum_warning() {
    let text = std::fs::read(corpus_dir().join("no-ttl.zone")).expect("corpus");
    let config =
        "[server]\ndns_listen = [\"127.0.0.1:0\"]\n\n[zones]\n\"example.net\" = \"no-ttl.zone\"\n";
    let (_dir, path) = write_config(config, &[("no-ttl.zone", &text)]);
    let out = Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("run geosteer check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("no-ttl.zone:2: no TTL specified; using SOA MINIMUM (600) instead"),
        "{stdout}"
    );
}

/// Loads `files[0]` (origin example.com.) from a temp folder holding `files`.
fn load(files: &[(&str, &str)]) -> Result<usize, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    geosteer::zone::read_zone(&dir.path().join(files[0].0), "example.com.")
        .map(|(records, _)| records.len())
        .map_err(|e| e.to_string())
}

#[test]
fn what_cannot_be_loaded_is_refused_with_file_and_line() {
    const HEAD: &str =
        "$TTL 300\n@ SOA ns1 hm 1 14400 3600 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n";
    // (files, the first being the zone; where the error must point; what it says)
    type Case<'a> = (Vec<(&'a str, String)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        // A bad address in an included file: that file's line.
        (
            vec![
                ("z.zone", format!("{HEAD}$INCLUDE hosts.inc\n")),
                (
                    "hosts.inc",
                    "; hosts\nok A 192.0.2.2\nbad A 192.0.2.300\n".into(),
                ),
            ],
            "hosts.inc:3:",
            "zone parse error",
        ),
        // $GENERATE making bad records: the $GENERATE line.
        (
            vec![(
                "z.zone",
                format!("{HEAD}\n$GENERATE 250-260 h$ A 192.0.2.$\n"),
            )],
            "z.zone:6:",
            "zone parse error",
        ),
        // A record before anything gives a TTL.
        (
            vec![("z.zone", "x A 192.0.2.1\n@ SOA ns1 hm 1 2 3 4 5\n".into())],
            "z.zone:1:",
            "no TTL specified",
        ),
        // An unknown type, after a multi-line record.
        (
            vec![(
                "z.zone",
                format!("{HEAD}txt TXT ( \"a\"\n \"b\" )\nq FROB 1\n"),
            )],
            "z.zone:7:",
            "zone parse error",
        ),
        (
            vec![("z.zone", format!("{HEAD}$INCLUDE missing.inc\n"))],
            "z.zone:5:",
            "cannot read $INCLUDE",
        ),
    ];
    for (files, at, says) in cases {
        let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        match load(&files) {
            Ok(n) => panic!("{files:?} loaded {n} records; expected {at} {says}"),
            Err(e) => assert!(e.contains(at) && e.contains(says), "want {at} {says}: {e}"),
        }
    }
    // The same head loads when nothing is wrong (so the cases fail for their line).
    assert_eq!(load(&[("z.zone", HEAD)]), Ok(3));
}

#[test]
fn the_shipped_example_zone_meets_zonemasters_soa_and_ns_checks() {
    use hickory_proto::rr::{RData, RecordType};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("zones/example.test.zone");
    let (records, warnings) =
        geosteer::zone::read_zone(&path, "example.test.").unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    let apex = LowerName::from_str("example.test.").expect("name");
    let soa = records
        .get(&RrKey::new(apex.clone(), RecordType::SOA))
        .and_then(|s| s.records_without_rrsigs().next())
        .map(|r| match &r.data {
            RData::SOA(soa) => soa.clone(),
            other => panic!("not a SOA: {other:?}"),
        })
        .expect("SOA at the apex");
    let (refresh, retry, expire, minimum) = (soa.refresh, soa.retry, soa.expire, soa.minimum);
    // Zonemaster ZONE01..ZONE05 (and RFC 1912 §2.2).
    assert!(refresh >= 14400, "refresh {refresh}");
    assert!(retry >= 3600 && retry < refresh, "retry {retry}");
    assert!(
        expire >= 604800 && i64::from(expire) >= 7 * i64::from(refresh),
        "expire {expire}"
    );
    assert!((300..=86400).contains(&minimum), "minimum {minimum}");
    let ns: Vec<Name> = records
        .get(&RrKey::new(apex, RecordType::NS))
        .expect("NS at the apex")
        .records_without_rrsigs()
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.clone()),
            _ => None,
        })
        .collect();
    assert!(ns.len() >= 2, "Zonemaster wants two NS names: {ns:?}");
    for name in &ns {
        let key = RrKey::new(LowerName::new(name), RecordType::A);
        assert!(
            records.contains_key(&key),
            "in-zone NS {name} has no address"
        );
    }
    // BIND loads it too.
    let out = Command::new("named-checkzone")
        .args(["example.test"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run named-checkzone ({e}): apt-get install -y bind9-utils")
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
