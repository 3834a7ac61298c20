// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// The end-to-end suites' contract: a counter and a keyed registry with indexed events,
/// reverts of every kind a client must decode, and calls whose gas estimate is not trivial
/// (storage refunds, the 63/64 rule).
contract E2E {
    /// Raised when a caller asks for a value outside the allowed range.
    error OutOfRange(address caller, uint256 value, uint256 max);
    /// A custom error without arguments.
    error Forbidden();

    /// Every registry write: who wrote which key, the new value and the running total.
    event Registered(address indexed writer, uint256 indexed key, uint256 value, uint256 total);
    /// Counter changes.
    event Incremented(address indexed by, uint256 newCount);

    address public immutable owner;
    uint256 public count;
    uint256 public total;
    mapping(uint256 => uint256) public values;
    mapping(address => uint256) public writes;

    constructor(uint256 start) {
        owner = msg.sender;
        count = start;
    }

    function increment() external {
        count += 1;
        emit Incremented(msg.sender, count);
    }

    function register(uint256 key, uint256 value) external {
        values[key] = value;
        total += value;
        writes[msg.sender] += 1;
        emit Registered(msg.sender, key, value, total);
    }

    /// Zeroes a slot: the refund makes the gas a transaction needs exceed what it uses.
    function clear(uint256 key) external {
        delete values[key];
    }

    /// View: a pure function of state and arguments.
    function describe(uint256 key) external view returns (uint256 value, uint256 sum, address who) {
        return (values[key], total + key, owner);
    }

    /// Reverts with a custom error carrying arguments when `value > max`.
    function checked(uint256 value, uint256 max) external view returns (uint256) {
        if (value > max) revert OutOfRange(msg.sender, value, max);
        return value;
    }

    /// Reverts with `Forbidden()` unless called by the deployer.
    function onlyOwner() external view returns (bool) {
        if (msg.sender != owner) revert Forbidden();
        return true;
    }

    /// Reverts with `Error(string)`.
    function requirePositive(uint256 value) external pure returns (uint256) {
        require(value > 0, "value must be positive");
        return value;
    }

    /// Panics with `Panic(0x12)` (division by zero).
    function divide(uint256 a, uint256 b) external pure returns (uint256) {
        return a / b;
    }

    /// A state-changing call that reverts (for a mined failed transaction).
    function failWrite(uint256 value) external {
        count += value;
        revert OutOfRange(msg.sender, value, 0);
    }

    /// Burns gas in a loop, then writes.
    function burn(uint256 rounds) public returns (uint256 acc) {
        for (uint256 i = 0; i < rounds; i++) {
            acc = uint256(keccak256(abi.encode(acc, i)));
        }
        values[rounds] = acc;
    }

    /// Calls `burn` through an external self-call, so only 63/64 of the remaining gas is
    /// forwarded: an estimate of exactly the gas used would fail.
    function nestedBurn(uint256 rounds) external returns (uint256) {
        return this.burn(rounds);
    }
}
