//! Drives the runc-compatible runtime binary, one process per operation.
//!
//! The shim is multithreaded (ttrpc workers, io copies), so it never forks to run
//! container code: every container operation is an exec of the runtime binary.
//! `std::process::Command` spawns with posix_spawn/vfork+exec, which is safe in a
//! threaded process (the child runs no Rust code before exec).
//!
//! The shim is the child subreaper and a signal thread reaps *every* child
//! (`waitpid(-1)`), so `Child::wait` would race it. While serving, exits are taken
//! from containerd-shim's exit monitor instead, subscribed before the spawn so no exit
//! is missed.

use std::{
    ffi::OsString,
    fs::File,
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use containerd_shim::monitor::{monitor_subscribe, wait_pid, Topic};

use crate::options::RuntimeOptions;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("spawn {binary}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{binary} exited with status {status}: {message}")]
    Failed {
        binary: String,
        status: i32,
        message: String,
    },
    #[error("subscribe to exits")]
    Subscribe(#[source] containerd_shim::Error),
    #[error("{op}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("parse {op} output")]
    Parse {
        op: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl RuntimeError {
    /// The runtime reports an unknown container; containerd wants NOT_FOUND for that.
    pub fn is_not_found(&self) -> bool {
        match self {
            // The texts containerd's runc shim maps to NotFound (`checkKillError`):
            // runc's "container not running" for a stopped container, an init that
            // is already gone, an unknown container.
            Self::Failed { message, .. } => {
                let lower = message.to_lowercase();
                message.contains("does not exist")
                    || message.contains("not found")
                    || message.contains("container not running")
                    || message.contains("process already finished")
                    || lower.contains("no such process")
            }
            _ => false,
        }
    }
}

/// How the exit status of a runtime process is collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaping {
    /// A reaper thread owns `waitpid`; wait through the exit monitor.
    Monitor,
    /// No reaper runs (e.g. `-info`): wait on the child directly.
    Direct,
}

/// stdio of a runtime invocation.
pub enum Stdio3 {
    /// Capture stdout and stderr; optional bytes on stdin.
    Capture(Option<Vec<u8>>),
    /// The container's stdio: `create` and `exec` hand their stdio to the process.
    Given {
        stdin: Stdio,
        stdout: Stdio,
        stderr: Stdio,
    },
}

/// One runtime binary, bound to a state root, log file and profile.
#[derive(Debug, Clone)]
pub struct RuntimeCli {
    binary: String,
    root: PathBuf,
    log: Option<PathBuf>,
    profile: Option<String>,
    config: Option<String>,
    handler: Option<String>,
    systemd_cgroup: bool,
    reaping: Reaping,
}

impl RuntimeCli {
    pub fn new(
        opts: &RuntimeOptions,
        namespace: &str,
        bundle: Option<&Path>,
        reaping: Reaping,
    ) -> Self {
        Self {
            binary: opts.binary_name.clone(),
            root: opts.root_for(namespace),
            log: bundle.map(|b| b.join("log.json")),
            profile: opts.profile.clone(),
            config: opts.config.clone(),
            handler: opts.handler.clone(),
            systemd_cgroup: opts.systemd_cgroup,
            reaping,
        }
    }

    /// Global flags, as runc's shim passes them.
    pub fn global_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["--root".into(), self.root.clone().into()];
        if let Some(log) = &self.log {
            args.extend([
                "--log".into(),
                log.clone().into(),
                "--log-format".into(),
                "json".into(),
            ]);
        }
        if self.systemd_cgroup {
            args.push("--systemd-cgroup".into());
        }
        args
    }

    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: Stdio3,
    ) -> Result<(), RuntimeError> {
        let mut args: Vec<OsString> = vec![
            "create".into(),
            "--bundle".into(),
            bundle.into(),
            "--pid-file".into(),
            pid_file.into(),
        ];
        if let Some(sock) = console_socket {
            args.extend(["--console-socket".into(), sock.into()]);
        }
        args.push(id.into());
        self.run(args, stdio).map(drop)
    }

    pub fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(vec!["start".into(), id.into()], Stdio3::Capture(None))
            .map(drop)
    }

    pub fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), RuntimeError> {
        let mut args: Vec<OsString> = vec!["kill".into()];
        if all {
            args.push("--all".into());
        }
        args.extend([id.into(), signal.to_string().into()]);
        self.run(args, Stdio3::Capture(None)).map(drop)
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let mut args: Vec<OsString> = vec!["delete".into()];
        if force {
            args.push("--force".into());
        }
        args.push(id.into());
        self.run(args, Stdio3::Capture(None)).map(drop)
    }

    pub fn exec(
        &self,
        id: &str,
        process_file: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: Stdio3,
    ) -> Result<(), RuntimeError> {
        let mut args: Vec<OsString> = vec![
            "exec".into(),
            "--process".into(),
            process_file.into(),
            "--detach".into(),
            "--pid-file".into(),
            pid_file.into(),
        ];
        if let Some(sock) = console_socket {
            args.extend(["--console-socket".into(), sock.into()]);
        }
        args.push(id.into());
        self.run(args, stdio).map(drop)
    }

    pub fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(vec!["pause".into(), id.into()], Stdio3::Capture(None))
            .map(drop)
    }

    pub fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(vec!["resume".into(), id.into()], Stdio3::Capture(None))
            .map(drop)
    }

    /// `update --resources -` with the OCI LinuxResources JSON on stdin.
    pub fn update(&self, id: &str, resources_json: Vec<u8>) -> Result<(), RuntimeError> {
        let args = vec!["update".into(), "--resources".into(), "-".into(), id.into()];
        self.run(args, Stdio3::Capture(Some(resources_json)))
            .map(drop)
    }

    pub fn ps(&self, id: &str) -> Result<Vec<u32>, RuntimeError> {
        let out = self.run(
            vec!["ps".into(), "--format".into(), "json".into(), id.into()],
            Stdio3::Capture(None),
        )?;
        serde_json::from_slice(&out).map_err(|source| RuntimeError::Parse { op: "ps", source })
    }

    /// The OCI features document (`<binary> features`).
    pub fn features(&self) -> Result<Vec<u8>, RuntimeError> {
        self.run(vec!["features".into()], Stdio3::Capture(None))
    }

    fn env(&self) -> Vec<(&'static str, &str)> {
        let mut env = Vec::new();
        if let Some(p) = &self.profile {
            env.push(("STOCKADE_PROFILE", p.as_str()));
        }
        if let Some(c) = &self.config {
            env.push(("STOCKADE_CONFIG", c.as_str()));
        }
        if let Some(h) = &self.handler {
            env.push(("STOCKADE_HANDLER", h.as_str()));
        }
        env
    }

    /// Runs one runtime command; returns its stdout when captured.
    fn run(&self, args: Vec<OsString>, stdio: Stdio3) -> Result<Vec<u8>, RuntimeError> {
        let log_offset = self
            .log
            .as_ref()
            .and_then(|l| std::fs::metadata(l).ok())
            .map_or(0, |m| m.len());
        let mut cmd = Command::new(&self.binary);
        cmd.args(self.global_args()).args(&args).envs(self.env());
        let mut stdin_data = None;
        let mut stderr_file = None;
        match stdio {
            Stdio3::Capture(data) => {
                let err = tempfile::tempfile().map_err(|source| RuntimeError::Io {
                    op: "create stderr file",
                    source,
                })?;
                let err_clone = err.try_clone().map_err(|source| RuntimeError::Io {
                    op: "clone stderr file",
                    source,
                })?;
                cmd.stdin(if data.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(err_clone);
                stdin_data = data;
                stderr_file = Some(err);
            }
            Stdio3::Given {
                stdin,
                stdout,
                stderr,
            } => {
                cmd.stdin(stdin).stdout(stdout).stderr(stderr);
            }
        }
        let subscription = match self.reaping {
            Reaping::Monitor => {
                Some(monitor_subscribe(Topic::Pid).map_err(RuntimeError::Subscribe)?)
            }
            Reaping::Direct => None,
        };
        let mut child = cmd.spawn().map_err(|source| RuntimeError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        // Close our copies of the container's stdio now, or the io copies never see EOF.
        drop(cmd);
        if let (Some(data), Some(mut stdin)) = (stdin_data, child.stdin.take()) {
            stdin.write_all(&data).map_err(|source| RuntimeError::Io {
                op: "write runtime stdin",
                source,
            })?;
        }
        let mut out = Vec::new();
        if let Some(mut stdout) = child.stdout.take() {
            stdout
                .read_to_end(&mut out)
                .map_err(|source| RuntimeError::Io {
                    op: "read runtime stdout",
                    source,
                })?;
        }
        let status = match subscription {
            Some(sub) => wait_pid(child.id() as i32, sub),
            None => {
                let st = child.wait().map_err(|source| RuntimeError::Io {
                    op: "wait runtime",
                    source,
                })?;
                exit_code(st)
            }
        };
        if status == 0 {
            return Ok(out);
        }
        let mut message = self.log_errors_since(log_offset);
        if message.is_empty() {
            message = stderr_file
                .map(read_all)
                .unwrap_or_default()
                .trim()
                .to_string();
        }
        Err(RuntimeError::Failed {
            binary: self.binary.clone(),
            status,
            message,
        })
    }

    /// The runtime's admission decision for container `id`, from its log: one line
    /// for containerd's log (the full record is in the node's audit log).
    pub fn decision_summary(&self, id: &str) -> Option<String> {
        let text = read_all(File::open(self.log.as_ref()?).ok()?);
        decision_summary(&text, id)
    }

    /// The `{"level":"error","msg":...}` lines the runtime wrote during this call.
    fn log_errors_since(&self, offset: u64) -> String {
        let Some(path) = &self.log else {
            return String::new();
        };
        let Ok(mut f) = File::open(path) else {
            return String::new();
        };
        if f.seek(SeekFrom::Start(offset)).is_err() {
            return String::new();
        }
        error_messages(&read_rest(f))
    }
}

/// Reads from the file's current position to the end.
fn read_rest(mut f: File) -> String {
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    s
}

fn read_all(mut f: File) -> String {
    if f.seek(SeekFrom::Start(0)).is_err() {
        return String::new();
    }
    read_rest(f)
}

fn exit_code(st: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

/// One line for the last `stockade.profile.decision` audit event of a runtime JSON
/// log: outcome, profile, how many changes or violations, and the record's id.
pub fn decision_summary(log: &str, id: &str) -> Option<String> {
    let line = log
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["audit"]["event"] == "stockade.profile.decision")?;
    let a = &line["audit"];
    let outcome = a["outcome"].as_str()?;
    let count = |key: &str| a[key].as_array().map_or(0, Vec::len);
    let what = match outcome {
        "refused" => format!("{} violations", count("violations")),
        "would_refuse" => format!(
            "{} violations reported, not enforced",
            count("would_refuse")
        ),
        _ => format!("{} changes", count("injected")),
    };
    let audit_id = line["audit_id"].as_str().unwrap_or("none");
    Some(format!(
        "stockade: container {id} {outcome} by profile {:?} v{} ({what}; audit id {audit_id})",
        a["profile"].as_str().unwrap_or("?"),
        a["version"].as_str().unwrap_or("?"),
    ))
}

/// The last error message of a runtime JSON log, as go-runc's `getLastRuntimeError`
/// reads it for containerd's runc shim: the runtime's final error carries the whole
/// cause chain, so earlier error lines would only repeat parts of it.
pub fn error_messages(log: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Line {
        level: String,
        msg: String,
    }
    log.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        .find(|l| l.level == "error" || l.level == "fatal")
        .map(|l| l.msg.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes an executable script `rt` into `dir`. The write happens in a child
    /// process: a file this (multi-threaded) test process held open for writing could
    /// be inherited by another test's fork, and exec'ing it would then fail with
    /// ETXTBSY.
    fn fake_runtime(dir: &Path, body: &str) -> std::path::PathBuf {
        use std::io::Write as _;
        let script = dir.join("rt");
        let mut child = std::process::Command::new("sh")
            .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
            .arg(&script)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
        script
    }

    fn cli() -> RuntimeCli {
        RuntimeCli::new(
            &RuntimeOptions {
                binary_name: "/bin/false".into(),
                root: "/run/r".into(),
                ..Default::default()
            },
            "ns",
            Some(Path::new("/b")),
            Reaping::Direct,
        )
    }

    #[test]
    fn global_args_like_runc_shim() {
        assert_eq!(
            cli().global_args(),
            [
                "--root",
                "/run/r/ns",
                "--log",
                "/b/log.json",
                "--log-format",
                "json"
            ]
            .map(OsString::from)
        );
    }

    /// runc's shim passes `--systemd-cgroup` when the options say SystemdCgroup; the
    /// runtime then reads cgroupsPath as slice:prefix:name.
    #[test]
    fn systemd_cgroup_option_becomes_the_global_flag() {
        let opts = RuntimeOptions {
            systemd_cgroup: true,
            ..Default::default()
        };
        let args = RuntimeCli::new(&opts, "ns", None, Reaping::Direct).global_args();
        assert!(args.iter().any(|a| a == "--systemd-cgroup"), "{args:?}");
        assert!(!cli().global_args().iter().any(|a| a == "--systemd-cgroup"));
    }

    #[test]
    fn last_error_line_is_the_message() {
        let log = r#"{"level":"info","msg":"hello","time":"x"}
{"level":"error","msg":"failed to mount /x on /y","time":"x"}
not json
{"level":"error","msg":"create failed: failed to mount /x on /y: No such file or directory\n","time":"x"}
{"level":"info","msg":"after","time":"x"}"#;
        assert_eq!(
            error_messages(log),
            "create failed: failed to mount /x on /y: No such file or directory"
        );
        assert_eq!(error_messages("{\"level\":\"info\",\"msg\":\"x\"}"), "");
    }

    #[test]
    fn failure_uses_stderr_without_log() {
        let tmp = tempfile::tempdir().unwrap();
        let script = fake_runtime(tmp.path(), "#!/bin/sh\necho 'bad things' >&2\nexit 3\n");
        let cli = RuntimeCli::new(
            &RuntimeOptions {
                binary_name: script.to_str().unwrap().into(),
                ..Default::default()
            },
            "ns",
            Some(tmp.path()),
            Reaping::Direct,
        );
        let err = cli.start("c").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{} exited with status 3: bad things", script.display())
        );
    }

    #[test]
    fn handler_profile_and_config_reach_the_runtime_environment() {
        let rt = RuntimeCli::new(
            &RuntimeOptions {
                profile: Some("restricted".into()),
                config: Some("/etc/stockade/config.toml".into()),
                handler: Some("stockade-restricted".into()),
                ..Default::default()
            },
            "ns",
            None,
            Reaping::Direct,
        );
        assert_eq!(
            rt.env(),
            vec![
                ("STOCKADE_PROFILE", "restricted"),
                ("STOCKADE_CONFIG", "/etc/stockade/config.toml"),
                ("STOCKADE_HANDLER", "stockade-restricted"),
            ]
        );
        assert!(cli().env().is_empty());
    }

    #[test]
    fn decision_summary_is_one_line_from_the_audit_event() {
        let log = concat!(
            r#"{"level":"info","msg":"other","time":"t"}"#,
            "\n",
            r#"{"level":"warn","msg":"container refused by profile","audit":{"event":"stockade.profile.decision","outcome":"refused","profile":"restricted","version":"1.0.0","violations":[{},{}],"injected":[]},"audit_id":"ab12","time":"t"}"#,
            "\n",
        );
        assert_eq!(
            decision_summary(log, "c1").as_deref(),
            Some("stockade: container c1 refused by profile \"restricted\" v1.0.0 (2 violations; audit id ab12)")
        );
        assert_eq!(decision_summary("{}\n", "c1"), None);
    }

    #[test]
    fn failure_prefers_log_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let script = fake_runtime(
            tmp.path(),
            "#!/bin/sh\nwhile [ \"$1\" != --log ]; do shift; done\necho '{\"level\":\"error\",\"msg\":\"container does not exist\"}' >> \"$2\"\necho noise >&2\nexit 1\n",
        );
        std::fs::write(
            tmp.path().join("log.json"),
            "{\"level\":\"error\",\"msg\":\"old\"}\n",
        )
        .unwrap();
        let cli = RuntimeCli::new(
            &RuntimeOptions {
                binary_name: script.to_str().unwrap().into(),
                ..Default::default()
            },
            "ns",
            Some(tmp.path()),
            Reaping::Direct,
        );
        let err = cli.kill("c", 9, false).unwrap_err();
        assert!(err.is_not_found());
        assert!(
            err.to_string().ends_with(": container does not exist"),
            "{err}"
        );
    }
}
