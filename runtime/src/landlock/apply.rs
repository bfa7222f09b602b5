//! Enforce a [`LandlockPlan`] on the calling process (the container's init, after
//! pivot_root, just before the seccomp filter and execve).
//!
//! Rule paths are opened here, inside the container's root, so they name the
//! container's files and not the host's. Landlock also forbids later mount changes,
//! which is why this runs after every mount is in place.

use landlock::{
    AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

use crate::landlock_plan::{Compat, FsAccess, LandlockPlan};

#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error("landlock: cannot build the ruleset")]
    Ruleset(#[source] landlock::RulesetError),
    #[error("landlock: cannot open rule path {path:?} inside the container")]
    OpenRulePath {
        path: std::path::PathBuf,
        #[source]
        source: landlock::PathFdError,
    },
    #[error(
        "landlock: the kernel cannot enforce the profile's rules in full (status {0:?}) and the profile's compat level is hard"
    )]
    NotFullyEnforced(String),
}

/// What was enforced, for the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enforced {
    pub fully: bool,
}

fn access_flag(a: FsAccess) -> AccessFs {
    match a {
        FsAccess::Execute => AccessFs::Execute,
        FsAccess::WriteFile => AccessFs::WriteFile,
        FsAccess::ReadFile => AccessFs::ReadFile,
        FsAccess::ReadDir => AccessFs::ReadDir,
        FsAccess::RemoveDir => AccessFs::RemoveDir,
        FsAccess::RemoveFile => AccessFs::RemoveFile,
        FsAccess::MakeChar => AccessFs::MakeChar,
        FsAccess::MakeDir => AccessFs::MakeDir,
        FsAccess::MakeReg => AccessFs::MakeReg,
        FsAccess::MakeSock => AccessFs::MakeSock,
        FsAccess::MakeFifo => AccessFs::MakeFifo,
        FsAccess::MakeBlock => AccessFs::MakeBlock,
        FsAccess::MakeSym => AccessFs::MakeSym,
        FsAccess::Refer => AccessFs::Refer,
        FsAccess::Truncate => AccessFs::Truncate,
        FsAccess::IoctlDev => AccessFs::IoctlDev,
    }
}

fn flags(list: &[FsAccess]) -> BitFlags<AccessFs> {
    list.iter()
        .fold(BitFlags::EMPTY, |acc, a| acc | access_flag(*a))
}

/// Build and enforce the plan's ruleset on the current thread (and its future
/// children). The caller has already set no_new_privs and verified it.
pub fn enforce(plan: &LandlockPlan) -> Result<Enforced, LandlockError> {
    let level = match plan.compat {
        Compat::Hard => CompatLevel::HardRequirement,
        Compat::BestEffort => CompatLevel::BestEffort,
    };
    let handled = if plan.handled_fs.is_empty() {
        plan.fs_rules
            .iter()
            .fold(BitFlags::EMPTY, |acc, r| acc | flags(&r.access))
    } else {
        flags(&plan.handled_fs)
    };
    let mut ruleset = Ruleset::default().set_compatibility(level);
    if !handled.is_empty() {
        ruleset = ruleset
            .handle_access(handled)
            .map_err(LandlockError::Ruleset)?;
    }
    let mut net: BitFlags<AccessNet> = BitFlags::EMPTY;
    if plan.tcp_bind.is_some() {
        net |= AccessNet::BindTcp;
    }
    if plan.tcp_connect.is_some() {
        net |= AccessNet::ConnectTcp;
    }
    if !net.is_empty() {
        ruleset = ruleset.handle_access(net).map_err(LandlockError::Ruleset)?;
    }
    if plan.scope_abstract_unix {
        ruleset = ruleset
            .scope(Scope::AbstractUnixSocket)
            .map_err(LandlockError::Ruleset)?;
    }
    if plan.scope_signal {
        ruleset = ruleset
            .scope(Scope::Signal)
            .map_err(LandlockError::Ruleset)?;
    }
    let mut created = ruleset.create().map_err(LandlockError::Ruleset)?;
    for rule in &plan.fs_rules {
        let fd = PathFd::new(&rule.path).map_err(|source| LandlockError::OpenRulePath {
            path: rule.path.clone(),
            source,
        })?;
        // A rule may only grant rights that are handled; intersect so a profile that
        // lists more than it handles does not fail at enforcement time.
        let access = flags(&rule.access) & handled;
        if access.is_empty() {
            continue;
        }
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(LandlockError::Ruleset)?;
    }
    for port in plan.tcp_bind.iter().flatten() {
        created = created
            .add_rule(NetPort::new(*port, AccessNet::BindTcp))
            .map_err(LandlockError::Ruleset)?;
    }
    for port in plan.tcp_connect.iter().flatten() {
        created = created
            .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
            .map_err(LandlockError::Ruleset)?;
    }
    let status = created.restrict_self().map_err(LandlockError::Ruleset)?;
    let fully = status.ruleset == RulesetStatus::FullyEnforced;
    // HardRequirement already errors on a missing feature; this catches a kernel
    // without Landlock at all, which the crate reports as NotEnforced.
    if plan.compat == Compat::Hard && !fully {
        return Err(LandlockError::NotFullyEnforced(format!(
            "{:?}",
            status.ruleset
        )));
    }
    Ok(Enforced { fully })
}

/// Parse the rules a container owner may add through the `org.stockade.landlock`
/// annotation. Landlock only ever narrows access, so an owner-supplied domain stacked
/// on the profile's cannot weaken anything.
pub fn from_annotation(value: &str) -> Result<LandlockPlan, serde_json::Error> {
    serde_json::from_str(value)
}

pub const ANNOTATION: &str = "org.stockade.landlock";

#[cfg(test)]
mod tests {
    use super::*;

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
    fn handled_defaults_to_union_of_rules() {
        let f = flags(&[FsAccess::ReadFile, FsAccess::WriteFile]);
        assert!(f.contains(AccessFs::ReadFile) && f.contains(AccessFs::WriteFile));
        assert!(!f.contains(AccessFs::Execute));
    }
}
