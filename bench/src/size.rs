//! `hark-bench size`: the arm64 deployment zip of every function, as `scripts/package`
//! builds it with cargo-lambda (`target/lambda/<function>/bootstrap.zip`). With
//! `--package` the harness runs `scripts/package` first (a release arm64 build: minutes).

use std::path::PathBuf;

use crate::init::repo_root;

/// The functions that ship as zips.
pub const FUNCTIONS: [&str; 5] = ["scheduler", "poller", "processor", "publisher", "actions"];

#[derive(Debug, Clone)]
pub struct ZipSize {
    pub function: &'static str,
    /// `None`: not built yet.
    pub bytes: Option<u64>,
    pub path: PathBuf,
}

pub fn run(package: bool) -> Result<Vec<ZipSize>, String> {
    let root = repo_root();
    if package {
        let status = std::process::Command::new(root.join("scripts/package"))
            .current_dir(&root)
            .status()
            .map_err(|e| format!("scripts/package: {e}"))?;
        if !status.success() {
            return Err(format!("scripts/package failed ({status})"));
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(FUNCTIONS
        .iter()
        .map(|function| {
            let path = target.join("lambda").join(function).join("bootstrap.zip");
            ZipSize {
                function,
                bytes: std::fs::metadata(&path).ok().map(|m| m.len()),
                path,
            }
        })
        .collect())
}
