//! Records the commit the binary was built from, for `stockade --version` (as runc's
//! `commit:` line). `STOCKADE_COMMIT` overrides it (release builds from a tarball);
//! without git or a repository it is "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    // The binary starts at `early_reexec`'s entry point, which re-executes an
    // entering verb from the read-only copy before the C library starts, then
    // continues at the C library's `_start` (runtime/src/early_reexec.rs).
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if arch == "x86_64" && os == "linux" {
        println!("cargo:rustc-link-arg-bin=stockade=-Wl,--entry=stockade_entry");
    }
    println!("cargo:rerun-if-env-changed=STOCKADE_COMMIT");
    let commit = std::env::var("STOCKADE_COMMIT").ok().or_else(|| {
        // Rebuild when HEAD moves: HEAD itself, the branch it points at, packed refs.
        for name in ["HEAD", "packed-refs"] {
            if let Some(p) = git(&["rev-parse", "--git-path", name]) {
                if std::path::Path::new(&p).exists() {
                    println!("cargo:rerun-if-changed={p}");
                }
            }
        }
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            if let Some(p) = git(&["rev-parse", "--git-path", &r]) {
                if std::path::Path::new(&p).exists() {
                    println!("cargo:rerun-if-changed={p}");
                }
            }
        }
        git(&["rev-parse", "--short=12", "HEAD"])
    });
    println!(
        "cargo:rustc-env=STOCKADE_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}
