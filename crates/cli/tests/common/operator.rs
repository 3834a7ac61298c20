//! An operator typing `healthchain` commands.
#![allow(dead_code)] // each test binary uses part of it

use std::process::{Command, Output};

/// Runs `healthchain <args>` against a node, in `dir`, with `<key>.key` as the key file.
pub(crate) struct Operator {
    pub(crate) rpc: String,
    pub(crate) dir: std::path::PathBuf,
}

impl Operator {
    pub(crate) fn run(&self, key: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_healthchain"));
        cmd.env_remove("HEALTHCHAIN_KEY_FILE")
            .env("HEALTHCHAIN_RPC_URL", &self.rpc)
            .current_dir(&self.dir);
        if let Some((command, rest)) = args.split_first() {
            cmd.arg(command);
            if let Some(key) = key {
                cmd.args(["--key-file", &format!("{key}.key")]);
            }
            cmd.args(rest);
        }
        cmd.output().unwrap()
    }

    /// A command that must succeed; its stdout.
    pub(crate) fn ok(&self, key: Option<&str>, args: &[&str]) -> String {
        let out = self.run(key, args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?} failed:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// A command that must fail; its stderr.
    pub(crate) fn refused(&self, key: Option<&str>, args: &[&str]) -> String {
        let out = self.run(key, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}
