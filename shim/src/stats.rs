//! Task metrics: the container's cgroup in containerd's `io.containerd.cgroups.v1.Metrics`
//! / `.v2.Metrics` types.
//!
//! cgroup v1 is read with cgroups-rs through containerd-shim's helper; cgroup v2 by
//! [`v2::metrics`] from the container's cgroup directory.

mod cgroupfs;
pub mod v2;

use containerd_shim::{
    cgroup::{collect_metrics, get_cgroup},
    protos::protobuf::well_known_types::any::Any,
    util::convert_to_any,
};

pub use cgroupfs::{parse_flat_keyed, read_required, CgroupFileError};

use crate::{
    error::{Error, Result},
    oom::{memory_cgroup, MemoryCgroup},
};

pub fn collect(pid: u32) -> Result<Any> {
    // The same v1/v2 decision as the OOM watcher: v2 only when no v1 hierarchy holds
    // the memory controller (on a hybrid host the unified tree has no controllers).
    let any = match memory_cgroup(pid)? {
        MemoryCgroup::V2(dir) => {
            convert_to_any(Box::new(v2::metrics(&dir).map_err(Error::CgroupStats)?))
        }
        MemoryCgroup::V1(_) => {
            let cgroup = get_cgroup(pid).map_err(Error::Metrics)?;
            convert_to_any(Box::new(collect_metrics(&cgroup).map_err(Error::Metrics)?))
        }
    };
    any.map_err(Error::Metrics)
}
