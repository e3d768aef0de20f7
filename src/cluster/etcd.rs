//! etcd: the few etcd v3 calls a fleet needs (lease grant / keep-alive /
//! revoke, batched puts and deletes in a transaction, a delete guarded by a
//! compare of the value, a prefix read with its revision, a prefix watch
//! from a revision), spoken through etcd's own v3 JSON gateway (`/v3/...`,
//! served on every client URL since etcd 3.4).
//!
//! Why not a gRPC client crate: `etcd-client` builds its protobuf code with
//! `protoc` at compile time, which a fresh machine lacks, and adds tonic and
//! prost (~40 crates) to every build of geosteer, fleet or not. The gateway
//! is the same API (the same request and response messages, as JSON) over
//! the HTTP client the probes already use. Keys and values are base64 in
//! JSON; 64-bit integers are strings.
//!
//! Every call has a deadline; a failed call tries the next client URL once.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::ClusterConfig;

/// Deadline of one unary call.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd unreachable: {0}")]
    Unreachable(String),
    #[error("etcd said: {0}")]
    Refused(String),
    #[error("etcd sent something unexpected: {0}")]
    Protocol(String),
}

/// One key and value read back from etcd.
#[derive(Debug, Clone, PartialEq)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
}

/// One change a watch delivers, in revision order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Put(Kv),
    Delete(String),
}

/// A write in a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// key, value, lease (0: none)
    Put(String, String, i64),
    Delete(String),
}

#[derive(Clone)]
pub struct Etcd {
    http: reqwest::Client,
    urls: Vec<String>,
    /// Index of the URL that answered last.
    current: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    credentials: Option<(String, String)>,
    token: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl Etcd {
    pub fn new(config: &ClusterConfig) -> Result<Etcd, String> {
        crate::probe::http::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .tcp_keepalive(Duration::from_secs(10));
        if let Some(ca) = &config.ca {
            let pem = std::fs::read(ca).map_err(|e| format!("cluster.ca {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("cluster.ca {}: {e}", ca.display()))?;
            builder = builder.tls_certs_only(certs);
        }
        if let (Some(cert), Some(key)) = (&config.cert, &config.key) {
            let mut pem =
                std::fs::read(cert).map_err(|e| format!("cluster.cert {}: {e}", cert.display()))?;
            pem.extend(
                std::fs::read(key).map_err(|e| format!("cluster.key {}: {e}", key.display()))?,
            );
            let id =
                reqwest::Identity::from_pem(&pem).map_err(|e| format!("cluster.cert/key: {e}"))?;
            builder = builder.identity(id);
        }
        let http = builder.build().map_err(|e| format!("etcd client: {e}"))?;
        Ok(Etcd {
            http,
            urls: config
                .etcd
                .iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            current: Default::default(),
            credentials: config.username.clone().zip(config.password.clone()),
            token: Default::default(),
        })
    }

    /// Logs in when credentials are configured (etcd's simple tokens expire;
    /// the session calls this each time it (re)connects).
    pub async fn authenticate(&self) -> Result<(), EtcdError> {
        let Some((name, password)) = &self.credentials else {
            return Ok(());
        };
        let reply = self
            .call(
                "/v3/auth/authenticate",
                json!({ "name": name, "password": password }),
            )
            .await?;
        let token = reply["token"]
            .as_str()
            .ok_or_else(|| EtcdError::Protocol("authenticate: no token".into()))?;
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.to_string());
        Ok(())
    }

    /// A lease of `ttl`; returns its id.
    pub async fn grant(&self, ttl: Duration) -> Result<i64, EtcdError> {
        let reply = self
            .call(
                "/v3/lease/grant",
                json!({ "TTL": ttl.as_secs().max(1).to_string() }),
            )
            .await?;
        int(&reply["ID"]).ok_or_else(|| EtcdError::Protocol("lease grant: no ID".into()))
    }

    /// Refreshes the lease; false when it no longer exists (expired).
    pub async fn keep_alive(&self, lease: i64) -> Result<bool, EtcdError> {
        let reply = self
            .call("/v3/lease/keepalive", json!({ "ID": lease.to_string() }))
            .await?;
        let result = reply.get("result").unwrap_or(&reply);
        Ok(int(&result["TTL"]).unwrap_or(0) > 0)
    }

    pub async fn revoke(&self, lease: i64) -> Result<(), EtcdError> {
        self.call("/v3/lease/revoke", json!({ "ID": lease.to_string() }))
            .await
            .map(drop)
    }

    /// Applies `writes` in transactions of at most [`MAX_TXN_OPS`]; returns
    /// how many transactions (etcd writes) it took.
    pub async fn write(&self, writes: &[Write]) -> Result<usize, EtcdError> {
        let mut txns = 0;
        for batch in writes.chunks(MAX_TXN_OPS) {
            let ops: Vec<Value> = batch
                .iter()
                .map(|w| match w {
                    Write::Put(k, v, lease) => {
                        let mut put = json!({ "key": B64.encode(k), "value": B64.encode(v) });
                        if *lease != 0 {
                            put["lease"] = json!(lease.to_string());
                        }
                        json!({ "request_put": put })
                    }
                    Write::Delete(k) => json!({ "request_delete_range": { "key": B64.encode(k) } }),
                })
                .collect();
            self.call("/v3/kv/txn", json!({ "success": ops })).await?;
            txns += 1;
        }
        Ok(txns)
    }

    /// Deletes `key` only if it still holds `value` (one transaction with a
    /// compare); returns whether it did.
    pub async fn delete_if(&self, key: &str, value: &[u8]) -> Result<bool, EtcdError> {
        let reply = self
            .call(
                "/v3/kv/txn",
                json!({
                    "compare": [{
                        "key": B64.encode(key),
                        "target": "VALUE",
                        "result": "EQUAL",
                        "value": B64.encode(value),
                    }],
                    "success": [{ "request_delete_range": { "key": B64.encode(key) } }],
                }),
            )
            .await?;
        Ok(reply["succeeded"].as_bool() == Some(true))
    }

    /// One key's value, if it exists.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EtcdError> {
        let reply = self
            .call("/v3/kv/range", json!({ "key": B64.encode(key) }))
            .await?;
        let Some(list) = reply.get("kvs") else {
            return Ok(None);
        };
        let kvs: Vec<RawKv> = serde_json::from_value(list.clone())
            .map_err(|e| EtcdError::Protocol(format!("get: {e}")))?;
        Ok(kvs.into_iter().find_map(RawKv::decode).map(|kv| kv.value))
    }

    /// Applies `writes` in one transaction only if `key` still holds
    /// `expected` (None: `key` does not exist); returns whether it did.
    pub async fn write_if(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        writes: &[Write],
    ) -> Result<bool, EtcdError> {
        let compare = match expected {
            Some(value) => json!({
                "key": B64.encode(key),
                "target": "VALUE",
                "result": "EQUAL",
                "value": B64.encode(value),
            }),
            None => json!({
                "key": B64.encode(key),
                "target": "CREATE",
                "result": "EQUAL",
                "create_revision": "0",
            }),
        };
        let ops: Vec<Value> = writes
            .iter()
            .map(|w| match w {
                Write::Put(k, v, _) => {
                    json!({ "request_put": { "key": B64.encode(k), "value": B64.encode(v) } })
                }
                Write::Delete(k) => json!({ "request_delete_range": { "key": B64.encode(k) } }),
            })
            .collect();
        let reply = self
            .call(
                "/v3/kv/txn",
                json!({ "compare": [compare], "success": ops }),
            )
            .await?;
        Ok(reply["succeeded"].as_bool() == Some(true))
    }

    /// Every key under `prefix`, and the store's revision they were read at.
    pub async fn range(&self, prefix: &str) -> Result<(i64, Vec<Kv>), EtcdError> {
        self.range_at(prefix)
            .await
            .map(|(header, kvs)| (header.revision, kvs))
    }

    /// Every key under `prefix`, and the response's header: the store's
    /// revision they were read at and the cluster's id.
    pub async fn range_at(&self, prefix: &str) -> Result<(Header, Vec<Kv>), EtcdError> {
        let reply = self
            .call(
                "/v3/kv/range",
                json!({ "key": B64.encode(prefix), "range_end": B64.encode(prefix_end(prefix)) }),
            )
            .await?;
        let revision = int(&reply["header"]["revision"])
            .ok_or_else(|| EtcdError::Protocol("range: no revision".into()))?;
        let cluster_id = match &reply["header"]["cluster_id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let kvs = match reply.get("kvs") {
            None => Vec::new(),
            Some(list) => serde_json::from_value::<Vec<RawKv>>(list.clone())
                .map_err(|e| EtcdError::Protocol(format!("range: {e}")))?
                .into_iter()
                .filter_map(RawKv::decode)
                .collect(),
        };
        Ok((
            Header {
                cluster_id,
                revision,
            },
            kvs,
        ))
    }

    /// Watches every key under `prefix` from revision `from` on.
    pub async fn watch(&self, prefix: &str, from: i64) -> Result<Watch, EtcdError> {
        let body = json!({ "create_request": {
            "key": B64.encode(prefix),
            "range_end": B64.encode(prefix_end(prefix)),
            "start_revision": from.to_string(),
        }});
        let url = format!("{}/v3/watch", self.url());
        let response = self
            .request(&url, &body)
            .send()
            .await
            .map_err(|e| self.failed(e))?;
        if !response.status().is_success() {
            return Err(EtcdError::Refused(format!(
                "watch: HTTP {}",
                response.status()
            )));
        }
        Ok(Watch {
            response,
            buffer: Vec::new(),
            revision: from - 1,
        })
    }

    fn url(&self) -> &str {
        let i = self.current.load(std::sync::atomic::Ordering::Relaxed) % self.urls.len().max(1);
        self.urls.get(i).map_or("", String::as_str)
    }

    /// Moves on to the next client URL after a failure.
    fn failed(&self, e: reqwest::Error) -> EtcdError {
        self.current
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        EtcdError::Unreachable(crate::probe::http::reason(&e))
    }

    fn request(&self, url: &str, body: &Value) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = self.token.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            req = req.header("authorization", token);
        }
        req
    }

    /// One unary call; on a transport failure, once more on the next URL.
    async fn call(&self, path: &str, body: Value) -> Result<Value, EtcdError> {
        let mut last = None;
        for _ in 0..self.urls.len().clamp(1, 2) {
            let url = format!("{}{path}", self.url());
            let sent = self.request(&url, &body).timeout(CALL_TIMEOUT).send().await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    last = Some(self.failed(e));
                    continue;
                }
            };
            let status = response.status();
            let bytes = response.bytes().await.map_err(|e| self.failed(e))?;
            let value: Value = serde_json::from_slice(&bytes)
                .map_err(|e| EtcdError::Protocol(format!("{path}: {e}")))?;
            if !status.is_success() || value.get("error").is_some() {
                let message = value["message"]
                    .as_str()
                    .or(value["error"].as_str())
                    .unwrap_or("error")
                    .to_string();
                return Err(EtcdError::Refused(format!(
                    "{path}: HTTP {status}: {message}"
                )));
            }
            return Ok(value);
        }
        Err(last.unwrap_or_else(|| EtcdError::Unreachable("no etcd URL".into())))
    }
}

/// What an etcd response's header says of the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// The etcd cluster's id (a wiped member started with the same
    /// settings gets the same one; a new cluster another).
    pub cluster_id: String,
    /// The store's revision.
    pub revision: i64,
}

/// An open watch: newline-separated JSON messages on one HTTP response.
pub struct Watch {
    response: reqwest::Response,
    buffer: Vec<u8>,
    /// The highest store revision its messages' headers named.
    revision: i64,
}

/// What one watch message says.
#[derive(Debug, PartialEq)]
pub enum WatchMessage {
    Events(Vec<Event>),
    /// Created, progress notifications: nothing to apply.
    Nothing,
    /// The watch ended (cancelled, or its revision was compacted): read the
    /// whole prefix again and watch anew.
    Ended(String),
}

impl Watch {
    /// The highest store revision the watch's messages named so far.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    fn note_revision(&mut self, line: &[u8]) {
        if let Ok(value) = serde_json::from_slice::<Value>(line) {
            let result = value.get("result").unwrap_or(&value);
            if let Some(r) = int(&result["header"]["revision"]) {
                self.revision = self.revision.max(r);
            }
        }
    }

    /// The next message; Err when the stream broke.
    pub async fn next(&mut self) -> Result<WatchMessage, EtcdError> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                self.note_revision(&line);
                return parse_watch_message(&line);
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) => {
                    if self.buffer.iter().all(u8::is_ascii_whitespace) {
                        return Err(EtcdError::Unreachable("watch stream closed".into()));
                    }
                    let line = std::mem::take(&mut self.buffer);
                    return parse_watch_message(&line);
                }
                Err(e) => {
                    return Err(EtcdError::Unreachable(format!(
                        "watch stream broke: {}",
                        crate::probe::http::reason(&e)
                    )));
                }
            }
        }
    }
}

/// Parses one gateway watch message.
pub fn parse_watch_message(line: &[u8]) -> Result<WatchMessage, EtcdError> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| EtcdError::Protocol(format!("watch: {e}")))?;
    if let Some(error) = value.get("error") {
        return Ok(WatchMessage::Ended(error.to_string()));
    }
    let result = value.get("result").unwrap_or(&value);
    if result["canceled"].as_bool() == Some(true)
        || int(&result["compact_revision"]).unwrap_or(0) > 0
    {
        let reason = result["cancel_reason"].as_str().unwrap_or("compacted");
        return Ok(WatchMessage::Ended(reason.to_string()));
    }
    let Some(events) = result.get("events") else {
        return Ok(WatchMessage::Nothing);
    };
    let raw: Vec<RawEvent> = serde_json::from_value(events.clone())
        .map_err(|e| EtcdError::Protocol(format!("watch events: {e}")))?;
    let events = raw
        .into_iter()
        .filter_map(|e| {
            let kv = e.kv.decode()?;
            Some(match e.kind.as_deref() {
                Some("DELETE") => Event::Delete(kv.key),
                _ => Event::Put(kv),
            })
        })
        .collect();
    Ok(WatchMessage::Events(events))
}

#[derive(Deserialize)]
struct RawKv {
    key: String,
    #[serde(default)]
    value: String,
}

impl RawKv {
    fn decode(self) -> Option<Kv> {
        let key = String::from_utf8(B64.decode(self.key).ok()?).ok()?;
        let value = B64.decode(self.value).ok()?;
        Some(Kv { key, value })
    }
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: Option<String>,
    kv: RawKv,
}

/// etcd's 64-bit integers come as strings in JSON (sometimes as numbers).
fn int(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// The end of the key range holding every key that starts with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key_after_the_prefix() {
        assert_eq!(prefix_end("/geosteer/"), b"/geosteer0".to_vec());
        assert_eq!(prefix_end("a"), b"b".to_vec());
    }

    #[test]
    fn watch_messages_as_the_gateway_sends_them() {
        let put = br#"{"result":{"header":{"revision":"3"},"events":[{"kv":{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"YmF6"}}]}}"#;
        assert_eq!(
            parse_watch_message(put).ok(),
            Some(WatchMessage::Events(vec![Event::Put(Kv {
                key: "foo".into(),
                value: b"baz".to_vec()
            })]))
        );
        let delete = br#"{"result":{"header":{"revision":"4"},"events":[{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"4"}}]}}"#;
        assert_eq!(
            parse_watch_message(delete).ok(),
            Some(WatchMessage::Events(vec![Event::Delete("foo".into())]))
        );
        let created = br#"{"result":{"header":{"revision":"2"},"created":true}}"#;
        assert_eq!(
            parse_watch_message(created).ok(),
            Some(WatchMessage::Nothing)
        );
        let compacted =
            br#"{"result":{"header":{"revision":"9"},"compact_revision":"5","canceled":true}}"#;
        assert!(matches!(
            parse_watch_message(compacted),
            Ok(WatchMessage::Ended(_))
        ));
        assert!(parse_watch_message(b"{not json").is_err());
    }
}
