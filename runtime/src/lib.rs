//! Stockade: a hardened OCI runtime.
//!
//! Data flows spec + profile -> check (pure) -> hardening plan (pure data) -> apply
//! (thin, privileged) -> exec. See ARCHITECTURE.md.

pub mod admission;
pub mod audit_log;
pub mod bind_source;
pub mod bounded_read;
pub mod bundle;
pub mod cgroup_freeze;
pub mod cgroup_mounts;
pub mod cgroup_placement;
pub mod cli;
pub mod commands;
pub mod console_proxy;
pub mod default_spec;
pub mod doctor;
pub mod exec_policy;
pub mod executor;
pub mod file_cache;
pub mod hardening;
pub mod host_probe;
pub mod landlock;
pub mod lockfile;
pub mod logging;
pub mod netns_sysctl;
pub mod profile;
pub mod seccomp;
pub mod self_protect;
pub mod state_root;
pub mod userns;

/// Render an error with its chain of causes on one line: `a: b: c`.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}
