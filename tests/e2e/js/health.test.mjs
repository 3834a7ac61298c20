// The health contracts' access rules over JSON-RPC on the dev network (contracts
// pre-deployed in genesis): every cell of the write table, the consent lifecycle, supersede
// and history, the paper's function names, regulator access requests, the audit trail
// rebuilt from eth_getLogs alone, and a scan that no plaintext identity reaches a
// transaction input or a storage slot. Prints the gas each operation used.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createCipheriv, createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { Contract, Interface, Wallet, hexlify, toUtf8Bytes } from "ethers";
import { HTTP_URL, httpProvider, wallet, sleep, rpcRaw } from "./lib.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = path.join(here, "..", "..", "..", "contracts", "artifacts");
const load = (name) => JSON.parse(readFileSync(path.join(ARTIFACTS, `${name}.json`), "utf8"));
const REGISTRY_ADDRESS = "0x0000000000000000000000000000000000001001";
const RECORDS_ADDRESS = "0x0000000000000000000000000000000000001002";
const ACCOUNT_RULES_ADDRESS = "0x0000000000000000000000000000000000008801";
const T = { timeout: 120000 };

const Role = { None: 0, Admin: 1, Hospital: 2, Doctor: 3, DiagnosticCenter: 4, Insurer: 5, Regulator: 6, Patient: 7, Relative: 8 };
const KINDS = [
  "GeneralHistory", "Prescription", "Diagnosis", "DiagnosticReport", "GeneralInformation",
  "ScannedImage", "InsuranceStatus", "PatientIdentity", "DoctorIdentity", "CenterIdentity", "InsurerIdentity",
];
const K = Object.fromEntries(KINDS.map((k, i) => [k, i]));
const bit = (k) => 1 << k;
const ALL = (1 << KINDS.length) - 1;
const NO_EXPIRY = (1n << 40n) - 1n;

let provider, admin, registry, records, registryIface, recordsIface;
const parties = {}; // name -> { wallet, role, identity }
const plaintexts = []; // every plaintext identity string used: must never reach the chain
const sentHashes = []; // every health transaction this suite sent
const gas = {}; // operation -> [gasUsed]
const cids = []; // CIDs made (record 1's is the positive control for the scans)

// ---- off-chain side: encrypt, hash, CID ---------------------------------------------------

function sha256(bytes) {
  return createHash("sha256").update(bytes).digest();
}

function base32(bytes) {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let out = "", buffer = 0, bits = 0;
  for (const b of bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += alphabet[(buffer >> bits) & 31];
    }
  }
  if (bits > 0) out += alphabet[(buffer << (5 - bits)) & 31];
  return out;
}

/** Encrypts a payload (AES-256-GCM, fresh key) and returns its CIDv1 and SHA-256. */
function encryptedRef(payload) {
  const key = randomBytes(32), iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const blob = Buffer.concat([iv, cipher.update(JSON.stringify(payload), "utf8"), cipher.final(), cipher.getAuthTag()]);
  const digest = sha256(blob);
  const cid = "b" + base32(Buffer.concat([Buffer.from([0x01, 0x55, 0x12, 0x20]), digest]));
  cids.push(cid);
  return { cid, hash: "0x" + digest.toString("hex") };
}

function newParty(name, role, identity) {
  const w = Wallet.createRandom().connect(provider);
  for (const v of Object.values(identity)) plaintexts.push(String(v));
  parties[name] = { wallet: w, role, identity, ref: encryptedRef(identity) };
  return parties[name];
}

// ---- chain side ---------------------------------------------------------------------------

// Gas is free on this chain: fresh accounts transact at price zero. A fixed gas limit lets
// refused calls be mined (status 0) instead of failing estimation.
const OVERRIDES = { gasLimit: 2_000_000n, maxFeePerGas: 0n, maxPriorityFeePerGas: 0n };

/** Sends `fn(args)` from `signer` (not waiting for it to be mined). */
async function send(signer, contract, fn, args) {
  const tx = await contract.connect(signer)[fn](...args, OVERRIDES);
  sentHashes.push(tx.hash);
  return { tx, fn };
}

async function mined({ tx, fn }, { expectStatus = 1, op = fn } = {}) {
  const receipt = await tx.wait(1, 30000).catch((err) => err.receipt ?? Promise.reject(err));
  assert.ok(receipt, `no receipt for ${fn} (${tx.hash})`);
  assert.equal(receipt.status, expectStatus, `${fn} ${tx.hash}: status ${receipt.status}, expected ${expectStatus}`);
  if (expectStatus === 1) (gas[op] ??= []).push(Number(receipt.gasUsed));
  return receipt;
}

async function ok(signer, contract, fn, args, op) {
  return mined(await send(signer, contract, fn, args), { op });
}

/** The custom error `fn(args)` reverts with, by name and arguments (eth_call). */
async function refusal(signer, contract, fn, args) {
  try {
    await contract.connect(signer)[fn].staticCall(...args, { from: signer.address });
  } catch (err) {
    assert.ok(err.revert, `${fn} failed without a decodable custom error: ${err.shortMessage ?? err}`);
    return err.revert;
  }
  return null;
}

/** Asserts that eth_call of `fn(args)` reverts with the custom error `error`. */
async function refusedByCall(signer, contract, fn, args, error) {
  const revert = await refusal(signer, contract, fn, args);
  assert.ok(revert, `${fn}(${args.join(", ")}) from ${signer.address} was allowed; expected ${error}`);
  assert.equal(revert.name, error, `${fn}: refused with ${revert.name}(${revert.args.join(", ")}), expected ${error}`);
  return revert;
}

/** A refused transaction, mined anyway: status 0 and no logs (nothing written). */
async function revertedOnChain(pending) {
  const receipt = await mined(pending, { expectStatus: 0 });
  assert.equal(receipt.logs.length, 0, `a refused ${pending.fn} emitted logs`);
}

/** `fn(args)` is refused with `error`, and when mined anyway reverts and writes nothing. */
async function refused(signer, contract, fn, args, error) {
  const revert = await refusedByCall(signer, contract, fn, args, error);
  const before = await records.recordCount();
  await revertedOnChain(await send(signer, contract, fn, args));
  assert.equal(await records.recordCount(), before, `a refused ${fn} changed the record count`);
  return revert;
}

async function latestTimestamp() {
  return BigInt((await provider.getBlock("latest")).timestamp);
}

before(async () => {
  provider = httpProvider();
  admin = wallet(0, provider); // the dev genesis' ministry admin
  const reg = load("HealthRegistry"), rec = load("PatientRecord");
  registryIface = new Interface(reg.abi);
  recordsIface = new Interface(rec.abi);
  registry = new Contract(REGISTRY_ADDRESS, reg.abi, provider);
  records = new Contract(RECORDS_ADDRESS, rec.abi, provider);
  assert.notEqual(await provider.getCode(REGISTRY_ADDRESS), "0x", "HealthRegistry is not in the dev genesis");
  assert.notEqual(await provider.getCode(RECORDS_ADDRESS), "0x", "PatientRecord is not in the dev genesis");
  const [role, active] = await registry.roleOf(admin.address);
  assert.equal(Number(role), Role.Admin);
  assert.equal(active, true);

  newParty("hospital", Role.Hospital, { name: "St Example General Hospital", licence: "HOSP-LIC-0091" });
  newParty("center", Role.DiagnosticCenter, { name: "Example Imaging Lab", licence: "DIAG-LIC-4410" });
  newParty("insurer", Role.Insurer, { name: "Example Mutual Insurance", licence: "INS-LIC-7781" });
  newParty("regulator", Role.Regulator, { name: "Dr Rhea Regulator", staffId: "REG-STAFF-3321" });
  newParty("doctor", Role.Doctor, { name: "Dr Alan Example", licence: "MED-LIC-55821", doctorId: "DOC-00417" });
  newParty("patient", Role.Patient, { name: "Alice Examplepatient", nationalId: "850101-4455-77", dob: "1985-01-01" });
  newParty("patient2", Role.Patient, { name: "Bob Secondpatient", nationalId: "900202-1122-33", dob: "1990-02-02" });
  newParty("relative", Role.Relative, { name: "Carol Examplerelative", nationalId: "610303-9988-11" });
  newParty("outsider", Role.None, { name: "Mallory Outsider" });

  // The dev chain is permissioned: the consortium admin (Account #0) lets the new accounts
  // transact through the on-chain account rules before anything else.
  const rules = new Contract(ACCOUNT_RULES_ADDRESS, load("AccountRules").abi, provider);
  const newAccounts = Object.values(parties).map((p) => p.wallet.address);
  await mined(await send(admin, rules, "addAccounts", [newAccounts]));
  for (const a of newAccounts) assert.equal(await rules.accountPermitted(a), true, `${a} not permitted`);

  // Registrations, each by the party the rules name.
  const pending = [];
  for (const [name, fn] of [["hospital", "registerHospital"], ["center", "addCenter"], ["insurer", "registerInsurer"], ["regulator", "registerRegulator"]]) {
    pending.push(await send(admin, registry, fn, [parties[name].wallet.address, parties[name].ref.hash]));
  }
  for (const p of pending) await mined(p);
  const h = parties.hospital.wallet;
  await ok(h, registry, "addDoctor", [parties.doctor.wallet.address, parties.doctor.ref.hash]);
  await ok(h, registry, "addPatient", [parties.patient.wallet.address, parties.patient.ref.hash]);
  // The second patient registers itself; the hospital confirms.
  await ok(parties.patient2.wallet, registry, "requestPatientRegistration", [parties.patient2.ref.hash]);
  await ok(h, registry, "confirmPatient", [parties.patient2.wallet.address]);
  await ok(parties.patient.wallet, registry, "addRelative", [parties.relative.wallet.address, parties.relative.ref.hash]);
  for (const [name, party] of Object.entries(parties)) {
    const [role] = await registry.roleOf(party.wallet.address);
    assert.equal(Number(role), party.role, `${name} has role ${role}`);
  }
});

after(() => {
  const rows = Object.entries(gas).map(([op, used]) => ({
    operation: op, calls: used.length, min: Math.min(...used), max: Math.max(...used),
  }));
  console.log("gas used per operation (dev network):");
  console.table(rows);
  provider?.destroy();
});

// ---- the write table ---------------------------------------------------------------------

const WRITERS = ["admin", "hospital", "doctor", "center", "insurer", "regulator", "patient", "relative", "outsider"];
const IDENTITY_OWNER = { PatientIdentity: Role.Patient, DoctorIdentity: Role.Doctor, CenterIdentity: Role.DiagnosticCenter, InsurerIdentity: Role.Insurer };
const WRITER_OF = {
  Prescription: Role.Doctor, Diagnosis: Role.Doctor,
  DiagnosticReport: Role.DiagnosticCenter, ScannedImage: Role.DiagnosticCenter,
  GeneralHistory: Role.Hospital, GeneralInformation: Role.Hospital,
  InsuranceStatus: Role.Insurer,
  ...IDENTITY_OWNER,
};

/** What the table in docs/contracts.md says for `writer` writing `kind`. */
function expected(kind, writerRole) {
  if (writerRole === Role.None) return "NotRegistered";
  return WRITER_OF[kind] === writerRole ? "ok" : "KindNotAllowed";
}

test("write table: every kind × every role; allowed cells mine, refused cells revert with the rule's error and write nothing", T, async () => {
  const patient = parties.patient.wallet;
  const roleOf = (name) => (name === "admin" ? Role.Admin : parties[name].role);
  const signerOf = (name) => (name === "admin" ? admin : parties[name].wallet);
  // Consent is not what this table tests: the patient grants every kind to every party,
  // and the hospital admits the patient (its once-per-admission allowance).
  for (const name of ["hospital", "doctor", "center", "insurer", "regulator", "relative"]) {
    await ok(patient, records, "grantConsent", [parties[name].wallet.address, ALL, 0], "grantConsent (all kinds)");
  }
  await ok(parties.hospital.wallet, records, "admitPatient", [patient.address]);

  const startCount = await records.recordCount();
  let allowed = 0;
  const cells = [], allowedTxs = [], refusedTxs = [];
  for (const kind of KINDS) {
    for (const writer of WRITERS) {
      const signer = signerOf(writer);
      // Identity records are about their writer; the rest about the patient.
      const subject = kind in IDENTITY_OWNER ? signer.address : patient.address;
      const payload = kind in IDENTITY_OWNER && writer !== "admin" && writer !== "outsider" ? parties[writer].identity : { note: `${kind} by ${writer}` };
      const ref = encryptedRef(payload);
      const want = expected(kind, roleOf(writer));
      const args = [subject, K[kind], ref.cid, ref.hash, 0];
      // The state this table depends on is settled: send every cell, then check them all.
      if (want === "ok") {
        assert.equal(await refusal(signer, records, "addRecord", args), null, `${kind} by ${writer} is refused`);
        allowedTxs.push({ ...(await send(signer, records, "addRecord", args)), op: `addRecord ${kind}` });
        allowed++;
      } else {
        const revert = await refusedByCall(signer, records, "addRecord", args, want);
        if (want === "KindNotAllowed") {
          assert.equal(Number(revert.args[0]), K[kind]);
          assert.equal(Number(revert.args[1]), roleOf(writer));
        }
        refusedTxs.push(await send(signer, records, "addRecord", args));
      }
      cells.push(`${kind}/${writer}=${want}`);
    }
  }
  for (const p of allowedTxs) await mined(p, { op: p.op });
  for (const p of refusedTxs) await revertedOnChain(p);
  assert.equal(cells.length, KINDS.length * WRITERS.length);
  assert.equal(allowed, 11, "one writer role per kind");
  assert.equal(await records.recordCount(), startCount + BigInt(allowed));

  // Identity of someone else, and a second general-history write in one admission.
  const other = encryptedRef({ note: "forged identity" });
  await refused(parties.doctor.wallet, records, "addRecord", [parties.patient.wallet.address, K.DoctorIdentity, other.cid, other.hash, 0], "NotOwnIdentity");
  await refused(patient, records, "addRecord", [parties.patient2.wallet.address, K.PatientIdentity, other.cid, other.hash, 0], "NotOwnIdentity");
  await refused(parties.hospital.wallet, records, "addRecord", [patient.address, K.GeneralHistory, other.cid, other.hash, 0], "NoAdmission");
  // Records must be about a registered patient, and carry a CID and a hash.
  await refused(parties.doctor.wallet, records, "addRecord", [parties.outsider.wallet.address, K.Diagnosis, other.cid, other.hash, 0], "NotRegistered");
  await refused(parties.doctor.wallet, records, "addRecord", [patient.address, K.Diagnosis, "", other.hash, 0], "InvalidCid");
  await refused(parties.doctor.wallet, records, "addRecord", [patient.address, K.Diagnosis, other.cid, "0x" + "00".repeat(32), 0], "InvalidContentHash");
  // Registration rules: only admins register hospitals; only hospitals register patients.
  const ref = encryptedRef({ note: "x" }).hash;
  await refused(parties.doctor.wallet, registry, "registerHospital", [Wallet.createRandom().address, ref], "CallerNotRole");
  await refused(parties.doctor.wallet, registry, "addPatient", [Wallet.createRandom().address, ref], "CallerNotRole");
  await refused(admin, registry, "addPatient", [Wallet.createRandom().address, ref], "CallerNotRole");
  await refused(parties.hospital.wallet, registry, "addDoctor", [parties.patient.wallet.address, ref], "AlreadyRegistered");
});

// ---- consent lifecycle -------------------------------------------------------------------

test("consent lifecycle: no grant → refused; grant → doctor writes; revoke → refused; expiry → refused", T, async () => {
  const p2 = parties.patient2.wallet, doctor = parties.doctor.wallet;
  const write = (kind) => {
    const ref = encryptedRef({ note: `consent test ${kind}` });
    return [p2.address, K[kind], ref.cid, ref.hash, 0];
  };
  await refused(doctor, records, "addRecord", write("Diagnosis"), "NoConsent");
  await refused(parties.insurer.wallet, records, "addRecord", write("InsuranceStatus"), "NoConsent");
  await refused(parties.center.wallet, records, "addRecord", write("DiagnosticReport"), "NoConsent");

  // Grant diagnosis only, until revoked.
  await ok(p2, records, "grantConsent", [doctor.address, bit(K.Diagnosis), 0], "grantConsent (one kind)");
  assert.equal(await records.hasConsent(p2.address, doctor.address, K.Diagnosis), true);
  await ok(doctor, records, "addRecord", write("Diagnosis"), "addRecord Diagnosis");
  await refused(doctor, records, "addRecord", write("Prescription"), "NoConsent"); // per kind

  // Revoke: refused again; the grant state says so.
  await ok(p2, records, "revokeConsent", [doctor.address, bit(K.Diagnosis)]);
  assert.equal(await records.hasConsent(p2.address, doctor.address, K.Diagnosis), false);
  await refused(doctor, records, "addRecord", write("Diagnosis"), "NoConsent");

  // A grant that expires a few seconds from now: allowed before, ConsentExpired after.
  const expiresAt = (await latestTimestamp()) + 4n;
  await ok(p2, records, "grantConsent", [doctor.address, bit(K.Prescription), expiresAt], "grantConsent (one kind)");
  const consent = await records.consentOf(p2.address, doctor.address);
  assert.equal(consent[K.Prescription], expiresAt);
  assert.equal(consent[K.Diagnosis], 0n);
  const deadline = Date.now() + 30000;
  while ((await latestTimestamp()) <= expiresAt + 1n) {
    assert.ok(Date.now() < deadline, "the chain did not pass the expiry within 30 s");
    await sleep(500);
  }
  const revert = await refused(doctor, records, "addRecord", write("Prescription"), "ConsentExpired");
  assert.equal(revert.args[3], expiresAt);

  // Grants to unregistered accounts, to oneself, of no kind, or already expired are refused.
  await refused(p2, records, "grantConsent", [parties.outsider.wallet.address, bit(K.Diagnosis), 0], "NotRegistered");
  await refused(p2, records, "grantConsent", [p2.address, bit(K.Diagnosis), 0], "SelfGrant");
  await refused(p2, records, "grantConsent", [doctor.address, 0, 0], "InvalidKinds");
  await refused(p2, records, "grantConsent", [doctor.address, bit(K.Diagnosis), 1], "InvalidExpiry");
  await refused(doctor, records, "grantConsent", [p2.address, bit(K.Diagnosis), 0], "CallerNotRole");

  // Hospitals need an admission for this patient: none → refused; after one → once.
  const history = write("GeneralHistory");
  await refused(parties.hospital.wallet, records, "addRecord", history, "NoAdmission");
  await ok(parties.hospital.wallet, records, "admitPatient", [p2.address]);
  await ok(parties.hospital.wallet, records, "addRecord", history, "addRecord GeneralHistory");
  await refused(parties.hospital.wallet, records, "addRecord", write("GeneralHistory"), "NoAdmission");
});

// ---- supersede and history ---------------------------------------------------------------

test("supersede and history: corrections keep the old record, marked; the chain reads back in order", T, async () => {
  const patient = parties.patient.wallet, doctor = parties.doctor.wallet;
  const idOf = (receipt) => recordsIface.parseLog(receipt.logs.find((l) => l.address.toLowerCase() === RECORDS_ADDRESS)).args.id;
  const write = async (supersedes, kind = "Diagnosis", op = "addRecord Diagnosis") => {
    const ref = encryptedRef({ note: `diagnosis v${supersedes}` });
    return [ref, idOf(await ok(doctor, records, "addRecord", [patient.address, K[kind], ref.cid, ref.hash, supersedes], op))];
  };
  const [ref1, r1] = await write(0);
  const [ref2, r2] = await write(r1, "Diagnosis", "addRecord (supersede)");
  const old = await records.healthRecordGet(r1);
  assert.equal(old.supersededBy, r2);
  assert.equal(old.cid, ref1.cid, "the superseded record is unchanged");
  assert.equal((await records.healthRecordGet(r2)).supersedes, r1);
  assert.deepEqual([...(await records.historyOf(r1))], [r1, r2]);

  // A record can be superseded once; a correction keeps the subject and kind.
  const again = encryptedRef({ note: "second correction of r1" });
  const revert = await refused(doctor, records, "addRecord", [patient.address, K.Diagnosis, again.cid, again.hash, r1], "AlreadySuperseded");
  assert.equal(revert.args[1], r2);
  await refused(doctor, records, "addRecord", [patient.address, K.Prescription, again.cid, again.hash, r2], "SupersedeMismatch");
  await refused(doctor, records, "addRecord", [parties.patient2.wallet.address, K.Diagnosis, again.cid, again.hash, r2], "NoConsent");
  await refused(doctor, records, "addRecord", [patient.address, K.Diagnosis, again.cid, again.hash, 999999], "UnknownRecord");

  const [, r3] = await write(r2, "Diagnosis", "addRecord (supersede)");
  const chain = [r1, r2, r3];
  for (const id of chain) assert.deepEqual([...(await records.historyOf(id))], chain);
  assert.equal((await records.healthRecordGet(r3)).supersededBy, 0n);
  // All three stay listed for the patient, in order.
  const count = await records.recordCountOf(patient.address);
  const ids = [...(await records.recordIdsOf(patient.address, 0, count))];
  assert.deepEqual(ids.slice(-3), chain);
  assert.equal(ref2.cid, (await records.healthRecordGet(r2)).cid);
});

// ---- the paper's functions, access requests, read rule ------------------------------------

test("paper names: addDoctor/getDoctor, addCenter/getDiagnosticCenter, addPatient/getPatient, healthRecordStore (onlyDoctor), diagnosticReportStore, healthRecordGet, healthReportGet", T, async () => {
  const patient = parties.patient.wallet;
  const doctorInfo = await registry.getDoctor(parties.doctor.wallet.address);
  assert.equal(doctorInfo.registeredBy, parties.hospital.wallet.address);
  assert.equal(doctorInfo.ref, parties.doctor.ref.hash);
  assert.equal((await registry.getDiagnosticCenter(parties.center.wallet.address)).registeredBy, admin.address);
  assert.equal((await registry.getPatient(patient.address)).registeredBy, parties.hospital.wallet.address);
  assert.equal((await refusal(admin, registry, "getDoctor", [patient.address])).name, "NotRegistered");

  const rx = encryptedRef({ note: "paper prescription" });
  const receipt = await ok(parties.doctor.wallet, records, "healthRecordStore", [patient.address, K.Prescription, rx.cid, rx.hash]);
  const id = recordsIface.parseLog(receipt.logs[0]).args.id;
  const got = await records.healthRecordGet(id);
  assert.equal(got.cid, rx.cid);
  assert.equal(got.author, parties.doctor.wallet.address);
  assert.equal(Number(got.kind), K.Prescription);
  await refused(parties.center.wallet, records, "healthRecordStore", [patient.address, K.Prescription, rx.cid, rx.hash], "CallerNotRole");
  await refused(parties.doctor.wallet, records, "healthRecordStore", [patient.address, K.DiagnosticReport, rx.cid, rx.hash], "KindNotAllowed");

  const report = encryptedRef({ note: "paper lab report" });
  const r = await ok(parties.center.wallet, records, "diagnosticReportStore", [patient.address, report.cid, report.hash]);
  const reportId = recordsIface.parseLog(r.logs[0]).args.id;
  const [cid, hash] = await records.healthReportGet(reportId);
  assert.equal(cid, report.cid);
  assert.equal(hash, report.hash);
  assert.equal((await refusal(admin, records, "healthReportGet", [id])).name, "NotAReport");
  await refused(parties.doctor.wallet, records, "diagnosticReportStore", [patient.address, report.cid, report.hash], "CallerNotRole");
});

test("regulator access requests are logged; the read rule needs a request and the consortium policy", T, async () => {
  const patient = parties.patient.wallet, regulator = parties.regulator.wallet;
  const rx = encryptedRef({ note: "record a regulator may ask for" });
  const receipt = await ok(parties.doctor.wallet, records, "addRecord", [patient.address, K.Diagnosis, rx.cid, rx.hash, 0], "addRecord Diagnosis");
  const id = recordsIface.parseLog(receipt.logs[0]).args.id;

  // The patient granted the regulator everything in the write-table test: take it back, so
  // only the regulator path is left.
  await ok(patient, records, "revokeConsent", [regulator.address, ALL]);
  assert.equal(await records.canRead(regulator.address, id), false);
  const purpose = "0x" + sha256(Buffer.from("ethics approval EA-2026-114")).toString("hex");
  const before = await records.accessRequestCount();
  const req = await ok(regulator, records, "requestAccess", [patient.address, bit(K.Diagnosis), purpose]);
  const event = recordsIface.parseLog(req.logs[0]);
  assert.equal(event.name, "AccessRequested");
  assert.equal(event.args.requester, regulator.address);
  assert.equal(await records.accessRequestCount(), before + 1n);
  assert.equal((await records.accessRequestAt(before)).purpose, purpose);
  assert.equal(await records.canRead(regulator.address, id), false, "no policy yet");
  await refused(parties.doctor.wallet, records, "setRegulatorPolicy", [bit(K.Diagnosis)], "CallerNotRole");
  await ok(admin, records, "setRegulatorPolicy", [bit(K.Diagnosis)]);
  assert.equal(await records.canRead(regulator.address, id), true);
  await refused(parties.doctor.wallet, records, "requestAccess", [patient.address, bit(K.Diagnosis), purpose], "CallerNotRole");

  // The others: the subject and author read; an outsider does not; the relative only with a grant.
  assert.equal(await records.canRead(patient.address, id), true);
  assert.equal(await records.canRead(parties.doctor.wallet.address, id), true);
  assert.equal(await records.canRead(parties.outsider.wallet.address, id), false);
  assert.equal(await records.canRead(parties.relative.wallet.address, id), true);
  await ok(patient, records, "revokeConsent", [parties.relative.wallet.address, ALL]);
  assert.equal(await records.canRead(parties.relative.wallet.address, id), false);

  // Deactivation: the hospital that registered the doctor ends it; writes stop.
  await refused(parties.center.wallet, registry, "deactivate", [parties.doctor.wallet.address], "NotRegistrar");
  await ok(parties.hospital.wallet, registry, "deactivate", [parties.doctor.wallet.address]);
  const late = encryptedRef({ note: "after deactivation" });
  await refused(parties.doctor.wallet, records, "addRecord", [patient.address, K.Diagnosis, late.cid, late.hash, 0], "InactiveAccount");
});

// ---- audit from logs, plaintext scans ----------------------------------------------------

test("audit trail: eth_getLogs alone rebuilds every action, registrations and current consent", T, async () => {
  const head = await provider.getBlockNumber();
  const logs = await provider.getLogs({ address: [REGISTRY_ADDRESS, RECORDS_ADDRESS], fromBlock: 0, toBlock: head });
  // Every log the suite's transactions emitted from the health contracts (receipts) is in
  // the rebuilt trail, and the trail holds nothing else. (The admin's permissioning call
  // logs from the rules contracts, which the query does not ask for.)
  const health = new Set([REGISTRY_ADDRESS, RECORDS_ADDRESS].map((a) => a.toLowerCase()));
  const fromReceipts = [];
  for (const hash of sentHashes) {
    const receipt = await provider.getTransactionReceipt(hash);
    if (!receipt || receipt.blockNumber > head) continue;
    for (const l of receipt.logs) {
      if (health.has(l.address.toLowerCase())) fromReceipts.push(`${l.transactionHash}:${l.index}`);
    }
  }
  assert.deepEqual(logs.map((l) => `${l.transactionHash}:${l.index}`).sort(), fromReceipts.sort());

  const roles = new Map(), consent = new Map(), recordIds = [];
  let requests = 0;
  for (const log of logs) {
    const iface = log.address.toLowerCase() === REGISTRY_ADDRESS ? registryIface : recordsIface;
    const e = iface.parseLog(log);
    assert.ok(e, `undecodable log ${log.transactionHash}:${log.index}`);
    const a = e.args;
    switch (e.name) {
      case "Registered": roles.set(a.account, Number(a.role)); break;
      case "Deactivated": roles.set(a.account, -Number(a.role)); break;
      case "RecordAdded": recordIds.push(a.id); break;
      case "AccessRequested": requests++; break;
      case "ConsentGranted":
      case "ConsentRevoked":
        for (let k = 0; k < KINDS.length; k++) {
          if ((Number(a.kinds) & bit(k)) === 0) continue;
          consent.set(`${a.patient}/${a.grantee}/${k}`, e.name === "ConsentGranted" ? a.expiresAt : 0n);
        }
        break;
    }
  }
  // Registrations: every party, with its role (negative: deactivated).
  for (const [name, party] of Object.entries(parties)) {
    if (party.role === Role.None) continue;
    const want = name === "doctor" ? -Role.Doctor : party.role;
    assert.equal(roles.get(party.wallet.address), want, `${name}'s registration from logs`);
  }
  // Records: ids 1..recordCount, each once (the chain may hold records of earlier runs only
  // if the node was reused; this suite's dev node is fresh).
  const count = await records.recordCount();
  assert.deepEqual(recordIds, Array.from({ length: Number(count) }, (_, i) => BigInt(i + 1)));
  assert.equal(BigInt(requests), await records.accessRequestCount());
  // Consent rebuilt from grant/revoke events equals the contract's state.
  for (const [key, expiresAt] of consent) {
    const [patient, grantee, k] = key.split("/");
    const onChain = await records.consentOf(patient, grantee);
    assert.equal(onChain[Number(k)], expiresAt, `consent ${key}`);
  }
  assert.ok(consent.size >= 6 * KINDS.length);

  // The operator CLI rebuilds the same trail (healthchain health audit --json).
  const bin = process.env.HC_BIN;
  if (bin) {
    const { execFileSync } = await import("node:child_process");
    const out = execFileSync(bin, ["health", "--rpc-url", HTTP_URL, "audit", "--to-block", String(head), "--json"], { encoding: "utf8" });
    const entries = out.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(entries.length, logs.length);
    assert.equal(entries.filter((e) => e.event === "RecordAdded").length, recordIds.length);
  }
});

test("no plaintext identity appears in any transaction input or storage slot", T, async () => {
  assert.ok(plaintexts.length >= 15);
  const needles = plaintexts.map((s) => ({ s, hex: hexlify(toUtf8Bytes(s)).slice(2).toLowerCase() }));
  const head = await provider.getBlockNumber();
  let inputs = "";
  let txs = 0;
  for (let n = 0; n <= head; n++) {
    const block = await provider.send("eth_getBlockByNumber", ["0x" + n.toString(16), true]);
    for (const tx of block.transactions) {
      inputs += tx.input.slice(2).toLowerCase() + "|";
      txs++;
    }
  }
  // Positive control: the scan sees what the suite wrote (record 1's CID, read back from
  // the contract, is in some input).
  const firstCid = (await records.healthRecordGet(1)).cid;
  assert.ok(cids.includes(firstCid), `record 1's CID ${firstCid} is not one this suite made`);
  const cidHex = hexlify(toUtf8Bytes(firstCid)).slice(2);
  assert.ok(inputs.includes(cidHex), "the input scan does not see the CIDs written");
  for (const { s, hex } of needles) assert.ok(!inputs.includes(hex), `plaintext ${JSON.stringify(s)} found in a transaction input`);

  // Storage: every slot of both contracts, via debug_storageRangeAt at the start of a block
  // mined after the last write.
  const start = await provider.getBlockNumber();
  while ((await provider.getBlockNumber()) <= start) await sleep(200);
  const block = await provider.getBlock(start + 1);
  let slots = 0, storage = "";
  for (const address of [REGISTRY_ADDRESS, RECORDS_ADDRESS]) {
    let key = "0x" + "00".repeat(32);
    for (;;) {
      const res = await rpcRaw("debug_storageRangeAt", [block.hash, 0, address, key, 1024]);
      assert.ok(res.result, `debug_storageRangeAt: ${JSON.stringify(res.error)}`);
      for (const entry of Object.values(res.result.storage)) {
        storage += entry.value.slice(2).toLowerCase();
        slots++;
      }
      if (!res.result.nextKey) break;
      key = res.result.nextKey;
    }
  }
  assert.ok(slots > 100, `only ${slots} storage slots`);
  // Positive control: CIDs are long strings stored across slots; their bytes are there.
  assert.ok(storage.includes(cidHex.slice(0, 64)), "the storage scan does not see the CIDs written");
  for (const { s, hex } of needles) {
    // A plaintext could straddle slots, but the concatenation of a string's data slots is
    // contiguous in key order only by chance, so also check each 8-byte prefix.
    assert.ok(!storage.includes(hex), `plaintext ${JSON.stringify(s)} found in storage`);
    assert.ok(!storage.includes(hex.slice(0, 16)), `the start of plaintext ${JSON.stringify(s)} found in storage`);
  }
  console.log(`plaintext scan: ${needles.length} identity strings, ${txs} transactions, ${slots} storage slots: none found`);
});
