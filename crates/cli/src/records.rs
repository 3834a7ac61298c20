//! `healthchain records`: encrypted record payloads for hospital staff and scripts.
//!
//! - `put` encrypts a file under a fresh key (on this machine: the node never sees the
//!   plaintext or the key), uploads the ciphertext to the node's blob store, writes the
//!   on-chain reference (CID and SHA-256) and wraps the key for the author and every
//!   `--share` reader.
//! - `get` fetches a record's blob with a signed request, checks its CID, unwraps the key
//!   and decrypts.
//! - `share` wraps the key of a record for one more reader (after the patient's grant);
//!   the payload is not uploaded again.
//! - `cid` prints a file's CID, SHA-256 and IPFS (UnixFS) file CID.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256, aliases::U40};
use alloy_sol_types::SolCall;
use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use clap::{Args, Subcommand};
use healthchain_blobs::envelope::{self, ContentKey, WrappedKey};
use healthchain_blobs::request::{
    HEADER_EXPIRES, HEADER_KEY, HEADER_READER, HEADER_RECORD, HEADER_SIGNATURE, MAX_VALIDITY_SECS,
};
use healthchain_blobs::{Action, BlobRequest, Cid, UnixfsHasher};
use healthchain_contracts::{Kind, PatientRecord};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::{Method, Request, StatusCode};
use sha2::Digest;

use crate::client::{Client, RpcArgs};
use crate::health::{ContractArgs, add_record, resolve, runtime};

/// `healthchain records`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RecordsArgs {
    #[command(flatten)]
    rpc: RpcArgs,
    #[command(flatten)]
    contracts: ContractArgs,
    /// The node's blob API.
    #[arg(
        long,
        env = "HEALTHCHAIN_BLOBS_URL",
        default_value = "http://127.0.0.1:8547"
    )]
    blobs_url: String,
    #[command(subcommand)]
    command: RecordsCommand,
}

#[derive(Debug, Clone, Subcommand)]
enum RecordsCommand {
    /// Encrypt a file, upload it, write its record and share its key.
    Put {
        /// The patient the record is about.
        #[arg(long)]
        patient: Address,
        /// The record kind.
        #[arg(long)]
        kind: Kind,
        /// The plaintext file.
        #[arg(long)]
        file: PathBuf,
        /// Also wrap the key for this reader's public key (hex: 64-byte enode id or SEC1);
        /// repeatable. The author always gets a wrap.
        #[arg(long = "share", value_name = "PUBKEY")]
        share: Vec<String>,
        /// The record this one corrects.
        #[arg(long)]
        supersedes: Option<u64>,
    },
    /// Fetch and decrypt a record's payload.
    Get {
        /// The record id.
        #[arg(long)]
        record: u64,
        /// Where the plaintext goes (written only once it decrypts whole).
        #[arg(long)]
        out: PathBuf,
    },
    /// Wrap a record's key for another reader (you must hold it: author or patient).
    Share {
        /// The record id.
        #[arg(long)]
        record: u64,
        /// The reader's public key (hex: 64-byte enode id or SEC1).
        #[arg(long = "reader-pubkey", value_name = "PUBKEY")]
        reader_pubkey: String,
    },
    /// Print a file's CID (CIDv1 raw sha2-256), its SHA-256 and its UnixFS CID (what
    /// `ipfs add` and `ipfs_cid` give the file).
    Cid {
        /// The file.
        file: PathBuf,
    },
    /// Bulk-migrate record references (CSV or JSON lines) through transactions, at full
    /// throughput, with progress.
    Import(crate::bench::import::ImportArgs),
}

/// The address of a public key.
fn address_of(key: &k256::PublicKey) -> Address {
    Address::from_public_key(&k256::ecdsa::VerifyingKey::from(key))
}

fn parse_pubkey(text: &str) -> anyhow::Result<k256::PublicKey> {
    let bytes = alloy_primitives::hex::decode(text.trim())
        .with_context(|| format!("public key {text:?} is not hex"))?;
    Ok(envelope::parse_public_key(&bytes)?)
}

/// Streams a file through SHA-256 and the UnixFS hasher: its CID, and the CID `ipfs add`
/// (and `ipfs_cid`) gives it as a file.
fn cid_of_file(path: &Path) -> anyhow::Result<(Cid, String)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let (mut sha, mut unixfs) = (sha2::Sha256::new(), UnixfsHasher::new());
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        unixfs.update(&buf[..n]);
    }
    Ok((
        Cid::from_sha256(B256::from_slice(&sha.finalize())),
        unixfs.finish(),
    ))
}

type Body = BoxBody<Bytes, std::io::Error>;

/// The node's blob API, with requests signed by the operator's key.
struct Blobs<'a> {
    base: String,
    http: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Body,
    >,
    client: &'a Client,
}

impl<'a> Blobs<'a> {
    fn new(base: &str, client: &'a Client) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http(),
            client,
        }
    }

    /// Signs `action` on `cid` and sends it; a refusal is an error with the node's reason.
    async fn send(
        &self,
        method: Method,
        path: &str,
        signed: BlobRequest,
        body: Body,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let signature = signed.sign(self.client.signer()?);
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(HEADER_EXPIRES, signed.expires)
            .header(HEADER_SIGNATURE, signature);
        if signed.action != Action::Put {
            request = request.header(HEADER_RECORD, signed.record);
        }
        if let Some(reader) = signed.reader {
            request = request.header(HEADER_READER, format!("{reader:#x}"));
        }
        let response = self
            .http
            .request(request.body(body)?)
            .await
            .with_context(|| format!("blob API at {}", self.base))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            let reason = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            bail!("the node refused ({status}): {reason}");
        }
        Ok(response)
    }

    fn request(
        &self,
        action: Action,
        cid: Cid,
        record: u64,
        reader: Option<Address>,
    ) -> BlobRequest {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        BlobRequest {
            action,
            chain_id: self.client.chain_id(),
            cid,
            record,
            reader,
            // Leave room for clock skew under the node's limit.
            expires: now + MAX_VALIDITY_SECS / 2,
        }
    }

    async fn upload(&self, cid: Cid, path: &Path) -> anyhow::Result<()> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        let stream = futures::stream::unfold(Some(file), |file| async move {
            let mut file = file?;
            let mut buf = vec![0u8; 256 * 1024];
            match file.read(&mut buf) {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Frame::data(Bytes::from(buf))), Some(file)))
                }
                Err(err) => Some((Err(err), None)),
            }
        });
        let signed = self.request(Action::Put, cid, 0, None);
        let response = self
            .send(
                Method::PUT,
                &format!("/blobs/{cid}"),
                signed,
                BodyExt::boxed(StreamBody::new(stream)),
            )
            .await?;
        ensure!(
            matches!(response.status(), StatusCode::CREATED | StatusCode::OK),
            "unexpected upload answer {}",
            response.status()
        );
        tracing::debug!(%cid, len, "uploaded");
        Ok(())
    }

    async fn share(
        &self,
        cid: Cid,
        record: u64,
        reader: &k256::PublicKey,
        key: &ContentKey,
    ) -> anyhow::Result<Address> {
        let address = address_of(reader);
        let wrap = envelope::wrap(key, &cid, reader);
        let body = Full::new(Bytes::from(alloy_primitives::hex::encode(wrap.0)))
            .map_err(|never| match never {})
            .boxed();
        self.send(
            Method::PUT,
            &format!("/keys/{cid}"),
            self.request(Action::Share, cid, record, Some(address)),
            body,
        )
        .await?;
        Ok(address)
    }

    fn empty() -> Body {
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed()
    }

    /// The operator's own key of `cid`, unwrapped.
    fn unwrap_key(&self, cid: &Cid, wrap_hex: &str) -> anyhow::Result<ContentKey> {
        let wrap = WrappedKey::from_slice(
            &alloy_primitives::hex::decode(wrap_hex.trim()).context("the key wrap is not hex")?,
        )?;
        let secret = k256::SecretKey::from_slice(self.client.signer()?.secret_bytes().as_slice())?;
        Ok(envelope::unwrap(&wrap, cid, &secret)?)
    }

    async fn own_key(&self, cid: Cid, record: u64) -> anyhow::Result<ContentKey> {
        let response = self
            .send(
                Method::GET,
                &format!("/keys/{cid}"),
                self.request(Action::Get, cid, record, None),
                Self::empty(),
            )
            .await?;
        let body = response.into_body().collect().await?.to_bytes();
        self.unwrap_key(&cid, &String::from_utf8_lossy(&body))
    }
}

async fn record_cid(client: &Client, records: Address, id: u64) -> anyhow::Result<Cid> {
    let out = client
        .call(
            records,
            PatientRecord::healthRecordGetCall {
                id: U40::try_from(id).context("record id too large")?,
            }
            .abi_encode()
            .into(),
        )
        .await
        .with_context(|| format!("reading record #{id}"))?;
    let record = PatientRecord::healthRecordGetCall::abi_decode_returns(&out)?;
    record
        .cid
        .parse()
        .with_context(|| format!("record #{id} holds CID {:?}", record.cid))
}

/// A temporary file beside `path`, renamed onto it by `keep`.
fn temp_beside(path: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))
}

/// `healthchain records …`.
pub(crate) fn records(args: &RecordsArgs) -> anyhow::Result<()> {
    if let RecordsCommand::Cid { file } = &args.command {
        let (cid, unixfs) = cid_of_file(file)?;
        println!("{cid} sha256 {} ipfs-file {unixfs}", cid.sha256());
        return Ok(());
    }
    if let RecordsCommand::Import(import) = &args.command {
        return runtime()?.block_on(async {
            let client = Client::connect(&args.rpc).await?;
            let (_, records) = resolve(&client, &args.contracts).await?;
            crate::bench::import::import(import, &args.rpc, records).await
        });
    }
    runtime()?.block_on(async {
        let client = Client::connect(&args.rpc).await?;
        let (_, records) = resolve(&client, &args.contracts).await?;
        let blobs = Blobs::new(&args.blobs_url, &client);
        match &args.command {
            RecordsCommand::Put {
                patient,
                kind,
                file,
                share,
                supersedes,
            } => {
                let readers = share
                    .iter()
                    .map(|k| parse_pubkey(k))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let key = ContentKey::generate();
                let mut sealed = tempfile::NamedTempFile::new()?;
                let mut plain = std::fs::File::open(file)
                    .with_context(|| format!("opening {}", file.display()))?;
                envelope::encrypt(&key, &mut plain, sealed.as_file_mut())?;
                sealed.as_file_mut().flush()?;
                let (cid, unixfs) = cid_of_file(sealed.path())?;
                blobs.upload(cid, sealed.path()).await?;
                let id = add_record(
                    &client,
                    records,
                    *patient,
                    *kind,
                    &cid.to_string(),
                    cid.sha256(),
                    *supersedes,
                )
                .await?
                .context("the record was written but its RecordAdded log was not found")?;
                let me = k256::SecretKey::from_slice(client.signer()?.secret_bytes().as_slice())?;
                let mut shared = vec![blobs.share(cid, id, &me.public_key(), &key).await?];
                for reader in &readers {
                    shared.push(blobs.share(cid, id, reader, &key).await?);
                }
                println!(
                    "record #{id}: {kind} of {patient}, cid {cid}, sha256 {}",
                    cid.sha256()
                );
                println!("  as an IPFS file (ipfs add, ipfs_cid): {unixfs}");
                for reader in shared {
                    println!("  key wrapped for {reader}");
                }
            }
            RecordsCommand::Get { record, out } => {
                let cid = record_cid(&client, records, *record).await?;
                let response = blobs
                    .send(
                        Method::GET,
                        &format!("/blobs/{cid}"),
                        blobs.request(Action::Get, cid, *record, None),
                        Blobs::empty(),
                    )
                    .await?;
                let wrap = response
                    .headers()
                    .get(HEADER_KEY)
                    .and_then(|v| v.to_str().ok())
                    .context("the node sent no key wrap")?
                    .to_string();
                let key = blobs.unwrap_key(&cid, &wrap)?;
                let mut sealed = tempfile::NamedTempFile::new()?;
                let mut hasher = sha2::Sha256::new();
                let mut body = response.into_body();
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame?.into_data() {
                        hasher.update(&data);
                        sealed.write_all(&data)?;
                    }
                }
                let got = Cid::from_sha256(B256::from_slice(&hasher.finalize()));
                ensure!(
                    got == cid,
                    "the node sent bytes of {got}, not {cid}: refusing them"
                );
                let mut target = temp_beside(out)?;
                let mut reader = std::fs::File::open(sealed.path())?;
                let len = envelope::decrypt(&key, &mut reader, target.as_file_mut())?;
                target.as_file_mut().sync_all()?;
                target
                    .persist(out)
                    .with_context(|| format!("writing {}", out.display()))?;
                println!(
                    "record #{record}: {len} bytes decrypted to {}",
                    out.display()
                );
            }
            RecordsCommand::Share {
                record,
                reader_pubkey,
            } => {
                let reader = parse_pubkey(reader_pubkey)?;
                let cid = record_cid(&client, records, *record).await?;
                let key = blobs.own_key(cid, *record).await?;
                let address = blobs.share(cid, *record, &reader, &key).await?;
                println!("record #{record}: key wrapped for {address}");
            }
            RecordsCommand::Cid { .. } | RecordsCommand::Import(_) => {
                unreachable!("handled above")
            }
        }
        anyhow::Ok(())
    })
}
