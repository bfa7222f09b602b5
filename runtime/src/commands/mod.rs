//! One module per group of verbs. Each verb is a short sequence of calls into the
//! library; errors are typed here and rendered once, in main.rs.

pub mod create;
pub mod doctor;
pub mod exec;
pub mod info;
pub mod learn;
pub mod lifecycle;
pub mod profile_cmd;
pub mod recover;
pub mod run;
/// The user-namespace setup of `create` (and its undo), in `userns/`.
pub use crate::userns::setup as userns_setup;

use std::path::PathBuf;

use libcontainer::container::Container;
use libcontainer::error::LibcontainerError;

use crate::state_root::{StateRoot, StateRootError};

/// Settings every verb shares (from the global flags).
#[derive(Debug, Clone)]
pub struct Global {
    pub root: StateRoot,
    pub config: Option<PathBuf>,
    /// Profile overriding the node config's default, chosen by the caller.
    pub default_profile: Option<String>,
    /// Runtime handler (Kubernetes RuntimeClass) when the caller knows it.
    pub handler: Option<String>,
    /// Host id range allocation database, shared by every state root on the node.
    pub userns_db: PathBuf,
    /// cgroup driver for containers this invocation creates (`--systemd-cgroup`);
    /// later verbs use the one recorded in the container's state.
    pub cgroup_driver: crate::cgroup_placement::CgroupDriver,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    #[error(transparent)]
    Hardening(#[from] crate::hardening::HardeningError),
    #[error(transparent)]
    Admission(Box<crate::admission::AdmissionError>),
    #[error(transparent)]
    Profile(Box<profile_cmd::ProfileCmdError>),
    #[error("profile learn failed")]
    Learn(#[source] Box<learn::LearnError>),
    #[error("user namespace setup failed")]
    Userns(#[source] crate::userns::UsernsError),
    #[error("network sysctls of the joined network namespace")]
    NetnsSysctl(#[source] crate::netns_sysctl::NetnsSysctlError),
    #[error(transparent)]
    StateRoot(#[from] StateRootError),
    #[error("the terminal of the container's process")]
    Console(#[source] crate::console_proxy::ConsoleError),
    #[error("cannot use a console socket without detaching (a foreground {verb} proxies the terminal itself)")]
    ConsoleSocketWithoutDetach { verb: &'static str },
    #[error("container {id:?}: {op} failed")]
    Container {
        id: String,
        op: &'static str,
        #[source]
        source: Box<LibcontainerError>,
    },
    #[error("invalid signal {0:?}")]
    Signal(String),
    /// runc's exact text (libcontainer's `ErrNotRunning`): containerd's runc shim
    /// turns it into NotFound for a kill of an exited task.
    #[error("container not running")]
    NotRunning,
    /// runc's text; `exec` exits 255 with it, as runc does.
    #[error("cannot exec in a paused container (use --ignore-paused to override)")]
    Paused,
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup {op} failed for container {id:?}")]
    Cgroup {
        id: String,
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// runc's words, which tools match.
    #[error("container's cgroup unexpectedly frozen: {}", cgroup.display())]
    CgroupFrozen { cgroup: std::path::PathBuf },
    #[error("cannot tell whether the container's cgroup is frozen")]
    FreezerState(#[from] crate::cgroup_freeze::UnreadableState),
    #[error("invalid resources document")]
    Resources(#[source] serde_json::Error),
    #[error("unsupported {what}: {value:?}")]
    Unsupported { what: &'static str, value: String },
    #[error("failed to wait for process {pid}")]
    Wait {
        pid: i32,
        #[source]
        source: nix::Error,
    },
    #[error("failed to harden the runtime process itself")]
    SelfHarden(#[source] nix::Error),
}

impl CommandError {
    /// The process exit status for this error: 1, except where callers rely on
    /// runc's own (exec into a paused container, or an exec libcontainer could not
    /// start, e.g. into a missing `--cgroup`: 255, runc's "exec failed"). A refusal
    /// by the profile gate stays 1, as every refusal.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Paused | CommandError::Container { op: "exec", .. } => 255,
            _ => 1,
        }
    }

    pub fn container(id: &str, op: &'static str) -> impl FnOnce(LibcontainerError) -> Self {
        let id = id.to_string();
        move |source| CommandError::Container {
            id,
            op,
            source: Box::new(source),
        }
    }

    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| CommandError::Io { what, source }
    }
}

impl From<crate::admission::AdmissionError> for CommandError {
    fn from(e: crate::admission::AdmissionError) -> Self {
        CommandError::Admission(Box::new(e))
    }
}

/// Load an existing container's state.
pub fn load(g: &Global, id: &str) -> Result<Container, CommandError> {
    let dir = g.root.container_dir(id);
    if !dir.join("state.json").exists() {
        return Err(StateRootError::NotFound(id.to_string()).into());
    }
    Container::load(dir).map_err(CommandError::container(id, "load"))
}

/// Exit status of a process, encoded as a shell does (128+signal when killed).
pub fn exit_code(status: nix::sys::wait::WaitStatus) -> i32 {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 1,
    }
}
