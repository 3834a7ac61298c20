//! The committed artifacts (health and permissioning) match the sources, fit the size limit,
//! and the health contracts pre-deploy into a state where the registry answers for its admin.

use std::path::PathBuf;

use alloy_primitives::{Address, B256, U256, keccak256};
use healthchain_contracts::{
    Artifact, CODE_SIZE_LIMIT, RECORDS_ADDRESS, REGISTRY_ADDRESS, Role, predeploy,
    predeploy_alloc_json, source_hash,
};

fn sources_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts/src")
}

#[test]
fn artifacts_were_compiled_from_the_current_sources() {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(sources_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "sol") {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            files.push((name, std::fs::read(&path).unwrap()));
        }
    }
    assert!(
        files.len() >= 6,
        "contracts/src has {} .sol files",
        files.len()
    );
    let hash = source_hash(files.iter().map(|(n, c)| (n.as_str(), c.as_slice())));
    let artifacts = Artifact::all().unwrap();
    assert_eq!(artifacts.len(), 7);
    for artifact in artifacts {
        assert_eq!(
            artifact.source_hash, hash,
            "contracts/artifacts/{}.json is stale: run scripts/compile and commit the artifacts",
            artifact.name
        );
        assert!(
            artifact.compiler.starts_with("0.8.30+"),
            "{}",
            artifact.compiler
        );
    }
}

#[test]
fn runtime_code_fits_the_eip170_limit() {
    for artifact in Artifact::all().unwrap() {
        let size = artifact.deployed_bytecode.len();
        println!("size: {} runtime code = {size} bytes", artifact.name);
        assert!(size > 1000, "{} is only {size} bytes", artifact.name);
        assert!(size <= CODE_SIZE_LIMIT, "{} is {size} bytes", artifact.name);
    }
}

#[test]
fn predeploy_registers_the_admin_and_wires_the_registry() {
    let admin: Address = "0x97e7a19ea732e04bB013E0b55487E6D40841C709"
        .parse()
        .unwrap();
    let admin_ref = keccak256("ministry admin");
    let accounts = predeploy(admin, admin_ref, 1_700_000_000).unwrap();
    assert_eq!(accounts.len(), 2);
    let registry = &accounts[0];
    assert_eq!(registry.address, REGISTRY_ADDRESS);
    // parties[admin] lives at keccak256(admin . slot 0): role, active, time and registrar
    // packed into the first word, the identity commitment in the next.
    let mut key = [0u8; 64];
    key[12..32].copy_from_slice(admin.as_slice());
    let base = U256::from_be_bytes(keccak256(key).0);
    let packed = registry
        .storage
        .iter()
        .find(|(slot, _)| *slot == B256::from(base))
        .map(|(_, v)| *v)
        .expect("parties[admin] is written");
    assert_eq!(packed & U256::from(0xff), U256::from(Role::Admin as u8));
    assert_eq!((packed >> 8) & U256::from(0xff), U256::from(1)); // active
    assert_eq!(
        (packed >> 16) & U256::from(u64::MAX >> 24),
        U256::from(1_700_000_000u64)
    );
    let ref_slot = B256::from(base + U256::from(1));
    assert!(
        registry
            .storage
            .contains(&(ref_slot, U256::from_be_bytes(admin_ref.0)))
    );
    assert_eq!(registry.storage.len(), 2);

    let records = &accounts[1];
    assert_eq!(records.address, RECORDS_ADDRESS);
    assert!(records.storage.is_empty());
    // The immutable registry address is baked into the runtime code.
    let code = records.code.as_ref();
    assert!(
        code.windows(20).any(|w| w == REGISTRY_ADDRESS.as_slice()),
        "PatientRecord's code does not embed the registry address"
    );
    assert_ne!(records.code, Artifact::records().unwrap().deployed_bytecode);

    let json = predeploy_alloc_json(admin, admin_ref, 0).unwrap();
    let alloc =
        healthchain_chainspec::parse_alloc(&serde_json::Value::Object(json), "alloc").unwrap();
    assert_eq!(alloc[&REGISTRY_ADDRESS].code, registry.code);
    assert_eq!(alloc[&RECORDS_ADDRESS].code, records.code);
    assert!(predeploy(Address::ZERO, admin_ref, 0).is_err());
}
