// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import "./PermissioningIngress.sol";

/// The account rules interface Besu calls for every transaction.
interface AccountRulesProxy {
    function transactionAllowed(
        address sender,
        address target,
        uint256 value,
        uint256 gasPrice,
        uint256 gasLimit,
        bytes calldata payload
    ) external view returns (bool);
}

/// @title The fixed address nodes ask whether a transaction may enter a block (`0x…8888`).
contract AccountIngress is PermissioningIngress {
    constructor(address admin, address rules) PermissioningIngress(admin, rules) {}

    /// Selector 0x936421d5. True when no rules contract is registered.
    function transactionAllowed(
        address sender,
        address target,
        uint256 value,
        uint256 gasPrice,
        uint256 gasLimit,
        bytes calldata payload
    ) external view returns (bool) {
        address rules = registry[RULES_CONTRACT];
        if (rules == address(0)) return true;
        return AccountRulesProxy(rules).transactionAllowed(sender, target, value, gasPrice, gasLimit, payload);
    }
}
