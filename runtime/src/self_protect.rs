//! Protections of the runtime process itself, applied before it touches a container.

use crate::commands::CommandError;

/// Re-execute from a sealed, anonymous copy of our own binary.
///
/// CVE-2019-5736: a process inside the container could open `/proc/<pid>/exe` of a
/// runtime process that joined its namespaces and overwrite the host's runtime binary.
/// Running from a sealed memfd means `/proc/self/exe` names a read-only, unlinked copy,
/// so there is nothing on the host to overwrite. Only the verbs that enter a container
/// (create, run, exec) pay for the copy.
pub fn run_from_sealed_copy() -> Result<(), CommandError> {
    pentacle::ensure_sealed().map_err(CommandError::io(
        "failed to re-execute from a sealed copy of the runtime binary (CVE-2019-5736 protection)",
    ))
}

/// Make this process (and the container init forked from it) non-dumpable until the
/// workload's execve.
///
/// CVE-2016-9962: while the init still holds host resources (fds, the runtime's
/// memory), a process in the container must not be able to ptrace it or open its
/// /proc files. execve of the workload resets the flag as the kernel sees fit.
pub fn make_non_dumpable() -> Result<(), CommandError> {
    nix::sys::prctl::set_dumpable(false).map_err(CommandError::SelfHarden)?;
    if nix::sys::prctl::get_dumpable().map_err(CommandError::SelfHarden)? {
        return Err(CommandError::SelfHarden(nix::Error::EPERM));
    }
    Ok(())
}
