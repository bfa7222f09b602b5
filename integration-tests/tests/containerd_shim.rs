//! `ctr` against a private containerd with `io.containerd.stockade.v2` (our shim) and
//! `io.containerd.runc.v2` (containerd's runc shim) driving `stockade`.
//!
//! Root only. The runtime binary is the workspace's `stockade` under the node default
//! profile `default` (set STOCKADE_RUNTIME_BINARY=/usr/sbin/runc for the reference
//! run; Stockade-specific tests then print SKIPPED). Every container lives in cgroup
//! `/stockade-test/<id>`; after each test no shim, mount, task dir, runtime state,
//! host id range or cgroup is left.

use std::{
    io::Read,
    process::{Child, Command, Output, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use serde_json::Value;
use stockade_integration_tests::containerd::{
    cgroup_parent, remove_test_cgroups, runtime_binary, runtime_is_stockade, skip_unless_stockade,
    test_cgroups, Containerd, IMAGE, RUNTIME,
};
use stockade_integration_tests::profiles::{cap_mask, parse_id_map, status_hex, status_str};
use stockade_integration_tests::runtime::parse_report;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

fn unique(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `ctr run` args for our runtime; `extra` goes before the image.
fn run_args(c: &Containerd, id: &str, extra: &[&str], cmd: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "run".into(),
        "--runtime".into(),
        RUNTIME.into(),
        "--runtime-config-path".into(),
        c.runtime_config().display().to_string(),
        "--cgroup".into(),
        format!("{}/{id}", cgroup_parent()),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a.push(IMAGE.into());
    a.push(id.into());
    a.extend(cmd.iter().map(|s| s.to_string()));
    a
}

/// `ctr run` args for containerd's runc shim with `stockade` as its runc binary.
fn runc_shim_run_args(c: &Containerd, id: &str, extra: &[&str], cmd: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "run".into(),
        "--runtime".into(),
        "io.containerd.runc.v2".into(),
        "--runc-binary".into(),
        runtime_binary(),
        "--runc-root".into(),
        c.runc_shim_root().display().to_string(),
        "--cgroup".into(),
        format!("{}/{id}", cgroup_parent()),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a.push(IMAGE.into());
    a.push(id.into());
    a.extend(cmd.iter().map(|s| s.to_string()));
    a
}

fn ctr(c: &Containerd, args: &[String]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    c.ctr(&args)
}

/// Records containerd events while a test runs.
struct Events {
    child: Child,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Events {
    fn start(c: &Containerd) -> Self {
        let mut child = c
            .ctr_cmd(&["events"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ctr events");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut stdout = child.stdout.take().unwrap();
        let sink = std::sync::Arc::clone(&seen);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        // ctr subscribes asynchronously; give it a moment before the test acts.
        sleep(Duration::from_millis(300));
        Self {
            child,
            seen,
            reader,
        }
    }

    fn topics(&self, id: &str) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .lines()
            .filter(|l| l.contains(id))
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("/tasks/")))
            .map(str::to_string)
            .collect()
    }

    /// Topics seen for container `id`, in order, once `last` arrived (or after 10 s).
    fn stop(self, id: &str, last: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.topics(id).iter().any(|t| t == last) && Instant::now() < deadline {
            sleep(Duration::from_millis(50));
        }
        let topics = self.topics(id);
        let Self {
            mut child, reader, ..
        } = self;
        // SAFETY: kill(2) on the ctr process we spawned.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
        let _ = reader.join();
        topics
    }
}

fn task_status(c: &Containerd, id: &str) -> String {
    let out = c.ctr(&["task", "ls"]);
    text(&out.stdout)
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("")
        .to_string()
}

fn wait_status(c: &Containerd, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while task_status(c, id) != want {
        assert!(Instant::now() < deadline, "{id} never became {want}");
        sleep(Duration::from_millis(100));
    }
}

fn remove(c: &Containerd, id: &str) {
    let _ = c.ctr(&["task", "kill", "-s", "SIGKILL", id]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c.ctr(&["task", "rm", id]).status.success() && Instant::now() < deadline {
        if task_status(c, id).is_empty() {
            break;
        }
        sleep(Duration::from_millis(100));
    }
    let _ = c.ctr(&["container", "rm", id]);
}

fn assert_all_clean(c: &Containerd, id: &str) {
    c.assert_clean();
    let left = test_cgroups(id);
    remove_test_cgroups(id);
    assert!(left.is_empty(), "cgroups left: {left:?}");
}

#[test]
fn run_prints_output_and_exit_code_with_events_in_order() {
    require_root!();
    let c = Containerd::start().expect("containerd");
    let id = unique("run");
    let events = Events::start(&c);
    let out = ctr(
        &c,
        &run_args(
            &c,
            &id,
            &["--rm"],
            &["sh", "-c", "echo hello; echo err >&2; exit 3"],
        ),
    );
    let topics = events.stop(&id, "/tasks/delete");
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}\n{}",
        text(&out.stderr),
        c.log()
    );
    assert_eq!(text(&out.stdout), "hello\n");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(
        topics,
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exit",
            "/tasks/delete"
        ],
        "event order"
    );
    assert_all_clean(&c, &id);
}

#[test]
fn exec_kill_pause_resume() {
    require_root!();
    let c = Containerd::start().expect("containerd");
    let id = unique("exec");
    let events = Events::start(&c);
    let out = ctr(&c, &run_args(&c, &id, &["-d"], &["sleep", "1000"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_status(&c, &id, "RUNNING");

    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        &id,
        "sh",
        "-c",
        "echo from-exec; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from-exec\n");

    // stdin reaches the exec; ctr closes it (CloseIO) at EOF.
    let mut child = c
        .ctr_cmd(&["task", "exec", "--exec-id", "e3", &id, "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ctr exec");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"through stdin\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "through stdin\n");
    sleep(Duration::from_millis(200));
    assert!(
        c.shim_zombies().is_empty(),
        "zombies: {:?}",
        c.shim_zombies()
    );

    let ps = c.ctr(&["task", "ps", &id]);
    assert!(ps.status.success(), "{}", text(&ps.stderr));
    assert!(
        text(&ps.stdout).lines().count() >= 2,
        "{}",
        text(&ps.stdout)
    );

    assert!(c.ctr(&["task", "pause", &id]).status.success());
    wait_status(&c, &id, "PAUSED");
    assert!(c.ctr(&["task", "resume", &id]).status.success());
    wait_status(&c, &id, "RUNNING");

    // An exec with a terminal (ctr needs one of its own).
    let exec_line = format!(
        "ctr -a {} -n {} task exec -t --exec-id e2 {id} sh -c 'tty; exit 6'",
        c.socket.display(),
        stockade_integration_tests::containerd::NAMESPACE,
    );
    let out = Command::new("script")
        .args(["-qefc", &exec_line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script");
    assert!(
        text(&out.stdout).contains("/dev/pts/"),
        "script's stdout {:?}, stderr {:?}, {:?}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        out.status,
        c.log()
    );
    assert_eq!(out.status.code(), Some(6));

    let m = c.ctr(&["task", "metrics", &id]);
    assert!(m.status.success(), "metrics: {}", text(&m.stderr));

    assert!(c
        .ctr(&["task", "kill", "-s", "SIGKILL", &id])
        .status
        .success());
    wait_status(&c, &id, "STOPPED");
    let rm = c.ctr(&["task", "rm", &id]);
    assert!(rm.status.success(), "{}", text(&rm.stderr));
    assert!(c.ctr(&["container", "rm", &id]).status.success());
    let topics = events.stop(&id, "/tasks/delete");
    for t in [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/paused",
        "/tasks/resumed",
        "/tasks/exit",
        "/tasks/delete",
    ] {
        assert!(topics.iter().any(|x| x == t), "missing {t} in {topics:?}");
    }
    assert_all_clean(&c, &id);
}

#[test]
fn memory_hog_is_oom_killed_with_event() {
    require_root!();
    let c = Containerd::start().expect("containerd");
    let id = unique("oom");
    let events = Events::start(&c);
    let out = ctr(
        &c,
        &run_args(
            &c,
            &id,
            &["--rm", "--memory-limit", "33554432"],
            &["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"],
        ),
    );
    let topics = events.stop(&id, "/tasks/delete");
    assert_eq!(out.status.code(), Some(137), "{}", text(&out.stderr));
    assert!(
        topics.iter().any(|t| t == "/tasks/oom"),
        "no OOM event: {topics:?}"
    );
    assert_all_clean(&c, &id);
}

#[test]
fn tty_run() {
    require_root!();
    let c = Containerd::start().expect("containerd");
    let id = unique("tty");
    let args = run_args(&c, &id, &["--rm", "-t"], &["sh", "-c", "tty; exit 4"]);
    let ctr_line = format!(
        "ctr -a {} -n {} {}",
        c.socket.display(),
        stockade_integration_tests::containerd::NAMESPACE,
        args.join(" ")
    );
    // ctr -t needs a terminal of its own.
    let out = Command::new("script")
        .args(["-qefc", &ctr_line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("/dev/pts/0"),
        "stdout: {stdout} stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert_all_clean(&c, &id);
}

#[test]
fn refused_container_shows_runtime_error() {
    require_root!();
    let c = Containerd::start().expect("containerd");
    let id = unique("refused");
    // runc refuses to join a namespace that does not exist; with stockade, a profile
    // violation takes this place.
    let out = ctr(
        &c,
        &run_args(
            &c,
            &id,
            &["--rm", "--with-ns", "network:/nonexistent-stockade-netns"],
            &["true"],
        ),
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    eprintln!("ctr stderr for the refused container: {err}");
    assert!(
        err.contains("nonexistent-stockade-netns"),
        "ctr stderr: {err}"
    );
    let _ = c.ctr(&["container", "rm", &id]);
    remove(&c, &id);
    assert_all_clean(&c, &id);
}

#[test]
fn dead_shim_is_cleaned_up_by_delete_action() {
    require_root!();
    let c = Containerd::start().expect("containerd");
    let id = unique("deadshim");
    let out = ctr(&c, &run_args(&c, &id, &["-d"], &["sleep", "1000"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_status(&c, &id, "RUNNING");
    let shims = c.shim_pids();
    assert_eq!(shims.len(), 1);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", shims[0])).unwrap();
    let socket = text(&cmdline)
        .split('\0')
        .find_map(|a| a.strip_prefix("unix://").map(str::to_string))
        .expect("shim socket");
    // The shim our containerd started, by PID: containerd then runs `shim delete`.
    // SAFETY: kill(2) on a process of this test's containerd.
    unsafe { libc::kill(shims[0] as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !task_status(&c, &id).is_empty() {
        assert!(
            Instant::now() < deadline,
            "task still listed: {}",
            task_status(&c, &id)
        );
        sleep(Duration::from_millis(100));
    }
    assert!(c.ctr(&["container", "rm", &id]).status.success());
    // containerd runs `shim delete` asynchronously; it removes the dead socket.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&socket).exists() {
        assert!(
            Instant::now() < deadline,
            "dead shim's socket left: {socket}"
        );
        sleep(Duration::from_millis(100));
    }
    assert_all_clean(&c, &id);
}

#[test]
fn harness_removes_what_a_failed_test_left() {
    require_root!();
    let c = Containerd::start().expect("containerd");
    let id = unique("abandoned");
    let out = ctr(&c, &run_args(&c, &id, &["-d"], &["sleep", "1000"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shims = c.shim_pids();
    assert_eq!(shims.len(), 1);
    drop(c); // as a panicking test would
    for pid in shims {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        });
        assert!(!alive, "shim {pid} survived the harness");
    }
    let left = test_cgroups(&id);
    remove_test_cgroups(&id);
    assert!(left.is_empty(), "cgroups left: {left:?}");
}

/// The profile annotation and an added capability: `restricted` refuses root, the
/// capability and the missing seccomp filter, among others.
/// No `--rm`: the container must outlive the failed task so its spec can be read.
const REFUSED_EXTRA: &[&str] = &[
    "--annotation",
    "org.stockade.profile=restricted",
    "--cap-add",
    "CAP_SYS_ADMIN",
];

/// `[rule] path` of every violation `stockade profile check --profile restricted`
/// finds in the spec containerd generated for container `id`.
fn expected_violations(c: &Containerd, id: &str) -> Vec<String> {
    let info = c.ctr(&["containers", "info", id]);
    assert!(info.status.success(), "{}", text(&info.stderr));
    let info: Value = serde_json::from_slice(&info.stdout).expect("container info JSON");
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("config.json");
    std::fs::write(&spec, serde_json::to_vec(&info["Spec"]).unwrap()).unwrap();
    let out = Command::new(runtime_binary())
        .args(["profile", "check", "--profile", "restricted", "--json"])
        .arg(&spec)
        .env("STOCKADE_CONFIG", c.node_config())
        .output()
        .expect("stockade profile check");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let record: Value = serde_json::from_slice(&out.stdout).expect("decision JSON");
    let v: Vec<String> = record["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| {
            format!(
                "[{}] {}",
                v["rule"].as_str().unwrap(),
                v["path"].as_str().unwrap()
            )
        })
        .collect();
    assert!(v.len() >= 3, "{v:?}");
    v
}

fn assert_refused_with_every_violation(c: &Containerd, id: &str, out: &Output) {
    assert!(!out.status.success(), "ran: {}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("container refused by profile \"restricted\""),
        "ctr stderr: {err}"
    );
    // The message is the short form (under 1 KiB, for Kubernetes events): each
    // violation is listed, or counted in its `… and N more` line.
    let expected = expected_violations(c, id);
    let missing: Vec<&String> = expected
        .iter()
        .filter(|v| !err.contains(v.as_str()))
        .collect();
    let more: usize = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("- … and ")?.strip_suffix(" more"))
        .map(|n| n.parse().expect("count"))
        .unwrap_or(0);
    assert_eq!(
        missing.len(),
        more,
        "{missing:?} missing from ctr stderr: {err}"
    );
    assert!(err.contains("full record: audit id "), "{err}");
}

#[test]
fn profile_violation_is_refused_with_every_rule_in_ctr_error() {
    require_root!();
    if skip_unless_stockade("profile refusals are Stockade's") {
        return;
    }
    let c = Containerd::start().expect("containerd");
    let id = unique("violation");
    let out = ctr(&c, &run_args(&c, &id, REFUSED_EXTRA, &["true"]));
    assert_refused_with_every_violation(&c, &id, &out);
    remove(&c, &id);
    assert_all_clean(&c, &id);
}

/// The probe's report printed by a container (last JSON line of stdout).
fn assert_confined(out: &Output) {
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = parse_report(&text(&out.stdout));
    assert_eq!(status_str(&r, "Seccomp"), "2", "{r}");
    assert_eq!(status_str(&r, "NoNewPrivs"), "1", "{r}");
    let uid_map = parse_id_map(r["uid_map"].as_str().expect("uid_map"));
    assert_eq!(uid_map.len(), 1, "{r}");
    let (inside, host, _) = uid_map[0];
    assert_eq!(inside, 0, "{r}");
    assert!(host >= 1_000_000, "container root is host uid {host}: {r}");
    assert_eq!(r["root"]["rdonly"], true, "{r}");
    let profile = stockade::profile::load_profile(
        &stockade_integration_tests::runtime::profiles_dir(),
        "default",
    )
    .expect("load the default profile");
    let allowed = cap_mask(&profile.capabilities.expect("caps").allowed);
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(
            status_hex(&r, set) & !allowed,
            0,
            "{set} beyond the allow-list: {r}"
        );
    }
    assert_eq!(status_hex(&r, "CapInh"), 0, "{r}");
    assert_eq!(status_hex(&r, "CapAmb"), 0, "{r}");
}

#[test]
fn probe_sees_default_profile_confinement_and_stdout_reopens() {
    require_root!();
    if skip_unless_stockade("the default profile's confinement is Stockade's") {
        return;
    }
    let c = Containerd::start().expect("containerd");
    let id = unique("probe");
    // Reopening /dev/stdout needs the pipe to belong to the container's root, which
    // only stockade knows (it chose the range).
    let out = ctr(
        &c,
        &run_args(
            &c,
            &id,
            &["--rm"],
            &[
                "sh",
                "-c",
                "echo reopened > /dev/stdout && echo err > /dev/stderr && \
                 stat -c 'owner %u:%g' /bin/busybox && probe",
            ],
        ),
    );
    assert!(
        text(&out.stdout).starts_with("reopened\n"),
        "{}",
        text(&out.stdout)
    );
    // containerd's overlay snapshot, rebuilt over idmapped layers: the image's
    // files (owned by host root) belong to the container's root, not the overflow id.
    assert!(
        text(&out.stdout).contains("owner 0:0\n"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(text(&out.stderr), "err\n");
    assert_confined(&out);
    assert_all_clean(&c, &id);

    // An exec gets its own pipes: reopening them works too.
    let id = unique("probe-exec");
    let out = ctr(&c, &run_args(&c, &id, &["-d"], &["sleep", "1000"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_status(&c, &id, "RUNNING");
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "p1",
        &id,
        "sh",
        "-c",
        "echo reopened > /dev/stdout && probe",
    ]);
    assert!(
        text(&out.stdout).starts_with("reopened\n"),
        "exec stdout {:?}, stderr {:?}, {:?}",
        text(&out.stdout),
        text(&out.stderr),
        out.status
    );
    let r = parse_report(&text(&out.stdout));
    assert_eq!(status_str(&r, "Seccomp"), "2", "{r}");
    assert_eq!(status_str(&r, "NoNewPrivs"), "1", "{r}");
    remove(&c, &id);
    assert_all_clean(&c, &id);
}

/// An exec'd process must run in the init's user namespace, with the profile's
/// capabilities. Fails today: libcontainer 0.7's tenant builder joins ipc, uts, net,
/// pid, mnt, cgroup and time of the init but never `user` (its NAMESPACE_TYPES), so
/// the exec runs as host root; and `exec --process` takes the capabilities of the
/// caller's process.json (containerd's defaults) without the profile's allow-list.
#[test]
fn exec_runs_in_the_containers_user_namespace() {
    require_root!();
    if skip_unless_stockade("the default profile's confinement is Stockade's") {
        return;
    }
    let c = Containerd::start().expect("containerd");
    let id = unique("exec-userns");
    let out = ctr(&c, &run_args(&c, &id, &["-d"], &["sleep", "1000"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_status(&c, &id, "RUNNING");
    let out = c.ctr(&["task", "exec", "--exec-id", "p1", &id, "probe"]);
    let result = std::panic::catch_unwind(|| assert_confined(&out));
    remove(&c, &id);
    assert_all_clean(&c, &id);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// Issue 2: containerd's stock Go runc shim drives stockade as its runc binary.
#[test]
fn runc_shim_with_stockade_binary() {
    require_root!();
    let c = Containerd::start().expect("containerd");
    let id = unique("runcshim");
    let out = ctr(
        &c,
        &runc_shim_run_args(
            &c,
            &id,
            &["--rm"],
            &[
                "sh",
                "-c",
                "echo hello; echo again > /dev/stdout; echo err >&2; exit 3",
            ],
        ),
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}\n{}",
        text(&out.stderr),
        c.log()
    );
    assert_eq!(text(&out.stdout), "hello\nagain\n");
    assert_eq!(text(&out.stderr), "err\n");
    assert_all_clean(&c, &id);
    if skip_unless_stockade("profile confinement and refusals are Stockade's") {
        return;
    }

    let id = unique("runcshim-probe");
    let out = ctr(&c, &runc_shim_run_args(&c, &id, &["--rm"], &["probe"]));
    assert_confined(&out);
    assert_all_clean(&c, &id);

    let id = unique("runcshim-refused");
    let out = ctr(&c, &runc_shim_run_args(&c, &id, REFUSED_EXTRA, &["true"]));
    assert_refused_with_every_violation(&c, &id, &out);
    remove(&c, &id);
    assert_all_clean(&c, &id);
}

/// Issue 7 item 8: a create that fails while the init prepares the rootfs (a volume
/// whose host directory is gone) reaches `ctr` with the mount's source and the errno,
/// each exactly once, through our shim and through containerd's runc shim.
#[test]
fn rootfs_failure_reaches_ctr_with_path_and_errno_once() {
    require_root!();
    let c = Containerd::start().expect("containerd");
    // Under the kubelet's pods directory, where the shipped profiles allow volumes.
    let missing = format!(
        "/var/lib/kubelet/pods/stockade-missing-{}/volumes/data",
        std::process::id()
    );
    assert!(!std::path::Path::new(&missing).exists());
    let mount = format!("type=bind,src={missing},dst=/data,options=rbind:rw");
    let extra = ["--rm", "--mount", mount.as_str()];
    for (shim, id) in [
        ("stockade", unique("rootfs-err")),
        ("runc", unique("rootfs-err-runc")),
    ] {
        let args = if shim == "stockade" {
            run_args(&c, &id, &extra, &["true"])
        } else {
            runc_shim_run_args(&c, &id, &extra, &["true"])
        };
        let out = ctr(&c, &args);
        assert!(!out.status.success(), "{shim}: ran: {}", text(&out.stdout));
        let err = text(&out.stderr);
        eprintln!("{shim}: ctr stderr: {err}");
        assert!(err.contains(&missing), "{shim}: source named: {err}");
        assert!(
            err.to_lowercase().contains("no such file or directory"),
            "{shim}: errno named: {err}"
        );
        if runtime_is_stockade() {
            assert_eq!(err.matches(&missing).count(), 1, "{shim}: once: {err}");
            assert_eq!(
                err.matches("No such file or directory").count(),
                1,
                "{shim}: once: {err}"
            );
            assert!(err.contains("/data"), "{shim}: destination named: {err}");
        }
        let _ = c.ctr(&["container", "rm", &id]);
        remove(&c, &id);
        assert_all_clean(&c, &id);
    }
}

/// Issue 7 item 9: kill of an exited task answers NotFound, as from containerd's
/// runc shim over runc: through our shim, and through the runc shim driving
/// stockade (whose `kill` of a stopped container must say "container not running").
#[test]
fn kill_of_exited_task_is_not_found() {
    require_root!();
    let c = Containerd::start().expect("containerd");
    for (shim, id) in [
        ("stockade", unique("killexited")),
        ("runc", unique("killexited-runc")),
    ] {
        let args = if shim == "stockade" {
            run_args(&c, &id, &["-d"], &["true"])
        } else {
            runc_shim_run_args(&c, &id, &["-d"], &["true"])
        };
        let out = ctr(&c, &args);
        assert!(out.status.success(), "{shim}: {}", text(&out.stderr));
        wait_status(&c, &id, "STOPPED");
        let out = c.ctr(&["task", "kill", "-s", "SIGKILL", &id]);
        assert!(
            !out.status.success(),
            "{shim}: kill of an exited task succeeded"
        );
        let err = text(&out.stderr);
        assert!(
            err.contains("not found"),
            "{shim}: NotFound expected: {err}"
        );
        assert!(
            c.ctr(&["task", "rm", &id]).status.success(),
            "{shim}: task rm after the refused kill"
        );
        let _ = c.ctr(&["container", "rm", &id]);
        assert_all_clean(&c, &id);
    }
}

/// Host pids in the cgroup `/<parent>/<id>` (v1 pids hierarchy, or v2).
fn cgroup_procs(id: &str) -> Vec<String> {
    let rel = format!("{}/{id}", cgroup_parent().trim_start_matches('/'));
    for base in ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"] {
        let p = std::path::Path::new(base).join(&rel).join("cgroup.procs");
        if let Ok(text) = std::fs::read_to_string(&p) {
            return text.lines().map(str::to_string).collect();
        }
    }
    Vec::new()
}

/// Issue 7 item 9: when the init of a container that shares a pid namespace (here
/// the host's, joined by path) exits, the shim kills what it left in the container's
/// cgroup before reporting the exit (runc's shim does the same), so no child of an
/// exited container keeps running or holds its output open. Runs under the
/// `unconfined` profile (a handler options file naming it), the only shipped one
/// that lets a container share the host's pid namespace.
#[test]
fn exited_init_in_a_shared_pid_namespace_leaves_nothing_running() {
    require_root!();
    let c = Containerd::start().expect("containerd");
    let options = c.dir().join("stockade-unconfined.toml");
    let base = std::fs::read_to_string(c.runtime_config()).unwrap();
    std::fs::write(&options, format!("{base}\nprofile = \"unconfined\"\n")).unwrap();
    let id = unique("killall");
    let mut args: Vec<String> = vec![
        "run".into(),
        "-d".into(),
        "--runtime".into(),
        RUNTIME.into(),
        "--runtime-config-path".into(),
        options.display().to_string(),
        "--cgroup".into(),
        format!("{}/{id}", cgroup_parent()),
        "--with-ns".into(),
        // This test's own pid namespace: the runtime's, i.e. the host's here.
        format!("pid:/proc/{}/ns/pid", std::process::id()),
        IMAGE.into(),
        id.clone(),
    ];
    args.extend(
        ["sh", "-c", "sleep 1000 & echo started; exit 3"]
            .iter()
            .map(|s| s.to_string()),
    );
    let out = ctr(&c, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_status(&c, &id, "STOPPED");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cgroup_procs(&id).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the init exited, but its child still runs: {:?}",
            cgroup_procs(&id)
        );
        sleep(Duration::from_millis(50));
    }
    remove(&c, &id);
    assert_all_clean(&c, &id);
}

/// `systemd_cgroup = true` in the shim's options (runc's `SystemdCgroup`): the shim
/// passes `--systemd-cgroup` and the task runs in the transient scope of a kubelet
/// path, with its memory limit, and delete removes the scope (the VM lane's systemd
/// boot). Where systemd cannot place it (no systemd as PID 1, or no cgroup v2), the
/// create fails with the runtime's reason and nothing is left.
#[test]
fn systemd_cgroup_option_runs_the_task_in_its_scope() {
    require_root!();
    if skip_unless_stockade("the refusal text is Stockade's") {
        return;
    }
    let c = Containerd::start().expect("containerd");
    let id = unique("sdcg");
    let options = c.dir().join("stockade-systemd.toml");
    let base = std::fs::read_to_string(c.runtime_config()).expect("runtime options");
    std::fs::write(&options, format!("{base}\nsystemd_cgroup = true\n")).unwrap();
    let pod = format!("{}", std::process::id());
    let cgroups_path = format!("kubepods-besteffort-pod{pod}.slice:cri-containerd:{id}");
    let scope = std::path::PathBuf::from(format!(
        "/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{pod}.slice/cri-containerd-{id}.scope"
    ));
    let out = c.ctr(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        "--runtime-config-path",
        options.to_str().unwrap(),
        "--cgroup",
        &cgroups_path,
        "--memory-limit",
        &(40u64 << 20).to_string(),
        IMAGE,
        &id,
        "sleep",
        "1000",
    ]);
    let systemd_v2 = std::path::Path::new("/run/systemd/system").is_dir()
        && std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !systemd_v2 {
        assert!(!out.status.success(), "ran without systemd: {out:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("--systemd-cgroup") && err.contains("systemd"),
            "names the driver and what is missing: {err}"
        );
        let _ = c.ctr(&["container", "rm", &id]);
        assert!(!scope.exists());
        c.assert_clean();
        return;
    }
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), c.log());
    wait_status(&c, &id, "RUNNING");
    let procs = std::fs::read_to_string(scope.join("cgroup.procs"))
        .unwrap_or_else(|e| panic!("scope {}: {e}", scope.display()));
    let pids = c.ctr(&["task", "ls"]);
    let task_pid = text(&pids.stdout)
        .lines()
        .find(|l| l.starts_with(&id))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string();
    assert!(
        procs.lines().any(|p| p == task_pid),
        "task pid {task_pid} in the scope: {procs}"
    );
    let max = std::fs::read_to_string(scope.join("memory.max")).unwrap();
    assert_eq!(max.trim(), (40u64 << 20).to_string());
    // The shim's stats find the systemd-placed cgroup.
    let metrics = c.ctr(&["task", "metrics", &id]);
    assert!(metrics.status.success(), "{}", text(&metrics.stderr));
    assert!(
        text(&metrics.stdout).contains("memory"),
        "{}",
        text(&metrics.stdout)
    );
    remove(&c, &id);
    let deadline = Instant::now() + Duration::from_secs(20);
    while scope.exists() && Instant::now() < deadline {
        sleep(Duration::from_millis(100));
    }
    assert!(!scope.exists(), "delete left {}", scope.display());
    c.assert_clean();
}
