use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use crate::syscall::Syscall;
use crate::syscall::syscall::create_syscall;

#[derive(Debug, thiserror::Error)]
pub enum SymlinkError {
    #[error("syscall failed")]
    Syscall {
        source: crate::syscall::SyscallError,
    },
    #[error("failed symlink: {msg}")]
    Other { msg: String },
    /// [stockade patch] which link failed, with the errno as its source.
    #[error("failed to symlink {link} to {target}")]
    Create {
        link: std::path::PathBuf,
        target: std::path::PathBuf,
        #[source]
        source: crate::syscall::SyscallError,
    },
    /// [stockade patch] the path and the io error, which `Other` dropped.
    #[error("could not delete {path}")]
    Remove {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, SymlinkError>;

pub struct Symlink {
    syscall: Box<dyn Syscall>,
}

impl Default for Symlink {
    fn default() -> Self {
        Self::new()
    }
}

impl Symlink {
    pub fn new() -> Symlink {
        Symlink::with_syscall(create_syscall())
    }

    fn with_syscall(syscall: Box<dyn Syscall>) -> Symlink {
        Symlink { syscall }
    }

    // Create symlinks for subsystems that have been comounted e.g. cpu -> cpu,cpuacct, cpuacct -> cpu,cpuacct
    #[cfg(feature = "v1")]
    pub fn setup_comount_symlinks(&self, cgroup_root: &Path, subsystem_name: &str) -> Result<()> {
        if !subsystem_name.contains(',') {
            return Ok(());
        }

        for comount in subsystem_name.split_terminator(',') {
            let link = cgroup_root.join(comount);
            self.syscall
                .symlink(Path::new(subsystem_name), &link)
                .map_err(|err| {
                    tracing::error!("failed to symlink {link:?} to {subsystem_name:?}");
                    SymlinkError::Syscall { source: err }
                })?;
        }

        Ok(())
    }

    /// [stockade patch] `/dev/kcore` -> `/proc/kcore` (where the host has it) in the container's `/dev`,
    /// the directory `dev` resolved in the rootfs.
    pub fn setup_kcore_symlink_in(&self, dev: BorrowedFd<'_>) -> Result<()> {
        if Path::new("/proc/kcore").exists() {
            self.symlink_in(dev, "/proc/kcore", "kcore")?;
        }
        Ok(())
    }

    /// [stockade patch] `/dev/fd`, `stdin`, `stdout`, `stderr` -> `/proc/self/fd/...` in the container's `/dev`,
    /// the directory `dev` resolved in the rootfs.
    pub fn setup_default_symlinks_in(&self, dev: BorrowedFd<'_>) -> Result<()> {
        for (src, name) in [
            ("/proc/self/fd", "fd"),
            ("/proc/self/fd/0", "stdin"),
            ("/proc/self/fd/1", "stdout"),
            ("/proc/self/fd/2", "stderr"),
        ] {
            self.symlink_in(dev, src, name)?;
        }
        Ok(())
    }

    /// [stockade patch] `/dev/ptmx` -> `pts/ptmx` (whatever was there removed) in the
    /// container's `/dev`, the directory `dev` resolved in the rootfs.
    pub fn setup_ptmx_in(&self, dev: BorrowedFd<'_>) -> Result<()> {
        match nix::unistd::unlinkat(
            Some(dev.as_raw_fd()),
            "ptmx",
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(errno) => {
                return Err(SymlinkError::Remove {
                    path: "/dev/ptmx".into(),
                    source: errno.into(),
                });
            }
        }
        self.symlink_in(dev, "pts/ptmx", "ptmx")
    }

    /// `/dev/NAME` -> `target`, made by name in `dev` (nothing followed there).
    fn symlink_in(&self, dev: BorrowedFd<'_>, target: &str, name: &str) -> Result<()> {
        self.syscall
            .symlinkat(Path::new(target), dev, Path::new(name))
            .map_err(|err| {
                tracing::error!(?err, name, "failed to symlink in /dev");
                SymlinkError::Create {
                    link: Path::new("/dev").join(name),
                    target: target.into(),
                    source: err,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "v1")]
    use std::fs;
    use std::path::PathBuf;

    #[cfg(feature = "v1")]
    use anyhow::{Context, Result};
    use std::os::fd::AsFd;

    use super::*;
    #[cfg(feature = "v1")]
    use crate::syscall::linux::LinuxSyscall;
    use crate::syscall::test::TestHelperSyscall;

    /// A `dev` directory in a fresh temporary directory, opened as the container's
    /// /dev is, and its resolved path.
    fn dev_dir() -> (tempfile::TempDir, std::os::fd::OwnedFd, PathBuf) {
        let tmp_dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp_dir.path().join("dev")).unwrap();
        let fd = crate::rootfs::device::open_dev_dir(tmp_dir.path()).unwrap();
        let path = std::fs::canonicalize(tmp_dir.path().join("dev")).unwrap();
        (tmp_dir, fd, path)
    }

    #[test]
    fn test_setup_ptmx() {
        {
            let (_tmp, dev, path) = dev_dir();
            let symlink = Symlink::new();
            assert!(symlink.setup_ptmx_in(dev.as_fd()).is_ok());
            let want = (PathBuf::from("pts/ptmx"), path.join("ptmx"));
            let got = &symlink
                .syscall
                .as_any()
                .downcast_ref::<TestHelperSyscall>()
                .unwrap()
                .get_symlink_args()[0];
            assert_eq!(want, *got)
        }
        // an existing ptmx that cannot be removed (a directory) fails the setup
        {
            let (_tmp, dev, path) = dev_dir();
            std::fs::create_dir(path.join("ptmx")).unwrap();
            let symlink = Symlink::new();
            assert!(symlink.setup_ptmx_in(dev.as_fd()).is_err());
            assert_eq!(
                0,
                symlink
                    .syscall
                    .as_any()
                    .downcast_ref::<TestHelperSyscall>()
                    .unwrap()
                    .get_symlink_args()
                    .len()
            );
        }
    }

    #[test]
    fn test_setup_default_symlinks() {
        let (_tmp, dev, path) = dev_dir();
        let symlink = Symlink::new();
        assert!(symlink.setup_default_symlinks_in(dev.as_fd()).is_ok());
        let want = vec![
            (PathBuf::from("/proc/self/fd"), path.join("fd")),
            (PathBuf::from("/proc/self/fd/0"), path.join("stdin")),
            (PathBuf::from("/proc/self/fd/1"), path.join("stdout")),
            (PathBuf::from("/proc/self/fd/2"), path.join("stderr")),
        ];
        let got = symlink
            .syscall
            .as_any()
            .downcast_ref::<TestHelperSyscall>()
            .unwrap()
            .get_symlink_args();
        assert_eq!(want, got)
    }

    #[test]
    #[cfg(feature = "v1")]
    fn setup_comounted_symlinks_success() -> Result<()> {
        // arrange
        let tmp = tempfile::tempdir().unwrap();
        let cpu = tmp.path().join("cpu");
        let cpuacct = tmp.path().join("cpuacct");
        let cpu_cpuacct = tmp.path().join("cpu,cpuacct");
        fs::create_dir_all(cpu_cpuacct)?;
        let symlink = Symlink::with_syscall(Box::new(LinuxSyscall));

        // act
        symlink
            .setup_comount_symlinks(tmp.path(), "cpu,cpuacct")
            .context("failed to setup symlinks")?;

        // assert
        assert!(cpu.exists(), "cpu symlink does not exist");
        assert!(cpuacct.exists(), "cpuacct symlink does not exist");

        assert!(
            fs::symlink_metadata(&cpu)?.file_type().is_symlink(),
            "cpu is not a symlink"
        );
        assert!(
            fs::symlink_metadata(&cpuacct)?.file_type().is_symlink(),
            "cpuacct is not a symlink"
        );

        assert_eq!(
            fs::read_link(cpu)?,
            PathBuf::from("cpu,cpuacct"),
            "cpu does not link to cpu,cpuacct"
        );
        assert_eq!(
            fs::read_link(cpuacct)?,
            PathBuf::from("cpu,cpuacct"),
            "cpuacct does not link to cpu,cpuacct"
        );

        Ok(())
    }

    #[test]
    #[cfg(feature = "v1")]
    fn setup_comounted_symlinks_no_comounts() -> Result<()> {
        // arrange
        let tmp = tempfile::tempdir().unwrap();
        let symlink = Symlink::with_syscall(Box::new(LinuxSyscall));

        // act
        let result = symlink
            .setup_comount_symlinks(tmp.path(), "memory,task")
            .context("failed to setup symlinks");

        // assert
        assert!(result.is_ok());
        Ok(())
    }
}
