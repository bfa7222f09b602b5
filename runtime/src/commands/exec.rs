//! `stockade exec`: a new process in a running container, under the same
//! namespaces, cgroup, capabilities, no_new_privs, Landlock domains and seccomp
//! filter as the container's init.

use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::ContainerStatus;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::wait::waitpid;

use super::{exit_code, load, CommandError, Global};
use crate::admission::{self, AdmissionError};
use crate::exec_policy::ExecFlags;
use crate::executor::StockadeExecutor;
use crate::hardening;
use crate::profile::gate::{self, RuntimeOpts, Verb};
use crate::profile::StatNsLookup;
use oci_spec::runtime::{Process, User};

use crate::console_proxy::ConsoleProxy;

pub struct ExecOpts<'a> {
    pub args: &'a liboci_cli::Exec,
}

/// Returns the exit code to exit with: 0 when detached, else the process's own.
pub fn exec(g: &Global, opts: &ExecOpts<'_>) -> Result<i32, CommandError> {
    let a = opts.args;
    let id = a.container_id.as_str();
    if a.console_socket.is_some() && !a.detach {
        return Err(CommandError::ConsoleSocketWithoutDetach { verb: "exec" });
    }
    let _s = tracing::info_span!("exec", id).entered();
    let container = load(g, id)?;
    // runc's answers, which callers test for: a paused container refuses (exit 255,
    // see `CommandError::exit_code`) unless --ignore-paused; a stopped one cannot
    // be entered; a created one can (its namespaces exist, the init waits for start).
    match container.status() {
        ContainerStatus::Paused if !a.ignore_paused => return Err(CommandError::Paused),
        ContainerStatus::Stopped => return Err(CommandError::NotRunning),
        _ => {}
    }
    // The hardened spec (and so the filter) is the one the init runs under.
    let spec = libcontainer::oci_spec::runtime::Spec::load(container.bundle().join("config.json"))
        .map_err(|e| CommandError::Io {
            what: format!("cannot read the hardened spec of container {id:?}"),
            source: std::io::Error::other(e),
        })?;
    let record = g.root.read_plan(id)?;
    let executor = StockadeExecutor {
        seccomp: hardening::compile_seccomp(&spec)?,
        // The recorded requests, resolved for this host as at create, in the parent.
        landlock: hardening::resolve_landlock(
            &record.landlock,
            crate::profile::host::probe_landlock_abi(),
        )?,
        // An exec'd process mounts nothing.
        binds: Default::default(),
    };
    let init = spec.process().clone().unwrap_or_default();
    // The process to start, built completely here so that what the gate judges is
    // exactly what libcontainer runs: the caller's process.json clamped to the init's
    // privileges, or (argv form, as runc) the init's own process with the flags'
    // overrides, which carries the init's AppArmor profile and SELinux label.
    let process = match a.process.as_deref() {
        Some(path) => {
            let mut p = read_process(path, init.user())?;
            crate::exec_policy::clamp_process(&mut p, &init);
            p
        }
        None => {
            // --cap additions outside the init's bounding set are dropped.
            let caps = crate::exec_policy::allowed_extra_caps(&a.cap, &init);
            crate::exec_policy::argv_process(
                &init,
                &ExecFlags {
                    args: &a.command,
                    env: &a.env,
                    cwd: a.cwd.as_deref(),
                    user: a.user,
                    additional_gids: &a.additional_gids,
                    tty: a.tty,
                    apparmor: a.apparmor.as_deref(),
                    process_label: a.process_label.as_deref(),
                    no_new_privs: a.no_new_privs,
                    caps: &caps,
                },
            )
        }
    };
    let profile = record
        .policy
        .as_ref()
        .ok_or_else(|| AdmissionError::NoRecordedProfile(id.to_string()))?;
    let opts = RuntimeOpts {
        preserve_fds: a.preserve_fds,
        ..Default::default()
    };
    admission::judge(g.config.as_deref(), Verb::Exec, profile, id, |host| {
        gate::exec(&spec, &process, &opts, profile, host, &StatNsLookup)
    })?;
    // Side effects start once the gate has said yes.
    if let Some(range) = record.userns.as_ref().and_then(|u| u.range) {
        // As in create: the caller's process.json says nothing of our range.
        crate::userns::stdio::chown_inherited_pipes(range);
    }
    let process_file = write_process(g, id, &process)?;
    if !a.detach {
        // The exec'd process is re-parented to us so we can report its exit status.
        nix::sys::prctl::set_child_subreaper(true).map_err(CommandError::SelfHarden)?;
    }
    // A terminal asked for in the foreground, with no console socket to send it
    // to: ours (runc allocates it the same way).
    let console = if !a.detach && a.console_socket.is_none() && process.terminal() == Some(true) {
        match crate::console_proxy::ConsoleListener::listen() {
            Ok(c) => Some(c),
            Err(e) => {
                let _ = std::fs::remove_file(&process_file);
                return Err(CommandError::Console(e));
            }
        }
    } else {
        None
    };
    let console_socket = console
        .as_ref()
        .map(crate::console_proxy::ConsoleListener::path)
        .or(a.console_socket.as_deref());
    let pid = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_executor(executor)
        .with_root_path(g.root.path())
        .and_then(|b| {
            b.with_console_socket(console_socket)
                .with_pid_file(a.pid_file.as_deref())
        })
        .map(|b| b.with_preserved_fds(a.preserve_fds).validate_id())
        .and_then(|b| b)
        .map(|b| {
            b.as_tenant()
                .with_detach(a.detach)
                .with_process(Some(&process_file))
                .with_ignore_paused(a.ignore_paused)
                .with_sub_cgroup(a.cgroup.clone())
                // Not used by libcontainer 0.7 (no SELinux support); the label is in
                // the process document, as the spec says.
                .with_process_label(process.selinux_label().clone())
        })
        .and_then(|b| b.build());
    let _ = std::fs::remove_file(&process_file);
    let pid = pid.map_err(CommandError::container(id, "exec"))?;
    if a.detach {
        return Ok(0);
    }
    let proxy = match console.map(|c| c.master().and_then(ConsoleProxy::start)) {
        Some(Err(e)) => {
            // The process waits on a terminal nobody reads: end it.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(CommandError::Console(e));
        }
        Some(Ok(proxy)) => Some(proxy),
        None => None,
    };
    let status = waitpid(pid, None).map_err(|source| CommandError::Wait {
        pid: pid.as_raw(),
        source,
    });
    if let Some(proxy) = proxy {
        proxy.finish();
    }
    Ok(exit_code(status?))
}

/// The caller's process.json: a regular file of bounded size, parse errors naming the
/// JSON field, and a program to run. A process that says nothing of `user` runs as
/// the container's user (`init_user`), see [`crate::exec_policy::parse_process`].
fn read_process(path: &Path, init_user: &User) -> Result<Process, CommandError> {
    let bytes = crate::bounded_read::read(path, crate::bounded_read::CONFIG_CAP)
        .map_err(CommandError::io(format!("cannot read {}", path.display())))?;
    crate::exec_policy::parse_process(&bytes, init_user).map_err(|e| CommandError::Io {
        what: format!("{}: {e}", path.display()),
        source: match e {
            crate::exec_policy::ProcessError::Parse { source, .. } => std::io::Error::other(source),
            crate::exec_policy::ProcessError::EmptyArgs => {
                std::io::Error::from(std::io::ErrorKind::InvalidInput)
            }
        },
    })
}

/// Write the judged process beside the hardened spec, for libcontainer to run.
fn write_process(g: &Global, id: &str, process: &Process) -> Result<PathBuf, CommandError> {
    let out = g
        .root
        .plan_dir(id)
        .join(format!("exec-{}.json", std::process::id()));
    let json = serde_json::to_vec(process).map_err(|e| CommandError::Io {
        what: "cannot serialize the exec process".into(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&out, json)
        .map_err(CommandError::io(format!("cannot write {}", out.display())))?;
    Ok(out)
}
