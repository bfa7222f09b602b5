use std::collections::HashSet;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::mount::MsFlags;
use oci_spec::runtime::{Linux, Spec};

use super::device::Device;
use super::mount::{BindSourceCheck, Mount, MountOptions};
use super::symlink::{Symlink, SymlinkError};
use super::utils::default_devices;
use super::{Result, RootfsError};
use crate::error::MissingSpecError;
use crate::syscall::Syscall;
use crate::syscall::syscall::create_syscall;

/// [stockade patch] `linux.rootfsPropagation`, every value runc accepts (`shared`,
/// `rshared`, `slave`, `rslave`, `private`, `rprivate`, `unbindable`,
/// `runbindable`); upstream 0.7 knew only the four non-recursive words, so
/// containerd's `rslave`/`rshared` (mount-propagation pods) failed rootfs setup.
///
/// Applied in two steps, as runc does. Before pivot_root the container's copy of the
/// host's mounts gets the recursive base type (shared for the shared variants, private
/// for the private ones, slave otherwise: an unbindable `/` would make the rootfs
/// bind itself fail with EINVAL). After pivot_root the new `/` gets the requested
/// type exactly, which is what the container observes in its mountinfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootPropagation {
    kind: MsFlags,
    recursive: bool,
}

impl RootPropagation {
    pub fn parse(value: Option<&str>) -> Result<Self> {
        let (word, recursive) = match value {
            None | Some("") => ("slave", true),
            Some(v) => match v.strip_prefix('r') {
                Some(rest @ ("shared" | "slave" | "private" | "unbindable")) => (rest, true),
                _ => (v, false),
            },
        };
        let kind = match word {
            "shared" => MsFlags::MS_SHARED,
            "slave" => MsFlags::MS_SLAVE,
            "private" => MsFlags::MS_PRIVATE,
            "unbindable" => MsFlags::MS_UNBINDABLE,
            _ => {
                return Err(RootfsError::UnknownRootfsPropagation(
                    value.unwrap_or_default().to_string(),
                ));
            }
        };
        Ok(Self { kind, recursive })
    }

    /// Flags for `/` of the new mount namespace, before the rootfs is bound.
    pub fn before_pivot(self) -> MsFlags {
        let base = if self.kind == MsFlags::MS_UNBINDABLE {
            MsFlags::MS_SLAVE
        } else {
            self.kind
        };
        base | MsFlags::MS_REC
    }

    /// [stockade patch] Whether a mount of the new namespace can still be shared
    /// once `/` got [`Self::before_pivot`] (recursive): only for the shared kinds.
    /// A recursive slave or private leaves no mount shared (a slave's peer group
    /// copy becomes a slave, a lone one private; a mount propagated in later from
    /// a master arrives as a slave), so pivot_root's parent mount needs no check.
    pub fn leaves_mounts_shared(self) -> bool {
        self.kind == MsFlags::MS_SHARED
    }

    /// Flags for the container's `/` after pivot_root, if it needs more than the
    /// rootfs bind inherited (shared and unbindable are not inherited by a bind).
    pub fn after_pivot(self) -> Option<MsFlags> {
        match self.kind {
            MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE if self.recursive => {
                Some(self.kind | MsFlags::MS_REC)
            }
            MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE => Some(self.kind),
            _ => None,
        }
    }
}

/// [stockade patch] A `process.cwd` that does not exist is created (0755, owned by
/// the runtime's user, through a handle on the rootfs so no symlink in it leads out),
/// after the spec's mounts so a cwd on a mounted volume is made there: runc does so
/// (its `createCwd`), and images rely on it; upstream failed the create at chdir.
/// An existing path is left alone (if it is no directory, the chdir says so).
fn create_missing_cwd(spec: &Spec, rootfs: &Path) -> Result<()> {
    let Some(cwd) = spec.process().as_ref().map(|p| p.cwd()) else {
        return Ok(());
    };
    let create_err = |source| RootfsError::CreateCwd {
        path: cwd.display().to_string(),
        source,
    };
    let root = pathrs::Root::open(rootfs).map_err(create_err)?;
    if root.resolve(cwd).is_err() {
        root.mkdir_all(cwd, &std::fs::Permissions::from_mode(0o755))
            .map_err(create_err)?;
    }
    Ok(())
}

/// Holds information about rootfs
pub struct RootFS {
    syscall: Box<dyn Syscall>,
}

impl Default for RootFS {
    fn default() -> Self {
        Self::new()
    }
}

impl RootFS {
    pub fn new() -> RootFS {
        RootFS {
            syscall: create_syscall(),
        }
    }

    pub fn mount_to_rootfs(
        &self,
        linux: &Linux,
        spec: &Spec,
        rootfs: &Path,
        cgroup_ns: bool,
        bind_check: Option<BindSourceCheck<'_>>,
        host_mountinfo: Option<&str>,
    ) -> Result<()> {
        let propagation = RootPropagation::parse(linux.rootfs_propagation().as_deref())?;
        let flags = propagation.before_pivot();

        self.syscall
            .mount(None, Path::new("/"), None, flags, None)
            .map_err(|err| {
                tracing::error!(
                    ?err,
                    ?flags,
                    "failed to change the mount propagation type of the root"
                );

                err
            })?;

        let mounter = Mount::new();

        // [stockade patch] pivot_root needs the rootfs's parent mount not shared.
        // After a recursive slave or private of `/` just above (every `rootfsPropagation`
        // but the shared ones) no mount of this namespace is shared: the table
        // would be read (~90 us: the kernel renders every mount) only to find that.
        if propagation.leaves_mounts_shared() {
            mounter.make_parent_mount_private(rootfs)?;
        }

        tracing::debug!("mount root fs {:?}", rootfs);
        self.syscall
            .mount(
                Some(rootfs),
                rootfs,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(|err| {
                tracing::error!(?rootfs, ?err, "failed to bind mount rootfs");
                err
            })?;

        let global_options = MountOptions {
            root: rootfs,
            label: linux.mount_label().as_deref(),
            cgroup_ns,
            bind_check,
            host_mountinfo,
        };

        if let Some(mounts) = spec.mounts() {
            for mount in mounts {
                // [stockade patch] name the mount that failed (source and
                // destination) in the error itself, not only in a log line.
                mounter
                    .setup_mount(mount, &global_options)
                    .map_err(|source| RootfsError::MountEntry {
                        source_path: mount
                            .source()
                            .as_ref()
                            .map_or_else(|| "(none)".into(), |s| s.display().to_string()),
                        destination: mount.destination().display().to_string(),
                        source,
                    })?;
            }
        }
        Ok(())
    }

    pub fn prepare_rootfs(
        &self,
        spec: &Spec,
        rootfs: &Path,
        bind_devices: bool,
        cgroup_ns: bool,
        bind_check: Option<BindSourceCheck<'_>>,
        host_mountinfo: Option<&str>,
    ) -> Result<()> {
        tracing::debug!(?rootfs, "prepare rootfs");
        let linux = spec.linux().as_ref().ok_or(MissingSpecError::Linux)?;

        self.mount_to_rootfs(linux, spec, rootfs, cgroup_ns, bind_check, host_mountinfo)?;
        create_missing_cwd(spec, rootfs)?;

        // [stockade patch] The /dev symlinks are made by name in the container's
        // /dev resolved in the rootfs: `rootfs.join("dev/...")` followed an image's
        // `/dev` symlink (absolute, e.g. to `/etc`) to the host, where the init made
        // them and removed `ptmx`. A /dev that is missing or not a directory failed
        // here before too (ENOENT).
        let dev = super::device::open_dev_dir(rootfs).ok_or_else(|| {
            RootfsError::Symlink(SymlinkError::Other {
                msg: "the container's /dev is missing or not a directory".into(),
            })
        })?;
        let symlinker = Symlink::new();
        symlinker.setup_kcore_symlink_in(dev.as_fd())?;
        symlinker.setup_default_symlinks_in(dev.as_fd())?;

        let devicer = Device::new();
        if let Some(added_devices) = linux.devices() {
            let mut path_set = HashSet::new();
            let devices = default_devices();
            added_devices.iter().for_each(|d| {
                path_set.insert(d.path());
            });
            let default = devices.iter().filter(|d| !path_set.contains(d.path()));
            devicer.create_devices(rootfs, added_devices.iter().chain(default), bind_devices)
        } else {
            devicer.create_devices(rootfs, &default_devices(), bind_devices)
        }?;

        symlinker.setup_ptmx_in(dev.as_fd())?;
        Ok(())
    }

    /// Change propagation type of rootfs as specified in spec.
    pub fn adjust_root_mount_propagation(&self, linux: &Linux) -> Result<()> {
        let flags = RootPropagation::parse(linux.rootfs_propagation().as_deref())?.after_pivot();

        if let Some(flags) = flags {
            self.syscall
                .mount(None, Path::new("/"), None, flags, None)
                .map_err(|err| {
                    tracing::error!(
                        ?err,
                        ?flags,
                        "failed to adjust the mount propagation type of the root"
                    );
                    err
                })?;
        }

        Ok(())
    }
}


#[cfg(test)]
mod propagation_tests {
    use super::*;

    /// [stockade patch] Only the shared `rootfsPropagation` values leave a mount
    /// shared before pivot_root (the init then reads its mount table to make the
    /// rootfs's parent mount private); the default (unset: `rslave`) does not.
    #[test]
    fn propagation_only_shared_leaves_mounts_shared() {
        for (value, shared) in [
            (None, false),
            (Some(""), false),
            (Some("rslave"), false),
            (Some("slave"), false),
            (Some("rprivate"), false),
            (Some("private"), false),
            (Some("runbindable"), false),
            (Some("unbindable"), false),
            (Some("rshared"), true),
            (Some("shared"), true),
        ] {
            let p = RootPropagation::parse(value).unwrap();
            assert_eq!(p.leaves_mounts_shared(), shared, "{value:?}");
        }
    }
}
