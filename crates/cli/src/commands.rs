//! The commands: init, import, export, db stats.

use alloy_primitives::B256;
use alloy_rlp::{Decodable, Header};
use anyhow::{Context, bail};
use healthchain_evm::{execute_block, genesis_batch};
use healthchain_primitives::Block;
use healthchain_storage_api::{BlockReader, BlockWriter};
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use tracing::info;

use crate::{Chain, DataDir, DbArgs, WorkloadArg, chain};

/// `healthchain init`.
pub(crate) fn init(genesis_path: &Path, args: &DbArgs) -> anyhow::Result<()> {
    let file = healthchain_node::load_genesis(genesis_path)?;
    let dir = DataDir::new(&args.datadir);
    std::fs::create_dir_all(dir.path())
        .with_context(|| format!("creating {}", dir.path().display()))?;
    if dir.genesis().exists() {
        let existing = chain::load_genesis(&dir.genesis())?;
        if existing != file.genesis {
            bail!("{} already holds a different genesis", dir.path().display());
        }
    }
    let store = chain::open_store(args)?;
    let (genesis, hash) = healthchain_node::init_genesis(&dir, &store, Some(file))?;
    let state_root = genesis_batch(&genesis)
        .context("building the genesis state")?
        .header
        .state_root;
    info!(%hash, "genesis in place");
    println!("genesis hash: {hash}");
    println!("state root:   {state_root}");
    Ok(())
}

/// Reads concatenated RLP items from a stream without loading it whole.
struct RlpStream<R> {
    reader: R,
    buf: Vec<u8>,
    consumed: u64,
    eof: bool,
}

impl<R: Read> RlpStream<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            buf: Vec::with_capacity(1 << 20),
            consumed: 0,
            eof: false,
        }
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 1 << 16];
        let n = self.reader.read(&mut chunk)?;
        if n == 0 {
            self.eof = true;
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// The next item's bytes, `None` at a clean end of input.
    fn next_item(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        loop {
            if self.buf.is_empty() && self.eof {
                return Ok(None);
            }
            let mut view = self.buf.as_slice();
            match Header::decode(&mut view) {
                Ok(header) => {
                    let total = self.buf.len() - view.len() + header.payload_length;
                    if self.buf.len() >= total {
                        let item: Vec<u8> = self.buf.drain(..total).collect();
                        self.consumed += total as u64;
                        return Ok(Some(item));
                    }
                }
                Err(alloy_rlp::Error::InputTooShort) => {}
                Err(e) => bail!("malformed RLP at byte {}: {e}", self.consumed),
            }
            if self.eof {
                bail!(
                    "truncated block at byte {} (file ends mid-block)",
                    self.consumed
                );
            }
            self.fill()?;
        }
    }
}

/// `healthchain import`.
pub(crate) fn import(file: &Path, log_every: u64, args: &DbArgs) -> anyhow::Result<()> {
    let chain = Chain::open(args)?;
    let config = &chain.genesis.config;
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = indicatif::ProgressBar::new(size).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut stream = RlpStream::new(std::io::BufReader::new(f));
    let (mut imported, mut skipped, mut txs) = (0u64, 0u64, 0u64);
    let started = std::time::Instant::now();
    while let Some(bytes) = stream.next_item()? {
        let at = stream.consumed;
        let block = Block::decode(&mut bytes.as_slice())
            .with_context(|| format!("undecodable block ending at byte {at}"))?;
        let number = block.header.number;
        let hash = healthchain_evm::block_hash(config, &block.header)
            .with_context(|| format!("block {number}"))?;
        // Blocks already in the chain are skipped, so an interrupted import can be rerun.
        if let Some(existing) = chain.store.canonical_hash(number)? {
            if existing != hash {
                bail!("block {number} ({hash}) conflicts with the stored block {existing}");
            }
            skipped += 1;
            progress.set_position(at);
            continue;
        }
        let tx_count = block.body.transactions.len() as u64;
        let batch = execute_block(config, &chain.store, block)
            .with_context(|| format!("block {number} ({hash}) is invalid"))?;
        chain
            .store
            .commit_block(batch)
            .with_context(|| format!("committing block {number}"))?;
        imported += 1;
        txs += tx_count;
        progress.set_position(at);
        progress.set_message(format!("block {number}"));
        if log_every > 0 && imported % log_every == 0 {
            info!(number, %hash, imported, "imported");
        }
    }
    progress.finish_and_clear();
    let head = chain
        .store
        .head()?
        .map(|(n, h)| format!("{n} ({h})"))
        .unwrap_or_default();
    let secs = started.elapsed().as_secs_f64();
    info!(
        imported,
        skipped,
        txs,
        head,
        seconds = secs,
        "import complete"
    );
    println!("imported {imported} blocks ({txs} transactions), skipped {skipped}; head {head}");
    Ok(())
}

/// `healthchain export`.
pub(crate) fn export(file: &Path, from: u64, to: Option<u64>, args: &DbArgs) -> anyhow::Result<()> {
    let chain = Chain::open(args)?;
    let (head, _) = chain.store.head()?.context("the database is empty")?;
    let to = to.unwrap_or(head).min(head);
    let out =
        std::fs::File::create(file).with_context(|| format!("creating {}", file.display()))?;
    let mut out = BufWriter::new(out);
    let progress = indicatif::ProgressBar::new(to.saturating_sub(from) + 1);
    for number in from..=to {
        let hash: B256 = chain
            .store
            .canonical_hash(number)?
            .with_context(|| format!("block {number} missing"))?;
        let header = chain
            .store
            .header(hash)?
            .with_context(|| format!("header {number} missing"))?;
        let body = chain
            .store
            .body(hash)?
            .with_context(|| format!("body {number} missing"))?;
        out.write_all(&alloy_rlp::encode(Block { header, body }))?;
        progress.inc(1);
    }
    out.flush()?;
    progress.finish_and_clear();
    println!("exported blocks {from}..={to} to {}", file.display());
    Ok(())
}

/// `healthchain db stats`.
pub(crate) fn db_stats(args: &DbArgs) -> anyhow::Result<()> {
    let store = chain::open_store(args)?;
    println!("{:<16} {:>12} {:>14}", "table", "entries", "bytes");
    for table in store.stats()? {
        println!(
            "{:<16} {:>12} {:>14}",
            table.name, table.entries, table.bytes
        );
    }
    match store.head()? {
        Some((number, hash)) => println!("head: {number} {hash}"),
        None => println!("head: none (not initialised)"),
    }
    Ok(())
}

/// `healthchain testchain`.
pub(crate) fn testchain(
    out: &Path,
    blocks: u64,
    txs: u64,
    senders: u64,
    workload: WorkloadArg,
) -> anyhow::Result<()> {
    if senders == 0 {
        bail!("--senders must be at least 1");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(
        out.join("genesis.json"),
        healthchain_fixtures::genesis_json(senders),
    )?;
    let file = std::fs::File::create(out.join("blocks.rlp"))?;
    let mut writer = BufWriter::new(file);
    let workload = match workload {
        WorkloadArg::Transfers => healthchain_fixtures::Workload::Transfers,
        WorkloadArg::Records => healthchain_fixtures::Workload::Records,
    };
    let store = healthchain_storage_api::MemoryStore::default();
    let progress = indicatif::ProgressBar::new(blocks);
    let mut write_error = None;
    healthchain_fixtures::generate_chain_with(&store, senders, blocks, txs, workload, |batch| {
        let block = Block {
            header: batch.header.clone(),
            body: batch.body.clone(),
        };
        if let Err(e) = writer.write_all(&alloy_rlp::encode(block)) {
            write_error.get_or_insert(e);
        }
        progress.inc(1);
    });
    if let Some(e) = write_error {
        return Err(e).context("writing blocks.rlp");
    }
    writer.flush()?;
    progress.finish_and_clear();
    println!(
        "wrote {}/genesis.json and {}/blocks.rlp ({blocks} blocks x {txs} transactions)",
        out.display(),
        out.display()
    );
    Ok(())
}
