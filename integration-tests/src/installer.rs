//! The repository the tests run from, and the artifacts the node installer ships
//! (`deploy/installer/`): what the DaemonSet's image holds, staged from this
//! workspace.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the repository checkout).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests lives in the workspace")
        .to_path_buf()
}

/// Stages the installer's artifacts dir under `dir`: `bin/` with this workspace's
/// `stockade` and shim (hard links where possible: nothing in target/ is copied or
/// changed) and `profiles/`, the repository's shipped profiles. Returns its path.
pub fn stage_artifacts(dir: &Path) -> PathBuf {
    let artifacts = dir.join("artifacts");
    fs::create_dir_all(artifacts.join("bin")).unwrap();
    let target = crate::runtime::runtime_binary();
    let target = target.parent().unwrap();
    for b in ["stockade", "containerd-shim-stockade-v2"] {
        let src = target.join(b);
        assert!(src.exists(), "build {} first", src.display());
        let dst = artifacts.join("bin").join(b);
        if fs::hard_link(&src, &dst).is_err() {
            fs::copy(&src, &dst).unwrap();
        }
    }
    let st = Command::new("cp")
        .arg("-r")
        .arg(repo_root().join("profiles"))
        .arg(artifacts.join("profiles"))
        .status()
        .unwrap();
    assert!(st.success(), "copy the shipped profiles");
    artifacts
}
