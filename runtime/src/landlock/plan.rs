//! Landlock rules as plain data: what the profile (and the spec) ask the container's
//! init to enforce ([`LandlockPlan`], built by the pure hardening step), and that
//! request resolved against the host's Landlock ABI at admission ([`resolve`]) into
//! the exact masks the init hands to the kernel ([`ResolvedDomain`], applied by
//! `landlock::apply`, which decides nothing).

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

/// The annotation through which a container owner adds Landlock rules of their own.
/// Landlock only ever narrows access, so an owner-supplied domain stacked on the
/// profile's cannot weaken anything.
pub const ANNOTATION: &str = "org.stockade.landlock";

/// Parse the rules a container owner may add through [`ANNOTATION`].
pub fn from_annotation(value: &str) -> Result<LandlockPlan, serde_json::Error> {
    serde_json::from_str(value)
}

/// Landlock UAPI bits (linux/landlock.h): `LANDLOCK_ACCESS_FS_*` in ABI order.
pub mod bits {
    /// `LANDLOCK_ACCESS_FS_*` of one right.
    pub const fn fs(a: super::FsAccess) -> u64 {
        use super::FsAccess::*;
        1 << match a {
            Execute => 0,
            WriteFile => 1,
            ReadFile => 2,
            ReadDir => 3,
            RemoveDir => 4,
            RemoveFile => 5,
            MakeChar => 6,
            MakeDir => 7,
            MakeReg => 8,
            MakeSock => 9,
            MakeFifo => 10,
            MakeBlock => 11,
            MakeSym => 12,
            Refer => 13,
            Truncate => 14,
            IoctlDev => 15,
        }
    }
    pub const NET_BIND_TCP: u64 = 1 << 0;
    pub const NET_CONNECT_TCP: u64 = 1 << 1;
    pub const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
    pub const SCOPE_SIGNAL: u64 = 1 << 1;
    /// Rights that apply to a file (the rest only make sense beneath a directory):
    /// execute, write, read, truncate, ioctl on a device.
    pub const FS_FILE: u64 = 1 << 0 | 1 << 1 | 1 << 2 | 1 << 14 | 1 << 15;

    /// Filesystem rights a kernel of Landlock ABI `abi` knows (landlock(7)).
    pub const fn fs_known(abi: u8) -> u64 {
        match abi {
            0 => 0,
            1 => (1 << 13) - 1,
            2 => (1 << 14) - 1,
            3 | 4 => (1 << 15) - 1,
            _ => (1 << 16) - 1,
        }
    }

    /// TCP rights a kernel of ABI `abi` knows (ABI 4).
    pub const fn net_known(abi: u8) -> u64 {
        if abi >= 4 {
            NET_BIND_TCP | NET_CONNECT_TCP
        } else {
            0
        }
    }

    /// Scopes a kernel of ABI `abi` knows (ABI 6).
    pub const fn scope_known(abi: u8) -> u64 {
        if abi >= 6 {
            SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        } else {
            0
        }
    }
}

/// One rule path and the exact `allowed_access` mask for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedFsRule {
    /// Inside the container's root; opened by the init after pivot_root.
    pub path: PathBuf,
    /// The mask when the path is a directory.
    pub access: u64,
    /// The mask when it is not (a file takes only [`bits::FS_FILE`] rights); `None`
    /// when the rule's directory rights may not be dropped (`hard` compat), so a
    /// rule path that turns out to be a file stops the init.
    pub file_access: Option<u64>,
}

/// A Landlock domain resolved against one host ABI: exactly what the init passes
/// to landlock_create_ruleset(2), landlock_add_rule(2) and landlock_restrict_self(2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedDomain {
    /// `handled_access_fs`, `handled_access_net` and `scoped` of the ruleset.
    pub handled_fs: u64,
    pub handled_net: u64,
    pub scoped: u64,
    pub fs_rules: Vec<ResolvedFsRule>,
    /// `(port, allowed_access)` rules.
    pub net_rules: Vec<(u16, u64)>,
    /// Whether the host enforces everything the plan asked (false only under
    /// `best_effort`, which admission has already reported).
    pub fully: bool,
    /// The plan's own minimum ABI, for the init's log line.
    pub min_abi: u8,
}

impl ResolvedDomain {
    /// Nothing for the kernel to enforce (no Landlock, or nothing it knows).
    pub fn is_empty(&self) -> bool {
        self.handled_fs == 0 && self.handled_net == 0 && self.scoped == 0
    }
}

/// A plan a `hard` compat level says must be refused on this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("landlock: the kernel (Landlock ABI {host_abi}) cannot enforce {what} and the plan's compat level is hard")]
    NotEnforceable { host_abi: u8, what: &'static str },
}

fn fs_mask(list: &[FsAccess]) -> u64 {
    list.iter().fold(0, |acc, a| acc | bits::fs(*a))
}

/// Resolve `plan` for a kernel of Landlock ABI `host_abi` (0: none). Pure: the
/// handled rights (the plan's list, or the union of its rules' rights), each rule
/// intersected with them, everything the host does not know dropped under
/// `best_effort` or refused under `hard`, as the `landlock` crate's compat levels
/// do, but here, at admission, and not in the init.
pub fn resolve(plan: &LandlockPlan, host_abi: u8) -> Result<ResolvedDomain, ResolveError> {
    let hard = plan.compat == Compat::Hard;
    let refuse = |what| ResolveError::NotEnforceable { host_abi, what };
    let asked_fs = if plan.handled_fs.is_empty() {
        plan.fs_rules
            .iter()
            .fold(0, |acc, r| acc | fs_mask(&r.access))
    } else {
        fs_mask(&plan.handled_fs)
    };
    let mut asked_net = 0;
    if plan.tcp_bind.is_some() {
        asked_net |= bits::NET_BIND_TCP;
    }
    if plan.tcp_connect.is_some() {
        asked_net |= bits::NET_CONNECT_TCP;
    }
    let mut asked_scope = 0;
    if plan.scope_abstract_unix {
        asked_scope |= bits::SCOPE_ABSTRACT_UNIX_SOCKET;
    }
    if plan.scope_signal {
        asked_scope |= bits::SCOPE_SIGNAL;
    }
    let handled_fs = asked_fs & bits::fs_known(host_abi);
    let handled_net = asked_net & bits::net_known(host_abi);
    let scoped = asked_scope & bits::scope_known(host_abi);
    let fully =
        host_abi > 0 && handled_fs == asked_fs && handled_net == asked_net && scoped == asked_scope;
    if hard && !fully {
        return Err(refuse(match () {
            _ if host_abi == 0 => "any rule (Landlock is unavailable)",
            _ if handled_fs != asked_fs => "every filesystem right of the plan",
            _ if handled_net != asked_net => "TCP port rules (ABI 4)",
            _ => "scopes (ABI 6)",
        }));
    }
    let fs_rules = plan
        .fs_rules
        .iter()
        .filter_map(|r| {
            // A rule may only grant rights that are handled.
            let access = fs_mask(&r.access) & handled_fs;
            let file = access & bits::FS_FILE;
            (access != 0).then(|| ResolvedFsRule {
                path: r.path.clone(),
                access,
                file_access: (!hard || file == access).then_some(file),
            })
        })
        .collect();
    let mut net_rules = Vec::new();
    for (ports, right) in [
        (&plan.tcp_bind, bits::NET_BIND_TCP),
        (&plan.tcp_connect, bits::NET_CONNECT_TCP),
    ] {
        if handled_net & right != 0 {
            net_rules.extend(ports.iter().flatten().map(|p| (*p, right)));
        }
    }
    Ok(ResolvedDomain {
        handled_fs,
        handled_net,
        scoped,
        fs_rules,
        net_rules,
        fully,
        min_abi: plan.min_abi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use FsAccess::*;

    fn rule(path: &str, access: &[FsAccess]) -> FsRule {
        FsRule {
            path: path.into(),
            access: access.to_vec(),
        }
    }

    #[test]
    fn annotation_parses_with_defaults() {
        let p = from_annotation(
            r#"{"fs_rules":[{"path":"/tmp","access":["read_file","write_file"]}]}"#,
        )
        .unwrap();
        assert_eq!(p.fs_rules.len(), 1);
        assert_eq!(p.compat, Compat::Hard);
        assert!(p.tcp_bind.is_none());
    }

    #[test]
    fn bits_are_the_kernel_uapi() {
        // linux/landlock.h
        assert_eq!(bits::fs(Execute), 1);
        assert_eq!(bits::fs(MakeSym), 1 << 12);
        assert_eq!(bits::fs(Refer), 1 << 13);
        assert_eq!(bits::fs(IoctlDev), 1 << 15);
        assert_eq!(
            bits::FS_FILE,
            fs_mask(&[Execute, WriteFile, ReadFile, Truncate, IoctlDev])
        );
        assert_eq!(bits::fs_known(1).count_ones(), 13);
        assert_eq!(bits::fs_known(3), bits::fs_known(4));
        assert_eq!(bits::fs_known(6).count_ones(), 16);
    }

    #[test]
    fn handled_defaults_to_the_union_of_the_rules_and_rules_are_cut_to_it() {
        let plan = LandlockPlan {
            min_abi: 1,
            fs_rules: vec![rule("/", &[ReadFile, ReadDir]), rule("/tmp", &[WriteFile])],
            ..Default::default()
        };
        let d = resolve(&plan, 6).unwrap();
        assert_eq!(d.handled_fs, fs_mask(&[ReadFile, ReadDir, WriteFile]));
        assert_eq!((d.handled_net, d.scoped), (0, 0));
        assert!(d.fully);
        let plan = LandlockPlan {
            handled_fs: vec![ReadFile],
            fs_rules: vec![rule("/", &[ReadFile, WriteFile]), rule("/x", &[Execute])],
            ..plan
        };
        let d = resolve(&plan, 6).unwrap();
        // Only what is handled may be granted; a rule left with nothing is dropped.
        assert_eq!(
            d.fs_rules,
            vec![ResolvedFsRule {
                path: "/".into(),
                access: bits::fs(ReadFile),
                file_access: Some(bits::fs(ReadFile)),
            }]
        );
    }

    #[test]
    fn hard_refuses_what_the_host_lacks_and_best_effort_drops_it() {
        let plan = LandlockPlan {
            min_abi: 6,
            handled_fs: vec![ReadFile, ReadDir, Truncate, IoctlDev],
            fs_rules: vec![rule("/", &[ReadFile, ReadDir, Truncate])],
            tcp_bind: Some(vec![80]),
            tcp_connect: Some(vec![]),
            scope_signal: true,
            ..Default::default()
        };
        for abi in [0, 2, 3, 5] {
            assert!(resolve(&plan, abi).is_err(), "hard at ABI {abi}");
        }
        let d = resolve(&plan, 6).unwrap();
        assert!(d.fully);
        assert_eq!(d.handled_net, bits::NET_BIND_TCP | bits::NET_CONNECT_TCP);
        assert_eq!(d.net_rules, vec![(80, bits::NET_BIND_TCP)]);
        assert_eq!(d.scoped, bits::SCOPE_SIGNAL);
        // A directory right on a rule path that is a file cannot be dropped: hard.
        assert_eq!(d.fs_rules[0].file_access, None);

        let best = LandlockPlan {
            compat: Compat::BestEffort,
            ..plan
        };
        let d = resolve(&best, 3).unwrap();
        assert!(!d.fully);
        assert_eq!(d.handled_fs, fs_mask(&[ReadFile, ReadDir, Truncate]));
        assert_eq!((d.handled_net, d.scoped), (0, 0));
        assert!(d.net_rules.is_empty());
        assert_eq!(
            d.fs_rules[0].file_access,
            Some(fs_mask(&[ReadFile, Truncate]))
        );
        let none = resolve(&best, 0).unwrap();
        assert!(none.is_empty() && !none.fully);
    }
}
