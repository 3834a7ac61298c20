// Deploys E2E with ethers and drives it: calls, events (getLogs and WebSocket), gas
// estimates, and every kind of revert a client decodes.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Contract, Interface, ZeroAddress, decodeRlp, id as topicOf, keccak256, toBeHex, zeroPadValue } from "ethers";
import {
  ACCOUNT,
  HASH,
  WsClient,
  artifact,
  deployE2E,
  httpProvider,
  receipt,
  rpc,
  rpcError,
  wallet,
  withTimeout,
  wsProvider,
  sleep,
  verifyMptProof,
} from "./lib.mjs";

const T = { timeout: 60000 };
let provider, signer, outsider, contract, address, iface, deployReceipt;

before(async () => {
  provider = httpProvider();
  signer = wallet(ACCOUNT.contract, provider);
  outsider = wallet(ACCOUNT.basics, provider);
  contract = await deployE2E(signer, 7n);
  address = await contract.getAddress();
  iface = new Interface(artifact().abi);
  deployReceipt = await receipt(provider, contract.deploymentTransaction().hash);
});

after(() => provider?.destroy());

test("deployment: receipt, code, storage, constructor state", T, async () => {
  assert.equal(deployReceipt.status, 1);
  assert.equal(deployReceipt.contractAddress, address);
  assert.equal(deployReceipt.to, null);
  assert.equal(deployReceipt.from, signer.address);
  assert.ok(deployReceipt.gasUsed > 21000n);

  const deployTx = await provider.getTransaction(deployReceipt.hash);
  assert.equal(deployTx.to, null);
  assert.equal(deployTx.from, signer.address);
  assert.ok(deployTx.data.startsWith(artifact().bytecode), "deploy input is the init code plus arguments");
  assert.equal(deployTx.blockNumber, deployReceipt.blockNumber);

  // Runtime code: solc's deployed bytecode with the immutable `owner` filled in.
  const code = await provider.getCode(address);
  assert.equal(code.length, artifact().deployedBytecode.length);
  assert.ok(code.toLowerCase().includes(signer.address.slice(2).toLowerCase()), "immutable owner in runtime code");
  assert.equal(await provider.getCode(address, deployReceipt.blockNumber - 1), "0x", "no code before deployment");

  assert.equal(await contract.count(), 7n);
  assert.equal(await contract.owner(), signer.address);
  // Slot 0 is `count`.
  assert.equal(BigInt(await provider.getStorage(address, 0)), 7n);
  assert.equal(BigInt(await provider.getStorage(address, 0, deployReceipt.blockNumber - 1)), 0n);
});

test("transactions change state; eth_call reads any block (number, hash, tag)", T, async () => {
  const tx = await contract.increment();
  const r = await tx.wait(1, 30000);
  assert.equal(r.status, 1);
  assert.equal(r.logs.length, 1);
  const ev = iface.parseLog(r.logs[0]);
  assert.equal(ev.name, "Incremented");
  assert.equal(ev.args.by, signer.address);
  assert.equal(ev.args.newCount, 8n);

  assert.equal(await contract.count(), 8n);
  assert.equal(await contract.count({ blockTag: r.blockNumber }), 8n);
  assert.equal(await contract.count({ blockTag: r.blockNumber - 1 }), 7n);

  // Raw: block by hash (EIP-1898 object) and by plain hash.
  const data = iface.encodeFunctionData("count");
  const before = await provider.getBlock(r.blockNumber - 1);
  const atHash = await rpc("eth_call", [{ to: address, data }, { blockHash: before.hash }]);
  assert.equal(BigInt(atHash), 7n);
  const atHash2 = await rpc("eth_call", [{ to: address, data }, before.hash]);
  assert.equal(BigInt(atHash2), 7n);
  for (const tag of ["latest", "safe", "finalized", "pending"]) {
    assert.ok(BigInt(await rpc("eth_call", [{ to: address, data }, tag])) >= 8n, tag);
  }
  assert.equal(await rpc("eth_call", [{ to: address, data }, "earliest"]), "0x", "no contract at genesis");
});

test("view function with several return values", T, async () => {
  const [value, sum, who] = await contract.describe(5n);
  assert.equal(value, 0n);
  assert.equal(sum, (await contract.total()) + 5n);
  assert.equal(who, signer.address);
});

test("eth_call state override replaces storage and balance", T, async () => {
  const data = iface.encodeFunctionData("count");
  const out = await rpc("eth_call", [
    { to: address, data },
    "latest",
    { [address]: { stateDiff: { [zeroPadValue("0x00", 32)]: zeroPadValue(toBeHex(123456), 32) } } },
  ]);
  assert.equal(BigInt(out), 123456n);
  // The override did not stick.
  assert.ok((await contract.count()) < 1000n);
});

test("events: receipt logs, eth_getLogs by address and topics, blockHash filter", T, async () => {
  const keys = [101n, 102n, 103n];
  const receipts = [];
  for (const k of keys) {
    const tx = await contract.register(k, k * 10n);
    receipts.push(await tx.wait(1, 30000));
  }
  const mined = receipts.flatMap((r) => r.logs).map((l) => ({ ...l }));
  assert.equal(mined.length, 3);
  for (const [i, l] of mined.entries()) {
    const ev = iface.parseLog(l);
    assert.equal(ev.name, "Registered");
    assert.equal(ev.args.writer, signer.address);
    assert.equal(ev.args.key, keys[i]);
    assert.equal(ev.args.value, keys[i] * 10n);
  }

  const topic = iface.getEvent("Registered").topicHash;
  assert.equal(topic, topicOf("Registered(address,uint256,uint256,uint256)"));
  const fromBlock = receipts[0].blockNumber;
  const toBlock = receipts[2].blockNumber;
  const logs = await provider.getLogs({
    address,
    topics: [topic, zeroPadValue(signer.address, 32)],
    fromBlock,
    toBlock,
  });
  assert.deepEqual(
    logs.map((l) => [l.transactionHash, l.index, l.blockHash, l.blockNumber, l.data, l.topics.join()]),
    receipts.flatMap((r) =>
      r.logs.map((l) => [l.transactionHash, l.index, l.blockHash, l.blockNumber, l.data, l.topics.join()]),
    ),
  );

  // Topic OR-list on the indexed key, wildcard writer.
  const two = await provider.getLogs({
    address,
    topics: [topic, null, [toBeHex(101n, 32), toBeHex(103n, 32)]],
    fromBlock,
    toBlock,
  });
  assert.deepEqual(
    two.map((l) => iface.parseLog(l).args.key),
    [101n, 103n],
  );

  // A writer that never wrote matches nothing.
  const none = await provider.getLogs({
    address,
    topics: [topic, zeroPadValue(outsider.address, 32)],
    fromBlock,
    toBlock,
  });
  assert.equal(none.length, 0);

  // Another address matches nothing.
  const elsewhere = await provider.getLogs({ address: ZeroAddress, topics: [topic], fromBlock, toBlock });
  assert.equal(elsewhere.length, 0);

  // blockHash form.
  const byHash = await provider.getLogs({ blockHash: receipts[1].blockHash, address });
  assert.ok(byHash.some((l) => l.transactionHash === receipts[1].hash));
  for (const l of byHash) assert.equal(l.blockHash, receipts[1].blockHash);

  // Raw log fields as sent.
  const raw = await rpc("eth_getLogs", [
    { address, topics: [topic], fromBlock: toBeHex(fromBlock), toBlock: toBeHex(toBlock) },
  ]);
  assert.equal(raw.length, 3);
  for (const l of raw) {
    assert.equal(l.address.toLowerCase(), address.toLowerCase());
    assert.match(l.blockHash, HASH);
    assert.match(l.transactionHash, HASH);
    assert.equal(l.removed, false);
    assert.match(l.logIndex, /^0x[0-9a-f]+$/);
    assert.match(l.transactionIndex, /^0x[0-9a-f]+$/);
  }
});

test("events over WebSocket: contract.on and raw eth_subscribe logs match eth_getLogs", T, async () => {
  const ws = wsProvider();
  const raw = await WsClient.connect();
  try {
    const wsContract = new Contract(address, artifact().abi, ws);
    const seen = [];
    await wsContract.on("Registered", (writer, key, value, total, event) => {
      seen.push({ writer, key, value, total, log: event.log });
    });

    const topic = iface.getEvent("Registered").topicHash;
    const subId = await raw.call("eth_subscribe", ["logs", { address, topics: [topic] }]);
    assert.match(subId, /^0x[0-9a-f]{32}$/, "subscription ids look like geth's");
    const headsId = await raw.call("eth_subscribe", ["newHeads"]);
    assert.notEqual(headsId, subId);

    await sleep(500); // let ethers' own eth_subscribe reach the node
    const keys = [201n, 202n, 203n, 204n];
    const sent = [];
    // Explicit nonces: ethers caches identical requests for 250 ms, so back-to-back sends
    // would otherwise reuse a "pending" nonce (and replace each other at equal zero price).
    const nonce = await provider.getTransactionCount(signer.address, "pending");
    for (const [i, k] of keys.entries()) sent.push(await contract.register(k, k, { nonce: nonce + i }));
    const receipts = await Promise.all(sent.map((t) => t.wait(1, 30000)));

    const rawLogs = await raw.waitFor(subId, keys.length);
    await withTimeout(
      (async () => {
        while (seen.length < keys.length) await sleep(50);
      })(),
      20000,
      `ethers contract.on saw ${seen.length}/${keys.length} events`,
    );

    const fromBlock = receipts[0].blockNumber;
    const toBlock = receipts.at(-1).blockNumber;
    const polled = await provider.getLogs({ address, topics: [topic], fromBlock, toBlock });
    assert.equal(polled.length, keys.length);

    assert.deepEqual(
      seen.map((e) => [e.key, e.log.transactionHash, e.log.blockHash, e.log.index]),
      polled.map((l) => [iface.parseLog(l).args.key, l.transactionHash, l.blockHash, l.index]),
    );
    assert.deepEqual(
      rawLogs.slice(0, keys.length).map((l) => [l.transactionHash, l.blockHash, Number(l.logIndex), l.data, l.topics.join()]),
      polled.map((l) => [l.transactionHash, l.blockHash, l.index, l.data, l.topics.join()]),
    );
    for (const e of seen) assert.equal(e.writer, signer.address);

    // newHeads delivered the blocks holding the logs, as header objects.
    const heads = await raw.waitFor(headsId, 1);
    for (const h of heads) {
      assert.match(h.hash, HASH);
      assert.match(h.parentHash, HASH);
      assert.match(h.number, /^0x[0-9a-f]+$/);
      assert.ok("baseFeePerGas" in h, "newHeads carries baseFeePerGas");
    }
    const headHashes = new Map(heads.map((h) => [BigInt(h.number), h.hash]));
    for (const r of receipts) {
      if (headHashes.has(BigInt(r.blockNumber))) assert.equal(headHashes.get(BigInt(r.blockNumber)), r.blockHash);
    }
    for (let i = 1; i < heads.length; i++) {
      if (BigInt(heads[i].number) === BigInt(heads[i - 1].number) + 1n) {
        assert.equal(heads[i].parentHash, heads[i - 1].hash, "consecutive newHeads link");
      }
    }

    assert.equal(await raw.call("eth_unsubscribe", [subId]), true);
    assert.equal(await raw.call("eth_unsubscribe", [subId]), false, "second unsubscribe is false");
    assert.equal(await raw.call("eth_unsubscribe", [headsId]), true);
    await wsContract.removeAllListeners();
  } finally {
    raw.close();
    await ws.destroy();
  }
});

test("eth_subscribe is refused over HTTP", T, async () => {
  const err = await rpcError("eth_subscribe", ["newHeads"]);
  assert.ok([-32601, -32600, -32000, -32603].includes(err.code), JSON.stringify(err));
});

test("estimateGas: at least the gas used, close to it, and enough to succeed", T, async () => {
  // A first write to fresh slots.
  const est = await contract.register.estimateGas(301n, 5n);
  const r = await (await contract.register(301n, 5n, { gasLimit: est })).wait(1, 30000);
  assert.equal(r.status, 1);
  assert.ok(est >= r.gasUsed, `estimate ${est} < used ${r.gasUsed}`);
  assert.ok(est <= (r.gasUsed * 105n) / 100n + 3000n, `estimate ${est} far above used ${r.gasUsed}`);

  // Plain transfer to an EOA: exactly 21000.
  assert.equal(await provider.estimateGas({ from: signer.address, to: outsider.address, value: 1n }), 21000n);

  // Refund: clearing a slot needs more gas up front than it finally uses.
  const estClear = await contract.clear.estimateGas(301n);
  const rc = await (await contract.clear(301n, { gasLimit: estClear })).wait(1, 30000);
  assert.equal(rc.status, 1, "a transaction with the estimated gas succeeds despite the refund");
  assert.ok(estClear >= rc.gasUsed);

  // 63/64 rule: a nested call needs headroom beyond what it uses.
  const estNested = await contract.nestedBurn.estimateGas(300n);
  const rn = await (await contract.nestedBurn(300n, { gasLimit: estNested })).wait(1, 30000);
  assert.equal(rn.status, 1, "a transaction with the estimated gas succeeds despite the 63/64 rule");
  assert.ok(estNested >= rn.gasUsed);
  assert.ok(estNested <= (rn.gasUsed * 110n) / 100n + 5000n, `estimate ${estNested} far above used ${rn.gasUsed}`);
});

// `contract.f.staticCall` decodes custom errors against the ABI (error.revert); an estimate
// goes to the provider, which knows no ABI, so there the data is parsed with the interface.
function assertOutOfRange(err, caller, value, max, { decoded = true } = {}) {
  assert.equal(err.code, "CALL_EXCEPTION", `${err}`);
  assert.ok(err.data, `ethers found no revert data in ${JSON.stringify(err.info ?? err.message)}`);
  if (decoded) {
    assert.ok(err.revert, `ethers decoded no revert from ${JSON.stringify(err.info ?? err.message)}`);
    assert.equal(err.revert.name, "OutOfRange");
    assert.equal(err.revert.signature, "OutOfRange(address,uint256,uint256)");
    assert.deepEqual([...err.revert.args], [caller, value, max]);
  }
  const parsed = iface.parseError(err.data);
  assert.equal(parsed.name, "OutOfRange");
  assert.deepEqual([...parsed.args], [caller, value, max]);
}

test("custom error with arguments decodes from eth_call and eth_estimateGas", T, async () => {
  assert.equal(await contract.checked(3n, 5n), 3n);

  const callErr = await contract.checked.staticCall(9n, 5n).then(
    () => assert.fail("checked(9, 5) should revert"),
    (e) => e,
  );
  assertOutOfRange(callErr, signer.address, 9n, 5n);

  const estErr = await contract.failWrite.estimateGas(4n).then(
    () => assert.fail("failWrite should not estimate"),
    (e) => e,
  );
  assertOutOfRange(estErr, signer.address, 4n, 0n, { decoded: false });

  // Exactly as sent: code 3, bare message, data = the ABI-encoded error.
  const expected = iface.encodeErrorResult("OutOfRange", [signer.address, 9n, 5n]);
  const data = iface.encodeFunctionData("checked", [9n, 5n]);
  for (const method of ["eth_call", "eth_estimateGas"]) {
    const err = await rpcError(method, [{ from: signer.address, to: address, data }, "latest"]);
    assert.equal(err.code, 3, `${method}: ${JSON.stringify(err)}`);
    assert.equal(err.message, "Execution reverted", method);
    assert.equal(err.data, expected, method);
  }

  // No-argument custom error, sender-dependent.
  const forb = await contract.connect(outsider).onlyOwner.staticCall().then(
    () => assert.fail("onlyOwner from an outsider should revert"),
    (e) => e,
  );
  assert.equal(forb.revert?.name, "Forbidden", `${forb}`);
  assert.equal(forb.data, iface.getError("Forbidden").selector);
  assert.equal(await contract.onlyOwner(), true);
});

test("require(string) and Panic reasons", T, async () => {
  const err = await contract.requirePositive.staticCall(0n).then(
    () => assert.fail("requirePositive(0) should revert"),
    (e) => e,
  );
  assert.equal(err.code, "CALL_EXCEPTION");
  assert.equal(err.reason, "value must be positive");
  assert.equal(err.revert?.name, "Error");

  const raw = await rpcError("eth_call", [{ to: address, data: iface.encodeFunctionData("requirePositive", [0n]) }]);
  assert.equal(raw.code, 3);
  assert.equal(raw.message, "Execution reverted (value must be positive)");
  assert.equal(raw.data, iface.encodeErrorResult("Error(string)", ["value must be positive"]));

  const est = await contract.requirePositive.estimateGas(0n).then(
    () => assert.fail("estimate of requirePositive(0) should revert"),
    (e) => e,
  );
  assert.equal(est.reason, "value must be positive");

  const panic = await contract.divide.staticCall(1n, 0n).then(
    () => assert.fail("divide by zero should revert"),
    (e) => e,
  );
  assert.equal(panic.revert?.name, "Panic");
  assert.equal(BigInt(panic.revert.args[0]), 0x12n);
  const rawPanic = await rpcError("eth_call", [{ to: address, data: iface.encodeFunctionData("divide", [1n, 0n]) }]);
  assert.equal(rawPanic.code, 3);
  assert.equal(rawPanic.message, "Execution reverted");
  assert.equal(rawPanic.data, iface.encodeErrorResult("Panic(uint256)", [0x12n]));
  assert.equal(await contract.divide(9n, 3n), 3n);
});

test("a mined reverting transaction: status 0, state untouched, ethers reports the receipt", T, async () => {
  const countBefore = await contract.count();
  const tx = await contract.failWrite(5n, { gasLimit: 200000n });
  const err = await tx.wait(1, 30000).then(
    () => assert.fail("wait() of a reverted transaction should throw"),
    (e) => e,
  );
  assert.equal(err.code, "CALL_EXCEPTION");
  assert.equal(err.receipt?.status, 0);
  const raw = await rpc("eth_getTransactionReceipt", [tx.hash]);
  assert.equal(raw.status, "0x0");
  assert.equal(raw.logs.length, 0);
  assert.ok(BigInt(raw.gasUsed) > 21000n && BigInt(raw.gasUsed) < 200000n, "a revert refunds unused gas");
  assert.equal(await contract.count(), countBefore);
});

test("transaction lookups agree: by hash, by block and index, block receipts", T, async () => {
  const tx = await contract.register(401n, 4n);
  const r = await tx.wait(1, 30000);
  const byHash = await rpc("eth_getTransactionByHash", [tx.hash]);
  const idx = toBeHex(r.index);
  const byNum = await rpc("eth_getTransactionByBlockNumberAndIndex", [toBeHex(r.blockNumber), idx]);
  const byBlockHash = await rpc("eth_getTransactionByBlockHashAndIndex", [r.blockHash, idx]);
  assert.deepEqual(byNum, byHash);
  assert.deepEqual(byBlockHash, byHash);
  assert.equal(byHash.hash, tx.hash);
  assert.equal(byHash.blockHash, r.blockHash);
  assert.equal(BigInt(byHash.blockNumber), BigInt(r.blockNumber));
  assert.equal(byHash.from.toLowerCase(), signer.address.toLowerCase());
  assert.equal(byHash.to.toLowerCase(), address.toLowerCase());
  assert.equal(BigInt(byHash.chainId), 1337n);
  assert.match(byHash.r, /^0x[0-9a-f]+$/);
  assert.match(byHash.s, /^0x[0-9a-f]+$/);

  const receipts = await rpc("eth_getBlockReceipts", [toBeHex(r.blockNumber)]);
  const mine = receipts.find((x) => x.transactionHash === tx.hash);
  assert.ok(mine, "block receipts include the transaction");
  assert.deepEqual(mine, await rpc("eth_getTransactionReceipt", [tx.hash]));
  const count = await rpc("eth_getBlockTransactionCountByNumber", [toBeHex(r.blockNumber)]);
  assert.equal(BigInt(count), BigInt(receipts.length));
  assert.equal(BigInt(await rpc("eth_getBlockTransactionCountByHash", [r.blockHash])), BigInt(receipts.length));
  // Cumulative gas is non-decreasing and ends at the block's gasUsed.
  let cum = 0n;
  for (const x of receipts) {
    assert.ok(BigInt(x.cumulativeGasUsed) >= cum);
    cum = BigInt(x.cumulativeGasUsed);
  }
  const block = await rpc("eth_getBlockByHash", [r.blockHash, false]);
  assert.equal(cum, BigInt(block.gasUsed));
  assert.ok(block.transactions.includes(tx.hash));

  assert.equal(await rpc("eth_getTransactionByHash", [zeroPadValue("0x01", 32)]), null);
  assert.equal(await rpc("eth_getTransactionReceipt", [zeroPadValue("0x01", 32)]), null);
});

test("eth_getProof: account and storage proofs verify against the block's stateRoot", T, async () => {
  const head = await provider.getBlockNumber();
  for (const n of [deployReceipt.blockNumber, head]) {
    const block = await rpc("eth_getBlockByNumber", [toBeHex(n), false]);
    const tag = toBeHex(n);
    const proof = await rpc("eth_getProof", [address, ["0x0", "0x1", toBeHex(12345, 32)], tag]);
    assert.equal(proof.address.toLowerCase(), address.toLowerCase());
    const leaf = await verifyMptProof(block.stateRoot, keccak256(address), proof.accountProof);
    assert.ok(leaf, `block ${n}: the account proof proves presence`);
    const [nonce, balance, storageRoot, codeHash] = decodeRlp(leaf);
    assert.equal(BigInt(nonce === "0x" ? 0 : nonce), BigInt(proof.nonce), "nonce");
    assert.equal(BigInt(balance === "0x" ? 0 : balance), BigInt(proof.balance), "balance");
    assert.equal(storageRoot, proof.storageHash, "storage root");
    assert.equal(codeHash, proof.codeHash, "code hash");
    assert.equal(proof.codeHash, keccak256(await provider.getCode(address, n)));

    for (const sp of proof.storageProof) {
      const slotLeaf = await verifyMptProof(proof.storageHash, keccak256(toBeHex(BigInt(sp.key), 32)), sp.proof);
      const proven = slotLeaf === null ? 0n : BigInt(decodeRlp(slotLeaf));
      assert.equal(proven, BigInt(sp.value), `block ${n} slot ${sp.key}`);
      assert.equal(BigInt(sp.value), BigInt(await provider.getStorage(address, BigInt(sp.key), n)));
    }
    assert.equal(BigInt(proof.storageProof[0].value), n === head ? await contract.count({ blockTag: n }) : 7n);
    assert.equal(BigInt(proof.storageProof[2].value), 0n, "an unused slot proves absent");
  }

  // An account that does not exist: a proof of absence.
  const block = await rpc("eth_getBlockByNumber", [toBeHex(head), false]);
  const nobody = "0x00000000000000000000000000000000deadbeef";
  const absent = await rpc("eth_getProof", [nobody, [], toBeHex(head)]);
  assert.equal(await verifyMptProof(block.stateRoot, keccak256(nobody), absent.accountProof), null);
  assert.equal(BigInt(absent.balance), 0n);
  assert.equal(BigInt(absent.nonce), 0n);
});

test("debug_storageRangeAt: pages through storage as it was before a block", T, async () => {
  const zero = "0x" + "00".repeat(32);
  const pageAll = async (hash, max) => {
    const seen = {};
    let key = zero, pages = 0;
    for (;;) {
      const res = await rpc("debug_storageRangeAt", [hash, 0, address, key, max]);
      assert.ok(Object.keys(res.storage).length <= max, `page of ${Object.keys(res.storage).length} > ${max}`);
      for (const [hashed, entry] of Object.entries(res.storage)) {
        assert.ok(!(hashed in seen), `slot ${hashed} on two pages`);
        assert.equal(entry.key, null);
        assert.equal(entry.value.length, 66, `32-byte value: ${entry.value}`);
        seen[hashed] = entry.value;
      }
      pages++;
      if (res.nextKey === null) return { seen, pages };
      assert.ok(BigInt(res.nextKey) > BigInt(key), "nextKey moves forward");
      key = res.nextKey;
    }
  };
  // The state before the deployment block's transactions: no storage yet.
  const deployBlock = await provider.getBlock(deployReceipt.blockNumber);
  assert.deepEqual((await pageAll(deployBlock.hash, 16)).seen, {});

  // Before the head block: the parent's state, the same whichever page size.
  while ((await provider.getBlockNumber()) <= deployReceipt.blockNumber) await sleep(200);
  const head = await provider.getBlock("latest");
  const { seen: all, pages: one } = await pageAll(head.hash, 1024);
  const { seen: single, pages } = await pageAll(head.hash, 1);
  assert.equal(one, 1);
  assert.deepEqual(single, all);
  assert.equal(pages, Object.keys(all).length, "maxResult 1: one slot per page");
  const countSlot = keccak256(zeroPadValue("0x00", 32));
  assert.equal(BigInt(all[countSlot]), await contract.count({ blockTag: head.number - 1 }), "slot 0 is count");
  for (const [hashed, value] of Object.entries(all)) assert.notEqual(BigInt(value), 0n, `zero slot ${hashed} listed`);

  // Refusals: another txIndex, an unknown block, a start key longer than a hash.
  for (const params of [
    [head.hash, 1, address, zero, 10],
    [zeroPadValue("0x01", 32), 0, address, zero, 10],
    [head.hash, 0, address, "0x" + "00".repeat(33), 10],
  ]) {
    const err = await rpcError("debug_storageRangeAt", params);
    assert.equal(err.code, -32602, `${JSON.stringify(params)}: ${JSON.stringify(err)}`);
  }
});
