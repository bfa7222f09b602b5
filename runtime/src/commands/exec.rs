//! `stockade exec`: a new process in a running container, under the same
//! namespaces, cgroup, capabilities, no_new_privs, Landlock domains and seccomp
//! filter as the container's init.

use std::collections::HashMap;
use std::path::Path;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::wait::waitpid;

use super::{exit_code, load, CommandError, Global};
use crate::executor::StockadeExecutor;
use crate::hardening;

pub struct ExecOpts<'a> {
    pub args: &'a liboci_cli::Exec,
}

/// Returns the exit code to exit with: 0 when detached, else the process's own.
pub fn exec(g: &Global, opts: &ExecOpts<'_>) -> Result<i32, CommandError> {
    let a = opts.args;
    let id = a.container_id.as_str();
    let _s = tracing::info_span!("exec", id).entered();
    let container = load(g, id)?;
    // The hardened spec (and so the filter) is the one the init runs under.
    let spec = libcontainer::oci_spec::runtime::Spec::load(container.bundle().join("config.json"))
        .map_err(|e| CommandError::Io {
            what: format!("cannot read the hardened spec of container {id:?}"),
            source: std::io::Error::other(e),
        })?;
    let record = g.root.read_plan(id)?;
    let executor = StockadeExecutor {
        seccomp: hardening::compile_seccomp(&spec)?,
        landlock: record.landlock,
    };
    let env: HashMap<String, String> = a.env.iter().cloned().collect();
    if !a.detach {
        // The exec'd process is re-parented to us so we can report its exit status.
        nix::sys::prctl::set_child_subreaper(true).map_err(CommandError::SelfHarden)?;
    }
    let pid = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_executor(executor)
        .with_root_path(g.root.path())
        .and_then(|b| {
            b.with_console_socket(a.console_socket.as_deref())
                .with_pid_file(a.pid_file.as_deref())
        })
        .map(|b| b.with_preserved_fds(a.preserve_fds).validate_id())
        .and_then(|b| b)
        .map(|b| {
            b.as_tenant()
                .with_detach(a.detach)
                .with_cwd(a.cwd.as_deref().map(Path::to_path_buf))
                .with_env(env)
                .with_process(a.process.as_deref())
                .with_no_new_privs(a.no_new_privs)
                .with_container_args(a.command.clone())
                .with_capabilities(a.cap.clone())
                .with_user(a.user.map(|(u, _)| u))
                .with_group(a.user.and_then(|(_, g)| g))
                .with_additional_gids(a.additional_gids.clone())
                .with_ignore_paused(a.ignore_paused)
                .with_sub_cgroup(a.cgroup.clone())
                .with_process_label(a.process_label.clone())
                .with_apparmor(a.apparmor.clone())
        })
        .and_then(|b| b.build())
        .map_err(CommandError::container(id, "exec"))?;
    if a.detach {
        return Ok(0);
    }
    let status = waitpid(pid, None).map_err(|source| CommandError::Wait {
        pid: pid.as_raw(),
        source,
    })?;
    Ok(exit_code(status))
}
