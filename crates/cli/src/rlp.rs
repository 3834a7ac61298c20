//! `healthchain rlp encode|decode`: Besu's `besu rlp` subcommands for genesis extraData.
//!
//! `encode` reads a JSON list of validator addresses and writes the genesis extraData hex,
//! keeping the order given (Besu does not sort; list validators ascending yourself, as the
//! Besu docs advise). `decode` reads extraData hex and prints its validators the way Besu
//! does (`[0x…, 0x…]`).

use std::io::{Read, Write};
use std::path::Path;

use alloy_primitives::{Address, hex};
use anyhow::{Context, bail};
use clap::ValueEnum;
use healthchain_primitives::ibft::{IbftExtraData, qbft_genesis_extra_data};

/// `--type`, spelled as Besu spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum RlpType {
    /// IBFT 2.0 extraData `[vanity, validators, 0x80, round4, []]` (the default).
    IbftExtraData,
    /// QBFT extraData `[vanity, validators, [], 0x80, []]`, for comparison with Besu.
    QbftExtraData,
}

fn read_input(from: Option<&Path>) -> anyhow::Result<String> {
    match from {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        }
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            Ok(text)
        }
    }
}

fn write_output(to: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match to {
        Some(path) => std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("writing {}", path.display())),
        None => {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{text}").context("writing standard output")
        }
    }
}

/// Parses a JSON array of addresses (`"0x…"` or bare hex), in order.
fn parse_validators(text: &str) -> anyhow::Result<Vec<Address>> {
    let value: serde_json::Value = serde_json::from_str(text)
        .context("input is not JSON: expected a list of validator addresses")?;
    let Some(items) = value.as_array() else {
        bail!("expected a JSON list of validator addresses");
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let s = item
                .as_str()
                .with_context(|| format!("entry {i} is not a string"))?;
            let bare = s.strip_prefix("0x").unwrap_or(s);
            if bare.len() != 40 {
                bail!("entry {i} ({s:?}) is not a 20-byte address");
            }
            bare.parse::<Address>()
                .with_context(|| format!("entry {i} ({s:?}) is not a hex address"))
        })
        .collect()
}

/// `healthchain rlp encode`.
pub(crate) fn encode(from: Option<&Path>, to: Option<&Path>, kind: RlpType) -> anyhow::Result<()> {
    let validators = parse_validators(&read_input(from)?)?;
    let extra = match kind {
        RlpType::IbftExtraData => IbftExtraData::genesis(validators).encode(),
        RlpType::QbftExtraData => qbft_genesis_extra_data(&validators),
    };
    write_output(to, &format!("0x{}", hex::encode(extra)))
}

/// `healthchain rlp decode`.
pub(crate) fn decode(from: Option<&Path>, to: Option<&Path>, kind: RlpType) -> anyhow::Result<()> {
    let text = read_input(from)?;
    let text = text.trim();
    let bytes = hex::decode(text.strip_prefix("0x").unwrap_or(text)).context("input is not hex")?;
    let validators = match kind {
        RlpType::IbftExtraData => {
            IbftExtraData::decode(&bytes)
                .context("not IBFT 2.0 extraData")?
                .validators
        }
        RlpType::QbftExtraData => {
            // QBFT differs only in the vote and round encodings; its validators sit in the
            // same place.
            let item = healthchain_primitives::RlpItem::decode_exact(&bytes).context("not RLP")?;
            let healthchain_primitives::RlpItem::List(items) = item else {
                bail!("QBFT extraData must be a list");
            };
            let Some(healthchain_primitives::RlpItem::List(list)) = items.get(1) else {
                bail!("QBFT extraData has no validator list");
            };
            list.iter()
                .map(|v| match v {
                    healthchain_primitives::RlpItem::Bytes(b) if b.len() == 20 => {
                        Ok(Address::from_slice(b))
                    }
                    _ => bail!("a validator is not a 20-byte address"),
                })
                .collect::<anyhow::Result<Vec<_>>>()?
        }
    };
    let listed: Vec<String> = validators.iter().map(|v| format!("{v:#x}")).collect();
    write_output(to, &format!("[{}]", listed.join(", ")))
}
