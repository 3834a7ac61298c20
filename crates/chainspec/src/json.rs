//! Tolerant readers for genesis JSON values, each error naming the field it came from.
//!
//! Genesis files in the wild mix hex and decimal numbers, odd-length and upper-case hex,
//! `null` for absent, addresses with or without `0x`, and (Besu) case-insensitive keys.

use alloy_primitives::{Address, B256, Bytes, U256};
use serde_json::{Map, Value};

use crate::GenesisError;

/// A JSON object whose keys are looked up case-insensitively, as Besu does.
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    pub(crate) fn new(value: &'a Value, path: &str) -> Result<Self, GenesisError> {
        match value {
            Value::Object(map) => Ok(Self {
                map,
                path: path.to_string(),
            }),
            _ => Err(GenesisError::invalid(path, "expected a JSON object")),
        }
    }

    pub(crate) fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value under `key` (any case), treating `null` as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.map.iter()
    }

    pub(crate) fn child(&self, key: &str) -> Result<Option<Obj<'a>>, GenesisError> {
        self.get(key)
            .map(|v| Obj::new(v, &self.path(key)))
            .transpose()
    }

    pub(crate) fn u256(&self, key: &str) -> Result<Option<U256>, GenesisError> {
        self.get(key)
            .map(|v| parse_u256(v, &self.path(key)))
            .transpose()
    }

    pub(crate) fn u64(&self, key: &str) -> Result<Option<u64>, GenesisError> {
        self.u256(key)?
            .map(|v| {
                u64::try_from(v)
                    .map_err(|_| GenesisError::invalid(&self.path(key), "exceeds 64 bits"))
            })
            .transpose()
    }

    pub(crate) fn bytes(&self, key: &str) -> Result<Option<Bytes>, GenesisError> {
        self.get(key)
            .map(|v| parse_bytes(v, &self.path(key)))
            .transpose()
    }

    pub(crate) fn b256(&self, key: &str) -> Result<Option<B256>, GenesisError> {
        self.get(key)
            .map(|v| parse_b256(v, &self.path(key)))
            .transpose()
    }

    pub(crate) fn address(&self, key: &str) -> Result<Option<Address>, GenesisError> {
        self.get(key)
            .map(|v| parse_address(v, &self.path(key)))
            .transpose()
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, GenesisError> {
        self.get(key)
            .map(|v| match v {
                Value::Bool(b) => Ok(*b),
                Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
                _ => Err(GenesisError::invalid(&self.path(key), "expected a boolean")),
            })
            .transpose()
    }
}

/// Hex digits of `s` (without `0x`), padded to even length.
fn hex_digits(s: &str, path: &str) -> Result<Vec<u8>, GenesisError> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let padded;
    let digits = if digits.len() % 2 == 1 {
        padded = format!("0{digits}");
        padded.as_str()
    } else {
        digits
    };
    alloy_primitives::hex::decode(digits)
        .map_err(|e| GenesisError::invalid(path, format!("invalid hex: {e}")))
}

pub(crate) fn parse_u256(value: &Value, path: &str) -> Result<U256, GenesisError> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .map(U256::from)
            .ok_or_else(|| GenesisError::invalid(path, "expected a non-negative integer")),
        Value::String(s) => {
            let s = s.trim();
            if s.starts_with("0x") || s.starts_with("0X") {
                let bytes = hex_digits(s, path)?;
                // Leading zero bytes are allowed ("0x0000001"); the value must fit 256 bits.
                let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
                let significant = &bytes[first..];
                if significant.len() > 32 {
                    return Err(GenesisError::invalid(path, "exceeds 256 bits"));
                }
                Ok(U256::from_be_slice(significant))
            } else if s.is_empty() {
                Ok(U256::ZERO)
            } else {
                s.parse::<U256>()
                    .map_err(|e| GenesisError::invalid(path, format!("invalid number {s:?}: {e}")))
            }
        }
        _ => Err(GenesisError::invalid(
            path,
            "expected a number or a numeric string",
        )),
    }
}

pub(crate) fn parse_bytes(value: &Value, path: &str) -> Result<Bytes, GenesisError> {
    match value {
        Value::String(s) => Ok(hex_digits(s.trim(), path)?.into()),
        _ => Err(GenesisError::invalid(path, "expected a hex string")),
    }
}

/// A 32-byte word; shorter hex is left-padded with zeros (storage keys and values).
pub(crate) fn parse_b256(value: &Value, path: &str) -> Result<B256, GenesisError> {
    let bytes = parse_bytes(value, path)?;
    if bytes.len() > 32 {
        return Err(GenesisError::invalid(path, "longer than 32 bytes"));
    }
    let mut out = B256::ZERO;
    out[32 - bytes.len()..].copy_from_slice(&bytes);
    Ok(out)
}

pub(crate) fn parse_address(value: &Value, path: &str) -> Result<Address, GenesisError> {
    match value {
        Value::String(s) => parse_address_str(s, path),
        _ => Err(GenesisError::invalid(path, "expected an address string")),
    }
}

pub(crate) fn parse_address_str(s: &str, path: &str) -> Result<Address, GenesisError> {
    let bytes = hex_digits(s.trim(), path)?;
    if bytes.len() != 20 {
        return Err(GenesisError::invalid(
            path,
            format!("address has {} bytes, expected 20", bytes.len()),
        ));
    }
    Ok(Address::from_slice(&bytes))
}
