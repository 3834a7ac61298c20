"""web3.py against a running `healthchain dev` node: deploy, concurrent sends, receipts,
logs, gas estimates, revert decoding, blocks, and a WebSocket subscription.

Environment (set by scripts/e2e):
  HC_HTTP_URL   http://127.0.0.1:PORT
  HC_WS_URL     ws://127.0.0.1:PORT
  HC_KEYS_FILE  genesis/dev-keys.json
  HC_ARTIFACT   E2E.sol compiled by tests/e2e/js/compile.mjs (compiled here with node if unset)

Uses development accounts 12..19 only (the ethers suites use 0..11).
"""

import asyncio
import json
import os
import random
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from eth_account import Account
from web3 import AsyncWeb3, Web3
from web3.middleware import ExtraDataToPOAMiddleware
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    Web3RPCError,
)

HERE = Path(__file__).resolve().parent
E2E_DIR = HERE.parent
HTTP_URL = os.environ.get("HC_HTTP_URL", "http://127.0.0.1:8545")
WS_URL = os.environ.get("HC_WS_URL", "ws://127.0.0.1:8546")
KEYS_FILE = Path(os.environ.get("HC_KEYS_FILE", E2E_DIR.parent.parent / "genesis" / "dev-keys.json"))
CHAIN_ID = 1337
RECEIPT_TIMEOUT = 30

DEPLOYER = 12
SENDERS = [13, 14, 15, 16]
PER_SENDER = 20
OTHER = 17


def load_artifact():
    path = os.environ.get("HC_ARTIFACT")
    if path and Path(path).exists():
        return json.loads(Path(path).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "E2E.json"
        subprocess.run(["node", str(E2E_DIR / "js" / "compile.mjs"), str(out)], check=True, timeout=120)
        return json.loads(out.read_text())


@pytest.fixture(scope="module")
def w3():
    w3 = Web3(Web3.HTTPProvider(HTTP_URL, request_kwargs={"timeout": 30}))
    # IBFT 2.0 blocks carry validators and seals in extraData (> 32 bytes), as on Besu.
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    assert w3.is_connected(), f"no node at {HTTP_URL}"
    return w3


@pytest.fixture(scope="module")
def accounts():
    keys = json.loads(KEYS_FILE.read_text())["accounts"]
    accts = [Account.from_key(k["privateKey"]) for k in keys]
    for a, k in zip(accts, keys):
        assert a.address.lower() == k["address"].lower()
    return accts


@pytest.fixture(scope="module")
def artifact():
    return load_artifact()


def send(w3, acct, tx):
    signed = acct.sign_transaction(tx)
    return w3.eth.send_raw_transaction(signed.raw_transaction)


def mined(w3, tx_hash):
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT, poll_latency=0.1)


@pytest.fixture(scope="module")
def deployed(w3, accounts, artifact):
    """Deploys E2E(42) with web3's own fee and gas filling; returns (contract, receipt)."""
    acct = accounts[DEPLOYER]
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = factory.constructor(42).build_transaction(
        {"from": acct.address, "nonce": w3.eth.get_transaction_count(acct.address, "pending"), "chainId": CHAIN_ID}
    )
    receipt = mined(w3, send(w3, acct, tx))
    assert receipt["status"] == 1
    contract = w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    return contract, receipt


def tx_fields(w3, acct, nonce=None, **extra):
    fields = {
        "from": acct.address,
        "chainId": CHAIN_ID,
        "nonce": w3.eth.get_transaction_count(acct.address, "pending") if nonce is None else nonce,
        "maxFeePerGas": 0,
        "maxPriorityFeePerGas": 0,
    }
    fields.update(extra)
    return fields


def test_chain_identity(w3):
    assert w3.eth.chain_id == CHAIN_ID
    assert w3.net.version == str(CHAIN_ID)
    assert "healthchain" in w3.client_version.lower()
    assert w3.eth.syncing is False
    assert w3.eth.block_number >= 0
    assert w3.eth.gas_price >= 0


def test_deploy(w3, accounts, artifact, deployed):
    contract, receipt = deployed
    code = w3.eth.get_code(contract.address)
    assert len(code) == (len(artifact["deployedBytecode"]) - 2) // 2
    assert bytes.fromhex(accounts[DEPLOYER].address[2:].lower()) in code
    assert contract.functions.count().call() == 42
    assert contract.functions.owner().call() == accounts[DEPLOYER].address
    assert w3.eth.get_code(contract.address, block_identifier=receipt["blockNumber"] - 1) == b""
    assert int.from_bytes(w3.eth.get_storage_at(contract.address, 0), "big") == 42
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["to"] is None
    assert tx["from"] == accounts[DEPLOYER].address
    assert tx["blockHash"] == receipt["blockHash"]


def test_concurrent_sends_from_several_senders(w3, accounts, deployed):
    contract, _ = deployed
    senders = [accounts[i] for i in SENDERS]
    base = {a.address: w3.eth.get_transaction_count(a.address, "pending") for a in senders}
    jobs = []
    for si, acct in enumerate(senders):
        for j in range(PER_SENDER):
            key = 50_000 + si * 1000 + j
            data = contract.encode_abi("register", args=[key, j + 1])
            tx = tx_fields(w3, acct, nonce=base[acct.address] + j, to=contract.address, data=data, gas=150_000)
            jobs.append((si, j, acct.sign_transaction(tx).raw_transaction))
    random.Random(1337).shuffle(jobs)

    with ThreadPoolExecutor(max_workers=8) as pool:
        hashes = list(pool.map(lambda job: w3.eth.send_raw_transaction(job[2]), jobs))
        receipts = list(pool.map(lambda h: mined(w3, h), hashes))

    assert len(set(hashes)) == len(jobs)
    assert all(r["status"] == 1 for r in receipts), [r["transactionHash"].hex() for r in receipts if r["status"] != 1]
    for (si, _, _), r in zip(jobs, receipts):
        assert r["from"] == senders[si].address
        assert r["to"] == contract.address
        assert len(r["logs"]) == 1
    for acct in senders:
        assert w3.eth.get_transaction_count(acct.address) == base[acct.address] + PER_SENDER
        assert contract.functions.writes(acct.address).call() == PER_SENDER

    # Logs by event and indexed argument.
    first = min(r["blockNumber"] for r in receipts)
    last = max(r["blockNumber"] for r in receipts)
    for si, acct in enumerate(senders):
        events = contract.events.Registered().get_logs(
            from_block=first, to_block=last, argument_filters={"writer": acct.address}
        )
        assert len(events) == PER_SENDER
        assert sorted(e["args"]["key"] for e in events) == [50_000 + si * 1000 + j for j in range(PER_SENDER)]
        assert all(e["args"]["writer"] == acct.address for e in events)

    # Raw topic filter agrees with the receipts.
    topic = Web3.keccak(text="Registered(address,uint256,uint256,uint256)")
    logs = w3.eth.get_logs({"address": contract.address, "topics": [topic], "fromBlock": first, "toBlock": last})
    assert sorted((l["transactionHash"], l["logIndex"]) for l in logs) == sorted(
        (r["logs"][0]["transactionHash"], r["logs"][0]["logIndex"]) for r in receipts
    )


def test_estimate_gas(w3, accounts, deployed):
    contract, _ = deployed
    acct = accounts[OTHER]
    fn = contract.functions.register(777_001, 9)
    estimate = fn.estimate_gas({"from": acct.address})
    tx = fn.build_transaction(tx_fields(w3, acct, gas=estimate))
    receipt = mined(w3, send(w3, acct, tx))
    assert receipt["status"] == 1
    assert estimate >= receipt["gasUsed"]
    assert estimate <= receipt["gasUsed"] * 105 // 100 + 3000, (estimate, receipt["gasUsed"])

    assert w3.eth.estimate_gas({"from": acct.address, "to": accounts[DEPLOYER].address, "value": 1}) == 21000

    nested = contract.functions.nestedBurn(200)
    est_nested = nested.estimate_gas({"from": acct.address})
    receipt = mined(w3, send(w3, acct, nested.build_transaction(tx_fields(w3, acct, gas=est_nested))))
    assert receipt["status"] == 1, "the estimate covers the 63/64 rule"


def decode_out_of_range(w3, contract, data):
    raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
    selector = Web3.keccak(text="OutOfRange(address,uint256,uint256)")[:4]
    assert raw[:4] == selector, raw.hex()
    return w3.codec.decode(["address", "uint256", "uint256"], raw[4:])


def test_custom_error_revert(w3, accounts, deployed):
    contract, _ = deployed
    acct = accounts[OTHER]
    assert contract.functions.checked(3, 5).call({"from": acct.address}) == 3

    with pytest.raises(ContractCustomError) as call_err:
        contract.functions.checked(9, 5).call({"from": acct.address})
    caller, value, maximum = decode_out_of_range(w3, contract, call_err.value.data)
    assert (caller.lower(), value, maximum) == (acct.address.lower(), 9, 5)

    with pytest.raises(ContractCustomError) as est_err:
        contract.functions.failWrite(4).estimate_gas({"from": acct.address})
    caller, value, maximum = decode_out_of_range(w3, contract, est_err.value.data)
    assert (caller.lower(), value, maximum) == (acct.address.lower(), 4, 0)

    with pytest.raises(ContractCustomError) as forbidden:
        contract.functions.onlyOwner().call({"from": acct.address})
    data = forbidden.value.data
    raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
    assert raw == Web3.keccak(text="Forbidden()")[:4]


def test_require_and_panic(w3, deployed):
    contract, _ = deployed
    with pytest.raises(ContractLogicError) as err:
        contract.functions.requirePositive(0).call()
    assert "value must be positive" in str(err.value)
    assert not isinstance(err.value, ContractCustomError)

    with pytest.raises(ContractLogicError) as est:
        contract.functions.requirePositive(0).estimate_gas()
    assert "value must be positive" in str(est.value)

    with pytest.raises(ContractPanicError) as panic:
        contract.functions.divide(1, 0).call()
    assert "division" in str(panic.value).lower() or "0x12" in str(panic.value).lower()


def test_mined_revert(w3, accounts, deployed):
    contract, _ = deployed
    acct = accounts[OTHER]
    before = contract.functions.count().call()
    tx = contract.functions.failWrite(3).build_transaction(tx_fields(w3, acct, gas=200_000))
    receipt = mined(w3, send(w3, acct, tx))
    assert receipt["status"] == 0
    assert receipt["logs"] == []
    assert contract.functions.count().call() == before


def test_send_errors(w3, accounts):
    acct = accounts[OTHER]
    nonce = w3.eth.get_transaction_count(acct.address, "pending")
    stale = acct.sign_transaction(
        tx_fields(w3, acct, nonce=max(nonce - 1, 0), to=accounts[DEPLOYER].address, value=5, gas=21000)
    )
    if nonce > 0:
        with pytest.raises(Web3RPCError) as err:
            w3.eth.send_raw_transaction(stale.raw_transaction)
        assert err.value.rpc_response["error"]["code"] == -32001, err.value.rpc_response

    wrong_chain = acct.sign_transaction(
        tx_fields(w3, acct, nonce=nonce, to=accounts[DEPLOYER].address, value=1, gas=21000, chainId=1)
    )
    with pytest.raises(Web3RPCError) as err:
        w3.eth.send_raw_transaction(wrong_chain.raw_transaction)
    assert err.value.rpc_response["error"]["code"] == -32000, err.value.rpc_response
    assert w3.eth.get_transaction_count(acct.address, "pending") == nonce


def test_blocks(w3, deployed):
    _, receipt = deployed
    head = w3.eth.block_number
    deadline = time.time() + 15
    while w3.eth.block_number < head + 2:
        assert time.time() < deadline, "blocks stopped"
        time.sleep(0.1)
    head = w3.eth.block_number
    prev = None
    for n in range(head - 2, head + 1):
        block = w3.eth.get_block(n)
        assert block["number"] == n
        assert w3.eth.get_block(block["hash"])["number"] == n
        assert block["gasUsed"] <= block["gasLimit"] == 1_000_000_000
        assert block["baseFeePerGas"] == 0
        assert isinstance(block["transactions"], list)
        if prev is not None:
            assert block["parentHash"] == prev["hash"]
            assert block["timestamp"] > prev["timestamp"]
        prev = block

    with_tx = w3.eth.get_block(receipt["blockNumber"], full_transactions=True)
    assert with_tx["hash"] == receipt["blockHash"]
    assert receipt["transactionHash"] in [t["hash"] for t in with_tx["transactions"]]
    assert w3.eth.get_block_transaction_count(receipt["blockNumber"]) == len(with_tx["transactions"])
    assert w3.eth.get_block("latest")["number"] >= head
    assert w3.eth.get_block("finalized")["number"] >= head


def test_pending_nonce(w3, accounts):
    acct = accounts[18]
    to = accounts[19].address
    base = w3.eth.get_transaction_count(acct.address)
    hashes = [
        send(w3, acct, tx_fields(w3, acct, nonce=base + i, to=to, value=1, gas=21000)) for i in range(3)
    ]
    assert w3.eth.get_transaction_count(acct.address, "pending") == base + 3
    for h in hashes:
        assert mined(w3, h)["status"] == 1
    assert w3.eth.get_transaction_count(acct.address) == base + 3


def test_websocket_subscriptions(w3, accounts, deployed):
    """newHeads and logs over web3.py's AsyncWeb3 WebSocketProvider."""
    contract, _ = deployed
    acct = accounts[19]

    async def run():
        async with AsyncWeb3(AsyncWeb3.WebSocketProvider(WS_URL)) as aw3:
            aw3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
            assert await aw3.eth.chain_id == CHAIN_ID
            heads_id = await aw3.eth.subscribe("newHeads")
            logs_id = await aw3.eth.subscribe("logs", {"address": contract.address})
            data = contract.encode_abi("register", args=[888_001, 1])
            tx_hash = await asyncio.to_thread(
                send, w3, acct, tx_fields(w3, acct, to=contract.address, data=data, gas=150_000)
            )
            heads, logs = [], []

            async def collect():
                async for msg in aw3.socket.process_subscriptions():
                    if msg["subscription"] == heads_id:
                        heads.append(msg["result"])
                    elif msg["subscription"] == logs_id:
                        logs.append(msg["result"])
                    if logs and heads:
                        return

            await asyncio.wait_for(collect(), timeout=20)
            assert await aw3.eth.unsubscribe(heads_id) is True
            assert await aw3.eth.unsubscribe(logs_id) is True
            return tx_hash, heads, logs

    tx_hash, heads, logs = asyncio.run(run())
    receipt = mined(w3, tx_hash)
    assert logs[0]["transactionHash"] == receipt["transactionHash"]
    assert logs[0]["blockHash"] == receipt["blockHash"]
    assert logs[0]["address"] == contract.address
    head = heads[0]
    assert w3.eth.get_block(head["number"])["hash"] == head["hash"]


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-v"]))
