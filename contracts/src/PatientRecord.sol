// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import "./HealthTypes.sol";

/// The registry as `PatientRecord` reads it.
interface IRoleRegistry {
    function roleOf(address account) external view returns (Role role, bool active);
}

/// @title Patient records, consent and access requests.
/// @notice The paper's `PatientRecord` (`healthRecordStore` with `onlyDoctor`,
///         `diagnosticReportStore`, `healthRecordGet`, `healthReportGet`), extended with
///         record kinds, per-grantee per-kind consent with expiry, append-only records where
///         a correction supersedes, and logged regulator access requests.
///
///         A record is a reference: subject, author, kind, time, and the CID and SHA-256 of
///         an encrypted payload kept off chain. View functions are not access control (any
///         RPC caller can `eth_call` with any `from`); `canRead` states the read rules that
///         the off-chain store enforces before it serves a blob.
contract PatientRecord {
    struct Record {
        address patient; // the subject (the party itself for identity kinds)
        uint40 timestamp;
        Kind kind;
        address author;
        uint40 supersedes; // the record this one corrects (0: none)
        uint40 supersededBy; // the record that corrects this one (0: current)
        bytes32 contentHash; // SHA-256 of the encrypted payload
        string cid; // content id of the encrypted payload
    }

    struct AccessRequest {
        address requester;
        uint40 timestamp;
        uint16 kinds;
        address patient;
        bytes32 purpose; // hash of the off-chain request document (ethics approval, case id)
    }

    /// Longest accepted content id, in bytes (CIDv1 base32 of a SHA-256 is 59).
    uint256 public constant MAX_CID_LENGTH = 128;
    /// An expiry meaning "until revoked".
    uint40 public constant NO_EXPIRY = type(uint40).max;

    IRoleRegistry public immutable registry;

    uint40 public recordCount;
    mapping(uint40 => Record) internal records;
    mapping(address => uint40[]) internal recordsBySubject;
    /// `consent[patient][grantee][kind]`: the time the grant expires (0: never granted or
    /// revoked).
    mapping(address => mapping(address => uint40[KIND_COUNT])) internal consent;
    /// `admissions[patient][hospital]`: the kinds the admitting hospital may still write once
    /// (general history, general information).
    mapping(address => mapping(address => uint16)) public admissions;
    AccessRequest[] internal accessRequests;
    /// `requested[regulator][patient]`: kinds the regulator has logged a request for.
    mapping(address => mapping(address => uint16)) public requested;
    /// Kinds the consortium policy lets regulators and researchers read (after a request).
    uint16 public regulatorPolicy;

    event RecordAdded(
        uint40 indexed id,
        address indexed patient,
        address indexed author,
        Kind kind,
        uint40 supersedes,
        bytes32 contentHash,
        string cid
    );
    event ConsentGranted(address indexed patient, address indexed grantee, uint16 kinds, uint40 expiresAt);
    event ConsentRevoked(address indexed patient, address indexed grantee, uint16 kinds);
    event PatientAdmitted(address indexed patient, address indexed hospital);
    event AccessRequested(
        uint256 indexed id, address indexed requester, address indexed patient, uint16 kinds, bytes32 purpose
    );
    event RegulatorPolicySet(address indexed by, uint16 kinds);

    /// The author's role may not write this kind.
    error KindNotAllowed(Kind kind, Role role);
    /// The patient has not granted the writer this kind (or revoked it).
    error NoConsent(address patient, address writer, Kind kind);
    /// The writer's grant for this kind has expired.
    error ConsentExpired(address patient, address writer, Kind kind, uint40 expiredAt);
    /// The hospital has no unused admission allowance for this kind.
    error NoAdmission(address patient, address hospital, Kind kind);
    /// Identity records are written by their subject only.
    error NotOwnIdentity(address subject, address writer);
    /// No record has this id.
    error UnknownRecord(uint40 id);
    /// The record was already corrected by another.
    error AlreadySuperseded(uint40 id, uint40 by);
    /// A correction must have the same subject and kind as the record it supersedes.
    error SupersedeMismatch(uint40 id);
    /// Empty or over-long content id.
    error InvalidCid(uint256 length);
    /// Zero content hash.
    error InvalidContentHash();
    /// Empty mask or a bit beyond the last kind.
    error InvalidKinds(uint16 kinds);
    /// An expiry in the past.
    error InvalidExpiry(uint40 expiresAt);
    /// A grant to oneself.
    error SelfGrant();
    /// The record is not a diagnostic report or scanned image.
    error NotAReport(uint40 id);

    constructor(IRoleRegistry registry_) {
        registry = registry_;
    }

    modifier onlyDoctor() {
        _requireActive(msg.sender, Role.Doctor);
        _;
    }

    modifier onlyDiagnosticCenter() {
        _requireActive(msg.sender, Role.DiagnosticCenter);
        _;
    }

    // ---- writes ---------------------------------------------------------------------------

    /// Adds a record of `kind` about `patient` (for identity kinds: about the caller), or a
    /// correction of record `supersedes` (0: a new record). Returns the new record's id.
    function addRecord(address patient, Kind kind, string calldata cid, bytes32 contentHash, uint40 supersedes)
        external
        returns (uint40)
    {
        return _store(patient, kind, cid, contentHash, supersedes);
    }

    /// The paper's doctor write: a prescription or diagnosis, with the patient's consent.
    function healthRecordStore(address patient, Kind kind, string calldata cid, bytes32 contentHash)
        external
        onlyDoctor
        returns (uint40)
    {
        return _store(patient, kind, cid, contentHash, 0);
    }

    /// The paper's diagnostic-centre write: a report's content id, with the patient's consent.
    function diagnosticReportStore(address patient, string calldata cid, bytes32 contentHash)
        external
        onlyDiagnosticCenter
        returns (uint40)
    {
        return _store(patient, Kind.DiagnosticReport, cid, contentHash, 0);
    }

    /// A hospital admits a patient: it may then write the general history and general
    /// information once each for this admission.
    function admitPatient(address patient) external {
        _requireActive(msg.sender, Role.Hospital);
        _requirePatient(patient);
        admissions[patient][msg.sender] = _bit(Kind.GeneralHistory) | _bit(Kind.GeneralInformation);
        emit PatientAdmitted(patient, msg.sender);
    }

    /// The calling patient grants `grantee` the `kinds` until `expiresAt` (0: until revoked).
    function grantConsent(address grantee, uint16 kinds, uint40 expiresAt) external {
        _requireActive(msg.sender, Role.Patient);
        _checkKinds(kinds);
        if (grantee == msg.sender) revert SelfGrant();
        if (grantee == address(0)) revert ZeroAddress();
        (Role role, bool active) = registry.roleOf(grantee);
        if (role == Role.None) revert NotRegistered(grantee, Role.None);
        if (!active) revert InactiveAccount(grantee);
        if (expiresAt == 0) expiresAt = NO_EXPIRY;
        else if (expiresAt <= block.timestamp) revert InvalidExpiry(expiresAt);
        uint40[KIND_COUNT] storage grants = consent[msg.sender][grantee];
        for (uint8 k = 0; k < KIND_COUNT; k++) {
            if (kinds & (uint16(1) << k) != 0) grants[k] = expiresAt;
        }
        emit ConsentGranted(msg.sender, grantee, kinds, expiresAt);
    }

    /// The calling patient revokes `grantee`'s access to `kinds`.
    function revokeConsent(address grantee, uint16 kinds) external {
        _requireActive(msg.sender, Role.Patient);
        _checkKinds(kinds);
        uint40[KIND_COUNT] storage grants = consent[msg.sender][grantee];
        for (uint8 k = 0; k < KIND_COUNT; k++) {
            if (kinds & (uint16(1) << k) != 0) grants[k] = 0;
        }
        emit ConsentRevoked(msg.sender, grantee, kinds);
    }

    /// A regulator or researcher logs a request to read `kinds` of `patient`'s records.
    function requestAccess(address patient, uint16 kinds, bytes32 purpose) external returns (uint256 id) {
        _requireActive(msg.sender, Role.Regulator);
        _requirePatient(patient);
        _checkKinds(kinds);
        id = accessRequests.length;
        accessRequests.push(AccessRequest(msg.sender, uint40(block.timestamp), kinds, patient, purpose));
        requested[msg.sender][patient] |= kinds;
        emit AccessRequested(id, msg.sender, patient, kinds, purpose);
    }

    /// A ministry admin sets the kinds regulators and researchers may read after a request.
    function setRegulatorPolicy(uint16 kinds) external {
        _requireActive(msg.sender, Role.Admin);
        if (kinds & ~ALL_KINDS != 0) revert InvalidKinds(kinds);
        regulatorPolicy = kinds;
        emit RegulatorPolicySet(msg.sender, kinds);
    }

    // ---- reads ----------------------------------------------------------------------------

    /// The paper's record read.
    function healthRecordGet(uint40 id) external view returns (Record memory) {
        return _record(id);
    }

    /// The paper's report read: the content id and hash of a diagnostic report or image.
    function healthReportGet(uint40 id) external view returns (string memory cid, bytes32 contentHash) {
        Record storage r = _record(id);
        if (r.kind != Kind.DiagnosticReport && r.kind != Kind.ScannedImage) revert NotAReport(id);
        return (r.cid, r.contentHash);
    }

    /// How many records have `subject` as their patient (or identity owner).
    function recordCountOf(address subject) external view returns (uint256) {
        return recordsBySubject[subject].length;
    }

    /// Ids of `subject`'s records, oldest first, from `offset`, at most `limit`.
    function recordIdsOf(address subject, uint256 offset, uint256 limit) external view returns (uint40[] memory ids) {
        uint40[] storage all = recordsBySubject[subject];
        if (offset >= all.length) return new uint40[](0);
        uint256 end = offset + limit;
        if (end > all.length || end < offset) end = all.length;
        ids = new uint40[](end - offset);
        for (uint256 i = offset; i < end; i++) {
            ids[i - offset] = all[i];
        }
    }

    /// The correction chain `id` belongs to, from the original record to the current one.
    function historyOf(uint40 id) external view returns (uint40[] memory chain) {
        uint40 first = id;
        uint256 length = 1;
        while (_record(first).supersedes != 0) {
            first = records[first].supersedes;
            length++;
        }
        uint40 cur = id;
        while (_record(cur).supersededBy != 0) {
            cur = records[cur].supersededBy;
            length++;
        }
        chain = new uint40[](length);
        cur = first;
        for (uint256 i = 0; i < length; i++) {
            chain[i] = cur;
            cur = records[cur].supersededBy;
        }
    }

    /// The expiry of each kind `grantee` holds from `patient` (0: not granted).
    function consentOf(address patient, address grantee) external view returns (uint40[KIND_COUNT] memory) {
        return consent[patient][grantee];
    }

    /// Whether `grantee` holds an unexpired grant of `kind` from `patient`.
    function hasConsent(address patient, address grantee, Kind kind) public view returns (bool) {
        return block.timestamp < consent[patient][grantee][uint8(kind)];
    }

    function accessRequestCount() external view returns (uint256) {
        return accessRequests.length;
    }

    function accessRequestAt(uint256 id) external view returns (AccessRequest memory) {
        return accessRequests[id];
    }

    /// The read rule the off-chain store applies: the subject, the author, a grantee with an
    /// unexpired grant of the kind, or a regulator who logged a request for a kind the policy
    /// allows.
    function canRead(address reader, uint40 id) external view returns (bool) {
        Record storage r = _record(id);
        if (reader == r.patient || reader == r.author) return true;
        (Role role, bool active) = registry.roleOf(reader);
        if (!active) return false;
        if (hasConsent(r.patient, reader, r.kind)) return true;
        uint16 bit = _bit(r.kind);
        return role == Role.Regulator && regulatorPolicy & bit != 0 && requested[reader][r.patient] & bit != 0;
    }

    // ---- rules ----------------------------------------------------------------------------

    function _store(address patient, Kind kind, string calldata cid, bytes32 contentHash, uint40 supersedes)
        internal
        returns (uint40 id)
    {
        uint256 cidLength = bytes(cid).length;
        if (cidLength == 0 || cidLength > MAX_CID_LENGTH) revert InvalidCid(cidLength);
        if (contentHash == bytes32(0)) revert InvalidContentHash();
        _checkWrite(patient, kind);
        id = recordCount + 1;
        if (supersedes != 0) {
            Record storage old = _record(supersedes);
            if (old.patient != patient || old.kind != kind) revert SupersedeMismatch(supersedes);
            if (old.supersededBy != 0) revert AlreadySuperseded(supersedes, old.supersededBy);
            old.supersededBy = id;
        }
        recordCount = id;
        records[id] = Record(patient, uint40(block.timestamp), kind, msg.sender, supersedes, 0, contentHash, cid);
        recordsBySubject[patient].push(id);
        emit RecordAdded(id, patient, msg.sender, kind, supersedes, contentHash, cid);
    }

    /// The write table of docs/contracts.md (from the HealthChain access matrix).
    function _checkWrite(address patient, Kind kind) internal {
        (Role role, bool active) = registry.roleOf(msg.sender);
        if (role == Role.None) revert NotRegistered(msg.sender, Role.None);
        if (!active) revert InactiveAccount(msg.sender);
        if (kind == Kind.PatientIdentity) {
            _ownIdentity(patient, role, Role.Patient, kind);
        } else if (kind == Kind.DoctorIdentity) {
            _ownIdentity(patient, role, Role.Doctor, kind);
        } else if (kind == Kind.CenterIdentity) {
            _ownIdentity(patient, role, Role.DiagnosticCenter, kind);
        } else if (kind == Kind.InsurerIdentity) {
            _ownIdentity(patient, role, Role.Insurer, kind);
        } else {
            _requirePatient(patient);
            if (kind == Kind.Prescription || kind == Kind.Diagnosis) {
                _withConsent(patient, role, Role.Doctor, kind);
            } else if (kind == Kind.DiagnosticReport || kind == Kind.ScannedImage) {
                _withConsent(patient, role, Role.DiagnosticCenter, kind);
            } else if (kind == Kind.InsuranceStatus) {
                _withConsent(patient, role, Role.Insurer, kind);
            } else {
                // General history and general information: the admitting hospital, once.
                if (role != Role.Hospital) revert KindNotAllowed(kind, role);
                uint16 allowance = admissions[patient][msg.sender];
                uint16 bit = _bit(kind);
                if (allowance & bit == 0) revert NoAdmission(patient, msg.sender, kind);
                admissions[patient][msg.sender] = allowance & ~bit;
            }
        }
    }

    function _ownIdentity(address subject, Role role, Role required, Kind kind) internal view {
        if (role != required) revert KindNotAllowed(kind, role);
        if (subject != msg.sender) revert NotOwnIdentity(subject, msg.sender);
    }

    function _withConsent(address patient, Role role, Role required, Kind kind) internal view {
        if (role != required) revert KindNotAllowed(kind, role);
        uint40 expiresAt = consent[patient][msg.sender][uint8(kind)];
        if (expiresAt == 0) revert NoConsent(patient, msg.sender, kind);
        if (block.timestamp >= expiresAt) revert ConsentExpired(patient, msg.sender, kind, expiresAt);
    }

    function _requireActive(address account, Role role) internal view {
        (Role actual, bool active) = registry.roleOf(account);
        if (actual != role) revert CallerNotRole(account, role);
        if (!active) revert InactiveAccount(account);
    }

    function _requirePatient(address patient) internal view {
        (Role role, bool active) = registry.roleOf(patient);
        if (role != Role.Patient) revert NotRegistered(patient, Role.Patient);
        if (!active) revert InactiveAccount(patient);
    }

    function _record(uint40 id) internal view returns (Record storage r) {
        r = records[id];
        if (id == 0 || id > recordCount) revert UnknownRecord(id);
    }

    function _checkKinds(uint16 kinds) internal pure {
        if (kinds == 0 || kinds & ~ALL_KINDS != 0) revert InvalidKinds(kinds);
    }

    function _bit(Kind kind) internal pure returns (uint16) {
        return uint16(1) << uint8(kind);
    }
}
