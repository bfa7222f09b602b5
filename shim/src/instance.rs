//! The small interface between the task service (state machine, events, waits) and
//! what actually runs containers. The real implementation execs the runtime binary
//! ([`crate::cli_instance`]); unit tests use a stub that needs no root.

use std::path::PathBuf;

use containerd_shim::protos::{protobuf::well_known_types::any::Any, types::mount::Mount};

use crate::error::Result;

/// Where a process's stdio goes: containerd's FIFOs (or `file://` URIs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// Everything `Create` asks for.
#[derive(Debug, Clone)]
pub struct CreateConfig {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: Vec<Mount>,
    pub stdio: StdioPaths,
    pub options: Option<Any>,
}

/// An exec process: its id, stdio and the OCI `process` JSON.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    pub exec_id: String,
    pub stdio: StdioPaths,
    pub process_json: Vec<u8>,
}

/// Called from a watcher thread when the container's memory cgroup hits an OOM.
pub type OomNotify = Box<dyn Fn() + Send + 'static>;

/// One container, driven through its lifecycle by the task service. The service
/// checks every transition before calling in, so implementations need not.
pub trait Instance: Send + Sync + Sized + 'static {
    /// Shim-wide context shared by all instances (namespace, ...).
    type Factory: Send + Sync;

    /// Creates the container (not started); returns it and its init pid.
    fn create(factory: &Self::Factory, cfg: &CreateConfig) -> Result<(Self, u32)>;
    fn start(&self) -> Result<()>;
    fn kill(&self, signal: u32, all: bool) -> Result<()>;
    /// Removes the container and everything it left (state, rootfs mount); waits for
    /// the init's output to drain.
    fn delete(&self) -> Result<()>;
    fn pause(&self) -> Result<()>;
    fn resume(&self) -> Result<()>;
    fn pids(&self) -> Result<Vec<u32>>;
    /// `resources` is the OCI LinuxResources JSON.
    fn update(&self, resources: &[u8]) -> Result<()>;
    /// Cgroup metrics of the container whose init is `pid`, in containerd's types.
    fn stats(&self, pid: u32) -> Result<Any>;
    /// Starts an exec process; returns its pid.
    fn exec(&self, cfg: &ExecConfig) -> Result<u32>;
    fn kill_exec(&self, pid: u32, signal: u32) -> Result<()>;
    /// Forgets an exited exec; waits for its output to drain.
    fn delete_exec(&self, exec_id: &str) -> Result<()>;
    /// `exec_id` `None` is the init process.
    fn resize_pty(&self, exec_id: Option<&str>, width: u32, height: u32) -> Result<()>;
    fn close_stdin(&self, exec_id: Option<&str>) -> Result<()>;
    /// Starts watching the memory cgroup of `pid` for OOM kills.
    fn watch_oom(&self, pid: u32, notify: OomNotify) -> Result<()>;
    /// Called when the init exited, before its exit is published. A container
    /// without a pid namespace of its own (it shares the pod's or the host's) keeps
    /// whatever the init left running, holding its stdout and cgroup: the
    /// implementation kills it (runc's shim: `ShouldKillAllOnExit` + `KillAll`).
    fn init_exited(&self) -> Result<()>;
}
