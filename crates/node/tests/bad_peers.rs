//! A node with the network on, attacked by a peer that sends garbage: undecodable frames,
//! oversized messages, IBFT messages signed by a non-validator, and a flood of future-height
//! messages (all scored down until the peer is banned), and frames over the size limit
//! (refused by gossipsub on receipt). The chain keeps going.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use healthchain_ibft::{
    Message, NodeKey, RoundId, WireLayout,
    messages::{CommitPayload, PreparePayload, Signed},
};
use healthchain_network::{AllowAll, NetworkConfig, Topic};
use healthchain_node::{GenesisFile, NodeConfig, launch};

fn wire(message: &Message) -> Vec<u8> {
    let mut data = vec![message.code()];
    data.extend_from_slice(&message.encode(WireLayout::Besu25));
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_garbage_is_banned_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("validator.key");
    std::fs::write(&key, healthchain_fixtures::validator().secret_hex()).unwrap();
    let mut config = NodeConfig::default();
    config.node.datadir = Some(dir.path().join("data"));
    config.node.key_file = Some(key);
    config.rpc.http_enabled = false;
    config.rpc.ws_enabled = false;
    config.network.listen_addr = "127.0.0.1:0".parse().unwrap();
    config.network.max_message_bytes = 256 * 1024;
    let genesis = GenesisFile::parse(
        healthchain_fixtures::genesis_json_with_period_ms(4, 100),
        std::path::Path::new("fixtures"),
    )
    .unwrap();
    let node = launch(config, Some(genesis)).await.unwrap();
    let tag: String = format!("{:x}", node.genesis_hash)
        .chars()
        .take(16)
        .collect();

    // The attacker: an ordinary libp2p node of the same chain, not a validator.
    let mut secret = [7u8; 32];
    secret[0] = 1;
    let (rogue, _events) = healthchain_network::start(
        NetworkConfig {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            bootnodes: vec![node.enode.clone().unwrap()],
            max_message_bytes: 1024 * 1024,
            ..NetworkConfig::default()
        },
        &secret,
        &tag,
        Arc::new(AllowAll),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while rogue.peers().is_empty() {
        assert!(Instant::now() < deadline, "rogue never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let head_before = node
        .engine
        .metrics
        .height
        .load(std::sync::atomic::Ordering::Relaxed);

    let outsider = NodeKey::from_secret(&secret).unwrap();
    let validator_key = NodeKey::from_secret(
        &alloy_primitives::hex::decode(healthchain_fixtures::validator().secret_hex()).unwrap(),
    )
    .unwrap();
    let mut sent = 0;
    // Future-height messages from the real validator's key (well-formed: buffered within
    // bounds, not punished) mixed with garbage and outsiders' votes (punished).
    // Keep sending until the node bans us (bounded: 20 s, 4,000 messages).
    let flood_until = Instant::now() + Duration::from_secs(20);
    for i in 0..1000u64 {
        if Instant::now() > flood_until {
            break;
        }
        let future = Signed::sign(
            PreparePayload {
                id: RoundId::new(head_before + 2 + i % 9, (i % 5) as u32),
                digest: B256::from(alloy_primitives::U256::from(i)),
            },
            &validator_key,
        )
        .unwrap();
        rogue.publish(Topic::Consensus, wire(&Message::Prepare(future)));
        // Undecodable bytes.
        let mut garbage = vec![2, 0xc9];
        garbage.extend_from_slice(&i.to_be_bytes());
        rogue.publish(Topic::Consensus, garbage);
        // A well-formed commit for the current height from a non-validator.
        let digest = B256::from(alloy_primitives::U256::from(i + 1_000_000));
        let seal = outsider.sign(digest).unwrap();
        let commit = Signed::sign(
            CommitPayload {
                id: RoundId::new(head_before, 0),
                digest,
                seal,
            },
            &outsider,
        )
        .unwrap();
        rogue.publish(Topic::Consensus, wire(&Message::Commit(commit)));
        // Larger than the node accepts (gossipsub drops it on receipt).
        sent += 3;
        if rogue.peers().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Banned: disconnected, and redials are refused.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !rogue.peers().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the attacker was never disconnected ({sent} messages)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(rogue.peers().is_empty(), "the banned attacker got back in");
    let rejected = node
        .engine
        .metrics
        .messages_rejected
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(rejected > 0, "nothing was rejected");
    // A second attacker sends frames larger than the node accepts: gossipsub refuses them
    // on receipt (closing that stream), and nothing else is disturbed.
    let mut secret2 = [9u8; 32];
    secret2[0] = 2;
    let (rogue2, _events2) = healthchain_network::start(
        NetworkConfig {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            bootnodes: vec![node.enode.clone().unwrap()],
            max_message_bytes: 1024 * 1024,
            ..NetworkConfig::default()
        },
        &secret2,
        &tag,
        Arc::new(AllowAll),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for i in 0..5u64 {
        let mut oversized = vec![0u8; 300 * 1024];
        oversized[..8].copy_from_slice(&i.to_be_bytes());
        rogue2.publish(Topic::Consensus, oversized);
    }
    // The chain kept going throughout.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let height = node
            .engine
            .metrics
            .height
            .load(std::sync::atomic::Ordering::Relaxed);
        if height >= head_before + 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the chain stalled at {height} (from {head_before})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rogue.shutdown().await;
    rogue2.shutdown().await;
    node.shutdown().await.unwrap();
}
