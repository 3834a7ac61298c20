//! JWT authentication of JSON-RPC on a real node: tokens are checked on the HTTP request
//! (401 for a bad one) and each call, batch entry and WebSocket message is checked against
//! the token's permissions and the no-auth methods.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

mod common;
use common::{WAIT, blocking, genesis, post_raw};

use healthchain_node::{NodeConfig, NodeHandle, launch};
use jsonrpsee_core::client::{ClientT, Error as ClientError};
use jsonrpsee_core::rpc_params;
use jsonrpsee_ws_client::{HeaderMap, HeaderValue, WsClientBuilder};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The shared HS256 secret the node is configured with.
const SECRET: [u8; 32] = [0x5a; 32];

/// The method callable without a token in these tests.
const NO_AUTH: &str = "web3_clientVersion";

/// The common config with JWT authentication on (HS256, [`SECRET`]).
fn config(datadir: &std::path::Path) -> NodeConfig {
    let mut config = common::config(datadir);
    let secret = datadir.join("jwt.hex");
    std::fs::write(
        &secret,
        format!("0x{}\n", alloy_primitives::hex::encode(SECRET)),
    )
    .unwrap();
    config.rpc.authentication_enabled = true;
    config.rpc.authentication_jwt_secret_file = Some(secret);
    config.rpc.authentication_methods_no_auth = vec![NO_AUTH.to_string()];
    config
}

async fn start(datadir: &std::path::Path) -> NodeHandle {
    launch(config(datadir), Some(genesis())).await.unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token_with(secret: &[u8], exp: u64, permissions: &[&str]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"exp": exp, "iat": now(), "permissions": permissions}),
        &EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap()
}

/// A token from the node's secret, valid for an hour.
fn token(permissions: &[&str]) -> String {
    token_with(&SECRET, now() + 3600, permissions)
}

/// Posts a JSON body with an optional bearer token; returns the status and parsed body.
fn post(addr: SocketAddr, token: Option<&str>, body: &Value) -> (u16, Value) {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let (status, body) = post_raw(addr, &auth, body.to_string().as_bytes());
    let body = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, body)
}

fn call(method: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": []})
}

/// One call over HTTP that must get HTTP 200; returns the JSON-RPC response.
fn rpc(addr: SocketAddr, token: Option<&str>, method: &str) -> Value {
    let (status, body) = post(addr, token, &call(method));
    assert_eq!(status, 200, "{method}: {body}");
    body
}

fn assert_ok(response: &Value) {
    assert!(
        response.get("error").is_none() && response.get("result").is_some(),
        "expected a result, got {response}"
    );
}

fn assert_unauthorized(response: &Value) {
    assert_eq!(response["error"]["code"], -40100, "{response}");
    assert_eq!(response["error"]["message"], "Unauthorized", "{response}");
}

/// The exact 401 answer Besu gives to a bad token.
fn assert_http_401(addr: SocketAddr, token: &str) {
    let (status, body) = post(addr, Some(token), &call(NO_AUTH));
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body,
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": -40100, "message": "Unauthorized"}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_calls_need_a_token_that_permits_their_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let addr = node.http_addr.unwrap();
    blocking(move || {
        // No token: only the no-auth method answers.
        assert_unauthorized(&rpc(addr, None, "eth_blockNumber"));
        assert_ok(&rpc(addr, None, NO_AUTH));

        // `eth:*` opens eth, not net; the no-auth method still works.
        let eth = token(&["eth:*"]);
        assert_ok(&rpc(addr, Some(&eth), "eth_blockNumber"));
        assert_unauthorized(&rpc(addr, Some(&eth), "net_version"));
        assert_ok(&rpc(addr, Some(&eth), NO_AUTH));

        // A single-method permission opens only that method.
        let peer_count = token(&["net:peerCount"]);
        assert_ok(&rpc(addr, Some(&peer_count), "net_peerCount"));
        assert_unauthorized(&rpc(addr, Some(&peer_count), "net_version"));

        // `*:*` opens everything.
        let all = token(&["*:*"]);
        for method in [
            "eth_blockNumber",
            "net_version",
            "txpool_status",
            "admin_peers",
        ] {
            let response = rpc(addr, Some(&all), method);
            assert_ne!(response["error"]["code"], -40100, "{method}: {response}");
        }
        assert_ok(&rpc(addr, Some(&all), "net_version"));

        // A token without a permissions claim is valid but opens nothing.
        assert_unauthorized(&rpc(addr, Some(&token(&[])), "eth_blockNumber"));
    })
    .await;
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_calls_are_authorized_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let addr = node.http_addr.unwrap();
    blocking(move || {
        let batch = json!([
            {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
            {"jsonrpc": "2.0", "id": 2, "method": "net_version", "params": []},
            {"jsonrpc": "2.0", "id": 3, "method": NO_AUTH, "params": []},
        ]);
        let by_id = |body: Value| {
            let mut entries = body.as_array().unwrap_or_else(|| panic!("{body}")).clone();
            assert_eq!(entries.len(), 3, "{body}");
            entries.sort_by_key(|e| e["id"].as_u64());
            entries
        };

        let (status, body) = post(addr, Some(&token(&["eth:*"])), &batch);
        assert_eq!(status, 200);
        let entries = by_id(body);
        assert_ok(&entries[0]);
        assert_unauthorized(&entries[1]);
        assert_ok(&entries[2]);

        let (status, body) = post(addr, None, &batch);
        assert_eq!(status, 200);
        let entries = by_id(body);
        assert_unauthorized(&entries[0]);
        assert_unauthorized(&entries[1]);
        assert_ok(&entries[2]);
    })
    .await;
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_get_http_401() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let addr = node.http_addr.unwrap();
    blocking(move || {
        assert_http_401(addr, &token_with(&[0x11; 32], now() + 3600, &["*:*"]));
        assert_http_401(addr, &token_with(&SECRET, now() - 3600, &["*:*"]));
        assert_http_401(addr, "not-a-jwt");
        // Not a bearer token at all.
        let (status, _) = post_with_header(addr, "Authorization: Basic dXNlcjpwYXNz\r\n");
        assert_eq!(status, 401);
    })
    .await;
    node.shutdown().await.unwrap();
}

fn post_with_header(addr: SocketAddr, header: &str) -> (u16, String) {
    post_raw(addr, header, call(NO_AUTH).to_string().as_bytes())
}

async fn ws_client(
    addr: SocketAddr,
    token: Option<&str>,
) -> Result<jsonrpsee_ws_client::WsClient, ClientError> {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
    }
    WsClientBuilder::default()
        .set_headers(headers)
        .request_timeout(WAIT)
        .build(format!("ws://{addr}"))
        .await
}

fn unauthorized_code(result: Result<Value, ClientError>) -> i32 {
    match result {
        Err(ClientError::Call(err)) => err.code(),
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_connections_carry_the_upgrade_requests_token() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let addr = node.ws_addr.unwrap();

    // No token: the connection opens, but only the no-auth method answers.
    let anonymous = ws_client(addr, None).await.unwrap();
    let code = unauthorized_code(anonymous.request("eth_blockNumber", rpc_params![]).await);
    assert_eq!(code, -40100);
    let _: Value = anonymous.request(NO_AUTH, rpc_params![]).await.unwrap();

    // A valid token covers every message of the connection, within its permissions.
    let eth = ws_client(addr, Some(&token(&["eth:*"]))).await.unwrap();
    for _ in 0..2 {
        let _: Value = eth.request("eth_blockNumber", rpc_params![]).await.unwrap();
    }
    let code = unauthorized_code(eth.request("net_version", rpc_params![]).await);
    assert_eq!(code, -40100);

    // A bad token is refused at the upgrade.
    let forged = token_with(&[0x11; 32], now() + 3600, &["*:*"]);
    let err = ws_client(addr, Some(&forged)).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");

    node.shutdown().await.unwrap();
}
