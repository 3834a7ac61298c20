//! Set-up before a measured run (never timed): the load accounts are permitted by the
//! account rules, funded, given their roles (a hospital, doctors, patients) and the
//! patients' consent, and, for reads, a first record each. Every step first asks the
//! chain what is already there, so reruns with the same seed reuse the accounts.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::aliases::U40;
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_sol_types::{SolCall, SolEvent};
use anyhow::{Context, bail};
use healthchain_contracts::permissioning::decode_bool_result;
use healthchain_contracts::{
    ACCOUNT_INGRESS_ADDRESS, ACCOUNT_RULES_ADDRESS, AccountRules, HealthRegistry, Kind,
    PatientRecord, RECORDS_ADDRESS, REGISTRY_ADDRESS,
};
use healthchain_ibft::NodeKey;
use jsonrpsee_core::rpc_params;
use tokio::sync::oneshot;

use super::rpc::{Rpc, SETUP_GAS, Sender, SignedTx, WRITE_GAS, bench_key};
use super::tracker::{Included, Tracker};

/// Most transactions one sender has in flight in a set-up wave (the pool refuses nonces
/// more than `max-nonce-distance`, 1,024 by default, ahead).
const WAVE: usize = 800;
/// Accounts per `addAccounts` call.
const PERMIT_CHUNK: usize = 100;

/// What the workload needs of its accounts.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Needs {
    /// Balance for value transfers.
    pub(crate) funds: bool,
    /// Doctor roles, a patient each and that patient's consent.
    pub(crate) roles: bool,
    /// A first record per patient (to read).
    pub(crate) records: bool,
}

/// The accounts of a run: sender `i` is a doctor writing about patient `i`.
pub(crate) struct Cast {
    pub(crate) senders: Vec<Sender>,
    pub(crate) patients: Vec<Address>,
    /// One record id per patient (with `Needs::records`).
    pub(crate) records: Vec<u64>,
}

/// The kinds a bench patient grants its doctor.
pub(crate) fn granted_kinds() -> u16 {
    Kind::Prescription.bit() | Kind::Diagnosis.bit()
}

/// A unique record reference for `(seed, sender, n)`: its raw CID text and content hash.
pub(crate) fn record_ref(tag: &str) -> (String, B256) {
    let cid = healthchain_blobs::Cid::of(tag.as_bytes());
    (cid.to_string(), cid.sha256())
}

/// The calldata of a doctor's new prescription about `patient`.
pub(crate) fn write_call(patient: Address, tag: &str, supersedes: u64) -> Bytes {
    let (cid, hash) = record_ref(tag);
    if supersedes == 0 {
        PatientRecord::healthRecordStoreCall {
            patient,
            kind: Kind::Prescription as u8,
            cid,
            contentHash: hash,
        }
        .abi_encode()
        .into()
    } else {
        PatientRecord::addRecordCall {
            patient,
            kind: Kind::Prescription as u8,
            cid,
            contentHash: hash,
            supersedes: U40::from(supersedes),
        }
        .abi_encode()
        .into()
    }
}

/// The record id in a `RecordAdded` log of `logs`.
pub(crate) fn record_id(logs: &[serde_json::Value]) -> Option<u64> {
    let topic = format!("{:#x}", PatientRecord::RecordAdded::SIGNATURE_HASH);
    logs.iter()
        .find(|l| l["topics"][0].as_str() == Some(topic.as_str()))
        .and_then(|l| l["topics"][1].as_str())
        .and_then(|t| t.parse::<U256>().ok())
        .map(|id| id.saturating_to())
}

/// Sends `txs` (each sender's in nonce order) and waits until all are included; any
/// refusal or revert fails the set-up with what happened.
pub(crate) async fn wave(
    rpc: &Rpc,
    tracker: &Arc<Tracker>,
    what: &str,
    txs: Vec<SignedTx>,
) -> anyhow::Result<Vec<Included>> {
    if txs.is_empty() {
        return Ok(Vec::new());
    }
    let mut waits = Vec::with_capacity(txs.len());
    for tx in &txs {
        let (notify, wait) = oneshot::channel();
        tracker.expect(tx.hash, None, Some(notify));
        waits.push(wait);
    }
    for (tx, result) in txs.iter().zip(rpc.send(&txs).await) {
        if let Err(why) = result {
            bail!(
                "set-up ({what}): the node refused transaction {}: {why}",
                tx.hash
            );
        }
    }
    let mut out = Vec::with_capacity(waits.len());
    for (tx, wait) in txs.iter().zip(waits) {
        let included = tokio::time::timeout(Duration::from_secs(120), wait)
            .await
            .with_context(|| format!("set-up ({what}): {} not included within 120 s", tx.hash))?
            .with_context(|| format!("set-up ({what}): lost track of {}", tx.hash))?;
        if !included.ok {
            bail!("set-up ({what}): transaction {} reverted", tx.hash);
        }
        out.push(included);
    }
    Ok(out)
}

/// Runs `txs` of one sender in waves of [`WAVE`].
async fn waves(
    rpc: &Rpc,
    tracker: &Arc<Tracker>,
    what: &str,
    txs: Vec<SignedTx>,
) -> anyhow::Result<Vec<Included>> {
    let mut out = Vec::new();
    for chunk in txs.chunks(WAVE) {
        out.extend(wave(rpc, tracker, what, chunk.to_vec()).await?);
    }
    Ok(out)
}

fn role_of(result: &Result<Bytes, String>) -> anyhow::Result<(u8, bool)> {
    let data = result
        .as_ref()
        .map_err(|e| anyhow::anyhow!("roleOf: {e}"))?;
    let decoded = HealthRegistry::roleOfCall::abi_decode_returns(data)
        .context("roleOf: undecodable answer (are the health contracts in genesis?)")?;
    Ok((decoded.role, decoded.active))
}

/// Whether a call answered ABI `true`.
fn flag(result: &Result<Bytes, String>) -> bool {
    result
        .as_ref()
        .is_ok_and(|d| matches!(decode_bool_result(d), Ok(true)))
}

/// Prepares `count` senders of `seed` (and their patients) for a workload that `needs`.
pub(crate) async fn prepare(
    rpc: &Rpc,
    tracker: &Arc<Tracker>,
    admin: &NodeKey,
    seed: u64,
    count: usize,
    needs: Needs,
) -> anyhow::Result<Cast> {
    let chain = rpc.chain_id;
    let doctors: Vec<NodeKey> = (0..count).map(|i| bench_key(seed, "sender", i)).collect();
    let patients: Vec<NodeKey> = if needs.roles {
        (0..count).map(|i| bench_key(seed, "patient", i)).collect()
    } else {
        Vec::new()
    };
    let hospital = bench_key(seed, "hospital", 0);
    let mut everyone: Vec<&NodeKey> = vec![admin];
    everyone.extend(doctors.iter());
    everyone.extend(patients.iter());
    if needs.roles {
        everyone.push(&hospital);
    }
    let addresses: Vec<Address> = everyone.iter().map(|k| k.address()).collect();
    let nonces = rpc.nonces(&addresses).await?;
    let mut senders: Vec<Sender> = everyone
        .iter()
        .zip(nonces)
        .map(|(key, nonce)| Sender {
            key: (*key).clone(),
            nonce,
        })
        .collect();
    let mut admin_s = senders.remove(0);
    let mut hospital_s = needs.roles.then(|| senders.pop()).flatten();
    let mut patient_s: Vec<Sender> = senders.split_off(count);
    let mut doctor_s = senders;

    // 1. Account rules (when the chain has them) and funds.
    let mut first = Vec::new();
    let code: Bytes = rpc
        .request(
            "eth_getCode",
            rpc_params![ACCOUNT_INGRESS_ADDRESS, "latest"],
        )
        .await?;
    if !code.is_empty() {
        let checks: Vec<(Address, Bytes)> = addresses[1..]
            .iter()
            .map(|a| {
                (
                    ACCOUNT_RULES_ADDRESS,
                    AccountRules::accountPermittedCall { account: *a }
                        .abi_encode()
                        .into(),
                )
            })
            .collect();
        let permitted = rpc.calls(&checks).await?;
        let missing: Vec<Address> = addresses[1..]
            .iter()
            .zip(&permitted)
            .filter(|(_, p)| !flag(p))
            .map(|(a, _)| *a)
            .collect();
        for list in missing.chunks(PERMIT_CHUNK) {
            let data = AccountRules::addAccountsCall {
                list: list.to_vec(),
            }
            .abi_encode();
            let gas = 80_000 * list.len() as u64 + 200_000;
            first.push(admin_s.sign(chain, ACCOUNT_RULES_ADDRESS, U256::ZERO, gas, data.into())?);
        }
    }
    if needs.funds {
        let params = doctor_s
            .iter()
            .map(|s| rpc_params![s.key.address(), "latest"])
            .collect();
        let balances = rpc.batch::<U256>("eth_getBalance", params).await?;
        let unit = U256::from(10u64).pow(U256::from(18u64));
        for (s, balance) in doctor_s.iter().zip(balances) {
            if balance.map_err(|e| anyhow::anyhow!(e))? < unit {
                first.push(admin_s.sign(chain, s.key.address(), unit, 21_000, Bytes::new())?);
            }
        }
    }
    if needs.roles {
        let hospital_role = rpc
            .calls(&[(REGISTRY_ADDRESS, roles_call(hospital.address()))])
            .await?;
        if role_of(&hospital_role[0])?.0 == 0 {
            let data = HealthRegistry::registerHospitalCall {
                hospital: hospital.address(),
                r#ref: B256::repeat_byte(0xb5),
            }
            .abi_encode();
            first.push(admin_s.sign(
                chain,
                REGISTRY_ADDRESS,
                U256::ZERO,
                SETUP_GAS,
                data.into(),
            )?);
        }
    }
    waves(rpc, tracker, "permissions, funds, hospital", first).await?;
    if !needs.roles {
        return Ok(Cast {
            senders: doctor_s,
            patients: Vec::new(),
            records: Vec::new(),
        });
    }

    // 2. Doctors (by the ministry admin) and patients (by the hospital).
    let hospital_s = hospital_s.as_mut().context("hospital")?;
    let doctor_roles = roles_of(rpc, &doctor_s).await?;
    let patient_roles = roles_of(rpc, &patient_s).await?;
    let by_admin = register(chain, &mut admin_s, &doctor_s, &doctor_roles, |doctor| {
        HealthRegistry::addDoctorCall {
            doctor,
            r#ref: B256::repeat_byte(0xd0),
        }
        .abi_encode()
    })?;
    let by_hospital = register(chain, hospital_s, &patient_s, &patient_roles, |patient| {
        HealthRegistry::addPatientCall {
            patient,
            r#ref: B256::repeat_byte(0xba),
        }
        .abi_encode()
    })?;
    // Both senders' waves side by side.
    let mut i = 0;
    while i < by_admin.len().max(by_hospital.len()) {
        let mut txs: Vec<SignedTx> = by_admin.iter().skip(i).take(WAVE).cloned().collect();
        txs.extend(by_hospital.iter().skip(i).take(WAVE).cloned());
        wave(rpc, tracker, "doctors and patients", txs).await?;
        i += WAVE;
    }

    // 3. Each patient's consent for its doctor.
    let consent_checks: Vec<(Address, Bytes)> = patient_s
        .iter()
        .zip(&doctor_s)
        .map(|(p, d)| {
            (
                RECORDS_ADDRESS,
                PatientRecord::hasConsentCall {
                    patient: p.key.address(),
                    grantee: d.key.address(),
                    kind: Kind::Prescription as u8,
                }
                .abi_encode()
                .into(),
            )
        })
        .collect();
    let consents = rpc.calls(&consent_checks).await?;
    let mut grants = Vec::new();
    for ((p, d), has) in patient_s.iter_mut().zip(&doctor_s).zip(&consents) {
        if !flag(has) {
            let data = PatientRecord::grantConsentCall {
                grantee: d.key.address(),
                kinds: granted_kinds(),
                expiresAt: U40::ZERO,
            }
            .abi_encode();
            grants.push(p.sign(chain, RECORDS_ADDRESS, U256::ZERO, SETUP_GAS, data.into())?);
        }
    }
    for chunk in grants.chunks(4 * WAVE) {
        wave(rpc, tracker, "consent", chunk.to_vec()).await?;
    }

    // 4. A first record per patient, to read.
    let mut records = Vec::new();
    if needs.records {
        let counts = rpc
            .calls(
                &patient_s
                    .iter()
                    .map(|p| {
                        (
                            RECORDS_ADDRESS,
                            PatientRecord::recordIdsOfCall {
                                subject: p.key.address(),
                                offset: U256::ZERO,
                                limit: U256::from(1),
                            }
                            .abi_encode()
                            .into(),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
            .await?;
        let mut writes = Vec::new();
        let mut slots = Vec::new();
        for (i, ((d, p), ids)) in doctor_s.iter_mut().zip(&patient_s).zip(&counts).enumerate() {
            let first = ids
                .as_ref()
                .ok()
                .and_then(|data| PatientRecord::recordIdsOfCall::abi_decode_returns(data).ok())
                .and_then(|ids| ids.first().map(|id| id.to::<u64>()));
            match first {
                Some(id) => records.push(id),
                None => {
                    let tag = format!("bench/{seed}/seed-record/{i}");
                    let data = write_call(p.key.address(), &tag, 0);
                    writes.push(d.sign(chain, RECORDS_ADDRESS, U256::ZERO, WRITE_GAS, data)?);
                    slots.push(records.len());
                    records.push(0);
                }
            }
        }
        for (chunk, slot_chunk) in writes.chunks(4 * WAVE).zip(slots.chunks(4 * WAVE)) {
            let included = wave(rpc, tracker, "first records", chunk.to_vec()).await?;
            for (inc, slot) in included.iter().zip(slot_chunk) {
                records[*slot] =
                    record_id(&inc.logs).context("a first record without its RecordAdded log")?;
            }
        }
    }
    Ok(Cast {
        patients: patient_s.iter().map(|p| p.key.address()).collect(),
        senders: doctor_s,
        records,
    })
}

/// `signer`'s registry calls (`call(account)`) for each of `accounts` without a role yet.
fn register(
    chain: u64,
    signer: &mut Sender,
    accounts: &[Sender],
    roles: &[Result<Bytes, String>],
    call: impl Fn(Address) -> Vec<u8>,
) -> anyhow::Result<Vec<SignedTx>> {
    let mut out = Vec::new();
    for (account, role) in accounts.iter().zip(roles) {
        if role_of(role)?.0 == 0 {
            let data = call(account.key.address());
            out.push(signer.sign(chain, REGISTRY_ADDRESS, U256::ZERO, SETUP_GAS, data.into())?);
        }
    }
    Ok(out)
}

/// The registry's `roleOf` answers for `accounts`.
async fn roles_of(rpc: &Rpc, accounts: &[Sender]) -> anyhow::Result<Vec<Result<Bytes, String>>> {
    let calls: Vec<(Address, Bytes)> = accounts
        .iter()
        .map(|s| (REGISTRY_ADDRESS, roles_call(s.key.address())))
        .collect();
    rpc.calls(&calls).await
}

fn roles_call(account: Address) -> Bytes {
    HealthRegistry::roleOfCall { account }.abi_encode().into()
}
