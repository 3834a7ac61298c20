//! The blob service: the node's encrypted record store served over HTTP to signed
//! requests that the chain's read rules allow, and replicated to peers over libp2p.
//!
//! HTTP (its own port, `[blobs] http-addr`):
//! - `PUT /blobs/<cid>`: upload (streamed; refused over `max-blob-bytes` or when the bytes
//!   are not the CID's). The signer must hold an active role in `HealthRegistry`.
//! - `GET /blobs/<cid>`: the blob, streamed, with the requester's key wrap in the
//!   `x-healthchain-key` header. The signer must pass `PatientRecord.canRead(signer, record)`
//!   at the head, and the record must reference this CID.
//! - `GET /keys/<cid>`: the requester's key wrap alone, on the same check.
//! - `PUT /keys/<cid>`: store a key wrap for `x-healthchain-reader`; the signer must be the
//!   record's patient or author (the parties that hold the content key).
//!
//! Every HTTP decision goes to the audit log. A blob or wrap the node lacks is fetched
//! from its peers by CID, verified and kept; a new blob or wrap is announced on the blob
//! topic so peers replicate it.

use std::collections::HashSet;
use std::convert::Infallible;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use alloy_primitives::{Address, Bytes as AlloyBytes, aliases::U40};
use alloy_sol_types::SolCall;
use bytes::Bytes;
use healthchain_blobs::request::{
    HEADER_EXPIRES, HEADER_KEY, HEADER_READER, HEADER_RECORD, HEADER_SIGNATURE,
};
use healthchain_blobs::{
    Action, Announcement, AuditAction, AuditEvent, AuditLog, BlobRequest, BlobStore, Cid,
    StoreError, WrappedKey,
};
use healthchain_chainspec::ChainConfig;
use healthchain_contracts::{HealthRegistry, PatientRecord};
use healthchain_contracts::{RECORDS_ADDRESS, REGISTRY_ADDRESS};
use healthchain_network::{NetworkHandle, PeerId, SyncRequest, SyncResponse};
use healthchain_storage_mdbx::MdbxStore;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::NodeError;

/// Gas for one read-rules call.
const VIEW_GAS: u64 = 10_000_000;
/// Bytes per streamed frame of a served blob.
const SERVE_CHUNK: usize = 256 * 1024;

/// `[blobs]`: the encrypted record store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct BlobsConfig {
    /// Keep a blob store and replicate blobs with peers.
    pub enabled: bool,
    /// Serve the blob HTTP API (off unless asked for, like JSON-RPC in Besu; `genesis new`
    /// and `dev` turn it on).
    pub http_enabled: bool,
    /// Its listen address.
    pub http_addr: SocketAddr,
    /// Largest blob accepted, bytes.
    pub max_blob_bytes: u64,
    /// Where blobs live (default `<datadir>/blobs`).
    pub dir: Option<PathBuf>,
    /// The `HealthRegistry` whose roles may upload (default: the genesis one, 0x…1001).
    pub registry_contract: Address,
    /// The `PatientRecord` whose read rules decide who is served (default: 0x…1002).
    pub records_contract: Address,
}

impl Default for BlobsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            http_enabled: false,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8547)),
            max_blob_bytes: 64 * 1024 * 1024,
            dir: None,
            registry_contract: REGISTRY_ADDRESS,
            records_contract: RECORDS_ADDRESS,
        }
    }
}

/// A request the service refuses, and how it answers.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    reason: String,
}

impl Refusal {
    fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }

    fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, reason)
    }

    fn internal(reason: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, reason.to_string())
    }
}

impl From<StoreError> for Refusal {
    fn from(err: StoreError) -> Self {
        let status = match err {
            StoreError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            StoreError::CidMismatch { .. } => StatusCode::BAD_REQUEST,
            StoreError::Corrupt { .. } | StoreError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, err.to_string())
    }
}

/// The blob store with what it needs to decide and replicate.
pub(crate) struct BlobService {
    registry: Address,
    records: Address,
    store: BlobStore,
    audit: AuditLog,
    chain_store: Arc<MdbxStore>,
    chain: Arc<ChainConfig>,
    network: Option<NetworkHandle>,
    fetching: parking_lot::Mutex<HashSet<String>>,
}

impl std::fmt::Debug for BlobService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobService").finish_non_exhaustive()
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

fn full(status: StatusCode, body: impl Into<Bytes>, content_type: &str) -> Response<Body> {
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        content_type.parse().expect("static content type"),
    );
    response
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    full(status, value.to_string(), "application/json")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The name a peer asks for: a blob, or one reader's wrap of its key (`<cid>/<address>`).
fn parse_name(name: &str) -> Option<(Cid, Option<Address>)> {
    match name.split_once('/') {
        Some((cid, reader)) => Some((cid.parse().ok()?, Some(reader.parse().ok()?))),
        None => Some((name.parse().ok()?, None)),
    }
}

impl BlobService {
    /// Opens the store and its audit log under `dir`.
    pub(crate) fn open(
        config: &BlobsConfig,
        dir: PathBuf,
        chain_store: Arc<MdbxStore>,
        chain: Arc<ChainConfig>,
        network: Option<NetworkHandle>,
    ) -> Result<Arc<Self>, NodeError> {
        let blobs = |e: &dyn std::fmt::Display| NodeError::Blobs(e.to_string());
        let store = BlobStore::open(&dir, config.max_blob_bytes).map_err(|e| blobs(&e))?;
        let audit = AuditLog::open(dir.join("audit.log")).map_err(|e| blobs(&e))?;
        Ok(Arc::new(Self {
            registry: config.registry_contract,
            records: config.records_contract,
            store,
            audit,
            chain_store,
            chain,
            network,
            fetching: parking_lot::Mutex::new(HashSet::new()),
        }))
    }

    fn audit(&self, action: AuditAction, event: AuditEvent) {
        if let Err(err) = self.audit.record(action, event) {
            tracing::error!(%err, "cannot write the blob audit log");
        }
    }

    fn view(&self, to: Address, data: Vec<u8>) -> Result<AlloyBytes, String> {
        healthchain_evm::view_at_head(
            &self.chain,
            self.chain_store.as_ref(),
            to,
            data.into(),
            VIEW_GAS,
        )
        .map_err(|e| e.to_string())
    }

    /// The record `id`, if it exists.
    fn record(&self, id: u64) -> Result<PatientRecord::Record, Refusal> {
        let id40 = U40::try_from(id).map_err(|_| {
            Refusal::new(StatusCode::BAD_REQUEST, format!("record id {id} too large"))
        })?;
        let out = self
            .view(
                self.records,
                PatientRecord::healthRecordGetCall { id: id40 }.abi_encode(),
            )
            .map_err(|_| {
                Refusal::new(StatusCode::NOT_FOUND, format!("no record #{id} on chain"))
            })?;
        PatientRecord::healthRecordGetCall::abi_decode_returns(&out).map_err(Refusal::internal)
    }

    /// The record must exist and name `cid`.
    fn record_for(&self, id: u64, cid: &Cid) -> Result<PatientRecord::Record, Refusal> {
        let record = self.record(id)?;
        if record.cid != cid.to_string() {
            return Err(Refusal::forbidden(format!(
                "record #{id} does not reference blob {cid}"
            )));
        }
        Ok(record)
    }

    fn check_put(&self, signer: Address) -> Result<(), Refusal> {
        let out = self
            .view(
                self.registry,
                HealthRegistry::roleOfCall { account: signer }.abi_encode(),
            )
            .map_err(Refusal::internal)?;
        let role =
            HealthRegistry::roleOfCall::abi_decode_returns(&out).map_err(Refusal::internal)?;
        if role.role == 0 || !role.active {
            return Err(Refusal::forbidden(format!(
                "{signer} has no active role in the health registry and may not upload"
            )));
        }
        Ok(())
    }

    fn check_get(&self, signer: Address, cid: &Cid, id: u64) -> Result<(), Refusal> {
        self.record_for(id, cid)?;
        let out = self
            .view(
                self.records,
                PatientRecord::canReadCall {
                    reader: signer,
                    id: U40::from(id),
                }
                .abi_encode(),
            )
            .map_err(Refusal::internal)?;
        if !PatientRecord::canReadCall::abi_decode_returns(&out).map_err(Refusal::internal)? {
            return Err(Refusal::forbidden(format!(
                "{signer} may not read record #{id}: no role, consent or grant (or it expired or was revoked)"
            )));
        }
        Ok(())
    }

    fn check_share(&self, signer: Address, cid: &Cid, id: u64) -> Result<(), Refusal> {
        let record = self.record_for(id, cid)?;
        if signer != record.patient && signer != record.author {
            return Err(Refusal::forbidden(format!(
                "only record #{id}'s patient or author may share its key"
            )));
        }
        Ok(())
    }

    fn announce(&self, announcement: &Announcement) {
        if let Some(network) = &self.network {
            network.publish(healthchain_network::Topic::Blobs, announcement.encode());
        }
    }

    /// Fetches `name` (a blob, or `<cid>/<reader>` for a wrap) from peers, `source` first;
    /// verifies and keeps it. Returns whether it is now here.
    async fn fetch_from_peers(
        self: &Arc<Self>,
        cid: Cid,
        reader: Option<Address>,
        source: Option<PeerId>,
    ) -> bool {
        let Some(network) = self.network.clone() else {
            return false;
        };
        let name = match reader {
            Some(reader) => format!("{cid}/{reader:#x}"),
            None => cid.to_string(),
        };
        if !self.fetching.lock().insert(name.clone()) {
            // Another fetch of it is under way (an announcement's): wait for that one.
            for _ in 0..600 {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                if !self.fetching.lock().contains(&name) {
                    break;
                }
            }
            return match reader {
                Some(reader) => matches!(self.store.key(&cid, reader), Ok(Some(_))),
                None => self.store.contains(&cid),
            };
        }
        let mut peers: Vec<PeerId> = network.peers().into_iter().map(|p| p.peer_id).collect();
        if let Some(source) = source {
            peers.retain(|p| *p != source);
            peers.insert(0, source);
        }
        let mut done = false;
        for peer in peers {
            let fetched = match reader {
                Some(reader) => self.fetch_key(&network, peer, &name, cid, reader).await,
                None => self.fetch_blob(&network, peer, cid).await,
            };
            match fetched {
                Ok(()) => {
                    tracing::info!(%name, %peer, "replicated from peer");
                    done = true;
                    break;
                }
                Err(reason) => tracing::debug!(%name, %peer, %reason, "peer could not supply"),
            }
        }
        self.fetching.lock().remove(&name);
        done
    }

    async fn fetch_key(
        &self,
        network: &NetworkHandle,
        peer: PeerId,
        name: &str,
        cid: Cid,
        reader: Address,
    ) -> Result<(), String> {
        let request = SyncRequest::Blob {
            cid: name.to_string(),
            offset: 0,
            length: healthchain_blobs::envelope::WRAPPED_KEY_LEN as u32,
        };
        match network
            .request(peer, request)
            .await
            .map_err(|e| e.to_string())?
        {
            SyncResponse::BlobChunk { data, .. } => {
                let wrap = WrappedKey::from_slice(&data).map_err(|e| e.to_string())?;
                self.store
                    .put_key(&cid, reader, &wrap)
                    .map_err(|e| e.to_string())?;
                Ok(())
            }
            SyncResponse::Refused(reason) => Err(reason),
            _ => Err("unexpected answer".into()),
        }
    }

    async fn fetch_blob(
        &self,
        network: &NetworkHandle,
        peer: PeerId,
        cid: Cid,
    ) -> Result<(), String> {
        let mut writer = self.store.writer().map_err(|e| e.to_string())?;
        let mut offset = 0u64;
        loop {
            let request = SyncRequest::Blob {
                cid: cid.to_string(),
                offset,
                length: healthchain_network::sync::MAX_BLOB_CHUNK,
            };
            match network
                .request(peer, request)
                .await
                .map_err(|e| e.to_string())?
            {
                SyncResponse::BlobChunk { total, data } => {
                    if total > self.store.max_bytes() {
                        return Err(format!("blob of {total} bytes is over the limit"));
                    }
                    if data.is_empty() && offset < total {
                        return Err("peer sent an empty chunk".into());
                    }
                    writer.write(&data).map_err(|e| e.to_string())?;
                    offset += data.len() as u64;
                    if offset >= total {
                        break;
                    }
                }
                SyncResponse::Refused(reason) => return Err(reason),
                _ => return Err("unexpected answer".into()),
            }
        }
        // The CID check: a peer that sends other bytes is caught here.
        writer.finish(Some(&cid)).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Answers a peer's chunk request (blocking: reads files).
    pub(crate) fn answer_peer(&self, name: &str, offset: u64, length: u32) -> SyncResponse {
        let Some((cid, reader)) = parse_name(name) else {
            return SyncResponse::Refused(format!("{name:?} is not a blob or key name"));
        };
        let answer = match reader {
            Some(reader) => self
                .store
                .key(&cid, reader)
                .map(|key| key.map(|k| (k.0.len() as u64, k.0.to_vec()))),
            None => {
                // Check the whole before the first chunk goes out.
                if offset == 0
                    && let Err(err) = self.store.verify(&cid)
                {
                    return SyncResponse::Refused(err.to_string());
                }
                self.store.read_range(&cid, offset, length)
            }
        };
        match answer {
            Ok(Some((total, data))) => SyncResponse::BlobChunk { total, data },
            Ok(None) => SyncResponse::Refused(format!("{name} is not here")),
            Err(err) => SyncResponse::Refused(err.to_string()),
        }
    }

    /// A blob-topic announcement from `source`: replicate what it names.
    pub(crate) fn on_announcement(self: &Arc<Self>, data: &[u8], source: PeerId) -> bool {
        let Ok(announcement) = Announcement::decode(data) else {
            return false;
        };
        match announcement {
            Announcement::Stored { cid, size } => {
                if size <= self.store.max_bytes() && !self.store.contains(&cid) {
                    let service = self.clone();
                    tokio::spawn(async move {
                        service.fetch_from_peers(cid, None, Some(source)).await;
                    });
                }
            }
            Announcement::Key { cid, reader, wrap } => {
                let Ok(wrap) = WrappedKey::from_slice(&wrap) else {
                    return false;
                };
                if let Err(err) = self.store.put_key(&cid, reader, &wrap) {
                    tracing::warn!(%err, "cannot store a replicated key wrap");
                }
            }
        }
        true
    }

    /// The signed request in `headers` for `action` on `cid`, and its signer.
    fn signed(
        &self,
        headers: &hyper::HeaderMap,
        action: Action,
        cid: Cid,
    ) -> Result<(BlobRequest, Address), Refusal> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let bad = |reason: String| Refusal::new(StatusCode::BAD_REQUEST, reason);
        let number = |name: &str| -> Result<u64, Refusal> {
            header(name)
                .ok_or_else(|| bad(format!("missing header {name}")))?
                .parse()
                .map_err(|_| bad(format!("header {name} is not a number")))
        };
        let record = if action == Action::Put {
            0
        } else {
            number(HEADER_RECORD)?
        };
        let reader = match action {
            Action::Share => Some(
                header(HEADER_READER)
                    .and_then(|r| r.parse::<Address>().ok())
                    .ok_or_else(|| bad(format!("missing or bad header {HEADER_READER}")))?,
            ),
            _ => None,
        };
        let request = BlobRequest {
            action,
            chain_id: self.chain.chain_id,
            cid,
            record,
            reader,
            expires: number(HEADER_EXPIRES)?,
        };
        let signature = header(HEADER_SIGNATURE)
            .ok_or_else(|| bad(format!("missing header {HEADER_SIGNATURE}")))?;
        let signer = request
            .signer(signature, now())
            .map_err(|e| Refusal::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
        Ok((request, signer))
    }

    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Self) -> T + Send + 'static,
    ) -> Result<T, Refusal> {
        let service = self.clone();
        tokio::task::spawn_blocking(move || f(&service))
            .await
            .map_err(Refusal::internal)
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        let path = request.uri().path().to_string();
        let route = path
            .strip_prefix("/blobs/")
            .map(|c| (c, false))
            .or_else(|| path.strip_prefix("/keys/").map(|c| (c, true)));
        let Some((cid_text, keys)) = route else {
            return json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"error": "paths are /blobs/<cid> and /keys/<cid>"}),
            );
        };
        let cid: Cid = match cid_text.parse() {
            Ok(cid) => cid,
            Err(err) => {
                return json(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({"error": err.to_string()}),
                );
            }
        };
        let method = request.method().clone();
        let action = match (&method, keys) {
            (&Method::PUT, false) => Action::Put,
            (&Method::GET, _) => Action::Get,
            (&Method::PUT, true) => Action::Share,
            _ => {
                return json(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &serde_json::json!({"error": "use GET or PUT"}),
                );
            }
        };
        let (signed, signer) = match self.signed(request.headers(), action, cid) {
            Ok(signed) => signed,
            Err(refusal) => return self.refuse(refusal, None, cid, None),
        };
        let record = (action != Action::Put).then_some(signed.record);
        let result = match action {
            Action::Put => self.clone().put(request, signer, cid).await,
            Action::Share => self.clone().share(request, signer, cid, signed).await,
            Action::Get => self.clone().get(signer, cid, signed.record, keys).await,
        };
        result.unwrap_or_else(|refusal| self.refuse(refusal, Some(signer), cid, record))
    }

    fn refuse(
        &self,
        refusal: Refusal,
        actor: Option<Address>,
        cid: Cid,
        record: Option<u64>,
    ) -> Response<Body> {
        tracing::info!(%cid, ?actor, reason = %refusal.reason, "blob request refused");
        self.audit(
            AuditAction::Refuse,
            AuditEvent {
                actor,
                cid: Some(cid),
                record,
                reader: None,
                detail: Some(refusal.reason.clone()),
            },
        );
        json(
            refusal.status,
            &serde_json::json!({"error": refusal.reason}),
        )
    }

    async fn put(
        self: Arc<Self>,
        request: Request<Incoming>,
        signer: Address,
        cid: Cid,
    ) -> Result<Response<Body>, Refusal> {
        self.blocking(move |s| s.check_put(signer)).await??;
        let max = self.store.max_bytes();
        if let Some(len) = request
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            && len > max
        {
            return Err(StoreError::TooLarge { limit: max }.into());
        }
        let mut writer = self.store.writer()?;
        let mut body = request.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                writer.write(&data)?;
            }
        }
        let size = writer.len();
        let (cid, new) = tokio::task::spawn_blocking(move || writer.finish(Some(&cid)))
            .await
            .map_err(Refusal::internal)??;
        self.audit(
            AuditAction::Upload,
            AuditEvent {
                actor: Some(signer),
                cid: Some(cid),
                detail: Some(format!("{size} bytes")),
                ..AuditEvent::default()
            },
        );
        if new {
            self.announce(&Announcement::Stored { cid, size });
        }
        Ok(json(
            if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            &serde_json::json!({"cid": cid.to_string(), "size": size, "new": new}),
        ))
    }

    async fn share(
        self: Arc<Self>,
        request: Request<Incoming>,
        signer: Address,
        cid: Cid,
        signed: BlobRequest,
    ) -> Result<Response<Body>, Refusal> {
        let id = signed.record;
        self.blocking(move |s| s.check_share(signer, &cid, id))
            .await??;
        let body = http_body_util::Limited::new(request.into_body(), 1024)
            .collect()
            .await
            .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.to_string()))?
            .to_bytes();
        let text = std::str::from_utf8(&body).unwrap_or_default().trim();
        let wrap = alloy_primitives::hex::decode(text)
            .ok()
            .and_then(|b| WrappedKey::from_slice(&b).ok())
            .ok_or_else(|| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "the body must be a key wrap, 81 bytes in hex",
                )
            })?;
        let reader = signed.reader.expect("share requests name a reader");
        let new = self.store.put_key(&cid, reader, &wrap)?;
        self.audit(
            AuditAction::Share,
            AuditEvent {
                actor: Some(signer),
                cid: Some(cid),
                record: Some(id),
                reader: Some(reader),
                detail: (!new).then(|| "already shared".to_string()),
            },
        );
        if new {
            self.announce(&Announcement::key(cid, reader, &wrap));
        }
        Ok(json(
            StatusCode::OK,
            &serde_json::json!({"cid": cid.to_string(), "reader": reader, "new": new}),
        ))
    }

    async fn get(
        self: Arc<Self>,
        signer: Address,
        cid: Cid,
        id: u64,
        key_only: bool,
    ) -> Result<Response<Body>, Refusal> {
        self.blocking(move |s| s.check_get(signer, &cid, id))
            .await??;
        let wrap = match self.store.key(&cid, signer)? {
            Some(wrap) => Some(wrap),
            None => {
                self.fetch_from_peers(cid, Some(signer), None).await;
                self.store.key(&cid, signer)?
            }
        };
        let wrap = wrap.ok_or_else(|| {
            Refusal::new(StatusCode::NOT_FOUND, format!("no key of blob {cid} is wrapped for {signer}: ask the patient or author to share it"))
        })?;
        let wrap_hex = alloy_primitives::hex::encode(wrap.0);
        let event = AuditEvent {
            actor: Some(signer),
            cid: Some(cid),
            record: Some(id),
            detail: key_only.then(|| "key only".to_string()),
            ..AuditEvent::default()
        };
        if key_only {
            self.audit(AuditAction::Serve, event);
            return Ok(full(StatusCode::OK, wrap_hex, "text/plain"));
        }
        if !self.store.contains(&cid) {
            self.fetch_from_peers(cid, None, None).await;
        }
        let size = match self.blocking(move |s| s.store.verify(&cid)).await? {
            Ok(Some(size)) => size,
            Ok(None) => {
                return Err(Refusal::new(
                    StatusCode::NOT_FOUND,
                    format!("blob {cid} is not on this node or its peers"),
                ));
            }
            Err(err) => {
                // Quarantined: a good copy may still be on a peer.
                tracing::warn!(%err, "serving from peers instead");
                self.fetch_from_peers(cid, None, None).await;
                self.blocking(move |s| s.store.verify(&cid))
                    .await??
                    .ok_or_else(|| Refusal::from(err))?
            }
        };
        let reader = self
            .store
            .open_blob(&cid)?
            .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, format!("blob {cid} vanished")))?;
        self.audit(AuditAction::Serve, event);
        let (sender, receiver) =
            tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            loop {
                let mut buf = vec![0u8; SERVE_CHUNK];
                let item = match reader.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        Ok(Frame::data(Bytes::from(buf)))
                    }
                    Err(err) => Err(err),
                };
                let failed = item.is_err();
                if sender.blocking_send(item).is_err() || failed {
                    return;
                }
            }
        });
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        });
        let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        let headers = response.headers_mut();
        headers.insert(
            hyper::header::CONTENT_TYPE,
            "application/octet-stream".parse().expect("static"),
        );
        headers.insert(hyper::header::CONTENT_LENGTH, size.into());
        headers.insert(HEADER_KEY, wrap_hex.parse().map_err(Refusal::internal)?);
        Ok(response)
    }
}

/// Serves the blob API on `addr`; returns the bound address and the server task.
pub(crate) async fn serve(
    addr: SocketAddr,
    service: Arc<BlobService>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), NodeError> {
    let cannot = |e: std::io::Error| NodeError::Blobs(format!("cannot listen on {addr}: {e}"));
    let listener = TcpListener::bind(addr).await.map_err(cannot)?;
    let bound = listener.local_addr().map_err(cannot)?;
    let task = tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "blob endpoint cannot accept");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let service = service.clone();
            tokio::spawn(async move {
                let handler = hyper::service::service_fn(move |request| {
                    let service = service.clone();
                    async move { Ok::<_, Infallible>(service.handle(request).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(10))
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), handler);
                if let Err(err) = connection.await {
                    tracing::debug!(%err, "blob connection ended");
                }
            });
        }
    });
    Ok((bound, task))
}
