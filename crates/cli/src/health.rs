//! `healthchain deploy` and `healthchain health …`: deploy the health contracts to any
//! chain (idempotently, recording addresses per chain id) and run the operator workflows —
//! registrations, consent, admissions, record references, access requests, record history
//! and the audit trail — over JSON-RPC, without writing JavaScript.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_sol_types::{SolCall, SolConstructor, SolError, SolEvent, SolInterface};
use anyhow::{Context, bail, ensure};
use clap::{Args, Subcommand};
use healthchain_contracts::{
    Artifact, HealthRegistry, Kind, PatientRecord, RECORDS_ADDRESS, REGISTRY_ADDRESS, Role,
    kinds_mask, kinds_of_mask,
};
use serde_json::{Value, json};

use crate::client::{Client, RpcArgs, hex_u64};

/// Options of `healthchain deploy`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DeployArgs {
    #[command(flatten)]
    rpc: RpcArgs,
    /// Directory of deployment records, one `<chain id>.json` per chain.
    #[arg(long, default_value = "contracts/deployments")]
    deployments: PathBuf,
    /// First ministry admin of a new registry (default: the deployer).
    #[arg(long)]
    admin: Option<Address>,
    /// Identity commitment (32-byte hex) of that admin (default: derived from its address).
    #[arg(long)]
    admin_ref: Option<B256>,
}

/// Where the contracts are.
#[derive(Debug, Clone, Args)]
pub(crate) struct ContractArgs {
    /// Directory of deployment records written by `healthchain deploy`.
    #[arg(long, default_value = "contracts/deployments")]
    deployments: PathBuf,
    /// HealthRegistry address (overrides the deployment record).
    #[arg(long)]
    registry: Option<Address>,
    /// PatientRecord address (overrides the deployment record).
    #[arg(long)]
    records: Option<Address>,
}

/// `healthchain health`.
#[derive(Debug, Clone, Args)]
pub(crate) struct HealthArgs {
    #[command(flatten)]
    rpc: RpcArgs,
    #[command(flatten)]
    contracts: ContractArgs,
    #[command(subcommand)]
    command: HealthCommand,
}

/// Either a 32-byte commitment or a file (an encrypted blob) to hash into one.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
struct RefArgs {
    /// Identity commitment, 32-byte hex (e.g. the SHA-256 of the encrypted identity record).
    #[arg(long = "ref")]
    reference: Option<B256>,
    /// Encrypted identity record: its SHA-256 becomes the commitment.
    #[arg(long)]
    identity_file: Option<PathBuf>,
}

impl RefArgs {
    fn value(&self) -> anyhow::Result<B256> {
        match (&self.reference, &self.identity_file) {
            (Some(r), _) => Ok(*r),
            (None, Some(path)) => Ok(sha256(
                &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            )),
            (None, None) => bail!("give --ref or --identity-file"),
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
enum HealthCommand {
    /// Register an account in a role: admin, hospital, insurer, regulator and diagnostic
    /// centre by a ministry admin; doctor by a hospital (or admin); patient by a hospital.
    Register {
        /// The role.
        #[arg(long)]
        role: Role,
        /// The account.
        account: Address,
        #[command(flatten)]
        reference: RefArgs,
    },
    /// Show an account's role and registration.
    Whois {
        /// The account.
        account: Address,
    },
    /// Deactivate a registration (admin, or whoever registered it).
    Deactivate {
        /// The account.
        account: Address,
    },
    /// A patient registers a relative.
    AddRelative {
        /// The relative's account.
        relative: Address,
        #[command(flatten)]
        reference: RefArgs,
    },
    /// A hospital admits a patient (then writes its general history and information once).
    Admit {
        /// The patient.
        #[arg(long)]
        patient: Address,
    },
    /// A patient grants an account access to record kinds.
    Grant {
        /// Who gets access.
        #[arg(long)]
        grantee: Address,
        /// Comma-separated kinds (prescription, diagnosis, diagnostic-report, scanned-image,
        /// general-history, general-information, insurance-status, …) or `all`.
        #[arg(long)]
        kinds: String,
        /// Expiry as a Unix time (default: until revoked).
        #[arg(long, conflicts_with = "valid_for")]
        expires: Option<u64>,
        /// Expiry relative to now: 90s, 30m, 12h, 30d.
        #[arg(long)]
        valid_for: Option<String>,
    },
    /// A patient revokes access to record kinds.
    Revoke {
        /// Whose access ends.
        #[arg(long)]
        grantee: Address,
        /// Comma-separated kinds, or `all`.
        #[arg(long)]
        kinds: String,
    },
    /// Add a record reference (the payload stays off chain, encrypted).
    AddRecord {
        /// The patient (for identity kinds: your own address).
        #[arg(long)]
        patient: Address,
        /// The record kind.
        #[arg(long)]
        kind: Kind,
        /// The encrypted payload: its SHA-256 and a CIDv1 (raw, sha2-256) are computed.
        #[arg(long, conflicts_with_all = ["cid", "sha256"])]
        payload: Option<PathBuf>,
        /// Content id of the encrypted payload (with --sha256).
        #[arg(long, requires = "sha256")]
        cid: Option<String>,
        /// SHA-256 of the encrypted payload (with --cid).
        #[arg(long, requires = "cid")]
        sha256: Option<B256>,
        /// The record this one corrects.
        #[arg(long)]
        supersedes: Option<u64>,
    },
    /// A regulator or researcher logs a request to read a patient's records.
    RequestAccess {
        /// The patient.
        #[arg(long)]
        patient: Address,
        /// Comma-separated kinds, or `all`.
        #[arg(long)]
        kinds: String,
        /// Hash of the request document (ethics approval, case number), 32-byte hex.
        #[arg(long)]
        purpose: B256,
    },
    /// List a patient's records with their correction history.
    History {
        /// The patient (or party, for identity records).
        #[arg(long)]
        patient: Address,
    },
    /// The audit trail, rebuilt from the contracts' logs alone.
    Audit {
        /// First block (default 0).
        #[arg(long, default_value_t = 0)]
        from_block: u64,
        /// Last block (default: the head).
        #[arg(long)]
        to_block: Option<u64>,
        /// Only entries that involve this account.
        #[arg(long)]
        account: Option<Address>,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
}

// ---- deployment records ------------------------------------------------------------------

/// One contract in a deployment record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deployed {
    address: Address,
    /// keccak256 of the runtime code found at the address after deployment.
    code_hash: B256,
    /// The creation transaction (absent for genesis pre-deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tx_hash: Option<B256>,
    /// The block it was created in (0: genesis).
    block: u64,
}

/// `<deployments>/<chain id>.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deployments {
    chain_id: u64,
    #[serde(default)]
    contracts: BTreeMap<String, Deployed>,
}

fn deployments_file(dir: &Path, chain_id: u64) -> PathBuf {
    dir.join(format!("{chain_id}.json"))
}

fn load_deployments(dir: &Path, chain_id: u64) -> anyhow::Result<Option<Deployments>> {
    let path = deployments_file(dir, chain_id);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let record: Deployments = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a deployment record", path.display()))?;
    ensure!(
        record.chain_id == chain_id,
        "{} records chain {} but the node is chain {chain_id}",
        path.display(),
        record.chain_id
    );
    Ok(Some(record))
}

/// Writes the record atomically (temporary file, then rename), so an interrupted deploy
/// never leaves a torn file.
fn save_deployments(dir: &Path, record: &Deployments) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = deployments_file(dir, record.chain_id);
    let tmp = dir.join(format!(".{}.json.tmp", record.chain_id));
    std::fs::write(&tmp, serde_json::to_string_pretty(record)? + "\n")
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

const REGISTRY: &str = "HealthRegistry";
const RECORDS: &str = "PatientRecord";

/// `healthchain deploy`.
pub(crate) fn deploy(args: &DeployArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = Client::connect(&args.rpc).await?;
        let chain_id = client.chain_id();
        let mut record = load_deployments(&args.deployments, chain_id)?.unwrap_or(Deployments {
            chain_id,
            contracts: BTreeMap::new(),
        });
        // A chain whose genesis pre-deployed the contracts: record those, deploy nothing.
        if record.contracts.is_empty() {
            let registry_code = client.code(REGISTRY_ADDRESS).await?;
            let records_code = client.code(RECORDS_ADDRESS).await?;
            if !registry_code.is_empty() && !records_code.is_empty() {
                for (name, address, code) in [
                    (REGISTRY, REGISTRY_ADDRESS, registry_code),
                    (RECORDS, RECORDS_ADDRESS, records_code),
                ] {
                    record.contracts.insert(
                        name.into(),
                        Deployed {
                            address,
                            code_hash: keccak256(&code),
                            tx_hash: None,
                            block: 0,
                        },
                    );
                }
                save_deployments(&args.deployments, &record)?;
                println!("chain {chain_id}: the contracts are in genesis");
                print_deployments(&record);
                return Ok(());
            }
        }
        let registry = match current(&client, &record, REGISTRY).await? {
            Some(address) => {
                println!("{REGISTRY}: already deployed at {address}");
                address
            }
            None => {
                let admin = match args.admin {
                    Some(admin) => admin,
                    None => client.sender()?,
                };
                let admin_ref = args
                    .admin_ref
                    .unwrap_or_else(|| crate::genesis_admin_ref(admin));
                let data = creation(
                    &Artifact::registry()?,
                    &HealthRegistry::constructorCall {
                        admin,
                        adminRef: admin_ref,
                    }
                    .abi_encode(),
                );
                let address =
                    create(&client, &mut record, &args.deployments, REGISTRY, data).await?;
                println!("{REGISTRY}: deployed at {address} (ministry admin {admin})");
                address
            }
        };
        match current(&client, &record, RECORDS).await? {
            Some(address) => println!("{RECORDS}: already deployed at {address}"),
            None => {
                let data = creation(
                    &Artifact::records()?,
                    &PatientRecord::constructorCall {
                        registry_: registry,
                    }
                    .abi_encode(),
                );
                let address =
                    create(&client, &mut record, &args.deployments, RECORDS, data).await?;
                println!("{RECORDS}: deployed at {address}");
            }
        }
        print_deployments(&record);
        Ok(())
    })
}

fn print_deployments(record: &Deployments) {
    for (name, deployed) in &record.contracts {
        println!("  {name:<15} {}", deployed.address);
    }
}

fn creation(artifact: &Artifact, args: &[u8]) -> Bytes {
    [artifact.bytecode.as_ref(), args].concat().into()
}

/// The recorded address of `name` if its code is still there; a record whose code is gone
/// (a chain reset) or changed is reported and redeployed.
async fn current(
    client: &Client,
    record: &Deployments,
    name: &str,
) -> anyhow::Result<Option<Address>> {
    let Some(deployed) = record.contracts.get(name) else {
        return Ok(None);
    };
    let code = client.code(deployed.address).await?;
    if code.is_empty() {
        eprintln!(
            "{name}: the recorded address {} has no code on this chain (reset?); deploying again",
            deployed.address
        );
        return Ok(None);
    }
    ensure!(
        keccak256(&code) == deployed.code_hash,
        "{name}: the code at {} differs from the deployment record; refusing to guess (move the record aside to deploy anew)",
        deployed.address
    );
    Ok(Some(deployed.address))
}

async fn create(
    client: &Client,
    record: &mut Deployments,
    dir: &Path,
    name: &str,
    data: Bytes,
) -> anyhow::Result<Address> {
    let mined = client
        .send(None, data)
        .await
        .with_context(|| format!("deploying {name}"))?;
    let address = mined
        .contract_address
        .with_context(|| format!("the receipt of {} names no contract address", mined.hash))?;
    let code = client.code(address).await?;
    ensure!(
        !code.is_empty(),
        "{name} at {address} has no code after deployment"
    );
    record.contracts.insert(
        name.into(),
        Deployed {
            address,
            code_hash: keccak256(&code),
            tx_hash: Some(mined.hash),
            block: mined.block,
        },
    );
    // Saved after each contract: a failure later keeps what was deployed.
    save_deployments(dir, record)?;
    Ok(address)
}

// ---- operator workflows ------------------------------------------------------------------

/// `healthchain health …`.
pub(crate) fn health(args: &HealthArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = Client::connect(&args.rpc).await?;
        let (registry, records) = resolve(&client, &args.contracts).await?;
        let send = |to: Address, data: Vec<u8>| client.send_reported(to, data);
        match &args.command {
            HealthCommand::Register {
                role,
                account,
                reference,
            } => {
                let account = *account;
                let r = reference.value()?;
                use HealthRegistry as R;
                let data = match role {
                    Role::Admin => R::addAdminCall {
                        admin: account,
                        r#ref: r,
                    }
                    .abi_encode(),
                    Role::Hospital => R::registerHospitalCall {
                        hospital: account,
                        r#ref: r,
                    }
                    .abi_encode(),
                    Role::Doctor => R::addDoctorCall {
                        doctor: account,
                        r#ref: r,
                    }
                    .abi_encode(),
                    Role::DiagnosticCenter => R::addCenterCall {
                        center: account,
                        r#ref: r,
                    }
                    .abi_encode(),
                    Role::Insurer => R::registerInsurerCall {
                        insurer: account,
                        r#ref: r,
                    }
                    .abi_encode(),
                    Role::Regulator => R::registerRegulatorCall {
                        regulator: account,
                        r#ref: r,
                    }
                    .abi_encode(),
                    Role::Patient => R::addPatientCall {
                        patient: account,
                        r#ref: r,
                    }
                    .abi_encode(),
                    Role::Relative => bail!(
                        "relatives are registered by their patient: use `health add-relative`"
                    ),
                    Role::None => bail!("choose a role to register"),
                };
                send(registry, data).await?;
                println!("registered {account} as {role}");
            }
            HealthCommand::Whois { account } => {
                let out = client
                    .call(
                        registry,
                        HealthRegistry::partyOfCall { account: *account }
                            .abi_encode()
                            .into(),
                    )
                    .await?;
                let party = HealthRegistry::partyOfCall::abi_decode_returns(&out)?;
                let role = Role::from_u8(party.role).unwrap_or(Role::None);
                if role == Role::None {
                    println!("{account}: not registered");
                } else {
                    println!(
                        "{account}: {role}{}\n  registered by {} at {}\n  identity commitment {}",
                        if party.active { "" } else { " (deactivated)" },
                        party.registeredBy,
                        party.registeredAt,
                        party.r#ref
                    );
                }
            }
            HealthCommand::Deactivate { account } => {
                send(
                    registry,
                    HealthRegistry::deactivateCall { account: *account }.abi_encode(),
                )
                .await?;
            }
            HealthCommand::AddRelative {
                relative,
                reference,
            } => {
                let data = HealthRegistry::addRelativeCall {
                    relative: *relative,
                    r#ref: reference.value()?,
                }
                .abi_encode();
                send(registry, data).await?;
            }
            HealthCommand::Admit { patient } => {
                send(
                    records,
                    PatientRecord::admitPatientCall { patient: *patient }.abi_encode(),
                )
                .await?;
            }
            HealthCommand::Grant {
                grantee,
                kinds,
                expires,
                valid_for,
            } => {
                let mask = kinds_mask(kinds)?;
                let expires_at = match (expires, valid_for) {
                    (Some(t), _) => *t,
                    (None, Some(d)) => {
                        let head = client.block_number().await?;
                        client.block_timestamp(head).await? + parse_duration(d)?
                    }
                    (None, None) => 0,
                };
                let data = PatientRecord::grantConsentCall {
                    grantee: *grantee,
                    kinds: mask,
                    expiresAt: alloy_primitives::aliases::U40::from(expires_at),
                }
                .abi_encode();
                send(records, data).await?;
                println!(
                    "granted {grantee}: {}{}",
                    names(mask),
                    if expires_at == 0 {
                        " until revoked".to_string()
                    } else {
                        format!(" until {expires_at}")
                    }
                );
            }
            HealthCommand::Revoke { grantee, kinds } => {
                let mask = kinds_mask(kinds)?;
                send(
                    records,
                    PatientRecord::revokeConsentCall {
                        grantee: *grantee,
                        kinds: mask,
                    }
                    .abi_encode(),
                )
                .await?;
                println!("revoked {grantee}: {}", names(mask));
            }
            HealthCommand::AddRecord {
                patient,
                kind,
                payload,
                cid,
                sha256: hash,
                supersedes,
            } => {
                let (cid, hash) = match (payload, cid, hash) {
                    (Some(path), _, _) => {
                        let bytes = std::fs::read(path)
                            .with_context(|| format!("reading {}", path.display()))?;
                        let cid = healthchain_blobs::Cid::of(&bytes);
                        (cid.to_string(), cid.sha256())
                    }
                    (None, Some(cid), Some(hash)) => (cid.clone(), *hash),
                    _ => bail!("give --payload FILE, or --cid and --sha256"),
                };
                let id =
                    add_record(&client, records, *patient, *kind, &cid, hash, *supersedes).await?;
                match id {
                    Some(id) => {
                        println!("record #{id}: {kind} of {patient}, cid {cid}, sha256 {hash}")
                    }
                    None => println!("record added: {kind} of {patient}, cid {cid}"),
                }
            }
            HealthCommand::RequestAccess {
                patient,
                kinds,
                purpose,
            } => {
                let mask = kinds_mask(kinds)?;
                let data = PatientRecord::requestAccessCall {
                    patient: *patient,
                    kinds: mask,
                    purpose: *purpose,
                }
                .abi_encode();
                send(records, data).await?;
                println!("access request logged: {patient}, {}", names(mask));
            }
            HealthCommand::History { patient } => history(&client, records, *patient).await?,
            HealthCommand::Audit {
                from_block,
                to_block,
                account,
                json,
            } => {
                audit(
                    &client,
                    registry,
                    records,
                    *from_block,
                    *to_block,
                    *account,
                    *json,
                )
                .await?
            }
        }
        Ok(())
    })
}

/// The contract addresses: flags, else the deployment record, else the genesis addresses.
/// Writes a record reference to `PatientRecord` at `records` and returns its id (from the
/// `RecordAdded` log of the mined transaction).
pub(crate) async fn add_record(
    client: &Client,
    records: Address,
    patient: Address,
    kind: Kind,
    cid: &str,
    hash: B256,
    supersedes: Option<u64>,
) -> anyhow::Result<Option<u64>> {
    let data = PatientRecord::addRecordCall {
        patient,
        kind: kind as u8,
        cid: cid.to_string(),
        contentHash: hash,
        supersedes: alloy_primitives::aliases::U40::from(supersedes.unwrap_or(0)),
    }
    .abi_encode();
    let mined = client.send_reported(records, data).await?;
    let id = client
        .logs(
            &[records],
            vec![json!(topic(PatientRecord::RecordAdded::SIGNATURE_HASH))],
            mined.block,
            mined.block,
        )
        .await?
        .into_iter()
        .find(|l| {
            l["transactionHash"]
                .as_str()
                .and_then(|h| h.parse::<B256>().ok())
                == Some(mined.hash)
        })
        .and_then(|l| l["topics"][1].as_str().and_then(|t| t.parse::<U256>().ok()));
    Ok(id.map(|id| id.saturating_to()))
}

pub(crate) async fn resolve(
    client: &Client,
    args: &ContractArgs,
) -> anyhow::Result<(Address, Address)> {
    let record = load_deployments(&args.deployments, client.chain_id())?;
    let recorded = |name: &str| {
        record
            .as_ref()
            .and_then(|r| r.contracts.get(name))
            .map(|d| d.address)
    };
    let registry = args
        .registry
        .or_else(|| recorded(REGISTRY))
        .unwrap_or(REGISTRY_ADDRESS);
    let records = args
        .records
        .or_else(|| recorded(RECORDS))
        .unwrap_or(RECORDS_ADDRESS);
    for (name, address) in [(REGISTRY, registry), (RECORDS, records)] {
        ensure!(
            !client.code(address).await?.is_empty(),
            "no {name} contract at {address} on chain {} (run `healthchain deploy`, or pass --registry/--records)",
            client.chain_id()
        );
    }
    Ok((registry, records))
}

async fn history(client: &Client, records: Address, patient: Address) -> anyhow::Result<()> {
    let count = PatientRecord::recordCountOfCall::abi_decode_returns(
        &client
            .call(
                records,
                PatientRecord::recordCountOfCall { subject: patient }
                    .abi_encode()
                    .into(),
            )
            .await?,
    )?;
    let ids = PatientRecord::recordIdsOfCall::abi_decode_returns(
        &client
            .call(
                records,
                PatientRecord::recordIdsOfCall {
                    subject: patient,
                    offset: U256::ZERO,
                    limit: count,
                }
                .abi_encode()
                .into(),
            )
            .await?,
    )?;
    println!("{patient}: {} record(s)", ids.len());
    for id in ids {
        let r = PatientRecord::healthRecordGetCall::abi_decode_returns(
            &client
                .call(
                    records,
                    PatientRecord::healthRecordGetCall { id }
                        .abi_encode()
                        .into(),
                )
                .await?,
        )?;
        let kind =
            Kind::from_u8(r.kind).map_or_else(|| format!("kind {}", r.kind), |k| k.to_string());
        let status = if r.supersededBy.is_zero() {
            "current".to_string()
        } else {
            format!("superseded by #{}", r.supersededBy)
        };
        let corrects = if r.supersedes.is_zero() {
            String::new()
        } else {
            format!(", corrects #{}", r.supersedes)
        };
        println!(
            "  #{id} {kind} by {} at {} ({status}{corrects})\n      cid {} sha256 {}",
            r.author, r.timestamp, r.cid, r.contentHash
        );
    }
    Ok(())
}

/// One decoded audit entry.
fn audit_entry(
    registry: Address,
    records: Address,
    log: &Value,
) -> Option<(String, Vec<Address>, Value)> {
    let address: Address = log["address"].as_str()?.parse().ok()?;
    let topics: Vec<B256> = log["topics"]
        .as_array()?
        .iter()
        .filter_map(|t| t.as_str()?.parse().ok())
        .collect();
    let data: Bytes = log["data"].as_str()?.parse().ok()?;
    let log = alloy_primitives::Log::new(address, topics, data)?;
    let role = |r: u8| Role::from_u8(r).map_or_else(|| format!("role {r}"), |r| r.to_string());
    let kind = |k: u8| Kind::from_u8(k).map_or_else(|| format!("kind {k}"), |k| k.to_string());
    if address == registry {
        use HealthRegistry::HealthRegistryEvents as E;
        let event = <E as alloy_sol_types::SolEventInterface>::decode_log(&log)
            .ok()?
            .data;
        return Some(match event {
            E::Registered(e) => (
                format!(
                    "registered {} as {} by {} (ref {})",
                    e.account,
                    role(e.role),
                    e.by,
                    e.r#ref
                ),
                vec![e.account, e.by],
                json!({"event": "Registered", "account": e.account, "role": role(e.role), "by": e.by, "ref": e.r#ref}),
            ),
            E::Deactivated(e) => (
                format!("deactivated {} ({}) by {}", e.account, role(e.role), e.by),
                vec![e.account, e.by],
                json!({"event": "Deactivated", "account": e.account, "role": role(e.role), "by": e.by}),
            ),
            E::RegistrationRequested(e) => (
                format!("{} asked to be registered as a patient", e.account),
                vec![e.account],
                json!({"event": "RegistrationRequested", "account": e.account, "ref": e.r#ref}),
            ),
            E::RelativeAdded(e) => (
                format!("patient {} added relative {}", e.patient, e.relative),
                vec![e.patient, e.relative],
                json!({"event": "RelativeAdded", "patient": e.patient, "relative": e.relative}),
            ),
            E::RelativeRemoved(e) => (
                format!("patient {} removed relative {}", e.patient, e.relative),
                vec![e.patient, e.relative],
                json!({"event": "RelativeRemoved", "patient": e.patient, "relative": e.relative}),
            ),
        });
    }
    if address == records {
        use PatientRecord::PatientRecordEvents as E;
        let event = <E as alloy_sol_types::SolEventInterface>::decode_log(&log)
            .ok()?
            .data;
        return Some(match event {
            E::RecordAdded(e) => (
                format!(
                    "record #{} {} of {} written by {}{} (cid {})",
                    e.id,
                    kind(e.kind),
                    e.patient,
                    e.author,
                    if e.supersedes.is_zero() {
                        String::new()
                    } else {
                        format!(", superseding #{}", e.supersedes)
                    },
                    e.cid
                ),
                vec![e.patient, e.author],
                json!({"event": "RecordAdded", "id": e.id.to::<u64>(), "patient": e.patient, "author": e.author,
                       "kind": kind(e.kind), "supersedes": e.supersedes.to::<u64>(), "contentHash": e.contentHash, "cid": e.cid}),
            ),
            E::ConsentGranted(e) => (
                format!(
                    "patient {} granted {} {} {}",
                    e.patient,
                    e.grantee,
                    names(e.kinds),
                    expiry(e.expiresAt.to())
                ),
                vec![e.patient, e.grantee],
                json!({"event": "ConsentGranted", "patient": e.patient, "grantee": e.grantee,
                       "kinds": kinds_of_mask(e.kinds).iter().map(|k| k.name()).collect::<Vec<_>>(), "expiresAt": e.expiresAt.to::<u64>()}),
            ),
            E::ConsentRevoked(e) => (
                format!(
                    "patient {} revoked {} from {}",
                    e.patient,
                    names(e.kinds),
                    e.grantee
                ),
                vec![e.patient, e.grantee],
                json!({"event": "ConsentRevoked", "patient": e.patient, "grantee": e.grantee,
                       "kinds": kinds_of_mask(e.kinds).iter().map(|k| k.name()).collect::<Vec<_>>()}),
            ),
            E::PatientAdmitted(e) => (
                format!("hospital {} admitted patient {}", e.hospital, e.patient),
                vec![e.patient, e.hospital],
                json!({"event": "PatientAdmitted", "patient": e.patient, "hospital": e.hospital}),
            ),
            E::AccessRequested(e) => (
                format!(
                    "request #{}: {} asked to read {} of {} (purpose {})",
                    e.id,
                    e.requester,
                    names(e.kinds),
                    e.patient,
                    e.purpose
                ),
                vec![e.requester, e.patient],
                json!({"event": "AccessRequested", "id": e.id, "requester": e.requester, "patient": e.patient,
                       "kinds": kinds_of_mask(e.kinds).iter().map(|k| k.name()).collect::<Vec<_>>(), "purpose": e.purpose}),
            ),
            E::RegulatorPolicySet(e) => (
                format!(
                    "admin {} set the regulator read policy to {}",
                    e.by,
                    names(e.kinds)
                ),
                vec![e.by],
                json!({"event": "RegulatorPolicySet", "by": e.by, "kinds": kinds_of_mask(e.kinds).iter().map(|k| k.name()).collect::<Vec<_>>()}),
            ),
        });
    }
    None
}

async fn audit(
    client: &Client,
    registry: Address,
    records: Address,
    from: u64,
    to: Option<u64>,
    account: Option<Address>,
    as_json: bool,
) -> anyhow::Result<()> {
    let to = match to {
        Some(to) => to,
        None => client.block_number().await?,
    };
    let logs = client
        .logs(&[registry, records], Vec::new(), from, to)
        .await?;
    let mut timestamps = BTreeMap::new();
    let mut shown = 0usize;
    for log in &logs {
        let Some((text, parties, mut value)) = audit_entry(registry, records, log) else {
            eprintln!("warning: a log that is not a known health event: {log}");
            continue;
        };
        if account.is_some_and(|a| !parties.contains(&a)) {
            continue;
        }
        let block = hex_u64(&log["blockNumber"]).unwrap_or_default();
        let time = match timestamps.get(&block) {
            Some(t) => *t,
            None => {
                let t = client.block_timestamp(block).await?;
                timestamps.insert(block, t);
                t
            }
        };
        shown += 1;
        if as_json {
            value["block"] = json!(block);
            value["timestamp"] = json!(time);
            value["transactionHash"] = log["transactionHash"].clone();
            println!("{value}");
        } else {
            println!(
                "block {block} (t={time}) tx {}: {text}",
                log["transactionHash"].as_str().unwrap_or("?")
            );
        }
    }
    if !as_json {
        println!("{shown} audit entries in blocks {from}..={to}");
    }
    Ok(())
}

// ---- helpers -----------------------------------------------------------------------------

fn names(mask: u16) -> String {
    kinds_of_mask(mask)
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(",")
}

fn expiry(at: u64) -> String {
    // PatientRecord.NO_EXPIRY, type(uint40).max.
    if at == (1 << 40) - 1 {
        "until revoked".into()
    } else {
        format!("until {at}")
    }
}

fn topic(hash: B256) -> String {
    hash.to_string()
}

fn sha256(bytes: &[u8]) -> B256 {
    use sha2::Digest;
    B256::from_slice(&sha2::Sha256::digest(bytes))
}

fn parse_duration(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .with_context(|| format!("bad duration {text:?}: expected e.g. 30d"))?;
    let scale = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("bad duration unit in {text:?}: use s, m, h or d"),
    };
    n.checked_mul(scale).context("duration too long")
}

/// The human form of a revert: a health contract's custom error with its fields, a
/// `require` message, a panic code, or the raw data.
pub(crate) fn decode_revert(data: &[u8]) -> String {
    if data.is_empty() {
        return "reverted without data".into();
    }
    let strip = |debug: String| -> String {
        // `NoConsent(NoConsent { … })` → `NoConsent { … }`.
        match debug.split_once('(') {
            Some((name, rest)) if rest.starts_with(name) => rest.trim_end_matches(')').to_string(),
            _ => debug,
        }
    };
    if let Ok(e) = PatientRecord::PatientRecordErrors::abi_decode(data) {
        return strip(format!("{e:?}"));
    }
    if let Ok(e) = HealthRegistry::HealthRegistryErrors::abi_decode(data) {
        return strip(format!("{e:?}"));
    }
    if let Ok(revert) = alloy_sol_types::Revert::abi_decode(data) {
        return format!("Error({:?})", revert.reason);
    }
    if let Ok(panic) = alloy_sol_types::Panic::abi_decode(data) {
        return format!("Panic({:#x})", panic.code);
    }
    format!("reverted with data {}", Bytes::copy_from_slice(data))
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("30d").unwrap(), 30 * 86_400);
        assert!(parse_duration("3w").is_err());
        assert!(parse_duration("d").is_err());
    }

    #[test]
    fn reverts_decode_to_the_custom_error() {
        let err = PatientRecord::NoConsent {
            patient: Address::repeat_byte(1),
            writer: Address::repeat_byte(2),
            kind: Kind::Diagnosis as u8,
        };
        let text = decode_revert(&alloy_sol_types::SolError::abi_encode(&err));
        assert!(text.starts_with("NoConsent {"), "{text}");
        assert!(text.contains("kind: 2"), "{text}");
        assert_eq!(decode_revert(&[]), "reverted without data");
        assert!(decode_revert(&[1, 2, 3]).starts_with("reverted with data 0x010203"));
    }
}
