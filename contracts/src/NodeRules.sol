// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import "./NodeIngress.sol";

/// One allowed node: its id as 128 lowercase hex characters (the 64-byte public key, no
/// `0x`), its host as the client spells it (e.g. "10.0.0.7") and its listening port.
struct Enode {
    string enodeId;
    string host;
    uint16 port;
}

/// @title The node allowlist behind `NodeIngress` (`0x…9901` in genesis).
/// @notice `connectionAllowed(id, host, port)` is an exact match on all three, except that
///         port 0 matches any port for that id and host: a node asks with port 0 about an
///         inbound connection, whose listening port the transport does not learn. A stored
///         port is therefore never 0.
contract NodeRules is PermissioningRules {
    Enode[] internal allowlist;
    /// 1-based position in `allowlist` by keccak256(id . host . port); 0 when absent. The
    /// packing is unambiguous because the id has a fixed length and the port is last.
    mapping(bytes32 => uint256) internal enodeIndex;
    /// How many entries have this keccak256(id . host), whatever their port (the port-0 rule).
    mapping(bytes32 => uint256) internal hostEntries;

    event NodeAdded(bool nodeAdded, string enodeId, string enodeHost, uint16 enodePort);
    event NodeRemoved(bool nodeRemoved, string enodeId, string enodeHost, uint16 enodePort);

    error InvalidEnodeId(string enodeId);
    error EmptyHost();
    error ZeroPort();
    error IndexOutOfRange(uint256 index, uint256 size);

    constructor(address ingress_, Enode[] memory initialNodes) PermissioningRules(ingress_) {
        for (uint256 i = 0; i < initialNodes.length; i++) {
            Enode memory e = initialNodes[i];
            emit NodeAdded(_add(e.enodeId, e.host, e.port), e.enodeId, e.host, e.port);
        }
    }

    /// Selector 0x45a59e5b.
    function connectionAllowed(string calldata enodeId, string calldata enodeHost, uint16 enodePort)
        external
        view
        returns (bool)
    {
        return enodePermitted(enodeId, enodeHost, enodePort);
    }

    function enodePermitted(string calldata enodeId, string calldata host, uint16 port)
        public
        view
        returns (bool)
    {
        if (port == 0) return hostEntries[keccak256(abi.encodePacked(enodeId, host))] != 0;
        return enodeIndex[keccak256(abi.encodePacked(enodeId, host, port))] != 0;
    }

    function getSize() external view returns (uint256) {
        return allowlist.length;
    }

    function getByIndex(uint256 index) external view returns (string memory enodeId, string memory host, uint16 port) {
        if (index >= allowlist.length) revert IndexOutOfRange(index, allowlist.length);
        Enode storage e = allowlist[index];
        return (e.enodeId, e.host, e.port);
    }

    function addEnode(string calldata enodeId, string calldata host, uint16 port)
        external
        onlyAdmin
        notReadOnly
        returns (bool)
    {
        bool added = _add(enodeId, host, port);
        emit NodeAdded(added, enodeId, host, port);
        if (added) _notify(false);
        return added;
    }

    function removeEnode(string calldata enodeId, string calldata host, uint16 port)
        external
        onlyAdmin
        notReadOnly
        returns (bool)
    {
        bytes32 key = keccak256(abi.encodePacked(enodeId, host, port));
        uint256 index = enodeIndex[key];
        if (index != 0) {
            Enode storage last = allowlist[allowlist.length - 1];
            enodeIndex[keccak256(abi.encodePacked(last.enodeId, last.host, last.port))] = index;
            allowlist[index - 1] = last;
            allowlist.pop();
            delete enodeIndex[key];
            hostEntries[keccak256(abi.encodePacked(enodeId, host))] -= 1;
        }
        emit NodeRemoved(index != 0, enodeId, host, port);
        if (index != 0) _notify(true);
        return index != 0;
    }

    function _add(string memory enodeId, string memory host, uint16 port) private returns (bool) {
        _checkEnodeId(enodeId);
        if (bytes(host).length == 0) revert EmptyHost();
        if (port == 0) revert ZeroPort();
        bytes32 key = keccak256(abi.encodePacked(enodeId, host, port));
        if (enodeIndex[key] != 0) return false;
        allowlist.push(Enode(enodeId, host, port));
        enodeIndex[key] = allowlist.length;
        hostEntries[keccak256(abi.encodePacked(enodeId, host))] += 1;
        return true;
    }

    /// Tells the ingress (which emits NodePermissionsUpdated) when this is its rules contract;
    /// a replacement being filled before it is registered changes nothing live.
    function _notify(bool addsRestrictions) private {
        if (_isActive()) NodeIngress(address(ingress)).emitRulesChangeEvent(addsRestrictions);
    }

    function _checkEnodeId(string memory enodeId) private pure {
        bytes memory id = bytes(enodeId);
        if (id.length != 128) revert InvalidEnodeId(enodeId);
        for (uint256 i = 0; i < 128; i++) {
            bytes1 c = id[i];
            if (!((c >= "0" && c <= "9") || (c >= "a" && c <= "f"))) revert InvalidEnodeId(enodeId);
        }
    }
}
