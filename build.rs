//! Build script: records the commit the binary is built from for `bar-ingest --version`
//! (`BAR_INGEST_COMMIT`: the short hash, `-dirty` when tracked files differed from it when this
//! script last ran; outside a git checkout, the variable as set, else `unknown`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let described = match commit {
        Some(hash) if dirty => format!("{hash}-dirty"),
        Some(hash) => hash,
        None => std::env::var("BAR_INGEST_COMMIT").unwrap_or_else(|_| "unknown".into()),
    };
    println!("cargo:rustc-env=BAR_INGEST_COMMIT={described}");
    println!("cargo:rerun-if-env-changed=BAR_INGEST_COMMIT");
    // Rebuild when HEAD moves or the index changes (a commit, a checkout, a staged edit).
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from) {
        for watched in ["HEAD", "index"] {
            println!("cargo:rerun-if-changed={}", dir.join(watched).display());
        }
        if let Some(common) = git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from) {
            println!("cargo:rerun-if-changed={}", common.join("refs").display());
        }
    }
}

/// What `git ARGS` prints, trimmed; None when git is missing or fails.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
