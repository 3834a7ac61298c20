//! JSON-RPC errors with Besu's codes and messages (`RpcErrorType`), so clients that match on
//! them behave as they do against Besu.

use alloy_primitives::Bytes;
use healthchain_evm::CallError;
use healthchain_storage_api::StorageError;
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};
use revm::context::result::InvalidTransaction;

/// Result of an RPC method.
pub type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// Invalid params (-32602) with Besu's specific message.
pub fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(-32602, message.into(), None::<()>)
}

/// A generic -32000 error.
pub fn server_error(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(-32000, message.into(), None::<()>)
}

/// Internal error (-32603); the detail is logged, not sent.
pub fn internal(detail: impl std::fmt::Display) -> ErrorObjectOwned {
    tracing::warn!(%detail, "internal error answering an RPC request");
    ErrorObject::owned(-32603, "Internal error", None::<()>)
}

/// Storage failures are internal errors.
pub fn storage(err: StorageError) -> ErrorObjectOwned {
    internal(err)
}

/// -39001 "Unknown block" (execution-apis).
pub fn unknown_block() -> ErrorObjectOwned {
    ErrorObject::owned(-39001, "Unknown block", None::<()>)
}

/// -32000 "Block not found".
pub fn block_not_found() -> ErrorObjectOwned {
    server_error("Block not found")
}

/// -32000 "Filter not found".
pub fn filter_not_found() -> ErrorObjectOwned {
    server_error("Filter not found")
}

/// -32005 "Requested range exceeds maximum RPC range limit".
pub fn range_too_large() -> ErrorObjectOwned {
    ErrorObject::owned(
        -32005,
        "Requested range exceeds maximum RPC range limit",
        None::<()>,
    )
}

/// A revert: code 3 (execution-apis, Besu 25.12+), "Execution reverted" with the reason when
/// the data is an `Error(string)`, and the raw revert bytes as data.
pub fn reverted(output: &Bytes) -> ErrorObjectOwned {
    let message = match revert_reason(output) {
        Some(reason) => format!("Execution reverted ({reason})"),
        None => "Execution reverted".to_string(),
    };
    ErrorObject::owned(3, message, Some(output.to_string()))
}

/// Decodes `Error(string)` revert data (selector 0x08c379a0).
fn revert_reason(output: &[u8]) -> Option<String> {
    use alloy_primitives::U256;
    let body = output.strip_prefix(&[0x08, 0xc3, 0x79, 0xa0][..])?;
    let word = |i: usize| body.get(i * 32..(i + 1) * 32).map(U256::from_be_slice);
    let offset = usize::try_from(word(0)?).ok()?;
    let len_at = offset.checked_add(32)?;
    let len = usize::try_from(U256::from_be_slice(body.get(offset..len_at)?)).ok()?;
    let text = body.get(len_at..len_at.checked_add(len)?)?;
    String::from_utf8(text.to_vec()).ok()
}

/// A halted call (out of gas, invalid opcode, ...).
pub fn halted(reason: impl std::fmt::Debug) -> ErrorObjectOwned {
    server_error(format!(
        "Transaction processing could not be completed due to an exception ({reason:?})"
    ))
}

/// Maps a call that could not run to Besu's transaction-validation codes, with the detail
/// appended as Besu does for eth_call and eth_estimateGas.
pub fn call_error(err: CallError) -> ErrorObjectOwned {
    match err {
        CallError::Invalid(reason) => {
            let (code, message) = invalid_tx_code(&reason);
            ErrorObject::owned(code, format!("{message} ({reason})"), None::<()>)
        }
        CallError::Header(detail) => internal(detail),
        CallError::Storage(err) => storage(err),
        err @ CallError::InvalidOverrideCode { .. } => invalid_params(err.to_string()),
    }
}

fn invalid_tx_code(reason: &InvalidTransaction) -> (i32, &'static str) {
    match reason {
        InvalidTransaction::NonceTooLow { .. } => (-32001, "Nonce too low"),
        InvalidTransaction::NonceTooHigh { .. } => (-32006, "Nonce too high"),
        InvalidTransaction::CallGasCostMoreThanGasLimit { .. }
        | InvalidTransaction::GasFloorMoreThanGasLimit { .. } => {
            (-32003, "Intrinsic gas exceeds gas limit")
        }
        InvalidTransaction::LackOfFundForMaxFee { .. } => {
            (-32004, "Upfront cost exceeds account balance")
        }
        InvalidTransaction::CallerGasLimitMoreThanBlock => {
            (-32005, "Transaction gas limit exceeds block gas limit")
        }
        InvalidTransaction::GasPriceLessThanBasefee => (-32009, "Gas price below current base fee"),
        InvalidTransaction::PriorityFeeGreaterThanMaxFee => {
            (-32000, "Max priority fee per gas exceeds max fee per gas")
        }
        InvalidTransaction::RejectCallerWithCode => {
            (-32007, "Sender account not authorized to send transactions")
        }
        _ => (-32603, "Internal error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_string_reason_is_decoded() {
        // Error("nope")
        let data: Bytes = "0x08c379a0\
            0000000000000000000000000000000000000000000000000000000000000020\
            0000000000000000000000000000000000000000000000000000000000000004\
            6e6f706500000000000000000000000000000000000000000000000000000000"
            .parse()
            .unwrap();
        let err = reverted(&data);
        assert_eq!(err.code(), 3);
        assert_eq!(err.message(), "Execution reverted (nope)");
        assert_eq!(
            err.data().map(|d| d.get()),
            Some(format!("\"{data}\"").as_str())
        );
    }

    #[test]
    fn custom_error_is_not_decoded_but_returned_as_data() {
        let data: Bytes = "0x12345678".parse().unwrap();
        let err = reverted(&data);
        assert_eq!(err.message(), "Execution reverted");
        assert_eq!(err.data().map(|d| d.get()), Some("\"0x12345678\""));
    }

    #[test]
    fn truncated_error_string_is_not_decoded() {
        let data: Bytes = "0x08c379a0000000".parse().unwrap();
        assert_eq!(reverted(&data).message(), "Execution reverted");
    }
}
