//! Helpers both IBFT test files use.

use healthchain_ibft::{Message, NodeKey, Output, WireLayout};

/// The node key with secret scalar `n` (private keys 1..4 are the vectors' validators).
pub(crate) fn key(n: u8) -> NodeKey {
    let mut secret = [0u8; 32];
    secret[31] = n;
    NodeKey::from_secret(&secret).unwrap()
}

/// The messages among `out` the host must broadcast, in order.
pub(crate) fn broadcasts(out: &[Output]) -> Vec<Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Broadcast(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// A message's data in the layout HealthChain writes.
pub(crate) fn wire(message: &Message) -> Vec<u8> {
    message.encode(WireLayout::Besu25).to_vec()
}
