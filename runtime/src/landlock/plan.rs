//! Landlock rules as plain data: what the profile (and the spec) ask the container's
//! init to enforce. Built by the pure hardening step, applied by `landlock_apply`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How a kernel that lacks part of the requested Landlock support is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Compat {
    /// Refuse the container if the kernel cannot enforce every rule.
    #[default]
    Hard,
    /// Enforce what the kernel supports and record what was dropped.
    BestEffort,
}

/// Filesystem access rights, named as in the Landlock ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsAccess {
    Execute,
    WriteFile,
    ReadFile,
    ReadDir,
    RemoveDir,
    RemoveFile,
    MakeChar,
    MakeDir,
    MakeReg,
    MakeSock,
    MakeFifo,
    MakeBlock,
    MakeSym,
    Refer,
    Truncate,
    IoctlDev,
}

/// One path (inside the container's root) and the rights granted beneath it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsRule {
    pub path: PathBuf,
    pub access: Vec<FsAccess>,
}

/// A complete Landlock request for one container process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LandlockPlan {
    /// Lowest Landlock ABI the plan needs to be enforced in full.
    pub min_abi: u8,
    pub compat: Compat,
    /// Rights that are handled (denied unless a rule grants them).
    pub handled_fs: Vec<FsAccess>,
    pub fs_rules: Vec<FsRule>,
    /// TCP ports the container may bind / connect to; `None` leaves TCP unrestricted.
    pub tcp_bind: Option<Vec<u16>>,
    pub tcp_connect: Option<Vec<u16>>,
    /// Landlock scopes (ABI 6): deny abstract unix sockets / signals outside the domain.
    pub scope_abstract_unix: bool,
    pub scope_signal: bool,
}
