//! The local allowlists of `permissions_config.toml`, with Besu's semantics
//! (`AccountLocalConfigPermissioningController`, `NodeLocalConfigPermissioningController`)
//! and its file persistence (`AllowlistPersistor`).
//!
//! The file has two top-level keys, each an array of strings; either list may be enabled
//! on its own, and both may live in the same file:
//!
//! ```toml
//! accounts-allowlist = ["0xfe3b557e8fb62b89f4916b721be55ceb828dbd73"]
//! nodes-allowlist = ["enode://6f8a…1d0c@192.168.0.9:30303"]
//! ```
//!
//! A present key with an empty array enables that list with nothing allowed. Changes made
//! through [`LocalPermissions`] are written back to the file, one line per key, atomically.

use std::collections::HashSet;
use std::fmt;
use std::io::Write as _;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use alloy_primitives::{Address, hex};
use parking_lot::{Mutex, RwLock};

/// The TOML key of the account allowlist.
pub const ACCOUNTS_KEY: &str = "accounts-allowlist";
/// The TOML key of the node allowlist.
pub const NODES_KEY: &str = "nodes-allowlist";

// ---------------------------------------------------------------------------------------
// Enode URLs
// ---------------------------------------------------------------------------------------

/// A node's listening endpoint, Besu's `enode://<id>@<host>:<port>[?discport=N]`.
///
/// Two URLs name the same allowlist entry when their id, host and listening port agree
/// ([`EnodeUrl::same_endpoint`]); the discovery port is ignored, as in Besu.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnodeUrl {
    /// The node id: the uncompressed secp256k1 public key without its `04` prefix, as 128
    /// lowercase hex characters.
    pub id: String,
    /// An IP address in its canonical text form (IPv6 without brackets), or a lowercase
    /// DNS name.
    pub host: String,
    /// The TCP listening port.
    pub port: u16,
    /// The discovery (UDP) port, when it differs from `port`.
    pub discport: Option<u16>,
}

/// What is wrong with an enode URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnodeProblem {
    /// It does not start with `enode://`.
    #[error("it must start with enode://")]
    Scheme,
    /// No `@` between the id and the host.
    #[error("missing @ between the node id and host:port")]
    MissingAt,
    /// The id is not 128 hex characters.
    #[error("the node id must be 128 hex characters (64 bytes), got {len} characters")]
    IdLength {
        /// Characters given.
        len: usize,
    },
    /// The id has a character that is not hex.
    #[error("the node id is not hex")]
    IdNotHex,
    /// No `:port` after the host.
    #[error("missing :port after the host")]
    MissingPort,
    /// The port is not a number in 0..=65535.
    #[error("invalid port {0:?}")]
    Port(String),
    /// The host is neither an IP address nor a DNS name.
    #[error("invalid host {0:?}")]
    Host(String),
    /// A query other than `discport=N`.
    #[error("invalid query {0:?}: only discport=N is supported")]
    Query(String),
}

/// An enode URL that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid enode URL {url:?}: {problem}")]
pub struct EnodeUrlError {
    /// The text given.
    pub url: String,
    /// What is wrong with it.
    pub problem: EnodeProblem,
}

impl EnodeUrl {
    /// Whether both name the same listening endpoint: id, host and TCP port.
    pub fn same_endpoint(&self, other: &EnodeUrl) -> bool {
        self.id == other.id && self.host == other.host && self.port == other.port
    }

    /// Whether this entry admits a connection to `id` at `host` (and `port`, when known).
    fn admits(&self, id: &str, host: &str, port: Option<u16>) -> bool {
        self.id == id && self.host == host && port.is_none_or(|p| p == self.port)
    }
}

/// An IP address in canonical text (IPv4-mapped IPv6 as IPv4), or a lowercase DNS name.
fn normalize_host(host: &str) -> Option<String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip.to_canonical().to_string());
    }
    let valid_name = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    valid_name.then(|| host.to_ascii_lowercase())
}

/// A node id as the allowlist stores it: 128 lowercase hex characters.
fn normalize_id(id: &str) -> Result<String, EnodeProblem> {
    if id.len() != 128 {
        return Err(EnodeProblem::IdLength { len: id.len() });
    }
    if !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(EnodeProblem::IdNotHex);
    }
    Ok(id.to_ascii_lowercase())
}

impl FromStr for EnodeUrl {
    type Err = EnodeUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |problem| EnodeUrlError {
            url: text.to_string(),
            problem,
        };
        let trimmed = text.trim();
        let rest = trimmed
            .strip_prefix("enode://")
            .ok_or_else(|| fail(EnodeProblem::Scheme))?;
        let (id, rest) = rest
            .split_once('@')
            .ok_or_else(|| fail(EnodeProblem::MissingAt))?;
        let id = normalize_id(id).map_err(fail)?;
        let (endpoint, query) = match rest.split_once('?') {
            Some((endpoint, query)) => (endpoint, Some(query)),
            None => (rest, None),
        };
        let (host, port) = if let Some(bracketed) = endpoint.strip_prefix('[') {
            let (v6, after) = bracketed
                .split_once(']')
                .ok_or_else(|| fail(EnodeProblem::Host(endpoint.to_string())))?;
            let ip: Ipv6Addr = v6
                .parse()
                .map_err(|_| fail(EnodeProblem::Host(v6.to_string())))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| fail(EnodeProblem::MissingPort))?;
            (IpAddr::V6(ip).to_canonical().to_string(), port)
        } else {
            let (host, port) = endpoint
                .rsplit_once(':')
                .ok_or_else(|| fail(EnodeProblem::MissingPort))?;
            let host =
                normalize_host(host).ok_or_else(|| fail(EnodeProblem::Host(host.to_string())))?;
            (host, port)
        };
        let port: u16 = port
            .parse()
            .map_err(|_| fail(EnodeProblem::Port(port.to_string())))?;
        let discport = match query {
            None => None,
            Some(query) => {
                let value = query
                    .strip_prefix("discport=")
                    .ok_or_else(|| fail(EnodeProblem::Query(query.to_string())))?;
                let discport: u16 = value
                    .parse()
                    .map_err(|_| fail(EnodeProblem::Query(query.to_string())))?;
                // Besu writes the query only when the ports differ; so do we, so that a URL
                // survives a round trip through the file unchanged.
                (discport != port).then_some(discport)
            }
        };
        Ok(Self {
            id,
            host,
            port,
            discport,
        })
    }
}

impl fmt::Display for EnodeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "enode://{}@[{}]:{}", self.id, self.host, self.port)?;
        } else {
            write!(f, "enode://{}@{}:{}", self.id, self.host, self.port)?;
        }
        if let Some(discport) = self.discport {
            write!(f, "?discport={discport}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for EnodeUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EnodeUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------------------

/// Besu's `isValidAccountString`: `0x` and exactly 20 bytes of hex (either case).
fn parse_account(text: &str) -> Option<Address> {
    let digits = text.strip_prefix("0x")?;
    if digits.len() != 40 {
        return None;
    }
    let bytes = hex::decode(digits).ok()?;
    Some(Address::from_slice(&bytes))
}

/// An account as the file and `perm_getAccountsAllowlist` write it: lowercase `0x` hex.
pub fn account_text(account: &Address) -> String {
    hex::encode_prefixed(account)
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Which allowlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllowlistKind {
    /// `accounts-allowlist`.
    Accounts,
    /// `nodes-allowlist`.
    Nodes,
}

impl AllowlistKind {
    /// The TOML key.
    pub fn key(self) -> &'static str {
        match self {
            Self::Accounts => ACCOUNTS_KEY,
            Self::Nodes => NODES_KEY,
        }
    }

    fn entries(self) -> &'static str {
        match self {
            Self::Accounts => "accounts",
            Self::Nodes => "nodes",
        }
    }
}

impl fmt::Display for AllowlistKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A permissions file that cannot be used (at start, or at a reload).
#[derive(Debug, thiserror::Error)]
pub enum LocalPermissionsError {
    /// The file is not there.
    #[error("Configuration file does not exist: {}", path.display())]
    FileMissing {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read permissions file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("invalid TOML in permissions file {}: {reason}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// The file holds no keys at all.
    #[error("Empty TOML result: {}", path.display())]
    EmptyToml {
        /// The file.
        path: PathBuf,
    },
    /// An enabled list's key is not in its file.
    #[error("{key} config option missing in TOML config file {}", path.display())]
    KeyMissing {
        /// The key.
        key: AllowlistKind,
        /// The file.
        path: PathBuf,
    },
    /// A key whose value is not an array of strings.
    #[error("{key} in {} must be an array of strings", path.display())]
    NotStringArray {
        /// The key.
        key: AllowlistKind,
        /// The file.
        path: PathBuf,
    },
    /// An entry of `accounts-allowlist` that is not `0x` and 20 bytes of hex.
    #[error("Invalid account {account} in {ACCOUNTS_KEY} of {}", path.display())]
    InvalidAccount {
        /// The entry.
        account: String,
        /// The file.
        path: PathBuf,
    },
    /// An entry of `nodes-allowlist` that is not an enode URL.
    #[error("{source} in {NODES_KEY} of {}", path.display())]
    InvalidEnode {
        /// Why.
        source: EnodeUrlError,
        /// The file.
        path: PathBuf,
    },
    /// Bootnodes or static nodes missing from `nodes-allowlist`.
    #[error("Specified node(s) not in nodes-allowlist [{}]", join(.nodes))]
    FixedNodesNotAllowed {
        /// The missing nodes.
        nodes: Vec<EnodeUrl>,
    },
}

fn join(nodes: &[EnodeUrl]) -> String {
    nodes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why an add or remove was refused or not written (Besu's `AllowlistOperationResult`).
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The list is not enabled.
    #[error("{kind} has not been enabled")]
    NotEnabled {
        /// The list.
        kind: AllowlistKind,
    },
    /// The request named nothing.
    #[error("the request contains an empty list of {}", kind.entries())]
    Empty {
        /// The list.
        kind: AllowlistKind,
    },
    /// An entry that is not an account / enode URL.
    #[error("the request contains an invalid entry for {kind}: {entry:?}")]
    Invalid {
        /// The list.
        kind: AllowlistKind,
        /// The entry.
        entry: String,
    },
    /// The same entry twice in one request.
    #[error("the request contains duplicate {}", kind.entries())]
    Duplicate {
        /// The list.
        kind: AllowlistKind,
    },
    /// Adding an entry already in the list.
    #[error("cannot add an existing entry to {kind}: {entry}")]
    Existing {
        /// The list.
        kind: AllowlistKind,
        /// The entry.
        entry: String,
    },
    /// Removing an entry not in the list.
    #[error("cannot remove an absent entry from {kind}: {entry}")]
    Absent {
        /// The list.
        kind: AllowlistKind,
        /// The entry.
        entry: String,
    },
    /// Removing a bootnode or static node.
    #[error("cannot remove a fixed node (bootnode or static node) from {NODES_KEY}: {node}")]
    FixedNode {
        /// The node.
        node: EnodeUrl,
    },
    /// The file no longer holds the list this node had in memory: the change was applied
    /// in memory but not written.
    #[error(
        "{kind} in {} is out of sync with the node; the change is applied but not persisted",
        path.display()
    )]
    OutOfSync {
        /// The list.
        kind: AllowlistKind,
        /// The file.
        path: PathBuf,
    },
    /// The file could not be written: the change was reverted.
    #[error("cannot persist {kind} to {}: {source}; the change is reverted", path.display())]
    Persist {
        /// The list.
        kind: AllowlistKind,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

// ---------------------------------------------------------------------------------------
// Reading the file
// ---------------------------------------------------------------------------------------

/// Where the lists come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalPermissionsConfig {
    /// The file holding `accounts-allowlist`; `None` disables the account list.
    pub accounts_file: Option<PathBuf>,
    /// The file holding `nodes-allowlist`; `None` disables the node list. May be the same
    /// file as `accounts_file`.
    pub nodes_file: Option<PathBuf>,
    /// Bootnodes and static nodes: they must be in `nodes-allowlist` at start and cannot be
    /// removed from it.
    pub fixed_nodes: Vec<EnodeUrl>,
}

/// The parsed TOML table of a permissions file.
fn read_table(path: &Path) -> Result<toml::Table, LocalPermissionsError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            LocalPermissionsError::FileMissing {
                path: path.to_path_buf(),
            }
        } else {
            LocalPermissionsError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| LocalPermissionsError::Toml {
        path: path.to_path_buf(),
        reason: e.message().to_string(),
    })?;
    if table.is_empty() {
        return Err(LocalPermissionsError::EmptyToml {
            path: path.to_path_buf(),
        });
    }
    Ok(table)
}

/// The strings under `key`.
fn string_list(
    table: &toml::Table,
    key: AllowlistKind,
    path: &Path,
) -> Result<Vec<String>, LocalPermissionsError> {
    let value = table
        .get(key.key())
        .ok_or_else(|| LocalPermissionsError::KeyMissing {
            key,
            path: path.to_path_buf(),
        })?;
    let not_strings = || LocalPermissionsError::NotStringArray {
        key,
        path: path.to_path_buf(),
    };
    value
        .as_array()
        .ok_or_else(not_strings)?
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(not_strings))
        .collect()
}

fn read_accounts(path: &Path) -> Result<Vec<Address>, LocalPermissionsError> {
    let table = read_table(path)?;
    let mut accounts: Vec<Address> = Vec::new();
    for entry in string_list(&table, AllowlistKind::Accounts, path)? {
        let account =
            parse_account(&entry).ok_or_else(|| LocalPermissionsError::InvalidAccount {
                account: entry.clone(),
                path: path.to_path_buf(),
            })?;
        if !accounts.contains(&account) {
            accounts.push(account);
        }
    }
    Ok(accounts)
}

fn read_nodes(path: &Path) -> Result<Vec<EnodeUrl>, LocalPermissionsError> {
    let table = read_table(path)?;
    let mut nodes: Vec<EnodeUrl> = Vec::new();
    for entry in string_list(&table, AllowlistKind::Nodes, path)? {
        let node: EnodeUrl =
            entry
                .parse()
                .map_err(|source| LocalPermissionsError::InvalidEnode {
                    source,
                    path: path.to_path_buf(),
                })?;
        if !nodes.iter().any(|n| n.same_endpoint(&node)) {
            nodes.push(node);
        }
    }
    Ok(nodes)
}

// ---------------------------------------------------------------------------------------
// Writing the file
// ---------------------------------------------------------------------------------------

/// Whether `line` starts the entry of `key` (bare or quoted key, then `=`).
fn starts_entry(line: &str, key: &str) -> bool {
    let line = line.trim_start();
    let rest = [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
        .iter()
        .find_map(|k| line.strip_prefix(k.as_str()).map(str::to_string));
    rest.is_some_and(|rest| rest.trim_start().starts_with('='))
}

/// How far `line` opens (+) or closes (-) arrays, ignoring brackets inside strings (an IPv6
/// enode) and after a comment.
fn bracket_depth(line: &str) -> i64 {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in line.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '[' => depth += 1,
                ']' => depth -= 1,
                '#' => break,
                _ => {}
            },
        }
    }
    depth
}

/// `text` with the entry of `key` (which may span lines) replaced by `key=["v1","v2"]` in
/// the same place; appended at the top when absent, so it stays outside any table.
fn rewrite_entry(text: &str, key: &str, values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
    let entry = format!("{key}=[{}]", quoted.join(","));
    let mut out: Vec<&str> = Vec::new();
    let mut replaced = false;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if !starts_entry(line, key) {
            out.push(line);
            continue;
        }
        // Skip the continuation lines of a multi-line array.
        let mut depth = bracket_depth(line);
        while depth > 0 {
            match lines.next() {
                Some(next) => depth += bracket_depth(next),
                None => break,
            }
        }
        if !replaced {
            out.push(&entry);
            replaced = true;
        }
    }
    if !replaced {
        out.insert(0, &entry);
    }
    let mut result = out.join("\n");
    result.push('\n');
    result
}

/// Replaces `path` with `contents` so that a crash leaves either the old or the new file:
/// a temporary file in the same directory, synced, then renamed over it. A read-only file
/// is refused (a rename would otherwise bypass its mode).
fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let metadata = std::fs::metadata(path)?;
    if metadata.permissions().readonly() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "the file is read-only",
        ));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(contents.as_bytes())?;
        file.set_permissions(metadata.permissions())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable where the platform allows opening a directory.
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The file's list under `kind`, as comparable keys, or `None` when the file does not hold
/// a readable list there (out of sync). An I/O failure is an `Err`.
fn file_entries(path: &Path, kind: AllowlistKind) -> std::io::Result<Option<HashSet<String>>> {
    let text = std::fs::read_to_string(path)?;
    let Ok(table) = toml::from_str::<toml::Table>(&text) else {
        return Ok(None);
    };
    let Ok(list) = string_list(&table, kind, path) else {
        return Ok(None);
    };
    let keys = list
        .iter()
        .map(|entry| match kind {
            AllowlistKind::Accounts => parse_account(entry).map(|a| account_text(&a)),
            AllowlistKind::Nodes => entry.parse::<EnodeUrl>().ok().map(|n| endpoint_key(&n)),
        })
        .collect::<Option<HashSet<_>>>();
    Ok(keys)
}

fn endpoint_key(node: &EnodeUrl) -> String {
    format!("{}@{}:{}", node.id, node.host, node.port)
}

/// Writes a change already made in memory to the file, as Besu does: out of sync, the
/// change stays in memory unwritten; an I/O failure runs `revert` (memory back to the old
/// list).
fn persist(
    path: &Path,
    kind: AllowlistKind,
    old: &HashSet<String>,
    new: &[String],
    new_keys: &HashSet<String>,
    revert: impl FnOnce(),
) -> Result<(), ChangeError> {
    match rewrite_file(path, kind, old, new, new_keys) {
        Ok(()) => Ok(()),
        Err(PersistFailure::OutOfSync) => Err(ChangeError::OutOfSync {
            kind,
            path: path.to_path_buf(),
        }),
        Err(PersistFailure::Io(source)) => {
            revert();
            Err(ChangeError::Persist {
                kind,
                path: path.to_path_buf(),
                source,
            })
        }
    }
}

/// Besu's `AllowlistPersistor`: check that the file still holds `old`, rewrite the key's
/// line with `new`, and check again.
fn rewrite_file(
    path: &Path,
    kind: AllowlistKind,
    old: &HashSet<String>,
    new: &[String],
    new_keys: &HashSet<String>,
) -> Result<(), PersistFailure> {
    match file_entries(path, kind).map_err(PersistFailure::Io)? {
        Some(on_disk) if on_disk == *old => {}
        _ => return Err(PersistFailure::OutOfSync),
    }
    let text = std::fs::read_to_string(path).map_err(PersistFailure::Io)?;
    write_atomically(path, &rewrite_entry(&text, kind.key(), new)).map_err(PersistFailure::Io)?;
    match file_entries(path, kind).map_err(PersistFailure::Io)? {
        Some(on_disk) if on_disk == *new_keys => Ok(()),
        _ => Err(PersistFailure::OutOfSync),
    }
}

enum PersistFailure {
    OutOfSync,
    Io(std::io::Error),
}

// ---------------------------------------------------------------------------------------
// The allowlists
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
struct Lists {
    /// `None`: the list is disabled.
    accounts: Option<Vec<Address>>,
    nodes: Option<Vec<EnodeUrl>>,
}

/// Called after the node allowlist changed.
pub type NodesChanged = Box<dyn Fn() + Send + Sync>;

/// The local account and node allowlists of one node, shared by the pool, the connection
/// gate and the `perm_*` RPCs. Every method takes `&self`.
pub struct LocalPermissions {
    config: LocalPermissionsConfig,
    lists: RwLock<Lists>,
    /// Serialises changes and reloads, so each sees the file its predecessor left.
    change: Mutex<()>,
    on_nodes_changed: RwLock<Option<Arc<dyn Fn() + Send + Sync>>>,
}

impl fmt::Debug for LocalPermissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lists = self.lists.read();
        f.debug_struct("LocalPermissions")
            .field("accounts_file", &self.config.accounts_file)
            .field("nodes_file", &self.config.nodes_file)
            .field("accounts", &lists.accounts.as_ref().map(Vec::len))
            .field("nodes", &lists.nodes.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl LocalPermissions {
    /// Reads the enabled lists as Besu does at start: each file must exist and be
    /// non-empty TOML holding its key, every entry must be valid, and every fixed node
    /// must be in `nodes-allowlist` (matched on id, host and port).
    pub fn load(config: LocalPermissionsConfig) -> Result<Self, LocalPermissionsError> {
        let lists = Self::read(&config)?;
        if let Some(nodes) = &lists.nodes {
            let missing: Vec<EnodeUrl> = config
                .fixed_nodes
                .iter()
                .filter(|fixed| !nodes.iter().any(|n| n.same_endpoint(fixed)))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(LocalPermissionsError::FixedNodesNotAllowed { nodes: missing });
            }
        }
        Ok(Self {
            config,
            lists: RwLock::new(lists),
            change: Mutex::new(()),
            on_nodes_changed: RwLock::new(None),
        })
    }

    fn read(config: &LocalPermissionsConfig) -> Result<Lists, LocalPermissionsError> {
        Ok(Lists {
            accounts: config
                .accounts_file
                .as_deref()
                .map(read_accounts)
                .transpose()?,
            nodes: config.nodes_file.as_deref().map(read_nodes).transpose()?,
        })
    }

    /// Re-reads the file(s). On any error the lists stay as they were.
    pub fn reload(&self) -> Result<(), LocalPermissionsError> {
        let nodes_changed = {
            let _change = self.change.lock();
            let fresh = Self::read(&self.config)?;
            let mut lists = self.lists.write();
            let changed = lists.nodes != fresh.nodes;
            *lists = fresh;
            changed
        };
        if nodes_changed {
            self.notify_nodes_changed();
        }
        Ok(())
    }

    /// Registers `hook`, called (without locks held) after every change of the node
    /// allowlist, so the node can drop connections that are no longer allowed.
    pub fn set_on_nodes_changed(&self, hook: NodesChanged) {
        *self.on_nodes_changed.write() = Some(Arc::from(hook));
    }

    fn notify_nodes_changed(&self) {
        let hook = self.on_nodes_changed.read().clone();
        if let Some(hook) = hook {
            hook();
        }
    }

    /// Whether `accounts-allowlist` is enforced.
    pub fn accounts_enabled(&self) -> bool {
        self.lists.read().accounts.is_some()
    }

    /// Whether `nodes-allowlist` is enforced.
    pub fn nodes_enabled(&self) -> bool {
        self.lists.read().nodes.is_some()
    }

    /// Whether `account` may send transactions; `true` when the account list is disabled.
    pub fn account_allowed(&self, account: &Address) -> bool {
        self.lists
            .read()
            .accounts
            .as_ref()
            .is_none_or(|accounts| accounts.contains(account))
    }

    /// Whether a connection with the node `id_hex` (128 hex characters, either case,
    /// optional `0x`) at `host` may exist; `true` when the node list is disabled.
    ///
    /// An entry matches on node id, host and listening port, as in Besu. `port` is the
    /// remote's listening port; `None` means an inbound connection, whose listening port
    /// the transport does not reveal (libp2p's handshake carries only the ephemeral source
    /// port), so such a connection matches any entry with the same id and host. The id is
    /// the remote's authenticated key, so this widens nothing beyond "this node, from this
    /// address".
    pub fn node_allowed(&self, id_hex: &str, host: &str, port: Option<u16>) -> bool {
        let lists = self.lists.read();
        let Some(nodes) = &lists.nodes else {
            return true;
        };
        let id = id_hex
            .strip_prefix("0x")
            .unwrap_or(id_hex)
            .to_ascii_lowercase();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let Some(host) = normalize_host(host) else {
            return false;
        };
        nodes.iter().any(|n| n.admits(&id, &host, port))
    }

    /// The account allowlist, or `None` when it is disabled.
    pub fn accounts(&self) -> Option<Vec<Address>> {
        self.lists.read().accounts.clone()
    }

    /// The node allowlist, or `None` when it is disabled.
    pub fn nodes(&self) -> Option<Vec<EnodeUrl>> {
        self.lists.read().nodes.clone()
    }

    /// The bootnodes and static nodes.
    pub fn fixed_nodes(&self) -> &[EnodeUrl] {
        &self.config.fixed_nodes
    }

    /// Adds `accounts` (`0x` and 40 hex digits, either case) to the account allowlist and
    /// writes the list back to its file.
    pub fn add_accounts<S: AsRef<str>>(&self, accounts: &[S]) -> Result<(), ChangeError> {
        self.change_accounts(accounts, true)
    }

    /// Removes `accounts` from the account allowlist and writes the list back.
    pub fn remove_accounts<S: AsRef<str>>(&self, accounts: &[S]) -> Result<(), ChangeError> {
        self.change_accounts(accounts, false)
    }

    fn change_accounts<S: AsRef<str>>(&self, request: &[S], add: bool) -> Result<(), ChangeError> {
        const KIND: AllowlistKind = AllowlistKind::Accounts;
        let _change = self.change.lock();
        let Some(current) = self.accounts() else {
            return Err(ChangeError::NotEnabled { kind: KIND });
        };
        // Besu's order: empty, invalid, duplicate, then existing / absent.
        if request.is_empty() {
            return Err(ChangeError::Empty { kind: KIND });
        }
        let mut parsed = Vec::with_capacity(request.len());
        for entry in request {
            let entry = entry.as_ref();
            let account = parse_account(entry).ok_or_else(|| ChangeError::Invalid {
                kind: KIND,
                entry: entry.to_string(),
            })?;
            parsed.push(account);
        }
        if parsed.iter().collect::<HashSet<_>>().len() != parsed.len() {
            return Err(ChangeError::Duplicate { kind: KIND });
        }
        let mut updated = current.clone();
        for account in &parsed {
            let position = current.iter().position(|a| a == account);
            match (add, position) {
                (true, Some(_)) => {
                    return Err(ChangeError::Existing {
                        kind: KIND,
                        entry: account_text(account),
                    });
                }
                (false, None) => {
                    return Err(ChangeError::Absent {
                        kind: KIND,
                        entry: account_text(account),
                    });
                }
                (true, None) => updated.push(*account),
                (false, Some(_)) => updated.retain(|a| a != account),
            }
        }
        self.lists.write().accounts = Some(updated.clone());
        let path = self
            .config
            .accounts_file
            .as_deref()
            .unwrap_or(Path::new(""));
        let old: HashSet<String> = current.iter().map(account_text).collect();
        let new: Vec<String> = updated.iter().map(account_text).collect();
        let new_keys: HashSet<String> = new.iter().cloned().collect();
        persist(path, KIND, &old, &new, &new_keys, || {
            self.lists.write().accounts = Some(current);
        })
    }

    /// Adds enode URLs to the node allowlist and writes the list back to its file.
    pub fn add_nodes<S: AsRef<str>>(&self, enodes: &[S]) -> Result<(), ChangeError> {
        self.change_nodes(enodes, true)
    }

    /// Removes enode URLs (not bootnodes or static nodes) from the node allowlist and
    /// writes the list back.
    pub fn remove_nodes<S: AsRef<str>>(&self, enodes: &[S]) -> Result<(), ChangeError> {
        self.change_nodes(enodes, false)
    }

    fn change_nodes<S: AsRef<str>>(&self, request: &[S], add: bool) -> Result<(), ChangeError> {
        let result = self.change_nodes_locked(request, add);
        // The in-memory list changed unless the request was refused or reverted.
        if matches!(result, Ok(()) | Err(ChangeError::OutOfSync { .. })) {
            self.notify_nodes_changed();
        }
        result
    }

    fn change_nodes_locked<S: AsRef<str>>(
        &self,
        request: &[S],
        add: bool,
    ) -> Result<(), ChangeError> {
        const KIND: AllowlistKind = AllowlistKind::Nodes;
        let _change = self.change.lock();
        let Some(current) = self.nodes() else {
            return Err(ChangeError::NotEnabled { kind: KIND });
        };
        if request.is_empty() {
            return Err(ChangeError::Empty { kind: KIND });
        }
        let mut parsed: Vec<EnodeUrl> = Vec::with_capacity(request.len());
        for entry in request {
            let entry = entry.as_ref();
            let node = entry
                .parse::<EnodeUrl>()
                .map_err(|_| ChangeError::Invalid {
                    kind: KIND,
                    entry: entry.to_string(),
                })?;
            parsed.push(node);
        }
        if parsed
            .iter()
            .map(endpoint_key)
            .collect::<HashSet<_>>()
            .len()
            != parsed.len()
        {
            return Err(ChangeError::Duplicate { kind: KIND });
        }
        if !add
            && let Some(fixed) = parsed
                .iter()
                .find(|n| self.config.fixed_nodes.iter().any(|f| f.same_endpoint(n)))
        {
            return Err(ChangeError::FixedNode {
                node: fixed.clone(),
            });
        }
        let mut updated = current.clone();
        for node in &parsed {
            let present = current.iter().any(|n| n.same_endpoint(node));
            match (add, present) {
                (true, true) => {
                    return Err(ChangeError::Existing {
                        kind: KIND,
                        entry: node.to_string(),
                    });
                }
                (false, false) => {
                    return Err(ChangeError::Absent {
                        kind: KIND,
                        entry: node.to_string(),
                    });
                }
                (true, false) => updated.push(node.clone()),
                (false, true) => updated.retain(|n| !n.same_endpoint(node)),
            }
        }
        self.lists.write().nodes = Some(updated.clone());
        let path = self.config.nodes_file.as_deref().unwrap_or(Path::new(""));
        let old: HashSet<String> = current.iter().map(endpoint_key).collect();
        let new: Vec<String> = updated.iter().map(ToString::to_string).collect();
        let new_keys: HashSet<String> = updated.iter().map(endpoint_key).collect();
        persist(path, KIND, &old, &new, &new_keys, || {
            self.lists.write().nodes = Some(current);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: &str) -> String {
        byte.repeat(64)
    }

    #[test]
    fn enode_round_trips_through_text() {
        for text in [
            format!("enode://{}@127.0.0.1:30303", id("ab")),
            format!("enode://{}@10.0.0.2:30303?discport=30301", id("01")),
            format!("enode://{}@[2001:db8::1]:30303", id("ff")),
            format!("enode://{}@node-1.example.org:30303", id("0f")),
        ] {
            let url: EnodeUrl = text.parse().unwrap();
            assert_eq!(url.to_string(), text);
            assert_eq!(url.to_string().parse::<EnodeUrl>().unwrap(), url);
        }
    }

    #[test]
    fn enode_id_is_stored_lowercase_and_equal_discport_dropped() {
        let url: EnodeUrl = format!("enode://{}@127.0.0.1:30303?discport=30303", id("AB"))
            .parse()
            .unwrap();
        assert_eq!(url.id, id("ab"));
        assert_eq!(url.discport, None);
        let mapped: EnodeUrl = format!("enode://{}@[::ffff:10.1.2.3]:1", id("ab"))
            .parse()
            .unwrap();
        assert_eq!(mapped.host, "10.1.2.3");
    }

    #[test]
    fn bad_enodes_name_the_problem() {
        let cases = [
            ("http://x@1.2.3.4:1".to_string(), EnodeProblem::Scheme),
            (format!("enode://{}", id("ab")), EnodeProblem::MissingAt),
            (
                "enode://abcd@1.2.3.4:1".to_string(),
                EnodeProblem::IdLength { len: 4 },
            ),
            (
                format!("enode://{}@1.2.3.4:1", id("zz")),
                EnodeProblem::IdNotHex,
            ),
            (
                format!("enode://{}@1.2.3.4", id("ab")),
                EnodeProblem::MissingPort,
            ),
            (
                format!("enode://{}@1.2.3.4:70000", id("ab")),
                EnodeProblem::Port("70000".into()),
            ),
            (
                format!("enode://{}@bad_host!:1", id("ab")),
                EnodeProblem::Host("bad_host!".into()),
            ),
            (
                format!("enode://{}@1.2.3.4:1?foo=1", id("ab")),
                EnodeProblem::Query("foo=1".into()),
            ),
        ];
        for (text, problem) in cases {
            let err = text.parse::<EnodeUrl>().unwrap_err();
            assert_eq!(err.problem, problem, "{text}");
            assert!(err.to_string().contains(&text), "{err}");
        }
    }

    #[test]
    fn accounts_need_prefix_and_twenty_bytes() {
        assert!(parse_account("0xFE3B557E8Fb62b89F4916B721be55cEb828dBd73").is_some());
        assert!(parse_account("fe3b557e8fb62b89f4916b721be55ceb828dbd73").is_none());
        assert!(parse_account("0xfe3b557e8fb62b89f4916b721be55ceb828dbd").is_none());
        assert!(parse_account("0xzz3b557e8fb62b89f4916b721be55ceb828dbd73").is_none());
    }

    #[test]
    fn rewrite_replaces_only_its_key_including_multiline_arrays() {
        let text = "# comment\naccounts-allowlist = [\n  \"0x01\", # one\n  \"0x02\"\n]\nnodes-allowlist=[\"enode://a@[::1]:1\"]\n";
        let out = rewrite_entry(text, ACCOUNTS_KEY, &["0x03".into()]);
        assert_eq!(
            out,
            "# comment\naccounts-allowlist=[\"0x03\"]\nnodes-allowlist=[\"enode://a@[::1]:1\"]\n"
        );
        let out = rewrite_entry(&out, NODES_KEY, &[]);
        assert_eq!(
            out,
            "# comment\naccounts-allowlist=[\"0x03\"]\nnodes-allowlist=[]\n"
        );
    }

    #[test]
    fn rewrite_of_a_missing_key_goes_to_the_top() {
        let out = rewrite_entry("[other]\nx = 1\n", NODES_KEY, &["n".into()]);
        assert_eq!(out, "nodes-allowlist=[\"n\"]\n[other]\nx = 1\n");
    }
}
