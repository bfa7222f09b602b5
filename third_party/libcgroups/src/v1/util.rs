use std::collections::HashMap;
use std::path::PathBuf;

use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle};
use procfs::ProcError;
use procfs::process::MountInfo;

use super::ControllerType;
use super::controller_type::CONTROLLERS;
use crate::common::read_proc_text;

#[derive(thiserror::Error, Debug)]
pub enum V1MountPointError {
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    #[error("failed to get mountinfo: {0}")]
    MountInfo(ProcError),
    #[error("could not find mountpoint for {subsystem}")]
    NotFound { subsystem: ControllerType },
    #[error(transparent)]
    Pathrs(#[from] pathrs::error::Error),
}

/// [stockade patch] The lines of `mountinfo` that are cgroup v1 mounts (file system
/// type `cgroup`), found without parsing the others: `MountInfo::from_line` splits
/// every field and builds two hash maps per line, and a host's table has ~45 lines
/// for ~13 hierarchies, searched once per controller when a manager is made. The
/// type follows the ` - ` separator, which a path cannot contain (the kernel
/// escapes a space in it as `\040`).
pub fn cgroup_v1_lines(mountinfo: &str) -> impl Iterator<Item = &str> {
    mountinfo.lines().filter(|line| {
        line.split_once(" - ")
            .is_some_and(|(_, fields)| fields.starts_with("cgroup "))
    })
}

/// List all cgroup v1 subsystem mount points on the system. This can include unsupported
/// subsystems, comounted controllers and named hierarchies.
pub fn list_subsystem_mount_points() -> Result<Vec<PathBuf>, V1MountPointError> {
    list_subsystem_mount_points_with(&ProcfsHandle::new()?)
}

/// [stockade patch] [`list_subsystem_mount_points`] through `procfs`, a handle the
/// caller holds for its other procfs reads; the text read whole
/// ([`read_mountinfo_with`]), not line by line through an 8 KiB BufReader.
pub fn list_subsystem_mount_points_with(
    procfs: &ProcfsHandle,
) -> Result<Vec<PathBuf>, V1MountPointError> {
    list_subsystem_mount_points_in(&read_mountinfo_with(procfs)?)
}

/// [stockade patch] [`list_subsystem_mount_points`] in the text of this process's
/// mountinfo, already read (see [`read_mountinfo`]).
pub fn list_subsystem_mount_points_in(mountinfo: &str) -> Result<Vec<PathBuf>, V1MountPointError> {
    Ok(V1Mounts::parse(mountinfo)?
        .0
        .into_iter()
        .map(|m| m.mount_point)
        .collect())
}

/// [stockade patch] The mount point of the named cgroup v1 hierarchy `name` (a
/// `cgroup` mount whose super options carry `name=NAME`, e.g. `name=systemd`), if
/// the host has one. runc places a container in the `name=systemd` hierarchy too;
/// without that the container's view of it (its `/sys/fs/cgroup/systemd`) could only
/// be the hierarchy the runtime itself runs in.
pub fn named_hierarchy_mount_point(name: &str) -> Result<Option<PathBuf>, V1MountPointError> {
    named_hierarchy_mount_point_in(&read_mountinfo()?, name)
}

/// [stockade patch] [`named_hierarchy_mount_point`] in the text of this process's
/// mountinfo, already read (see [`read_mountinfo`]).
pub fn named_hierarchy_mount_point_in(
    mountinfo: &str,
    name: &str,
) -> Result<Option<PathBuf>, V1MountPointError> {
    Ok(V1Mounts::parse(mountinfo)?.named_hierarchy_mount_point(name))
}

/// [stockade patch] The mount point of the v1 hierarchy of `controller`, a
/// controller this manager sets no limit in (`misc`, `rdma`) but still places a
/// container in, as runc's fs driver does: otherwise the container's view of that
/// hierarchy is the cgroup the runtime runs in, often the hierarchy's root.
pub fn join_only_hierarchy_mount_point_in(
    mountinfo: &str,
    controller: &str,
) -> Result<Option<PathBuf>, V1MountPointError> {
    Ok(V1Mounts::parse(mountinfo)?.join_only_hierarchy_mount_point(controller))
}

/// List the mount points of all currently supported cgroup subsystems.
pub fn list_supported_mount_points() -> Result<HashMap<ControllerType, PathBuf>, V1MountPointError>
{
    let mut mount_paths = HashMap::with_capacity(CONTROLLERS.len());

    for controller in CONTROLLERS {
        if let Ok(mount_point) = get_subsystem_mount_point(controller) {
            mount_paths.insert(controller.to_owned(), mount_point);
        }
    }

    Ok(mount_paths)
}

pub fn get_subsystem_mount_point(subsystem: &ControllerType) -> Result<PathBuf, V1MountPointError> {
    subsystem_mount_point_in(&read_mountinfo()?, subsystem)
}

/// [stockade patch] This process's mountinfo, read once so that a manager finds the
/// mount points of all its controllers in one read (each read costs a procfs handle
/// and a dozen syscalls; `Manager::new` made 12 of them).
pub fn read_mountinfo() -> Result<String, V1MountPointError> {
    read_mountinfo_with(&ProcfsHandle::new()?)
}

/// [stockade patch] [`read_mountinfo`] through `procfs`, a handle the caller
/// already holds (getting one validates it again: ~8 syscalls), in one read(2)
/// ([`read_proc_text`]).
pub fn read_mountinfo_with(procfs: &ProcfsHandle) -> Result<String, V1MountPointError> {
    let file = procfs.open(
        ProcfsBase::ProcSelf,
        "mountinfo",
        OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
    )?;
    Ok(read_proc_text(file)?)
}

/// [stockade patch] The mount point of `subsystem` in `mountinfo` (the text of
/// `/proc/self/mountinfo`), found exactly as [`get_subsystem_mount_point`] did.
pub fn subsystem_mount_point_in(
    mountinfo: &str,
    subsystem: &ControllerType,
) -> Result<PathBuf, V1MountPointError> {
    V1Mounts::parse(mountinfo)?.subsystem_mount_point(subsystem)
}

/// [stockade patch] The cgroup v1 mounts (file system type `cgroup`) of a mount
/// table, each line parsed once. A manager looks up a dozen controllers, the
/// `name=systemd` hierarchy, the join-only ones and cpuset's: searched line by line
/// per lookup, that was ~190 `MountInfo::from_line` calls (each a handful of
/// allocations and two hash maps) per manager, a fifth of the init's CPU time
/// before it joined the cgroup.
pub struct V1Mounts(Vec<MountInfo>);

impl V1Mounts {
    /// The cgroup mounts of `mountinfo` (the text of `/proc/self/mountinfo`), in
    /// its order. Any of them that does not parse is an error: the lookups used to
    /// fail only when such a line came before the one they found, but a table the
    /// kernel wrote and that cannot be read is not one to place a container by.
    pub fn parse(mountinfo: &str) -> Result<Self, V1MountPointError> {
        let mut mounts = Vec::new();
        for line in cgroup_v1_lines(mountinfo) {
            let m = MountInfo::from_line(line).map_err(V1MountPointError::MountInfo)?;
            if m.fs_type == "cgroup" {
                mounts.push(m);
            }
        }
        Ok(Self(mounts))
    }

    /// The first mount point of `subsystem`'s hierarchy, found by the name it is
    /// mounted under, as [`get_subsystem_mount_point`] always did.
    pub fn subsystem_mount_point(
        &self,
        subsystem: &ControllerType,
    ) -> Result<PathBuf, V1MountPointError> {
        let subsystem_name = subsystem.to_string();
        self.0
            .iter()
            .find(|m| mounted_as(&m.mount_point, &subsystem_name))
            .map(|m| m.mount_point.clone())
            .ok_or(V1MountPointError::NotFound {
                subsystem: *subsystem,
            })
    }

    /// See [`named_hierarchy_mount_point`].
    pub fn named_hierarchy_mount_point(&self, name: &str) -> Option<PathBuf> {
        self.0
            .iter()
            .find(|m| m.super_options.get("name").and_then(|v| v.as_deref()) == Some(name))
            .map(|m| m.mount_point.clone())
    }

    /// See [`join_only_hierarchy_mount_point_in`].
    pub fn join_only_hierarchy_mount_point(&self, controller: &str) -> Option<PathBuf> {
        self.0
            .iter()
            .find(|m| m.super_options.contains_key(controller))
            .map(|m| m.mount_point.clone())
    }
}

/// Whether a hierarchy mounted at `mount_point` is `subsystem`'s, by the directory
/// name it is mounted under.
fn mounted_as(mount_point: &std::path::Path, subsystem: &str) -> bool {
    // Some systems mount net_prio and net_cls in the same directory
    // other systems mount them in their own directories. This
    // should handle both cases.
    match subsystem {
        "net_cls" => ["net_cls,net_prio", "net_prio,net_cls", "net_cls"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        "net_prio" => ["net_cls,net_prio", "net_prio,net_cls", "net_prio"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        "cpu" => ["cpu,cpuacct", "cpu"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        "cpuacct" => ["cpu,cpuacct", "cpuacct"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        _ => mount_point.ends_with(subsystem),
    }
}

#[cfg(test)]
mod join_only_tests {
    use super::*;

    // Lines of a systemd hybrid host's mountinfo (Debian 12, Linux 6.1).
    const MOUNTINFO: &str = "\
35 25 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,name=systemd
39 25 0:34 / /sys/fs/cgroup/misc rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,misc
40 25 0:35 / /sys/fs/cgroup/rdma rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,rdma
41 25 0:36 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn join_only_controllers_are_found_by_their_super_option() {
        assert_eq!(
            join_only_hierarchy_mount_point_in(MOUNTINFO, "misc").unwrap(),
            Some(PathBuf::from("/sys/fs/cgroup/misc"))
        );
        assert_eq!(
            join_only_hierarchy_mount_point_in(MOUNTINFO, "rdma").unwrap(),
            Some(PathBuf::from("/sys/fs/cgroup/rdma"))
        );
        // `name=systemd` is a named hierarchy, not a controller called "systemd".
        assert_eq!(
            join_only_hierarchy_mount_point_in(MOUNTINFO, "systemd").unwrap(),
            None
        );
        assert_eq!(
            join_only_hierarchy_mount_point_in("", "misc").unwrap(),
            None
        );
    }

    #[test]
    fn cgroup_v1_lines_are_the_cgroup_mounts_only() {
        let text = format!(
            "{MOUNTINFO}42 25 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             43 25 0:38 / /mnt/a\\040-\\040cgroup\\040b rw - tmpfs cgroup rw\n\
             44 25 0:39 / /mnt/c rw shared:1 - ext4 /dev/cgroup rw\n"
        );
        let lines: Vec<&str> = cgroup_v1_lines(&text).collect();
        let expected: Vec<&str> = MOUNTINFO
            .lines()
            .filter(|l| l.contains(" - cgroup "))
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(lines, expected);
    }

    #[test]
    fn list_subsystem_mount_points_in_the_text() {
        let text =
            format!("{MOUNTINFO}42 25 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
        assert_eq!(
            list_subsystem_mount_points_in(&text).unwrap(),
            ["systemd", "misc", "rdma", "cpu,cpuacct"]
                .map(|h| PathBuf::from("/sys/fs/cgroup").join(h))
                .to_vec()
        );
    }

    /// [stockade patch] One parse answers every lookup a manager makes, as the
    /// line-by-line `_in` functions did.
    #[test]
    fn v1_mounts_parsed_once_answer_every_lookup() {
        let text = format!(
            "{MOUNTINFO}42 25 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             43 25 0:38 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio\n"
        );
        let mounts = V1Mounts::parse(&text).unwrap();
        let cgroup = |h: &str| PathBuf::from("/sys/fs/cgroup").join(h);
        for (subsystem, dir) in [
            (ControllerType::Cpu, "cpu,cpuacct"),
            (ControllerType::CpuAcct, "cpu,cpuacct"),
            (ControllerType::NetworkClassifier, "net_cls,net_prio"),
            (ControllerType::NetworkPriority, "net_cls,net_prio"),
        ] {
            assert_eq!(
                mounts.subsystem_mount_point(&subsystem).unwrap(),
                cgroup(dir)
            );
            assert_eq!(
                subsystem_mount_point_in(&text, &subsystem).unwrap(),
                cgroup(dir)
            );
        }
        assert!(matches!(
            mounts.subsystem_mount_point(&ControllerType::Memory),
            Err(V1MountPointError::NotFound {
                subsystem: ControllerType::Memory
            })
        ));
        assert_eq!(
            mounts.named_hierarchy_mount_point("systemd"),
            Some(cgroup("systemd"))
        );
        assert_eq!(mounts.named_hierarchy_mount_point("elogind"), None);
        assert_eq!(
            mounts.join_only_hierarchy_mount_point("rdma"),
            Some(cgroup("rdma"))
        );
        // A cgroup line that cannot be read fails the parse, wherever it is.
        let broken = format!("{text}x 25 0:39 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n");
        assert!(matches!(
            V1Mounts::parse(&broken),
            Err(V1MountPointError::MountInfo(_))
        ));
    }
}
