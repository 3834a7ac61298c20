//! What a validator persists before it sends a message: the message itself and, with a
//! Commit, the prepared certificate it is locked on. Restoring these after a crash is what
//! keeps a restarted validator from signing anything that conflicts with what it sent.

use alloy_rlp::{Decodable, Encodable};
use healthchain_primitives::{
    Block,
    ibft::{decode_list, wrap_list},
};

use crate::messages::{Message, MessageError, PreparedCertificate, WireLayout};

/// A prepared round: the certificate and the block it names (`PreparedRoundArtifacts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedArtifacts {
    /// The proposal and its prepares.
    pub certificate: PreparedCertificate,
    /// The prepared block.
    pub block: Block,
}

/// One message this validator signed, as it must be persisted before it is broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteRecord {
    /// The signed message.
    pub message: Message,
    /// For a Commit: the prepared round it commits to (the lock a RoundChange must carry).
    pub prepared: Option<PreparedArtifacts>,
}

impl VoteRecord {
    /// The height the record belongs to.
    pub fn height(&self) -> u64 {
        self.message.id().height.0
    }

    /// `RLP([code, data, prepared | 0x80])` with `prepared` = `[RoundChange-style
    /// certificate payload, block]`.
    pub fn encode(&self) -> Vec<u8> {
        let mut items = Vec::new();
        self.message.code().encode(&mut items);
        self.message
            .encode(WireLayout::Besu25)
            .as_ref()
            .encode(&mut items);
        match &self.prepared {
            None => items.push(alloy_rlp::EMPTY_STRING_CODE),
            Some(artifacts) => {
                let mut inner = Vec::new();
                // The certificate travels as a RoundChange would carry it; reuse that codec
                // through a RoundChange payload holding only the certificate.
                artifacts.certificate.proposal.encode(&mut inner);
                let mut prepares = Vec::new();
                for prepare in &artifacts.certificate.prepares {
                    prepare.encode(&mut prepares);
                }
                wrap_list(&prepares, &mut inner);
                artifacts.block.encode(&mut inner);
                wrap_list(&inner, &mut items);
            }
        }
        let mut out = Vec::new();
        wrap_list(&items, &mut out);
        out
    }

    /// Reads what [`Self::encode`] wrote; signatures are checked again.
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        let mut buf = bytes;
        let mut items = list(&mut buf)?;
        let code = u8::decode(&mut items)?;
        let data = alloy_primitives::Bytes::decode(&mut items)?;
        let message = Message::decode(code, &data)?;
        let prepared = if items.first() == Some(&alloy_rlp::EMPTY_STRING_CODE) {
            items = &items[1..];
            None
        } else {
            let mut inner = list(&mut items)?;
            let budget = &mut crate::messages::SignatureBudget::new();
            let proposal = crate::messages::Signed::decode_within(&mut inner, budget)?;
            let mut prepares_rlp = list(&mut inner)?;
            let mut prepares = Vec::new();
            while !prepares_rlp.is_empty() {
                prepares.push(crate::messages::Signed::decode_within(
                    &mut prepares_rlp,
                    budget,
                )?);
            }
            let block = Block::decode(&mut inner).map_err(MessageError::Block)?;
            if !inner.is_empty() {
                return Err(MessageError::Structure("trailing items in a vote record"));
            }
            Some(PreparedArtifacts {
                certificate: PreparedCertificate { proposal, prepares },
                block,
            })
        };
        if !items.is_empty() || !buf.is_empty() {
            return Err(MessageError::Structure("trailing items in a vote record"));
        }
        Ok(Self { message, prepared })
    }
}

fn list<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], MessageError> {
    Ok(decode_list(buf)?)
}
