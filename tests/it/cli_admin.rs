//! How the CLI finds its server and its config, and what it says when it
//! cannot: `--admin` (URL or host:port), else GEOSTEER_ADMIN, else
//! `server.admin_listen` of the config; the config from `--config`, else
//! GEOSTEER_CONFIG, else /etc/geosteer/geosteer.toml, else
//! ./config/geosteer.toml; one `error:` prefix and the documented exit codes.

use std::path::Path;
use std::process::Output;

use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::get_json;
use crate::harness::origin::Origin;

/// Runs the CLI off the runtime thread (it talks to this test's server)
/// with a clean environment of its own: `env` added, the GEOSTEER_ ones the
/// test runner may have removed, in the folder `cwd`.
async fn cli(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let cwd = cwd.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_geosteer"));
        for k in [
            "GEOSTEER_ADMIN",
            "GEOSTEER_CONFIG",
            "GEOSTEER_ADMIN_TOKEN",
            "NO_COLOR",
        ] {
            cmd.env_remove(k);
        }
        cmd.args(&args)
            .envs(env)
            .current_dir(cwd)
            .output()
            .expect("run geosteer")
    })
    .await
    .expect("cli task")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A port nothing listens on (bound, then closed).
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn config(token: &str, a: &Origin) -> String {
    format!(
        "{}
[pools.eu]
endpoints = [{{ address = \"192.0.2.1\" }}, {{ address = \"192.0.2.2\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]
[[proxy]]
listen = \"127.0.0.1:0\"
mode = \"http\"
routes = [{{ backend = \"web\" }}]
[backends.web]
servers = [{{ address = \"{a}\" }}]
",
        server_header(token),
        a = a.addr()
    )
}

#[tokio::test]
async fn the_admin_api_comes_from_the_flag_the_environment_or_the_config() {
    let a = Origin::start().await;
    let s = TestServer::start(&config("", &a), &[]).await;
    let live = s.running.admin_addr.to_string();
    let dead = format!("127.0.0.1:{}", dead_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, admin: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("[server]\nadmin_listen = \"{admin}\"\n")).expect("write");
        p.to_string_lossy().into_owned()
    };
    let (live_cfg, dead_cfg) = (write("live.toml", &live), write("dead.toml", &dead));
    let cwd = dir.path();
    let works = |out: &Output| {
        let (o, e) = text(out);
        assert!(out.status.success(), "{o}{e}");
        assert!(o.contains("POOL") && o.contains("192.0.2.1"), "{o}");
    };
    // host:port and a URL with --admin; --admin wins over the environment.
    works(
        &cli(
            &["status", "--admin", &live],
            &[("GEOSTEER_ADMIN", &dead)],
            cwd,
        )
        .await,
    );
    works(&cli(&["status", "--admin", &format!("http://{live}/")], &[], cwd).await);
    // GEOSTEER_ADMIN wins over the config.
    works(
        &cli(
            &["status", "--config", &dead_cfg],
            &[("GEOSTEER_ADMIN", &live)],
            cwd,
        )
        .await,
    );
    // server.admin_listen of --config, and of GEOSTEER_CONFIG.
    works(&cli(&["status", "--config", &live_cfg], &[], cwd).await);
    works(&cli(&["status"], &[("GEOSTEER_CONFIG", &live_cfg)], cwd).await);
    // The wrong one fails with exit 3 and says where the address came from.
    let out = cli(&["status", "--config", &dead_cfg], &[], cwd).await;
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{o}{e}");
    assert!(e.starts_with("error: cannot reach the admin API"), "{e}");
    assert!(
        e.contains(&format!("server.admin_listen of {dead_cfg}")),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
    let out = cli(&["status"], &[("GEOSTEER_ADMIN", &dead)], cwd).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out).1.contains("(from GEOSTEER_ADMIN)"));
    // A wildcard listener is dialled on loopback.
    let wild = write(
        "wild.toml",
        &format!("0.0.0.0:{}", s.running.admin_addr.port()),
    );
    works(&cli(&["status", "--config", &wild], &[], cwd).await);
    // explain --admin without a value finds the server the same way.
    let out = cli(
        &[
            "explain",
            "--name",
            "www.example.test",
            "--client",
            "192.0.2.77",
            "--admin",
            "--config",
            &live_cfg,
        ],
        &[],
        cwd,
    )
    .await;
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}{e}");
    assert!(
        o.contains("answer: www.example.test. 30 IN A 192.0.2."),
        "{o}"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_config_is_searched_for_and_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path();
    let etc = Path::new("/etc/geosteer/geosteer.toml");
    // Nothing to find: the error names the last place looked.
    if !etc.exists() {
        let out = cli(&["check"], &[], cwd).await;
        let (o, e) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{o}{e}");
        assert!(
            e.contains("reading config/geosteer.toml (none of /etc/geosteer/geosteer.toml, ./config/geosteer.toml exists)"),
            "{e}"
        );
        assert!(
            o.contains("error: config/geosteer.toml: cannot read config"),
            "{o}"
        );
    }
    std::fs::create_dir(cwd.join("config")).expect("mkdir");
    let good = format!(
        "{}[pools.eu]\nendpoints = [{{ address = \"192.0.2.1\" }}]\n",
        server_header("")
    );
    std::fs::write(cwd.join("config/geosteer.toml"), &good).expect("write");
    std::fs::write(
        cwd.join("config/example.test.zone"),
        crate::harness::geosteer::ZONE,
    )
    .expect("zone");
    let out = cli(&["check"], &[], cwd).await;
    let (o, e) = text(&out);
    if etc.exists() {
        assert!(e.contains("reading /etc/geosteer/geosteer.toml"), "{e}");
    } else {
        assert!(out.status.success(), "{o}{e}");
        assert!(
            e.contains("reading config/geosteer.toml (the first of /etc/geosteer/geosteer.toml, ./config/geosteer.toml found)"),
            "{e}"
        );
        assert!(o.contains("config/geosteer.toml: ok"), "{o}");
    }
    // GEOSTEER_CONFIG comes before the search, and a missing one is an error.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let broken = elsewhere.path().join("broken.toml");
    std::fs::write(&broken, "[server\n").expect("write");
    let broken = broken.to_string_lossy().into_owned();
    let out = cli(&["check"], &[("GEOSTEER_CONFIG", &broken)], cwd).await;
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{o}{e}");
    assert!(
        e.contains(&format!("reading {broken} (GEOSTEER_CONFIG)")),
        "{e}"
    );
    assert!(o.contains(&format!("error: {broken}:1")), "{o}");
    // --config comes first and is not announced.
    let path = cwd.join("config/geosteer.toml");
    let out = cli(
        &["check", "--config", &path.to_string_lossy()],
        &[("GEOSTEER_CONFIG", &broken)],
        cwd,
    )
    .await;
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}{e}");
    assert!(!e.contains("reading"), "{e}");
}

#[tokio::test]
async fn drain_takes_a_backend_server_and_a_refusal_names_the_token() {
    let a = Origin::start().await;
    let s = TestServer::start(&config("admin_token = \"s3cret\"", &a), &[]).await;
    let admin = s.running.admin_addr.to_string();
    let server = a.addr().to_string();
    let cwd = s.dir.path();
    let state = || async {
        let (_, v) = get_json(&format!("http://{admin}/api/v1/status")).await;
        v["backends"][0]["servers"][0]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // Without the token: refused, exit 1, and the message says what to set.
    let args = ["drain", "--backend", "web", &server, "--admin", &admin];
    let out = cli(&args, &[], cwd).await;
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{o}{e}");
    assert!(e.starts_with("error: POST "), "{e}");
    assert!(
        e.contains("401") && e.contains("GEOSTEER_ADMIN_TOKEN"),
        "{e}"
    );
    assert_eq!(state().await, "up");
    let token = [("GEOSTEER_ADMIN_TOKEN", "s3cret")];
    let out = cli(&args, &token, cwd).await;
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}{e}");
    assert_eq!(o.trim(), format!("backend web {server}: drained"));
    assert_eq!(state().await, "draining");
    let undrain = ["undrain", "--backend", "web", &server, "--admin", &admin];
    let out = cli(&undrain, &token, cwd).await;
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(state().await, "up");
    // A pool's endpoint, found through the config the server runs (with
    // the port its admin_listen = "127.0.0.1:0" was given, written in).
    let port_zero = cli(
        &["status", "--config", &s.config_path().to_string_lossy()],
        &[],
        cwd,
    )
    .await;
    assert_eq!(port_zero.status.code(), Some(1));
    assert!(
        text(&port_zero).1.contains("port 0"),
        "{:?}",
        text(&port_zero)
    );
    let text_of = std::fs::read_to_string(s.config_path()).expect("config");
    let fixed = s.path("fixed.toml");
    std::fs::write(
        &fixed,
        text_of.replace("127.0.0.1:0\"\nudp", &format!("{admin}\"\nudp")),
    )
    .expect("write");
    let config = fixed.to_string_lossy().into_owned();
    let out = cli(
        &["drain", "eu", "192.0.2.1", "--config", &config],
        &token,
        cwd,
    )
    .await;
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}{e}");
    assert_eq!(o.trim(), "eu 192.0.2.1: drained");
    // What the server refuses: exit 1, one error line naming the reason.
    let out = cli(&["drain", "web", &server, "--config", &config], &token, cwd).await;
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{o}{e}");
    assert!(
        e.starts_with("error: ") && e.contains("no pool named \"web\""),
        "{e}"
    );
    // A usage error is 2: one argument without --backend, two with it.
    for bad in [
        vec!["drain", "eu"],
        vec!["drain", "--backend", "web", "a", "b"],
    ] {
        let out = cli(&bad, &token, cwd).await;
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {:?}", text(&out));
        assert!(text(&out).1.starts_with("error: "), "{:?}", text(&out));
    }
    s.stop().await;
}

#[test]
fn the_man_page_documents_files_environment_and_every_exit_status() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .arg("man")
        .output()
        .expect("run geosteer man");
    let page = String::from_utf8_lossy(&out.stdout);
    let section = |name: &str| {
        let start = page
            .find(&format!(".SH {name}\n"))
            .unwrap_or_else(|| panic!("no {name} section"));
        let rest = &page[start + 4..];
        rest[..rest.find(".SH ").unwrap_or(rest.len())].to_string()
    };
    let files = section("FILES");
    assert!(
        files.contains("/etc/geosteer/geosteer.toml") && files.contains("./config/geosteer.toml")
    );
    let env = section("ENVIRONMENT");
    for var in [
        "GEOSTEER_CONFIG",
        "GEOSTEER_ADMIN",
        "GEOSTEER_ADMIN_TOKEN",
        "GEOSTEER_LOG",
        "NO_COLOR",
    ] {
        assert!(env.contains(&format!("\\fB{var}\\fR")), "{var} in {env}");
    }
    let status = section("\"EXIT STATUS\"");
    use geosteer::cli::exit;
    for code in [exit::OK, exit::FAILURE, exit::USAGE, exit::UNREACHABLE] {
        assert!(
            status.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "{code} in {status}"
        );
    }
}
