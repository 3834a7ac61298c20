// Chain identity, fees, blocks and their links, batches, pool-aware nonces: the read side of
// the RPC as ethers sees it and as sent on the wire.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Transaction, keccak256, toBeHex, toUtf8Bytes } from "ethers";
import {
  ACCOUNT,
  HASH,
  QUANTITY,
  httpProvider,
  post,
  receipt,
  rpc,
  rpcError,
  waitForBlock,
  wallet,
} from "./lib.mjs";

const T = { timeout: 60000 };
const EMPTY_UNCLES = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347";
let provider, signer;

before(() => {
  provider = httpProvider();
  signer = wallet(ACCOUNT.basics, provider);
});
after(() => provider?.destroy());

test("chain identity: eth_chainId, net_version, ethers network", T, async () => {
  assert.equal(await rpc("eth_chainId"), "0x539");
  assert.equal(await rpc("net_version"), "1337");
  assert.equal((await provider.getNetwork()).chainId, 1337n);
  assert.equal(typeof (await rpc("net_listening")), "boolean");
  assert.match(await rpc("net_peerCount"), QUANTITY);
  const version = await rpc("web3_clientVersion");
  assert.match(version, /healthchain/i);
  assert.equal(await rpc("eth_syncing"), false);
  assert.deepEqual(await rpc("eth_accounts"), []);
  assert.equal(await rpc("eth_mining"), false);
});

test("dev network: four IBFT 2.0 validators take turns proposing", T, async () => {
  assert.equal(await rpc("net_listening"), true);
  assert.equal(await rpc("net_peerCount"), "0x3");
  const validators = await rpc("ibft_getValidatorsByBlockNumber", ["latest"]);
  assert.equal(validators.length, 4, JSON.stringify(validators));
  const info = await rpc("admin_nodeInfo");
  assert.match(info.enode, /^enode:\/\/[0-9a-f]{128}@127\.0\.0\.1:\d+$/);
  // Proposers rotate: the last eight blocks have at least three different miners, all
  // validators.
  const head = BigInt(await rpc("eth_blockNumber"));
  let from = head - 7n;
  if (from < 1n) {
    await new Promise((r) => setTimeout(r, Number(8n - head) * 1100));
    from = 1n;
  }
  const miners = new Set();
  for (let n = from; n < from + 8n; n++) {
    const block = await rpc("eth_getBlockByNumber", ["0x" + n.toString(16), false]);
    assert.ok(validators.includes(block.miner), `block ${n} by ${block.miner}`);
    miners.add(block.miner);
  }
  assert.ok(miners.size >= 3, `only ${[...miners]} proposed`);
});

test("web3_sha3 is keccak-256", T, async () => {
  const data = "0x" + Buffer.from("healthchain").toString("hex");
  assert.equal(await rpc("web3_sha3", [data]), keccak256(toUtf8Bytes("healthchain")));
  assert.equal(await rpc("web3_sha3", ["0x"]), keccak256("0x"));
});

test("fees: zero base fee chain", T, async () => {
  const gasPrice = BigInt(await rpc("eth_gasPrice"));
  const tip = BigInt(await rpc("eth_maxPriorityFeePerGas"));
  assert.ok(gasPrice >= 0n);
  assert.ok(tip >= 0n);
  const head = BigInt(await rpc("eth_blockNumber"));
  const hist = await rpc("eth_feeHistory", ["0x4", "latest", [25, 75]]);
  const count = head + 1n < 4n ? head + 1n : 4n;
  assert.equal(BigInt(hist.oldestBlock), head - count + 1n);
  assert.equal(hist.baseFeePerGas.length, Number(count) + 1, "one base fee per block plus the next");
  for (const b of hist.baseFeePerGas) assert.equal(BigInt(b), 0n, "zero base fee");
  assert.equal(hist.gasUsedRatio.length, Number(count));
  for (const r of hist.gasUsedRatio) assert.ok(r >= 0 && r <= 1, `gasUsedRatio ${r}`);
  assert.equal(hist.reward.length, Number(count));
  for (const r of hist.reward) assert.equal(r.length, 2);
  const fd = await provider.getFeeData();
  assert.equal(fd.gasPrice, gasPrice);
});

test("blocks advance and link: number, hash, parentHash, timestamp, gas, base fee", T, async () => {
  const start = BigInt(await rpc("eth_blockNumber"));
  await waitForBlock(start + 2n, 15000);
  const head = BigInt(await rpc("eth_blockNumber"));
  assert.ok(head >= start + 2n);

  let prev = null;
  for (let n = head - 2n; n <= head; n++) {
    const b = await rpc("eth_getBlockByNumber", [toBeHex(n), false]);
    assert.ok(b, `block ${n}`);
    assert.equal(BigInt(b.number), n);
    assert.match(b.hash, HASH);
    assert.deepEqual(await rpc("eth_getBlockByHash", [b.hash, false]), b, "by hash = by number");
    assert.ok(BigInt(b.gasUsed) <= BigInt(b.gasLimit));
    assert.equal(BigInt(b.gasLimit), 1_000_000_000n);
    assert.ok("baseFeePerGas" in b, "London blocks carry baseFeePerGas");
    assert.equal(BigInt(b.baseFeePerGas), 0n);
    assert.ok(Array.isArray(b.transactions));
    assert.deepEqual(b.uncles, []);
    assert.equal(b.sha3Uncles, EMPTY_UNCLES);
    assert.match(b.stateRoot, HASH);
    assert.match(b.transactionsRoot, HASH);
    assert.match(b.receiptsRoot, HASH);
    assert.match(b.logsBloom, /^0x[0-9a-f]{512}$/);
    assert.match(b.miner, /^0x[0-9a-fA-F]{40}$/);
    assert.match(b.size, QUANTITY);
    // Shanghai and Cancun header fields.
    assert.match(b.withdrawalsRoot ?? "", HASH, "withdrawalsRoot (Shanghai)");
    assert.match(b.blobGasUsed ?? "", QUANTITY, "blobGasUsed (Cancun)");
    assert.match(b.excessBlobGas ?? "", QUANTITY, "excessBlobGas (Cancun)");
    assert.match(b.parentBeaconBlockRoot ?? "", HASH, "parentBeaconBlockRoot (Cancun)");
    if (prev) {
      assert.equal(b.parentHash, prev.hash, `block ${n} links to ${n - 1n}`);
      assert.ok(BigInt(b.timestamp) > BigInt(prev.timestamp), "timestamps increase");
    }
    prev = b;
  }

  // ethers' view of the same block.
  const eb = await provider.getBlock(Number(head));
  assert.equal(eb.hash, prev.hash);
  assert.equal(eb.baseFeePerGas, 0n);
  assert.equal(eb.number, Number(head));

  // Timestamps are near wall-clock time (seconds).
  const now = BigInt(Math.floor(Date.now() / 1000));
  assert.ok(BigInt(prev.timestamp) <= now + 2n && BigInt(prev.timestamp) >= now - 60n, `timestamp ${BigInt(prev.timestamp)} vs now ${now}`);

  // Genesis and beyond-the-head.
  const genesis = await rpc("eth_getBlockByNumber", ["earliest", false]);
  assert.equal(BigInt(genesis.number), 0n);
  assert.equal(genesis.parentHash, "0x" + "00".repeat(32));
  assert.equal(await rpc("eth_getBlockByNumber", [toBeHex(head + 1000n), false]), null);
  for (const tag of ["latest", "safe", "finalized", "pending"]) {
    const b = await rpc("eth_getBlockByNumber", [tag, false]);
    assert.ok(b && BigInt(b.number) >= head, `${tag} block`);
  }
  assert.equal(BigInt(await rpc("eth_getUncleCountByBlockNumber", [toBeHex(head)])), 0n);
  assert.equal(BigInt(await rpc("eth_getUncleCountByBlockHash", [prev.hash])), 0n);
  assert.equal(await rpc("eth_getUncleByBlockNumberAndIndex", [toBeHex(head), "0x0"]), null);
  assert.equal(await rpc("eth_getUncleByBlockHashAndIndex", [prev.hash, "0x0"]), null);
});

test("a block with a transaction: full objects, gasUsed, value transfer, balances", T, async () => {
  const to = wallet(ACCOUNT.filters, provider).address;
  const balanceBefore = await provider.getBalance(to);
  const tx = await signer.sendTransaction({ to, value: 12345n });
  const r = await receipt(provider, tx.hash);
  assert.equal(r.status, 1);
  assert.equal(r.gasUsed, 21000n);
  assert.equal(await provider.getBalance(to, r.blockNumber), balanceBefore + 12345n);
  assert.equal(await provider.getBalance(to, r.blockNumber - 1), balanceBefore);

  const b = await rpc("eth_getBlockByNumber", [toBeHex(r.blockNumber), true]);
  assert.equal(b.hash, r.blockHash);
  const full = b.transactions.find((t) => t.hash === tx.hash);
  assert.ok(full, "full block holds the transaction object");
  assert.equal(full.blockHash, b.hash);
  assert.equal(BigInt(full.blockNumber), BigInt(r.blockNumber));
  assert.equal(BigInt(full.value), 12345n);
  assert.equal(full.from.toLowerCase(), signer.address.toLowerCase());
  assert.ok(BigInt(b.gasUsed) >= 21000n && BigInt(b.gasUsed) <= BigInt(b.gasLimit));
  const hashes = await rpc("eth_getBlockByNumber", [toBeHex(r.blockNumber), false]);
  assert.deepEqual(hashes.transactions, b.transactions.map((t) => t.hash));
});

test("batch requests answer each call by id, errors included", T, async () => {
  const res = await post([
    { jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] },
    { jsonrpc: "2.0", id: "two", method: "eth_blockNumber", params: [] },
    { jsonrpc: "2.0", id: 3, method: "eth_noSuchMethod", params: [] },
    { jsonrpc: "2.0", id: 4, method: "eth_getBalance", params: [signer.address, "latest"] },
    { jsonrpc: "2.0", id: 5, method: "web3_sha3", params: ["0x00"] },
  ]);
  assert.equal(res.status, 200);
  assert.ok(Array.isArray(res.json), res.text);
  assert.equal(res.json.length, 5);
  const byId = new Map(res.json.map((r) => [r.id, r]));
  assert.equal(byId.get(1).result, "0x539");
  assert.match(byId.get("two").result, QUANTITY);
  assert.equal(byId.get(3).error?.code, -32601);
  assert.equal(BigInt(byId.get(4).result), await provider.getBalance(signer.address));
  assert.equal(byId.get(5).result, keccak256("0x00"));

  // An empty batch is an invalid request.
  const empty = await post("[]");
  const e = Array.isArray(empty.json) ? empty.json[0] : empty.json;
  assert.equal(e?.error?.code, -32600, `empty batch: HTTP ${empty.status} ${empty.text}`);

  // Notifications (no id) get no answer inside a batch.
  const mixed = await post([
    { jsonrpc: "2.0", method: "eth_blockNumber", params: [] },
    { jsonrpc: "2.0", id: 9, method: "eth_chainId", params: [] },
  ]);
  assert.equal(mixed.status, 200);
  assert.deepEqual(mixed.json.map((r) => r.id), [9], mixed.text);
});

test("eth_sendTransaction is refused with -32604", T, async () => {
  const err = await rpcError("eth_sendTransaction", [{ from: signer.address, to: signer.address, value: "0x1" }]);
  assert.equal(err.code, -32604, JSON.stringify(err));
});

test("getTransactionCount 'pending' counts pooled transactions; gaps queue until filled", T, async () => {
  // Start just after a block so the pool is observed before the next seal.
  const head = BigInt(await rpc("eth_blockNumber"));
  await waitForBlock(head + 1n);
  const base = await provider.getTransactionCount(signer.address, "latest");
  assert.equal(await provider.getTransactionCount(signer.address, "pending"), base);

  const to = wallet(ACCOUNT.badInput, provider).address;
  const sign = (nonce) =>
    signer.signTransaction({ type: 2, chainId: 1337n, nonce, to, value: 1n, gasLimit: 21000n, maxFeePerGas: 0n, maxPriorityFeePerGas: 0n });

  const batch = await Promise.all([0, 1, 2, 3, 4].map((i) => sign(base + i)));
  const gapped = await sign(base + 7);
  const hashes = [];
  for (const raw of batch) hashes.push(await rpc("eth_sendRawTransaction", [raw]));
  const gapHash = await rpc("eth_sendRawTransaction", [gapped]);
  assert.equal(gapHash, Transaction.from(gapped).hash);

  const res = await post([
    { jsonrpc: "2.0", id: 1, method: "eth_getTransactionCount", params: [signer.address, "pending"] },
    { jsonrpc: "2.0", id: 2, method: "eth_getTransactionCount", params: [signer.address, "latest"] },
    { jsonrpc: "2.0", id: 3, method: "txpool_status", params: [] },
  ]);
  const byId = new Map(res.json.map((r) => [r.id, r]));
  const pending = Number(BigInt(byId.get(1).result));
  const latest = Number(BigInt(byId.get(2).result));
  assert.equal(pending, base + 5, "pending nonce counts the 5 executable pooled txs, not the gapped one");
  assert.ok(latest >= base && latest <= base + 5);
  const status = byId.get(3).result;
  assert.ok(status && "pending" in status && "queued" in status, JSON.stringify(byId.get(3)));
  assert.ok(BigInt(status.queued) >= 1n, `the gapped tx is queued: ${JSON.stringify(status)}`);

  // The pool knows the gapped transaction by hash, not yet mined.
  const pooled = await rpc("eth_getTransactionByHash", [gapHash]);
  assert.ok(pooled, "pooled transaction is visible by hash");
  assert.equal(pooled.blockHash, null);
  assert.equal(pooled.blockNumber, null);

  // Fill the gap: everything mines, the nonce ends at base + 8.
  for (const n of [5, 6]) hashes.push(await rpc("eth_sendRawTransaction", [await sign(base + n)]));
  hashes.push(gapHash);
  const receipts = await Promise.all(hashes.map((h) => receipt(provider, h)));
  for (const r of receipts) assert.equal(r.status, 1);
  assert.equal(await provider.getTransactionCount(signer.address, "latest"), base + 8);
  assert.equal(await provider.getTransactionCount(signer.address, "pending"), base + 8);

  // Besu's pool views answer.
  const stats = await rpc("txpool_besuStatistics");
  assert.ok(stats && typeof stats === "object", JSON.stringify(stats));
  assert.ok(Array.isArray(await rpc("txpool_besuTransactions")));
});
