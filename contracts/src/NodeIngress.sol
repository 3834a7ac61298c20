// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import "./PermissioningIngress.sol";

/// The node rules interface Besu calls (`--permissions-nodes-contract-version=2`).
interface NodeRulesProxy {
    function connectionAllowed(string calldata enodeId, string calldata enodeHost, uint16 enodePort)
        external
        view
        returns (bool);
}

/// @title The fixed address nodes ask whether a peer may connect (`0x…9999` in genesis).
contract NodeIngress is PermissioningIngress {
    /// The node list changed: `true` when the change may disconnect peers (a removal).
    event NodePermissionsUpdated(bool addsRestrictions);

    error NotRulesContract(address caller);

    constructor(address admin, address rules) PermissioningIngress(admin, rules) {}

    /// Selector 0x45a59e5b. False when no rules contract is registered.
    function connectionAllowed(string calldata enodeId, string calldata enodeHost, uint16 enodePort)
        external
        view
        returns (bool)
    {
        address rules = registry[RULES_CONTRACT];
        if (rules == address(0)) return false;
        return NodeRulesProxy(rules).connectionAllowed(enodeId, enodeHost, enodePort);
    }

    /// Called by the registered rules contract after each change to its list.
    function emitRulesChangeEvent(bool addsRestrictions) external {
        if (msg.sender != registry[RULES_CONTRACT]) revert NotRulesContract(msg.sender);
        emit NodePermissionsUpdated(addsRestrictions);
    }
}
