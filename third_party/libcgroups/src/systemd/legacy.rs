//! [stockade patch] The systemd cgroup driver on cgroup v1 (legacy and hybrid hosts),
//! as runc's `libcontainer/cgroups/systemd/v1.go` does it:
//!
//! - the container becomes a transient scope unit (`StartTransientUnit`, `Delegate=yes`)
//!   in its slice; systemd creates the unit's cgroup in every controller it manages
//!   (memory, cpu/cpuacct, blkio, pids, devices, and name=systemd) and moves the
//!   process there;
//! - the runtime joins the process to the same path in the controllers systemd leaves
//!   alone (cpuset, freezer, hugetlb, net_cls/net_prio, perf_event), creating them;
//! - limits are given to systemd as unit properties too (so a `daemon-reload`, which
//!   re-applies a unit's properties to its cgroup, keeps them) and then written
//!   exactly by the v1 fs manager at those paths;
//! - `remove` stops the unit (systemd removes its cgroups) and removes the rest.
//!
//! Not passed to systemd: device rules. systemd may re-apply a unit's device policy
//! when its properties change, and without a `DeviceAllow` list that policy allows
//! every device; so a running container is frozen while properties are set and its
//! device rules are rewritten before it thaws. (The VM lane checks that a
//! `systemctl daemon-reload` leaves them as they were.)

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use super::dbus_native::client::SystemdClient;
use super::dbus_native::dbus::DbusConnection;
use super::dbus_native::serialize::Variant;
use super::manager::{
    CgroupsPath, Manager as V2Manager, SystemdManagerError, connect_with_retry, ensure_parent_unit,
};
use crate::common::{AnyCgroupManager, CgroupManager, ControllerOpt, FreezerState};
use crate::stats::Stats;
use crate::v1::ControllerType;
use crate::v1::manager::Manager as FsManager;

/// How long `remove` waits for systemd to remove the cgroups it manages once the unit
/// is stopped, before removing whatever is left itself.
const STOP_WAIT: Duration = Duration::from_secs(5);

pub struct LegacyManager {
    /// Path below each hierarchy's root, e.g.
    /// /kubepods.slice/kubepods-besteffort.slice/.../cri-containerd-<id>.scope
    cgroups_path: PathBuf,
    destructured_path: CgroupsPath,
    container_name: String,
    unit_name: String,
    client: DbusConnection,
    fs_manager: FsManager,
    cgroup_wait_timeout_duration: Duration,
    /// This manager started the unit (create): no process of the container runs
    /// code of its own yet, so `apply` need not freeze it (and must not: the
    /// runtime's processes are mid-handshake).
    started_here: std::cell::Cell<bool>,
}

impl std::fmt::Debug for LegacyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyManager")
            .field("cgroups_path", &self.cgroups_path)
            .field("destructured_path", &self.destructured_path)
            .field("unit_name", &self.unit_name)
            .finish()
    }
}

impl LegacyManager {
    /// [stockade patch] The cgroup's directory in each hierarchy.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        self.fs_manager.cgroup_dirs()
    }
}

impl LegacyManager {
    pub fn new(
        cgroups_path: PathBuf,
        container_name: String,
        use_system: bool,
        cgroup_wait_timeout_duration: Duration,
    ) -> Result<Self, SystemdManagerError> {
        let mut destructured_path: CgroupsPath = cgroups_path.as_path().try_into()?;
        ensure_parent_unit(&mut destructured_path, use_system);
        let (client, (cgroups_path, _boundary)) = connect_with_retry(use_system, |client| {
            V2Manager::construct_cgroups_path(&destructured_path, client)
        })?;
        let fs_manager = FsManager::new(&cgroups_path)?;
        Ok(Self {
            unit_name: V2Manager::get_unit_name(&destructured_path),
            cgroups_path,
            destructured_path,
            container_name,
            client,
            fs_manager,
            cgroup_wait_timeout_duration,
            started_here: std::cell::Cell::new(false),
        })
    }

    pub fn any(self) -> AnyCgroupManager {
        AnyCgroupManager::SystemdLegacy(Box::new(self))
    }

    /// Waits until systemd has moved `pid` into the unit: its name=systemd cgroup (the
    /// hierarchy systemd tracks units in on v1; on a host without one, the unified
    /// line) is the unit's path.
    fn wait_for_process_in_unit(&self, pid: Pid) -> Result<(), SystemdManagerError> {
        let start = Instant::now();
        // systemd's root joined with the slice: the path may lack its leading "/".
        let want = Path::new("/").join(&self.cgroups_path);
        let mut seen = String::new();
        while start.elapsed() < self.cgroup_wait_timeout_duration {
            if let Some(path) = systemd_cgroup_of(pid) {
                if Path::new(&path) == want {
                    return Ok(());
                }
                seen = path;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(SystemdManagerError::LegacyJoinTimeout {
            pid: pid.as_raw(),
            unit: self.unit_name.clone(),
            cgroup: self.cgroups_path.clone(),
            waited: self.cgroup_wait_timeout_duration,
            seen,
        })
    }

    fn wait_for_unit_active(&self) -> Result<(), SystemdManagerError> {
        let start = Instant::now();
        let mut state = String::new();
        while start.elapsed() < self.cgroup_wait_timeout_duration {
            state = self.client.unit_active_state(&self.unit_name)?;
            match state.as_str() {
                "active" => return Ok(()),
                "failed" => break,
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        Err(SystemdManagerError::LegacyUnitNotActive {
            unit: self.unit_name.clone(),
            state,
            waited: start.elapsed(),
        })
    }

    /// Freezes the cgroup unless it is frozen already or empty; true when it did
    /// (and the caller must thaw it).
    fn freeze_for_update(&self) -> Result<bool, SystemdManagerError> {
        if self.started_here.get() {
            return Ok(false);
        }
        let Some(dir) = self.fs_manager.subsystem_path(ControllerType::Freezer) else {
            return Ok(false);
        };
        let state = fs::read_to_string(dir.join("freezer.state")).unwrap_or_default();
        if state.trim() != "THAWED" || self.fs_manager.get_all_pids()?.is_empty() {
            return Ok(false);
        }
        self.fs_manager.freeze(FreezerState::Frozen)?;
        Ok(true)
    }
}

/// The process's cgroup in the hierarchy systemd tracks units in.
fn systemd_cgroup_of(pid: Pid) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let line_path = |controllers: &str| {
        text.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, c, p) = (parts.next()?, parts.next()?, parts.next()?);
            (c == controllers).then(|| p.to_owned())
        })
    };
    line_path("name=systemd").or_else(|| line_path(""))
}

/// The unit properties of the limits systemd applies itself on cgroup v1 (runc's
/// `genV1ResourcesProperties`), so a re-application by systemd writes the same values.
pub(crate) fn v1_properties(opt: &ControllerOpt) -> HashMap<&'static str, Variant> {
    let r = opt.resources;
    let mut props = HashMap::new();
    if let Some(limit) = r.memory().as_ref().and_then(|m| m.limit()) {
        props.insert(
            "MemoryLimit",
            Variant::U64(if limit > 0 { limit as u64 } else { u64::MAX }),
        );
    }
    if let Some(cpu) = r.cpu() {
        if let Some(shares) = cpu.shares().filter(|s| *s > 0) {
            props.insert("CPUShares", Variant::U64(shares));
        }
        let period = cpu.period().filter(|p| *p > 0);
        if let Some(period) = period {
            props.insert("CPUQuotaPeriodUSec", Variant::U64(period));
        }
        if let Some(quota) = cpu.quota() {
            // systemd counts quota per second, in 10 ms steps: round up (as runc).
            let per_sec = if quota > 0 {
                let period = period.unwrap_or(100_000);
                let us = (quota as u64).saturating_mul(1_000_000) / period;
                us.div_ceil(10_000) * 10_000
            } else {
                u64::MAX
            };
            props.insert("CPUQuotaPerSecUSec", Variant::U64(per_sec));
        }
    }
    if let Some(pids) = r.pids() {
        let limit = pids.limit();
        props.insert(
            "TasksMax",
            Variant::U64(if limit > 0 { limit as u64 } else { u64::MAX }),
        );
    }
    if let Some(weight) = r.block_io().as_ref().and_then(|b| b.weight()) {
        props.insert("BlockIOWeight", Variant::U64(u64::from(weight)));
    }
    props
}

impl CgroupManager for LegacyManager {
    type Error = SystemdManagerError;

    fn add_task(&self, pid: Pid) -> Result<(), Self::Error> {
        if pid.as_raw() == -1 {
            return Ok(());
        }
        if self.client.transient_unit_exists(&self.unit_name) {
            // A process exec'd into the container: systemd moves it into the unit.
            self.client
                .add_process_to_unit(&self.unit_name, "", pid.as_raw() as u32)?;
        } else {
            tracing::debug!("starting {:?}", self.unit_name);
            self.client.start_transient_unit(
                &self.container_name,
                pid.as_raw() as u32,
                &self.destructured_path.parent,
                &self.unit_name,
            )?;
            self.started_here.set(true);
            // systemd realizes the unit's cgroups (and any new slice's) while the start
            // job runs, moving the pid as it goes: join the other controllers after.
            self.wait_for_unit_active()?;
        }
        self.wait_for_process_in_unit(pid)?;
        // The same path in every v1 controller: systemd's exist (the pid is in them
        // already); the others are created here.
        self.fs_manager.add_task(pid)?;
        Ok(())
    }

    fn apply(&self, controller_opt: &ControllerOpt) -> Result<(), Self::Error> {
        let props = v1_properties(controller_opt);
        if props.is_empty() {
            return Ok(self.fs_manager.apply(controller_opt)?);
        }
        // systemd rewrites the unit's whole cgroup when its properties change,
        // devices included (to "allow all": no DeviceAllow is passed): frozen, no
        // process runs until the fs manager has written the container's rules back.
        let thaw = self.freeze_for_update()?;
        let result = self
            .client
            .set_unit_properties(&self.unit_name, &props)
            .map_err(SystemdManagerError::from)
            .and_then(|()| Ok(self.fs_manager.apply(controller_opt)?));
        if thaw {
            self.fs_manager.freeze(FreezerState::Thawed)?;
        }
        result
    }

    fn remove(&self) -> Result<(), Self::Error> {
        tracing::debug!("remove {}", self.unit_name);
        if self.client.transient_unit_exists(&self.unit_name) {
            self.client.stop_transient_unit(&self.unit_name)?;
            // systemd removes the cgroups of the controllers it manages; wait for
            // that so both do not remove the same directory at once.
            if let Some(dir) = self.fs_manager.subsystem_path(ControllerType::Memory) {
                let start = Instant::now();
                while dir.exists() && start.elapsed() < STOP_WAIT {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        // The controllers systemd does not manage (cpuset, freezer, ...).
        Ok(self.fs_manager.remove()?)
    }

    fn freeze(&self, state: FreezerState) -> Result<(), Self::Error> {
        Ok(self.fs_manager.freeze(state)?)
    }

    fn stats(&self) -> Result<Stats, Self::Error> {
        Ok(self.fs_manager.stats()?)
    }

    fn get_all_pids(&self) -> Result<Vec<Pid>, Self::Error> {
        Ok(self.fs_manager.get_all_pids()?)
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    };

    use super::*;

    #[test]
    fn limits_become_systemds_v1_properties() {
        let resources = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(48 << 20)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(512u64)
                    .quota(25_000i64)
                    .period(100_000u64)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(64).build().unwrap())
            .build()
            .unwrap();
        let opt = ControllerOpt {
            resources: &resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        };
        let props = v1_properties(&opt);
        assert_eq!(props["MemoryLimit"], Variant::U64(48 << 20));
        assert_eq!(props["CPUShares"], Variant::U64(512));
        assert_eq!(props["CPUQuotaPeriodUSec"], Variant::U64(100_000));
        assert_eq!(props["CPUQuotaPerSecUSec"], Variant::U64(250_000));
        assert_eq!(props["TasksMax"], Variant::U64(64));
        assert!(!props.contains_key("BlockIOWeight"));
    }

    #[test]
    fn unlimited_is_infinity_and_quota_rounds_up() {
        let resources = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(-1).build().unwrap())
            .cpu(LinuxCpuBuilder::default().quota(1_234i64).build().unwrap())
            .pids(LinuxPidsBuilder::default().limit(-1).build().unwrap())
            .build()
            .unwrap();
        let opt = ControllerOpt {
            resources: &resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        };
        let props = v1_properties(&opt);
        assert_eq!(props["MemoryLimit"], Variant::U64(u64::MAX));
        assert_eq!(props["TasksMax"], Variant::U64(u64::MAX));
        // 1234 us per 100 ms = 12340 us/s, rounded up to 20 ms/s.
        assert_eq!(props["CPUQuotaPerSecUSec"], Variant::U64(20_000));
    }

    #[test]
    fn systemd_cgroup_line_is_found() {
        assert!(systemd_cgroup_of(Pid::this()).is_some());
    }
}
