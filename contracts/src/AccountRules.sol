// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import "./PermissioningIngress.sol";

/// @title The account allowlist behind `AccountIngress` (`0x…8801` in genesis): a
///        transaction is allowed when its sender is listed.
contract AccountRules is PermissioningRules {
    address[] internal accounts;
    /// 1-based position of an account in `accounts`; 0 when not listed.
    mapping(address => uint256) internal accountIndex;

    event AccountAdded(bool accountAdded, address accountAddress);
    event AccountRemoved(bool accountRemoved, address accountAddress);

    error ZeroAccount();
    error IndexOutOfRange(uint256 index, uint256 size);

    /// The deployer is not added (unlike Besu's AccountRules): in genesis it is a placeholder.
    constructor(address ingress_, address[] memory initialAccounts) PermissioningRules(ingress_) {
        for (uint256 i = 0; i < initialAccounts.length; i++) {
            emit AccountAdded(_add(initialAccounts[i]), initialAccounts[i]);
        }
    }

    /// Selector 0x936421d5; only `sender` matters.
    function transactionAllowed(
        address sender,
        address, // target
        uint256, // value
        uint256, // gasPrice
        uint256, // gasLimit
        bytes calldata // payload
    ) external view returns (bool) {
        return accountPermitted(sender);
    }

    function accountPermitted(address account) public view returns (bool) {
        return accountIndex[account] != 0;
    }

    function getAccounts() external view returns (address[] memory) {
        return accounts;
    }

    function getSize() external view returns (uint256) {
        return accounts.length;
    }

    function getByIndex(uint256 index) external view returns (address account) {
        if (index >= accounts.length) revert IndexOutOfRange(index, accounts.length);
        return accounts[index];
    }

    function addAccount(address account) external onlyAdmin notReadOnly returns (bool) {
        bool added = _add(account);
        emit AccountAdded(added, account);
        return added;
    }

    /// Blocked in read-only mode too (Besu's is not).
    function addAccounts(address[] calldata list) external onlyAdmin notReadOnly returns (bool) {
        bool all = true;
        for (uint256 i = 0; i < list.length; i++) {
            bool added = _add(list[i]);
            emit AccountAdded(added, list[i]);
            all = all && added;
        }
        return all;
    }

    function removeAccount(address account) external onlyAdmin notReadOnly returns (bool) {
        uint256 index = accountIndex[account];
        if (index != 0) {
            address last = accounts[accounts.length - 1];
            accounts[index - 1] = last;
            accountIndex[last] = index;
            accounts.pop();
            delete accountIndex[account];
        }
        emit AccountRemoved(index != 0, account);
        return index != 0;
    }

    function _add(address account) private returns (bool) {
        if (account == address(0)) revert ZeroAccount();
        if (accountIndex[account] != 0) return false;
        accounts.push(account);
        accountIndex[account] = accounts.length;
        return true;
    }
}
