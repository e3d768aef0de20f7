//! BIND's `delv` (bind9-dnsutils): queries one server directly and
//! validates the answer itself from a trust anchor for the zone, no
//! resolver in between. Its first line says "; fully validated" when the
//! chain from the anchor holds.
//!
//! delv 9.18 looks for the anchor of the root unless told otherwise: with
//! an anchor for a zone it needs `+root=ZONE` (else "No trusted keys were
//! loaded"), and the anchor file is in named.conf syntax
//! (`trust-anchors { ZONE static-key|static-ds ...; };`), see [`anchor_file`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Writes `dir/name` as a delv anchor file for DNSKEY or DS records given
/// in zone-file text, one a line ("zone. [ttl] [IN] DNSKEY 257 3 13 KEY" or
/// "zone. [ttl] [IN] DS 12345 13 2 DIGEST"). Returns its path.
pub fn anchor_file(dir: &Path, name: &str, records: &str) -> PathBuf {
    let mut body = String::from("trust-anchors {\n");
    for line in records.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let owner = fields[0];
        let at = fields
            .iter()
            .position(|f| *f == "DNSKEY" || *f == "DS")
            .unwrap_or_else(|| panic!("not a DNSKEY or DS record: {line}"));
        let rdata = &fields[at + 1..];
        assert!(rdata.len() >= 4, "short {} record: {line}", fields[at]);
        let kind = if fields[at] == "DNSKEY" {
            "static-key"
        } else {
            "static-ds"
        };
        // The key or digest may be split by spaces; delv wants it whole.
        body.push_str(&format!(
            "  {owner} {kind} {} \"{}\";\n",
            rdata[..3].join(" "),
            rdata[3..].concat()
        ));
    }
    body.push_str("};\n");
    let path = dir.join(name);
    std::fs::write(&path, body)
        .unwrap_or_else(|e| panic!("write delv anchor file {}: {e}", path.display()));
    path
}

/// The zone of the first anchor in a file [`anchor_file`] wrote.
fn anchor_zone(anchor_file: &Path) -> String {
    let text = std::fs::read_to_string(anchor_file)
        .unwrap_or_else(|e| panic!("read delv anchor file {}: {e}", anchor_file.display()));
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .find(|w| *w != "trust-anchors" && *w != "};" && !w.starts_with('#'))
        .unwrap_or_else(|| panic!("no anchor in {}: {text}", anchor_file.display()))
        .to_string()
}

/// Runs `delv @IP -p PORT -a ANCHOR_FILE +root=ZONE NAME QTYPE` (ZONE: the
/// anchor's), off the test's runtime, killed after 15 s; returns its
/// standard output then its standard error (where delv reports failures;
/// it exits 0 on a broken chain too). Panics if `delv` is missing.
pub async fn delv(server: SocketAddr, anchor_file: &Path, name: &str, qtype: &str) -> String {
    delv_with(server, anchor_file, name, qtype, &[]).await
}

/// [`delv`] with more options (`+tcp`: every query over TCP).
pub async fn delv_with(
    server: SocketAddr,
    anchor_file: &Path,
    name: &str,
    qtype: &str,
    options: &[&str],
) -> String {
    let zone = anchor_zone(anchor_file);
    let mut cmd = Command::new("delv");
    cmd.arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .arg("-a")
        .arg(anchor_file)
        .arg(format!("+root={zone}"))
        .args(options)
        .args([name, qtype])
        .stdin(Stdio::null());
    let dir = tempfile::tempdir().expect("tempdir for delv output");
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    cmd.stdout(std::fs::File::create(&out_path).expect("delv stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("delv stderr file"));
    let args = format!("{cmd:?}");
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run `delv` ({e}): install it with `apt-get install -y bind9-dnsutils`")
        });
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{args} did not finish within 15 s");
                }
            }
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!("{}{}", read(&out_path), read(&err_path))
    })
    .await
    .expect("delv task")
}
