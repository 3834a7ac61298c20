// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import "./Roles.sol";

/// @title Doctors, as the HealthChain paper names them (`addDoctor`, `getDoctor`).
/// @notice A hospital (or a ministry admin) registers a doctor. The licence number, doctor
///         id and name live in the doctor's encrypted identity record off chain; `ref` commits
///         to it.
abstract contract Doctor is Roles {
    function addDoctor(address doctor, bytes32 ref) external {
        Role caller = parties[msg.sender].role;
        if (caller != Role.Admin) _requireActive(msg.sender, Role.Hospital);
        else _requireActive(msg.sender, Role.Admin);
        _register(doctor, Role.Doctor, msg.sender, ref);
    }

    function getDoctor(address doctor) external view returns (Party memory) {
        return _partyWithRole(doctor, Role.Doctor);
    }

    function _partyWithRole(address account, Role role) internal view returns (Party memory) {
        Party storage p = parties[account];
        if (p.role != role) revert NotRegistered(account, role);
        return p;
    }
}
