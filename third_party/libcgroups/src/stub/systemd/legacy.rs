//! [stockade patch] Stands in for `systemd/legacy.rs` (the systemd driver on cgroup v1)
//! when the `systemd` or `v1` feature is off: it can never be constructed
//! (`create_cgroup_manager` refuses with `SystemdLegacyNotEnabled` instead).

use crate::common::{AnyCgroupManager, CgroupManager};
use crate::systemd::manager::SystemdManagerError;

pub struct LegacyManager {
    never: std::convert::Infallible,
}

impl LegacyManager {
    /// [stockade patch] No cgroup without the feature.
    pub fn cgroup_dirs(&self) -> Vec<std::path::PathBuf> {
        match self.never {}
    }
}

impl LegacyManager {
    pub fn any(self) -> AnyCgroupManager {
        AnyCgroupManager::SystemdLegacy(Box::new(self))
    }
}

impl CgroupManager for LegacyManager {
    type Error = SystemdManagerError;

    fn add_task(&self, _pid: nix::unistd::Pid) -> Result<(), Self::Error> {
        match self.never {}
    }

    fn apply(&self, _controller_opt: &crate::common::ControllerOpt) -> Result<(), Self::Error> {
        match self.never {}
    }

    fn remove(&self) -> Result<(), Self::Error> {
        match self.never {}
    }

    fn freeze(&self, _state: crate::common::FreezerState) -> Result<(), Self::Error> {
        match self.never {}
    }

    fn stats(&self) -> Result<crate::stats::Stats, Self::Error> {
        match self.never {}
    }

    fn get_all_pids(&self) -> Result<Vec<nix::unistd::Pid>, Self::Error> {
        match self.never {}
    }
}
