// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import "./Doctor.sol";

/// @title Diagnostic centres (`addCenter`, `getDiagnosticCenter`): labs and imaging,
///        registered by a ministry admin.
abstract contract DiagnosticCenter is Doctor {
    function addCenter(address center, bytes32 ref) external onlyActive(Role.Admin) {
        _register(center, Role.DiagnosticCenter, msg.sender, ref);
    }

    function getDiagnosticCenter(address center) external view returns (Party memory) {
        return _partyWithRole(center, Role.DiagnosticCenter);
    }
}
