use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::unistd::Pid;
use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle};
use procfs::{FromRead, ProcError, ProcessCGroup, ProcessCGroups};

use super::blkio::{Blkio, V1BlkioStatsError};
use super::controller::{Controller, Member};
use super::controller_type::CONTROLLERS;
use super::cpu::{Cpu, V1CpuStatsError};
use super::cpuacct::{CpuAcct, V1CpuAcctStatsError};
use super::cpuset::{CpuSet, V1CpuSetControllerError};
use super::devices::Devices;
use super::freezer::{Freezer, V1FreezerControllerError};
use super::hugetlb::{HugeTlb, V1HugeTlbControllerError, V1HugeTlbStatsError};
use super::memory::{Memory, V1MemoryControllerError, V1MemoryStatsError};
use super::network_classifier::NetworkClassifier;
use super::network_priority::NetworkPriority;
use super::perf_event::PerfEvent;
use super::pids::Pids;
use super::util::V1MountPointError;
use super::{ControllerType as CtrlType, util};
use crate::common::{
    self, AnyCgroupManager, CgroupManager, ControllerOpt, FreezerState, JoinSafelyError,
    PathBufExt, WrapIoResult, WrappedIoError,
};
use crate::stats::{PidStatsError, Stats, StatsProvider};

pub struct Manager {
    subsystems: HashMap<CtrlType, PathBuf>,
    /// [stockade patch] The container's cgroup in named hierarchies that hold no
    /// controller (`name=systemd`): joined and removed like a subsystem's, as runc
    /// does, so the container's `/sys/fs/cgroup/systemd` is its own cgroup and not
    /// the hierarchy the runtime was started in (often its root). Also the
    /// hierarchies of controllers it sets no limit in (`JOIN_ONLY_CONTROLLERS`).
    named: Vec<PathBuf>,
    /// [stockade patch] The cpuset hierarchy's mount point, found in the mountinfo
    /// `new` read: joining fills the new cgroup's empty `cpuset.cpus` and
    /// `cpuset.mems` from its ancestors up from there, which read mountinfo once per
    /// file (two more reads in the intermediate process of every create).
    cpuset_mount: Option<PathBuf>,
}

/// Named hierarchies a container is placed in, as runc's fs driver does.
const NAMED_HIERARCHIES: &[&str] = &["systemd"];

/// [stockade patch] Controllers without limits here that a container is still
/// placed in, as runc's fs driver places it in every hierarchy.
const JOIN_ONLY_CONTROLLERS: &[&str] = &["misc", "rdma"];

#[derive(thiserror::Error, Debug)]
pub enum V1ManagerError {
    // [stockade patch] transparent: "io error: {0}" with #[from] (a source) printed
    // the cause twice in an error chain.
    #[error(transparent)]
    WrappedIo(#[from] WrappedIoError),
    #[error("mount point error: {0}")]
    MountPoint(#[from] V1MountPointError),
    #[error("proc error: {0}")]
    Proc(#[from] ProcError),
    #[error("while joining paths: {0}")]
    JoinSafely(#[from] JoinSafelyError),
    #[error("cgroup {0} is required to fulfill the request, but is not supported by this system")]
    CGroupRequired(CtrlType),
    #[error("subsystem does not exist")]
    SubsystemDoesNotExist,
    #[error(transparent)]
    Pathrs(#[from] pathrs::error::Error),

    #[error(transparent)]
    BlkioController(WrappedIoError),
    #[error(transparent)]
    CpuController(WrappedIoError),
    #[error(transparent)]
    CpuAcctController(WrappedIoError),
    #[error(transparent)]
    CpuSetController(#[from] V1CpuSetControllerError),
    #[error(transparent)]
    FreezerController(#[from] V1FreezerControllerError),
    #[error(transparent)]
    HugeTlbController(#[from] V1HugeTlbControllerError),
    #[error(transparent)]
    MemoryController(#[from] V1MemoryControllerError),
    #[error(transparent)]
    PidsController(WrappedIoError),

    #[error(transparent)]
    BlkioStats(#[from] V1BlkioStatsError),
    #[error(transparent)]
    CpuStats(#[from] V1CpuStatsError),
    #[error(transparent)]
    CpuAcctStats(#[from] V1CpuAcctStatsError),
    #[error(transparent)]
    PidsStats(#[from] PidStatsError),
    #[error(transparent)]
    HugeTlbStats(#[from] V1HugeTlbStatsError),
    #[error(transparent)]
    MemoryStats(#[from] V1MemoryStatsError),
}

impl Manager {
    /// Constructs a new cgroup manager with cgroups_path being relative to the root of the subsystem
    pub fn new(cgroup_path: &Path) -> Result<Self, V1ManagerError> {
        Self::new_with_mountinfo(cgroup_path, None)
    }

    /// [stockade patch] [`Manager::new`] with the text of this process's mountinfo
    /// when the caller has it already (`None`: read it here). The caller vouches
    /// that the text is this mount namespace's, read a moment ago: libcontainer's
    /// intermediate process gets the runtime's, read just before it forked.
    pub fn new_with_mountinfo(
        cgroup_path: &Path,
        mountinfo: Option<&str>,
    ) -> Result<Self, V1ManagerError> {
        let mut subsystems = HashMap::new();
        // [stockade patch] mountinfo and /proc/self/cgroup are read once for all
        // controllers, not once per controller (24 procfs reads per manager), and
        // each is parsed once (`util::V1Mounts`). A read or parse that fails leaves
        // every controller unsupported, as it did one by one.
        let parsed = Self::read_proc_files(mountinfo).and_then(|(mountinfo, cgroup)| {
            let mounts = util::V1Mounts::parse(&mountinfo)?;
            let cgroups = ProcessCGroups::from_read(cgroup.as_bytes())?.0;
            Ok((mounts, cgroups))
        });
        for subsystem in CONTROLLERS {
            let found = match &parsed {
                Ok((mounts, cgroups)) => {
                    Self::subsystem_path_in(mounts, cgroups, cgroup_path, subsystem)
                }
                Err(_) => Err(V1ManagerError::SubsystemDoesNotExist),
            };
            if let Ok(subsystem_path) = found {
                subsystems.insert(*subsystem, subsystem_path);
            } else {
                tracing::warn!("cgroup {} not supported on this system", subsystem);
            }
        }

        // A container without a cgroup path of its own stays where the runtime is.
        let mut named = Vec::new();
        if !cgroup_path.as_os_str().is_empty() {
            for name in NAMED_HIERARCHIES {
                // [stockade patch] from the mountinfo read above.
                let found = match &parsed {
                    Ok((mounts, _)) => mounts.named_hierarchy_mount_point(name),
                    Err(_) => util::named_hierarchy_mount_point(name)?,
                };
                if let Some(mount_point) = found {
                    named.push(mount_point.join_safely(cgroup_path)?);
                }
            }
            if let Ok((mounts, _)) = &parsed {
                for controller in JOIN_ONLY_CONTROLLERS {
                    if let Some(mount_point) = mounts.join_only_hierarchy_mount_point(controller) {
                        named.push(mount_point.join_safely(cgroup_path)?);
                    }
                }
            }
        }

        let cpuset_mount = match &parsed {
            Ok((mounts, _)) => mounts.subsystem_mount_point(&CtrlType::CpuSet).ok(),
            Err(_) => None,
        };

        Ok(Manager {
            subsystems,
            named,
            cpuset_mount,
        })
    }

    /// [stockade patch] The cgroup's directory in each hierarchy.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        self.subsystems
            .values()
            .chain(&self.named)
            .cloned()
            .collect()
    }

    /// [stockade patch] The text of /proc/self/mountinfo and /proc/self/cgroup.
    /// `mountinfo`, when given, is used instead of reading the file.
    fn read_proc_files(mountinfo: Option<&str>) -> Result<(String, String), V1ManagerError> {
        if let Some(text) = mountinfo {
            // [stockade patch] A caller that hands over the mount table runs in the
            // mount namespace it was read in, the host's (the runtime, or a fork of
            // it that has not made its own yet), where /proc is the host's procfs:
            // /proc/self/cgroup is read by path. A ProcfsHandle, a private procfs
            // instance made and checked for the one read (~40 syscalls, a
            // superblock made and torn down), guards against a /proc that a
            // container could have mounted over, which this namespace cannot have.
            let cgroup = fs::File::open("/proc/self/cgroup")
                .and_then(common::read_proc_text)
                .map_err(V1MountPointError::Io)?;
            return Ok((text.to_owned(), cgroup));
        }
        // One procfs handle for both (each new one is validated again), each file
        // in one read.
        let procfs = ProcfsHandle::new()?;
        let mountinfo = util::read_mountinfo_with(&procfs)?;
        let file = procfs.open(
            ProcfsBase::ProcSelf,
            "cgroup",
            OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
        )?;
        let cgroup = common::read_proc_text(file).map_err(V1MountPointError::Io)?;
        Ok((mountinfo, cgroup))
    }

    /// `subsystem`'s directory for `cgroup_path`, from this process's cgroup mounts
    /// and its cgroups (`/proc/self/cgroup`).
    fn subsystem_path_in(
        mounts: &util::V1Mounts,
        proc_cgroups: &[ProcessCGroup],
        cgroup_path: &Path,
        subsystem: &CtrlType,
    ) -> Result<PathBuf, V1ManagerError> {
        tracing::debug!("Get path for subsystem: {}", subsystem);
        let mount_point = mounts.subsystem_mount_point(subsystem)?;

        let name = subsystem.to_string();
        let cgroup = proc_cgroups
            .iter()
            .find(|c| c.controllers.contains(&name))
            .ok_or(V1ManagerError::SubsystemDoesNotExist)?;

        let p = if cgroup_path.as_os_str().is_empty() {
            mount_point.join_safely(Path::new(&cgroup.pathname))?
        } else {
            mount_point.join_safely(cgroup_path)?
        };

        Ok(p)
    }

    fn get_required_controllers(
        &self,
        controller_opt: &ControllerOpt,
    ) -> Result<HashMap<&CtrlType, &PathBuf>, V1ManagerError> {
        let mut required_controllers = HashMap::new();

        for controller in CONTROLLERS {
            let required = match controller {
                CtrlType::Cpu => Cpu::needs_to_handle(controller_opt).is_some(),
                CtrlType::CpuAcct => CpuAcct::needs_to_handle(controller_opt).is_some(),
                CtrlType::CpuSet => CpuSet::needs_to_handle(controller_opt).is_some(),
                CtrlType::Devices => Devices::needs_to_handle(controller_opt).is_some(),
                CtrlType::HugeTlb => HugeTlb::needs_to_handle(controller_opt).is_some(),
                CtrlType::Memory => Memory::needs_to_handle(controller_opt).is_some(),
                CtrlType::Pids => Pids::needs_to_handle(controller_opt).is_some(),
                CtrlType::PerfEvent => PerfEvent::needs_to_handle(controller_opt).is_some(),
                CtrlType::Blkio => Blkio::needs_to_handle(controller_opt).is_some(),
                CtrlType::NetworkPriority => {
                    NetworkPriority::needs_to_handle(controller_opt).is_some()
                }
                CtrlType::NetworkClassifier => {
                    NetworkClassifier::needs_to_handle(controller_opt).is_some()
                }
                CtrlType::Freezer => Freezer::needs_to_handle(controller_opt).is_some(),
            };

            if required {
                if let Some(subsystem_path) = self.subsystems.get(controller) {
                    required_controllers.insert(controller, subsystem_path);
                } else {
                    return Err(V1ManagerError::CGroupRequired(*controller));
                }
            }
        }

        Ok(required_controllers)
    }

    pub fn any(self) -> AnyCgroupManager {
        AnyCgroupManager::V1(self)
    }

    /// [stockade patch] The directory of `subsystem` (None when it is not mounted):
    /// the systemd v1 manager (`systemd/legacy.rs`) reads its freezer state.
    pub fn subsystem_path(&self, subsystem: CtrlType) -> Option<&Path> {
        self.subsystems.get(&subsystem).map(PathBuf::as_path)
    }
}

impl Manager {
    /// [stockade patch] Every hierarchy's cgroup gets `member`.
    fn add_member(&self, member: Member) -> Result<(), V1ManagerError> {
        for (ctrl_type, cgroup_path) in &self.subsystems {
            match ctrl_type {
                CtrlType::Cpu => Cpu::add_member(member, cgroup_path)?,
                CtrlType::CpuAcct => CpuAcct::add_member(member, cgroup_path)?,
                CtrlType::CpuSet => match &self.cpuset_mount {
                    Some(mount) => CpuSet::add_member_under(member, cgroup_path, mount)?,
                    None => CpuSet::add_member(member, cgroup_path)?,
                },
                CtrlType::Devices => Devices::add_member(member, cgroup_path)?,
                CtrlType::HugeTlb => HugeTlb::add_member(member, cgroup_path)?,
                CtrlType::Memory => Memory::add_member(member, cgroup_path)?,
                CtrlType::Pids => Pids::add_member(member, cgroup_path)?,
                CtrlType::PerfEvent => PerfEvent::add_member(member, cgroup_path)?,
                CtrlType::Blkio => Blkio::add_member(member, cgroup_path)?,
                CtrlType::NetworkPriority => NetworkPriority::add_member(member, cgroup_path)?,
                CtrlType::NetworkClassifier => NetworkClassifier::add_member(member, cgroup_path)?,
                CtrlType::Freezer => Freezer::add_member(member, cgroup_path)?,
            }
        }
        for cgroup_path in &self.named {
            fs::create_dir_all(cgroup_path).wrap_create_dir(cgroup_path)?;
            member.join(cgroup_path)?;
        }

        Ok(())
    }
}

impl CgroupManager for Manager {
    type Error = V1ManagerError;

    fn get_all_pids(&self) -> Result<Vec<Pid>, Self::Error> {
        let devices = self.subsystems.get(&CtrlType::Devices);
        if let Some(p) = devices {
            Ok(common::get_all_pids(p)?)
        } else {
            Err(V1ManagerError::SubsystemDoesNotExist)
        }
    }

    fn add_task(&self, pid: Pid) -> Result<(), Self::Error> {
        self.add_member(Member::Process(pid))
    }

    /// [stockade patch] The calling thread moves itself (`0` in `tasks`): without
    /// the kernel's global threadgroup lock and the RCU grace period it waits for.
    fn add_calling_process(&self) -> Result<(), Self::Error> {
        self.add_member(Member::CallingThread)
    }

    fn apply(&self, controller_opt: &ControllerOpt) -> Result<(), Self::Error> {
        for (ctrl_type, cgroup_path) in self.get_required_controllers(controller_opt)? {
            match ctrl_type {
                CtrlType::Cpu => Cpu::apply(controller_opt, cgroup_path)?,
                CtrlType::CpuAcct => CpuAcct::apply(controller_opt, cgroup_path)?,
                CtrlType::CpuSet => CpuSet::apply(controller_opt, cgroup_path)?,
                CtrlType::Devices => Devices::apply(controller_opt, cgroup_path)?,
                CtrlType::HugeTlb => HugeTlb::apply(controller_opt, cgroup_path)?,
                CtrlType::Memory => Memory::apply(controller_opt, cgroup_path)?,
                CtrlType::Pids => Pids::apply(controller_opt, cgroup_path)?,
                CtrlType::PerfEvent => PerfEvent::apply(controller_opt, cgroup_path)?,
                CtrlType::Blkio => Blkio::apply(controller_opt, cgroup_path)?,
                CtrlType::NetworkPriority => NetworkPriority::apply(controller_opt, cgroup_path)?,
                CtrlType::NetworkClassifier => {
                    NetworkClassifier::apply(controller_opt, cgroup_path)?
                }
                CtrlType::Freezer => Freezer::apply(controller_opt, cgroup_path)?,
            }
        }

        Ok(())
    }

    fn remove(&self) -> Result<(), Self::Error> {
        for cgroup_path in self.subsystems.values().chain(&self.named) {
            tracing::debug!("remove cgroup {:?}", cgroup_path);
            // [stockade patch] Every process of the tree, sub-cgroups included,
            // and every directory of it, deepest first, in one walk of the tree
            // (see kill_and_delete_tree); a hierarchy without it is skipped.
            common::kill_and_delete_tree(cgroup_path, 4, Duration::from_millis(100))?;
        }

        Ok(())
    }

    fn freeze(&self, state: FreezerState) -> Result<(), Self::Error> {
        let controller_opt = ControllerOpt {
            resources: &Default::default(),
            freezer_state: Some(state),
            oom_score_adj: None,
            disable_oom_killer: false,
        };
        Ok(Freezer::apply(
            &controller_opt,
            self.subsystems
                .get(&CtrlType::Freezer)
                .ok_or(V1ManagerError::SubsystemDoesNotExist)?,
        )?)
    }

    fn stats(&self) -> Result<Stats, Self::Error> {
        let mut stats = Stats::default();

        for (ctrl_type, cgroup_path) in &self.subsystems {
            match ctrl_type {
                CtrlType::Cpu => stats.cpu.throttling = Cpu::stats(cgroup_path)?,
                CtrlType::CpuAcct => stats.cpu.usage = CpuAcct::stats(cgroup_path)?,
                CtrlType::Pids => stats.pids = Pids::stats(cgroup_path)?,
                CtrlType::HugeTlb => stats.hugetlb = HugeTlb::stats(cgroup_path)?,
                CtrlType::Blkio => stats.blkio = Blkio::stats(cgroup_path)?,
                CtrlType::Memory => stats.memory = Memory::stats(cgroup_path)?,
                _ => continue,
            }
        }

        Ok(stats)
    }
}

#[cfg(test)]
mod with_mountinfo_tests {
    use super::*;

    /// [stockade patch] A manager given the text of a mount table finds its
    /// hierarchies there, not in the table of the process it runs in.
    #[test]
    fn new_with_mountinfo_finds_hierarchies_in_the_given_text() {
        let text = "\
35 25 0:30 / /fake/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,name=systemd
36 25 0:31 / /fake/cpuset rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpuset
";
        let m = Manager::new_with_mountinfo(Path::new("/c"), Some(text)).unwrap();
        assert_eq!(m.cpuset_mount, Some(PathBuf::from("/fake/cpuset")));
        assert!(
            m.named.contains(&PathBuf::from("/fake/systemd/c")),
            "{:?}",
            m.named
        );
        for dir in m.cgroup_dirs() {
            assert!(
                dir.starts_with("/fake"),
                "{dir:?} is not in the given table"
            );
        }
    }
}
