//! Enforce a [`ResolvedDomain`] on the calling process (the container's init, after
//! pivot_root, just before the seccomp filter and execve; or an exec'd process).
//!
//! Everything was decided at admission (`landlock::plan::resolve`): the handled
//! rights, each rule's mask, what the host's ABI lacks. This only makes the three
//! syscalls (landlock(7)). Rule paths are opened here, inside the container's root,
//! so they name the container's files and not the host's; whether a rule path is a
//! directory is the one thing only the init can see, and the plan already holds the
//! mask for either case. Landlock also forbids later mount changes, which is why
//! this runs after every mount is in place.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::plan::ResolvedDomain;

#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error("landlock: cannot create the ruleset")]
    CreateRuleset(#[source] io::Error),
    #[error("landlock: cannot open rule path {path:?} inside the container")]
    OpenRulePath {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("landlock: rule path {path:?} is not a directory, and the rights granted beneath it need one (compat level hard)")]
    NotADirectory { path: PathBuf },
    #[error("landlock: cannot add the rule for {what}")]
    AddRule {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("landlock: cannot restrict the process")]
    RestrictSelf(#[source] io::Error),
}

/// What was enforced, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enforced {
    pub fully: bool,
}

/// `struct landlock_ruleset_attr` (linux/landlock.h). Passed whole to every
/// kernel: one that knows fewer fields accepts them when they are zero, which
/// `resolve` guarantees for anything beyond the host's ABI.
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// `struct landlock_path_beneath_attr`, packed as in the UAPI header.
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// `struct landlock_net_port_attr`.
#[repr(C)]
struct NetPortAttr {
    allowed_access: u64,
    port: u64,
}

const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;
const LANDLOCK_RULE_NET_PORT: libc::c_int = 2;

fn add_rule<T>(ruleset: &OwnedFd, kind: libc::c_int, attr: &T) -> io::Result<()> {
    // SAFETY: attr points to a live, initialised UAPI struct of the rule type `kind`
    // names; the kernel only reads it during the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            kind,
            attr as *const T,
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Enforce `domain` on the current thread (and its future children). The caller has
/// already set no_new_privs and verified it.
pub fn enforce(domain: &ResolvedDomain) -> Result<Enforced, LandlockError> {
    if domain.is_empty() {
        // Nothing this kernel can enforce (admission said so under best_effort).
        return Ok(Enforced {
            fully: domain.fully,
        });
    }
    let attr = RulesetAttr {
        handled_access_fs: domain.handled_fs,
        handled_access_net: domain.handled_net,
        scoped: domain.scoped,
    };
    // SAFETY: attr is a live ruleset attr whose size we pass; the kernel only reads it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0,
        )
    };
    if fd < 0 {
        return Err(LandlockError::CreateRuleset(io::Error::last_os_error()));
    }
    // SAFETY: landlock_create_ruleset returned a new fd that nothing else owns.
    let ruleset = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut fully = domain.fully;
    for rule in &domain.fs_rules {
        let open_error = |source| LandlockError::OpenRulePath {
            path: rule.path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(&rule.path)
            .map_err(open_error)?;
        let is_dir = file.metadata().map_err(open_error)?.is_dir();
        let access = match (is_dir, rule.file_access) {
            (true, _) => rule.access,
            (false, Some(file_access)) => file_access,
            (false, None) => {
                return Err(LandlockError::NotADirectory {
                    path: rule.path.clone(),
                })
            }
        };
        fully &= access == rule.access;
        if access == 0 {
            continue;
        }
        let attr = PathBeneathAttr {
            allowed_access: access,
            parent_fd: file.as_raw_fd(),
        };
        add_rule(&ruleset, LANDLOCK_RULE_PATH_BENEATH, &attr).map_err(|source| {
            LandlockError::AddRule {
                what: format!("{}", rule.path.display()),
                source,
            }
        })?;
    }
    for &(port, access) in &domain.net_rules {
        let attr = NetPortAttr {
            allowed_access: access,
            port: port.into(),
        };
        add_rule(&ruleset, LANDLOCK_RULE_NET_PORT, &attr).map_err(|source| {
            LandlockError::AddRule {
                what: format!("TCP port {port}"),
                source,
            }
        })?;
    }
    // SAFETY: a plain syscall on a ruleset fd we own; no memory is passed.
    let rc = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0) };
    if rc < 0 {
        return Err(LandlockError::RestrictSelf(io::Error::last_os_error()));
    }
    Ok(Enforced { fully })
}
