use std::fs;
use std::path::Path;

use nix::unistd::Pid;

use crate::common::{self, CGROUP_PROCS, ControllerOpt, WrapIoResult, WrappedIoError};

/// [stockade patch] What joins a cgroup: a process by pid, or the calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Member {
    /// The whole thread group of `pid`, written to `cgroup.procs`.
    Process(Pid),
    /// The calling thread alone, as `0` in `tasks`. The kernel takes its global
    /// `cgroup_threadgroup_rwsem` for writer when a pid or a whole thread group
    /// moves, and taking it waits for an RCU grace period (5-15 ms on a loaded
    /// host) unless another move did so moments before; the calling thread moving
    /// itself skips that lock (cgroup_procs_write_start). For a process with a
    /// single thread it is the same move.
    CallingThread,
}

impl Member {
    pub(super) fn join(self, cgroup_path: &Path) -> Result<(), WrappedIoError> {
        match self {
            Member::Process(pid) => common::write_cgroup_file(cgroup_path.join(CGROUP_PROCS), pid),
            Member::CallingThread => common::write_cgroup_file(cgroup_path.join(CGROUP_TASKS), 0),
        }
    }
}

/// The v1 file listing a cgroup's threads; a thread written to it moves alone.
pub(super) const CGROUP_TASKS: &str = "tasks";

pub(super) trait Controller {
    type Error: From<WrappedIoError>;
    type Resource;

    /// Adds a new task specified by its pid to the cgroup (the manager uses
    /// [`Controller::add_member`]; the controllers' tests this).
    #[cfg(test)]
    fn add_task(pid: Pid, cgroup_path: &Path) -> Result<(), Self::Error> {
        Self::add_member(Member::Process(pid), cgroup_path)
    }

    /// [stockade patch] Adds `member` (a process, or the calling thread).
    fn add_member(member: Member, cgroup_path: &Path) -> Result<(), Self::Error> {
        fs::create_dir_all(cgroup_path).wrap_create_dir(cgroup_path)?;
        member.join(cgroup_path)?;
        Ok(())
    }

    /// Applies resource restrictions to the cgroup
    fn apply(controller_opt: &ControllerOpt, cgroup_root: &Path) -> Result<(), Self::Error>;

    /// Checks if the controller needs to handle this request
    fn needs_to_handle<'a>(controller_opt: &'a ControllerOpt) -> Option<&'a Self::Resource>;
}
