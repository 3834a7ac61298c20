//! Consensus rules that depend on the chain config: EVM spec per block, base fee, blob
//! parameters and block rewards.

use alloy_eips::{eip1559::BaseFeeParams, eip7840::BlobParams};
use alloy_primitives::{Address, U256};
use healthchain_chainspec::{ChainConfig, Hardfork};
use healthchain_primitives::Header;
use revm::primitives::hardfork::SpecId;

/// The revm spec for a fork.
pub fn spec_id(fork: Hardfork) -> SpecId {
    match fork {
        Hardfork::Frontier => SpecId::FRONTIER,
        Hardfork::Homestead => SpecId::HOMESTEAD,
        Hardfork::Tangerine => SpecId::TANGERINE,
        Hardfork::SpuriousDragon => SpecId::SPURIOUS_DRAGON,
        Hardfork::Byzantium => SpecId::BYZANTIUM,
        // revm has no separate Constantinople: its EIP-1283 was removed by Petersburg, and no
        // network we support ran it.
        Hardfork::Constantinople => SpecId::PETERSBURG,
        Hardfork::Petersburg => SpecId::PETERSBURG,
        Hardfork::Istanbul => SpecId::ISTANBUL,
        Hardfork::MuirGlacier => SpecId::ISTANBUL,
        Hardfork::Berlin => SpecId::BERLIN,
        Hardfork::London => SpecId::LONDON,
        Hardfork::ArrowGlacier => SpecId::LONDON,
        Hardfork::GrayGlacier => SpecId::LONDON,
        Hardfork::Paris => SpecId::MERGE,
        Hardfork::Shanghai => SpecId::SHANGHAI,
        Hardfork::Cancun => SpecId::CANCUN,
        Hardfork::Prague => SpecId::PRAGUE,
        Hardfork::Osaka => SpecId::OSAKA,
    }
}

/// Blob parameters in force at a fork (EIP-4844, EIP-7691, EIP-7892), if blobs exist.
pub fn blob_params(fork: Hardfork) -> Option<BlobParams> {
    match fork {
        f if f >= Hardfork::Osaka => Some(BlobParams::osaka()),
        Hardfork::Prague => Some(BlobParams::prague()),
        Hardfork::Cancun => Some(BlobParams::cancun()),
        _ => None,
    }
}

/// The chain config's view of one block.
#[derive(Debug, Clone, Copy)]
pub struct BlockRules<'a> {
    /// The chain config.
    pub config: &'a ChainConfig,
    /// The fork in force at the block.
    pub fork: Hardfork,
}

impl<'a> BlockRules<'a> {
    /// Rules for a block with this number and timestamp.
    pub fn new(config: &'a ChainConfig, number: u64, timestamp: u64) -> Self {
        Self {
            config,
            fork: config.forks.hardfork_at(number, timestamp),
        }
    }

    /// Whether `fork` is in force.
    pub fn is_active(&self, fork: Hardfork) -> bool {
        self.fork >= fork
    }

    /// The base fee a child of `parent` must carry, `None` before London.
    pub fn expected_base_fee(&self, parent: &Header, number: u64) -> Option<u64> {
        if !self.is_active(Hardfork::London) {
            return None;
        }
        if self.config.zero_base_fee {
            return Some(0);
        }
        match parent.base_fee_per_gas {
            // The first London block (EIP-1559): the initial base fee.
            None => Some(healthchain_chainspec::INITIAL_BASE_FEE),
            Some(_) if self.config.forks.activation(Hardfork::London) == Some(number) => {
                Some(healthchain_chainspec::INITIAL_BASE_FEE)
            }
            Some(_) => parent.next_block_base_fee(BaseFeeParams::ethereum()),
        }
    }

    /// Every balance credit at the end of a block: rewards, then EIP-4895 withdrawals
    /// (amounts in gwei).
    pub fn end_of_block_credits(
        &self,
        header: &Header,
        ommers: &[Header],
        withdrawals: &[alloy_eips::eip4895::Withdrawal],
    ) -> Vec<(Address, U256)> {
        let mut credits = self.rewards(header, ommers);
        credits.extend(withdrawals.iter().map(|w| {
            (
                w.address,
                U256::from(w.amount) * U256::from(1_000_000_000u64),
            )
        }));
        credits
    }

    /// Balance credits at the end of a block: the block reward of a proof-of-work chain
    /// (ethash, with ommer rewards) or of an IBFT 2.0 chain (`blockreward`).
    pub fn rewards(&self, header: &Header, ommers: &[Header]) -> Vec<(Address, U256)> {
        if let Some(ibft) = &self.config.ibft2 {
            if ibft.block_reward.is_zero() {
                return Vec::new();
            }
            let to = ibft.mining_beneficiary.unwrap_or(header.beneficiary);
            return vec![(to, ibft.block_reward)];
        }
        if self.is_active(Hardfork::Paris) {
            return Vec::new();
        }
        // Yellow Paper section 11.3, with EIP-649 and EIP-1234 reductions.
        let eth = U256::from(10u64).pow(U256::from(18u64));
        let reward = if self.is_active(Hardfork::Constantinople) {
            eth * U256::from(2)
        } else if self.is_active(Hardfork::Byzantium) {
            eth * U256::from(3)
        } else {
            eth * U256::from(5)
        };
        let mut credits = Vec::with_capacity(ommers.len() + 1);
        let mut miner = reward;
        for ommer in ommers {
            let depth = header.number.saturating_sub(ommer.number);
            let share = reward * U256::from(8u64.saturating_sub(depth)) / U256::from(8);
            credits.push((ommer.beneficiary, share));
            miner += reward / U256::from(32);
        }
        credits.push((header.beneficiary, miner));
        credits
    }
}
