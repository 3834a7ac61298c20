//! One key names a node three ways: its libp2p peer id, its validator address and its
//! Besu-style enode id (the 64-byte public key as 128 hex characters). A secp256k1 peer id
//! embeds the public key (identity multihash), so each can be computed from the others.

use std::net::SocketAddr;

use alloy_primitives::{Address, hex, keccak256};
use libp2p::{
    Multiaddr, PeerId,
    identity::{self, Keypair, PublicKey},
    multiaddr::Protocol,
};

/// Why a key, peer id or node URL could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not a valid secp256k1 secret key.
    #[error("invalid node key: {0}")]
    Key(String),
    /// A peer id that does not embed a secp256k1 key.
    #[error("peer id {0} does not carry a secp256k1 public key")]
    PeerId(String),
    /// A bootnode or static peer that is neither an enode URL nor a multiaddr with /p2p/.
    #[error("invalid node address {address:?}: {reason}")]
    NodeUrl {
        /// The text given.
        address: String,
        /// Why it was refused.
        reason: String,
    },
}

/// A node's libp2p keypair from its 32-byte secp256k1 secret.
pub fn keypair_from_secret(secret: &[u8; 32]) -> Result<Keypair, IdentityError> {
    let mut bytes = *secret;
    let secret = identity::secp256k1::SecretKey::try_from_bytes(&mut bytes)
        .map_err(|e| IdentityError::Key(e.to_string()))?;
    Ok(Keypair::from(identity::secp256k1::Keypair::from(secret)))
}

/// Who a peer is, by its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId {
    /// The uncompressed public key without its `0x04` prefix (Besu's enode id).
    pub public: [u8; 64],
}

impl NodeId {
    /// The node id of a libp2p public key (secp256k1 only).
    pub fn from_public_key(key: &PublicKey) -> Option<Self> {
        let key = key.clone().try_into_secp256k1().ok()?;
        let uncompressed = key.to_bytes_uncompressed();
        let mut public = [0u8; 64];
        public.copy_from_slice(&uncompressed[1..]);
        Some(Self { public })
    }

    /// The node id embedded in a peer id.
    pub fn from_peer_id(peer: &PeerId) -> Result<Self, IdentityError> {
        let multihash = peer.as_ref();
        // Identity multihash (code 0x00): the digest is the protobuf-encoded public key.
        if multihash.code() != 0 {
            return Err(IdentityError::PeerId(peer.to_string()));
        }
        let key = PublicKey::try_decode_protobuf(multihash.digest())
            .map_err(|_| IdentityError::PeerId(peer.to_string()))?;
        Self::from_public_key(&key).ok_or_else(|| IdentityError::PeerId(peer.to_string()))
    }

    /// The node id written as 128 hex characters.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.strip_prefix("0x").unwrap_or(text)).ok()?;
        let public: [u8; 64] = bytes.try_into().ok()?;
        // Must be a point on the curve.
        Self::public_key_of(&public)?;
        Some(Self { public })
    }

    fn public_key_of(public: &[u8; 64]) -> Option<PublicKey> {
        let mut uncompressed = [0u8; 65];
        uncompressed[0] = 0x04;
        uncompressed[1..].copy_from_slice(public);
        let key = identity::secp256k1::PublicKey::try_from_bytes(&uncompressed).ok()?;
        Some(PublicKey::from(key))
    }

    /// The libp2p peer id of this key.
    pub fn peer_id(&self) -> Option<PeerId> {
        Self::public_key_of(&self.public).map(|k| k.to_peer_id())
    }

    /// The validator (account) address: keccak256 of the public key, last 20 bytes.
    pub fn address(&self) -> Address {
        Address::from_slice(&keccak256(self.public)[12..])
    }

    /// 128 lower-case hex characters, as in `enode://<id>@host:port`.
    pub fn enode_hex(&self) -> String {
        hex::encode(self.public)
    }

    /// `enode://<id>@<ip>:<port>`.
    pub fn enode_url(&self, addr: SocketAddr) -> String {
        format!("enode://{}@{}", self.enode_hex(), addr)
    }
}

/// A peer to dial: its id and where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr {
    /// The peer.
    pub peer: PeerId,
    /// Its address, without the `/p2p/` suffix.
    pub addr: Multiaddr,
}

impl PeerAddr {
    /// Parses `enode://<128 hex>@ip:port` (Besu's form) or a multiaddr ending in
    /// `/p2p/<peer id>`.
    pub fn parse(text: &str) -> Result<Self, IdentityError> {
        let fail = |reason: &str| IdentityError::NodeUrl {
            address: text.to_string(),
            reason: reason.to_string(),
        };
        if let Some(rest) = text.strip_prefix("enode://") {
            let (id, host) = rest
                .split_once('@')
                .ok_or_else(|| fail("missing @host:port"))?;
            // Besu URLs may carry ?discport=…; discovery is not used here.
            let host = host.split('?').next().unwrap_or(host);
            let node = NodeId::from_hex(id)
                .ok_or_else(|| fail("the id is not a 64-byte secp256k1 public key"))?;
            let socket: SocketAddr = host.parse().map_err(|_| fail("host must be ip:port"))?;
            let peer = node
                .peer_id()
                .ok_or_else(|| fail("the id is not a valid public key"))?;
            return Ok(Self {
                peer,
                addr: socket_multiaddr(socket),
            });
        }
        let mut addr: Multiaddr = text
            .parse()
            .map_err(|_| fail("neither an enode URL nor a multiaddr"))?;
        let Some(Protocol::P2p(peer)) = addr.pop() else {
            return Err(fail("a multiaddr must end with /p2p/<peer id>"));
        };
        NodeId::from_peer_id(&peer).map_err(|_| fail("the peer id is not a secp256k1 key"))?;
        Ok(Self { peer, addr })
    }

    /// The multiaddr with its `/p2p/` suffix.
    pub fn full(&self) -> Multiaddr {
        self.addr.clone().with(Protocol::P2p(self.peer))
    }
}

/// `/ip4/<ip>/tcp/<port>` (or `/ip6/…`).
pub fn socket_multiaddr(addr: SocketAddr) -> Multiaddr {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) => Protocol::Ip4(ip),
        std::net::IpAddr::V6(ip) => Protocol::Ip6(ip),
    };
    Multiaddr::empty().with(ip).with(Protocol::Tcp(addr.port()))
}

/// The IP and TCP port of a multiaddr, if it has both.
pub fn multiaddr_socket(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut ip = None;
    let mut port = None;
    for protocol in addr.iter() {
        match protocol {
            Protocol::Ip4(v4) => ip = Some(std::net::IpAddr::V4(v4)),
            Protocol::Ip6(v6) => ip = Some(std::net::IpAddr::V6(v6)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    Some(SocketAddr::new(ip?, port?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_address_and_enode_name_the_same_key() {
        let mut secret = [0u8; 32];
        secret[31] = 1;
        let keypair = keypair_from_secret(&secret).unwrap();
        let peer = keypair.public().to_peer_id();
        let node = NodeId::from_peer_id(&peer).unwrap();
        // Private key 1's well-known address.
        assert_eq!(
            node.address(),
            "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"
                .parse::<Address>()
                .unwrap()
        );
        assert_eq!(node.enode_hex().len(), 128);
        assert_eq!(node.peer_id(), Some(peer));
        let url = node.enode_url("127.0.0.1:30303".parse().unwrap());
        let parsed = PeerAddr::parse(&url).unwrap();
        assert_eq!(parsed.peer, peer);
        assert_eq!(parsed.addr.to_string(), "/ip4/127.0.0.1/tcp/30303");
        let multi = PeerAddr::parse(&parsed.full().to_string()).unwrap();
        assert_eq!(multi, parsed);
        assert_eq!(
            multiaddr_socket(&parsed.addr),
            Some("127.0.0.1:30303".parse().unwrap())
        );
    }

    #[test]
    fn bad_node_urls_are_refused_with_a_reason() {
        for bad in [
            "enode://1234@127.0.0.1:30303",
            &format!("enode://{}@127.0.0.1:30303", "00".repeat(64)),
            "enode://abc",
            &format!("enode://{}@localhost", "11".repeat(64)),
            "/ip4/127.0.0.1/tcp/1",
            "not an address",
        ] {
            assert!(PeerAddr::parse(bad).is_err(), "{bad}");
        }
        assert!(keypair_from_secret(&[0u8; 32]).is_err());
    }
}
