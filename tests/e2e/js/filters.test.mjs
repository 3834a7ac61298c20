// Polling filters: new blocks, pending transactions and logs, then uninstall.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Interface, zeroPadValue } from "ethers";
import {
  ACCOUNT,
  HASH,
  WsClient,
  artifact,
  deployE2E,
  httpProvider,
  receipt,
  rpc,
  sleep,
  waitForBlock,
  wallet,
} from "./lib.mjs";

const T = { timeout: 60000 };
let provider, signer, contract, address, iface;

before(async () => {
  provider = httpProvider();
  signer = wallet(ACCOUNT.filters, provider);
  contract = await deployE2E(signer, 0n);
  address = await contract.getAddress();
  iface = new Interface(artifact().abi);
});
after(() => provider?.destroy());

test("newBlockFilter: getFilterChanges returns each new block hash once, in order", T, async () => {
  const id = await rpc("eth_newBlockFilter");
  assert.match(id, /^0x[0-9a-f]+$/);
  const start = BigInt(await rpc("eth_blockNumber"));
  await waitForBlock(start + 3n);
  const first = await rpc("eth_getFilterChanges", [id]);
  assert.ok(Array.isArray(first));
  assert.ok(first.length >= 3, `expected >= 3 new blocks, got ${first.length}`);
  for (const h of first) assert.match(h, HASH);
  // They are consecutive canonical blocks after `start`, linked by parentHash.
  const blocks = [];
  for (const h of first) blocks.push(await rpc("eth_getBlockByHash", [h, false]));
  for (const [i, b] of blocks.entries()) {
    assert.ok(b, `block ${first[i]} exists`);
    assert.ok(BigInt(b.number) > start - 1n);
    if (i > 0) {
      assert.equal(BigInt(b.number), BigInt(blocks[i - 1].number) + 1n);
      assert.equal(b.parentHash, blocks[i - 1].hash);
    }
  }
  // The next poll holds only newer blocks.
  const lastSeen = BigInt(blocks.at(-1).number);
  await waitForBlock(lastSeen + 1n);
  const second = await rpc("eth_getFilterChanges", [id]);
  assert.ok(second.length >= 1);
  assert.ok(!second.some((h) => first.includes(h)), "no block reported twice");
  const next = await rpc("eth_getBlockByHash", [second[0], false]);
  assert.equal(BigInt(next.number), lastSeen + 1n);
  assert.equal(next.parentHash, blocks.at(-1).hash);

  assert.equal(await rpc("eth_uninstallFilter", [id]), true);
  assert.equal(await rpc("eth_uninstallFilter", [id]), false);
});

test("newPendingTransactionFilter sees submitted transaction hashes", T, async () => {
  const id = await rpc("eth_newPendingTransactionFilter");
  const to = wallet(ACCOUNT.basics, provider).address;
  const tx = await signer.sendTransaction({ to, value: 1n });
  await receipt(provider, tx.hash);
  const changes = await rpc("eth_getFilterChanges", [id]);
  assert.ok(changes.includes(tx.hash), `pending filter missed ${tx.hash}: ${JSON.stringify(changes)}`);
  const again = await rpc("eth_getFilterChanges", [id]);
  assert.ok(!again.includes(tx.hash), "a hash is reported once");
  assert.equal(await rpc("eth_uninstallFilter", [id]), true);
});

test("newFilter (logs): getFilterChanges and getFilterLogs match eth_getLogs", T, async () => {
  const topic = iface.getEvent("Registered").topicHash;
  // fromBlock pinned: without it getFilterLogs means "latest" at poll time (as in geth).
  const fromBlock = "0x" + (await provider.getBlockNumber()).toString(16);
  const filter = { fromBlock, address, topics: [topic, zeroPadValue(signer.address, 32)] };
  const id = await rpc("eth_newFilter", [filter]);
  const receipts = [];
  for (const k of [1n, 2n, 3n]) receipts.push(await (await contract.register(k, k)).wait(1, 30000));
  // Another event from the same contract that the topic filter excludes.
  await (await contract.increment()).wait(1, 30000);

  const changes = await rpc("eth_getFilterChanges", [id]);
  assert.deepEqual(
    changes.map((l) => l.transactionHash),
    receipts.map((r) => r.hash),
  );
  for (const l of changes) {
    assert.equal(l.topics[0], topic);
    assert.equal(l.removed, false);
  }
  assert.deepEqual(await rpc("eth_getFilterChanges", [id]), [], "nothing new since the last poll");

  const all = await rpc("eth_getFilterLogs", [id]);
  assert.deepEqual(
    all.map((l) => [l.transactionHash, l.logIndex, l.data]),
    changes.map((l) => [l.transactionHash, l.logIndex, l.data]),
  );
  assert.equal(await rpc("eth_uninstallFilter", [id]), true);
  assert.equal(await rpc("eth_uninstallFilter", [id]), false);
  const gone = await provider.send("eth_getFilterChanges", [id]).then(
    () => null,
    (e) => e,
  );
  assert.ok(gone, "polling an uninstalled filter fails");
});

test("ethers' polling event API (HTTP) delivers contract events", T, async () => {
  const seen = [];
  await contract.on("Incremented", (by, newCount) => seen.push({ by, newCount }));
  await sleep(500);
  const before = await contract.count();
  const r = await (await contract.increment()).wait(1, 30000);
  assert.equal(r.status, 1);
  const deadline = Date.now() + 20000;
  while (seen.length === 0 && Date.now() < deadline) await sleep(100);
  await contract.removeAllListeners();
  await sleep(500); // ethers uninstalls its filter in the background
  assert.equal(seen.length, 1, `got ${seen.length} Incremented events`);
  assert.equal(seen[0].by, signer.address);
  assert.equal(seen[0].newCount, before + 1n);
});

test("WebSocket newPendingTransactions: hashes, and full objects with `true`", T, async () => {
  const ws = await WsClient.connect();
  try {
    const hashesId = await ws.call("eth_subscribe", ["newPendingTransactions"]);
    const fullId = await ws.call("eth_subscribe", ["newPendingTransactions", true]);
    const to = wallet(ACCOUNT.basics, provider).address;
    const tx = await signer.sendTransaction({ to, value: 7n });
    const deadline = Date.now() + 15000;
    const has = (id, pred) => (ws.notifications.get(id) ?? []).some(pred);
    while (Date.now() < deadline && !(has(hashesId, (h) => h === tx.hash) && has(fullId, (t) => t?.hash === tx.hash))) {
      await sleep(50);
    }
    assert.ok(has(hashesId, (h) => h === tx.hash), `hash subscription missed ${tx.hash}: ${JSON.stringify(ws.notifications.get(hashesId))}`);
    const full = (ws.notifications.get(fullId) ?? []).find((t) => t?.hash === tx.hash);
    assert.ok(full, `full subscription missed ${tx.hash}: ${JSON.stringify(ws.notifications.get(fullId))?.slice(0, 300)}`);
    assert.equal(full.from.toLowerCase(), signer.address.toLowerCase());
    assert.equal(full.to.toLowerCase(), to.toLowerCase());
    assert.equal(BigInt(full.value), 7n);
    assert.equal(BigInt(full.nonce), BigInt(tx.nonce));
    await receipt(provider, tx.hash);
    assert.equal(await ws.call("eth_unsubscribe", [hashesId]), true);
    assert.equal(await ws.call("eth_unsubscribe", [fullId]), true);
    // Unknown subscription kinds are refused.
    const bad = await ws.request("eth_subscribe", ["noSuchKind"]);
    assert.ok(bad.error, JSON.stringify(bad));
  } finally {
    ws.close();
  }
});
