//! `stockade run`: create + start, then (unless detached) wait for the init and
//! delete the container, exiting with the workload's status.

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create::{create, CreateOpts};
use super::lifecycle::{delete, start};
use super::{exit_code, load, CommandError, Global};

pub fn run(g: &Global, a: &liboci_cli::Run) -> Result<i32, CommandError> {
    let id = a.container_id.as_str();
    if !a.detach {
        // The init's parent exits during create; as subreaper we inherit it and can
        // collect its exit status.
        nix::sys::prctl::set_child_subreaper(true).map_err(CommandError::SelfHarden)?;
    }
    create(
        g,
        &CreateOpts {
            id,
            bundle: &a.bundle,
            pid_file: a.pid_file.as_deref(),
            console_socket: a.console_socket.as_deref(),
            no_pivot: a.no_pivot,
            preserve_fds: a.preserve_fds,
            detach: a.detach,
        },
    )?;
    if let Err(e) = start(g, id) {
        let _ = delete(g, id, true);
        return Err(e);
    }
    if a.detach {
        return Ok(0);
    }
    let pid = load(g, id)?.pid().ok_or_else(|| CommandError::Io {
        what: format!("container {id:?} has no init pid"),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    })?;
    let status = wait_forwarding_signals(pid)?;
    if !a.keep {
        delete(g, id, true)?;
    }
    Ok(exit_code(status))
}

/// Wait for the container's init, passing on the signals a foreground `run` gets
/// (Ctrl-C, a supervisor's SIGTERM, ...) as runc does, so stopping `stockade run`
/// stops the container instead of orphaning it. The signals are blocked only now:
/// the init, forked during create, must not inherit a blocked mask into its
/// workload. As subreaper we also reap whatever else gets re-parented to us.
fn wait_forwarding_signals(pid: Pid) -> Result<WaitStatus, CommandError> {
    let mut set = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(sig);
    }
    let wait_err = |source| CommandError::Wait {
        pid: pid.as_raw(),
        source,
    };
    set.thread_block().map_err(wait_err)?;
    loop {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(status) if status.pid() == Some(pid) => return Ok(status),
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(wait_err(e)),
            }
        }
        let sig = set.wait().map_err(wait_err)?;
        if sig != Signal::SIGCHLD {
            // The init may have just exited; ESRCH is then expected.
            let _ = kill(pid, sig);
        }
    }
}
