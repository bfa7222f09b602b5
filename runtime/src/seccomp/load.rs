//! Install a compiled filter on the calling thread.

use std::os::fd::{FromRawFd, OwnedFd};

use super::{CompiledFilter, SeccompError};

/// Load `filter` with `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`.
///
/// Runs in the container init. It allocates nothing and makes no decisions, so it is
/// safe to call after `fork` in a multithreaded parent. The caller must already have
/// set no_new_privs (otherwise the kernel refuses with EACCES unless the caller has
/// CAP_SYS_ADMIN; seccomp(2)). A filter that notifies is loaded with
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`, and the kernel's listener fd (close-on-exec)
/// is returned for the agent.
pub fn load(filter: &CompiledFilter) -> Result<Option<OwnedFd>, SeccompError> {
    let program = filter.instructions();
    // compile() guarantees 1..=4096 instructions; never truncate silently if a
    // hand-built value says otherwise.
    let len = u16::try_from(program.len())
        .map_err(|_| SeccompError::Load(std::io::Error::from_raw_os_error(libc::EINVAL)))?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads through this pointer (it copies the program).
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points to `len` initialized sock_filter instructions that outlive
    // the call; seccomp(2) copies them and does not retain the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(filter.flags()),
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(SeccompError::Load(std::io::Error::last_os_error()));
    }
    if !filter.notifies() {
        return Ok(None);
    }
    let fd = std::os::fd::RawFd::try_from(rc)
        .map_err(|_| SeccompError::Load(std::io::Error::from_raw_os_error(libc::EBADF)))?;
    // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a successful seccomp(2) returns a
    // new fd (the listener) that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}
