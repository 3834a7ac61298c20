// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title The permissioning admins, shared by both ingress contracts (`0x…8800` in genesis).
/// @notice Admins may change the ingress registries, the rules lists and this list. An admin
///         cannot remove itself, so the list is never empty.
contract Admin {
    address[] internal admins;
    /// 1-based position of an admin in `admins`; 0 when not an admin.
    mapping(address => uint256) internal adminIndex;

    event AdminAdded(bool adminAdded, address account, string message);
    event AdminRemoved(bool adminRemoved, address account);

    error NotAdmin(address caller);
    error NoAdmins();
    error ZeroAdmin();
    error CannotRemoveSelf(address account);

    string private constant ADDED = "Admin account added successfully";
    string private constant ALREADY = "Account is already an Admin";
    string private constant SELF = "Adding own account as Admin is not permitted";

    /// The deployer is not added: in genesis it is a placeholder address.
    constructor(address[] memory initialAdmins) {
        if (initialAdmins.length == 0) revert NoAdmins();
        for (uint256 i = 0; i < initialAdmins.length; i++) {
            bool added = _add(initialAdmins[i]);
            emit AdminAdded(added, initialAdmins[i], added ? ADDED : ALREADY);
        }
    }

    modifier onlyAdmin() {
        if (adminIndex[msg.sender] == 0) revert NotAdmin(msg.sender);
        _;
    }

    function isAuthorized(address account) external view returns (bool) {
        return adminIndex[account] != 0;
    }

    function getAdmins() external view returns (address[] memory) {
        return admins;
    }

    /// Adding oneself is refused with an event, not a revert (as Besu's Admin does).
    function addAdmin(address account) external onlyAdmin returns (bool) {
        return _addFrom(account);
    }

    function addAdmins(address[] calldata accounts) external onlyAdmin returns (bool) {
        bool all = true;
        for (uint256 i = 0; i < accounts.length; i++) {
            all = _addFrom(accounts[i]) && all;
        }
        return all;
    }

    function removeAdmin(address account) external onlyAdmin returns (bool) {
        if (account == msg.sender) revert CannotRemoveSelf(account);
        uint256 index = adminIndex[account];
        if (index != 0) {
            address last = admins[admins.length - 1];
            admins[index - 1] = last;
            adminIndex[last] = index;
            admins.pop();
            delete adminIndex[account];
        }
        emit AdminRemoved(index != 0, account);
        return index != 0;
    }

    function _addFrom(address account) private returns (bool) {
        if (account == msg.sender) {
            emit AdminAdded(false, account, SELF);
            return false;
        }
        bool added = _add(account);
        emit AdminAdded(added, account, added ? ADDED : ALREADY);
        return added;
    }

    function _add(address account) private returns (bool) {
        if (account == address(0)) revert ZeroAdmin();
        if (adminIndex[account] != 0) return false;
        admins.push(account);
        adminIndex[account] = admins.length;
        return true;
    }
}
