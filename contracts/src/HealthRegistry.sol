// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import "./Patient.sol";

/// @title The deployed role registry: the paper's `Doctor`, `DiagnosticCenter` and `Patient`
///        contracts and the consortium roles in one contract (one address to permission and
///        audit).
contract HealthRegistry is Patient {
    constructor(address admin, bytes32 adminRef) Roles(admin, adminRef) {}
}
