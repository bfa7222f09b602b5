//! Stdio pipes a container inherits from its caller, handed to the container's root.
//!
//! A shim (ours, or containerd's runc shim with `BinaryName = stockade`) gives the
//! container anonymous pipes as stdio and chowns them to the container's root as the
//! *caller's* spec maps it. When Stockade injects the user namespace, that spec has no
//! mapping, so the pipes stay owned by host root, which is unmapped inside: reopening
//! `/dev/stdout` (`/proc/self/fd/1`) then fails with EACCES, although writing to the
//! inherited fd works. Only Stockade knows the range it allocated, so it hands the
//! pipes over itself, as runc's shim does for a spec-given mapping.
//!
//! Only anonymous pipes (pipefs, see pipe(7)) are touched: a named FIFO, a regular
//! file or a terminal the caller passed belongs to the caller and keeps its owner.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use super::HostRange;

/// `PIPEFS_MAGIC` from <linux/magic.h>: the pseudo filesystem of pipe(2) pipes.
const PIPEFS_MAGIC: i64 = 0x5049_5045;

/// Chown every anonymous pipe among fds 0, 1 and 2 to the range's root (container
/// uid and gid 0 map to `range.start`). A failure is logged, not fatal: the process
/// can still use the fds it inherited, only reopening them fails.
pub fn chown_inherited_pipes(range: HostRange) {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let stderr = io::stderr();
    for (n, fd) in [(0, stdin.as_fd()), (1, stdout.as_fd()), (2, stderr.as_fd())] {
        match chown_if_pipe(fd, range.start) {
            Ok(true) => tracing::debug!(fd = n, owner = range.start, "stdio pipe chowned"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(fd = n, error = %e, "cannot chown stdio pipe to the container's root")
            }
        }
    }
}

/// `Ok(true)` when `fd` is an anonymous pipe and now belongs to `id:id`.
fn chown_if_pipe(fd: BorrowedFd<'_>, id: u32) -> io::Result<bool> {
    let fs = match nix::sys::statfs::fstatfs(fd) {
        Ok(fs) => fs,
        // A closed stdio fd is not ours to worry about.
        Err(nix::errno::Errno::EBADF) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if fs.filesystem_type().0 as i64 != PIPEFS_MAGIC {
        return Ok(false);
    }
    std::os::unix::fs::fchown(fd, Some(id), Some(id))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_files_are_left_alone() {
        let f = tempfile::tempfile().unwrap();
        // Not a pipe: untouched, whatever the id (no root needed).
        assert!(!chown_if_pipe(f.as_fd(), 4_000_000).unwrap());
    }

    #[test]
    fn a_named_fifo_is_not_an_anonymous_pipe() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        assert!(!chown_if_pipe(f.as_fd(), 4_000_000).unwrap());
    }

    #[test]
    fn an_anonymous_pipe_is_recognised() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        // Without CAP_CHOWN the chown itself may fail (EPERM): it was still
        // recognised as a pipe, or it would have returned Ok(false).
        match chown_if_pipe(r.as_fd(), nix::unistd::geteuid().as_raw()) {
            Ok(done) => assert!(done),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
        }
    }
}
