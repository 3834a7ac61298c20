// Compiles contracts/E2E.sol with solc-js (Cancun) and returns { abi, bytecode, deployedBytecode }.
// Run directly (`node js/compile.mjs OUT.json`) it writes the artifact for the Python suite.

import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import solc from "solc";

const here = path.dirname(fileURLToPath(import.meta.url));
export const CONTRACT_PATH = path.join(here, "..", "contracts", "E2E.sol");

export function compileE2E() {
  const input = {
    language: "Solidity",
    sources: { "E2E.sol": { content: readFileSync(CONTRACT_PATH, "utf8") } },
    settings: {
      evmVersion: "cancun",
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  if (errors.length > 0) {
    throw new Error(`solc failed:\n${errors.map((e) => e.formattedMessage).join("\n")}`);
  }
  const contract = output.contracts["E2E.sol"].E2E;
  return {
    contractName: "E2E",
    compiler: solc.version(),
    evmVersion: "cancun",
    abi: contract.abi,
    bytecode: "0x" + contract.evm.bytecode.object,
    deployedBytecode: "0x" + contract.evm.deployedBytecode.object,
  };
}

// The artifact: the file named by HC_ARTIFACT when the runner compiled it already, else a
// fresh compile.
let cached;
export function artifact() {
  if (cached) return cached;
  const file = process.env.HC_ARTIFACT;
  if (file) {
    try {
      cached = JSON.parse(readFileSync(file, "utf8"));
      return cached;
    } catch (err) {
      if (err.code !== "ENOENT") throw err;
    }
  }
  cached = compileE2E();
  return cached;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (!out) {
    console.error("usage: node js/compile.mjs OUT.json");
    process.exit(2);
  }
  const art = compileE2E();
  writeFileSync(out, JSON.stringify(art, null, 2));
  console.log(`compiled E2E.sol with solc ${art.compiler} -> ${out}`);
}
