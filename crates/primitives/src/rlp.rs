//! A schema-free RLP value: bytes or a list of values, decoded strictly.
//!
//! Strict means canonical: single bytes below `0x80` must not be wrapped, lengths use the
//! shortest form without leading zeros, and every byte of the input is consumed.

use alloy_primitives::Bytes;
use alloy_rlp::{Decodable, Encodable, Header};

/// One RLP item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RlpItem {
    /// A byte string.
    Bytes(Bytes),
    /// A list of items.
    List(Vec<RlpItem>),
}

impl RlpItem {
    /// Decodes exactly one item spanning all of `input`.
    pub fn decode_exact(input: &[u8]) -> alloy_rlp::Result<Self> {
        let mut buf = input;
        let item = Self::decode(&mut buf)?;
        if !buf.is_empty() {
            return Err(alloy_rlp::Error::UnexpectedLength);
        }
        Ok(item)
    }
}

impl Decodable for RlpItem {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        // alloy-rlp's header decoding rejects non-canonical lengths and wrapped single bytes.
        let header = Header::decode(buf)?;
        if header.payload_length > buf.len() {
            return Err(alloy_rlp::Error::InputTooShort);
        }
        let (payload, rest) = buf.split_at(header.payload_length);
        *buf = rest;
        if !header.list {
            return Ok(Self::Bytes(Bytes::copy_from_slice(payload)));
        }
        let mut items = Vec::new();
        let mut inner = payload;
        while !inner.is_empty() {
            items.push(Self::decode(&mut inner)?);
        }
        Ok(Self::List(items))
    }
}

impl Encodable for RlpItem {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        match self {
            Self::Bytes(bytes) => bytes.as_ref().encode(out),
            Self::List(items) => {
                let payload_length = items.iter().map(Encodable::length).sum();
                Header {
                    list: true,
                    payload_length,
                }
                .encode(out);
                for item in items {
                    item.encode(out);
                }
            }
        }
    }

    fn length(&self) -> usize {
        match self {
            Self::Bytes(bytes) => bytes.as_ref().length(),
            Self::List(items) => {
                let payload_length: usize = items.iter().map(Encodable::length).sum();
                alloy_rlp::length_of_length(payload_length) + payload_length
            }
        }
    }
}
