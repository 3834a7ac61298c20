//! IBFT 2.0 header rules (ibft2.md §2.1): the fields every IBFT block must carry, the
//! validator list in extraData, and the commit seals of a committed block.
//!
//! The rules that need the parent, the clock or execution (number, timestamp, gas) belong to
//! the executor; these are the ones only IBFT defines.

use alloy_consensus::constants::EMPTY_OMMER_ROOT_HASH;
use alloy_primitives::{Address, B64, U256};
use healthchain_primitives::{
    Header,
    ibft::{IBFT_MIX_HASH, IbftCodecError, IbftExtraData, commit_seal_digest, recover_unchecked},
};

use crate::types::quorum;

/// A header that breaks an IBFT 2.0 rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// extraData does not decode.
    #[error("extraData: {0}")]
    ExtraData(#[from] IbftCodecError),
    /// `mixHash` is not the IBFT constant.
    #[error("mixHash must be the IBFT 2.0 constant")]
    MixHash,
    /// `nonce` is not zero.
    #[error("nonce must be zero")]
    Nonce,
    /// `difficulty` is not one.
    #[error("difficulty must be 1")]
    Difficulty,
    /// The ommers hash is not that of an empty list.
    #[error("ommers must be empty")]
    Ommers,
    /// The extraData validators differ from the set for this height (or are unsorted).
    #[error("extraData validators differ from the validator set for this height")]
    Validators,
    /// The coinbase is not a validator for this height.
    #[error("coinbase {0} is not a validator")]
    Coinbase(Address),
    /// Fewer distinct valid seals than the quorum.
    #[error("{got} commit seals, {need} needed")]
    TooFewSeals {
        /// Distinct validators that sealed.
        got: usize,
        /// The quorum.
        need: usize,
    },
    /// A seal that recovers to no address.
    #[error("commit seal {0} does not recover")]
    BadSeal(usize),
    /// Two seals from one validator.
    #[error("two commit seals from {0}")]
    DuplicateSeal(Address),
    /// A seal from outside the validator set.
    #[error("commit seal from {0}, who is not a validator")]
    ForeignSeal(Address),
}

/// Checks the fields IBFT fixes (`IbftBlockHeaderValidationRulesetFactory`, LIGHT mode:
/// everything but the seals) against `validators`, the set for this header's height in
/// ascending order. Returns the decoded extraData.
pub fn check_header(header: &Header, validators: &[Address]) -> Result<IbftExtraData, HeaderError> {
    if header.mix_hash != IBFT_MIX_HASH {
        return Err(HeaderError::MixHash);
    }
    if header.nonce != B64::ZERO {
        return Err(HeaderError::Nonce);
    }
    if header.difficulty != U256::from(1) {
        return Err(HeaderError::Difficulty);
    }
    if header.ommers_hash != EMPTY_OMMER_ROOT_HASH {
        return Err(HeaderError::Ommers);
    }
    let extra = IbftExtraData::of(header)?;
    // BftValidatorsValidationRule: strictly ascending and equal to the set for this height.
    let ascending = extra.validators.windows(2).all(|w| w[0] < w[1]);
    if !ascending || extra.validators != validators {
        return Err(HeaderError::Validators);
    }
    // BftCoinbaseValidationRule.
    if !validators.contains(&header.beneficiary) {
        return Err(HeaderError::Coinbase(header.beneficiary));
    }
    Ok(extra)
}

/// Checks the commit seals of a committed header (`BftCommitSealsValidationRule`): each
/// recovers, signers are distinct validators, and there are at least `quorum(n)` of them.
/// Returns the signers in seal order.
pub fn check_commit_seals(
    header: &Header,
    validators: &[Address],
) -> Result<Vec<Address>, HeaderError> {
    let extra = IbftExtraData::of(header)?;
    let digest = commit_seal_digest(header)?;
    let mut signers = Vec::with_capacity(extra.seals.len());
    for (i, seal) in extra.seals.iter().enumerate() {
        let signer = recover_unchecked(seal, digest).ok_or(HeaderError::BadSeal(i))?;
        if !validators.contains(&signer) {
            return Err(HeaderError::ForeignSeal(signer));
        }
        if signers.contains(&signer) {
            return Err(HeaderError::DuplicateSeal(signer));
        }
        signers.push(signer);
    }
    let need = quorum(validators.len());
    if signers.len() < need {
        return Err(HeaderError::TooFewSeals {
            got: signers.len(),
            need,
        });
    }
    Ok(signers)
}
