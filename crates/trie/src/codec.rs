//! Ethereum's node encoding as a trie-db [`NodeCodec`]: RLP lists with hex-prefix paths.
//!
//! Yellow Paper appendix D: a leaf is `[HP(path, true), value]`, an extension is
//! `[HP(path, false), child]`, a branch is 16 children plus a value slot. A child whose
//! encoding is shorter than 32 bytes is embedded as raw RLP; longer ones are referenced by
//! keccak hash. The empty node is the RLP empty string `0x80`.

use alloy_primitives::{B256, keccak256};
use alloy_rlp::Header;
use core::borrow::Borrow;
use trie_db::{
    ChildReference, NodeCodec, TrieLayout,
    node::{NibbleSlicePlan, NodeHandlePlan, NodePlan, Value, ValuePlan},
};

use crate::TrieError;

/// The RLP encoding of the empty node.
const EMPTY_NODE: [u8; 1] = [alloy_rlp::EMPTY_STRING_CODE];

/// Keccak-256 as a `hash-db` hasher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeccakHasher;

impl hash_db::Hasher for KeccakHasher {
    type Out = B256;
    type StdHasher = B256StdHasher;
    const LENGTH: usize = 32;

    fn hash(x: &[u8]) -> B256 {
        keccak256(x)
    }
}

/// A `std::hash::Hasher` for maps keyed by keccak outputs: the key is already uniformly
/// distributed, so its first eight bytes are the hash.
#[derive(Debug, Default, Clone, Copy)]
pub struct B256StdHasher(u64);

impl core::hash::Hasher for B256StdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Keys hashed here are keccak outputs; fold in whatever arrives so short
        // inputs (length prefixes) still change the state.
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(buf);
        }
    }
}

/// The Ethereum trie layout: extension nodes, no empty values, values always inline.
#[derive(Debug, Clone, Copy, Default)]
pub struct EthLayout;

impl TrieLayout for EthLayout {
    const USE_EXTENSION: bool = true;
    // An empty value deletes the key, as Ethereum requires.
    const ALLOW_EMPTY: bool = false;
    // Ethereum has no separate value nodes.
    const MAX_INLINE_VALUE: Option<u32> = None;
    type Hash = KeccakHasher;
    type Codec = RlpNodeCodec;
}

impl trie_db::TrieConfiguration for EthLayout {}

/// RLP node codec (Yellow Paper appendix D).
#[derive(Debug, Clone, Copy, Default)]
pub struct RlpNodeCodec;

/// Hex-prefix flag for a leaf (`0x20`) or an extension (`0x00`).
fn hex_prefix(partial: impl Iterator<Item = u8>, nibbles: usize, leaf: bool) -> Vec<u8> {
    let flag = if leaf { 0x20 } else { 0x00 };
    let mut out = Vec::with_capacity(nibbles / 2 + 1);
    // trie-db hands partial paths right-aligned: with an odd count the first byte holds a
    // single nibble in its low half, so the odd flag is OR-ed into that byte.
    if nibbles % 2 == 1 {
        let mut iter = partial;
        let first = iter.next().unwrap_or(0);
        out.push(flag | 0x10 | (first & 0x0f));
        out.extend(iter);
    } else {
        out.push(flag);
        out.extend(partial);
    }
    out
}

fn push_string(out: &mut Vec<u8>, bytes: &[u8]) {
    alloy_rlp::Encodable::encode(&bytes, out);
}

fn push_child(out: &mut Vec<u8>, child: &ChildReference<B256>) {
    match child {
        ChildReference::Hash(hash) => push_string(out, hash.as_slice()),
        // An inline child is already an RLP item: embed it raw.
        ChildReference::Inline(data, len) => out.extend_from_slice(&data[..*len]),
    }
}

fn push_value(out: &mut Vec<u8>, value: Option<Value<'_>>) {
    match value {
        Some(Value::Inline(bytes)) => push_string(out, bytes),
        // Values are never hashed out (MAX_INLINE_VALUE = None); treat as absent.
        Some(Value::Node(_)) | None => out.push(alloy_rlp::EMPTY_STRING_CODE),
    }
}

fn wrap_list(payload: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 9);
    Header {
        list: true,
        payload_length: payload.len(),
    }
    .encode(&mut out);
    out.extend_from_slice(&payload);
    out
}

/// One RLP item inside `data`: `start..end` is the whole item, `payload` its contents.
struct Item {
    start: usize,
    payload: core::ops::Range<usize>,
    list: bool,
}

impl Item {
    fn end(&self) -> usize {
        self.payload.end
    }
}

fn read_item(data: &[u8], start: usize) -> Result<Item, TrieError> {
    let mut buf = data
        .get(start..)
        .ok_or(TrieError::MalformedNode("item out of range"))?;
    let before = buf.len();
    let header = Header::decode(&mut buf).map_err(TrieError::Rlp)?;
    let header_len = before - buf.len();
    let payload_start = start + header_len;
    let payload_end = payload_start
        .checked_add(header.payload_length)
        .filter(|end| *end <= data.len())
        .ok_or(TrieError::MalformedNode("item longer than node"))?;
    Ok(Item {
        start,
        payload: payload_start..payload_end,
        list: header.list,
    })
}

/// Reads the items of the list that spans all of `data`.
fn list_items(data: &[u8]) -> Result<Vec<Item>, TrieError> {
    let outer = read_item(data, 0)?;
    if !outer.list {
        return Err(TrieError::MalformedNode("node is not a list"));
    }
    if outer.end() != data.len() {
        return Err(TrieError::MalformedNode("trailing bytes after node"));
    }
    let mut items = Vec::with_capacity(17);
    let mut pos = outer.payload.start;
    while pos < outer.payload.end {
        let item = read_item(data, pos)?;
        pos = item.end();
        items.push(item);
    }
    if pos != outer.payload.end {
        return Err(TrieError::MalformedNode("item crosses list end"));
    }
    Ok(items)
}

fn child_plan(item: &Item) -> Result<Option<NodeHandlePlan>, TrieError> {
    if item.list {
        let range = item.start..item.end();
        if range.len() >= 32 {
            return Err(TrieError::MalformedNode("inline child of 32 bytes or more"));
        }
        return Ok(Some(NodeHandlePlan::Inline(range)));
    }
    match item.payload.len() {
        0 => Ok(None),
        32 => Ok(Some(NodeHandlePlan::Hash(item.payload.clone()))),
        _ => Err(TrieError::MalformedNode(
            "child reference is neither hash nor list",
        )),
    }
}

fn path_plan(data: &[u8], item: &Item) -> Result<(NibbleSlicePlan, bool), TrieError> {
    if item.list || item.payload.is_empty() {
        return Err(TrieError::MalformedNode("missing hex-prefix path"));
    }
    let first = data[item.payload.start];
    let leaf = match first >> 4 {
        0 | 1 => false,
        2 | 3 => true,
        _ => return Err(TrieError::MalformedNode("bad hex-prefix flag")),
    };
    let odd = first & 0x10 != 0;
    if !odd && first & 0x0f != 0 {
        return Err(TrieError::MalformedNode("non-zero padding nibble"));
    }
    let plan = if odd {
        NibbleSlicePlan::new(item.payload.clone(), 1)
    } else {
        NibbleSlicePlan::new(item.payload.start + 1..item.payload.end, 0)
    };
    Ok((plan, leaf))
}

impl NodeCodec for RlpNodeCodec {
    type Error = TrieError;
    type HashOut = B256;

    fn hashed_null_node() -> B256 {
        crate::EMPTY_ROOT
    }

    fn decode_plan(data: &[u8]) -> Result<NodePlan, TrieError> {
        if Self::is_empty_node(data) {
            return Ok(NodePlan::Empty);
        }
        let items = list_items(data)?;
        match items.len() {
            2 => {
                let (partial, leaf) = path_plan(data, &items[0])?;
                if leaf {
                    if items[1].list {
                        return Err(TrieError::MalformedNode("leaf value is a list"));
                    }
                    Ok(NodePlan::Leaf {
                        partial,
                        value: ValuePlan::Inline(items[1].payload.clone()),
                    })
                } else {
                    let child = child_plan(&items[1])?
                        .ok_or(TrieError::MalformedNode("extension without child"))?;
                    Ok(NodePlan::Extension { partial, child })
                }
            }
            17 => {
                let mut children: [Option<NodeHandlePlan>; 16] = Default::default();
                for (slot, item) in children.iter_mut().zip(&items[..16]) {
                    *slot = child_plan(item)?;
                }
                let value_item = &items[16];
                if value_item.list {
                    return Err(TrieError::MalformedNode("branch value is a list"));
                }
                let value = (!value_item.payload.is_empty())
                    .then(|| ValuePlan::Inline(value_item.payload.clone()));
                Ok(NodePlan::Branch { value, children })
            }
            _ => Err(TrieError::MalformedNode(
                "node list has neither 2 nor 17 items",
            )),
        }
    }

    fn is_empty_node(data: &[u8]) -> bool {
        data == EMPTY_NODE
    }

    fn empty_node() -> &'static [u8] {
        &EMPTY_NODE
    }

    fn leaf_node(
        partial: impl Iterator<Item = u8>,
        number_nibble: usize,
        value: Value<'_>,
    ) -> Vec<u8> {
        let mut payload = Vec::new();
        push_string(&mut payload, &hex_prefix(partial, number_nibble, true));
        push_value(&mut payload, Some(value));
        wrap_list(payload)
    }

    fn extension_node(
        partial: impl Iterator<Item = u8>,
        number_nibble: usize,
        child_ref: ChildReference<B256>,
    ) -> Vec<u8> {
        let mut payload = Vec::new();
        push_string(&mut payload, &hex_prefix(partial, number_nibble, false));
        push_child(&mut payload, &child_ref);
        wrap_list(payload)
    }

    fn branch_node(
        children: impl Iterator<Item = impl Borrow<Option<ChildReference<B256>>>>,
        value: Option<Value<'_>>,
    ) -> Vec<u8> {
        let mut payload = Vec::with_capacity(16 * 33 + 1);
        for child in children {
            match child.borrow() {
                Some(child) => push_child(&mut payload, child),
                None => payload.push(alloy_rlp::EMPTY_STRING_CODE),
            }
        }
        push_value(&mut payload, value);
        wrap_list(payload)
    }

    fn branch_node_nibbled(
        _partial: impl Iterator<Item = u8>,
        _number_nibble: usize,
        _children: impl Iterator<Item = impl Borrow<Option<ChildReference<B256>>>>,
        _value: Option<Value<'_>>,
    ) -> Vec<u8> {
        // With USE_EXTENSION = true trie-db never asks for a nibbled branch; Ethereum has
        // no such node. Returning the empty node keeps this total without panicking.
        EMPTY_NODE.to_vec()
    }
}
