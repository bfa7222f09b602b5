//! `stockade run`: create + start, then (unless detached) wait for the init and
//! delete the container, exiting with the workload's status.

use nix::sys::wait::waitpid;

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
    let status = waitpid(pid, None).map_err(|source| CommandError::Wait {
        pid: pid.as_raw(),
        source,
    })?;
    if !a.keep {
        delete(g, id, true)?;
    }
    Ok(exit_code(status))
}
