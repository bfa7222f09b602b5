//! `stockade exec`: a new process in a running container, under the same
//! namespaces, cgroup, capabilities, no_new_privs, Landlock domains and seccomp
//! filter as the container's init.

use std::collections::HashMap;

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
    if let Some(range) = record.userns.as_ref().and_then(|u| u.range) {
        // As in create: the caller's process.json says nothing of our range.
        crate::userns::stdio::chown_inherited_pipes(range);
    }
    let executor = StockadeExecutor {
        seccomp: hardening::compile_seccomp(&spec)?,
        landlock: record.landlock,
    };
    let env: HashMap<String, String> = a.env.iter().cloned().collect();
    // Like runc, an argv-form exec starts from the container's own process: without
    // --cwd / --user it runs in the spec's cwd as the spec's user. libcontainer's
    // tenant builder would default to `/` and uid 0, i.e. root in a container whose
    // workload was configured to run unprivileged.
    let spec_process = spec.process().as_ref().filter(|_| a.process.is_none());
    let cwd = a
        .cwd
        .clone()
        .or_else(|| spec_process.map(|p| p.cwd().clone()));
    let (uid, gid) = match a.user {
        Some((uid, gid)) => (Some(uid), gid),
        None => (
            spec_process.map(|p| p.user().uid()),
            spec_process.map(|p| p.user().gid()),
        ),
    };
    // Never more than the init holds: clamp a caller's process.json into a copy
    // kept beside the hardened spec, and drop --cap additions outside the init's
    // bounding set.
    let (process_file, extra_caps) = match spec.process() {
        Some(init) => (
            clamped_process_file(g, id, a.process.as_deref(), init)?,
            crate::exec_policy::allowed_extra_caps(&a.cap, init),
        ),
        None => (a.process.clone(), Vec::new()),
    };
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
                .with_cwd(cwd)
                .with_env(env)
                .with_process(process_file.as_deref())
                .with_no_new_privs(a.no_new_privs)
                .with_container_args(a.command.clone())
                .with_capabilities(extra_caps)
                .with_user(uid)
                .with_group(gid)
                .with_additional_gids(a.additional_gids.clone())
                .with_ignore_paused(a.ignore_paused)
                .with_sub_cgroup(a.cgroup.clone())
                .with_process_label(a.process_label.clone())
                .with_apparmor(a.apparmor.clone())
        })
        .and_then(|b| b.build());
    if let (Some(path), Some(_)) = (&process_file, &a.process) {
        let _ = std::fs::remove_file(path);
    }
    let pid = pid.map_err(CommandError::container(id, "exec"))?;
    if a.detach {
        return Ok(0);
    }
    let status = waitpid(pid, None).map_err(|source| CommandError::Wait {
        pid: pid.as_raw(),
        source,
    })?;
    Ok(exit_code(status))
}

/// Write the caller's process.json, clamped to the init's privileges, beside the
/// hardened spec; `None` when the caller gave none.
fn clamped_process_file(
    g: &Global,
    id: &str,
    requested: Option<&std::path::Path>,
    init: &oci_spec::runtime::Process,
) -> Result<Option<std::path::PathBuf>, CommandError> {
    let Some(path) = requested else {
        return Ok(None);
    };
    let bytes = crate::bounded_read::read(path, crate::bounded_read::CONFIG_CAP)
        .map_err(CommandError::io(format!("cannot read {}", path.display())))?;
    let mut process: oci_spec::runtime::Process =
        crate::bundle::parse_json(&bytes).map_err(|(field, source)| CommandError::Io {
            what: format!(
                "{} is not a valid OCI process{}",
                path.display(),
                crate::bundle::at_field(&field)
            ),
            source: std::io::Error::other(source),
        })?;
    // The process's program is its first arg; nothing to run is the caller's error.
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(CommandError::Io {
            what: format!(
                "{}: args: empty (the process needs a program to run)",
                path.display()
            ),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        });
    }
    crate::exec_policy::clamp_process(&mut process, init);
    let out = g
        .root
        .plan_dir(id)
        .join(format!("exec-{}.json", std::process::id()));
    let json = serde_json::to_vec(&process).map_err(|e| CommandError::Io {
        what: "cannot serialize the clamped process".into(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&out, json)
        .map_err(CommandError::io(format!("cannot write {}", out.display())))?;
    Ok(Some(out))
}
