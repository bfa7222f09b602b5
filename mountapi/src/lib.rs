//! The new mount API steps both Stockade binaries use to make idmapped mounts:
//! `open_tree(OPEN_TREE_CLONE)` of a source (by path, or of an fd already opened and
//! checked), `mount_setattr(MOUNT_ATTR_IDMAP)` on the detached clone (the kernel
//! only idmaps mounts that are not attached yet) and `move_mount` onto the target
//! (open_tree(2), mount_setattr(2), move_mount(2)). The runtime idmaps a
//! container's rootfs and volumes with them, the shim the lower layers of an
//! overlay containerd sends with `uidmap=`/`gidmap=`; each keeps its own error
//! type and wraps [`MountApiError`], which names the step that failed.
//!
//! Also the escaping of overlayfs `lowerdir=` lists, which both rewrite.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One step of an idmapped clone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    OpenTree,
    SetIdmap,
    MoveMount,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::OpenTree => "open_tree",
            Step::SetIdmap => "mount_setattr(MOUNT_ATTR_IDMAP)",
            Step::MoveMount => "move_mount",
        })
    }
}

/// A failed step, with the kernel's answer.
#[derive(Debug, thiserror::Error)]
#[error("{step} failed")]
pub struct MountApiError {
    pub step: Step,
    #[source]
    pub source: io::Error,
}

/// What to clone: a path (looked up now) or an object already opened (`O_PATH`).
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    Path(&'a Path),
    Opened(BorrowedFd<'a>),
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

/// A detached clone of `source` (with every mount below it when `recursive`).
pub fn clone_tree(source: Source<'_>, recursive: bool) -> io::Result<OwnedFd> {
    let rec = if recursive { libc::AT_RECURSIVE } else { 0 };
    // An opened source is cloned from its fd (empty path), not looked up again.
    let (dirfd, path, empty) = match source {
        Source::Opened(fd) => (fd.as_raw_fd(), CString::default(), libc::AT_EMPTY_PATH),
        Source::Path(p) => (libc::AT_FDCWD, cstring(p)?, 0),
    };
    // SAFETY: path is NUL-terminated and outlives the call, dirfd is AT_FDCWD or an
    // fd borrowed for the call; open_tree reads them and returns a new fd or -1.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd,
            path.as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | (rec | empty) as libc::c_uint,
        )
    };
    if tree < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open_tree returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(tree as i32) })
}

/// Idmap the detached mount `tree` with the mapping of user namespace `userns`;
/// with `recursive`, every mount below it too. EINVAL where the filesystem cannot
/// be idmapped.
pub fn set_idmap(tree: BorrowedFd<'_>, userns: BorrowedFd<'_>, recursive: bool) -> io::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let rec = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: the empty path is static and NUL-terminated; attr is a valid
    // mount_attr whose size we pass; the kernel only reads both.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | rec,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Attach the detached mount `tree` on `target`.
pub fn move_tree(tree: BorrowedFd<'_>, target: &Path) -> io::Result<()> {
    let dst = cstring(target)?;
    // SAFETY: both paths are NUL-terminated and outlive the call; move_mount only
    // reads them; the tree fd stays the caller's.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Attach an idmapped clone of `source` on `target` (which must exist, of the
/// source's kind): the three steps in order.
pub fn idmapped_clone(
    userns: BorrowedFd<'_>,
    source: Source<'_>,
    target: &Path,
    recursive: bool,
) -> Result<(), MountApiError> {
    use std::os::fd::AsFd;
    let fail = |step| move |source| MountApiError { step, source };
    let tree = clone_tree(source, recursive).map_err(fail(Step::OpenTree))?;
    set_idmap(tree.as_fd(), userns, recursive).map_err(fail(Step::SetIdmap))?;
    move_tree(tree.as_fd(), target).map_err(fail(Step::MoveMount))
}

/// overlayfs `lowerdir=` value of `lowers` (top layer first): `:` separates,
/// `\` escapes `:` and itself.
pub fn join_lowerdirs(lowers: &[PathBuf]) -> String {
    lowers
        .iter()
        .map(|p| {
            p.to_string_lossy()
                .replace('\\', "\\\\")
                .replace(':', "\\:")
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// Overlay mount options with their `lowerdir=` replaced by `lowers`.
pub fn with_lowerdirs(options: &[String], lowers: &[PathBuf]) -> Vec<String> {
    let joined = join_lowerdirs(lowers);
    options
        .iter()
        .map(|o| match o.starts_with("lowerdir=") {
            true => format!("lowerdir={joined}"),
            false => o.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdirs_are_escaped_and_replaced() {
        let lowers = [PathBuf::from("/a:b"), PathBuf::from("/c\\d"), "/e".into()];
        assert_eq!(join_lowerdirs(&lowers), "/a\\:b:/c\\\\d:/e");
        let opts = ["lowerdir=/x:/y", "upperdir=/u", "ro"].map(String::from);
        assert_eq!(
            with_lowerdirs(&opts, &lowers[2..]),
            ["lowerdir=/e", "upperdir=/u", "ro"].map(String::from)
        );
    }

    #[test]
    fn a_failed_step_is_named() {
        // No such source: open_tree fails first, and says so.
        use std::os::fd::AsFd;
        let devnull = std::fs::File::open("/dev/null").unwrap();
        let err = idmapped_clone(
            devnull.as_fd(),
            Source::Path(Path::new("/nonexistent/stockade-mountapi")),
            Path::new("/nonexistent/target"),
            false,
        )
        .unwrap_err();
        assert_eq!(err.step, Step::OpenTree);
        assert_eq!(err.to_string(), "open_tree failed");
    }
}
