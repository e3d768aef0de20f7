//! Starts geosteer in-process from config text written to a temp folder.

use std::net::SocketAddr;
use std::path::PathBuf;

use geosteer::app::{self, Running};

/// The standard test zone: example.test with a SOA, NS and a few static names.
pub const ZONE: &str = "$ORIGIN example.test.
$TTL 300
@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60
@ IN NS ns1.example.test.
ns1 IN A 127.0.0.1
static IN A 192.0.2.10
www IN TXT \"hello\"
";

#[allow(dead_code)] // used by the reload and admin tests
pub struct TestServer {
    pub running: Running,
    pub dns: SocketAddr,
    pub dir: tempfile::TempDir,
}

/// A temp folder holding `geosteer.toml` and the given extra files.
pub fn write_config(config: &str, files: &[(&str, &[u8])]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("geosteer.toml");
    std::fs::write(&path, config).expect("write config");
    for (name, data) in files {
        std::fs::write(dir.path().join(name), data).expect("write file");
    }
    (dir, path)
}

impl TestServer {
    /// Starts geosteer with `config` (DNS on 127.0.0.1:0 unless it says
    /// otherwise) and `example.test.zone` = [`ZONE`] unless `files` has one.
    pub async fn start(config: &str, files: &[(&str, &[u8])]) -> TestServer {
        // Every config the tests write runs on the test's UDP path.
        let config = if config.contains("fast_path") {
            config.to_string()
        } else {
            config.replacen(
                "[server]\n",
                &format!("[server]\nfast_path = {}\n", fast_path()),
                1,
            )
        };
        let config = config.as_str();
        let mut all: Vec<(&str, &[u8])> = files.to_vec();
        if !files.iter().any(|(n, _)| *n == "example.test.zone") {
            all.push(("example.test.zone", ZONE.as_bytes()));
        }
        let (dir, path) = write_config(config, &all);
        let running = app::start(&path)
            .await
            .unwrap_or_else(|e| panic!("start failed: {e}"));
        let dns = running.dns_addrs[0];
        TestServer { running, dns, dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("geosteer.toml")
    }

    pub async fn stop(self) {
        self.running.stop().await;
    }
}

/// The `[server]` and `[zones]` tables every test config starts with.
pub fn server_header(extra: &str) -> String {
    format!(
        "[server]\ndns_listen = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"\nudp_workers = 1\nfast_path = {}\n{extra}\n\n[zones]\n\"example.test\" = \"example.test.zone\"\n\n",
        fast_path()
    )
}

tokio::task_local! {
    /// Which UDP path the servers a test starts use: the fast path (true,
    /// the default) or hickory's server. Set by [`both_paths!`](crate::both_paths).
    pub static FAST_PATH: bool;
}

tokio::task_local! {
    /// Whether the queries a test sends with EDNS carry the DO bit. Set by
    /// [`both_paths!`](crate::both_paths): every test runs with and without.
    pub static DNSSEC_OK: bool;
}

/// Whether the current test's queries ask for DNSSEC records.
pub fn dnssec_ok() -> bool {
    DNSSEC_OK.try_with(|v| *v).unwrap_or(false)
}

/// The UDP path of the current test.
pub fn fast_path() -> bool {
    FAST_PATH.try_with(|v| *v).unwrap_or(true)
}

/// Runs each test body four times, as `NAME::fast` and `NAME::hickory`
/// (against the UDP fast path and against hickory's server, so both answer
/// every DNS test), and `NAME::fast_do` and `NAME::hickory_do`, the same
/// with the DO bit in every query that has EDNS (unsigned zones answer as
/// without it).
#[macro_export]
macro_rules! both_paths {
    ($(async fn $name:ident() $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn fast() {
                $crate::harness::geosteer::FAST_PATH.scope(true, async $body).await
            }

            #[tokio::test]
            async fn hickory() {
                $crate::harness::geosteer::FAST_PATH.scope(false, async $body).await
            }

            #[tokio::test]
            async fn fast_do() {
                $crate::harness::geosteer::DNSSEC_OK
                    .scope(true, $crate::harness::geosteer::FAST_PATH.scope(true, async $body))
                    .await
            }

            #[tokio::test]
            async fn hickory_do() {
                $crate::harness::geosteer::DNSSEC_OK
                    .scope(true, $crate::harness::geosteer::FAST_PATH.scope(false, async $body))
                    .await
            }
        }
    )*};
}
