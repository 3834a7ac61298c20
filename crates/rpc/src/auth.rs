//! JWT authentication of JSON-RPC, as Besu's `--rpc-http-authentication-*` options.
//!
//! Two layers share the work. [`AuthHttpLayer`] is an HTTP (tower) middleware in front of
//! both transports: it verifies an `Authorization: Bearer <jwt>` header (signature, `exp`,
//! and `nbf`/`iat` when present), answers HTTP 401 to a bad token, and stores the token's
//! [`Permissions`] in the request's extensions. jsonrpsee copies those extensions into every
//! call of the request (each call of a batch, and every message of a WebSocket connection,
//! whose upgrade request carried them), where [`AuthRpcLayer`] allows a call when its method
//! is in `authentication-methods-no-auth` or the permissions cover it, and otherwise answers
//! -40100 "Unauthorized". A request without a token reaches only the no-auth methods.

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT};
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse, MethodResponse};
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Request};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::{RpcConfig, RpcError};

/// Besu's JSON-RPC code for a call the caller is not authorized to make.
pub const UNAUTHORIZED_CODE: i32 = -40100;

/// Shortest accepted HS256 secret, in bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

/// Seconds of clock skew tolerated between the token issuer and this node.
const LEEWAY_SECS: u64 = 30;

/// Signature algorithm of `authentication-jwt-public-key-file` (a secret is always HS256).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (Besu's default).
    #[default]
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
}

impl JwtAlgorithm {
    fn algorithm(self) -> Algorithm {
        match self {
            Self::RS256 => Algorithm::RS256,
            Self::RS384 => Algorithm::RS384,
            Self::RS512 => Algorithm::RS512,
            Self::ES256 => Algorithm::ES256,
            Self::ES384 => Algorithm::ES384,
        }
    }

    fn is_rsa(self) -> bool {
        matches!(self, Self::RS256 | Self::RS384 | Self::RS512)
    }
}

/// The `-40100 "Unauthorized"` error.
pub fn unauthorized() -> ErrorObjectOwned {
    ErrorObject::owned(UNAUTHORIZED_CODE, "Unauthorized", None::<()>)
}

/// The `permissions` claim of a verified token, in Besu's format: `namespace:method`, where
/// either side may be `*` (`"*:*"`, `"eth:*"`, `"net:peerCount"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions(Vec<String>);

impl Permissions {
    /// Permissions from the claim's entries.
    pub fn new(entries: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self(entries.into_iter().map(Into::into).collect())
    }

    /// Whether these permissions allow calling `method` (e.g. `eth_blockNumber`, whose
    /// namespace is the part before the first `_`).
    pub fn permits(&self, method: &str) -> bool {
        let (namespace, name) = method.split_once('_').unwrap_or((method, ""));
        self.0.iter().any(|permission| {
            let Some((ns, m)) = permission.split_once(':') else {
                return false;
            };
            (ns == "*" || ns == namespace) && (m == "*" || (!name.is_empty() && m == name))
        })
    }
}

/// The claims this node reads; the registered ones are checked by `jsonwebtoken`.
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    permissions: Vec<String>,
    iat: Option<u64>,
}

/// Why a bearer token was refused (logged at debug, never sent).
#[derive(Debug, thiserror::Error)]
enum TokenError {
    #[error("Authorization header is not `Bearer <token>`")]
    NotBearer,
    #[error(transparent)]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("token issued in the future (iat {iat})")]
    IssuedInFuture { iat: u64 },
}

/// Verifies tokens against the configured key.
struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    fn new(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // Besu does not check audiences; tokens that carry one are still accepted.
        validation.validate_aud = false;
        validation.leeway = LEEWAY_SECS;
        Self { key, validation }
    }

    /// Verifies the `Authorization` header's value.
    fn verify_header(&self, value: &[u8]) -> Result<Permissions, TokenError> {
        let value = std::str::from_utf8(value).map_err(|_| TokenError::NotBearer)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(TokenError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(TokenError::NotBearer);
        }
        self.verify(token.trim())
    }

    fn verify(&self, token: &str) -> Result<Permissions, TokenError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)?.claims;
        if let Some(iat) = claims.iat
            && iat > now_secs().saturating_add(LEEWAY_SECS)
        {
            return Err(TokenError::IssuedInFuture { iat });
        }
        Ok(Permissions(claims.permissions))
    }
}

fn now_secs() -> u64 {
    crate::now_ms() / 1000
}

/// The two middleware layers of an authenticated server, built from [`RpcConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    pub(crate) http: AuthHttpLayer,
    pub(crate) rpc: AuthRpcLayer,
}

impl Auth {
    /// The layers, or `None` when `authentication-enabled` is off. Reads and checks the key
    /// file, so a bad one fails here, naming the option.
    pub(crate) fn from_config(config: &RpcConfig) -> Result<Option<Self>, RpcError> {
        if !config.authentication_enabled {
            return Ok(None);
        }
        let verifier = match (
            &config.authentication_jwt_secret_file,
            &config.authentication_jwt_public_key_file,
        ) {
            (Some(_), Some(_)) => return Err(RpcError::AuthKeyConflict),
            (None, None) => return Err(RpcError::AuthKeyMissing),
            (Some(path), None) => JwtVerifier::new(secret_key(path)?, Algorithm::HS256),
            (None, Some(path)) => {
                let algorithm = config.authentication_jwt_algorithm;
                JwtVerifier::new(public_key(path, algorithm)?, algorithm.algorithm())
            }
        };
        let no_auth = config
            .authentication_methods_no_auth
            .iter()
            .cloned()
            .collect();
        Ok(Some(Self {
            http: AuthHttpLayer {
                verifier: Arc::new(verifier),
            },
            rpc: AuthRpcLayer {
                no_auth: Arc::new(no_auth),
            },
        }))
    }
}

const SECRET_OPTION: &str = "[rpc] authentication-jwt-secret-file";
const PUBLIC_KEY_OPTION: &str = "[rpc] authentication-jwt-public-key-file";

fn read_key_file(option: &'static str, path: &Path) -> Result<Vec<u8>, RpcError> {
    std::fs::read(path).map_err(|source| RpcError::AuthKeyFile {
        option,
        path: path.to_path_buf(),
        source,
    })
}

fn malformed(option: &'static str, path: &Path, reason: impl Into<String>) -> RpcError {
    RpcError::AuthKeyMalformed {
        option,
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// An HS256 key from a file holding hex (optional `0x`) of at least [`MIN_SECRET_BYTES`].
fn secret_key(path: &Path) -> Result<DecodingKey, RpcError> {
    let text = read_key_file(SECRET_OPTION, path)?;
    let text = std::str::from_utf8(&text)
        .map_err(|_| malformed(SECRET_OPTION, path, "not hex text"))?
        .trim();
    let secret = alloy_primitives::hex::decode(text)
        .map_err(|e| malformed(SECRET_OPTION, path, format!("not hex: {e}")))?;
    if secret.len() < MIN_SECRET_BYTES {
        return Err(RpcError::AuthSecretTooShort {
            path: path.to_path_buf(),
            got: secret.len(),
            min: MIN_SECRET_BYTES,
        });
    }
    DecodingKey::from_secret(&secret).map_err(|e| malformed(SECRET_OPTION, path, e.to_string()))
}

/// A PEM public key for `algorithm`.
fn public_key(path: &Path, algorithm: JwtAlgorithm) -> Result<DecodingKey, RpcError> {
    let pem = read_key_file(PUBLIC_KEY_OPTION, path)?;
    let key = if algorithm.is_rsa() {
        DecodingKey::from_rsa_pem(&pem)
    } else {
        DecodingKey::from_ec_pem(&pem)
    };
    key.map_err(|e| {
        malformed(
            PUBLIC_KEY_OPTION,
            path,
            format!("not a PEM public key for {algorithm:?}: {e}"),
        )
    })
}

/// The HTTP layer: verifies the bearer token and stores its [`Permissions`].
#[derive(Debug, Clone)]
pub(crate) struct AuthHttpLayer {
    verifier: Arc<JwtVerifier>,
}

impl<S> tower::Layer<S> for AuthHttpLayer {
    type Service = AuthHttp<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthHttp {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service [`AuthHttpLayer`] builds.
#[derive(Debug, Clone)]
pub(crate) struct AuthHttp<S> {
    inner: S,
    verifier: Arc<JwtVerifier>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B> tower::Service<HttpRequest<B>> for AuthHttp<S>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = BoxFuture<Result<HttpResponse, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: HttpRequest<B>) -> Self::Future {
        // A client could not set an extension, but make sure nothing stale passes as verified.
        request.extensions_mut().remove::<Permissions>();
        if let Some(value) = request.headers().get(http::header::AUTHORIZATION) {
            match self.verifier.verify_header(value.as_bytes()) {
                Ok(permissions) => {
                    request.extensions_mut().insert(permissions);
                }
                Err(err) => {
                    tracing::debug!(%err, "refused JSON-RPC bearer token");
                    return Box::pin(std::future::ready(Ok(unauthorized_response())));
                }
            }
        }
        Box::pin(self.inner.call(request))
    }
}

/// HTTP 401 with the JSON-RPC error body Besu sends.
fn unauthorized_response() -> HttpResponse {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": UNAUTHORIZED_CODE, "message": "Unauthorized"},
    });
    let mut response = HttpResponse::new(HttpBody::from(body.to_string()));
    *response.status_mut() = http::StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer"),
    );
    response
}

/// The RPC layer: allows each call by the no-auth list or the request's [`Permissions`].
#[derive(Debug, Clone)]
pub(crate) struct AuthRpcLayer {
    no_auth: Arc<HashSet<String>>,
}

impl<S> tower::Layer<S> for AuthRpcLayer {
    type Service = AuthRpc<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthRpc {
            inner,
            no_auth: self.no_auth.clone(),
        }
    }
}

/// The service [`AuthRpcLayer`] builds.
#[derive(Debug, Clone)]
pub(crate) struct AuthRpc<S> {
    inner: S,
    no_auth: Arc<HashSet<String>>,
}

impl<S> AuthRpc<S> {
    fn allows(&self, request: &Request<'_>) -> bool {
        let method = request.method_name();
        self.no_auth.contains(method)
            || request
                .extensions()
                .get::<Permissions>()
                .is_some_and(|p| p.permits(method))
    }
}

impl<S> RpcServiceT for AuthRpc<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let allowed = self.allows(&request);
        let inner = self.inner.clone();
        async move {
            if allowed {
                inner.call(request).await
            } else {
                MethodResponse::error(request.id, unauthorized())
            }
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        // Refused calls become error entries, so the batch keeps one answer per call in order.
        for entry in batch.iter_mut() {
            let refused = match entry {
                Ok(BatchEntry::Call(request)) if !self.allows(request) => Some(request.id.clone()),
                _ => None,
            };
            if let Some(id) = refused {
                *entry = Err(BatchEntryErr::new(id, unauthorized()));
            }
        }
        let inner = self.inner.clone();
        async move { inner.batch(batch).await }
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        // Notifications are never dispatched to a method by jsonrpsee, so there is nothing
        // to authorize.
        let inner = self.inner.clone();
        async move { inner.notification(notification).await }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use jsonwebtoken::{EncodingKey, Header};

    use super::*;

    const SECRET: [u8; 32] = [7; 32];

    fn permits(permissions: &[&str], method: &str) -> bool {
        Permissions::new(permissions.iter().copied()).permits(method)
    }

    #[test]
    fn wildcard_permission_allows_every_method() {
        assert!(permits(&["*:*"], "eth_blockNumber"));
        assert!(permits(&["*:*"], "admin_peers"));
        assert!(permits(&["*:*"], "rpc"));
    }

    #[test]
    fn namespace_permission_allows_only_that_namespace() {
        assert!(permits(&["eth:*"], "eth_blockNumber"));
        assert!(permits(&["eth:*"], "eth_subscribe"));
        assert!(!permits(&["eth:*"], "net_version"));
        // The namespace is the part before the first `_`, not a prefix.
        assert!(!permits(&["eth:*"], "ethx_call"));
        assert!(!permits(&["et:*"], "eth_call"));
    }

    #[test]
    fn method_permission_allows_only_that_method() {
        assert!(permits(&["net:peerCount"], "net_peerCount"));
        assert!(!permits(&["net:peerCount"], "net_version"));
        assert!(!permits(&["net:peerCount"], "eth_peerCount"));
        assert!(permits(&["*:peerCount"], "net_peerCount"));
        assert!(permits(&["net:peerCount", "eth:*"], "eth_call"));
    }

    #[test]
    fn malformed_or_missing_permissions_allow_nothing() {
        assert!(!permits(&[], "eth_blockNumber"));
        assert!(!permits(&["eth"], "eth_blockNumber"));
        assert!(!permits(&["*"], "eth_blockNumber"));
        assert!(!permits(&["eth_blockNumber"], "eth_blockNumber"));
        assert!(!permits(&["EthBlockNumber:*"], "eth_blockNumber"));
        // A method name without `_` has no method part for a specific permission to match.
        assert!(!permits(&["rpc:"], "rpc"));
        assert!(permits(&["rpc:*"], "rpc"));
    }

    fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn enabled() -> RpcConfig {
        RpcConfig {
            authentication_enabled: true,
            ..RpcConfig::default()
        }
    }

    #[test]
    fn authentication_is_off_by_default() {
        let config = RpcConfig::default();
        assert!(!config.authentication_enabled);
        config.validate().unwrap();
        assert!(Auth::from_config(&config).unwrap().is_none());
    }

    #[test]
    fn enabled_without_a_key_file_is_refused() {
        let err = enabled().validate().unwrap_err();
        assert!(matches!(err, RpcError::AuthKeyMissing), "{err}");
        assert!(err.to_string().contains("authentication-jwt-secret-file"));
    }

    #[test]
    fn both_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = RpcConfig {
            authentication_jwt_secret_file: Some(write(dir.path(), "s", &"ab".repeat(32))),
            authentication_jwt_public_key_file: Some(write(dir.path(), "k", "x")),
            ..enabled()
        };
        let err = config.validate().unwrap_err();
        assert!(matches!(err, RpcError::AuthKeyConflict), "{err}");
    }

    #[test]
    fn missing_secret_file_is_refused_naming_the_option() {
        let config = RpcConfig {
            authentication_jwt_secret_file: Some("/nonexistent/jwt.hex".into()),
            ..enabled()
        };
        let err = config.validate().unwrap_err();
        assert!(matches!(err, RpcError::AuthKeyFile { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("authentication-jwt-secret-file"),
            "{message}"
        );
        assert!(message.contains("/nonexistent/jwt.hex"), "{message}");
    }

    #[test]
    fn short_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = RpcConfig {
            authentication_jwt_secret_file: Some(write(dir.path(), "s", &"ab".repeat(31))),
            ..enabled()
        };
        let err = config.validate().unwrap_err();
        assert!(
            matches!(err, RpcError::AuthSecretTooShort { got: 31, .. }),
            "{err}"
        );
    }

    #[test]
    fn non_hex_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = RpcConfig {
            authentication_jwt_secret_file: Some(write(dir.path(), "s", &"zz".repeat(32))),
            ..enabled()
        };
        let err = config.validate().unwrap_err();
        assert!(matches!(err, RpcError::AuthKeyMalformed { .. }), "{err}");
    }

    #[test]
    fn hex_secret_with_prefix_and_newline_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let hex = format!("0x{}\n", "ab".repeat(32));
        let config = RpcConfig {
            authentication_jwt_secret_file: Some(write(dir.path(), "s", &hex)),
            ..enabled()
        };
        config.validate().unwrap();
    }

    #[test]
    fn garbage_public_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = RpcConfig {
            authentication_jwt_public_key_file: Some(write(dir.path(), "k", "not a key")),
            ..enabled()
        };
        let err = config.validate().unwrap_err();
        assert!(matches!(err, RpcError::AuthKeyMalformed { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("authentication-jwt-public-key-file")
        );
    }

    #[test]
    fn algorithm_names_parse_as_besu_spells_them() {
        let config: RpcConfig =
            serde_json::from_str(r#"{"authentication-jwt-algorithm": "ES256"}"#).unwrap();
        assert_eq!(config.authentication_jwt_algorithm, JwtAlgorithm::ES256);
        assert_eq!(
            RpcConfig::default().authentication_jwt_algorithm,
            JwtAlgorithm::RS256
        );
        assert!(
            serde_json::from_str::<RpcConfig>(r#"{"authentication-jwt-algorithm": "none"}"#)
                .is_err()
        );
    }

    fn token(secret: &[u8], claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap()
    }

    fn verifier() -> JwtVerifier {
        JwtVerifier::new(DecodingKey::from_secret(&SECRET).unwrap(), Algorithm::HS256)
    }

    #[test]
    fn token_claims_are_checked() {
        let now = now_secs();
        let v = verifier();
        let ok = token(
            &SECRET,
            serde_json::json!({"exp": now + 60, "permissions": ["eth:*"]}),
        );
        assert_eq!(v.verify(&ok).unwrap(), Permissions::new(["eth:*"]));
        let header = format!("Bearer {ok}");
        assert!(v.verify_header(header.as_bytes()).is_ok());
        assert!(matches!(
            v.verify_header(ok.as_bytes()),
            Err(TokenError::NotBearer)
        ));

        let no_exp = token(&SECRET, serde_json::json!({"permissions": ["eth:*"]}));
        assert!(v.verify(&no_exp).is_err(), "exp is required");
        let expired = token(&SECRET, serde_json::json!({"exp": now - 3600}));
        assert!(v.verify(&expired).is_err());
        let not_yet = token(
            &SECRET,
            serde_json::json!({"exp": now + 7200, "nbf": now + 3600}),
        );
        assert!(v.verify(&not_yet).is_err());
        let future_iat = token(
            &SECRET,
            serde_json::json!({"exp": now + 7200, "iat": now + 3600}),
        );
        assert!(matches!(
            v.verify(&future_iat),
            Err(TokenError::IssuedInFuture { .. })
        ));
        let other = token(&[8; 32], serde_json::json!({"exp": now + 60}));
        assert!(v.verify(&other).is_err());
        // No permissions claim: authenticated, but allowed only the no-auth methods.
        let bare = token(&SECRET, serde_json::json!({"exp": now + 60}));
        assert_eq!(v.verify(&bare).unwrap(), Permissions::default());
    }

    /// A P-256 test key pair made with `openssl genpkey -algorithm EC`.
    const EC_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYAV8MBRm5fwanP68
VaaKdlXqA04qzarluPfKlI5TU/mhRANCAAQIirviRxMWBk5sxhxHZMyTAIcB47Mr
hokcKPKiUjpXw3EHWYSzYB4eachSxIcNl1LUnBbU+X0fwEok1LpIbcg6
-----END PRIVATE KEY-----
";
    const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAECIq74kcTFgZObMYcR2TMkwCHAeOz
K4aJHCjyolI6V8NxB1mEs2AeHmnIUsSHDZdS1JwW1Pl9H8BKJNS6SG3IOg==
-----END PUBLIC KEY-----
";

    #[test]
    fn es256_public_key_verifies_tokens_of_its_private_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let config = RpcConfig {
            authentication_jwt_public_key_file: Some(write(dir.path(), "k.pem", EC_PUBLIC)),
            authentication_jwt_algorithm: JwtAlgorithm::ES256,
            ..enabled()
        };
        let auth = Auth::from_config(&config).unwrap().unwrap();
        let claims = serde_json::json!({"exp": now_secs() + 60, "permissions": ["*:*"]});
        let signed = jsonwebtoken::encode(
            &Header::new(Algorithm::ES256),
            &claims,
            &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(
            auth.http.verifier.verify(&signed).unwrap(),
            Permissions::new(["*:*"])
        );
        // An HS256 token must not pass against a public key (algorithm confusion).
        let hs = token(EC_PUBLIC.as_bytes(), claims);
        assert!(auth.http.verifier.verify(&hs).is_err());
    }

    #[test]
    fn public_key_of_another_algorithm_family_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = RpcConfig {
            authentication_jwt_public_key_file: Some(write(dir.path(), "k.pem", EC_PUBLIC)),
            authentication_jwt_algorithm: JwtAlgorithm::RS256,
            ..enabled()
        };
        let err = config.validate().unwrap_err();
        assert!(matches!(err, RpcError::AuthKeyMalformed { .. }), "{err}");
    }

    #[test]
    fn unsigned_token_is_refused() {
        // {"alg":"none"} . {"exp": far future, "permissions": ["*:*"]} . (no signature)
        let header = "eyJhbGciOiJub25lIn0";
        let claims = "eyJleHAiOjk5OTk5OTk5OTksInBlcm1pc3Npb25zIjpbIio6KiJdfQ";
        assert!(verifier().verify(&format!("{header}.{claims}.")).is_err());
    }
}
