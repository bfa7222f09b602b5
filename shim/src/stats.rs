//! Task metrics: the container's cgroup in containerd's `io.containerd.cgroups.v1.Metrics`
//! / `.v2.Metrics` types.
//!
//! Both are read from the container's cgroup directories by hand ([`v1::metrics`],
//! [`v2::metrics`]), not through cgroups-rs 0.5 and containerd-shim's helpers: those
//! turn malformed or unreadable counters into zeros (or panic on a malformed v1
//! `cpu.stat`), never fill v1 CPU usage (they read v2 keys from v1's `cpu.stat`), and
//! leave out v2 `io.stat` and most v1 memory fields.

mod cgroupfs;
pub mod v1;
pub mod v2;

use containerd_shim::protos::protobuf::well_known_types::any::Any;

pub use cgroupfs::{parse_flat_keyed, read_required, CgroupFileError};

use crate::{
    cgroup_path::CgroupPaths,
    error::{Error, Result},
    named::Named as _,
    oom::{resolve, MemoryCgroup},
};

pub fn collect(pid: u32) -> Result<Any> {
    // The same v1/v2 decision as the OOM watcher: v2 only when no v1 hierarchy holds
    // the memory controller (on a hybrid host the unified tree has no controllers).
    let paths = CgroupPaths::of_pid(pid)?;
    let any = match resolve(&paths)
        .ok_or_else(|| Error::InvalidRequest(format!("no memory cgroup for pid {pid}")))?
    {
        MemoryCgroup::V2(dir) => v2::metrics(&dir).map_err(Error::CgroupStats)?.to_any(),
        MemoryCgroup::V1(_) => {
            let dirs = v1::V1Dirs::locate(&paths);
            v1::metrics(&dirs).map_err(Error::CgroupStats)?.to_any()
        }
    };
    any.map_err(Error::Protobuf)
}

#[cfg(test)]
mod tests {
    use containerd_shim::protos::{cgroups, cgroups_v2, protobuf::Message};

    use super::*;

    /// The real path on whatever host runs the tests (read-only): this test process's
    /// own cgroup parses without error into the type of the host's cgroup version.
    #[test]
    fn reads_this_hosts_cgroup() {
        let pid = std::process::id();
        let Ok(version) = crate::oom::memory_cgroup(pid) else {
            eprintln!("skipping reads_this_hosts_cgroup: no memory cgroup");
            return;
        };
        let any = collect(pid).unwrap();
        match version {
            MemoryCgroup::V1(_) => {
                assert!(
                    any.type_url.ends_with("cgroups.v1.Metrics"),
                    "{}",
                    any.type_url
                );
                let m = cgroups::metrics::Metrics::parse_from_bytes(&any.value).unwrap();
                assert!(m.memory.usage.usage > 0, "{m:?}");
                assert!(m.cpu.usage.total > 0, "{m:?}");
            }
            MemoryCgroup::V2(_) => {
                assert!(
                    any.type_url.ends_with("cgroups.v2.Metrics"),
                    "{}",
                    any.type_url
                );
                let m = cgroups_v2::metrics::Metrics::parse_from_bytes(&any.value).unwrap();
                assert!(m.cpu.usage_usec > 0, "{m:?}");
            }
        }
    }
}
