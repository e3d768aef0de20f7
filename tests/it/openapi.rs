//! The OpenAPI document at `/api/v1/openapi.json` against the real router:
//! every route the router serves is documented, every documented route
//! answers (no 404 from the router, no 405), the document passes a real
//! validator (`openapi-spec-validator`), and every error is JSON.

use std::collections::BTreeSet;
use std::process::Command;

use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::send;

const TOKEN: &str = "t0ken";

fn config() -> String {
    format!(
        "{}
[pools.eu]
endpoints = [{{ address = \"192.0.2.1\" }}, {{ address = \"192.0.2.2\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]
[backends.web]
servers = [{{ address = \"127.0.0.1:9\" }}]
",
        server_header(&format!("admin_token = \"{TOKEN}\""))
    )
}

async fn document(s: &TestServer) -> serde_json::Value {
    let (code, body) = send(
        reqwest::Method::GET,
        &url(s, "/api/v1/openapi.json"),
        None,
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn url(s: &TestServer, path: &str) -> String {
    format!("http://{}{path}", s.running.admin_addr)
}

/// (METHOD, path) of every operation the document describes.
fn documented(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let s = TestServer::start(&config(), &[]).await;
    let doc = document(&s).await;
    let served: BTreeSet<(String, String)> = geosteer::admin::routes()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let described = documented(&doc);
    let undocumented: Vec<_> = served.difference(&described).collect();
    let unserved: Vec<_> = described.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from src/admin/openapi.json: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "src/admin/openapi.json documents routes the router does not serve: {unserved:?}"
    );
    assert!(served.len() >= 15, "{served:?}");
    s.stop().await;
}

/// Each documented operation, sent with its examples (path parameters from
/// the test's config, query parameters and bodies from the document):
/// answered by its handler, never by the router's 404 or a 405.
#[tokio::test]
async fn every_documented_route_answers() {
    let s = TestServer::start(&config(), &[]).await;
    let doc = document(&s).await;
    for (method, path) in documented(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let mut concrete = path.replace("{pool}", "eu").replace("{backend}", "web");
        concrete = if path.starts_with("/api/v1/backends/") {
            concrete.replace("{address}", "127.0.0.1:9")
        } else {
            concrete.replace("{endpoint}", "192.0.2.2")
        };
        assert!(
            !concrete.contains('{'),
            "a parameter the test does not know: {path}"
        );
        let query: Vec<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .map(|p| {
                let example = &p["example"];
                let value = example
                    .as_str()
                    .map_or_else(|| example.to_string(), str::to_string);
                format!("{}={value}", p["name"].as_str().unwrap_or_default())
            })
            .collect();
        if !query.is_empty() {
            concrete = format!("{concrete}?{}", query.join("&"));
        }
        let body = op["requestBody"]["content"]["application/json"]["example"].clone();
        let body = (!body.is_null()).then(|| body.to_string());
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let (code, text) = send(m, &url(&s, &concrete), body.as_deref(), Some(TOKEN)).await;
        assert_ne!(code, 405, "{method} {concrete}: {text}");
        assert!(
            !(code == 404 && text.contains("no such admin endpoint")),
            "{method} {concrete}: the router has no such route"
        );
        let documented_codes: Vec<&String> = op["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .collect();
        assert!(
            documented_codes
                .iter()
                .any(|c| c.as_str() == code.to_string()),
            "{method} {concrete} answered {code}, not among {documented_codes:?}: {text}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn the_document_passes_openapi_spec_validator() {
    let s = TestServer::start(&config(), &[]).await;
    let doc = document(&s).await;
    s.stop().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).expect("write");
    let validator = std::env::var("OPENAPI_SPEC_VALIDATOR")
        .unwrap_or_else(|_| "openapi-spec-validator".to_string());
    let out = Command::new(&validator)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{validator} cannot run ({e}): pip install openapi-spec-validator, or set \
                 OPENAPI_SPEC_VALIDATOR (.ci/run installs it into a virtualenv)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("OK"), "{text}");
    assert_eq!(doc["openapi"], "3.1.0");
}

/// Sends and checks the answer is `code` with a JSON `{"error": "..."}`
/// containing `needle`.
async fn json_error(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
    code: u16,
    needle: &str,
) {
    let (got, text) = send(method.clone(), &url(s, path), body, token).await;
    assert_eq!(got, code, "{method} {path}: {text}");
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text:?}"));
    let error = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} {path}: no error in {v}"));
    assert!(
        error.contains(needle),
        "{method} {path}: {error:?} lacks {needle:?}"
    );
}

#[tokio::test]
async fn every_error_is_json_with_its_status() {
    use reqwest::Method;
    let s = TestServer::start(&config(), &[]).await;
    let t = Some(TOKEN);
    // A bad pool, a bad endpoint, a bad backend.
    json_error(
        &s,
        Method::POST,
        "/api/v1/pools/nope/endpoints/192.0.2.1/drain",
        None,
        t,
        404,
        "no pool named",
    )
    .await;
    json_error(
        &s,
        Method::POST,
        "/api/v1/pools/eu/endpoints/192.0.2.99/drain",
        None,
        t,
        404,
        "192.0.2.99",
    )
    .await;
    json_error(
        &s,
        Method::GET,
        "/api/v1/pools/nope/health",
        None,
        None,
        404,
        "no pool named",
    )
    .await;
    json_error(
        &s,
        Method::POST,
        "/api/v1/backends/nope/servers/127.0.0.1:9/drain",
        None,
        t,
        404,
        "nope",
    )
    .await;
    // Bad JSON, and JSON of the wrong shape.
    json_error(
        &s,
        Method::POST,
        "/api/v1/pools/eu/endpoints/192.0.2.1/weight",
        Some("{\"weight\": "),
        t,
        400,
        "expected {\"weight\": N}",
    )
    .await;
    json_error(
        &s,
        Method::POST,
        "/api/v1/pools/eu/endpoints/192.0.2.1/weight",
        Some("{\"weight\": \"heavy\"}"),
        t,
        400,
        "weight",
    )
    .await;
    // A bad method: 405, the allowed ones named and in Allow.
    json_error(
        &s,
        Method::GET,
        "/api/v1/pools/eu/endpoints/192.0.2.1/drain",
        None,
        None,
        405,
        "allowed: POST",
    )
    .await;
    json_error(
        &s,
        Method::PUT,
        "/api/v1/status",
        None,
        t,
        405,
        "allowed: GET",
    )
    .await;
    // An unknown route.
    json_error(
        &s,
        Method::GET,
        "/api/v1/nothing-here",
        None,
        None,
        404,
        "no such admin endpoint",
    )
    .await;
    json_error(
        &s,
        Method::POST,
        "/api/v2/reload",
        None,
        t,
        404,
        "no such admin endpoint",
    )
    .await;
    // No token, a wrong token.
    json_error(
        &s,
        Method::POST,
        "/api/v1/reload",
        None,
        None,
        401,
        "bearer token",
    )
    .await;
    json_error(
        &s,
        Method::DELETE,
        "/api/v1/pools/eu/endpoints/192.0.2.1/weight",
        None,
        Some("wrong"),
        401,
        "bearer token",
    )
    .await;
    // explain: a missing parameter, a bad client, a bad type; a bad family.
    json_error(
        &s,
        Method::GET,
        "/api/v1/explain?name=www.example.test",
        None,
        None,
        400,
        "client",
    )
    .await;
    json_error(
        &s,
        Method::GET,
        "/api/v1/explain?name=www.example.test&client=not-an-ip",
        None,
        None,
        400,
        "not-an-ip",
    )
    .await;
    json_error(
        &s,
        Method::GET,
        "/api/v1/explain?name=www.example.test&client=192.0.2.7&type=BOGUS",
        None,
        None,
        400,
        "BOGUS",
    )
    .await;
    json_error(
        &s,
        Method::GET,
        "/api/v1/pools/eu/health?family=v9",
        None,
        None,
        400,
        "v9",
    )
    .await;
    // The 405 keeps its Allow header.
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(url(&s, "/api/v1/reload"))
        .send()
        .await
        .expect("GET reload");
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    s.stop().await;
}
