// Shared helpers of the ethers suites: where the node is, the funded keys, raw JSON-RPC,
// deployment and bounded waiting.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import assert from "node:assert/strict";
import { ContractFactory, JsonRpcProvider, Wallet, WebSocketProvider } from "ethers";
import { artifact } from "./compile.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));

export const HTTP_URL = process.env.HC_HTTP_URL ?? "http://127.0.0.1:8545";
export const WS_URL = process.env.HC_WS_URL ?? "ws://127.0.0.1:8546";
export const KEYS_FILE =
  process.env.HC_KEYS_FILE ?? path.join(here, "..", "..", "..", "genesis", "dev-keys.json");
export const CHAIN_ID = 1337n;

/** The funded development accounts: [{ address, privateKey }]. */
export const ACCOUNTS = JSON.parse(readFileSync(KEYS_FILE, "utf8")).accounts;

// Which accounts each suite signs with, so suites never race on a nonce even when node's
// test runner runs files in parallel. The Python suite uses 12..19.
export const ACCOUNT = {
  contract: 0,
  load: [1, 2, 3, 4, 5, 6, 7, 8],
  badInput: 9,
  filters: 10,
  basics: 11,
};

export { artifact };

// ethers by default answers an identical request made within 250 ms from a cache, so two
// back-to-back sends read the same "pending" nonce and the second replaces the first (at
// equal zero prices a replacement is accepted). The suites turn the cache off so every
// assertion sees the node's answer of the moment.
const PROVIDER_OPTIONS = { pollingInterval: 200, cacheTimeout: -1 };

/** An HTTP provider that polls fast (the dev chain seals a block a second). */
export function httpProvider() {
  return new JsonRpcProvider(HTTP_URL, undefined, PROVIDER_OPTIONS);
}

export function wsProvider() {
  return new WebSocketProvider(WS_URL, undefined, PROVIDER_OPTIONS);
}

/** The signer of development account `i`, checked against the keys file. */
export function wallet(i, provider) {
  const entry = ACCOUNTS[i];
  assert.ok(entry, `no development account #${i} in ${KEYS_FILE}`);
  const w = new Wallet(entry.privateKey, provider);
  assert.equal(w.address.toLowerCase(), entry.address.toLowerCase(), `key #${i} signs for another address`);
  return w;
}

/** Rejects after `ms` with a message naming what timed out. */
export async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let nextId = 1;

/** POSTs a body (string or object) and returns { status, headers, text, json }. */
export async function post(body, { headers = {}, timeoutMs = 15000 } = {}) {
  const res = await fetch(HTTP_URL, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** One raw JSON-RPC call; returns the whole response object ({ result } or { error }). */
export async function rpcRaw(method, params = []) {
  const id = nextId++;
  const res = await post({ jsonrpc: "2.0", id, method, params });
  assert.equal(res.status, 200, `${method}: HTTP ${res.status}: ${res.text}`);
  assert.ok(res.json, `${method}: response is not JSON: ${res.text}`);
  assert.equal(res.json.jsonrpc, "2.0", `${method}: ${res.text}`);
  assert.equal(res.json.id, id, `${method}: response id mismatch: ${res.text}`);
  return res.json;
}

/** One raw JSON-RPC call that must succeed; returns its result. */
export async function rpc(method, params = []) {
  const res = await rpcRaw(method, params);
  assert.ok(!("error" in res), `${method}(${JSON.stringify(params)}) failed: ${JSON.stringify(res.error)}`);
  assert.ok("result" in res, `${method}: no result: ${JSON.stringify(res)}`);
  return res.result;
}

/** One raw JSON-RPC call that must fail; returns its error object. */
export async function rpcError(method, params = []) {
  const res = await rpcRaw(method, params);
  assert.ok(
    "error" in res,
    `${method}(${JSON.stringify(params).slice(0, 200)}) should have failed but returned ${JSON.stringify(res.result)}`,
  );
  assert.equal(typeof res.error.code, "number", JSON.stringify(res.error));
  assert.equal(typeof res.error.message, "string", JSON.stringify(res.error));
  return res.error;
}

/** The node still answers eth_blockNumber. */
export async function assertAlive(after) {
  const res = await withTimeout(rpcRaw("eth_blockNumber"), 5000, `eth_blockNumber after ${after}`);
  assert.match(res.result ?? "", /^0x[0-9a-f]+$/, `eth_blockNumber after ${after}: ${JSON.stringify(res)}`);
}

/** Waits until the head is at least `n`. */
export async function waitForBlock(n, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const head = BigInt(await rpc("eth_blockNumber"));
    if (head >= BigInt(n)) return head;
    if (Date.now() > deadline) throw new Error(`head stuck at ${head}, wanted ${n}`);
    await sleep(100);
  }
}

/** Waits for a mined receipt (ethers), bounded. */
export async function receipt(provider, hash, timeoutMs = 30000) {
  const r = await provider.waitForTransaction(hash, 1, timeoutMs);
  assert.ok(r, `no receipt for ${hash}`);
  return r;
}

/** Deploys E2E with `start` as the counter's initial value; returns the contract. */
export async function deployE2E(signer, start = 0n) {
  const art = artifact();
  const factory = new ContractFactory(art.abi, art.bytecode, signer);
  const contract = await factory.deploy(start);
  await withTimeout(contract.waitForDeployment(), 30000, "E2E deployment");
  return contract;
}

/** The dev chain accepts any gas price, including 0; the suites still ask the node. */
export async function fees(provider) {
  const [gasPrice, tip] = await Promise.all([
    provider.send("eth_gasPrice", []),
    provider.send("eth_maxPriorityFeePerGas", []),
  ]);
  return { gasPrice: BigInt(gasPrice), tip: BigInt(tip) };
}

/** A fixed pseudo-random permutation (xorshift), so load ordering is deterministic. */
export function shuffled(items, seed = 0x2545f491) {
  const out = items.slice();
  let s = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export const HEX = /^0x[0-9a-f]*$/;
export const QUANTITY = /^0x(0|[1-9a-f][0-9a-f]*)$/;
export const HASH = /^0x[0-9a-f]{64}$/;

/** A bare WebSocket JSON-RPC client, to see subscription traffic exactly as sent. */
export class WsClient {
  static async connect(url = WS_URL, timeoutMs = 10000) {
    const { WebSocket } = await import("ws");
    const ws = new WebSocket(url);
    await withTimeout(
      new Promise((resolve, reject) => {
        ws.once("open", resolve);
        ws.once("error", reject);
      }),
      timeoutMs,
      `WebSocket connect to ${url}`,
    );
    return new WsClient(ws);
  }

  constructor(ws) {
    this.ws = ws;
    this.id = 1;
    this.pending = new Map();
    this.notifications = new Map(); // subscription id -> [result]
    this.waiters = [];
    this.raw = [];
    ws.on("message", (data) => {
      const text = data.toString();
      this.raw.push(text);
      const msg = JSON.parse(text);
      if (msg.id !== undefined && this.pending.has(msg.id)) {
        this.pending.get(msg.id)(msg);
        this.pending.delete(msg.id);
      } else if (msg.method === "eth_subscription") {
        const { subscription, result } = msg.params;
        if (!this.notifications.has(subscription)) this.notifications.set(subscription, []);
        this.notifications.get(subscription).push(result);
        for (const w of this.waiters.slice()) w();
      }
    });
  }

  /** The whole response ({ result } or { error }). */
  async request(method, params = [], timeoutMs = 10000) {
    const id = this.id++;
    const reply = new Promise((resolve) => this.pending.set(id, resolve));
    this.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    return withTimeout(reply, timeoutMs, `WS ${method}`);
  }

  async call(method, params = []) {
    const res = await this.request(method, params);
    assert.ok(!("error" in res), `WS ${method} failed: ${JSON.stringify(res.error)}`);
    return res.result;
  }

  /** Waits until subscription `id` has delivered at least `n` items; returns them. */
  async waitFor(id, n, timeoutMs = 20000) {
    const have = () => (this.notifications.get(id) ?? []).length >= n;
    if (!have()) {
      let waiter;
      try {
        await withTimeout(
          new Promise((resolve) => {
            waiter = () => have() && resolve();
            this.waiters.push(waiter);
          }),
          timeoutMs,
          `${n} notifications on subscription ${id} (got ${(this.notifications.get(id) ?? []).length})`,
        );
      } finally {
        this.waiters = this.waiters.filter((w) => w !== waiter);
      }
    }
    return this.notifications.get(id);
  }

  close() {
    this.ws.close();
  }
}

/**
 * Verifies a Merkle-Patricia proof (eth_getProof) of `key` (already hashed, hex) against
 * `root`. Returns the RLP-encoded leaf value (hex), or null for a proof of absence; throws
 * if the proof does not hash up to the root.
 */
export async function verifyMptProof(root, hashedKey, proof) {
  const { decodeRlp, keccak256, getBytes, hexlify } = await import("ethers");
  const nibbles = [...getBytes(hashedKey)].flatMap((b) => [b >> 4, b & 15]);
  const nodes = new Map(proof.map((p) => [keccak256(p), p]));
  let ref = root; // a 32-byte hash, or an already-decoded inline node
  let at = 0;
  for (let steps = 0; steps < 130; steps++) {
    let node;
    if (typeof ref === "string") {
      const raw = nodes.get(ref.toLowerCase());
      if (!raw) throw new Error(`proof lacks node ${ref} (at nibble ${at})`);
      node = decodeRlp(raw);
    } else {
      node = ref;
    }
    if (!Array.isArray(node)) throw new Error("proof node is not a list");
    if (node.length === 17) {
      if (at === nibbles.length) return node[16] === "0x" ? null : node[16];
      const child = node[nibbles[at++]];
      if (child === "0x") return null;
      ref = child;
      continue;
    }
    if (node.length !== 2) throw new Error(`proof node has ${node.length} items`);
    const path = [...getBytes(node[0])].flatMap((b) => [b >> 4, b & 15]);
    const flag = path[0];
    const rest = path.slice(flag & 1 ? 1 : 2);
    const matches = rest.every((n, i) => nibbles[at + i] === n);
    if (flag >= 2) {
      // Leaf.
      return matches && at + rest.length === nibbles.length ? node[1] : null;
    }
    if (!matches) return null;
    at += rest.length;
    ref = node[1];
  }
  throw new Error(`proof too deep (${hexlify(hashedKey)})`);
}

/** The 2048-bit logs bloom (yellow paper 4.3.1) of `logs` ({ address, topics }), as hex. */
export async function bloomOf(logs) {
  const { keccak256, getBytes, hexlify } = await import("ethers");
  const bloom = new Uint8Array(256);
  const add = (item) => {
    const h = getBytes(keccak256(item));
    for (const i of [0, 2, 4]) {
      const bit = ((h[i] << 8) | h[i + 1]) & 2047;
      bloom[255 - (bit >> 3)] |= 1 << (bit & 7);
    }
  };
  for (const log of logs) {
    add(log.address);
    for (const t of log.topics) add(t);
  }
  return hexlify(bloom);
}

const rlpInt = (n) => (BigInt(n) === 0n ? "0x" : "0x" + (BigInt(n).toString(16).length % 2 ? "0" : "") + BigInt(n).toString(16));

/** The root of the Merkle-Patricia trie of an ordered list of encoded items (key rlp(i)). */
export async function orderedTrieRoot(items) {
  const { encodeRlp, keccak256, getBytes, hexlify } = await import("ethers");
  const toNibbles = (hex) => [...getBytes(hex)].flatMap((b) => [b >> 4, b & 15]);
  const hp = (nibbles, leaf) => {
    const flag = (leaf ? 2 : 0) + (nibbles.length % 2);
    const all = flag & 1 ? [flag, ...nibbles] : [flag, 0, ...nibbles];
    const out = new Uint8Array(all.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = (all[2 * i] << 4) | all[2 * i + 1];
    return hexlify(out);
  };
  const ref = (node) => {
    const enc = encodeRlp(node);
    return getBytes(enc).length < 32 ? node : keccak256(enc);
  };
  const build = (pairs) => {
    if (pairs.length === 1) return [hp(pairs[0].k, true), pairs[0].v];
    let c = 0;
    while (pairs.every((p) => p.k.length > c && p.k[c] === pairs[0].k[c])) c++;
    if (c > 0) {
      return [hp(pairs[0].k.slice(0, c), false), ref(build(pairs.map((p) => ({ k: p.k.slice(c), v: p.v }))))];
    }
    const branch = [];
    for (let i = 0; i < 16; i++) {
      const sub = pairs.filter((p) => p.k.length > 0 && p.k[0] === i).map((p) => ({ k: p.k.slice(1), v: p.v }));
      branch.push(sub.length ? ref(build(sub)) : "0x");
    }
    branch.push(pairs.find((p) => p.k.length === 0)?.v ?? "0x");
    return branch;
  };
  if (items.length === 0) return keccak256(encodeRlp("0x"));
  const pairs = items.map((v, i) => ({ k: toNibbles(encodeRlp(rlpInt(i))), v }));
  return keccak256(encodeRlp(build(pairs)));
}

/** A transaction re-encoded from its JSON-RPC object (checks the fields reproduce the hash). */
export async function encodeRpcTransaction(t) {
  const { Transaction, keccak256 } = await import("ethers");
  const type = Number(BigInt(t.type));
  const fields = {
    type,
    chainId: t.chainId === undefined ? undefined : BigInt(t.chainId),
    nonce: Number(BigInt(t.nonce)),
    to: t.to,
    value: BigInt(t.value),
    data: t.input,
    gasLimit: BigInt(t.gas),
    signature: { r: t.r, s: t.s, ...(type === 0 ? { v: BigInt(t.v) } : { yParity: Number(BigInt(t.yParity ?? t.v)) }) },
  };
  if (type === 0 || type === 1) fields.gasPrice = BigInt(t.gasPrice);
  else {
    fields.maxFeePerGas = BigInt(t.maxFeePerGas);
    fields.maxPriorityFeePerGas = BigInt(t.maxPriorityFeePerGas);
  }
  if (type !== 0) fields.accessList = t.accessList ?? [];
  const serialized = Transaction.from(fields).serialized;
  assert.equal(keccak256(serialized), t.hash, `transaction ${t.hash}: its JSON fields do not re-encode to its hash`);
  return serialized;
}

/** A receipt's consensus encoding (EIP-2718) from its JSON-RPC object. */
export async function encodeRpcReceipt(r) {
  const { encodeRlp, concat } = await import("ethers");
  const body = encodeRlp([
    BigInt(r.status) === 1n ? "0x01" : "0x",
    rlpInt(r.cumulativeGasUsed),
    r.logsBloom,
    r.logs.map((l) => [l.address, l.topics, l.data]),
  ]);
  const type = Number(BigInt(r.type ?? 0));
  return type === 0 ? body : concat([rlpInt(type), body]);
}
