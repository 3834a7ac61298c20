//! Real libp2p nodes on 127.0.0.1: connecting by enode URL, gossip with validation, sync
//! requests and chunked blob fetch, the connection gate, and bans for bad data.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use alloy_primitives::B256;
use healthchain_network::{
    Acceptance, AllowAll, ChainStatus, ConnectionGate, NetworkConfig, NetworkEvent, NetworkHandle,
    NodeId, Offence, SyncRequest, SyncResponse, Topic, start, sync::MAX_BLOB_CHUNK,
};
use libp2p::Multiaddr;
use tokio::sync::mpsc::Receiver;

const WAIT: Duration = Duration::from_secs(20);

fn secret(n: u8) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[31] = n;
    s
}

fn config(bootnodes: Vec<String>) -> NetworkConfig {
    NetworkConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        bootnodes,
        ..NetworkConfig::default()
    }
}

async fn node(
    n: u8,
    bootnodes: Vec<String>,
    gate: Arc<dyn ConnectionGate>,
) -> (NetworkHandle, Receiver<NetworkEvent>) {
    start(config(bootnodes), &secret(n), "test", gate)
        .await
        .unwrap()
}

fn enode(handle: &NetworkHandle) -> String {
    handle.local().node.enode_url(handle.local().listen)
}

/// Waits for the first event matching `f`, answering sync requests with a status.
async fn next<T>(
    events: &mut Receiver<NetworkEvent>,
    mut f: impl FnMut(NetworkEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("network stopped");
            if let Some(found) = f(event) {
                return found;
            }
        }
    })
    .await
    .expect("timed out waiting for a network event")
}

async fn connected(a: &NetworkHandle, count: usize) {
    tokio::time::timeout(WAIT, async {
        while a.peers().len() < count {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("peers did not connect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_connect_by_enode_and_gossip_only_what_is_accepted() {
    let (a, _a_events) = node(1, vec![], Arc::new(AllowAll)).await;
    let (b, mut b_events) = node(2, vec![enode(&a)], Arc::new(AllowAll)).await;
    let (_c, mut c_events) = node(3, vec![enode(&b)], Arc::new(AllowAll)).await;
    connected(&b, 2).await;
    // Identities agree: the peer id of a key is the one its enode URL names.
    let peer_b = b.local().peer_id;
    let seen = a.peers().into_iter().find(|p| p.peer_id == peer_b).unwrap();
    assert_eq!(seen.node, NodeId::from_peer_id(&peer_b).unwrap());
    assert_eq!(seen.node.address(), b.local().node.address());
    // Give the gossip mesh a couple of heartbeats.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // A publishes; B receives it and accepts it; C (connected only to B) then gets it.
    a.publish(Topic::Consensus, b"accepted".to_vec());
    let (id, source) = next(&mut b_events, |e| match e {
        NetworkEvent::Gossip {
            topic: Topic::Consensus,
            id,
            source,
            data,
        } if data == b"accepted" => Some((id, source)),
        _ => None,
    })
    .await;
    assert_eq!(source, a.local().peer_id);
    b.report(id, source, Acceptance::Accept);
    next(&mut c_events, |e| match e {
        NetworkEvent::Gossip { data, .. } if data == b"accepted" => Some(()),
        _ => None,
    })
    .await;

    // A message B rejects is not forwarded to C.
    a.publish(Topic::Transactions, b"rejected".to_vec());
    let (id, source) = next(&mut b_events, |e| match e {
        NetworkEvent::Gossip {
            topic: Topic::Transactions,
            id,
            source,
            data,
        } if data == b"rejected" => Some((id, source)),
        _ => None,
    })
    .await;
    b.report(id, source, Acceptance::Reject);
    a.publish(Topic::Consensus, b"marker".to_vec());
    let (id, source) = next(&mut b_events, |e| match e {
        NetworkEvent::Gossip {
            id, source, data, ..
        } if data == b"marker" => Some((id, source)),
        _ => None,
    })
    .await;
    b.report(id, source, Acceptance::Accept);
    let forwarded = next(&mut c_events, |e| match e {
        NetworkEvent::Gossip { data, .. } if data == b"marker" || data == b"rejected" => Some(data),
        _ => None,
    })
    .await;
    assert_eq!(forwarded, b"marker", "C got the rejected message");

    // Blob announcements travel on their own topic.
    a.publish(Topic::Blobs, b"announcement".to_vec());
    let (topic, id, source) = next(&mut b_events, |e| match e {
        NetworkEvent::Gossip {
            topic,
            id,
            source,
            data,
        } if data == b"announcement" => Some((topic, id, source)),
        _ => None,
    })
    .await;
    assert_eq!(topic, Topic::Blobs);
    b.report(id, source, Acceptance::Accept);
    next(&mut c_events, |e| match e {
        NetworkEvent::Gossip {
            topic: Topic::Blobs,
            data,
            ..
        } if data == b"announcement" => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_requests_get_answers() {
    let (a, mut a_events) = node(4, vec![], Arc::new(AllowAll)).await;
    let (b, _b_events) = node(5, vec![enode(&a)], Arc::new(AllowAll)).await;
    connected(&b, 1).await;
    let status = ChainStatus {
        genesis: B256::repeat_byte(1),
        head_number: 42,
        head_hash: B256::repeat_byte(2),
    };
    let responder = tokio::spawn(async move {
        next(&mut a_events, |e| match e {
            NetworkEvent::Request {
                request: SyncRequest::Status,
                reply,
                ..
            } => {
                let _ = reply.send(SyncResponse::Status(status));
                Some(())
            }
            _ => None,
        })
        .await;
        a_events
    });
    let answer = b
        .request(a.local().peer_id, SyncRequest::Status)
        .await
        .unwrap();
    assert_eq!(answer, SyncResponse::Status(status));
    let mut a_events = responder.await.unwrap();
    // A dropped reply is a refusal, not a hang.
    let refuser = tokio::spawn(async move {
        next(&mut a_events, |e| match e {
            NetworkEvent::Request { reply, .. } => {
                drop(reply);
                Some(())
            }
            _ => None,
        })
        .await;
    });
    let answer = b
        .request(
            a.local().peer_id,
            SyncRequest::Headers { start: 0, count: 1 },
        )
        .await
        .unwrap();
    assert!(matches!(answer, SyncResponse::Refused(_)), "{answer:?}");
    refuser.await.unwrap();
}

/// Answers a blob request from `blobs` as a blob store would: the asked bytes, fewer at the
/// end, or a refusal for a blob it lacks.
fn serve_blob(blobs: &[(&str, &[u8])], request: &SyncRequest) -> SyncResponse {
    let SyncRequest::Blob {
        cid,
        offset,
        length,
    } = request
    else {
        return SyncResponse::Refused("not a blob request".into());
    };
    let Some((_, blob)) = blobs.iter().find(|(c, _)| c == cid) else {
        return SyncResponse::Refused("no such blob".into());
    };
    let start = usize::try_from(*offset)
        .unwrap_or(usize::MAX)
        .min(blob.len());
    let end = start.saturating_add(*length as usize).min(blob.len());
    SyncResponse::BlobChunk {
        total: blob.len() as u64,
        data: blob[start..end].to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_is_fetched_in_full_size_chunks() {
    let (a, _a_events) = node(10, vec![], Arc::new(AllowAll)).await;
    let (b, mut b_events) = node(11, vec![enode(&a)], Arc::new(AllowAll)).await;
    connected(&a, 1).await;
    // More than one full chunk, so the last one comes back short.
    let blob: Vec<u8> = (0..MAX_BLOB_CHUNK as usize + 1000)
        .map(|i| (i % 251) as u8)
        .collect();
    let stored = blob.clone();
    let responder = tokio::spawn(async move {
        let blobs = [("bafy-test", stored.as_slice())];
        while let Some(event) = b_events.recv().await {
            if let NetworkEvent::Request { request, reply, .. } = event {
                let _ = reply.send(serve_blob(&blobs, &request));
            }
        }
    });
    let ask = |offset: u64| {
        tokio::time::timeout(
            WAIT,
            a.request(
                b.local().peer_id,
                SyncRequest::Blob {
                    cid: "bafy-test".into(),
                    offset,
                    length: MAX_BLOB_CHUNK,
                },
            ),
        )
    };
    let mut fetched = Vec::new();
    loop {
        let answer = ask(fetched.len() as u64).await.expect("timed out").unwrap();
        let SyncResponse::BlobChunk { total, data } = answer else {
            panic!("expected a chunk, got {answer:?}");
        };
        assert_eq!(total, blob.len() as u64);
        assert!(!data.is_empty() && data.len() <= MAX_BLOB_CHUNK as usize);
        fetched.extend_from_slice(&data);
        if fetched.len() as u64 >= total {
            break;
        }
    }
    assert_eq!(fetched.len(), blob.len());
    assert!(fetched == blob, "the fetched bytes differ");
    // A blob the peer lacks is refused, not failed.
    let answer = tokio::time::timeout(
        WAIT,
        a.request(
            b.local().peer_id,
            SyncRequest::Blob {
                cid: "bafy-missing".into(),
                offset: 0,
                length: 1,
            },
        ),
    )
    .await
    .expect("timed out")
    .unwrap();
    assert_eq!(answer, SyncResponse::Refused("no such blob".into()));
    responder.abort();
}

struct Switch(AtomicBool);

impl ConnectionGate for Switch {
    fn allowed(&self, _: &NodeId, _: &Multiaddr, _: bool) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_refuses_and_disconnects_and_offenders_are_banned() {
    let gate = Arc::new(Switch(AtomicBool::new(true)));
    let (a, _a_events) = node(6, vec![], gate.clone()).await;
    let (b, _b_events) = node(7, vec![enode(&a)], Arc::new(AllowAll)).await;
    connected(&a, 1).await;
    // Permission withdrawn: the live connection goes on recheck, and redials are refused.
    gate.0.store(false, Ordering::SeqCst);
    a.recheck();
    tokio::time::timeout(WAIT, async {
        while !a.peers().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("not disconnected");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(a.peers().is_empty(), "a refused node got back in");
    // Permission back: B redials on its own.
    gate.0.store(true, Ordering::SeqCst);
    connected(&a, 1).await;
    // Enough offences ban B: disconnected, and its redials are refused.
    for _ in 0..3 {
        a.penalize(b.local().peer_id, Offence::Malformed);
    }
    tokio::time::timeout(WAIT, async {
        while !a.peers().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("offender not disconnected");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(a.peers().is_empty(), "a banned peer got back in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_flooding_sync_requests_is_refused_then_banned() {
    let (a, mut a_events) = node(8, vec![], Arc::new(AllowAll)).await;
    let (b, _b_events) = node(9, vec![enode(&a)], Arc::new(AllowAll)).await;
    connected(&a, 1).await;
    // A answers every request it is handed.
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = answered.clone();
    let responder = tokio::spawn(async move {
        while let Some(event) = a_events.recv().await {
            if let NetworkEvent::Request { reply, .. } = event {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = reply.send(SyncResponse::Headers(Vec::new()));
            }
        }
    });
    // Far more than the burst, as fast as B can send them, one at a time.
    let mut refused = 0;
    let mut failed = 0;
    for _ in 0..200 {
        match b.request(a.local().peer_id, SyncRequest::Status).await {
            Ok(SyncResponse::Refused(reason)) => {
                assert_eq!(reason, "rate limited");
                refused += 1;
            }
            Ok(_) => {}
            // Banned and disconnected part-way.
            Err(_) => failed += 1,
        }
        if failed > 0 {
            break;
        }
    }
    let served = answered.load(Ordering::SeqCst);
    assert!(
        (60..150).contains(&served),
        "{served} requests served: the burst (60) and what refilled, no more"
    );
    assert!(refused > 0, "none refused");
    tokio::time::timeout(WAIT, async {
        while !a.peers().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the flooder was not banned");
    responder.abort();
}
