//! Probe the facts the pure policy checks depend on ([`HostFacts`]), once per
//! decision. Kept out of `profile/` because one probe is privileged: whether tmpfs
//! can be idmapped is answered by trying it on a detached tmpfs (`userns::idmap`).

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::profile::host::{
    kernel_at_least, probe_cgroup, probe_landlock_abi, HostFacts, HostProbeError,
};
use crate::profile::schema::NsType;

/// Whether [`HostFacts::probe_with`] runs the tmpfs idmap probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TmpfsIdmapProbe {
    /// Mount a detached tmpfs and idmap it (a namespace holder is forked): the answer
    /// the kernel gives.
    Run,
    /// Nothing will ask (no bind source lives on tmpfs): judged by the kernel version
    /// alone, with no mount and no fork. Only [`idmap_volumes`] reads the fact, and
    /// only for a bind source on tmpfs.
    ///
    /// [`idmap_volumes`]: crate::profile::rules::user_namespace::idmap_volumes
    Skip,
}

impl HostFacts {
    /// Probe the running kernel, once per decision.
    pub fn probe() -> Result<Self, HostProbeError> {
        Self::probe_with(TmpfsIdmapProbe::Run)
    }

    /// [`HostFacts::probe`], with the costly tmpfs idmap probe (fsopen, fsmount and a
    /// forked user namespace holder, on every create) only when the caller needs it.
    pub fn probe_with(tmpfs: TmpfsIdmapProbe) -> Result<Self, HostProbeError> {
        let kernel_release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|r| r.trim().to_string())
            .unwrap_or_default();
        let mut own_namespaces = BTreeMap::new();
        for ns in NsType::ALL {
            let path = format!("/proc/self/ns/{}", ns.proc_name());
            match std::fs::metadata(&path) {
                Ok(m) => {
                    own_namespaces.insert(ns, m.ino());
                }
                // Kernels without time (or cgroup) namespaces have no entry: nothing to
                // compare against, and nothing a container could share.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(HostProbeError::StatOwnNamespace { path, source }),
            }
        }
        Ok(HostFacts {
            landlock_abi: probe_landlock_abi(),
            cgroup: probe_cgroup(Path::new("/sys/fs/cgroup")),
            own_namespaces,
            tmpfs_idmap: match tmpfs {
                TmpfsIdmapProbe::Run => probe_tmpfs_idmap(&kernel_release),
                TmpfsIdmapProbe::Skip => kernel_at_least(&kernel_release, TMPFS_IDMAP_KERNEL),
            },
            kernel_release,
            oom_score_adj_floor: probe_oom_score_adj_floor(),
        })
    }
}

/// See [`HostFacts::oom_score_adj_floor`]. An unreadable answer counts as "may lower":
/// the write then fails at create, naming itself, rather than being changed here.
pub fn probe_oom_score_adj_floor() -> Option<i32> {
    match caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    ) {
        Ok(false) => std::fs::read_to_string("/proc/self/oom_score_adj")
            .ok()
            .and_then(|v| v.trim().parse().ok()),
        _ => None,
    }
}

/// The first kernel whose tmpfs can be idmapped (FS_ALLOW_IDMAP).
const TMPFS_IDMAP_KERNEL: (u32, u32) = (6, 3);

/// Try to idmap a detached tmpfs; where that probe cannot run (unprivileged
/// `profile check`), the kernel version decides (FS_ALLOW_IDMAP on tmpfs: 6.3).
fn probe_tmpfs_idmap(kernel_release: &str) -> bool {
    match crate::userns::idmap::tmpfs_supports_idmap() {
        Ok(supported) => supported,
        Err(e) => {
            tracing::debug!(error = %e, "tmpfs idmap probe unavailable; judging by kernel version");
            kernel_at_least(kernel_release, TMPFS_IDMAP_KERNEL)
        }
    }
}
