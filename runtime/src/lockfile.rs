//! Exclusive locks on files, held by a guard that never panics when dropped.
//!
//! Two kinds, because they differ in what a fork inherits:
//!
//! - [`Kind::Shared`] is flock(2): it belongs to the open file description, so
//!   threads of one process exclude each other like processes do, and a forked
//!   child holds it too until it closes the fd (or execs: we set close-on-exec).
//!   For short critical sections with no fork inside (the range database).
//! - [`Kind::Process`] is a POSIX record lock (fcntl(2) `F_SETLKW`): it belongs to
//!   the process and is *not* inherited by fork(2). `create` holds the lock of a
//!   container id while libcontainer forks the container's init, which keeps every
//!   fd until its execve after `start`: a flock would then stay held by the waiting
//!   init and block the container's `delete` forever. A process takes one such lock
//!   per file and never opens the file a second time (closing any fd of the file
//!   drops a record lock).
//!
//! Unlike `nix::fcntl::Flock`, the guard never unlocks explicitly: closing the file
//! releases the lock, and there is no unlock call whose failure could panic.
//!
//! A lock file may be removed while held ([`FileLock::remove`], so a deleted
//! container leaves no lock file). A process that was waiting on the removed file
//! then holds a lock nobody else can see; [`FileLock::acquire`] therefore checks,
//! once it holds the lock, that the path still names the locked file, and retries on
//! the new file otherwise.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Which lock (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// flock(2): per open file description; threads exclude each other.
    Shared,
    /// fcntl(2) record lock: per process, not inherited by forked children.
    Process,
}

/// An exclusive lock on `path`, released when dropped.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// Wait for the exclusive lock on `path` (created 0600 if missing).
    pub fn acquire(path: &Path, kind: Kind) -> io::Result<Self> {
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_CLOEXEC)
                .open(path)?;
            lock(&file, kind)?;
            let held = file.metadata()?;
            match std::fs::metadata(path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    return Ok(Self {
                        _file: file,
                        path: path.to_path_buf(),
                    })
                }
                // Removed (or replaced) by the previous holder: lock the new one.
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Remove the lock file while still holding it, then release it.
    pub fn remove(self) -> io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
        // The file closes here, after the unlink: a waiter then sees the path gone.
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Block until `file` is locked; EINTR is retried.
fn lock(file: &File, kind: Kind) -> io::Result<()> {
    loop {
        let rc = match kind {
            // SAFETY: flock only reads the fd, which `file` keeps open.
            Kind::Shared => unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) },
            Kind::Process => {
                // SAFETY: an all-zero flock struct is a valid value (plain integers).
                let mut fl: libc::flock = unsafe { std::mem::zeroed() };
                fl.l_type = libc::F_WRLCK as libc::c_short;
                fl.l_whence = libc::SEEK_SET as libc::c_short;
                // l_start = l_len = 0: the whole file.
                // SAFETY: `fl` is a valid flock struct that outlives the call; the fd
                // is open.
                unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLKW, &fl) }
            }
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn threads_exclude_each_other_and_removal_hands_over_safely() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.lock");
        let inside = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                let inside = inside.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let lock = FileLock::acquire(&path, Kind::Shared).unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        if i % 2 == 0 {
                            lock.remove().unwrap();
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    /// A record lock is not inherited: once `create` lets go of a container's lock,
    /// the container's init (forked while it was held, and keeping every fd until
    /// its execve) must not still hold it. A flock would stay held by the child.
    #[test]
    fn process_lock_is_not_held_by_a_forked_child() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.lock");
        let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        let held = FileLock::acquire(&path, Kind::Process).unwrap();
        // SAFETY: the child only sleeps and exits (async-signal-safe).
        let keeper = unsafe { libc::fork() };
        if keeper == 0 {
            // SAFETY: sleep and _exit are async-signal-safe.
            unsafe {
                libc::sleep(5);
                libc::_exit(0)
            }
        }
        assert!(keeper > 0, "fork: {}", io::Error::last_os_error());
        drop(held);
        // SAFETY: the child only calls open, fcntl and _exit (async-signal-safe),
        // with data prepared before the fork.
        let prober = unsafe { libc::fork() };
        if prober == 0 {
            // SAFETY: a valid C string; an all-zero flock is valid; _exit is safe.
            unsafe {
                let fd = libc::open(cpath.as_ptr(), libc::O_WRONLY);
                let mut fl: libc::flock = std::mem::zeroed();
                fl.l_type = libc::F_WRLCK as libc::c_short;
                let rc = libc::fcntl(fd, libc::F_SETLK, &fl);
                libc::_exit(if rc == 0 { 0 } else { 1 })
            }
        }
        assert!(prober > 0, "fork: {}", io::Error::last_os_error());
        let mut status = 0;
        // SAFETY: status is writable; prober is our child.
        assert_eq!(unsafe { libc::waitpid(prober, &mut status, 0) }, prober);
        // SAFETY: kill and waitpid on our own child.
        unsafe {
            libc::kill(keeper, libc::SIGKILL);
            libc::waitpid(keeper, std::ptr::null_mut(), 0);
        }
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the lock is still held through the forked child"
        );
    }
}
