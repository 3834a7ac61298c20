// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

// On-chain permissioning with Besu's interfaces (EEA client spec v6): two ingress contracts
// at fixed addresses (`NodeIngress`, `AccountIngress`) that Besu-style clients call, each a
// small registry naming the current rules contract and the `Admin` contract, so both can be
// replaced without touching the addresses the nodes are configured with.

// The version every permissioning contract reports: 1.0.0 packed as MMMmmmppp.
uint256 constant PERMISSIONING_VERSION = 1_000_000;
// The registry names Besu's Ingress uses.
bytes32 constant RULES_NAME = "rules";
bytes32 constant ADMIN_NAME = "administration";

/// The caller is not an admin (as the ingress's registered `Admin` contract says).
error NotAuthorized(address caller);

/// What an ingress asks the registered `Admin` contract.
interface PermissioningAdmin {
    function isAuthorized(address account) external view returns (bool);
}

/// @title The name→address registry behind each ingress contract (Besu's `Ingress`).
abstract contract PermissioningIngress {
    bytes32 public constant RULES_CONTRACT = RULES_NAME;
    bytes32 public constant ADMIN_CONTRACT = ADMIN_NAME;

    mapping(bytes32 => address) internal registry;
    bytes32[] internal contractKeys;
    /// 1-based position of a name in `contractKeys`; 0 when absent.
    mapping(bytes32 => uint256) internal keyIndex;

    event RegistryUpdated(address contractAddress, bytes32 contractName);

    error ZeroContractName();
    error ZeroContractAddress();
    error UnknownContract(bytes32 contractName);
    /// The Admin contract may be replaced but not removed: without it nobody could ever
    /// change this registry again.
    error AdminContractRequired();

    /// `admin` must be non-zero; `rules` may be zero (none registered yet).
    constructor(address admin, address rules) {
        _set(ADMIN_CONTRACT, admin);
        if (rules != address(0)) _set(RULES_CONTRACT, rules);
    }

    modifier onlyAuthorized() {
        if (!isAuthorized(msg.sender)) revert NotAuthorized(msg.sender);
        _;
    }

    function getContractVersion() external pure returns (uint256) {
        return PERMISSIONING_VERSION;
    }

    function getContractAddress(bytes32 name) external view returns (address) {
        return registry[name];
    }

    function getAllContractKeys() external view returns (bytes32[] memory) {
        return contractKeys;
    }

    function getSize() external view returns (uint256) {
        return contractKeys.length;
    }

    /// Whether `account` is an admin. Unlike Besu's Ingress, which allows everyone while no
    /// Admin contract is registered, this fails closed; the constructor always registers one.
    function isAuthorized(address account) public view returns (bool) {
        address admin = registry[ADMIN_CONTRACT];
        return admin != address(0) && PermissioningAdmin(admin).isAuthorized(account);
    }

    function setContractAddress(bytes32 name, address addr) external onlyAuthorized returns (bool) {
        _set(name, addr);
        return true;
    }

    function removeContract(bytes32 name) external onlyAuthorized returns (bool) {
        uint256 index = keyIndex[name];
        if (index == 0) revert UnknownContract(name);
        if (name == ADMIN_CONTRACT) revert AdminContractRequired();
        bytes32 last = contractKeys[contractKeys.length - 1];
        contractKeys[index - 1] = last;
        keyIndex[last] = index;
        contractKeys.pop();
        delete keyIndex[name];
        delete registry[name];
        emit RegistryUpdated(address(0), name);
        return true;
    }

    function _set(bytes32 name, address addr) private {
        if (name == bytes32(0)) revert ZeroContractName();
        if (addr == address(0)) revert ZeroContractAddress();
        if (keyIndex[name] == 0) {
            contractKeys.push(name);
            keyIndex[name] = contractKeys.length;
        }
        registry[name] = addr;
        emit RegistryUpdated(addr, name);
    }
}

/// @title What both rules contracts share: their ingress, admin checks through it, and
///        read-only mode (a freeze on changes, e.g. while a replacement is being prepared).
abstract contract PermissioningRules {
    PermissioningIngress public immutable ingress;
    bool internal readOnly;

    event ReadOnlyModeChanged(bool readOnly);

    error InReadOnlyMode();
    error NotInReadOnlyMode();

    constructor(address ingress_) {
        ingress = PermissioningIngress(ingress_);
    }

    modifier onlyAdmin() {
        if (!ingress.isAuthorized(msg.sender)) revert NotAuthorized(msg.sender);
        _;
    }

    modifier notReadOnly() {
        if (readOnly) revert InReadOnlyMode();
        _;
    }

    function getContractVersion() external pure returns (uint256) {
        return PERMISSIONING_VERSION;
    }

    function isReadOnly() external view returns (bool) {
        return readOnly;
    }

    function enterReadOnly() external onlyAdmin notReadOnly returns (bool) {
        readOnly = true;
        emit ReadOnlyModeChanged(true);
        return true;
    }

    function exitReadOnly() external onlyAdmin returns (bool) {
        if (!readOnly) revert NotInReadOnlyMode();
        readOnly = false;
        emit ReadOnlyModeChanged(false);
        return true;
    }

    /// Whether this contract is the one its ingress currently consults.
    function _isActive() internal view returns (bool) {
        return ingress.getContractAddress(RULES_NAME) == address(this);
    }
}
