//! Idmapped mounts (mount_setattr(2) `MOUNT_ATTR_IDMAP`), so an ordinary image whose
//! files belong to host root still looks root-owned inside a container whose root is
//! an unprivileged host id: through the mount, on-disk id `c` shows as the host id the
//! mapping gives container id `c`, and the container's own user namespace maps that
//! back to `c`. Nothing on disk is chowned, so one image serves every range.
//!
//! Steps (mount_setattr(2), open_tree(2), move_mount(2)):
//! 1. a holder child is cloned into a new user namespace; we write its uid_map and gid_map and
//!    open `/proc/<child>/ns/user`, then kill and reap the child — the fd keeps the
//!    namespace alive as long as we need it;
//! 2. `open_tree(OPEN_TREE_CLONE)` of the source: a detached, non-recursive bind
//!    clone (submounts are not carried in, as with a plain bind mount);
//! 3. `mount_setattr(MOUNT_ATTR_IDMAP)` with the namespace fd on the detached clone
//!    (the kernel only idmaps mounts that are not yet attached);
//! 4. `move_mount` attaches the clone onto the target.
//!
//! The filesystem must support idmapped mounts (ext4, xfs, btrfs; tmpfs since 6.3);
//! otherwise step 3 fails with EINVAL. An overlayfs mount itself cannot be idmapped
//! (EINVAL on 6.18): for containerd's overlay rootfs, idmap its *lower* layers and
//! mount a new overlay over them with an upper owned by the range (see the
//! `overlay_over_idmapped_lower_layers_and_tmpfs_work` test).

use std::ffi::CString;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxIdMapping;

use super::UsernsError;

/// A user namespace that exists only to carry an idmapping for mounts. Keep it while
/// creating mounts; the mounts keep their own reference afterwards.
#[derive(Debug)]
pub struct IdmapUserns {
    fd: OwnedFd,
}

impl IdmapUserns {
    /// A fresh user namespace with exactly these mappings (`containerID` is the id
    /// on disk, `hostID` the id the mount shows for it).
    pub fn new(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<Self, UsernsError> {
        if uid.is_empty() {
            return Err(UsernsError::EmptyIdMap { kind: "uid" });
        }
        if gid.is_empty() {
            return Err(UsernsError::EmptyIdMap { kind: "gid" });
        }
        let holder = Holder::spawn()?;
        let proc_dir = PathBuf::from(format!("/proc/{}", holder.pid));
        // As root in the parent namespace we hold CAP_SETUID/CAP_SETGID over the
        // child's namespace, so gid_map needs no `setgroups deny` first
        // (user_namespaces(7), "Defining user and group ID mappings").
        write_map(&proc_dir.join("uid_map"), uid)?;
        write_map(&proc_dir.join("gid_map"), gid)?;
        let ns_path = proc_dir.join("ns/user");
        let ns = File::open(&ns_path).map_err(|source| UsernsError::OpenUserNamespace {
            path: ns_path,
            source,
        })?;
        drop(holder);
        Ok(Self { fd: ns.into() })
    }

    /// Attach an idmapped clone of `source` onto `target`, creating `target` (a
    /// directory or an empty file, like `source`; its parent must exist). Parent
    /// directories of `target` must be searchable by the container's host ids, or
    /// its init cannot reach the mount.
    pub fn mount(&self, source: &Path, target: &Path) -> Result<(), UsernsError> {
        self.mount_tree(source, target, false)
    }

    /// Like [`Self::mount`], but clones and idmaps every mount below `source` too
    /// (what an `rbind` volume needs). Fails if any of them cannot be idmapped.
    pub fn mount_recursive(&self, source: &Path, target: &Path) -> Result<(), UsernsError> {
        self.mount_tree(source, target, true)
    }

    /// Like [`Self::mount`] (or [`Self::mount_recursive`]), but of the object `opened`
    /// (an `O_PATH` fd of `source`, which only names it): the very object that was
    /// checked, never the path resolved again.
    pub fn mount_opened(
        &self,
        source: &Path,
        opened: BorrowedFd<'_>,
        target: &Path,
        recursive: bool,
    ) -> Result<(), UsernsError> {
        self.mount_tree_of(source, Some(opened), target, recursive)
    }

    fn mount_tree(&self, source: &Path, target: &Path, recursive: bool) -> Result<(), UsernsError> {
        self.mount_tree_of(source, None, target, recursive)
    }

    fn mount_tree_of(
        &self,
        source: &Path,
        opened: Option<BorrowedFd<'_>>,
        target: &Path,
        recursive: bool,
    ) -> Result<(), UsernsError> {
        let span =
            tracing::debug_span!("idmap", source = %source.display(), target = %target.display());
        let _enter = span.enter();
        let stat_error = |e| UsernsError::StatSource {
            path: source.to_path_buf(),
            source: e,
        };
        let meta = match opened {
            Some(fd) => fd
                .try_clone_to_owned()
                .and_then(|fd| File::from(fd).metadata())
                .map_err(stat_error)?,
            None => fs::metadata(source).map_err(stat_error)?,
        };
        let created = create_target(source, target, &meta)?;
        let result = self.attach(source, opened, target, recursive);
        if result.is_err() && created {
            // Leave nothing behind: the target was ours and nothing is mounted on it.
            let _ = if meta.is_dir() {
                fs::remove_dir(target)
            } else {
                fs::remove_file(target)
            };
        }
        result
    }

    /// Idmap the detached mount `tree` (an `open_tree(OPEN_TREE_CLONE)` fd) with this
    /// namespace's mapping; with `recursive`, every mount below it too.
    /// Fails with EINVAL where the filesystem cannot be idmapped.
    pub fn idmap_tree(&self, tree: BorrowedFd<'_>, recursive: bool) -> io::Result<()> {
        stockade_mountapi::set_idmap(tree, self.fd.as_fd(), recursive)
    }

    /// The idmapped clone itself (`stockade_mountapi`, shared with the shim), its
    /// failed step named with the paths.
    fn attach(
        &self,
        source: &Path,
        opened: Option<BorrowedFd<'_>>,
        target: &Path,
        recursive: bool,
    ) -> Result<(), UsernsError> {
        use stockade_mountapi::{Source, Step};
        // An opened source is cloned from its fd, never looked up again.
        let from = match opened {
            Some(fd) => Source::Opened(fd),
            None => Source::Path(source),
        };
        stockade_mountapi::idmapped_clone(self.fd.as_fd(), from, target, recursive).map_err(|e| {
            let path = source.to_path_buf();
            match e.step {
                Step::OpenTree => UsernsError::OpenTree {
                    path,
                    source: e.source,
                },
                Step::SetIdmap => UsernsError::SetIdmap {
                    path,
                    source: e.source,
                },
                Step::MoveMount => UsernsError::MoveMount {
                    from: path,
                    to: target.to_path_buf(),
                    source: e.source,
                },
            }
        })
    }
}

/// `fsopen(2)`/`fsmount(2)` flags and `fsconfig(2)` command (linux/mount.h).
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
/// Source name of the probe's tmpfs, so a test can tell it never became visible.
pub const PROBE_SOURCE: &std::ffi::CStr = c"stockade-idmap-probe";

/// Whether this kernel can idmap a tmpfs mount (FS_ALLOW_IDMAP on tmpfs, Linux 6.3).
/// Probed on a fresh, never attached tmpfs (fsopen + fsmount): nothing becomes
/// visible on the host, and the mount is gone when its fd closes. `Err` when the
/// probe itself cannot run (no privilege, no new mount API).
pub fn tmpfs_supports_idmap() -> io::Result<bool> {
    let fd = |ret: libc::c_long| -> io::Result<OwnedFd> {
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the syscall returned a fresh fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
    };
    // SAFETY: the fs name is a static NUL-terminated string the kernel only reads.
    let fs = fd(unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: key and value are static NUL-terminated strings the kernel only reads.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            c"source".as_ptr(),
            PROBE_SOURCE.as_ptr(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: FSCONFIG_CMD_CREATE takes no key, value or aux (all null/0).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fs is a configured filesystem context; fsmount reads no memory.
    let mnt = fd(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) })?;
    let one = oci_spec::runtime::LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(0u32)
        .size(1u32)
        .build()
        .map_err(io::Error::other)?;
    let ns = IdmapUserns::new(std::slice::from_ref(&one), std::slice::from_ref(&one))
        .map_err(io::Error::other)?;
    match ns.idmap_tree(mnt.as_fd(), false) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
        Err(e) => Err(e),
    }
}

/// One-shot: idmap `source` onto `target` with these mappings.
pub fn mount(
    source: &Path,
    target: &Path,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
) -> Result<(), UsernsError> {
    IdmapUserns::new(uid, gid)?.mount(source, target)
}

/// Lazily unmount whatever is mounted on `target` and remove it. Idempotent: a
/// missing target, or one with nothing mounted, is fine.
/// A plain (not idmapped, non-recursive) bind of `source` onto `target`, for a rootfs
/// that cannot be idmapped but must be reachable by an unprivileged container root:
/// the caller's bundle directory may be closed to it (containerd makes it 0700 when
/// the spec it wrote has no user namespace). Removed with [`remove`].
pub fn bind(source: &Path, target: &Path) -> Result<(), UsernsError> {
    let meta = fs::metadata(source).map_err(|e| UsernsError::StatSource {
        path: source.to_path_buf(),
        source: e,
    })?;
    let created = create_target(source, target, &meta)?;
    let result = nix::mount::mount(
        Some(source),
        target,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| UsernsError::BindMount {
        from: source.to_path_buf(),
        to: target.to_path_buf(),
        source: e.into(),
    });
    if result.is_err() && created {
        let _ = fs::remove_dir(target);
    }
    result
}

pub fn remove(target: &Path) -> Result<(), UsernsError> {
    let path = cstring(target);
    // Bounded: a target with a stack of mounts is peeled one layer per round.
    for _ in 0..16 {
        // MNT_DETACH: a container still running in its own mount namespace keeps its
        // copy; ours goes now (umount(2)). UMOUNT_NOFOLLOW: never unmount elsewhere
        // through a symlink planted at the target.
        // SAFETY: path is NUL-terminated and outlives the call.
        let rc = unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
        if rc == 0 {
            continue;
        }
        match Errno::last() {
            Errno::EINVAL => break,
            Errno::ENOENT => return Ok(()),
            e => {
                return Err(UsernsError::Unmount {
                    path: target.to_path_buf(),
                    source: io::Error::from(e),
                })
            }
        }
    }
    let removed = match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => fs::remove_dir(target),
        Ok(_) => fs::remove_file(target),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(UsernsError::RemoveTarget {
            path: target.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// The target as `source` needs it; true when we created it.
fn create_target(source: &Path, target: &Path, meta: &fs::Metadata) -> Result<bool, UsernsError> {
    let wrap = |e| UsernsError::CreateTarget {
        path: target.to_path_buf(),
        source: e,
    };
    let made = if meta.is_dir() {
        DirBuilder::new().mode(0o700).create(target).map(|()| true)
    } else if meta.is_file() {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(target)
            .map(|_| true)
    } else {
        return Err(UsernsError::UnsupportedSource {
            path: source.to_path_buf(),
        });
    };
    match made {
        Ok(created) => Ok(created),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(wrap(e)),
    }
}

fn write_map(path: &Path, mappings: &[LinuxIdMapping]) -> Result<(), UsernsError> {
    let text: String = mappings
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    // The kernel takes a map in a single write(2) only (user_namespaces(7)).
    fs::write(path, text).map_err(|source| UsernsError::WriteIdMap {
        path: path.to_path_buf(),
        source,
    })
}

fn cstring(path: &Path) -> CString {
    // Paths from the OS cannot hold NUL; one from a spec could, and then it names no
    // file: the syscall fails with ENOENT on the truncated-to-empty path.
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}

/// A child process that sits in a fresh user namespace until killed.
struct Holder {
    pid: Pid,
}

impl Holder {
    /// A child born in a new user namespace: clone(2) with `CLONE_NEWUSER` makes
    /// the namespace before it returns, so its maps can be written at once. (A
    /// child that unshared itself had to be scheduled and report back over a pipe
    /// first: on a loaded host that wait was the holder's whole cost.)
    fn spawn() -> Result<Self, UsernsError> {
        let parent = nix::unistd::getpid();
        // SAFETY: clone(2) without CLONE_VM and with a null stack is fork(2) (the
        // child runs on a copy of our stack) plus a new user namespace; the child
        // only makes async-signal-safe calls (prctl, getppid, pause, _exit), so
        // cloning a multithreaded parent is sound. Raw clone skips glibc's atfork
        // handlers, which the child needs none of.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_clone,
                libc::CLONE_NEWUSER as libc::c_ulong | libc::SIGCHLD as libc::c_ulong,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::pid_t>(),
                std::ptr::null_mut::<libc::pid_t>(),
                0 as libc::c_ulong,
            )
        };
        match rc {
            -1 => Err(UsernsError::HolderClone(Errno::last())),
            0 => {
                // Die with the runtime: a `create` killed (-9) before it kills us
                // would otherwise leave us paused forever, holding a user namespace.
                // SAFETY: prctl(PR_SET_PDEATHSIG) takes an integer signal; no memory.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
                // The parent may have died before the prctl took effect.
                if nix::unistd::getppid() != parent {
                    // SAFETY: _exit is async-signal-safe and never returns.
                    unsafe { libc::_exit(1) };
                }
                loop {
                    // SAFETY: pause(2) has no preconditions; the parent SIGKILLs us.
                    unsafe { libc::pause() };
                }
            }
            child => Ok(Holder {
                pid: Pid::from_raw(child as libc::pid_t),
            }),
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // The child never exits on its own: kill, then reap it so no zombie is left.
        let _ = kill(self.pid, Signal::SIGKILL);
        while let Err(Errno::EINTR) = waitpid(self.pid, None) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;
    use std::os::unix::fs::MetadataExt;

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    fn map(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(s)
            .build()
            .unwrap()
    }

    fn mounted(target: &Path) -> bool {
        let t = target.to_string_lossy().into_owned();
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split_whitespace().nth(4) == Some(t.as_str()))
    }

    #[test]
    fn empty_mappings_are_refused_before_any_side_effect() {
        assert!(matches!(
            IdmapUserns::new(&[], &[map(0, 1, 1)]).unwrap_err(),
            UsernsError::EmptyIdMap { kind: "uid" }
        ));
        assert!(matches!(
            IdmapUserns::new(&[map(0, 1, 1)], &[]).unwrap_err(),
            UsernsError::EmptyIdMap { kind: "gid" }
        ));
    }

    #[test]
    fn remove_of_a_missing_or_plain_target_is_ok() {
        let dir = tempfile::tempdir().unwrap();
        remove(&dir.path().join("missing")).unwrap();
        let plain = dir.path().join("plain");
        fs::create_dir(&plain).unwrap();
        if is_root() {
            // umount2 on a plain dir is EINVAL (as root); unprivileged it is EPERM.
            remove(&plain).unwrap();
            assert!(!plain.exists());
        }
    }

    #[test]
    fn idmapped_dir_and_file_show_mapped_owners_and_are_removed() {
        if !is_root() {
            eprintln!("SKIPPED: idmapped mounts need root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("f"), "x").unwrap();
        nix::unistd::chown(
            &src.join("f"),
            Some(nix::unistd::Uid::from_raw(5)),
            Some(nix::unistd::Gid::from_raw(7)),
        )
        .unwrap();
        let target = dir.path().join("target");
        let ns = IdmapUserns::new(&[map(0, 300_000, 65536)], &[map(0, 400_000, 65536)]).unwrap();
        ns.mount(&src, &target).unwrap();
        assert!(mounted(&target));
        let root = fs::metadata(&target).unwrap();
        assert_eq!((root.uid(), root.gid()), (300_000, 400_000));
        let f = fs::metadata(target.join("f")).unwrap();
        assert_eq!((f.uid(), f.gid()), (300_005, 400_007));
        // The source itself is untouched.
        assert_eq!(fs::metadata(&src).unwrap().uid(), 0);

        let file_target = dir.path().join("file-target");
        ns.mount(&src.join("f"), &file_target).unwrap();
        assert_eq!(fs::metadata(&file_target).unwrap().uid(), 300_005);
        assert_eq!(fs::read_to_string(&file_target).unwrap(), "x");

        remove(&target).unwrap();
        remove(&file_target).unwrap();
        remove(&target).unwrap();
        assert!(!mounted(&target) && !target.exists());
        assert!(!mounted(&file_target) && !file_target.exists());
        assert!(src.join("f").exists());
    }

    /// containerd hands over the rootfs as an overlay mount, which cannot itself be
    /// idmapped (overlayfs lacks FS_ALLOW_IDMAP: EINVAL). What works (Linux >= 5.19,
    /// and is what containerd 2's remapping overlay snapshotter does): an overlay
    /// whose *lower* layers are idmapped mounts, over an upper and work dir owned by
    /// the range (an idmapped upper fails: the mounter, host root, has no on-disk id
    /// through the mapping, EOVERFLOW, and overlayfs falls back to read-only). tmpfs
    /// (emptyDir) idmaps directly since 6.3.
    #[test]
    fn overlay_over_idmapped_lower_layers_and_tmpfs_work() {
        if !is_root() {
            eprintln!("SKIPPED: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = |n: &str| {
            let p = dir.path().join(n);
            fs::create_dir_all(&p).unwrap();
            p
        };
        let (lower, snap, merged, tmp) = (d("lower"), d("snap"), d("merged"), d("tmp"));
        for sub in [d("snap/fs"), d("snap/work")] {
            let range_root = Some(nix::unistd::Uid::from_raw(300_000));
            nix::unistd::chown(&sub, range_root, Some(nix::unistd::Gid::from_raw(300_000)))
                .unwrap();
        }
        fs::write(lower.join("f"), "x").unwrap();
        let overlay = |lower: &Path| {
            let opts = format!(
                "lowerdir={},upperdir={},workdir={}",
                lower.display(),
                snap.join("fs").display(),
                snap.join("work").display()
            );
            nix::mount::mount(
                Some("overlay"),
                &merged,
                Some("overlay"),
                nix::mount::MsFlags::empty(),
                Some(opts.as_str()),
            )
        };
        let ns = IdmapUserns::new(&[map(0, 300_000, 65536)], &[map(0, 300_000, 65536)]).unwrap();

        // The overlay mount itself: refused by the kernel, and no target is left.
        overlay(&lower).unwrap();
        let direct = ns.mount(&merged, &dir.path().join("direct"));
        remove(&merged).unwrap();
        assert!(
            matches!(direct, Err(UsernsError::SetIdmap { .. })),
            "{direct:?}"
        );
        assert!(!dir.path().join("direct").exists());

        // An overlay over an idmapped lower layer: the image's files show as the
        // range's, the range-owned upper is the (writable) root.
        let lower_i = dir.path().join("lower-i");
        ns.mount(&lower, &lower_i).unwrap();
        fs::create_dir(&merged).unwrap();
        let layered = overlay(&lower_i).map(|()| {
            let file = fs::metadata(merged.join("f")).unwrap().uid();
            let root = fs::metadata(&merged).unwrap().uid();
            let write = fs::write(merged.join("new"), "z");
            (file, root, write)
        });
        remove(&merged).unwrap();
        remove(&lower_i).unwrap();

        nix::mount::mount(
            Some("tmpfs"),
            &tmp,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap();
        fs::write(tmp.join("g"), "y").unwrap();
        let tmp_target = dir.path().join("tmp-i");
        let tmpfs = ns.mount(&tmp, &tmp_target).map(|()| {
            let uid = fs::metadata(tmp_target.join("g")).unwrap().uid();
            remove(&tmp_target).unwrap();
            uid
        });
        remove(&tmp).unwrap();

        let (file, root, write) = layered.unwrap();
        assert_eq!((file, root), (300_000, 300_000));
        write.unwrap();
        assert_eq!(tmpfs.unwrap(), 300_000);
        assert!(!mounted(&merged) && !mounted(&tmp) && !mounted(&lower_i));
        assert_eq!(
            fs::metadata(lower.join("f")).unwrap().uid(),
            0,
            "image untouched"
        );
    }

    #[test]
    fn a_failed_mount_leaves_no_target_behind() {
        if !is_root() {
            eprintln!("SKIPPED: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let ns = IdmapUserns::new(&[map(0, 300_000, 10)], &[map(0, 300_000, 10)]).unwrap();
        // /proc does not support idmapped mounts.
        let target = dir.path().join("t");
        let err = ns.mount(Path::new("/proc"), &target).unwrap_err();
        assert!(matches!(err, UsernsError::SetIdmap { .. }), "{err:?}");
        assert!(!target.exists());
        let err = ns.mount(&dir.path().join("nope"), &target).unwrap_err();
        assert!(matches!(err, UsernsError::StatSource { .. }), "{err:?}");
        assert!(!target.exists());
    }

    /// The probe answers on this kernel without touching the host's mounts; the
    /// answer agrees with idmapping a real tmpfs bind (covered above on >= 6.3).
    #[test]
    fn tmpfs_idmap_probe_matches_the_kernel() {
        if !is_root() {
            return;
        }
        let supported = tmpfs_supports_idmap().unwrap();
        // The probe's tmpfs was never attached (other tests mount and unmount in
        // parallel, so only its own source name tells).
        let after = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let probe = PROBE_SOURCE.to_str().unwrap();
        assert!(!after.contains(probe), "{after}");
        let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut nums = release
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse::<u32>().ok());
        let (major, minor) = (nums.next().unwrap(), nums.next().unwrap());
        assert_eq!(supported, (major, minor) >= (6, 3), "kernel {release}");
    }

    #[test]
    fn holder_is_reaped() {
        if !is_root() {
            eprintln!("SKIPPED: needs root");
            return;
        }
        let ns = IdmapUserns::new(&[map(0, 300_000, 10)], &[map(0, 300_000, 10)]).unwrap();
        // Our namespace fd names a namespace other than our own.
        let ours = fs::metadata("/proc/self/ns/user").unwrap().ino();
        let link = format!("/proc/self/fd/{}", ns.fd.as_raw_fd());
        assert_ne!(fs::metadata(link).unwrap().ino(), ours);
        // The holder is killed and reaped: its /proc entry is gone, not a zombie.
        let holder = Holder::spawn().unwrap();
        let proc_dir = PathBuf::from(format!("/proc/{}", holder.pid));
        assert!(proc_dir.exists());
        drop(holder);
        assert!(
            !proc_dir.exists(),
            "holder {} not reaped",
            proc_dir.display()
        );
    }
}
