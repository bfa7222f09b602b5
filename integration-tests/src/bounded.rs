//! Running a client command with a time limit.
//!
//! A client (ctr) that waits for something the runtime or shim never delivers
//! would otherwise hang the test, and with it a whole VM-lane boot, with nothing
//! said about what was waited on. Bounded, the test fails naming the command and
//! showing what it printed, and the caller adds the daemon's log.

use std::fs;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A command that was still running at its limit (it has been killed).
#[derive(Debug)]
pub struct TimedOut {
    pub limit: Duration,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` (stdin from /dev/null) to completion or until `limit`; on the
/// limit kills it, our own child, by its PID. Output goes through files, so a
/// grandchild that keeps a pipe open cannot hold the call up either.
pub fn output_within(
    mut cmd: Command,
    limit: Duration,
) -> std::io::Result<Result<Output, TimedOut>> {
    let dir = tempfile::tempdir()?;
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path)?)
        .stderr(fs::File::create(&err_path)?)
        .spawn()?;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = fs::read(&out_path)?;
    let stderr = fs::read(&err_path)?;
    Ok(match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(TimedOut {
            limit,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_command_gives_its_output_and_status() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let out = output_within(cmd, Duration::from_secs(30))
            .unwrap()
            .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn a_command_past_its_limit_is_killed_and_what_it_printed_kept() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; exec sleep 600"]);
        let t = output_within(cmd, Duration::from_millis(500))
            .unwrap()
            .expect_err("still running at the limit");
        assert_eq!(t.stdout, "started\n");
    }
}
