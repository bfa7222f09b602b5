//! The last code Stockade runs inside a container: it confines the init (or an exec'd
//! process) and replaces itself with the workload.
//!
//! libcontainer calls [`Executor::before_capability_drop`] after the mounts,
//! pivot_root and the uid/gid switch, while the process still holds its permitted
//! capabilities, and [`Executor::exec`] after the capability drop, chdir and the fd
//! sweep. The order is fixed and is what the kernel requires:
//!   1. no_new_privs — whenever the spec asks for it (a profile that requires it has
//!      already refused or injected `process.noNewPrivileges`) or a Landlock domain
//!      is applied, and always before Landlock or seccomp; set and read back;
//!   2. Landlock — after every mount (a Landlock domain forbids mount changes) and
//!      before seccomp (so the filter need not allow the landlock syscalls);
//!   3. seccomp — loads bytes compiled in the parent; makes no decision here. With
//!      no_new_privs it is loaded last, right before execve; without it (the spec says
//!      `noNewPrivileges: false`), as runc does, before the capability drop, because
//!      the kernel then requires CAP_SYS_ADMIN (seccomp(2)), which the spec's
//!      capabilities may not keep;
//!   4. execve — through libcontainer's default executor (PATH lookup, argv).
//!
//! A filter that notifies a seccomp agent (`SCMP_ACT_NOTIFY`) is loaded with a
//! listener, which libcontainer hands to the runtime for `listenerPath` before the
//! init reports ready: without no_new_privs from `before_capability_drop` as above;
//! with it, steps 1–3 run in [`Executor::before_ready`] (runc's load point under
//! no_new_privs) instead of after `start`, in the same order. See
//! [`StockadeExecutor::confines_before_ready`] for why only then.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};

use crate::bind_source::BindIdentities;
use crate::landlock::apply as landlock_apply;
use crate::landlock::plan::ResolvedDomain;
use crate::seccomp::{self, CompiledFilter};

/// The confinement applied to every process started in a container.
#[derive(Clone, Default)]
pub struct StockadeExecutor {
    /// Compiled in the parent before clone; shared, read-only.
    pub seccomp: Option<Arc<CompiledFilter>>,
    /// One Landlock domain per plan (profile first, then the owner's own rules),
    /// resolved to exact masks before the init exists: stacked domains only ever
    /// narrow access.
    pub landlock: Vec<ResolvedDomain>,
    /// What each bind source must be when the init mounts it: the objects admitted
    /// (`bind_source`); the init compares, it does not judge.
    pub binds: BindIdentities,
}

/// The steps of [`StockadeExecutor::exec`], in order. ARCHITECTURE.md quotes this list.
pub const INIT_STEPS: &[&str] = &["no_new_privs", "landlock", "seccomp", "execve"];

#[derive(Debug, thiserror::Error)]
enum ConfineError {
    #[error("failed to re-open /dev/null for stdio")]
    Stdio(#[source] nix::Error),
    #[error("failed to set no_new_privs")]
    SetNoNewPrivs(#[source] nix::Error),
    #[error("no_new_privs is not in effect after setting it")]
    NoNewPrivsNotSet,
    #[error("failed to enforce landlock rules")]
    Landlock(#[source] landlock_apply::LandlockError),
    #[error("failed to load the seccomp filter")]
    Seccomp(#[source] seccomp::SeccompError),
}

/// libcontainer 0.7 re-points stdio fds that referred to the host's /dev/null at
/// the container's /dev/null, but opens it read-only, so a workload whose stdout is
/// /dev/null gets EBADF on every write. Re-point those fds with the access mode the
/// caller gave them.
fn repair_dev_null_stdio() -> Result<(), ConfineError> {
    use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
    use nix::sys::stat::{fstat, Mode, SFlag};
    let null = nix::sys::stat::stat("/dev/null").map_err(ConfineError::Stdio)?;
    for fd in 1..=2 {
        let Ok(st) = fstat(fd) else { continue };
        let is_char = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
        if !is_char || st.st_rdev != null.st_rdev {
            continue;
        }
        let flags =
            OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).map_err(ConfineError::Stdio)?);
        if flags & OFlag::O_ACCMODE != OFlag::O_RDONLY {
            continue;
        }
        let rw = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(ConfineError::Stdio)?;
        nix::unistd::dup2(rw, fd).map_err(ConfineError::Stdio)?;
        nix::unistd::close(rw).map_err(ConfineError::Stdio)?;
    }
    Ok(())
}

impl StockadeExecutor {
    /// Whether the process gets no_new_privs: when the spec asks for it, and always
    /// under a Landlock domain (landlock_restrict_self needs it when unprivileged and
    /// setuid binaries must not regain what the domain takes away). A seccomp filter
    /// alone does not force it: the runtime is privileged and loads the filter before
    /// the capability drop instead (see [`Executor::before_capability_drop`]), as runc
    /// does; the filter is inherited across execve either way.
    fn wants_no_new_privs(&self, spec: &Spec) -> bool {
        let asked = spec.process().as_ref().and_then(|p| p.no_new_privileges()) == Some(true);
        asked || !self.landlock.is_empty()
    }

    /// Whether steps 1–3 run before the init reports ready rather than after
    /// `start`: only for a filter that notifies, under no_new_privs (without it the
    /// filter is loaded before the capability drop anyway). Its listener must reach
    /// the agent while `create` runs, so that an unreachable agent fails `create`
    /// (leaving nothing behind) and `start` never waits on one; runc loads every
    /// filter there. Other filters keep the later point: moving them would not
    /// strengthen anything (what runs in between — the init's report, its wait for
    /// `start`, startContainer hooks — is the runtime's own or the spec's hooks, not
    /// the workload), but would make the filter govern those steps too, so a tight
    /// profile would have to allow the init's own syscalls (runc: "as few syscalls
    /// as possible after it").
    fn confines_before_ready(&self, spec: &Spec) -> bool {
        self.wants_no_new_privs(spec) && self.seccomp.as_ref().is_some_and(|f| f.notifies())
    }

    fn confine(&self, spec: &Spec) -> Result<Option<OwnedFd>, ConfineError> {
        repair_dev_null_stdio()?;
        let nnp = self.wants_no_new_privs(spec);
        if nnp {
            // libcontainer 0.7 sets no_new_privs for the spec with `let _ =`: set it
            // here too and read it back. The result is checked, never discarded.
            nix::sys::prctl::set_no_new_privs().map_err(ConfineError::SetNoNewPrivs)?;
            if !nix::sys::prctl::get_no_new_privs().map_err(ConfineError::SetNoNewPrivs)? {
                return Err(ConfineError::NoNewPrivsNotSet);
            }
        }
        for plan in &self.landlock {
            let enforced = landlock_apply::enforce(plan).map_err(ConfineError::Landlock)?;
            if !enforced.fully {
                // Only reachable under the profile's best_effort compat level (hard
                // refuses); say so rather than let the gap pass unrecorded.
                tracing::warn!(
                    min_abi = plan.min_abi,
                    "landlock enforced partially: the kernel lacks part of the requested rules (best_effort)"
                );
            }
        }
        // Without no_new_privs the filter is already loaded (before_capability_drop).
        match (nnp, &self.seccomp) {
            (true, Some(filter)) => seccomp::load(filter).map_err(ConfineError::Seccomp),
            _ => Ok(None),
        }
    }

    /// The privileged load: a filter without no_new_privs, while CAP_SYS_ADMIN is held.
    fn load_privileged(&self, spec: &Spec) -> Result<Option<OwnedFd>, ConfineError> {
        match &self.seccomp {
            Some(filter) if !self.wants_no_new_privs(spec) => {
                seccomp::load(filter).map_err(ConfineError::Seccomp)
            }
            _ => Ok(None),
        }
    }

    fn confine_and_report(&self, spec: &Spec) -> Result<Option<OwnedFd>, ExecutorError> {
        self.confine(spec).map_err(|e| {
            tracing::error!(error = %crate::error_chain(&e), "container confinement failed");
            ExecutorError::Execution(Box::new(e))
        })
    }
}

impl Executor for StockadeExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let _span = tracing::debug_span!("confine_and_exec").entered();
        if !self.confines_before_ready(spec) {
            // Only a notify filter returns a listener, and it is confined earlier.
            self.confine_and_report(spec)?;
        }
        DefaultExecutor {}.exec(spec)
    }

    fn before_ready(&self, spec: &Spec) -> Result<Option<OwnedFd>, ExecutorError> {
        if !self.confines_before_ready(spec) {
            return Ok(None);
        }
        let _span = tracing::debug_span!("confine_for_seccomp_agent").entered();
        self.confine_and_report(spec)
    }

    fn before_capability_drop(&self, spec: &Spec) -> Result<Option<OwnedFd>, ExecutorError> {
        let _span = tracing::debug_span!("seccomp_without_no_new_privs").entered();
        self.load_privileged(spec).map_err(|e| {
            tracing::error!(error = %crate::error_chain(&e), "container confinement failed");
            ExecutorError::Execution(Box::new(e))
        })
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }

    fn verify_bind_source(
        &self,
        mount: &libcontainer::oci_spec::runtime::Mount,
        source: std::os::fd::BorrowedFd<'_>,
    ) -> Result<(), ExecutorError> {
        let path = mount
            .source()
            .as_deref()
            .unwrap_or(std::path::Path::new(""));
        self.binds
            .verify(path, source)
            .map_err(|e| ExecutorError::Execution(Box::new(e)))
    }
}
