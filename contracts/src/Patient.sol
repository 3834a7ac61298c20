// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import "./DiagnosticCenter.sol";

/// @title Patients (`addPatient`, `getPatient`), registered by a hospital. Name, national id
///        and date of birth stay off chain, encrypted; `ref` commits to that record.
abstract contract Patient is DiagnosticCenter {
    function addPatient(address patient, bytes32 ref) external onlyActive(Role.Hospital) {
        delete pendingPatients[patient];
        _register(patient, Role.Patient, msg.sender, ref);
    }

    function getPatient(address patient) external view returns (Party memory) {
        return _partyWithRole(patient, Role.Patient);
    }
}
