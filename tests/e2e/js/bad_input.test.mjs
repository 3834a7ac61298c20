// Bad input of every kind gets the right JSON-RPC error (or HTTP status), and the node keeps
// answering afterwards.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { Wallet, toBeHex } from "ethers";
import {
  ACCOUNT,
  HTTP_URL,
  assertAlive,
  httpProvider,
  post,
  receipt,
  rpc,
  rpcError,
  wallet,
} from "./lib.mjs";

const T = { timeout: 60000 };
let provider, signer, to;

before(() => {
  provider = httpProvider();
  signer = wallet(ACCOUNT.badInput, provider);
  to = wallet(ACCOUNT.filters, provider).address;
});
after(() => provider?.destroy());

/** Signs a transfer from `signer` with the given overrides (no network lookups). */
function sign(overrides = {}, w = signer) {
  return w.signTransaction({
    type: 2,
    chainId: 1337n,
    to,
    value: 1n,
    gasLimit: 21000n,
    maxFeePerGas: 0n,
    maxPriorityFeePerGas: 0n,
    ...overrides,
  });
}

/**
 * A raw HTTP request with full control of the headers (fetch forbids setting Host). With
 * `expect: 100-continue` the body is sent only once the server asks for it.
 */
function rawHttp({ body, headers }) {
  const url = new URL(HTTP_URL);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers, timeout: 15000 },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    if (headers.expect) {
      req.on("continue", () => req.end(body));
      req.flushHeaders();
    } else {
      req.end(body);
    }
  });
}

test("malformed JSON -> -32700", T, async () => {
  for (const body of ['{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"', "not json at all", "{,}"]) {
    const res = await post(body);
    const err = (Array.isArray(res.json) ? res.json[0] : res.json)?.error;
    assert.equal(err?.code, -32700, `body ${JSON.stringify(body)}: HTTP ${res.status} ${res.text}`);
    assert.ok([200, 400].includes(res.status), `HTTP ${res.status}`);
    await assertAlive(`malformed JSON ${JSON.stringify(body)}`);
  }
});

test("not a JSON-RPC request -> -32600", T, async () => {
  for (const body of ['{"foo":1}', '"just a string"', "42"]) {
    const res = await post(body);
    const err = (Array.isArray(res.json) ? res.json[0] : res.json)?.error;
    assert.ok([-32600, -32700].includes(err?.code), `body ${body}: HTTP ${res.status} ${res.text}`);
  }
  await assertAlive("invalid requests");
});

test("deeply nested JSON is rejected without harm", T, async () => {
  const depth = 100000;
  const res = await post("[".repeat(depth) + "]".repeat(depth));
  const err = (Array.isArray(res.json) ? res.json[0] : res.json)?.error;
  assert.ok(res.status >= 400 || err, `HTTP ${res.status} ${res.text.slice(0, 200)}`);
  await assertAlive("deeply nested JSON");
});

test("unknown method -> -32601", T, async () => {
  for (const method of ["eth_noSuchMethod", "debug_traceTransaction", "admin_addPeer", "foo"]) {
    const err = await rpcError(method, []);
    assert.equal(err.code, -32601, `${method}: ${JSON.stringify(err)}`);
  }
  await assertAlive("unknown methods");
});

test("wrong parameter types -> -32602", T, async () => {
  const cases = [
    ["eth_getBalance", ["0x1234", "latest"]],
    ["eth_getBalance", [12345, "latest"]],
    ["eth_getBlockByNumber", ["latest", "yes"]],
    ["eth_getBlockByNumber", ["not-a-tag", false]],
    ["eth_getBlockByNumber", []],
    ["eth_getBlockByHash", ["0x1234", false]],
    ["eth_getTransactionByHash", [42]],
    ["eth_sendRawTransaction", ["0xzz"]],
    ["eth_sendRawTransaction", []],
    ["eth_call", ["not an object", "latest"]],
    ["eth_call", [{ to: "0x000000000000000000000000000000000000beef", data: "0x01", input: "0x02" }, "latest"]],
    ["eth_getLogs", [{ fromBlock: "0x2", toBlock: "0x1" }]],
    // A malformed EIP-7702 delegation as override code (revm would panic on it unchecked).
    ["eth_call", [{ to: "0x000000000000000000000000000000000000beef" }, "latest", { "0x000000000000000000000000000000000000beef": { code: "0xef0100" } }]],
    ["eth_estimateGas", [{ to: "0x000000000000000000000000000000000000beef" }, "latest", { "0x000000000000000000000000000000000000beef": { code: "0xef01" } }]],
    ["eth_getStorageAt", [signer.address, "not a slot", "latest"]],
    ["web3_sha3", ["not hex"]],
  ];
  for (const [method, params] of cases) {
    const err = await rpcError(method, params);
    assert.equal(err.code, -32602, `${method}(${JSON.stringify(params)}): ${JSON.stringify(err)}`);
  }
  await assertAlive("wrong parameter types");
});

test("eth_getLogs beyond the head -> -32602", T, async () => {
  const head = BigInt(await rpc("eth_blockNumber"));
  const err = await rpcError("eth_getLogs", [{ fromBlock: "0x0", toBlock: toBeHex(head + 100000n) }]);
  assert.equal(err.code, -32602, JSON.stringify(err));
  await assertAlive("getLogs past the head");
});

test("undecodable raw transaction is rejected", T, async () => {
  for (const raw of ["0x", "0x1234", "0xf86c", "0x02" + "00".repeat(40)]) {
    const err = await rpcError("eth_sendRawTransaction", [raw]);
    assert.ok(err.code < 0, JSON.stringify(err));
  }
  await assertAlive("undecodable raw transactions");
});

test("wrong chain id and missing chain id are rejected", T, async () => {
  const nonce = await provider.getTransactionCount(signer.address, "pending");
  const wrong = await sign({ nonce, chainId: 1n });
  const err = await rpcError("eth_sendRawTransaction", [wrong]);
  assert.equal(err.code, -32000, JSON.stringify(err));
  assert.match(err.message, /chain ?id/i);

  // A legacy transaction signed without EIP-155.
  const unprotected = await signer.signTransaction({ type: 0, chainId: 0n, nonce, to, value: 1n, gasLimit: 21000n, gasPrice: 0n });
  const err2 = await rpcError("eth_sendRawTransaction", [unprotected]);
  assert.equal(err2.code, -32000, JSON.stringify(err2));
  assert.match(err2.message, /chain ?id/i);

  // ethers refuses to send on its own when the chain ids differ; the node was never asked.
  assert.equal(await provider.getTransactionCount(signer.address, "pending"), nonce);
  await assertAlive("wrong chain id");
});

test("nonce too low -> -32001; known transaction -> -32000", T, async () => {
  const nonce = await provider.getTransactionCount(signer.address, "pending");
  const raw = await sign({ nonce });
  const hash = await rpc("eth_sendRawTransaction", [raw]);
  const again = await rpcRaw2(raw);
  if (again.error) {
    assert.ok([-32000, -32001].includes(again.error.code), JSON.stringify(again.error));
  } else {
    assert.equal(again.result, hash, "a resent transaction answers its own hash");
  }
  assert.equal((await receipt(provider, hash)).status, 1);

  const stale = await sign({ nonce, value: 2n });
  const err = await rpcError("eth_sendRawTransaction", [stale]);
  assert.equal(err.code, -32001, JSON.stringify(err));
  assert.match(err.message, /nonce too low/i);
  await assertAlive("nonce too low");
});

async function rpcRaw2(raw) {
  const res = await post({ jsonrpc: "2.0", id: 7, method: "eth_sendRawTransaction", params: [raw] });
  return res.json;
}

test("transaction validation errors carry Besu's codes", T, async () => {
  const nonce = await provider.getTransactionCount(signer.address, "pending");

  const intrinsic = await rpcError("eth_sendRawTransaction", [await sign({ nonce, gasLimit: 20000n })]);
  assert.equal(intrinsic.code, -32003, JSON.stringify(intrinsic));

  const overBlock = await rpcError("eth_sendRawTransaction", [await sign({ nonce, gasLimit: 2_000_000_000n })]);
  assert.equal(overBlock.code, -32005, JSON.stringify(overBlock));

  // The dev chain is permissioned: an account the on-chain rules do not list is refused
  // before its balance is looked at (Besu's -32007).
  const stranger = Wallet.createRandom();
  const refused = await rpcError("eth_sendRawTransaction", [await sign({ nonce: 0, value: 1n }, stranger)]);
  assert.equal(refused.code, -32007, JSON.stringify(refused));
  assert.equal(refused.message, "Sender account not authorized to send transactions");

  const broke = await rpcError("eth_sendRawTransaction", [await sign({ nonce, value: 10n ** 40n })]);
  assert.equal(broke.code, -32004, JSON.stringify(broke));

  const tooFar = await rpcError("eth_sendRawTransaction", [await sign({ nonce: nonce + 100000 })]);
  assert.equal(tooFar.code, -32000, JSON.stringify(tooFar));

  const blob = await rpcError("eth_sendRawTransaction", [
    // An EIP-4844 envelope: type 3 is not accepted on this chain.
    "0x03" + (await sign({ nonce })).slice(4),
  ]);
  assert.ok(blob.code < 0, JSON.stringify(blob));

  // Nothing above entered the pool.
  assert.equal(await provider.getTransactionCount(signer.address, "pending"), nonce);
  await assertAlive("invalid transactions");
});

test("oversized request body (> 5 MiB) is refused", T, async () => {
  const filler = "00".repeat(3 * 1024 * 1024); // 6 MiB of hex digits
  const body = Buffer.from(
    JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_call", params: [{ to, data: "0x" + filler }, "latest"] }),
  );
  assert.ok(body.length > 5 * 1024 * 1024);

  // A client that announces the body and waits (Expect: 100-continue) gets a clean refusal.
  const res = await rawHttp({
    body,
    headers: { "content-type": "application/json", "content-length": body.length, expect: "100-continue" },
  });
  let jsonErr;
  try {
    jsonErr = JSON.parse(res.text).error;
  } catch {
    jsonErr = undefined;
  }
  assert.ok(res.status === 413 || jsonErr, `HTTP ${res.status}: ${res.text.slice(0, 200)}`);
  await assertAlive("oversized body (Expect: 100-continue)");

  // A client that just sends it (fetch, as ethers does): a refusal, or at worst a closed
  // connection; either way the node lives on.
  try {
    const plain = await post(body.toString(), { timeoutMs: 30000 });
    const err = (Array.isArray(plain.json) ? plain.json[0] : plain.json)?.error;
    assert.ok(plain.status === 413 || err, `HTTP ${plain.status}: ${plain.text.slice(0, 200)}`);
  } catch (err) {
    assert.match(String(err.cause?.code ?? err.code ?? err), /EPIPE|ECONNRESET|UND_ERR_SOCKET/, `${err} (${err.cause})`);
  }
  await assertAlive("oversized body");

  // Just under the limit is served (4 MiB of call data to an account without code).
  const okBody = JSON.stringify({
    jsonrpc: "2.0",
    id: 2,
    method: "eth_call",
    params: [{ to, data: "0x" + "00".repeat(2 * 1024 * 1024) }, "latest"],
  });
  const ok = await post(okBody, { timeoutMs: 30000 });
  assert.equal(ok.status, 200, ok.text.slice(0, 200));
  assert.equal(ok.json?.result, "0x", ok.text.slice(0, 200));
});

test("a batch over the size limit is refused", T, async () => {
  const calls = Array.from({ length: 1025 }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "eth_chainId", params: [] }));
  const res = await post(calls);
  const err = (Array.isArray(res.json) ? res.json[0] : res.json)?.error;
  assert.ok(err || res.status >= 400, `HTTP ${res.status}: ${res.text.slice(0, 200)}`);
  // The largest allowed batch is served whole.
  const okRes = await post(calls.slice(0, 1024));
  assert.equal(okRes.json?.length, 1024, okRes.text.slice(0, 200));
  await assertAlive("oversized batch");
});

test("foreign Host header is refused (DNS rebinding), localhost is served", T, async () => {
  const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] });
  const evil = await rawHttp({ body, headers: { host: "evil.example", "content-type": "application/json" } });
  assert.equal(evil.status, 403, `foreign Host: HTTP ${evil.status} ${evil.text}`);
  const port = new URL(HTTP_URL).port;
  const good = await rawHttp({ body, headers: { host: `localhost:${port}`, "content-type": "application/json" } });
  assert.equal(good.status, 200, good.text);
  assert.equal(JSON.parse(good.text).result, "0x539");
  await assertAlive("foreign Host header");
});

test("unknown filter id -> error", T, async () => {
  const err = await rpcError("eth_getFilterChanges", ["0xdeadbeef"]);
  assert.equal(err.code, -32000, JSON.stringify(err));
  await assertAlive("unknown filter");
});

test("expensive calls stay within [rpc] gas-cap and do not stall the node", T, async () => {
  // An infinite loop (JUMPDEST PUSH1 0 JUMP) placed by state override: every call to it runs
  // out of gas, so its cost is exactly the gas it is allowed. With the 50M gas cap that is a
  // fraction of a second; at the block gas limit (1e9) it is seconds of CPU per call.
  const loop = "0x000000000000000000000000000000000000100f";
  const override = { [loop]: { code: "0x5b600056" } };
  const calls = [
    ["eth_estimateGas", [{ to: loop }, "latest", override]],
    ["eth_estimateGas", [{ to: loop }, "latest", override]],
    ["eth_call", [{ to: loop, gas: "0x3b9aca00" }, "latest", override]],
    ["eth_call", [{ to: loop, gas: "0x3b9aca00" }, "latest", override]],
  ];
  const head = BigInt(await rpc("eth_blockNumber"));
  const started = Date.now();
  const heavy = Promise.all(
    calls.map(async ([method, params]) => {
      const t0 = Date.now();
      const res = await post({ jsonrpc: "2.0", id: 1, method, params }, { timeoutMs: 60000 });
      return { method, ms: Date.now() - t0, error: res.json?.error, result: res.json?.result };
    }),
  );
  // Meanwhile the node keeps answering cheap calls promptly.
  const latencies = [];
  for (let i = 0; i < 8; i++) {
    const t0 = Date.now();
    await rpc("eth_blockNumber");
    latencies.push(Date.now() - t0);
    await new Promise((r) => setTimeout(r, 150));
  }
  const results = await heavy;
  const total = Date.now() - started;
  for (const r of results) assert.ok(r.error, `${r.method} of an endless loop must fail: ${JSON.stringify(r)}`);
  const slowest = Math.max(...results.map((r) => r.ms));
  assert.ok(
    Math.max(...latencies) < 750,
    `eth_blockNumber took up to ${Math.max(...latencies)} ms while 4 endless-loop calls ran (${latencies.join(", ")} ms; ` +
      `the calls took ${results.map((r) => r.ms).join(", ")} ms): EVM work blocks the RPC runtime`,
  );
  assert.ok(
    slowest < 2500,
    `an endless-loop call took ${slowest} ms (${results.map((r) => `${r.method} ${r.ms} ms`).join(", ")}): ` +
      "the 50M gas cap was not applied",
  );
  // Blocks kept coming.
  assert.ok(BigInt(await rpc("eth_blockNumber")) > head || total < 1500, "block production continued");
  await assertAlive("expensive calls");
});
