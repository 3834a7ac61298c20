//! IBFT 2.0 header conventions as Besu implements them: the extraData codec, the three
//! header hashes (on-chain block hash, commit-seal digest, raw genesis hash) and the
//! 65-byte signature form used for seals and consensus messages.
//!
//! Reference: `shared/docs/reference/ibft2.md` §1.1, §2.2 and §3. Decoding is strict: a
//! non-canonical length, a wrong-width field, an unknown vote byte or a trailing item is an
//! error, never a panic.

use alloy_primitives::{Address, B256, Bytes, Signature, U256, b256, keccak256};
use alloy_rlp::{Decodable, Encodable, Header as RlpHeader};

use crate::Header;

/// The `mixHash` every IBFT 2.0 header carries: ASCII "ctical byzantine fault tolerance"
/// (`BftHelpers.EXPECTED_MIX_HASH`).
pub const IBFT_MIX_HASH: B256 =
    b256!("0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365");

/// Length Besu pads the vanity to (`BftExtraDataCodec.EXTRA_VANITY_LENGTH`).
pub const VANITY_LENGTH: usize = 32;

/// The curve order n of secp256k1.
const SECP256K1_N: U256 = U256::from_limbs([
    0xbfd2_5e8c_d036_4141,
    0xbaae_dce6_af48_a03b,
    0xffff_ffff_ffff_fffe,
    0xffff_ffff_ffff_ffff,
]);

/// n / 2: message signatures must have `s` at most this (low S).
const SECP256K1_HALF_N: U256 = U256::from_limbs([
    0xdfe9_2f46_681b_20a0,
    0x5d57_6e73_57a4_501d,
    0xffff_ffff_ffff_ffff,
    0x7fff_ffff_ffff_ffff,
]);

/// Why an extraData or signature could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IbftCodecError {
    /// extraData was empty (Besu: "Bft Extra Data required").
    #[error("empty extraData: IBFT 2.0 extraData is required")]
    Empty,
    /// Malformed RLP.
    #[error("invalid RLP: {0}")]
    Rlp(alloy_rlp::Error),
    /// The structure is not the 5-item list.
    #[error("extraData must be a list of exactly 5 items [vanity, validators, vote, round, seals]")]
    Structure,
    /// The vote is neither RLP null nor `[address, 0xff | 0x00]`.
    #[error("invalid vote: expected 0x80 (none) or [address, 0xff (add) | 0x00 (drop)]")]
    Vote,
    /// The round is not a 4-byte fixed-width integer.
    #[error("round must be a 4-byte big-endian integer")]
    Round,
    /// A signature is not 65 bytes with r, s in [1, n) and a recovery id of 0 or 1.
    #[error("invalid signature: {0}")]
    Signature(&'static str),
}

impl From<alloy_rlp::Error> for IbftCodecError {
    fn from(err: alloy_rlp::Error) -> Self {
        Self::Rlp(err)
    }
}

/// A validator vote carried in a header: add or drop `recipient`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vote {
    /// Who the vote is about.
    pub recipient: Address,
    /// Add or drop.
    pub kind: VoteKind,
}

/// The direction of a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VoteKind {
    /// Byte `0xff` (`Vote.ADD_BYTE_VALUE`).
    Add,
    /// Byte `0x00` (`Vote.DROP_BYTE_VALUE`).
    Drop,
}

/// A secp256k1 signature in Besu's 65-byte wire form `r ‖ s ‖ recId` (recId 0 or 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature65(Signature);

impl Signature65 {
    /// Wraps a signature.
    pub const fn new(signature: Signature) -> Self {
        Self(signature)
    }

    /// The signature.
    pub const fn inner(&self) -> &Signature {
        &self.0
    }

    /// Decodes the 65-byte form, rejecting r or s outside `[1, n)` and a recovery id other
    /// than 0 or 1 (`SECPSignature.decode`). High S is accepted here; see [`Self::is_low_s`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IbftCodecError> {
        let bytes: &[u8; 65] = bytes
            .try_into()
            .map_err(|_| IbftCodecError::Signature("length is not 65 bytes"))?;
        let r = U256::from_be_slice(&bytes[..32]);
        let s = U256::from_be_slice(&bytes[32..64]);
        if r.is_zero() || r >= SECP256K1_N {
            return Err(IbftCodecError::Signature("r is outside [1, n)"));
        }
        if s.is_zero() || s >= SECP256K1_N {
            return Err(IbftCodecError::Signature("s is outside [1, n)"));
        }
        let parity = match bytes[64] {
            0 => false,
            1 => true,
            _ => return Err(IbftCodecError::Signature("recovery id is not 0 or 1")),
        };
        Ok(Self(Signature::new(r, s, parity)))
    }

    /// The 65-byte form.
    pub fn to_bytes(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out[..32].copy_from_slice(&self.0.r().to_be_bytes::<32>());
        out[32..64].copy_from_slice(&self.0.s().to_be_bytes::<32>());
        out[64] = u8::from(self.0.v());
        out
    }

    /// Whether `s ≤ n/2`, required of consensus-message signatures (`SignedData`) but not of
    /// commit seals.
    pub fn is_low_s(&self) -> bool {
        self.0.s() <= SECP256K1_HALF_N
    }

    /// Decodes one RLP byte string holding the 65-byte form.
    pub fn decode_rlp(buf: &mut &[u8]) -> Result<Self, IbftCodecError> {
        let bytes = decode_string(buf)?;
        Self::from_bytes(bytes)
    }
}

impl Encodable for Signature65 {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        self.to_bytes().encode(out);
    }

    fn length(&self) -> usize {
        // 65 bytes: a two-byte string header (0xb8 0x41) and the payload.
        67
    }
}

/// Which fields of the extraData an encoding keeps (`BftExtraDataCodec.EncodingType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraDataEncoding {
    /// `[vanity, validators, vote, round, seals]`: the header as stored and sent.
    All,
    /// `[vanity, validators, vote, round]`: hashed for commit seals and proposal digests.
    ExcludeCommitSeals,
    /// `[vanity, validators, vote]`: hashed for the on-chain block hash.
    ExcludeCommitSealsAndRound,
}

/// The IBFT 2.0 extraData of a header (`IbftExtraDataCodec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IbftExtraData {
    /// Free bytes; Besu writes 32 (the node's `--miner-extra-data`, zero-padded). The length
    /// is not validated on decode, as in Besu.
    pub vanity: Bytes,
    /// The validators for this block's height, ascending by address in valid headers.
    pub validators: Vec<Address>,
    /// The proposer's vote, if any.
    pub vote: Option<Vote>,
    /// The round the block was proposed in.
    pub round: u32,
    /// Commit seals: signatures over the commit-seal digest; empty until committed.
    pub seals: Vec<Signature65>,
}

impl IbftExtraData {
    /// Genesis extraData for `validators` in the given order (`encodeFromAddresses`; the
    /// order is kept, as `besu rlp encode` keeps it).
    pub fn genesis(validators: Vec<Address>) -> Self {
        Self {
            vanity: Bytes::from(vec![0u8; VANITY_LENGTH]),
            validators,
            vote: None,
            round: 0,
            seals: Vec::new(),
        }
    }

    /// Encodes with the given fields.
    pub fn encode_as(&self, encoding: ExtraDataEncoding) -> Bytes {
        let mut payload = Vec::new();
        self.vanity.as_ref().encode(&mut payload);
        encode_list(&self.validators, &mut payload);
        match &self.vote {
            None => payload.push(alloy_rlp::EMPTY_STRING_CODE),
            Some(vote) => {
                let mut inner = Vec::new();
                vote.recipient.encode(&mut inner);
                match vote.kind {
                    // writeByte(0xff): a one-byte string above 0x7f gets a header.
                    VoteKind::Add => inner.extend_from_slice(&[0x81, 0xff]),
                    // writeByte(0x00): a single byte below 0x80 is its own encoding.
                    VoteKind::Drop => inner.push(0x00),
                }
                wrap_list(&inner, &mut payload);
            }
        }
        if encoding != ExtraDataEncoding::ExcludeCommitSealsAndRound {
            self.round.to_be_bytes().encode(&mut payload);
        }
        if encoding == ExtraDataEncoding::All {
            encode_list(&self.seals, &mut payload);
        }
        let mut out = Vec::with_capacity(payload.len() + 4);
        wrap_list(&payload, &mut out);
        Bytes::from(out)
    }

    /// Encodes all five fields.
    pub fn encode(&self) -> Bytes {
        self.encode_as(ExtraDataEncoding::All)
    }

    /// Decodes the full five-item form, strictly.
    pub fn decode(input: &[u8]) -> Result<Self, IbftCodecError> {
        if input.is_empty() {
            return Err(IbftCodecError::Empty);
        }
        let mut buf = input;
        let mut payload = decode_list(&mut buf)?;
        if !buf.is_empty() {
            return Err(IbftCodecError::Structure);
        }
        let vanity = Bytes::copy_from_slice(decode_string(&mut payload)?);
        let mut validators_rlp = decode_list(&mut payload)?;
        let mut validators = Vec::new();
        while !validators_rlp.is_empty() {
            validators.push(Address::decode(&mut validators_rlp)?);
        }
        let vote = decode_vote(&mut payload)?;
        let round = <[u8; 4]>::decode(&mut payload).map_err(|_| IbftCodecError::Round)?;
        let mut seals_rlp = decode_list(&mut payload)?;
        let mut seals = Vec::new();
        while !seals_rlp.is_empty() {
            seals.push(Signature65::decode_rlp(&mut seals_rlp)?);
        }
        if !payload.is_empty() {
            return Err(IbftCodecError::Structure);
        }
        Ok(Self {
            vanity,
            validators,
            vote,
            round: u32::from_be_bytes(round),
            seals,
        })
    }

    /// Decodes the extraData of `header`.
    pub fn of(header: &Header) -> Result<Self, IbftCodecError> {
        Self::decode(&header.extra_data)
    }
}

/// Genesis extraData in QBFT's form, `[vanity, validators, [], 0x80, []]` (empty-list vote,
/// minimal round), as `besu rlp encode --type QBFT_EXTRA_DATA` writes it. HealthChain runs
/// IBFT 2.0; this exists so the CLI matches Besu's.
pub fn qbft_genesis_extra_data(validators: &[Address]) -> Bytes {
    let mut payload = Vec::new();
    [0u8; VANITY_LENGTH].as_slice().encode(&mut payload);
    encode_list(validators, &mut payload);
    payload.push(alloy_rlp::EMPTY_LIST_CODE);
    payload.push(alloy_rlp::EMPTY_STRING_CODE);
    payload.push(alloy_rlp::EMPTY_LIST_CODE);
    let mut out = Vec::new();
    wrap_list(&payload, &mut out);
    Bytes::from(out)
}

fn decode_vote(buf: &mut &[u8]) -> Result<Option<Vote>, IbftCodecError> {
    // Only RLP null (0x80) means "no vote"; an empty list does not (ibft2.md §2.2).
    if buf.first() == Some(&alloy_rlp::EMPTY_STRING_CODE) {
        *buf = &buf[1..];
        return Ok(None);
    }
    let mut inner = decode_list(buf).map_err(|_| IbftCodecError::Vote)?;
    let recipient = Address::decode(&mut inner).map_err(|_| IbftCodecError::Vote)?;
    let kind = match inner {
        [0x81, 0xff] => VoteKind::Add,
        [0x00] => VoteKind::Drop,
        _ => return Err(IbftCodecError::Vote),
    };
    Ok(Some(Vote { recipient, kind }))
}

/// The payload of the next item if it is a list, advancing `buf` past it.
pub fn decode_list<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], IbftCodecError> {
    let header = RlpHeader::decode(buf)?;
    if !header.list {
        return Err(IbftCodecError::Rlp(alloy_rlp::Error::UnexpectedString));
    }
    take(buf, header.payload_length)
}

/// The payload of the next item if it is a byte string, advancing `buf` past it.
pub fn decode_string<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], IbftCodecError> {
    // A single byte below 0x80 is its own encoding.
    if let Some(&byte) = buf.first()
        && byte < alloy_rlp::EMPTY_STRING_CODE
    {
        let (item, rest) = buf.split_at(1);
        *buf = rest;
        return Ok(item);
    }
    let header = RlpHeader::decode(buf)?;
    if header.list {
        return Err(IbftCodecError::Rlp(alloy_rlp::Error::UnexpectedList));
    }
    take(buf, header.payload_length)
}

fn take<'a>(buf: &mut &'a [u8], len: usize) -> Result<&'a [u8], IbftCodecError> {
    if buf.len() < len {
        return Err(IbftCodecError::Rlp(alloy_rlp::Error::InputTooShort));
    }
    let (item, rest) = buf.split_at(len);
    *buf = rest;
    Ok(item)
}

/// Writes `items` as an RLP list.
pub fn encode_list<T: Encodable>(items: &[T], out: &mut Vec<u8>) {
    let mut payload = Vec::new();
    for item in items {
        item.encode(&mut payload);
    }
    wrap_list(&payload, out);
}

/// Writes a list header for `payload`, then `payload`.
pub fn wrap_list(payload: &[u8], out: &mut Vec<u8>) {
    RlpHeader {
        list: true,
        payload_length: payload.len(),
    }
    .encode(out);
    out.extend_from_slice(payload);
}

/// `header` with its extraData re-encoded as `encoding` (Besu hashes a copy of the header
/// with only extraData replaced). Block 0's extraData is always used as stored.
fn hashed_form(header: &Header, encoding: ExtraDataEncoding) -> Result<B256, IbftCodecError> {
    if header.number == 0 {
        return Ok(header.hash_slow());
    }
    let extra = IbftExtraData::of(header)?;
    let mut copy = header.clone();
    copy.extra_data = extra.encode_as(encoding);
    Ok(copy.hash_slow())
}

/// The on-chain block hash (`calculateHashOfBftBlockOnchain`): keccak of the header with
/// extraData `[vanity, validators, vote]`; for genesis, of the header as stored. It does not
/// depend on the round or the seals.
pub fn block_hash(header: &Header) -> Result<B256, IbftCodecError> {
    hashed_form(header, ExtraDataEncoding::ExcludeCommitSealsAndRound)
}

/// The commit-seal digest (`calculateDataHashForCommittedSeal`): keccak of the header with
/// extraData `[vanity, validators, vote, round]`. It is also the digest consensus messages
/// name the proposed block by.
pub fn commit_seal_digest(header: &Header) -> Result<B256, IbftCodecError> {
    hashed_form(header, ExtraDataEncoding::ExcludeCommitSeals)
}

/// The signers of `header`'s commit seals, in seal order (`recoverCommitterAddresses`);
/// `None` for a seal that does not recover.
pub fn committers(header: &Header) -> Result<Vec<Option<Address>>, IbftCodecError> {
    let extra = IbftExtraData::of(header)?;
    let digest = commit_seal_digest(header)?;
    Ok(extra
        .seals
        .iter()
        .map(|seal| recover_unchecked(seal, digest))
        .collect())
}

/// The address that signed `hash`, accepting high S (commit seals).
pub fn recover_unchecked(signature: &Signature65, hash: B256) -> Option<Address> {
    alloy_consensus::crypto::secp256k1::recover_signer_unchecked(signature.inner(), hash).ok()
}

/// The address that signed `hash`, requiring low S (consensus messages).
pub fn recover_low_s(signature: &Signature65, hash: B256) -> Option<Address> {
    if !signature.is_low_s() {
        return None;
    }
    recover_unchecked(signature, hash)
}

/// keccak256 of `bytes` (re-exported so consensus code names one hash function).
pub fn keccak(bytes: &[u8]) -> B256 {
    keccak256(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_n_is_n_over_two() {
        assert_eq!(SECP256K1_HALF_N, SECP256K1_N >> 1);
        assert_eq!(
            SECP256K1_N,
            U256::from_str_radix(
                "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
                16
            )
            .unwrap()
        );
    }

    #[test]
    fn signature_bounds_are_checked() {
        let mut bytes = [0u8; 65];
        bytes[31] = 1;
        bytes[63] = 1;
        assert!(Signature65::from_bytes(&bytes).is_ok());
        bytes[64] = 2;
        assert!(Signature65::from_bytes(&bytes).is_err());
        bytes[64] = 27;
        assert!(Signature65::from_bytes(&bytes).is_err());
        bytes[64] = 0;
        bytes[31] = 0;
        assert!(Signature65::from_bytes(&bytes).is_err(), "r = 0");
        assert!(Signature65::from_bytes(&bytes[..64]).is_err(), "64 bytes");
        let n = SECP256K1_N.to_be_bytes::<32>();
        bytes[..32].copy_from_slice(&n);
        assert!(Signature65::from_bytes(&bytes).is_err(), "r = n");
    }

    #[test]
    fn empty_list_is_not_a_null_vote() {
        let mut extra = IbftExtraData::genesis(vec![Address::repeat_byte(1)]);
        let good = extra.encode();
        assert_eq!(IbftExtraData::decode(&good).unwrap(), extra);
        // Replace the vote 0x80 with 0xc0.
        let hex = alloy_primitives::hex::encode(&good);
        let bad = hex.replacen("80840000", "c0840000", 1);
        assert_ne!(bad, hex);
        let bad = alloy_primitives::hex::decode(bad).unwrap();
        assert_eq!(IbftExtraData::decode(&bad), Err(IbftCodecError::Vote));
        extra.vote = Some(Vote {
            recipient: Address::repeat_byte(2),
            kind: VoteKind::Drop,
        });
        assert_eq!(IbftExtraData::decode(&extra.encode()).unwrap(), extra);
    }
}
