//! Reaching etcd as production does: authentication and TLS with client
//! certificates.

use super::*;

#[tokio::test]
async fn nodes_log_in_to_an_etcd_with_authentication() {
    let etcd = Etcd::start();
    // root user and role, then authentication on (etcd's own API).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for (path, body) in [
        (
            "/v3/auth/user/add",
            r#"{"name":"root","password":"s3cret"}"#,
        ),
        ("/v3/auth/role/add", r#"{"name":"root"}"#),
        ("/v3/auth/user/grant", r#"{"user":"root","role":"root"}"#),
        ("/v3/auth/enable", "{}"),
    ] {
        let r = http
            .post(format!("{}{path}", etcd.url()))
            .body(body)
            .send()
            .await
            .expect("etcd auth setup");
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    let (fleet, _a, _b) = fleet_of_three("auth", &etcd, 0.5).await;
    let login = |password: &str| format!("username = \"root\"\npassword = \"{password}\"\n");
    let n1 = fleet.node_with(1, &login("s3cret")).await;
    let n2 = fleet.node_with(2, &login("s3cret")).await;
    until(
        Duration::from_secs(10),
        "two authenticated vantages",
        async || vantages(&n1).await == 2 && vantages(&n2).await == 2,
    )
    .await;
    // A wrong password: the node cannot join, says so, and still answers.
    let n3 = fleet.node_with(3, &login("wrong")).await;
    let c = cluster(&n3).await;
    assert_eq!(c["connected"], false, "{c}");
    assert_eq!(
        answer(&n3, None).await,
        vec![A.parse::<IpAddr>().expect("ip")]
    );
    assert_eq!(vantages(&n1).await, 2, "n3 never counted");
    for n in [n1, n2, n3] {
        n.stop().await;
    }
}

#[tokio::test]
async fn nodes_speak_tls_to_etcd_with_client_certificates() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let pki = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, pem: String| {
        let path = pki.path().join(name);
        std::fs::write(&path, pem).expect("write pem");
        path
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("ca key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(names)
            .expect("params")
            .signed_by(&key, &issuer)
            .expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    let ca = write("ca.pem", ca_cert.pem());
    let (server_cert, server_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()]);
    let (client_cert, client_key) = leaf(vec!["geosteer".into()]);
    let etcd = Etcd::start_tls(
        ca.clone(),
        write("server.pem", server_cert),
        write("server-key.pem", server_key),
    );
    let client = write("client.pem", client_cert);
    let client_key = write("client-key.pem", client_key);
    let (fleet, _a, _b) = fleet_of_three("tls", &etcd, 0.5).await;
    assert!(fleet.etcd_url.starts_with("https://"));
    let tls = format!(
        "ca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        ca.display(),
        client.display(),
        client_key.display()
    );
    let n1 = fleet.node_with(1, &tls).await;
    let n2 = fleet.node_with(2, &tls).await;
    until(
        Duration::from_secs(10),
        "two vantages over TLS",
        async || vantages(&n1).await == 2 && vantages(&n2).await == 2,
    )
    .await;
    // Without a client certificate etcd turns the node away.
    let n3 = fleet
        .node_with(3, &format!("ca = \"{}\"\n", ca.display()))
        .await;
    assert_eq!(cluster(&n3).await["connected"], false);
    assert_eq!(vantages(&n1).await, 2, "n3 never counted");
    for n in [n1, n2, n3] {
        n.stop().await;
    }
}
