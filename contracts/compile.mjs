// Compiles contracts/src/*.sol with the pinned solc-js and writes one artifact per deployable
// contract to contracts/artifacts/NAME.json. With --check it compiles and exits 1 if a
// committed artifact differs from the fresh output (stale artifacts), writing nothing.

import { createHash } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import solc from "solc";

const here = path.dirname(fileURLToPath(import.meta.url));
const SRC = path.join(here, "src");
const OUT = path.join(here, "artifacts");
/// The contracts that get deployed; the others are abstract bases and types.
const DEPLOYABLE = [
  "HealthRegistry",
  "PatientRecord",
  "Admin",
  "AccountIngress",
  "AccountRules",
  "NodeIngress",
  "NodeRules",
];
const EVM_VERSION = "cancun";
const OPTIMIZER = { enabled: true, runs: 200 };

function sources() {
  const files = readdirSync(SRC).filter((f) => f.endsWith(".sol")).sort();
  return Object.fromEntries(files.map((f) => [f, { content: readFileSync(path.join(SRC, f), "utf8") }]));
}

/// SHA-256 over every source file (name, NUL, content, NUL), sorted by name: the Rust test
/// recomputes it to catch an edited source with stale artifacts without running solc.
export function sourceHash(srcs) {
  const h = createHash("sha256");
  for (const name of Object.keys(srcs).sort()) {
    h.update(name);
    h.update("\0");
    h.update(srcs[name].content);
    h.update("\0");
  }
  return "0x" + h.digest("hex");
}

export function compileAll() {
  const srcs = sources();
  const input = {
    language: "Solidity",
    sources: srcs,
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: OPTIMIZER,
      // No metadata hash: the bytecode then depends only on the sources and settings.
      metadata: { bytecodeHash: "none", appendCBOR: false },
      outputSelection: {
        "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.methodIdentifiers"] },
      },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const diagnostics = output.errors ?? [];
  const errors = diagnostics.filter((e) => e.severity === "error");
  if (errors.length > 0) {
    throw new Error(`solc failed:\n${errors.map((e) => e.formattedMessage).join("\n")}`);
  }
  for (const w of diagnostics.filter((e) => e.severity !== "error")) {
    console.error(w.formattedMessage);
  }
  const hash = sourceHash(srcs);
  const artifacts = {};
  for (const name of DEPLOYABLE) {
    const contract = output.contracts[`${name}.sol`]?.[name];
    if (!contract) throw new Error(`solc produced no ${name}`);
    artifacts[name] = {
      contractName: name,
      compiler: solc.version(),
      evmVersion: EVM_VERSION,
      optimizer: OPTIMIZER,
      sourceHash: hash,
      abi: contract.abi,
      bytecode: "0x" + contract.evm.bytecode.object,
      deployedBytecode: "0x" + contract.evm.deployedBytecode.object,
      methodIdentifiers: contract.evm.methodIdentifiers,
    };
  }
  return artifacts;
}

function render(artifact) {
  return JSON.stringify(artifact, null, 2) + "\n";
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes("--check");
  const artifacts = compileAll();
  let stale = [];
  for (const [name, artifact] of Object.entries(artifacts)) {
    const file = path.join(OUT, `${name}.json`);
    const fresh = render(artifact);
    const committed = existsSync(file) ? readFileSync(file, "utf8") : null;
    if (check) {
      if (committed !== fresh) stale.push(name);
      continue;
    }
    mkdirSync(OUT, { recursive: true });
    writeFileSync(file, fresh);
    const size = (artifact.deployedBytecode.length - 2) / 2;
    console.log(`${name}: ${size} bytes of runtime code (limit 24576) -> ${path.relative(process.cwd(), file)}`);
  }
  if (stale.length > 0) {
    console.error(`stale artifacts: ${stale.join(", ")} (run scripts/compile and commit contracts/artifacts)`);
    process.exit(1);
  }
  if (check) console.log(`artifacts are current (solc ${solc.version()})`);
}
