//! Task metrics: the container's cgroup read with cgroups-rs (through containerd-shim's
//! helpers), in containerd's `io.containerd.cgroups.v1.Metrics` / `.v2.Metrics` types.

use containerd_shim::{
    cgroup::{collect_metrics, collect_metrics_v2, get_cgroup},
    protos::protobuf::well_known_types::any::Any,
    util::convert_to_any,
};

use crate::error::{Error, Result};

pub fn collect(pid: u32) -> Result<Any> {
    let cgroup = get_cgroup(pid).map_err(Error::Metrics)?;
    let any = if cgroup.v2() {
        convert_to_any(Box::new(
            collect_metrics_v2(&cgroup).map_err(Error::Metrics)?,
        ))
    } else {
        convert_to_any(Box::new(collect_metrics(&cgroup).map_err(Error::Metrics)?))
    };
    any.map_err(Error::Metrics)
}
