//! Drives an OCI runtime binary the way containerd's runc shim does:
//! `RUNTIME --root STATE --log LOG --log-format json VERB ...`.
//!
//! Each test makes its own [`Runtime`] (private state root and log file), so tests
//! run in parallel and "nothing left behind" can be checked per test. The test
//! process makes itself a child subreaper (prctl(2) PR_SET_CHILD_SUBREAPER), as the
//! shim does, so a detached container's init becomes our child and its exit status
//! can be collected.

use crate::bundle::Bundle;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Env var: path of the runtime binary under test.
pub const RUNTIME_ENV: &str = "STOCKADE_TEST_RUNTIME";
/// Env var: `1` when the runtime under test is a reference (runc), which skips the
/// Stockade-specific scenarios, loudly.
pub const REFERENCE_ENV: &str = "STOCKADE_TEST_REFERENCE";

/// How long a container may take to reach a state before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// True when `STOCKADE_TEST_REFERENCE=1`.
pub fn is_reference() -> bool {
    std::env::var(REFERENCE_ENV).is_ok_and(|v| v == "1")
}

/// Call at the top of a Stockade-specific test: returns true (after printing why)
/// when the run is an explicit reference run and the test must be skipped.
pub fn skip_on_reference(reason: &str) -> bool {
    if is_reference() {
        eprintln!("SKIPPED on reference runtime ({REFERENCE_ENV}=1): {reason}");
        true
    } else {
        false
    }
}

/// Panics unless the tests run as root: they create namespaces, cgroups and mounts.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "stockade integration tests need root (they create namespaces, cgroups, mounts); \
         run them as root, e.g. `sudo -E cargo test -p stockade-integration-tests`"
    );
}

fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and changes only
        // which process adopts our orphaned descendants.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(
            rc,
            0,
            "prctl(PR_SET_CHILD_SUBREAPER): {}",
            std::io::Error::last_os_error()
        );
    });
}

/// `VERB --bundle DIR ID` for `bundle`, the runtime's arguments after the globals.
pub fn bundle_verb<'a>(verb: &'a str, bundle: &'a Bundle) -> [&'a std::ffi::OsStr; 4] {
    [
        verb.as_ref(),
        "--bundle".as_ref(),
        bundle.path().as_os_str(),
        bundle.id.as_ref(),
    ]
}

/// A wrapper for [`Runtime::command_via`]: `script` run by `sh` in a private mount
/// namespace, with the runtime and its arguments as `"$@"`.
pub fn in_private_mount_ns(script: &str) -> [&str; 8] {
    [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
    ]
}

/// Whether `path` is on a read-only mount (`statvfs`'s `ST_RDONLY`).
pub fn on_read_only_mount(path: &Path) -> bool {
    let c_path =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("a path without NUL");
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is NUL-terminated and `st` has room for one statvfs.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
    assert_eq!(rc, 0, "statvfs {}", path.display());
    // SAFETY: statvfs returned 0, so it filled `st`.
    unsafe { st.assume_init() }.f_flag & libc::ST_RDONLY != 0
}

/// The runtime binary: `$STOCKADE_TEST_RUNTIME`, else the workspace's debug
/// `stockade` (next to our probe binary, then `$CARGO_TARGET_DIR/debug`, then
/// `<workspace>/target/debug`).
pub fn runtime_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os(RUNTIME_ENV) {
        return PathBuf::from(bin);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate lives in the workspace")
        .to_path_buf();
    let mut candidates = vec![crate::rootfs::target_dir().join("debug/stockade")];
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(t).join("debug/stockade"));
    }
    candidates.push(workspace.join("target/debug/stockade"));
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no stockade binary found (looked at {candidates:?}); build it with \
                 `cargo build -p stockade` or set {RUNTIME_ENV}=/path/to/runtime"
            )
        })
}

/// Output of one runtime invocation.
#[derive(Debug)]
pub struct CmdOutput {
    pub args: Vec<String>,
    /// Exit code; `None` if killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with everything we know if the command failed.
    pub fn expect_ok(self, rt: &Runtime) -> Self {
        assert!(
            self.success(),
            "runtime {:?} failed: code {:?}\nstdout: {}\nstderr: {}\nlog: {}",
            self.args,
            self.code,
            self.stdout,
            self.stderr,
            rt.log_text()
        );
        self
    }

    /// The last non-empty stdout line parsed as JSON (the probe's report).
    pub fn report(&self) -> Value {
        parse_report(&self.stdout)
    }
}

pub fn parse_report(stdout: &str) -> Value {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("no report on stdout: {stdout:?}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("report is not JSON ({e}): {line:?}"))
}

/// One runtime binary with a private state root and log file.
pub struct Runtime {
    bin: PathBuf,
    dir: tempfile::TempDir,
    state_root: PathBuf,
    config: PathBuf,
    /// Range database of another runtime on the same node (see [`Runtime::beside`]).
    shared_db: Option<PathBuf>,
}

/// The profile conformance tests run under: `unconfined` enforces and injects
/// nothing, so a scenario observes the spec exactly as written. Profile tests pick
/// a shipped profile with [`Runtime::with_profile`].
pub const CONFORMANCE_PROFILE: &str = "unconfined";

/// The repository's `profiles/` directory.
pub fn profiles_dir() -> PathBuf {
    crate::installer::repo_root().join("profiles")
}

/// A private copy of the shipped profiles, for a test that edits one of them (the
/// shipped files themselves are never changed).
pub fn profiles_copy() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("stockade-profiles-")
        .tempdir()
        .expect("tempdir");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", profiles_dir().display()))
        .arg(dir.path())
        .status()
        .expect("cp profiles");
    assert!(status.success(), "cp -a profiles failed");
    dir
}

impl Runtime {
    /// The runtime under test (see [`runtime_binary`]).
    pub fn new() -> Self {
        Self::with_state_root(None)
    }

    /// The runtime under test with node default profile `profile` (a name in the
    /// repository's `profiles/`).
    pub fn with_profile(profile: &str) -> Self {
        let rt = Self::with_state_root(None);
        rt.set_node_config(&format!(
            "schema = 1\nprofiles_dir = {:?}\ndefault_profile = {profile:?}\nannotation_allowed = [\"restricted\", \"baseline\", \"default\"]\n",
            profiles_dir()
        ));
        rt
    }

    /// Replace the node config this runtime reads (`STOCKADE_CONFIG`).
    pub fn set_node_config(&self, text: &str) {
        fs::write(&self.config, text).expect("write node config");
    }

    pub fn node_config_path(&self) -> &Path {
        &self.config
    }

    /// This runtime's private host id range database (`STOCKADE_USERNS_DB`), so a
    /// test sees only its own allocations and never touches the node's.
    pub fn userns_db_path(&self) -> PathBuf {
        self.shared_db
            .clone()
            .unwrap_or_else(|| self.dir.path().join("userns-ranges.json"))
    }

    /// A second state root on the same node as `other` (as two containerd
    /// namespaces are): the same node config and the same range database.
    pub fn beside(other: &Runtime) -> Self {
        let mut rt = Self::with_state_root(None);
        rt.set_node_config(&fs::read_to_string(&other.config).expect("read node config"));
        rt.shared_db = Some(other.userns_db_path());
        rt
    }

    /// The allocation database parsed (`{"version":1,"ranges":[...]}`), or `None`
    /// when nothing was ever allocated.
    pub fn userns_db(&self) -> Option<Value> {
        let text = fs::read_to_string(self.userns_db_path()).ok()?;
        Some(
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("userns database is not JSON ({e}): {text}")),
        )
    }

    /// Owners and members of every allocated range, as `(owner, start, members)`.
    pub fn userns_ranges(&self) -> Vec<(String, u64, Vec<String>)> {
        let Some(db) = self.userns_db() else {
            return Vec::new();
        };
        db["ranges"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let members = r["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.as_str().map(str::to_string))
                    .collect();
                (
                    r["owner"].as_str().unwrap_or_default().to_string(),
                    r["start"].as_u64().unwrap_or_default(),
                    members,
                )
            })
            .collect()
    }

    /// Stockade's hardened bundle for `id` (`<root>/.stockade/plans/<id>`).
    pub fn plan_dir(&self, id: &str) -> PathBuf {
        self.state_root.join(".stockade").join("plans").join(id)
    }

    /// Another runtime binary (runc, for tests comparing Stockade with it on the
    /// same bundle), with a private state root and log of its own.
    pub fn with_binary(bin: impl Into<PathBuf>) -> Self {
        let mut rt = Self::with_state_root(None);
        rt.bin = bin.into();
        rt
    }

    /// The reference runtime the parity tests compare with: `/usr/sbin/runc`, or
    /// `$STOCKADE_TEST_RUNC`.
    pub fn runc() -> Self {
        let bin = std::env::var_os("STOCKADE_TEST_RUNC")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/sbin/runc"));
        assert!(
            bin.is_file(),
            "runc parity tests need runc at {} (scripts/install-deps.sh installs it; \
             STOCKADE_TEST_RUNC names another)",
            bin.display()
        );
        Self::with_binary(bin)
    }

    /// Uses `state_root` as `--root` instead of a fresh private one.
    pub fn with_state_root(state_root: Option<PathBuf>) -> Self {
        require_root();
        become_subreaper();
        let dir = tempfile::Builder::new()
            .prefix("stockade-rt-")
            .tempdir()
            .expect("create runtime tempdir");
        let state_root = state_root.unwrap_or_else(|| dir.path().join("state"));
        let config = dir.path().join("config.toml");
        let rt = Self {
            bin: runtime_binary(),
            dir,
            state_root,
            config,
            shared_db: None,
        };
        rt.set_node_config(&format!(
            "schema = 1\nprofiles_dir = {:?}\ndefault_profile = {CONFORMANCE_PROFILE:?}\n",
            profiles_dir()
        ));
        rt
    }

    pub fn binary(&self) -> &Path {
        &self.bin
    }

    /// This runtime started from a writable copy of its binary in `dir`, if its
    /// binary is on a read-only mount (the VM lane shares the build read-only):
    /// only a binary started from a writable file re-executes (CVE-2019-5736).
    pub fn from_writable_binary(mut self, dir: &Path) -> Self {
        if on_read_only_mount(&self.bin) {
            let copy = dir.join("stockade");
            std::fs::copy(&self.bin, &copy).expect("copy the runtime binary");
            self.bin = copy;
        }
        self
    }

    /// The read-only bind mount an entering verb of this binary re-executes from
    /// (`self_protect::PROTECTED_BINARY_DIR`, keyed by the binary's identity).
    pub fn protected_copy(&self) -> String {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&self.bin).expect("stat the runtime binary");
        format!("/run/stockade/bin/{:x}-{:x}/stockade", m.dev(), m.ino())
    }

    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("runtime.log")
    }

    /// The runtime's log so far (`--log-format json` lines).
    pub fn log_text(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `RUNTIME --root S --log L --log-format json ARGS...`, not yet run.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        self.command_via::<&str, S>(&[], args)
    }

    /// [`Runtime::command`] run under `wrapper` (e.g. `strace -e inject=...`): the
    /// runtime binary and its arguments follow the wrapper's own.
    pub fn command_via<W: AsRef<std::ffi::OsStr>, S: AsRef<std::ffi::OsStr>>(
        &self,
        wrapper: &[W],
        args: &[S],
    ) -> Command {
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        cmd.arg("--root")
            .arg(&self.state_root)
            .arg("--log")
            .arg(self.log_path())
            .arg("--log-format")
            .arg("json")
            .args(args)
            .stdin(Stdio::null())
            // Stockade reads its node config from here; a reference runtime ignores it.
            .env("STOCKADE_CONFIG", &self.config)
            .env("STOCKADE_USERNS_DB", self.userns_db_path())
            // From `/`, so a relative path in the spec can only work if the runtime
            // resolves it against the bundle, as the OCI spec says.
            .current_dir("/");
        cmd
    }

    /// Runs the runtime to completion with piped output.
    pub fn exec_cmd<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> CmdOutput {
        let out = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        CmdOutput {
            args: args
                .iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Like [`Runtime::exec_cmd`], with `input` on the runtime's stdin (`update -r -`).
    pub fn exec_cmd_stdin<S: AsRef<std::ffi::OsStr>>(&self, args: &[S], input: &[u8]) -> CmdOutput {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input)
            .expect("write runtime stdin");
        let out = child.wait_with_output().expect("wait for runtime");
        CmdOutput {
            args: args
                .iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs the runtime to completion within `timeout`; kills it (by its own pid)
    /// and fails the test if it is still running then (`events --stats` must not
    /// stream).
    pub fn exec_cmd_timeout<S: AsRef<std::ffi::OsStr>>(
        &self,
        args: &[S],
        timeout: Duration,
    ) -> CmdOutput {
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        match crate::bounded::output_within(self.command(args), timeout)
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()))
        {
            Ok(out) => CmdOutput {
                args: shown,
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            Err(t) => panic!(
                "{shown:?} still running after {timeout:?}; stdout so far: {}",
                t.stdout
            ),
        }
    }

    /// `create --bundle B --pid-file P ID`. The container's stdio (and the
    /// runtime's own stderr) go to files in the bundle directory, as a shim's fifos
    /// would: a pipe would stay open as long as the container lives.
    /// The bundle is borrowed for as long as the container lives: its directory holds
    /// the rootfs, and a bundle dropped (deleted) while its container starts makes the
    /// container's program fail to load (a runtime whose `start` returns before the
    /// exec, as runc's, showed it as exit 127).
    pub fn create<'a>(&'a self, bundle: &'a Bundle) -> Result<Container<'a>, CreateFailed<'a>> {
        self.create_with_id(bundle, &bundle.id)
    }

    pub fn create_with_id<'a>(
        &'a self,
        bundle: &'a Bundle,
        id: &str,
    ) -> Result<Container<'a>, CreateFailed<'a>> {
        self.create_with_args(bundle, id, &[])
    }

    /// `create` with extra flags before the id, e.g. `--console-socket PATH`.
    pub fn create_with_args<'a>(
        &'a self,
        bundle: &'a Bundle,
        id: &str,
        extra: &[&std::ffi::OsStr],
    ) -> Result<Container<'a>, CreateFailed<'a>> {
        let io = ContainerIo::new(bundle.path(), id);
        let pid_file = bundle.path().join(format!("{id}.pid"));
        let mut args: Vec<std::ffi::OsString> = vec![
            "create".into(),
            "--bundle".into(),
            bundle.path().into(),
            "--pid-file".into(),
            pid_file.clone().into(),
        ];
        args.extend(extra.iter().map(|a| a.to_os_string()));
        args.push(id.into());
        let status = self
            .command(&args)
            .stdout(io.stdout_file())
            .stderr(io.stderr_file())
            .status()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        let mut container = Container {
            rt: self,
            id: id.to_string(),
            cgroup: bundle.cgroup_relative(),
            rootfs: bundle.rootfs.clone(),
            io,
            pid: None,
            deleted: false,
        };
        if !status.success() {
            let out = CmdOutput {
                args: args
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                code: status.code(),
                stdout: container.stdout(),
                stderr: container.stderr(),
            };
            return Err(CreateFailed {
                out,
                guard: Box::new(container),
            });
        }
        container.pid = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        assert!(
            container.pid.is_some(),
            "create succeeded but pid file {} is unreadable",
            pid_file.display()
        );
        Ok(container)
    }

    /// `create` then `start`.
    pub fn create_started<'a>(&'a self, bundle: &'a Bundle) -> Container<'a> {
        let c = self.create(bundle).unwrap_or_else(|failed| {
            panic!(
                "create failed: code {:?}\nstderr: {}\nlog: {}",
                failed.out.code,
                failed.out.stderr,
                self.log_text()
            )
        });
        c.start();
        c
    }

    /// Foreground `run --bundle B ID`: returns when the container exits, with its
    /// exit code and output. The container is deleted by the runtime (no `--detach`).
    pub fn run(&self, bundle: &Bundle) -> CmdOutput {
        let out = self.exec_cmd(&bundle_verb("run", bundle));
        // In case the run failed half-way, make sure nothing outlives the test.
        cleanup_container(self, &bundle.id, &bundle.cgroup_relative(), None);
        out
    }

    /// `run` that must succeed with exit code 0; returns the probe's report.
    pub fn run_report(&self, bundle: &Bundle) -> Value {
        self.run(bundle).expect_ok(self).report()
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

/// A refused `create`: its output, plus a guard that cleans up (after the test
/// has asserted that nothing was left behind) whatever the runtime did leave.
pub struct CreateFailed<'a> {
    pub out: CmdOutput,
    guard: Box<Container<'a>>,
}

impl CreateFailed<'_> {
    /// Disarms the cleanup: for a refused duplicate id, the id belongs to another,
    /// live container that must not be deleted.
    pub fn disarm(self) -> CmdOutput {
        let CreateFailed { out, mut guard } = self;
        guard.deleted = true;
        guard.pid = None;
        out
    }
}

impl std::fmt::Debug for CreateFailed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateFailed")
            .field("out", &self.out)
            .finish()
    }
}

/// Files that receive a detached container's stdout and stderr.
pub struct ContainerIo {
    stdout: PathBuf,
    stderr: PathBuf,
}

impl ContainerIo {
    fn new(dir: &Path, id: &str) -> Self {
        Self {
            stdout: dir.join(format!("{id}.stdout")),
            stderr: dir.join(format!("{id}.stderr")),
        }
    }

    fn stdout_file(&self) -> fs::File {
        fs::File::create(&self.stdout).expect("create stdout file")
    }

    fn stderr_file(&self) -> fs::File {
        fs::File::create(&self.stderr).expect("create stderr file")
    }
}

/// A created container. Dropping it force-deletes it and removes its cgroups.
pub struct Container<'a> {
    rt: &'a Runtime,
    pub id: String,
    /// Cgroup path relative to the controller mounts (`stockade-test/<id>`).
    pub cgroup: String,
    pub rootfs: PathBuf,
    io: ContainerIo,
    /// Init pid from the pid file.
    pub pid: Option<i32>,
    deleted: bool,
}

impl<'a> Container<'a> {
    pub fn runtime(&self) -> &'a Runtime {
        self.rt
    }

    fn verb(&self, verb: &str, extra: &[&str]) -> CmdOutput {
        let mut args = vec![verb];
        args.extend_from_slice(extra);
        args.push(&self.id);
        self.rt.exec_cmd(&args)
    }

    pub fn start(&self) {
        self.verb("start", &[]).expect_ok(self.rt);
    }

    /// `state ID` parsed as JSON.
    pub fn state(&self) -> Value {
        let out = self.verb("state", &[]).expect_ok(self.rt);
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state output is not JSON ({e}): {}", out.stdout))
    }

    pub fn status(&self) -> String {
        self.state()["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Polls `state` until its status is `want`.
    pub fn wait_status(&self, want: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let status = self.status();
            if status == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "container {} ({}, pid {:?}) stayed {status:?}, wanted {want:?}\n\
                 its stdout: {}\nits stderr: {}\nruntime log: {}",
                self.id,
                self.rt.binary().display(),
                self.pid,
                self.stdout(),
                self.stderr(),
                self.rt.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&self, signal: &str) -> CmdOutput {
        self.rt.exec_cmd(&["kill", &self.id, signal])
    }

    /// Waits for the init to exit and returns its exit code (128+n for a signal).
    /// Reaps it through the subreaper relation when the runtime left it to us;
    /// otherwise falls back to polling `state` (and returns `None`).
    pub fn wait(&self) -> Option<i32> {
        let pid = self.pid.expect("container has an init pid");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let mut status = 0;
            // SAFETY: status is writable; WNOHANG never blocks.
            let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if rc == pid {
                if libc::WIFEXITED(status) {
                    return Some(libc::WEXITSTATUS(status));
                }
                if libc::WIFSIGNALED(status) {
                    return Some(128 + libc::WTERMSIG(status));
                }
            } else if rc < 0 {
                // Not our child (ECHILD): poll the runtime instead.
                self.wait_status("stopped");
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "container {} did not exit",
                self.id
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn delete(mut self) -> CmdOutput {
        let out = self.verb("delete", &[]);
        if out.success() {
            self.deleted = true;
        }
        out
    }

    pub fn delete_force(mut self) -> CmdOutput {
        let out = self.verb("delete", &["--force"]);
        if out.success() {
            self.deleted = true;
        }
        out
    }

    /// Foreground `exec ID ARGS...`.
    pub fn exec<S: AsRef<str>>(&self, args: &[S]) -> CmdOutput {
        let mut all = vec!["exec".to_string(), self.id.clone()];
        all.extend(args.iter().map(|s| s.as_ref().to_string()));
        self.rt.exec_cmd(&all)
    }

    /// `ps --format json ID`: pids (host view) in the container.
    pub fn ps(&self) -> Vec<i64> {
        let out = self.verb("ps", &["--format", "json"]).expect_ok(self.rt);
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("ps output is not a JSON array ({e}): {}", out.stdout))
    }

    pub fn pause(&self) -> CmdOutput {
        self.verb("pause", &[])
    }

    pub fn resume(&self) -> CmdOutput {
        self.verb("resume", &[])
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.io.stdout).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.io.stderr).unwrap_or_default()
    }

    /// The probe's report from the container's stdout.
    pub fn report(&self) -> Value {
        parse_report(&self.stdout())
    }
}

impl std::fmt::Debug for Container<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("id", &self.id)
            .field("pid", &self.pid)
            .finish()
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if !self.deleted {
            cleanup_container(self.rt, &self.id, &self.cgroup, self.pid);
        } else if let Some(pid) = self.pid {
            reap(pid);
        }
    }
}

/// Best effort: force-delete `id`, kill what is still in its cgroups, remove them.
/// Only touches the container's own processes (found in its own cgroup).
pub fn cleanup_container(rt: &Runtime, id: &str, cgroup: &str, pid: Option<i32>) {
    let _ = rt
        .command(&["delete", "--force", id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    for dir in cgroup_dirs(cgroup) {
        for _ in 0..100 {
            for p in fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
            {
                // SAFETY: kill has no memory effects; p is in our container's cgroup.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            // A frozen cgroup cannot die; thaw it (v1 freezer).
            let _ = fs::write(dir.join("freezer.state"), "THAWED");
            if fs::remove_dir(&dir).is_ok() || !dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    if let Some(pid) = pid {
        reap(pid);
    }
}

/// Collects the exit status of `pid` if it is our (adopted) child and has exited.
fn reap(pid: i32) {
    let mut status = 0;
    for _ in 0..50 {
        // SAFETY: status is writable; WNOHANG never blocks.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc != 0 {
            return;
        }
        // Still running or a zombie not yet notified: only wait if it is dying.
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every place the cgroup `rel` may exist: v1 controller hierarchies and the v2 root,
/// each once (systemd's layout links `cpu` and `cpuacct` to the comounted
/// `cpu,cpuacct`: the links are skipped).
pub fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    let mut dirs = vec![Path::new("/sys/fs/cgroup").join(rel)];
    if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| !t.is_symlink()) {
                dirs.push(e.path().join(rel));
            }
        }
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// The temporary files of `id`'s journal writes (`.ID.PID.tmp`) in `rt`'s state
/// root: a create killed before renaming one leaves it.
pub fn torn_journal_writes(rt: &Runtime, id: &str) -> Vec<PathBuf> {
    let dir = rt.state_root().join(".stockade").join("journal");
    let prefix = format!(".{id}.");
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix) && name.ends_with(".tmp")
        })
        .map(|e| e.path())
        .collect()
}

/// Asserts that container `id` left no state dir, cgroup, process or mount behind.
pub fn assert_nothing_left_behind(rt: &Runtime, id: &str, cgroup: &str, rootfs: &Path) {
    let mut left = Vec::new();
    let state = rt.state_root().join(id);
    if state.exists() {
        left.push(format!("state dir {}", state.display()));
    }
    for dir in cgroup_dirs(cgroup) {
        left.push(format!("cgroup {}", dir.display()));
    }
    left.extend(processes_in_cgroup(cgroup));
    let rootfs = rootfs.to_string_lossy().into_owned();
    // Stockade's idmapped rootfs and bind sources for the container:
    // /run/stockade/rootfs/<hash of state root>/{root/<id>, binds/<id>/<n>}.
    let idmapped_root = format!("/root/{id}");
    let idmapped_binds = format!("/binds/{id}/");
    for line in fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
    {
        if let Some(mount_point) = line.split_whitespace().nth(4) {
            let idmapped = mount_point.starts_with("/run/stockade/rootfs/")
                && (mount_point.ends_with(&idmapped_root) || mount_point.contains(&idmapped_binds));
            if mount_point.starts_with(&rootfs) || idmapped {
                left.push(format!("mount {mount_point}"));
            }
        }
    }
    let plan = rt.plan_dir(id);
    if plan.exists() {
        left.push(format!("hardened bundle {}", plan.display()));
    }
    // The id's lock file and create journal: a verb that failed, or ran on a
    // container deleted meanwhile, must not leave them.
    for kind in ["locks", "journal"] {
        let file = rt.state_root().join(".stockade").join(kind).join(id);
        if file.exists() {
            left.push(format!("{kind} file {}", file.display()));
        }
    }
    left.extend(
        torn_journal_writes(rt, id)
            .into_iter()
            .map(|f| format!("torn journal write {}", f.display())),
    );
    for (owner, start, members) in rt.userns_ranges() {
        if owner == id || members.iter().any(|m| m == id) {
            left.push(format!(
                "user namespace range at {start} (owner {owner}, members {members:?})"
            ));
        }
    }
    assert!(
        left.is_empty(),
        "container {id} left things behind: {left:#?}\nlog: {}",
        rt.log_text()
    );
}

/// Live processes (not zombies we will reap) whose cgroup is `rel` or below it.
fn processes_in_cgroup(rel: &str) -> Vec<String> {
    let needle = format!("/{rel}");
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cg) = fs::read_to_string(e.path().join("cgroup")) else {
            continue;
        };
        let inside = cg.lines().any(|l| {
            l.split(':')
                .nth(2)
                .is_some_and(|p| p == needle || p.starts_with(&format!("{needle}/")))
        });
        if !inside {
            continue;
        }
        let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("?");
        if state != "Z" {
            found.push(format!("process {name} (state {state})"));
        }
    }
    found
}

/// Asserts a refused command: exit status 1 and the runtime's stderr or log names
/// one of `needles` (case-insensitive).
pub fn assert_refused(rt: &Runtime, out: &CmdOutput, needles: &[&str]) {
    let log = rt.log_text();
    let all = format!("{}\n{}", out.stderr, log).to_lowercase();
    assert_eq!(
        out.code,
        Some(1),
        "expected exit status 1 from {:?}\nstdout: {}\nstderr: {}\nlog: {log}",
        out.args,
        out.stdout,
        out.stderr
    );
    assert!(
        needles.iter().any(|n| all.contains(&n.to_lowercase())),
        "error output names none of {needles:?}\nstderr: {}\nlog: {log}",
        out.stderr
    );
}
