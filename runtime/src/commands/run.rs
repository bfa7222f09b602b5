//! `stockade run`: create + start, then (unless detached) wait for the init and
//! delete the container, exiting with the workload's status.

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create::{create_loaded, CreateOpts};
use super::lifecycle::{delete, start};
use super::{exit_code, load, CommandError, Global};
use crate::console_proxy::{ConsoleListener, ConsoleProxy};

pub fn run(g: &Global, a: &liboci_cli::Run) -> Result<i32, CommandError> {
    let id = a.container_id.as_str();
    if a.console_socket.is_some() && !a.detach {
        return Err(CommandError::ConsoleSocketWithoutDetach { verb: "run" });
    }
    if !a.detach {
        // The init's parent exits during create; as subreaper we inherit it and can
        // collect its exit status.
        nix::sys::prctl::set_child_subreaper(true).map_err(CommandError::SelfHarden)?;
    }
    // A terminal asked for in the foreground, with no console socket to send it
    // to: ours (runc allocates it the same way).
    // The bundle read for that is the one created (create would read it again).
    let mut loaded = None;
    if !a.detach && a.console_socket.is_none() {
        loaded = Some(crate::bundle::load(&a.bundle)?);
    }
    let console = if loaded.as_ref().is_some_and(wants_terminal) {
        Some(ConsoleListener::listen().map_err(CommandError::Console)?)
    } else {
        None
    };
    create_loaded(
        g,
        &CreateOpts {
            id,
            bundle: &a.bundle,
            pid_file: a.pid_file.as_deref(),
            console_socket: console
                .as_ref()
                .map(ConsoleListener::path)
                .or(a.console_socket.as_deref()),
            no_pivot: a.no_pivot,
            preserve_fds: a.preserve_fds,
            detach: a.detach,
        },
        loaded,
    )?;
    let proxy = match console.map(|c| c.master().and_then(ConsoleProxy::start)) {
        Some(Err(e)) => {
            let _ = delete(g, id, true);
            return Err(CommandError::Console(e));
        }
        Some(Ok(proxy)) => Some(proxy),
        None => None,
    };
    // Block the forwarded signals before the workload starts, so none can end us
    // between `start` and the wait loop; the init, forked during create, does not
    // inherit this mask.
    let forwarded = if a.detach {
        None
    } else {
        Some(block_forwarded_signals(id)?)
    };
    if let Err(e) = start(g, id) {
        let _ = delete(g, id, true);
        return Err(e);
    }
    let Some(forwarded) = forwarded else {
        return Ok(0);
    };
    let pid = load(g, id)?.pid().ok_or_else(|| CommandError::Io {
        what: format!("container {id:?} has no init pid"),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    })?;
    let status = wait_forwarding_signals(pid, &forwarded, proxy.as_ref())?;
    if let Some(proxy) = proxy {
        proxy.finish();
    }
    if !a.keep {
        delete(g, id, true)?;
    }
    Ok(exit_code(status))
}

/// Whether the bundle's process asks for a terminal (`process.terminal`).
fn wants_terminal(loaded: &crate::bundle::LoadedBundle) -> bool {
    loaded
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

/// The signals a foreground `run` passes on to the container (Ctrl-C, a
/// supervisor's SIGTERM, ...), as runc does, plus SIGCHLD to notice the init's exit.
fn block_forwarded_signals(id: &str) -> Result<SigSet, CommandError> {
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
    set.thread_block().map_err(|e| CommandError::Io {
        what: format!("cannot block signals to forward to container {id:?}"),
        source: e.into(),
    })?;
    Ok(set)
}

/// Wait for the container's init, passing on the blocked `set` of signals, so
/// stopping `stockade run` stops the container instead of orphaning it. As
/// subreaper we also reap whatever else gets re-parented to us.
fn wait_forwarding_signals(
    pid: Pid,
    set: &SigSet,
    console: Option<&ConsoleProxy>,
) -> Result<WaitStatus, CommandError> {
    let wait_err = |source| CommandError::Wait {
        pid: pid.as_raw(),
        source,
    };
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
        if let (Signal::SIGWINCH, Some(console)) = (sig, console) {
            // Our terminal changed size: the container's terminal follows, and its
            // kernel sends the process SIGWINCH itself (as with runc).
            console.resize();
        } else if sig != Signal::SIGCHLD {
            // The init may have just exited; ESRCH is then expected.
            let _ = kill(pid, sig);
        }
    }
}
