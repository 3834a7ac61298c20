//! IBFT 2.0 consensus messages with Besu's payload, signing and wire layout (ibft2.md §4).
//!
//! - A payload is an RLP list starting with the round identifier as two fixed-width inline
//!   items (8-byte height, 4-byte round).
//! - `SignedData<P>` = `RLP([P, sig65])`; the author is *recovered* from the signature over
//!   `keccak256(code ‖ RLP(P))` and never sent. Signatures must be low S.
//! - Proposal = `[SignedData<ProposalPayload>, Block, RoundChangeCertificate | 0x80]`,
//!   RoundChange = `[SignedData<RoundChangePayload>, Block | 0x80]` (Besu ≤ 25.x). Besu 26.1
//!   appends a block-access-list slot; [`WireLayout`] chooses what we write, and the decoder
//!   accepts either (an absent list, `0x80`, only).
//!
//! Decoding a [`Signed`] value recovers and checks its signature, so a [`Message`] in hand
//! always has a known author.

use alloy_primitives::{Address, B256, Bytes};
use alloy_rlp::{Decodable, Encodable, Header as RlpHeader};
use healthchain_primitives::{
    Block,
    ibft::{IbftCodecError, Signature65, decode_list, recover_low_s, wrap_list},
};

use crate::{
    crypto::NodeKey,
    types::{Height, Round, RoundId},
};

/// Message code of a Proposal (`IbftV2.PROPOSAL`).
pub const PROPOSAL: u8 = 0;
/// Message code of a Prepare.
pub const PREPARE: u8 = 1;
/// Message code of a Commit.
pub const COMMIT: u8 = 2;
/// Message code of a RoundChange.
pub const ROUND_CHANGE: u8 = 3;

/// Which of Besu's two incompatible Proposal/RoundChange layouts we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WireLayout {
    /// Besu ≤ 25.x: no block-access-list slot. HealthChain's choice (docs/consensus.md).
    #[default]
    Besu25,
    /// Besu ≥ 26.1: a trailing block-access-list slot, always `0x80` here.
    Besu26,
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Not one of the four message codes.
    #[error("unknown IBFT message code {0}")]
    UnknownCode(u8),
    /// Malformed RLP or a field of the wrong width.
    #[error("malformed message: {0}")]
    Codec(#[from] IbftCodecError),
    /// Items missing or left over.
    #[error("malformed message: {0}")]
    Structure(&'static str),
    /// The embedded block does not decode.
    #[error("malformed block: {0}")]
    Block(alloy_rlp::Error),
    /// The signature has a high S value (Besu's `SignedData` refuses these).
    #[error("signature is not low-S")]
    HighS,
    /// The signature recovers no address.
    #[error("signature does not recover")]
    BadSignature,
}

impl From<alloy_rlp::Error> for MessageError {
    fn from(err: alloy_rlp::Error) -> Self {
        Self::Codec(IbftCodecError::Rlp(err))
    }
}

type Result<T> = std::result::Result<T, MessageError>;

/// Most validators a certificate may list: prepares in a prepared certificate, round
/// changes in a round-change certificate. Longer lists are refused while decoding.
pub const MAX_VALIDATORS: usize = 64;

/// Most signatures one message may make its receiver recover (each costs ~50 µs). An
/// honest round-change certificate of 64 validators needs about 43 × 64.
pub const MAX_SIGNATURES_PER_MESSAGE: usize = 3_000;

/// Signatures a decoder may still recover for the message being decoded, so a single
/// message cannot buy seconds of CPU before anyone looks at its author.
#[derive(Debug)]
pub struct SignatureBudget(usize);

impl SignatureBudget {
    /// A full budget for one message.
    pub fn new() -> Self {
        Self(MAX_SIGNATURES_PER_MESSAGE)
    }

    fn spend(&mut self) -> Result<()> {
        self.0 = self.0.checked_sub(1).ok_or(MessageError::Structure(
            "too many signatures in one message",
        ))?;
        Ok(())
    }
}

impl Default for SignatureBudget {
    fn default() -> Self {
        Self::new()
    }
}

/// A signed payload type.
pub trait Payload: Sized + Clone {
    /// The message code mixed into the signing hash.
    const CODE: u8;
    /// The round the payload names.
    fn id(&self) -> RoundId;
    /// Appends the payload's list items.
    fn encode_items(&self, out: &mut Vec<u8>);
    /// Reads the payload's list items (the whole list payload must be consumed), spending
    /// `budget` on nested signatures.
    fn decode_items(buf: &mut &[u8], budget: &mut SignatureBudget) -> Result<Self>;

    /// `RLP(payload)`.
    fn rlp(&self) -> Vec<u8> {
        let mut items = Vec::new();
        self.encode_items(&mut items);
        let mut out = Vec::with_capacity(items.len() + 3);
        wrap_list(&items, &mut out);
        out
    }
}

/// `keccak256(code ‖ RLP(payload))` (`IbftPayload.hashForSignature`).
pub fn signing_hash(code: u8, payload_rlp: &[u8]) -> B256 {
    let mut data = Vec::with_capacity(payload_rlp.len() + 1);
    data.push(code);
    data.extend_from_slice(payload_rlp);
    alloy_primitives::keccak256(&data)
}

/// `SignedData<P>`: a payload, its signature and the author recovered from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<P> {
    payload: P,
    signature: Signature65,
    author: Address,
}

impl<P: Payload> Signed<P> {
    /// Signs `payload` with `key`.
    pub fn sign(payload: P, key: &NodeKey) -> Option<Self> {
        let signature = key.sign(signing_hash(P::CODE, &payload.rlp()))?;
        Some(Self {
            payload,
            signature,
            author: key.address(),
        })
    }

    /// The payload.
    pub const fn payload(&self) -> &P {
        &self.payload
    }

    /// Who signed it.
    pub const fn author(&self) -> Address {
        self.author
    }

    /// The signature.
    pub const fn signature(&self) -> &Signature65 {
        &self.signature
    }

    /// Writes `RLP([payload, sig65])`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut items = self.payload.rlp();
        self.signature.encode(&mut items);
        wrap_list(&items, out);
    }

    /// Reads `RLP([payload, sig65])` and recovers the author.
    pub fn decode(buf: &mut &[u8]) -> Result<Self> {
        Self::decode_within(buf, &mut SignatureBudget::new())
    }

    /// [`Self::decode`], spending `budget` on this and every nested signature.
    pub fn decode_within(buf: &mut &[u8], budget: &mut SignatureBudget) -> Result<Self> {
        budget.spend()?;
        let mut items = list(buf)?;
        let start = items;
        let mut payload_items = list(&mut items)?;
        let payload_rlp = &start[..start.len() - items.len()];
        let payload = P::decode_items(&mut payload_items, budget)?;
        if !payload_items.is_empty() {
            return Err(MessageError::Structure("trailing items in payload"));
        }
        let signature = Signature65::decode_rlp(&mut items)?;
        if !items.is_empty() {
            return Err(MessageError::Structure("trailing items after signature"));
        }
        if !signature.is_low_s() {
            return Err(MessageError::HighS);
        }
        let author = recover_low_s(&signature, signing_hash(P::CODE, payload_rlp))
            .ok_or(MessageError::BadSignature)?;
        Ok(Self {
            payload,
            signature,
            author,
        })
    }

    /// `RLP([payload, sig65])` as bytes.
    pub fn to_rlp(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn encode_id(id: RoundId, out: &mut Vec<u8>) {
    // writeLong / writeInt: fixed 8 and 4 bytes, not minimal integers.
    id.height.0.to_be_bytes().encode(out);
    id.round.0.to_be_bytes().encode(out);
}

fn decode_id(buf: &mut &[u8]) -> Result<RoundId> {
    let height = <[u8; 8]>::decode(buf)?;
    let round = <[u8; 4]>::decode(buf)?;
    Ok(RoundId {
        height: Height(u64::from_be_bytes(height)),
        round: Round(u32::from_be_bytes(round)),
    })
}

/// A payload `[seq8, round4, digest]` (Proposal and Prepare share this shape).
macro_rules! digest_payload {
    ($(#[$doc:meta])* $name:ident, $code:expr, $digest_doc:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            /// The round.
            pub id: RoundId,
            #[doc = $digest_doc]
            pub digest: B256,
        }

        impl Payload for $name {
            const CODE: u8 = $code;

            fn id(&self) -> RoundId {
                self.id
            }

            fn encode_items(&self, out: &mut Vec<u8>) {
                encode_id(self.id, out);
                self.digest.encode(out);
            }

            fn decode_items(buf: &mut &[u8], _: &mut SignatureBudget) -> Result<Self> {
                Ok(Self {
                    id: decode_id(buf)?,
                    digest: B256::decode(buf)?,
                })
            }
        }
    };
}

digest_payload!(
    /// `ProposalPayload` = `[seq8, round4, digest]`; the digest is the proposed block's
    /// commit-seal hash.
    ProposalPayload,
    PROPOSAL,
    "The block's commit-seal digest."
);

digest_payload!(
    /// `PreparePayload` = `[seq8, round4, digest]`.
    PreparePayload,
    PREPARE,
    "The proposal's digest."
);

/// `CommitPayload` = `[seq8, round4, digest, commitSeal65]`; the seal signs the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPayload {
    /// The round.
    pub id: RoundId,
    /// The proposal's digest.
    pub digest: B256,
    /// The commit seal (not required to be low S, as in Besu).
    pub seal: Signature65,
}

impl Payload for CommitPayload {
    const CODE: u8 = COMMIT;

    fn id(&self) -> RoundId {
        self.id
    }

    fn encode_items(&self, out: &mut Vec<u8>) {
        encode_id(self.id, out);
        self.digest.encode(out);
        self.seal.encode(out);
    }

    fn decode_items(buf: &mut &[u8], _: &mut SignatureBudget) -> Result<Self> {
        Ok(Self {
            id: decode_id(buf)?,
            digest: B256::decode(buf)?,
            seal: Signature65::decode_rlp(buf)?,
        })
    }
}

/// `PreparedCertificate` = `[SignedData<ProposalPayload>, [SignedData<PreparePayload>…]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedCertificate {
    /// The proposal that was prepared.
    pub proposal: Signed<ProposalPayload>,
    /// Its prepares (validation needs quorum − 1 distinct non-proposer authors).
    pub prepares: Vec<Signed<PreparePayload>>,
}

impl PreparedCertificate {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut items = Vec::new();
        self.proposal.encode(&mut items);
        let mut prepares = Vec::new();
        for prepare in &self.prepares {
            prepare.encode(&mut prepares);
        }
        wrap_list(&prepares, &mut items);
        wrap_list(&items, out);
    }

    /// Reads the certificate, spending `budget` on its signatures.
    pub fn decode(buf: &mut &[u8], budget: &mut SignatureBudget) -> Result<Self> {
        let mut items = list(buf)?;
        let proposal = Signed::decode_within(&mut items, budget)?;
        let mut prepares_rlp = list(&mut items)?;
        let mut prepares = Vec::new();
        while !prepares_rlp.is_empty() {
            if prepares.len() == MAX_VALIDATORS {
                return Err(MessageError::Structure("more prepares than validators"));
            }
            prepares.push(Signed::decode_within(&mut prepares_rlp, budget)?);
        }
        if !items.is_empty() {
            return Err(MessageError::Structure(
                "trailing items in prepared certificate",
            ));
        }
        Ok(Self { proposal, prepares })
    }

    /// The round the certificate was prepared in.
    pub fn round(&self) -> Round {
        self.proposal.payload().id.round
    }

    /// The prepared block's digest.
    pub fn digest(&self) -> B256 {
        self.proposal.payload().digest
    }
}

/// `RoundChangePayload` = `[seq8, round4, PreparedCertificate | 0x80]`; the round is the
/// *target* round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundChangePayload {
    /// The round being changed to.
    pub id: RoundId,
    /// The sender's latest prepared certificate at this height, if any.
    pub prepared: Option<PreparedCertificate>,
}

impl Payload for RoundChangePayload {
    const CODE: u8 = ROUND_CHANGE;

    fn id(&self) -> RoundId {
        self.id
    }

    fn encode_items(&self, out: &mut Vec<u8>) {
        encode_id(self.id, out);
        match &self.prepared {
            Some(certificate) => certificate.encode(out),
            None => out.push(alloy_rlp::EMPTY_STRING_CODE),
        }
    }

    fn decode_items(buf: &mut &[u8], budget: &mut SignatureBudget) -> Result<Self> {
        let id = decode_id(buf)?;
        let prepared = if take_null(buf) {
            None
        } else {
            Some(PreparedCertificate::decode(buf, budget)?)
        };
        Ok(Self { id, prepared })
    }
}

/// `RoundChangeCertificate` = `[[SignedData<RoundChangePayload>…]]` (note the double list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundChangeCertificate {
    /// The round changes that justify the new round.
    pub round_changes: Vec<Signed<RoundChangePayload>>,
}

impl RoundChangeCertificate {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut inner = Vec::new();
        for rc in &self.round_changes {
            rc.encode(&mut inner);
        }
        let mut outer = Vec::new();
        wrap_list(&inner, &mut outer);
        wrap_list(&outer, out);
    }

    fn decode(buf: &mut &[u8], budget: &mut SignatureBudget) -> Result<Self> {
        let mut outer = list(buf)?;
        let mut inner = list(&mut outer)?;
        if !outer.is_empty() {
            return Err(MessageError::Structure(
                "trailing items in round-change certificate",
            ));
        }
        let mut round_changes = Vec::new();
        while !inner.is_empty() {
            if round_changes.len() == MAX_VALIDATORS {
                return Err(MessageError::Structure(
                    "more round changes than validators",
                ));
            }
            round_changes.push(Signed::decode_within(&mut inner, budget)?);
        }
        Ok(Self { round_changes })
    }

    /// The certificate's RLP.
    pub fn to_rlp(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// A Proposal: the signed payload, the proposed block, and for rounds above 0 the
/// round-change certificate that justifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The signed `ProposalPayload`.
    pub signed: Signed<ProposalPayload>,
    /// The proposed block (extraData with its round and no seals).
    pub block: Block,
    /// Present exactly when the round is above 0.
    pub round_change_certificate: Option<RoundChangeCertificate>,
}

/// A RoundChange: the signed payload and, when it carries a prepared certificate, the
/// prepared block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundChange {
    /// The signed `RoundChangePayload`.
    pub signed: Signed<RoundChangePayload>,
    /// The block of the prepared certificate, present exactly when there is one.
    pub block: Option<Block>,
}

/// Any IBFT 2.0 message, its author known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Code 0.
    Proposal(Box<Proposal>),
    /// Code 1.
    Prepare(Signed<PreparePayload>),
    /// Code 2.
    Commit(Signed<CommitPayload>),
    /// Code 3.
    RoundChange(Box<RoundChange>),
}

impl Message {
    /// The message code.
    pub const fn code(&self) -> u8 {
        match self {
            Self::Proposal(_) => PROPOSAL,
            Self::Prepare(_) => PREPARE,
            Self::Commit(_) => COMMIT,
            Self::RoundChange(_) => ROUND_CHANGE,
        }
    }

    /// The round the message is for (the target round of a RoundChange).
    pub fn id(&self) -> RoundId {
        match self {
            Self::Proposal(p) => p.signed.payload().id,
            Self::Prepare(p) => p.payload().id,
            Self::Commit(c) => c.payload().id,
            Self::RoundChange(rc) => rc.signed.payload().id,
        }
    }

    /// Who signed it.
    pub fn author(&self) -> Address {
        match self {
            Self::Proposal(p) => p.signed.author(),
            Self::Prepare(p) => p.author(),
            Self::Commit(c) => c.author(),
            Self::RoundChange(rc) => rc.signed.author(),
        }
    }

    /// The message data (without the code) in `layout`.
    pub fn encode(&self, layout: WireLayout) -> Bytes {
        let mut out = Vec::new();
        match self {
            Self::Prepare(p) => p.encode(&mut out),
            Self::Commit(c) => c.encode(&mut out),
            Self::Proposal(p) => {
                let mut items = Vec::new();
                p.signed.encode(&mut items);
                p.block.encode(&mut items);
                match &p.round_change_certificate {
                    Some(rcc) => rcc.encode(&mut items),
                    None => items.push(alloy_rlp::EMPTY_STRING_CODE),
                }
                if layout == WireLayout::Besu26 {
                    items.push(alloy_rlp::EMPTY_STRING_CODE);
                }
                wrap_list(&items, &mut out);
            }
            Self::RoundChange(rc) => {
                let mut items = Vec::new();
                rc.signed.encode(&mut items);
                match &rc.block {
                    Some(block) => block.encode(&mut items),
                    None => items.push(alloy_rlp::EMPTY_STRING_CODE),
                }
                if layout == WireLayout::Besu26 {
                    items.push(alloy_rlp::EMPTY_STRING_CODE);
                }
                wrap_list(&items, &mut out);
            }
        }
        Bytes::from(out)
    }

    /// Decodes message data of `code`, strictly: canonical RLP, fixed-width fields, nothing
    /// left over except an absent (`0x80`) block-access-list slot of Besu 26.1.
    pub fn decode(code: u8, data: &[u8]) -> Result<Self> {
        let mut buf = data;
        let budget = &mut SignatureBudget::new();
        let message = match code {
            PREPARE => Self::Prepare(Signed::decode_within(&mut buf, budget)?),
            COMMIT => Self::Commit(Signed::decode_within(&mut buf, budget)?),
            PROPOSAL => {
                let mut items = list(&mut buf)?;
                let signed = Signed::decode_within(&mut items, budget)?;
                let block = decode_block(&mut items)?;
                let round_change_certificate = if take_null(&mut items) {
                    None
                } else {
                    Some(RoundChangeCertificate::decode(&mut items, budget)?)
                };
                finish_with_optional_bal(items)?;
                Self::Proposal(Box::new(Proposal {
                    signed,
                    block,
                    round_change_certificate,
                }))
            }
            ROUND_CHANGE => {
                let mut items = list(&mut buf)?;
                let signed = Signed::decode_within(&mut items, budget)?;
                let block = if take_null(&mut items) {
                    None
                } else {
                    Some(decode_block(&mut items)?)
                };
                finish_with_optional_bal(items)?;
                Self::RoundChange(Box::new(RoundChange { signed, block }))
            }
            other => return Err(MessageError::UnknownCode(other)),
        };
        if !buf.is_empty() {
            return Err(MessageError::Structure("trailing bytes after the message"));
        }
        Ok(message)
    }
}

fn finish_with_optional_bal(items: &[u8]) -> Result<()> {
    match items {
        [] => Ok(()),
        [alloy_rlp::EMPTY_STRING_CODE] => Ok(()),
        _ => Err(MessageError::Structure(
            "unexpected trailing items (a block access list is not supported)",
        )),
    }
}

fn decode_block(buf: &mut &[u8]) -> Result<Block> {
    let before = *buf;
    let header = RlpHeader::decode(&mut &before[..]).map_err(MessageError::Block)?;
    if !header.list {
        return Err(MessageError::Block(alloy_rlp::Error::UnexpectedString));
    }
    let block = Block::decode(buf).map_err(MessageError::Block)?;
    let used = before.len() - buf.len();
    if used != header.length_with_payload() {
        return Err(MessageError::Block(alloy_rlp::Error::ListLengthMismatch {
            expected: header.length_with_payload(),
            got: used,
        }));
    }
    Ok(block)
}

/// Consumes a `0x80` if it is next.
fn take_null(buf: &mut &[u8]) -> bool {
    if buf.first() == Some(&alloy_rlp::EMPTY_STRING_CODE) {
        *buf = &buf[1..];
        return true;
    }
    false
}

fn list<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8]> {
    Ok(decode_list(buf)?)
}
