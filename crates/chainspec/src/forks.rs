//! Hard forks and their activation by block number (to London) or timestamp (Shanghai on).

use crate::{GenesisError, json::Obj};

/// Ethereum hard forks in activation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hardfork {
    /// Launch rules.
    Frontier,
    /// EIP-2, EIP-7, EIP-8.
    Homestead,
    /// EIP-150 gas repricing.
    Tangerine,
    /// EIP-155, EIP-158/161.
    SpuriousDragon,
    /// Metropolis part one.
    Byzantium,
    /// Metropolis part two.
    Constantinople,
    /// Constantinople without EIP-1283.
    Petersburg,
    /// EIP-1344, EIP-2200 and friends.
    Istanbul,
    /// Difficulty bomb delay.
    MuirGlacier,
    /// Typed transactions, access lists.
    Berlin,
    /// EIP-1559 fee market.
    London,
    /// Difficulty bomb delay.
    ArrowGlacier,
    /// Difficulty bomb delay.
    GrayGlacier,
    /// The merge: PREVRANDAO, no block reward.
    Paris,
    /// Withdrawals, PUSH0.
    Shanghai,
    /// Transient storage, blobs, beacon root.
    Cancun,
    /// EIP-7702, requests.
    Prague,
    /// Osaka.
    Osaka,
}

impl Hardfork {
    /// All forks, oldest first.
    pub const ALL: [Hardfork; 18] = [
        Self::Frontier,
        Self::Homestead,
        Self::Tangerine,
        Self::SpuriousDragon,
        Self::Byzantium,
        Self::Constantinople,
        Self::Petersburg,
        Self::Istanbul,
        Self::MuirGlacier,
        Self::Berlin,
        Self::London,
        Self::ArrowGlacier,
        Self::GrayGlacier,
        Self::Paris,
        Self::Shanghai,
        Self::Cancun,
        Self::Prague,
        Self::Osaka,
    ];

    /// Whether the fork is scheduled by timestamp rather than block number.
    pub fn is_timestamp_based(self) -> bool {
        self >= Self::Shanghai
    }

    /// The name the ethereum/tests fixtures use for the fork.
    pub fn from_test_name(name: &str) -> Option<Self> {
        Some(match name {
            "Frontier" => Self::Frontier,
            "Homestead" => Self::Homestead,
            "EIP150" => Self::Tangerine,
            "EIP158" => Self::SpuriousDragon,
            "Byzantium" => Self::Byzantium,
            "Constantinople" => Self::Constantinople,
            "ConstantinopleFix" | "Petersburg" => Self::Petersburg,
            "Istanbul" => Self::Istanbul,
            "MuirGlacier" => Self::MuirGlacier,
            "Berlin" => Self::Berlin,
            "London" => Self::London,
            "ArrowGlacier" => Self::ArrowGlacier,
            "GrayGlacier" => Self::GrayGlacier,
            "Merge" | "Paris" => Self::Paris,
            "Shanghai" => Self::Shanghai,
            "Cancun" => Self::Cancun,
            "Prague" => Self::Prague,
            "Osaka" => Self::Osaka,
            _ => return None,
        })
    }
}

/// When each fork activates: a block number up to Paris, a timestamp from Shanghai on.
/// `None` means never.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForkSchedule {
    activations: [Option<u64>; Hardfork::ALL.len()],
}

/// Genesis `config` keys for each fork, first match wins (Besu and geth spellings).
const KEYS: [(Hardfork, &[&str]); 17] = [
    (Hardfork::Homestead, &["homesteadBlock"]),
    (Hardfork::Tangerine, &["eip150Block"]),
    (
        Hardfork::SpuriousDragon,
        &["eip158Block", "eip155Block", "eip160Block"],
    ),
    (Hardfork::Byzantium, &["byzantiumBlock"]),
    (Hardfork::Constantinople, &["constantinopleBlock"]),
    (
        Hardfork::Petersburg,
        &["petersburgBlock", "constantinopleFixBlock"],
    ),
    (Hardfork::Istanbul, &["istanbulBlock"]),
    (Hardfork::MuirGlacier, &["muirGlacierBlock"]),
    (Hardfork::Berlin, &["berlinBlock"]),
    (Hardfork::London, &["londonBlock"]),
    (Hardfork::ArrowGlacier, &["arrowGlacierBlock"]),
    (Hardfork::GrayGlacier, &["grayGlacierBlock"]),
    (
        Hardfork::Paris,
        &["parisBlock", "mergeNetsplitBlock", "mergeNetSplitBlock"],
    ),
    (Hardfork::Shanghai, &["shanghaiTime"]),
    (Hardfork::Cancun, &["cancunTime"]),
    (Hardfork::Prague, &["pragueTime"]),
    (Hardfork::Osaka, &["osakaTime"]),
];

impl ForkSchedule {
    /// Every fork up to and including `last` active from genesis; later ones never.
    pub fn all_up_to(last: Hardfork) -> Self {
        let mut schedule = Self::default();
        for fork in Hardfork::ALL.into_iter().filter(|f| *f <= last) {
            schedule.set(fork, Some(0));
        }
        schedule
    }

    /// Sets one fork's activation. Frontier is always active from genesis.
    pub fn set(&mut self, fork: Hardfork, activation: Option<u64>) {
        if fork != Hardfork::Frontier {
            self.activations[fork as usize] = activation;
        }
    }

    /// The activation block or timestamp of `fork`.
    pub fn activation(&self, fork: Hardfork) -> Option<u64> {
        if fork == Hardfork::Frontier {
            Some(0)
        } else {
            self.activations[fork as usize]
        }
    }

    pub(crate) fn parse(cfg: &Obj<'_>) -> Result<Self, GenesisError> {
        let mut schedule = Self::default();
        for (fork, keys) in KEYS {
            for key in keys {
                if let Some(at) = cfg.u64(key)? {
                    schedule.set(fork, Some(at));
                    break;
                }
            }
        }
        // A terminal total difficulty of zero means the chain is post-merge from genesis.
        if schedule.activation(Hardfork::Paris).is_none()
            && cfg
                .u256("terminalTotalDifficulty")?
                .is_some_and(|ttd| ttd.is_zero())
        {
            schedule.set(Hardfork::Paris, Some(0));
        }
        Ok(schedule)
    }

    /// Whether `fork` is active at a block with this number and timestamp.
    pub fn is_active(&self, fork: Hardfork, number: u64, timestamp: u64) -> bool {
        match self.activation(fork) {
            None => false,
            Some(at) if fork.is_timestamp_based() => timestamp >= at,
            Some(at) => number >= at,
        }
    }

    /// The latest fork active at a block with this number and timestamp.
    pub fn hardfork_at(&self, number: u64, timestamp: u64) -> Hardfork {
        Hardfork::ALL
            .into_iter()
            .rev()
            .find(|f| self.is_active(*f, number, timestamp))
            .unwrap_or(Hardfork::Frontier)
    }
}
