//! The data flow's layering, checked on the source: no module of the pure core
//! (profile check, hardening plan, Landlock plan, seccomp compilation, exec policy,
//! cgroup placement) may use a privileged one (the init's apply steps, idmapped
//! mounts, the commands, libcontainer). A cheap grep of the `use` graph, so a
//! dependency that would let a pure decision reach a side effect fails here.

use std::fs;
use std::path::{Path, PathBuf};

/// The pure core, relative to `src/`: directories (every file below) and files.
const PURE: &[&str] = &[
    "profile",
    "hardening.rs",
    "landlock/plan.rs",
    "exec_policy.rs",
    "cgroup_placement.rs",
    "default_spec.rs",
    "seccomp/translate.rs",
    "seccomp/bpf.rs",
    "seccomp/names.rs",
    "seccomp/syscall_table.rs",
];

/// Paths that name a privileged (or edge) module.
const PRIVILEGED: &[&str] = &[
    "landlock::apply",
    "super::apply",
    "crate::executor",
    // Allocation, idmapped mounts and setup all touch the host.
    "crate::userns",
    "seccomp::load",
    "crate::commands",
    "crate::admission",
    "crate::self_protect",
    "crate::netns_sysctl",
    "crate::bind_source",
    "crate::host_probe",
    "crate::state_root",
    "crate::audit_log",
    "crate::file_cache",
    "libcontainer::",
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in fs::read_dir(path).expect("read source dir") {
            rust_files(&entry.expect("dir entry").path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

#[test]
fn the_pure_core_uses_no_privileged_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for p in PURE {
        let path = src.join(p);
        assert!(path.exists(), "{} is gone: update PURE", path.display());
        rust_files(&path, &mut files);
    }
    let mut found = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for bad in PRIVILEGED {
                if code.contains(bad) {
                    found.push(format!("{}:{}: {bad}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "pure core uses privileged modules:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_a_privileged_use() {
    // The grep must catch the shapes a use takes: a `use` line and a full path.
    let lines = [
        "use crate::landlock::apply::enforce;",
        "    crate::userns::idmap::tmpfs_supports_idmap()",
    ];
    for line in lines {
        assert!(PRIVILEGED.iter().any(|bad| line.contains(bad)), "{line}");
    }
}
