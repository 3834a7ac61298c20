// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import "./HealthTypes.sol";

/// @title The consortium's role registry.
/// @notice Ministry admins register hospitals, diagnostic centres, insurers, regulators and
///         other admins; hospitals register doctors and patients; patients register their
///         relatives. Every registration and deactivation is an event.
abstract contract Roles {
    mapping(address => Party) internal parties;
    /// Patients' self-registration requests awaiting a hospital's confirmation.
    mapping(address => bytes32) public pendingPatients;
    /// `relatives[patient][relative]`: the patient registered this relative.
    mapping(address => mapping(address => bool)) public relatives;

    event Registered(address indexed account, Role indexed role, address indexed by, bytes32 ref);
    event Deactivated(address indexed account, Role indexed role, address indexed by);
    event RegistrationRequested(address indexed account, bytes32 ref);
    event RelativeAdded(address indexed patient, address indexed relative);
    event RelativeRemoved(address indexed patient, address indexed relative);

    /// The caller may not deactivate this account.
    error NotRegistrar(address caller, address account);
    /// No self-registration request is pending for this account.
    error NoPendingRequest(address account);

    constructor(address admin, bytes32 adminRef) {
        _register(admin, Role.Admin, address(0), adminRef);
    }

    modifier onlyActive(Role role) {
        _requireActive(msg.sender, role);
        _;
    }

    /// The role and active flag of `account` (Role.None when unregistered).
    function roleOf(address account) external view returns (Role role, bool active) {
        Party storage p = parties[account];
        return (p.role, p.active);
    }

    /// The registration of `account` (all zero when unregistered).
    function partyOf(address account) external view returns (Party memory) {
        return parties[account];
    }

    /// Registers another ministry admin.
    function addAdmin(address admin, bytes32 ref) external onlyActive(Role.Admin) {
        _register(admin, Role.Admin, msg.sender, ref);
    }

    function registerHospital(address hospital, bytes32 ref) external onlyActive(Role.Admin) {
        _register(hospital, Role.Hospital, msg.sender, ref);
    }

    function registerInsurer(address insurer, bytes32 ref) external onlyActive(Role.Admin) {
        _register(insurer, Role.Insurer, msg.sender, ref);
    }

    /// Registers a regulator or researcher (read-only; every access request is logged).
    function registerRegulator(address regulator, bytes32 ref) external onlyActive(Role.Admin) {
        _register(regulator, Role.Regulator, msg.sender, ref);
    }

    /// A not-yet-registered account asks to be registered as a patient; a hospital confirms
    /// with `confirmPatient`.
    function requestPatientRegistration(bytes32 ref) external {
        if (ref == bytes32(0)) revert ZeroRef();
        Party storage p = parties[msg.sender];
        if (p.role != Role.None) revert AlreadyRegistered(msg.sender, p.role);
        pendingPatients[msg.sender] = ref;
        emit RegistrationRequested(msg.sender, ref);
    }

    /// A hospital confirms a pending self-registration.
    function confirmPatient(address patient) external onlyActive(Role.Hospital) {
        bytes32 ref = pendingPatients[patient];
        if (ref == bytes32(0)) revert NoPendingRequest(patient);
        delete pendingPatients[patient];
        _register(patient, Role.Patient, msg.sender, ref);
    }

    /// A patient registers a relative (who may then be granted restricted access).
    function addRelative(address relative, bytes32 ref) external onlyActive(Role.Patient) {
        Party storage p = parties[relative];
        if (p.role == Role.None) {
            _register(relative, Role.Relative, msg.sender, ref);
        } else if (p.role != Role.Relative) {
            revert AlreadyRegistered(relative, p.role);
        }
        relatives[msg.sender][relative] = true;
        emit RelativeAdded(msg.sender, relative);
    }

    function removeRelative(address relative) external onlyActive(Role.Patient) {
        if (!relatives[msg.sender][relative]) revert NotRegistered(relative, Role.Relative);
        relatives[msg.sender][relative] = false;
        emit RelativeRemoved(msg.sender, relative);
    }

    /// Deactivates a registration: by an admin, or by whoever registered the account. The
    /// record stays (history is never deleted); the account can no longer act in its role.
    function deactivate(address account) external {
        Party storage p = parties[account];
        if (p.role == Role.None) revert NotRegistered(account, Role.None);
        if (!p.active) revert InactiveAccount(account);
        Party storage caller = parties[msg.sender];
        bool isAdmin = caller.role == Role.Admin && caller.active;
        if (!isAdmin && p.registeredBy != msg.sender) revert NotRegistrar(msg.sender, account);
        p.active = false;
        emit Deactivated(account, p.role, msg.sender);
    }

    function _register(address account, Role role, address by, bytes32 ref) internal {
        if (account == address(0)) revert ZeroAddress();
        if (ref == bytes32(0)) revert ZeroRef();
        Party storage p = parties[account];
        if (p.role != Role.None) revert AlreadyRegistered(account, p.role);
        p.role = role;
        p.active = true;
        p.registeredAt = uint40(block.timestamp);
        p.registeredBy = by;
        p.ref = ref;
        emit Registered(account, role, by, ref);
    }

    function _requireActive(address account, Role role) internal view {
        Party storage p = parties[account];
        if (p.role != role) revert CallerNotRole(account, role);
        if (!p.active) revert InactiveAccount(account);
    }
}
