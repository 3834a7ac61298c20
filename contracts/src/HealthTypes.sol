// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

// Types shared by the health contracts.
// No plaintext personal data is ever stored: identities and payloads are referenced
//         by the content id (CID) and SHA-256 of an encrypted blob kept off chain, and
//         registrations carry only a 32-byte commitment (`ref`) to an off-chain identity.

/// The consortium roles. An account holds at most one.
enum Role {
    None,
    Admin, // Ministry of Health administrator
    Hospital,
    Doctor,
    DiagnosticCenter,
    Insurer,
    Regulator, // regulator or researcher: read-only, every request logged
    Patient,
    Relative // a patient's relative, registered by that patient
}

/// Record kinds, from the HealthChain access matrix. The value is the bit position in a
/// `kinds` mask (`1 << uint8(kind)`).
enum Kind {
    GeneralHistory, // family, surgical, obstetric, immunisation
    Prescription,
    Diagnosis,
    DiagnosticReport,
    GeneralInformation, // blood group, allergies, habits
    ScannedImage,
    InsuranceStatus,
    PatientIdentity,
    DoctorIdentity,
    CenterIdentity,
    InsurerIdentity
}

// The number of kinds; masks use the low `KIND_COUNT` bits.
uint8 constant KIND_COUNT = 11;
// Every kind.
uint16 constant ALL_KINDS = uint16((1 << KIND_COUNT) - 1);

/// A registered account.
struct Party {
    Role role;
    bool active;
    uint40 registeredAt;
    address registeredBy;
    /// Commitment to the party's off-chain identity record (e.g. the SHA-256 of its
    /// encrypted identity blob); never a plain hash of a guessable value such as a national id.
    bytes32 ref;
}

/// The caller lacks the role the function needs.
error CallerNotRole(address caller, Role required);
/// The account is registered with a role already.
error AlreadyRegistered(address account, Role role);
/// The account is not registered (or not with the role the call needs).
error NotRegistered(address account, Role expected);
/// The account's registration was deactivated.
error InactiveAccount(address account);
/// The zero address was given.
error ZeroAddress();
/// A zero identity commitment was given.
error ZeroRef();
