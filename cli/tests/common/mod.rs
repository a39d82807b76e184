//! Running the `hark` binary from the CLI's integration tests.

#![allow(dead_code)] // each test file uses what it needs

use std::path::Path;
use std::process::{Command, Output};

/// `hark args…` on the store in `data_dir`, with `env` set on top of a clean Hark
/// environment (no backend or log level from the developer's shell).
pub fn hark_with(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hark"))
        .args(args)
        .env("HARK_DATA_DIR", data_dir)
        .env_remove("HARK_BACKEND")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("run hark")
}

/// The standard output of a run that must have succeeded (its stderr in the panic if not).
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "hark failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("hark prints UTF-8")
}
