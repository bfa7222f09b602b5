use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use libc;
use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::mount::MsFlags;
use nix::sys::stat::{FileStat, Mode, fstat, umask};
use nix::unistd::{Gid, Uid, close};
use oci_spec::runtime::LinuxDevice;

use super::utils::to_sflag;
use crate::syscall::linux::{MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH};
use crate::syscall::{Syscall, SyscallError};
use crate::syscall::syscall::create_syscall;
use crate::utils::PathBufExt;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("{0:?} is not a valid device path")]
    InvalidDevicePath(std::path::PathBuf),
    #[error("failed syscall to create device")]
    Syscall(#[from] crate::syscall::SyscallError),
    #[error(transparent)]
    Nix(#[from] nix::Error),
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
    #[error("{0}")]
    Custom(String),
}

type Result<T> = std::result::Result<T, DeviceError>;

pub(crate) fn open_device_fd(dev_path: &Path) -> nix::Result<(OwnedFd, FileStat)> {
    let fd = open(
        dev_path,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o000),
    )?;
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let stat = fstat(owned.as_raw_fd())?;
    Ok((owned, stat))
}

pub(crate) fn verify_dev_null(stat: &FileStat) -> Result<()> {
    if stat.st_mode & libc::S_IFMT != libc::S_IFCHR {
        return Err(DeviceError::Custom(
            "device is not a character device".to_string(),
        ));
    }

    let actual_major = libc::major(stat.st_rdev) as i64;
    let actual_minor = libc::minor(stat.st_rdev) as i64;
    if actual_major != 1 || actual_minor != 3 {
        return Err(DeviceError::Custom(format!(
            "device dev null major/minor mismatch: expected 1/3, actual {}/{}",
            actual_major, actual_minor
        )));
    }
    Ok(())
}

pub struct Device {
    syscall: Box<dyn Syscall>,
}

impl Default for Device {
    fn default() -> Self {
        Self::new()
    }
}

impl Device {
    pub fn new() -> Device {
        Device {
            syscall: create_syscall(),
        }
    }

    pub fn new_with_syscall(syscall: Box<dyn Syscall>) -> Device {
        Device { syscall }
    }

    pub fn create_devices<'a, I>(&self, rootfs: &Path, devices: I, bind: bool) -> Result<()>
    where
        I: IntoIterator<Item = &'a LinuxDevice>,
    {
        let old_mode = umask(Mode::from_bits_truncate(0o000));
        // [stockade patch] The container's /dev resolved once, in the rootfs (a
        // symlink on the way resolves inside it, as `scoped_join` resolved it), and
        // each node made by name in it without following a symlink there: the path
        // code below resolved the rootfs again for every node (`scoped_join`
        // canonicalizes its root: 18 readlinks for the 6 default nodes).
        let dev_dir = open_dev_dir(rootfs);
        devices
            .into_iter()
            .map(|dev| {
                if !dev.path().starts_with("/dev") {
                    tracing::error!(
                        "{:?} is not a valid device path starting with /dev",
                        dev.path()
                    );
                    return Err(DeviceError::InvalidDevicePath(dev.path().to_path_buf()));
                }

                // A node directly in /dev; anything else (a subdirectory, a name
                // already taken in the image) is left to the path code, as before.
                if let (Some(dir), Some(name)) = (&dev_dir, name_in_dev(dev.path())) {
                    let made = if bind {
                        self.bind_dev_at(dir.as_fd(), name, dev)?
                    } else {
                        self.mknod_dev_at(dir.as_fd(), name, dev)?
                    };
                    if made {
                        return Ok(());
                    }
                }

                if bind {
                    self.bind_dev(rootfs, dev)
                } else {
                    self.mknod_dev(rootfs, dev)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        umask(old_mode);

        Ok(())
    }

    fn bind_dev(&self, rootfs: &Path, dev: &LinuxDevice) -> Result<()> {
        let full_container_path = create_container_dev_path(rootfs, dev)?;
        tracing::debug!(
            "bind_dev with full container path {:?}",
            full_container_path
        );

        let fd = open(
            &full_container_path,
            OFlag::O_RDWR | OFlag::O_CREAT,
            Mode::from_bits_truncate(0o644),
        )
        .inspect_err(|err| {
            tracing::error!("failed to open bind dev {:?}: {}", full_container_path, err);
        })?;
        close(fd)?;
        self.syscall
            .mount(
                Some(dev.path()),
                &full_container_path,
                Some("bind"),
                MsFlags::MS_BIND,
                None,
            )
            .map_err(|err| {
                tracing::error!(
                    ?err,
                    path = ?full_container_path,
                    "failed to mount bind dev",
                );
                err
            })?;

        Ok(())
    }

    /// [stockade patch] [`Self::bind_dev`] of `name` in the container's /dev
    /// `dir`: the node is created (or opened) there without following a symlink,
    /// and the host's device bound onto that very file. `false`: `name` is a
    /// symlink in the image, left to the path code (which resolves it inside the
    /// rootfs, as before).
    fn bind_dev_at(&self, dir: BorrowedFd<'_>, name: &Path, dev: &LinuxDevice) -> Result<bool> {
        let fd = match openat(
            Some(dir.as_raw_fd()),
            name,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(fd) => fd,
            Err(Errno::ELOOP) => return Ok(false),
            Err(err) => {
                tracing::error!(?name, ?err, "failed to open bind dev in the container's /dev");
                return Err(err.into());
            }
        };
        // SAFETY: `fd` was just returned by openat(2) and is owned by nothing else.
        let target = unsafe { OwnedFd::from_raw_fd(fd) };
        let source = dev
            .path()
            .to_str()
            .ok_or_else(|| DeviceError::InvalidDevicePath(dev.path().to_path_buf()))?;
        // A non-recursive bind, as `mount(MS_BIND)` of the same source made it.
        let tree = self.syscall.open_tree(
            libc::AT_FDCWD,
            Some(source),
            (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as u32,
        )?;
        self.syscall
            .move_mount(
                tree.as_fd(),
                None,
                target.as_fd(),
                None,
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
            )
            .inspect_err(|err| {
                tracing::error!(?err, ?name, "failed to mount bind dev");
            })?;
        Ok(true)
    }

    /// [stockade patch] [`Self::mknod_dev`] of `name` in the container's /dev
    /// `dir`, owned as the spec says without following a symlink. `false`: the
    /// name is taken in the image (a symlink, a node), left to the path code as
    /// before (a symlink resolved inside the rootfs, anything else refused).
    fn mknod_dev_at(&self, dir: BorrowedFd<'_>, name: &Path, dev: &LinuxDevice) -> Result<bool> {
        match self.syscall.mknodat(
            dir,
            name,
            to_sflag(dev.typ()),
            Mode::from_bits_truncate(dev.file_mode().unwrap_or(0o666)),
            makedev(dev.major(), dev.minor()),
        ) {
            Ok(()) => {}
            Err(SyscallError::Nix(Errno::EEXIST)) => return Ok(false),
            Err(err) => {
                tracing::error!(?err, ?name, "failed to mknod device in the container's /dev");
                return Err(err.into());
            }
        }
        self.syscall
            .fchownat_nofollow(
                dir,
                name,
                dev.uid().map(Uid::from_raw),
                dev.gid().map(Gid::from_raw),
            )
            .inspect_err(|err| {
                tracing::error!(?err, ?name, "failed to chown device");
            })?;
        Ok(true)
    }

    fn mknod_dev(&self, rootfs: &Path, dev: &LinuxDevice) -> Result<()> {
        let full_container_path = create_container_dev_path(rootfs, dev)?;

        self.syscall
            .mknod(
                &full_container_path,
                to_sflag(dev.typ()),
                Mode::from_bits_truncate(dev.file_mode().unwrap_or(0o666)),
                makedev(dev.major(), dev.minor()),
            )
            .map_err(|err| {
                tracing::error!(
                    ?err,
                    path = ?full_container_path,
                    major = ?dev.major(),
                    minor = ?dev.minor(),
                    "failed to mknod device"
                );

                err
            })?;
        self.syscall
            .chown(
                &full_container_path,
                dev.uid().map(Uid::from_raw),
                dev.gid().map(Gid::from_raw),
            )
            .map_err(|err| {
                tracing::error!(
                    path = ?full_container_path,
                    ?err,
                    uid = ?dev.uid(),
                    gid = ?dev.gid(),
                    "failed to chown device"
                );

                err
            })?;

        Ok(())
    }
}

fn makedev(major: i64, minor: i64) -> u64 {
    ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32))
        as u64
}

/// [stockade patch] The container's `/dev`: resolved in `rootfs` (`RESOLVE_IN_ROOT`:
/// a symlink at `/dev` or above resolves inside the rootfs, never out of it), an
/// `O_PATH` directory fd; `None` when it is missing or not a directory (the path
/// code makes or refuses it, as before).
pub(crate) fn open_dev_dir(rootfs: &Path) -> Option<OwnedFd> {
    let root = pathrs::Root::open(rootfs).ok()?;
    let dir: OwnedFd = root.resolve("/dev").ok()?.into();
    let stat = fstat(dir.as_raw_fd()).ok()?;
    (stat.st_mode & libc::S_IFMT == libc::S_IFDIR).then_some(dir)
}

/// [stockade patch] `NAME` of a device path `/dev/NAME` (one plain component).
fn name_in_dev(path: &Path) -> Option<&Path> {
    let rest = path.strip_prefix("/dev").ok()?;
    let mut components = rest.components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(name)), None) => Some(Path::new(name)),
        _ => None,
    }
}

fn create_container_dev_path(rootfs: &Path, dev: &LinuxDevice) -> Result<PathBuf> {
    let relative_dev_path = dev.path().as_relative().map_err(|err| {
        tracing::error!(
            "failed to convert {:?} to relative path: {}",
            dev.path(),
            err
        );
        DeviceError::Other(err.into())
    })?;
    let full_container_path = safe_path::scoped_join(rootfs, relative_dev_path).map_err(|err| {
        tracing::error!("failed to join {rootfs:?} with {:?}: {err}", dev.path());
        DeviceError::Other(err.into())
    })?;
    std::fs::create_dir_all(
        full_container_path
            .parent()
            .unwrap_or_else(|| Path::new("")),
    )
    .map_err(|err| {
        tracing::error!(
            "failed to create parent dir of {:?}: {}",
            full_container_path,
            err
        );
        DeviceError::Other(err.into())
    })?;

    Ok(full_container_path)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use anyhow::Result;
    use nix::sys::stat::SFlag;
    use nix::unistd::{Gid, Uid};
    use oci_spec::runtime::{LinuxDeviceBuilder, LinuxDeviceType};

    use super::*;
    use crate::syscall::test::{ChownArgs, MknodArgs, TestHelperSyscall};

    #[test]
    fn test_bind_dev() -> Result<()> {
        let tmp_dir = tempfile::tempdir()?;
        let device = Device::new_with_syscall(Box::<TestHelperSyscall>::default());
        assert!(
            device
                .bind_dev(
                    tmp_dir.path(),
                    &LinuxDeviceBuilder::default()
                        .path(PathBuf::from("/dev/null"))
                        .build()
                        .unwrap(),
                )
                .is_ok()
        );

        let helper = device
            .syscall
            .as_any()
            .downcast_ref::<TestHelperSyscall>()
            .unwrap();
        let mount_args = helper.get_mount_args();
        assert_eq!(1, mount_args.len());
        let got = &mount_args[0];
        assert_eq!(Some(PathBuf::from("/dev/null")), got.source);
        assert_eq!(tmp_dir.path().join("dev").join("null"), got.target);
        assert_eq!(MsFlags::MS_BIND, got.flags);
        assert!(got.data.is_none());
        Ok(())
    }

    #[test]
    fn test_mknod_dev() -> Result<()> {
        let tmp_dir = tempfile::tempdir()?;
        let device = Device::new_with_syscall(Box::<TestHelperSyscall>::default());
        assert!(
            device
                .mknod_dev(
                    tmp_dir.path(),
                    &LinuxDeviceBuilder::default()
                        .path(PathBuf::from("/null"))
                        .major(1)
                        .minor(3)
                        .typ(LinuxDeviceType::C)
                        .file_mode(0o644u32)
                        .uid(1000u32)
                        .gid(1000u32)
                        .build()
                        .unwrap(),
                )
                .is_ok()
        );

        let want_mknod = MknodArgs {
            path: tmp_dir.path().join("null"),
            kind: SFlag::S_IFCHR,
            perm: Mode::S_IRUSR | Mode::S_IWUSR | Mode::S_IRGRP | Mode::S_IROTH,
            dev: 259,
        };
        let got_mknod = &device
            .syscall
            .as_any()
            .downcast_ref::<TestHelperSyscall>()
            .unwrap()
            .get_mknod_args()[0];
        assert_eq!(want_mknod, *got_mknod);

        let want_chown = ChownArgs {
            path: tmp_dir.path().join("null"),
            owner: Some(Uid::from_raw(1000)),
            group: Some(Gid::from_raw(1000)),
        };
        let got_chown = &device
            .syscall
            .as_any()
            .downcast_ref::<TestHelperSyscall>()
            .unwrap()
            .get_chown_args()[0];
        assert_eq!(want_chown, *got_chown);

        Ok(())
    }

    fn null_device() -> LinuxDevice {
        LinuxDeviceBuilder::default()
            .path(PathBuf::from("/dev/null"))
            .major(1)
            .minor(3)
            .typ(LinuxDeviceType::C)
            .file_mode(0o644u32)
            .uid(1000u32)
            .gid(1000u32)
            .build()
            .unwrap()
    }

    /// [stockade patch] A node directly in an existing /dev is made by name in
    /// the directory resolved once (the helper records the fd's path joined).
    #[test]
    fn dev_node_is_made_in_the_resolved_dev_dir() -> Result<()> {
        let tmp_dir = tempfile::tempdir()?;
        std::fs::create_dir(tmp_dir.path().join("dev"))?;
        let device = Device::new_with_syscall(Box::<TestHelperSyscall>::default());
        device.create_devices(tmp_dir.path(), &[null_device()], false)?;
        let helper = device
            .syscall
            .as_any()
            .downcast_ref::<TestHelperSyscall>()
            .unwrap();
        let dev_dir = std::fs::canonicalize(tmp_dir.path().join("dev"))?;
        assert_eq!(helper.get_mknod_args()[0].path, dev_dir.join("null"));
        assert_eq!(helper.get_chown_args()[0].path, dev_dir.join("null"));
        Ok(())
    }

    /// [stockade patch] A bind node is created in the resolved /dev and the host
    /// device moved onto that very file.
    #[test]
    fn dev_bind_is_moved_onto_the_file_made_in_the_dev_dir() -> Result<()> {
        let tmp_dir = tempfile::tempdir()?;
        std::fs::create_dir(tmp_dir.path().join("dev"))?;
        let device = Device::new_with_syscall(Box::<TestHelperSyscall>::default());
        device.create_devices(tmp_dir.path(), &[null_device()], true)?;
        let helper = device
            .syscall
            .as_any()
            .downcast_ref::<TestHelperSyscall>()
            .unwrap();
        let dev_dir = std::fs::canonicalize(tmp_dir.path().join("dev"))?;
        assert!(dev_dir.join("null").is_file());
        let tree = helper.get_open_tree_args();
        assert_eq!(tree[0].path.as_deref(), Some("/dev/null"));
        let moved = helper.get_move_mount_args();
        assert_eq!(moved[0].to_dirfd_path, Some(dev_dir.join("null")));
        assert!(helper.get_mount_args().is_empty());
        Ok(())
    }

    /// [stockade patch] A symlink planted at /dev/null in the image is not
    /// followed out of the rootfs: it resolves inside it, as before.
    #[test]
    fn dev_symlink_in_the_image_resolves_inside_the_rootfs() -> Result<()> {
        let tmp_dir = tempfile::tempdir()?;
        let root = std::fs::canonicalize(tmp_dir.path())?;
        std::fs::create_dir(root.join("dev"))?;
        std::os::unix::fs::symlink("/../../../escaped", root.join("dev/null"))?;
        let device = Device::new_with_syscall(Box::<TestHelperSyscall>::default());
        device.create_devices(&root, &[null_device()], true)?;
        let helper = device
            .syscall
            .as_any()
            .downcast_ref::<TestHelperSyscall>()
            .unwrap();
        assert_eq!(helper.get_mount_args()[0].target, root.join("escaped"));
        assert!(helper.get_move_mount_args().is_empty());
        Ok(())
    }

    #[test]
    fn dev_names_directly_in_dev_only() {
        assert_eq!(name_in_dev(Path::new("/dev/null")), Some(Path::new("null")));
        assert_eq!(name_in_dev(Path::new("/dev/net/tun")), None);
        assert_eq!(name_in_dev(Path::new("/dev/../etc")), None);
        assert_eq!(name_in_dev(Path::new("/dev")), None);
    }

    #[test]
    fn test_create_devices() -> Result<()> {
        let tmp_dir = tempfile::tempdir()?;
        let device = Device::new_with_syscall(Box::<TestHelperSyscall>::default());

        let devices = vec![
            LinuxDeviceBuilder::default()
                .path(PathBuf::from("/dev/null"))
                .major(1)
                .minor(3)
                .typ(LinuxDeviceType::C)
                .file_mode(0o644u32)
                .uid(1000u32)
                .gid(1000u32)
                .build()
                .unwrap(),
        ];

        assert!(
            device
                .create_devices(tmp_dir.path(), &devices, true)
                .is_ok()
        );

        let mount_args = device
            .syscall
            .as_any()
            .downcast_ref::<TestHelperSyscall>()
            .unwrap()
            .get_mount_args();
        assert_eq!(1, mount_args.len());
        let bind = &mount_args[0];
        assert_eq!(Some(PathBuf::from("/dev/null")), bind.source);
        assert_eq!(tmp_dir.path().join("dev/null"), bind.target);
        assert_eq!(MsFlags::MS_BIND, bind.flags);
        assert!(bind.data.is_none());

        assert!(
            device
                .create_devices(tmp_dir.path(), &devices, false)
                .is_ok()
        );

        let want = MknodArgs {
            path: tmp_dir.path().join("dev/null"),
            kind: SFlag::S_IFCHR,
            perm: Mode::S_IRUSR | Mode::S_IWUSR | Mode::S_IRGRP | Mode::S_IROTH,
            dev: 259,
        };
        let got = &device
            .syscall
            .as_any()
            .downcast_ref::<TestHelperSyscall>()
            .unwrap()
            .get_mknod_args()[0];
        assert_eq!(want, *got);

        Ok(())
    }
}
