// 200 contract calls from 8 senders with explicit nonces, submitted all at once in a fixed
// shuffled order (so many arrive ahead of their predecessors), then every receipt, the
// contract's state and the logs are checked.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Interface, zeroPadValue } from "ethers";
import { ACCOUNT, artifact, bloomOf, deployE2E, encodeRpcReceipt, encodeRpcTransaction, orderedTrieRoot, httpProvider, rpc, shuffled, wallet, withTimeout } from "./lib.mjs";

const SENDERS = ACCOUNT.load.length; // 8
const PER_SENDER = 25; // 200 transactions
const GAS = 150000n;

let provider, senders, contract, address, iface;

before(async () => {
  provider = httpProvider();
  senders = ACCOUNT.load.map((i) => wallet(i, provider));
  contract = await deployE2E(senders[0], 0n);
  address = await contract.getAddress();
  iface = new Interface(artifact().abi);
});
after(() => provider?.destroy());

test(`${SENDERS * PER_SENDER} concurrent transactions from ${SENDERS} senders all mine`, { timeout: 120000 }, async () => {
  const startBlock = await provider.getBlockNumber();
  const nonces = await Promise.all(senders.map((s) => provider.getTransactionCount(s.address, "pending")));

  // Sign everything up front: key = sender * 1000 + j, value = j + 1.
  const jobs = [];
  for (const [si, s] of senders.entries()) {
    for (let j = 0; j < PER_SENDER; j++) {
      const key = BigInt(si * 1000 + j);
      const value = BigInt(j + 1);
      const legacy = j % 5 === 4; // mix in legacy transactions
      const fields = {
        chainId: 1337n,
        nonce: nonces[si] + j,
        to: address,
        data: iface.encodeFunctionData("register", [key, value]),
        gasLimit: GAS,
        ...(legacy ? { type: 0, gasPrice: 0n } : { type: 2, maxFeePerGas: 0n, maxPriorityFeePerGas: 0n }),
      };
      jobs.push({ si, j, key, value, raw: await s.signTransaction(fields) });
    }
  }

  const started = Date.now();
  const order = shuffled(jobs);
  const results = await withTimeout(
    Promise.allSettled(order.map((job) => provider.send("eth_sendRawTransaction", [job.raw]))),
    30000,
    "submitting 200 transactions",
  );
  const rejected = results
    .map((r, i) => [r, order[i]])
    .filter(([r]) => r.status === "rejected")
    .map(([r, job]) => `sender ${job.si} nonce+${job.j}: ${r.reason?.error?.message ?? r.reason?.message}`);
  assert.deepEqual(rejected, [], "every submission accepted");
  const hashes = results.map((r) => r.value);
  assert.equal(new Set(hashes).size, jobs.length, "distinct hashes");

  const receipts = await withTimeout(
    Promise.all(hashes.map((h) => provider.waitForTransaction(h, 1, 60000))),
    70000,
    "200 receipts",
  );
  const elapsed = Date.now() - started;
  assert.equal(receipts.length, jobs.length);
  const failed = receipts.filter((r) => !r || r.status !== 1);
  assert.equal(failed.length, 0, `failed receipts: ${failed.map((r) => r?.hash).join(", ")}`);
  for (const [i, r] of receipts.entries()) {
    assert.equal(r.hash, hashes[i]);
    assert.equal(r.from, senders[order[i].si].address);
    assert.equal(r.to, address);
    assert.equal(r.logs.length, 1);
  }

  // Nonces: each sender's transactions mined in nonce order, none left in the pool.
  for (const [si, s] of senders.entries()) {
    assert.equal(await provider.getTransactionCount(s.address, "latest"), nonces[si] + PER_SENDER);
    assert.equal(await provider.getTransactionCount(s.address, "pending"), nonces[si] + PER_SENDER);
    const mine = receipts
      .map((r, i) => ({ r, job: order[i] }))
      .filter((x) => x.job.si === si)
      .sort((a, b) => a.job.j - b.job.j);
    for (let k = 1; k < mine.length; k++) {
      const [a, b] = [mine[k - 1].r, mine[k].r];
      assert.ok(
        a.blockNumber < b.blockNumber || (a.blockNumber === b.blockNumber && a.index < b.index),
        `sender ${si}: nonce order broken between ${k - 1} and ${k}`,
      );
    }
  }

  // Contract state is the sum of every write.
  const expectedTotal = jobs.reduce((acc, j) => acc + j.value, 0n);
  assert.equal(await contract.total(), expectedTotal);
  for (const [si, s] of senders.entries()) {
    assert.equal(await contract.writes(s.address), BigInt(PER_SENDER), `writes of sender ${si}`);
  }
  assert.equal(await contract.values(BigInt(3 * 1000 + 7)), 8n);

  // Blocks: the receipts' blocks hold exactly these transactions (the contract is ours alone).
  const blocks = [...new Set(receipts.map((r) => r.blockNumber))].sort((a, b) => a - b);
  let seen = 0;
  for (const n of blocks) {
    const b = await rpc("eth_getBlockByNumber", ["0x" + n.toString(16), false]);
    assert.ok(BigInt(b.gasUsed) <= BigInt(b.gasLimit));
    const ours = b.transactions.filter((h) => hashes.includes(h));
    seen += ours.length;
    const blockReceipts = await rpc("eth_getBlockReceipts", ["0x" + n.toString(16)]);
    assert.equal(blockReceipts.length, b.transactions.length);
    const sum = blockReceipts.reduce((acc, x) => acc + BigInt(x.gasUsed), 0n);
    assert.equal(sum, BigInt(b.gasUsed), `block ${n}: receipts' gas adds up to gasUsed`);
    // Blooms: each receipt's matches its logs; the block's matches all of them.
    for (const x of blockReceipts) {
      assert.equal(x.logsBloom, await bloomOf(x.logs), `block ${n} tx ${x.transactionHash}: receipt bloom`);
    }
    assert.equal(b.logsBloom, await bloomOf(blockReceipts.flatMap((x) => x.logs)), `block ${n}: block bloom`);
    // Roots: the RPC's transactions and receipts re-encode to the header's tries.
    const full = await rpc("eth_getBlockByNumber", ["0x" + n.toString(16), true]);
    const txs = [];
    for (const t of full.transactions) txs.push(await encodeRpcTransaction(t));
    assert.equal(await orderedTrieRoot(txs), b.transactionsRoot, `block ${n}: transactionsRoot`);
    const rcs = [];
    for (const x of blockReceipts) rcs.push(await encodeRpcReceipt(x));
    assert.equal(await orderedTrieRoot(rcs), b.receiptsRoot, `block ${n}: receiptsRoot`);
  }
  assert.equal(seen, jobs.length);

  // Logs: one Registered per transaction; by sender topic, 25 each, with the right keys.
  const topic = iface.getEvent("Registered").topicHash;
  const fromBlock = blocks[0];
  const toBlock = blocks.at(-1);
  const all = await provider.getLogs({ address, topics: [topic], fromBlock, toBlock });
  assert.equal(all.length, jobs.length);
  for (const [si, s] of senders.entries()) {
    const logs = await provider.getLogs({ address, topics: [topic, zeroPadValue(s.address, 32)], fromBlock, toBlock });
    assert.equal(logs.length, PER_SENDER, `logs of sender ${si}`);
    const keys = logs.map((l) => iface.parseLog(l).args.key).sort((a, b) => (a < b ? -1 : 1));
    assert.deepEqual(keys, Array.from({ length: PER_SENDER }, (_, j) => BigInt(si * 1000 + j)));
  }
  // The running total in the last log equals the final total.
  const last = iface.parseLog(all.at(-1));
  assert.equal(last.args.total, expectedTotal);

  console.log(
    `# load: ${jobs.length} txs mined in blocks ${fromBlock}..${toBlock} (${blocks.length} blocks, started at ${startBlock}) in ${elapsed} ms`,
  );
});
