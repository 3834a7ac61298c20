//! HealthChain's contracts as the node, the command line and the tests see them: the compiled
//! artifacts under `contracts/artifacts/` (built by `scripts/compile` with the pinned solc-js),
//! alloy `sol!` bindings generated from their ABIs, the record [`Kind`]s and [`Role`]s with
//! their command-line names, and the genesis pre-deployment that puts the contracts in a
//! chain's first state ([`predeploy`], [`permissioning_predeploy`]).
//!
//! Two health contracts are deployed: [`HealthRegistry`] (the role registry with the paper's
//! `Doctor`, `DiagnosticCenter` and `Patient` functions) and [`PatientRecord`] (records,
//! consent, admissions and regulator access requests), which reads roles from the registry.
//! Five more implement on-chain permissioning with Besu's interfaces ([`permissioning`]):
//! [`NodeIngress`] and [`AccountIngress`] at the fixed addresses nodes consult, the
//! replaceable [`NodeRules`] and [`AccountRules`] lists behind them, and the shared
//! [`Admin`] list; [`permissioning_predeploy`] puts them in genesis. See `docs/contracts.md`.

mod kinds;
pub mod permissioning;
mod predeploy;

pub use kinds::{ALL_KINDS, Kind, ParseError, Role, kinds_mask, kinds_of_mask};
pub use permissioning::{
    ACCOUNT_INGRESS_ADDRESS, ACCOUNT_RULES_ADDRESS, AccountIngress, AccountRules, Admin,
    NODE_INGRESS_ADDRESS, NODE_RULES_ADDRESS, NodeIngress, NodeRules, PERMISSIONING_ADMIN_ADDRESS,
    PermissionedNode, PermissioningGenesis, permissioning_alloc_json, permissioning_predeploy,
    sender_only_account_rules,
};
pub use predeploy::{
    PredeployError, PredeployedAccount, RECORDS_ADDRESS, REGISTRY_ADDRESS, predeploy,
    predeploy_alloc_json,
};

use alloy_primitives::{B256, Bytes};

/// `sol!` bindings generated from the artifacts' ABIs: calls, events, custom errors and the
/// `Party` / `Record` / `AccessRequest` structs.
#[allow(missing_docs)]
pub mod bindings {
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        HealthRegistry,
        "../../contracts/artifacts/HealthRegistry.json"
    );

    alloy_sol_types::sol!(
        #[sol(all_derives)]
        PatientRecord,
        "../../contracts/artifacts/PatientRecord.json"
    );
}

pub use bindings::{HealthRegistry, PatientRecord};

/// The EIP-170 limit on deployed code (bytes).
pub const CODE_SIZE_LIMIT: usize = 24_576;

/// One compiled contract, as `scripts/compile` wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Contract name.
    pub name: &'static str,
    /// solc version string.
    pub compiler: String,
    /// SHA-256 over the sources it was compiled from (see `contracts/compile.mjs`).
    pub source_hash: B256,
    /// Creation code (constructor arguments are appended).
    pub bytecode: Bytes,
    /// Runtime code as compiled (immutables still zero).
    pub deployed_bytecode: Bytes,
}

/// Why an artifact file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("contracts/artifacts/{name}.json: {reason}")]
pub struct ArtifactError {
    name: &'static str,
    reason: String,
}

const REGISTRY_JSON: &str = include_str!("../../../contracts/artifacts/HealthRegistry.json");
const RECORDS_JSON: &str = include_str!("../../../contracts/artifacts/PatientRecord.json");
const ADMIN_JSON: &str = include_str!("../../../contracts/artifacts/Admin.json");
const ACCOUNT_INGRESS_JSON: &str = include_str!("../../../contracts/artifacts/AccountIngress.json");
const ACCOUNT_RULES_JSON: &str = include_str!("../../../contracts/artifacts/AccountRules.json");
const NODE_INGRESS_JSON: &str = include_str!("../../../contracts/artifacts/NodeIngress.json");
const NODE_RULES_JSON: &str = include_str!("../../../contracts/artifacts/NodeRules.json");

impl Artifact {
    /// The `HealthRegistry` artifact.
    pub fn registry() -> Result<Self, ArtifactError> {
        Self::parse("HealthRegistry", REGISTRY_JSON)
    }

    /// The `PatientRecord` artifact.
    pub fn records() -> Result<Self, ArtifactError> {
        Self::parse("PatientRecord", RECORDS_JSON)
    }

    /// The permissioning `Admin` artifact.
    pub fn admin() -> Result<Self, ArtifactError> {
        Self::parse("Admin", ADMIN_JSON)
    }

    /// The `AccountIngress` artifact.
    pub fn account_ingress() -> Result<Self, ArtifactError> {
        Self::parse("AccountIngress", ACCOUNT_INGRESS_JSON)
    }

    /// The `AccountRules` artifact.
    pub fn account_rules() -> Result<Self, ArtifactError> {
        Self::parse("AccountRules", ACCOUNT_RULES_JSON)
    }

    /// The `NodeIngress` artifact.
    pub fn node_ingress() -> Result<Self, ArtifactError> {
        Self::parse("NodeIngress", NODE_INGRESS_JSON)
    }

    /// The `NodeRules` artifact.
    pub fn node_rules() -> Result<Self, ArtifactError> {
        Self::parse("NodeRules", NODE_RULES_JSON)
    }

    /// Every deployable contract's artifact, in `contracts/compile.mjs`'s order.
    pub fn all() -> Result<Vec<Self>, ArtifactError> {
        Ok(vec![
            Self::registry()?,
            Self::records()?,
            Self::admin()?,
            Self::account_ingress()?,
            Self::account_rules()?,
            Self::node_ingress()?,
            Self::node_rules()?,
        ])
    }

    fn parse(name: &'static str, text: &str) -> Result<Self, ArtifactError> {
        let err = |reason: String| ArtifactError { name, reason };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        let field = |key: &str| {
            value[key]
                .as_str()
                .ok_or_else(|| err(format!("missing string field {key}")))
        };
        let hex = |key: &str| -> Result<Bytes, ArtifactError> {
            field(key)?
                .parse::<Bytes>()
                .map_err(|e| err(format!("{key}: {e}")))
        };
        Ok(Self {
            name,
            compiler: field("compiler")?.to_string(),
            source_hash: field("sourceHash")?
                .parse()
                .map_err(|e| err(format!("sourceHash: {e}")))?,
            bytecode: hex("bytecode")?,
            deployed_bytecode: hex("deployedBytecode")?,
        })
    }
}

/// The SHA-256 that `contracts/compile.mjs` records as `sourceHash`: over each source file,
/// sorted by name, its name, a NUL, its content and a NUL.
pub fn source_hash<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> B256 {
    use sha2::Digest;
    let mut files: Vec<_> = files.into_iter().collect();
    files.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = sha2::Sha256::new();
    for (name, content) in files {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(content);
        hasher.update([0]);
    }
    B256::from_slice(&hasher.finalize())
}
