//! Seccomp user notification (issue 14, runc parity): `SCMP_ACT_NOTIFY` rules with
//! `linux.seccomp.listenerPath`. A real agent (`stockade-seccomp-agent`) listens on a
//! unix socket, receives the listener fd and the container process state from the
//! runtime, and answers `mkdirat`: EXDEV, a success it never performs, or "continue"
//! (the kernel runs the call). The same bundles run through Stockade (`unconfined`)
//! and runc (`/usr/sbin/runc` or `$STOCKADE_TEST_RUNC`) in one test: the probe inside
//! must see the agent's answers, and the agent must receive the same state fields
//! from both. Shipped profiles refuse an agent; an unreachable one fails `create`
//! naming `listenerPath` and leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use stockade_integration_tests::{
    assert_nothing_left_behind, runtime, skip_on_reference, Bundle, BundleBuilder, Runtime,
};

const METADATA: &str = "stockade-test-agent-metadata";

/// The agent binary, running for one test; killed (it is our child) on drop.
struct Agent {
    child: Child,
    dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().expect("agent dir");
        let socket = dir.path().join("agent.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_stockade-seccomp-agent"))
            .arg(&socket)
            .arg(dir.path())
            .spawn()
            .expect("spawn the seccomp agent");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "the agent never bound {socket:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Agent { child, dir }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }

    /// The messages received so far, in order (waits up to 10 s for `n` of them).
    fn messages(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got: Vec<Value> = (0..)
                .map(|i| self.dir.path().join(format!("state-{i}.json")))
                .take_while(|p| p.exists())
                .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
                .collect();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn notify_filter(socket: &Path) -> Value {
    #[cfg(target_arch = "x86_64")]
    let native = "SCMP_ARCH_X86_64";
    #[cfg(target_arch = "aarch64")]
    let native = "SCMP_ARCH_AARCH64";
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": [native],
        "listenerPath": socket,
        "listenerMetadata": METADATA,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })
}

fn mkdir_bundle(socket: &Path, nnp: bool, mode: &str) -> Bundle {
    BundleBuilder::new()
        .args(&[
            "/usr/bin/probe",
            "syscall",
            "mkdir",
            "/tmp/agent-made",
            mode,
        ])
        .no_new_privileges(nnp)
        .seccomp(notify_filter(socket))
        .build()
}

/// The keys of an object, sorted (what the agent was given, not the values).
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

/// The fields runtime-spec defines for the message, checked for one runtime.
fn assert_process_state(who: &str, got: &Value, id: &str, status: &str, bundle: &Path) {
    let m = &got["message"];
    assert_eq!(got["fds_received"], 1, "{who}: one fd: {got}");
    assert!(
        m["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "{who}: ociVersion: {m}"
    );
    assert_eq!(m["fds"], json!(["seccompFd"]), "{who}: {m}");
    assert_eq!(m["metadata"], METADATA, "{who}: {m}");
    assert!(m["pid"].as_i64().is_some_and(|p| p > 0), "{who}: pid: {m}");
    let s = &m["state"];
    assert!(
        s["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "{who}: state.ociVersion: {m}"
    );
    assert_eq!(s["id"], id, "{who}: {m}");
    assert_eq!(s["status"], status, "{who}: {m}");
    assert_eq!(s["bundle"], bundle.to_str().unwrap(), "{who}: {m}");
    assert!(
        s["pid"].as_i64().is_some_and(|p| p > 0),
        "{who}: state.pid: {m}"
    );
}

/// Runs the three mkdir answers through `rt` with a fresh agent; the probe reports
/// and the agent's messages.
fn mkdir_answers(rt: &Runtime, nnp: bool) -> (Vec<Value>, Vec<Value>) {
    let agent = Agent::start();
    let mut reports = Vec::new();
    let mut bundles = Vec::new();
    for mode in ["700", "711", "755"] {
        let bundle = mkdir_bundle(&agent.socket(), nnp, mode);
        let out = rt.run(&bundle);
        assert!(
            out.success(),
            "run (nnp {nnp}, mode {mode}): code {:?}\nstderr: {}\nlog: {}",
            out.code,
            out.stderr,
            rt.log_text()
        );
        reports.push(out.report());
        assert_nothing_left_behind(rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
        bundles.push(bundle);
    }
    let messages = agent.messages(3);
    assert_eq!(messages.len(), 3, "one message per container: {messages:?}");
    for (m, b) in messages.iter().zip(&bundles) {
        assert_process_state(
            rt.binary().to_str().unwrap(),
            m,
            &b.id,
            "creating",
            b.path(),
        );
        // At create the process is the init.
        assert_eq!(m["message"]["pid"], m["message"]["state"]["pid"], "{m}");
    }
    (reports, messages)
}

#[test]
fn the_agent_answers_notified_syscalls_as_under_runc() {
    if skip_on_reference("compares Stockade with runc itself") {
        return;
    }
    let stockade = runtime!();
    let runc = Runtime::runc();
    // With no_new_privs the filter is loaded before the init reports ready (runc's
    // load point); without it, before the capability drop.
    for nnp in [true, false] {
        let (s_reports, s_messages) = mkdir_answers(&stockade, nnp);
        // Admission says the kernel does not decide these syscalls.
        let log = stockade.log_text();
        assert!(
            log.contains(
                "seccomp.user_notification: not enforced by the kernel: the seccomp agent at"
            ) && log.contains("decides mkdir, mkdirat"),
            "no admission note on the agent: {log}"
        );
        let (r_reports, r_messages) = mkdir_answers(&runc, nnp);
        let want = [
            json!({"errno": libc::EXDEV, "exists": false}),
            json!({"errno": 0, "ret": 0, "exists": false}),
            json!({"errno": 0, "ret": 0, "exists": true}),
        ];
        for ((s, r), w) in s_reports.iter().zip(&r_reports).zip(&want) {
            for (k, v) in w.as_object().unwrap() {
                assert_eq!(&r[k], v, "runc (nnp {nnp}) {k}: {r}");
            }
            assert_eq!(s, r, "nnp {nnp}: stockade {s} vs runc {r}");
        }
        for (s, r) in s_messages.iter().zip(&r_messages) {
            let (s, r) = (&s["message"], &r["message"]);
            assert_eq!(keys(s), keys(r), "message fields: stockade {s} vs runc {r}");
            assert_eq!(
                keys(&s["state"]),
                keys(&r["state"]),
                "state fields: stockade {s} vs runc {r}"
            );
        }
    }
}

/// An exec'd process loads the container's filter anew, so it brings its own
/// listener: runc sends it with status `running`, the exec'd process as `pid` and
/// the init as `state.pid`.
#[test]
fn an_exec_hands_its_own_listener_to_the_agent_as_under_runc() {
    if skip_on_reference("compares Stockade with runc itself") {
        return;
    }
    let stockade = runtime!();
    let runc = Runtime::runc();
    let mut per_runtime = Vec::new();
    for rt in [&stockade, &runc] {
        let agent = Agent::start();
        let bundle = BundleBuilder::new()
            .args(&["/usr/bin/probe", "sleep", "60"])
            .seccomp(notify_filter(&agent.socket()))
            .build();
        let c = rt.create_started(&bundle);
        let out = c.exec(&["/usr/bin/probe", "syscall", "mkdir", "/tmp/e", "700"]);
        assert!(out.success(), "exec: {:?} {}", out.code, out.stderr);
        let report = stockade_integration_tests::runtime::parse_report(&out.stdout);
        assert_eq!(report["errno"], libc::EXDEV, "{report}");
        assert_eq!(report["exists"], false, "{report}");
        let messages = agent.messages(2);
        assert_eq!(messages.len(), 2, "create and exec: {messages:?}");
        let who = rt.binary().to_str().unwrap().to_owned();
        assert_process_state(&who, &messages[0], &bundle.id, "creating", bundle.path());
        assert_process_state(&who, &messages[1], &bundle.id, "running", bundle.path());
        let (init, exec) = (&messages[0]["message"], &messages[1]["message"]);
        assert_eq!(
            exec["state"]["pid"], init["pid"],
            "state.pid is the init: {exec}"
        );
        assert_ne!(
            exec["pid"], init["pid"],
            "pid is the exec'd process: {exec}"
        );
        c.delete_force();
        assert_nothing_left_behind(rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
        per_runtime.push(messages);
    }
    let (s, r) = (&per_runtime[0][1]["message"], &per_runtime[1][1]["message"]);
    assert_eq!(keys(s), keys(r), "exec message: stockade {s} vs runc {r}");
    assert_eq!(
        keys(&s["state"]),
        keys(&r["state"]),
        "stockade {s} vs runc {r}"
    );
}

/// `default`, `baseline` and `restricted` forbid a seccomp agent
/// (`seccomp.user_notification = "forbid"`): refused at admission, naming the field
/// and the rule, nothing left behind.
#[test]
fn shipped_profiles_refuse_a_seccomp_agent() {
    if skip_on_reference("Stockade's profiles") {
        return;
    }
    let socket = Path::new("/run/stockade-test-agent-never-used.sock");
    for profile in ["default", "baseline", "restricted"] {
        let rt = runtime!(profile = profile);
        let bundle = mkdir_bundle(socket, true, "755");
        let failed = match rt.create(&bundle) {
            Ok(_) => panic!("{profile} ran a container with a seccomp agent"),
            Err(failed) => failed,
        };
        let text = format!("{}\n{}", failed.out.stderr, rt.log_text());
        assert_eq!(failed.out.code, Some(1), "{profile}: {text}");
        for needle in ["linux.seccomp.listenerPath", "seccomp.user_notification"] {
            assert!(text.contains(needle), "{profile}: no {needle:?} in {text}");
        }
        assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
        drop(failed);
    }
}

/// No agent listens at `listenerPath`: `create` fails (as under runc) with a message
/// naming the field and the path, and leaves no state, cgroup or mount behind.
#[test]
fn a_missing_agent_fails_create_naming_listener_path() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nobody-listens.sock");
    let stockade = runtime!();
    let runc = Runtime::runc();
    // On a reference run `stockade` is the reference runtime: its words are its own.
    let reference = skip_on_reference("compares with runc, checks Stockade's message");
    let runtimes: Vec<&Runtime> = if reference {
        vec![&stockade]
    } else {
        vec![&stockade, &runc]
    };
    for rt in runtimes {
        let bundle = mkdir_bundle(&socket, true, "755");
        let failed = match rt.create(&bundle) {
            Ok(_) => panic!("{:?} created a container without its agent", rt.binary()),
            Err(failed) => failed,
        };
        assert_ne!(failed.out.code, Some(0));
        if !reference && rt.binary() == stockade.binary() {
            let text = format!("{}\n{}", failed.out.stderr, rt.log_text());
            assert_eq!(failed.out.code, Some(1), "{text}");
            assert!(
                text.contains("linux.seccomp.listenerPath")
                    && text.contains(socket.to_str().unwrap()),
                "the error names neither the field nor the path: {text}"
            );
        }
        assert_nothing_left_behind(rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
        drop(failed);
    }
}
