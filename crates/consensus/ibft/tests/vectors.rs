//! The IBFT 2.0 message vectors of `shared/vectors/ibft2/derived/` and the Besu-asserted
//! tables, reproduced byte for byte; the 4-validator scenario is reproduced by running four
//! state machines, not by calling the codec directly.

mod common;

use common::{broadcasts, key, wire};

use alloy_primitives::{Address, B256, Bloom, Bytes, U256};
use alloy_rlp::{Decodable, Encodable};
use healthchain_ibft::{
    ChainHead, Ibft, IbftConfig, Input, Message, NodeKey, Output, Round, RoundId, TimerAt,
    WireLayout,
    machine::BlockPeriod,
    messages::{
        CommitPayload, Payload, PreparePayload, ProposalPayload, RoundChangePayload, Signed,
        signing_hash,
    },
    quorum,
    rules::proposer,
    validation::{check_commit_seals, check_header},
};
use healthchain_primitives::{
    Block, BlockBody, Header,
    ibft::{IBFT_MIX_HASH, IbftExtraData, block_hash, commit_seal_digest},
};
use healthchain_vectors::json;
use serde_json::Value;

fn bytes(v: &Value, key: &str) -> Vec<u8> {
    let s = v[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key:?} missing"));
    healthchain_vectors::hex(s)
}

fn b256(v: &Value, key: &str) -> B256 {
    B256::from_slice(&bytes(v, key))
}

/// The `BftBlockHashingTest` header at round 0, as proposed (no seals).
fn hashing_test_block() -> Block {
    let v = json("ibft2/derived/bft_block_hashing_test_derived.json");
    let i = &v["_inputs"];
    let h = |k: &str| i[k].as_str().unwrap().parse::<B256>().unwrap();
    let extra = IbftExtraData {
        vanity: Bytes::from((0u8..32).collect::<Vec<_>>()),
        validators: vec![Address::with_last_byte(1), Address::with_last_byte(2)],
        vote: Some(healthchain_primitives::ibft::Vote {
            recipient: Address::with_last_byte(3),
            kind: healthchain_primitives::ibft::VoteKind::Add,
        }),
        round: 0,
        seals: Vec::new(),
    };
    Block {
        header: Header {
            parent_hash: h("parentHash"),
            ommers_hash: h("ommersHash"),
            beneficiary: Address::ZERO,
            state_root: h("stateRoot"),
            transactions_root: h("transactionsRoot"),
            receipts_root: h("receiptsRoot"),
            logs_bloom: Bloom::ZERO,
            difficulty: U256::from(1),
            number: 1,
            gas_limit: i["gasLimit"].as_u64().unwrap(),
            gas_used: 0,
            timestamp: i["timestamp"].as_u64().unwrap(),
            extra_data: extra.encode(),
            mix_hash: h("mixHash"),
            ..Default::default()
        },
        body: BlockBody::default(),
    }
}

#[test]
fn message_codecs_match_the_derived_vectors() {
    let v = json("ibft2/derived/consensus_messages_derived.json");
    let v = &v["values"];
    let block = hashing_test_block();
    assert_eq!(
        alloy_rlp::encode(&block),
        bytes(v, "proposed block RLP [header, [], []]")
    );
    let digest = commit_seal_digest(&block.header).unwrap();
    let id = RoundId::new(1, 0);

    // Proposal, signed by key 1.
    let payload = ProposalPayload { id, digest };
    assert_eq!(payload.rlp(), bytes(v, "ProposalPayload RLP"));
    assert_eq!(
        signing_hash(0, &payload.rlp()),
        b256(v, "Proposal signing hash keccak(0x00||payload)")
    );
    let signed = Signed::sign(payload, &key(1)).unwrap();
    assert_eq!(signed.to_rlp(), bytes(v, "SignedProposalPayload (key1)"));
    let proposal = Message::Proposal(Box::new(healthchain_ibft::messages::Proposal {
        signed,
        block: block.clone(),
        round_change_certificate: None,
    }));
    for (layout, name) in [
        (WireLayout::Besu25, "Proposal msg code 0, pre-26.1 layout"),
        (WireLayout::Besu26, "Proposal msg code 0, 26.1+ layout"),
    ] {
        let wire = bytes(v, name);
        assert_eq!(proposal.encode(layout).as_ref(), wire.as_slice(), "{name}");
        let decoded = Message::decode(0, &wire).unwrap();
        assert_eq!(decoded, proposal, "{name}");
        assert_eq!(decoded.author(), key(1).address());
    }

    // Prepare and Commit, by key 2.
    let prepare = PreparePayload { id, digest };
    assert_eq!(prepare.rlp(), bytes(v, "PreparePayload RLP"));
    assert_eq!(
        signing_hash(1, &prepare.rlp()),
        b256(v, "Prepare signing hash keccak(0x01||payload)")
    );
    let prepare = Message::Prepare(Signed::sign(prepare, &key(2)).unwrap());
    let wire = bytes(v, "Prepare msg code 1 (key2)");
    assert_eq!(prepare.encode(WireLayout::Besu25).as_ref(), wire.as_slice());
    assert_eq!(Message::decode(1, &wire).unwrap(), prepare);

    let seal = key(2).sign(digest).unwrap();
    let commit = CommitPayload { id, digest, seal };
    assert_eq!(commit.rlp(), bytes(v, "CommitPayload RLP (seal by key2)"));
    assert_eq!(
        signing_hash(2, &commit.rlp()),
        b256(v, "Commit signing hash keccak(0x02||payload)")
    );
    let commit = Message::Commit(Signed::sign(commit, &key(2)).unwrap());
    let wire = bytes(v, "Commit msg code 2 (key2)");
    assert_eq!(commit.encode(WireLayout::Besu25).as_ref(), wire.as_slice());
    assert_eq!(Message::decode(2, &wire).unwrap(), commit);

    // RoundChange to round 1 without a certificate, by key 3.
    let rc = RoundChangePayload {
        id: RoundId::new(1, 1),
        prepared: None,
    };
    assert_eq!(
        rc.rlp(),
        bytes(v, "RoundChangePayload RLP (target h1 r1, no PC)")
    );
    assert_eq!(
        signing_hash(3, &rc.rlp()),
        b256(v, "RoundChange signing hash keccak(0x03||payload)")
    );
    let signed = Signed::sign(rc, &key(3)).unwrap();
    assert_eq!(signed.to_rlp(), bytes(v, "SignedRoundChangePayload (key3)"));
    let rc = Message::RoundChange(Box::new(healthchain_ibft::messages::RoundChange {
        signed,
        block: None,
    }));
    for (layout, name) in [
        (WireLayout::Besu25, "RoundChange msg code 3, pre-26.1"),
        (WireLayout::Besu26, "RoundChange msg code 3, 26.1+"),
    ] {
        let wire = bytes(v, name);
        assert_eq!(rc.encode(layout).as_ref(), wire.as_slice(), "{name}");
        assert_eq!(Message::decode(3, &wire).unwrap(), rc, "{name}");
    }
}

#[test]
fn malformed_messages_are_errors_never_panics() {
    let v = json("ibft2/derived/consensus_messages_derived.json");
    let v = &v["values"];
    let cases = [
        (0u8, bytes(v, "Proposal msg code 0, pre-26.1 layout")),
        (1, bytes(v, "Prepare msg code 1 (key2)")),
        (2, bytes(v, "Commit msg code 2 (key2)")),
        (3, bytes(v, "RoundChange msg code 3, pre-26.1")),
    ];
    for (code, wire) in &cases {
        // Every truncation fails cleanly.
        for len in 0..wire.len() {
            assert!(
                Message::decode(*code, &wire[..len]).is_err(),
                "code {code} prefix {len}"
            );
        }
        // Trailing bytes, the wrong code and every single-byte corruption: an error or a
        // message with a different author (signature bytes), never a panic.
        let mut trailing = wire.clone();
        trailing.push(0x80);
        assert!(Message::decode(*code, &trailing).is_err());
        assert!(Message::decode(9, wire).is_err());
        let original = Message::decode(*code, wire).unwrap();
        for i in 0..wire.len() {
            let mut corrupt = wire.clone();
            corrupt[i] ^= 0x41;
            if let Ok(decoded) = Message::decode(*code, &corrupt) {
                assert_ne!(decoded, original, "byte {i} of code {code} changed nothing");
            }
        }
    }
    // A high-S signature is refused (Besu's SignedData), even though it recovers.
    let prepare = Message::decode(1, &cases[1].1).unwrap();
    let Message::Prepare(signed) = prepare else {
        unreachable!()
    };
    let sig = signed.signature().inner();
    let n = U256::from_str_radix(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        16,
    )
    .unwrap();
    let high = alloy_primitives::Signature::new(sig.r(), n - sig.s(), !sig.v());
    let mut items = signed.payload().rlp();
    healthchain_primitives::ibft::Signature65::new(high).encode(&mut items);
    let mut wire = Vec::new();
    healthchain_primitives::ibft::wrap_list(&items, &mut wire);
    assert_eq!(
        Message::decode(1, &wire),
        Err(healthchain_ibft::MessageError::HighS)
    );
}

#[test]
fn quorum_and_round_timer_match_besu() {
    let v = json("ibft2/besu_asserted/bft_helpers_quorum_and_round_timer.json");
    for (n, q) in v["calculateRequiredValidatorQuorum(n) = ceil(2n/3)"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            quorum(n.parse().unwrap()),
            q.as_u64().unwrap() as usize,
            "n = {n}"
        );
    }
    // Besu's table is for a 2 s base without a cap; our cap only bites above it.
    let config = IbftConfig {
        request_timeout_ms: 2_000,
        max_round_timeout_ms: u64::MAX,
        ..IbftConfig::default()
    };
    for (round, ms) in v["round_expiry_ms_with_base_2s (base * 2^round)"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            config.round_timeout_ms(Round(round.parse().unwrap())),
            ms.as_u64().unwrap(),
            "round {round}"
        );
    }
    let capped = IbftConfig {
        request_timeout_ms: 2_000,
        max_round_timeout_ms: 60_000,
        ..IbftConfig::default()
    };
    assert_eq!(capped.round_timeout_ms(Round(4)), 32_000);
    assert_eq!(capped.round_timeout_ms(Round(5)), 60_000);
    assert_eq!(capped.round_timeout_ms(Round(u32::MAX)), 60_000);
}

#[test]
fn constants_match_besu() {
    let v = json("ibft2/besu_asserted/constants.json");
    let mix = v["mixHash (BftHelpers.EXPECTED_MIX_HASH; consensus/common/.../bft/BftHelpers.java)"]
        .as_str()
        .unwrap();
    assert_eq!(mix.parse::<B256>().unwrap(), IBFT_MIX_HASH);
    let codes = &v["message codes (IbftV2)"];
    assert_eq!(codes["PROPOSAL"], healthchain_ibft::messages::PROPOSAL);
    assert_eq!(codes["PREPARE"], healthchain_ibft::messages::PREPARE);
    assert_eq!(codes["COMMIT"], healthchain_ibft::messages::COMMIT);
    assert_eq!(
        codes["ROUND_CHANGE"],
        healthchain_ibft::messages::ROUND_CHANGE
    );
    let defaults = &v["ibft2 genesis config defaults (config/.../JsonBftConfigOptions.java)"];
    let config = IbftConfig::default();
    assert_eq!(
        config.request_timeout_ms,
        defaults["requesttimeoutseconds"].as_u64().unwrap() * 1000
    );
    assert_eq!(
        config.future_messages_limit as u64,
        defaults["futuremessageslimit"].as_u64().unwrap()
    );
    assert_eq!(
        config.future_messages_max_distance,
        defaults["futuremessagesmaxdistance"].as_u64().unwrap()
    );
    assert_eq!(
        config.block_period,
        BlockPeriod::Seconds(defaults["blockperiodseconds"].as_u64().unwrap())
    );
}

// ---- the 4-validator scenario, run through four state machines --------------------------

struct Scenario {
    v: Value,
    genesis: Header,
    genesis_hash: B256,
    validators: Vec<Address>,
    /// keys[i] signs as validators[i].
    keys: Vec<NodeKey>,
}

impl Scenario {
    fn load() -> Self {
        let v = json("ibft2/derived/scenario_4_validators_derived.json")["values"].clone();
        let rlp = bytes(&v, "genesis header RLP");
        let genesis = Header::decode(&mut rlp.as_slice()).unwrap();
        let genesis_hash = block_hash(&genesis).unwrap();
        assert_eq!(genesis_hash, b256(&v, "genesis hash"));
        assert_eq!(
            genesis.extra_data.as_ref(),
            bytes(&v, "genesis extraData").as_slice()
        );
        let mut keys: Vec<NodeKey> = (1..=4).map(key).collect();
        keys.sort_by_key(NodeKey::address);
        let validators: Vec<Address> = keys.iter().map(NodeKey::address).collect();
        assert_eq!(IbftExtraData::of(&genesis).unwrap().validators, validators);
        Self {
            v,
            genesis,
            genesis_hash,
            validators,
            keys,
        }
    }

    fn wire(&self, key: &str) -> Vec<u8> {
        bytes(&self.v, key)
    }

    fn machine(&self, i: usize) -> (Ibft, Vec<Output>) {
        let config = IbftConfig {
            request_timeout_ms: 4_000,
            block_period: BlockPeriod::Seconds(2),
            ..IbftConfig::default()
        };
        let mut machine = Ibft::new(config, self.keys[i].clone());
        let out = machine.handle(Input::NewChainHead(Box::new(ChainHead {
            header: self.genesis.clone(),
            hash: self.genesis_hash,
            validators: self.validators.clone(),
            restored: Vec::new(),
        })));
        (machine, out)
    }

    /// Block 1 as the round-0 proposer builds it: an empty block two seconds after genesis.
    fn block1(&self) -> Block {
        let extra = IbftExtraData::genesis(self.validators.clone());
        Block {
            header: Header {
                parent_hash: self.genesis_hash,
                beneficiary: self.validators[0],
                state_root: self.genesis.state_root,
                transactions_root: self.genesis.transactions_root,
                receipts_root: self.genesis.receipts_root,
                difficulty: U256::from(1),
                number: 1,
                gas_limit: self.genesis.gas_limit,
                timestamp: self.genesis.timestamp + 2,
                extra_data: extra.encode(),
                mix_hash: IBFT_MIX_HASH,
                ..Default::default()
            },
            body: BlockBody::default(),
        }
    }
}

/// Asserts every Broadcast is preceded by the Persist of the same message (for new ones).
fn persisted_before_sent(out: &[Output]) {
    for (i, o) in out.iter().enumerate() {
        if let Output::Broadcast(m) = o {
            assert!(
                out[..i]
                    .iter()
                    .any(|p| matches!(p, Output::Persist(r) if &r.message == m)),
                "broadcast without an earlier persist: {m:?}"
            );
        }
    }
}

#[test]
fn four_validator_scenario_reproduces_every_message() {
    let s = Scenario::load();
    // Proposers for rounds 0..4: the genesis coinbase 0x0 is no validator, so round 0 goes
    // to the lowest validator and round r to validators[r mod 4].
    for r in 0..5u32 {
        let expected: Address = s.v[format!("proposer h1 r{r}")]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            proposer(&s.validators, s.genesis.beneficiary, Round(r)),
            Some(expected)
        );
    }
    let block1 = s.block1();
    assert_eq!(
        alloy_rlp::encode(&block1),
        s.wire("h1r0 proposed block RLP")
    );
    let digest = commit_seal_digest(&block1.header).unwrap();
    assert_eq!(digest, b256(&s.v, "h1r0 digest (commit-seal hash)"));
    assert_eq!(
        block_hash(&block1.header).unwrap(),
        b256(&s.v, "block1 onchain hash")
    );
    check_header(&block1.header, &s.validators).unwrap();

    let mut machines: Vec<(Ibft, Vec<Output>)> = (0..4).map(|i| s.machine(i)).collect();
    // Only the round-0 proposer (validators[0]) starts a block timer, at parent + 2 s.
    let timers: Vec<bool> = machines
        .iter()
        .map(|(_, out)| {
            out.iter()
                .any(|o| matches!(o, Output::ScheduleBlockTimer { .. }))
        })
        .collect();
    assert_eq!(timers, [true, false, false, false]);
    assert!(machines[0].1.contains(&Output::ScheduleBlockTimer {
        height: healthchain_ibft::Height(1),
        at: TimerAt::UnixMs((s.genesis.timestamp + 2) * 1000),
    }));

    // The proposer's block timer fires; it builds block 1 and proposes it.
    let out = machines[0]
        .0
        .handle(Input::BlockTimerExpired(healthchain_ibft::Height(1)));
    assert!(
        matches!(out.as_slice(), [Output::BuildBlock { .. }]),
        "{out:?}"
    );
    let out = machines[0].0.handle(Input::BlockBuilt {
        id: RoundId::new(1, 0),
        block: Box::new(block1.clone()),
    });
    persisted_before_sent(&out);
    let sent = broadcasts(&out);
    assert_eq!(
        sent.len(),
        1,
        "the proposer sends only its proposal: {out:?}"
    );
    assert_eq!(
        wire(&sent[0]),
        s.wire("h1r0 Proposal msg (code 0, pre-26.1)")
    );
    let proposal = sent[0].clone();

    // Each other validator validates the block, then prepares.
    let mut prepares = Vec::new();
    for (i, (machine, _)) in machines.iter_mut().enumerate().skip(1) {
        let out = machine.handle(Input::Message(proposal.clone()));
        assert!(
            matches!(out.as_slice(), [Output::ValidateBlock { digest: d, .. }] if *d == digest),
            "{out:?}"
        );
        let out = machine.handle(Input::BlockValidated {
            id: RoundId::new(1, 0),
            digest,
            valid: true,
        });
        persisted_before_sent(&out);
        let sent = broadcasts(&out);
        assert_eq!(sent.len(), 1);
        let address = s.validators[i];
        assert_eq!(
            wire(&sent[0]),
            s.wire(&format!("h1r0 Prepare msg (code 1) by {address:#x}")),
            "prepare by {address}"
        );
        prepares.push(sent[0].clone());
    }

    // The commit seals and Commit messages each validator sends once prepared.
    for (i, validator) in s.validators.iter().enumerate() {
        assert_eq!(
            s.keys[i].sign(digest).unwrap().to_bytes().as_slice(),
            s.wire(&format!("h1r0 commit seal by {validator:#x}"))
                .as_slice()
        );
    }

    // The sealed block carries 3 seals; deliver so each node's commits arrive in that order.
    let sealed_extra = IbftExtraData::decode(&s.wire("block1 sealed extraData (3 seals)")).unwrap();
    let mut sealed_header = block1.header.clone();
    sealed_header.extra_data = sealed_extra.encode();
    let sealers = check_commit_seals(&sealed_header, &s.validators).unwrap();
    assert_eq!(sealers.len(), 3);

    // The proposer gets prepares from validators 1 and 2: prepared, it commits.
    let mut commits = std::collections::BTreeMap::new();
    for prepare in &prepares[..2] {
        let out = machines[0].0.handle(Input::Message(prepare.clone()));
        persisted_before_sent(&out);
        for m in broadcasts(&out) {
            commits.insert(m.author(), m);
        }
    }
    assert!(commits.contains_key(&s.validators[0]), "proposer committed");
    // Validators 1 and 2 see each other's prepares and the proposer's: prepared, commit.
    for i in [1usize, 2] {
        for (j, prepare) in prepares.iter().enumerate() {
            if j + 1 != i && j < 2 {
                let out = machines[i].0.handle(Input::Message(prepare.clone()));
                for m in broadcasts(&out) {
                    commits.insert(m.author(), m);
                }
            }
        }
    }
    // Validator 3 also prepares with validators 1 and 2's prepares.
    for prepare in &prepares[..2] {
        let out = machines[3].0.handle(Input::Message(prepare.clone()));
        for m in broadcasts(&out) {
            commits.insert(m.author(), m);
        }
    }
    assert_eq!(commits.len(), 4, "every validator prepared and committed");
    for (author, commit) in &commits {
        assert_eq!(
            wire(commit),
            s.wire(&format!("h1r0 Commit msg (code 2) by {author:#x}")),
            "commit by {author}"
        );
    }

    // A node whose own commit came first and then the other two sealers' commits arrives
    // at exactly the vector's sealed block.
    let first = sealers[0];
    let node = s.validators.iter().position(|v| *v == first).unwrap();
    let mut committed = None;
    for author in &sealers[1..] {
        let out = machines[node]
            .0
            .handle(Input::Message(commits[author].clone()));
        for o in out {
            if let Output::Commit(c) = o {
                committed = Some(c);
            }
        }
    }
    let committed = committed.expect("quorum of commits commits the block");
    assert_eq!(committed.round, Round(0));
    assert_eq!(committed.hash, b256(&s.v, "block1 onchain hash"));
    assert_eq!(
        alloy_rlp::encode(&committed.block.header),
        s.wire("block1 sealed header RLP")
    );
    assert_eq!(
        alloy_rlp::encode(&committed.block),
        s.wire("block1 sealed block RLP")
    );
}

#[test]
fn four_validator_round_change_reproduces_the_certificate_and_reproposal() {
    let s = Scenario::load();
    let block1 = s.block1();
    let digest = commit_seal_digest(&block1.header).unwrap();
    let mut machines: Vec<(Ibft, Vec<Output>)> = (0..4).map(|i| s.machine(i)).collect();
    machines[0]
        .0
        .handle(Input::BlockTimerExpired(healthchain_ibft::Height(1)));
    let out = machines[0].0.handle(Input::BlockBuilt {
        id: RoundId::new(1, 0),
        block: Box::new(block1),
    });
    let proposal = broadcasts(&out).remove(0);
    // Validators 1 and 2 get the proposal and prepare; validator 3 never sees it.
    let mut prepares = Vec::new();
    for i in [1usize, 2] {
        machines[i].0.handle(Input::Message(proposal.clone()));
        let out = machines[i].0.handle(Input::BlockValidated {
            id: RoundId::new(1, 0),
            digest,
            valid: true,
        });
        prepares.push(broadcasts(&out).remove(0));
    }
    // Only the proposer receives those prepares: it alone is prepared.
    for prepare in &prepares {
        machines[0].0.handle(Input::Message(prepare.clone()));
    }
    // Round 0 times out. The proposer's RoundChange carries its prepared certificate.
    let expire = |m: &mut Ibft| {
        let out = m.handle(Input::RoundTimerExpired(RoundId::new(1, 0)));
        persisted_before_sent(&out);
        assert!(out.contains(&Output::ScheduleRoundTimer {
            id: RoundId::new(1, 1),
            after_ms: 8_000,
        }));
        broadcasts(&out)
            .into_iter()
            .find(|m| matches!(m, Message::RoundChange(_)))
            .unwrap()
    };
    let rc0 = expire(&mut machines[0].0);
    assert_eq!(
        wire(&rc0),
        s.wire(&format!(
            "h1r1 RoundChange msg (code 3, pre-26.1) by {:#x} withPC=true",
            s.validators[0]
        ))
    );
    // Validator 1 (round 1's proposer) hears validator 0's RoundChange, times out itself,
    // then hears validator 2's: the certificate is complete in that order.
    machines[1].0.handle(Input::Message(rc0.clone()));
    let rc1 = expire(&mut machines[1].0);
    assert_eq!(
        wire(&rc1),
        s.wire(&format!(
            "h1r1 RoundChange msg (code 3, pre-26.1) by {:#x} withPC=false",
            s.validators[1]
        ))
    );
    let rc2 = expire(&mut machines[2].0);
    assert_eq!(
        wire(&rc2),
        s.wire(&format!(
            "h1r1 RoundChange msg (code 3, pre-26.1) by {:#x} withPC=false",
            s.validators[2]
        ))
    );
    let out = machines[1].0.handle(Input::Message(rc2));
    persisted_before_sent(&out);
    let reproposal = broadcasts(&out)
        .into_iter()
        .find(|m| matches!(m, Message::Proposal(_)))
        .expect("round 1's proposer re-proposes at once");
    let Message::Proposal(p) = &reproposal else {
        unreachable!()
    };
    assert_eq!(
        alloy_rlp::encode(&p.block),
        s.wire("h1r1 re-proposed block RLP (coinbase stays round-0 proposer)")
    );
    assert_eq!(p.signed.payload().digest, b256(&s.v, "h1r1 digest"));
    assert_eq!(
        p.round_change_certificate.as_ref().unwrap().to_rlp(),
        s.wire("h1r1 RoundChangeCertificate RLP")
    );
    assert_eq!(
        wire(&reproposal),
        s.wire(&format!(
            "h1r1 Proposal msg (code 0, pre-26.1) by {:#x}",
            s.validators[1]
        ))
    );
    assert_eq!(
        reproposal.encode(WireLayout::Besu26).as_ref(),
        s.wire(&format!(
            "h1r1 Proposal msg (code 0, 26.1+) by {:#x}",
            s.validators[1]
        ))
        .as_slice()
    );
    // The on-chain hash is unchanged by the round.
    assert_eq!(
        block_hash(&p.block.header).unwrap(),
        b256(&s.v, "block1 onchain hash")
    );
    // Validator 3, in round 0 with no proposal, accepts the round-1 proposal: it jumps.
    let out = machines[3].0.handle(Input::Message(reproposal.clone()));
    assert!(
        matches!(out.as_slice(), [Output::ValidateBlock { id, .. }] if *id == RoundId::new(1, 1)),
        "{out:?}"
    );
    let out = machines[3].0.handle(Input::BlockValidated {
        id: RoundId::new(1, 1),
        digest: b256(&s.v, "h1r1 digest"),
        valid: true,
    });
    assert_eq!(machines[3].0.current(), Some(RoundId::new(1, 1)));
    assert!(
        broadcasts(&out)
            .iter()
            .any(|m| matches!(m, Message::Prepare(_)))
    );
}

#[test]
fn oversized_certificates_are_refused_while_decoding() {
    use healthchain_ibft::messages::{
        MAX_VALIDATORS, PreparedCertificate, RoundChange, RoundChangeCertificate,
    };
    let block = hashing_test_block();
    let digest = commit_seal_digest(&block.header).unwrap();
    let id0 = RoundId::new(1, 0);
    let proposal = Signed::sign(ProposalPayload { id: id0, digest }, &key(1)).unwrap();
    let prepares = |n: usize| -> Vec<Signed<PreparePayload>> {
        let one = Signed::sign(PreparePayload { id: id0, digest }, &key(2)).unwrap();
        vec![one; n]
    };
    let rc_with = |n: usize| {
        Signed::sign(
            RoundChangePayload {
                id: RoundId::new(1, 1),
                prepared: Some(PreparedCertificate {
                    proposal: proposal.clone(),
                    prepares: prepares(n),
                }),
            },
            &key(3),
        )
        .unwrap()
    };
    // A prepared certificate may list at most MAX_VALIDATORS prepares.
    for (n, ok) in [(MAX_VALIDATORS, true), (MAX_VALIDATORS + 1, false)] {
        let message = Message::RoundChange(Box::new(RoundChange {
            signed: rc_with(n),
            block: Some(block.clone()),
        }));
        let decoded = Message::decode(3, &wire(&message));
        assert_eq!(decoded.is_ok(), ok, "{n} prepares: {decoded:?}");
    }
    // A round-change certificate of 64 round changes each carrying 64 prepares asks for
    // over 4,000 recoveries: refused for the signature budget.
    let rc = rc_with(MAX_VALIDATORS);
    let proposal = Message::Proposal(Box::new(healthchain_ibft::messages::Proposal {
        signed: Signed::sign(
            ProposalPayload {
                id: RoundId::new(1, 1),
                digest,
            },
            &key(2),
        )
        .unwrap(),
        block,
        round_change_certificate: Some(RoundChangeCertificate {
            round_changes: vec![rc; MAX_VALIDATORS],
        }),
    }));
    assert_eq!(
        Message::decode(0, &wire(&proposal)),
        Err(healthchain_ibft::MessageError::Structure(
            "too many signatures in one message"
        ))
    );
}
