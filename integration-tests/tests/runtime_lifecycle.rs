//! Lifecycle verbs as containerd's runc shim uses them: create, start, state, kill,
//! delete, ps, pause, resume, run, exec.

use stockade_integration_tests::{assert_nothing_left_behind, runtime, BundleBuilder};

#[test]
fn create_start_state_kill_delete() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .annotation("org.stockade.test", "lifecycle")
        .build();
    let c = rt.create(&bundle).expect("create");
    let pid = c.pid.expect("pid file");

    let state = c.state();
    assert_eq!(state["status"], "created", "state after create: {state}");
    assert_eq!(state["id"], bundle.id.as_str());
    assert_eq!(
        state["pid"].as_i64(),
        Some(i64::from(pid)),
        "state: {state}"
    );
    assert!(
        state["ociVersion"].is_string(),
        "state has ociVersion: {state}"
    );
    let state_bundle = state["bundle"].as_str().expect("state.bundle");
    assert_eq!(
        std::fs::canonicalize(state_bundle).unwrap(),
        std::fs::canonicalize(bundle.path()).unwrap()
    );
    assert_eq!(
        state["annotations"]["org.stockade.test"], "lifecycle",
        "annotations are reported: {state}"
    );

    c.start();
    c.wait_status("running");
    assert_eq!(c.state()["pid"].as_i64(), Some(i64::from(pid)));

    let out = c.kill("KILL");
    assert!(out.success(), "kill: {out:?}");
    let code = c.wait();
    eprintln!("init exit code via subreaper: {code:?}");
    if let Some(code) = code {
        assert_eq!(code, 128 + libc::SIGKILL, "init died of SIGKILL");
    }
    c.wait_status("stopped");

    let (id, cgroup, rootfs) = (c.id.clone(), c.cgroup.clone(), c.rootfs.clone());
    let out = c.delete();
    assert!(out.success(), "delete: {out:?}\nlog: {}", rt.log_text());
    assert_nothing_left_behind(&rt, &id, &cgroup, &rootfs);
}

#[test]
fn container_output_and_exit_code_reach_the_caller() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .shell("echo out-line; echo err-line >&2; exit 7")
        .build();
    let c = rt.create(&bundle).expect("create");
    c.start();
    if let Some(code) = c.wait() {
        assert_eq!(code, 7);
    }
    c.wait_status("stopped");
    assert_eq!(c.stdout(), "out-line\n");
    assert!(c.stderr().contains("err-line"), "stderr: {:?}", c.stderr());
    let (id, cgroup, rootfs) = (c.id.clone(), c.cgroup.clone(), c.rootfs.clone());
    assert!(c.delete().success());
    assert_nothing_left_behind(&rt, &id, &cgroup, &rootfs);
}

#[test]
fn run_foreground_returns_exit_code_and_cleans_up() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .shell("echo hello from $(hostname); exit 3")
        .build();
    let out = rt.run(&bundle);
    assert_eq!(out.code, Some(3), "run: {out:?}\nlog: {}", rt.log_text());
    assert_eq!(out.stdout, "hello from stockade-test\n");
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

#[test]
fn run_probe_reports_json() {
    let rt = runtime!();
    let bundle = BundleBuilder::new().build();
    let report = rt.run_report(&bundle);
    assert_eq!(report["hostname"], "stockade-test");
    assert_eq!(report["cwd"], "/");
    assert_eq!(
        report["pid"], 1,
        "probe is pid 1 in a new pid namespace: {report}"
    );
}

#[test]
fn ps_lists_init_and_exec_runs_inside() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let pid = i64::from(c.pid.unwrap());
    let pids = c.ps();
    assert!(pids.contains(&pid), "ps {pids:?} lists init {pid}");

    let out = c.exec(&["/bin/sh", "-c", "echo exec-ok; hostname; exit 5"]);
    assert_eq!(out.code, Some(5), "exec: {out:?}\nlog: {}", rt.log_text());
    assert_eq!(out.stdout, "exec-ok\nstockade-test\n");

    // The exec'd process sees the init's pid namespace: the init is pid 1 there.
    let out = c.exec(&["/bin/cat", "/proc/1/cmdline"]);
    assert!(out.success(), "exec cat: {out:?}");
    assert!(out.stdout.starts_with("/usr/bin/probe"), "{:?}", out.stdout);

    assert!(c.kill("KILL").success());
    c.wait();
    let (id, cgroup, rootfs) = (c.id.clone(), c.cgroup.clone(), c.rootfs.clone());
    assert!(c.delete().success());
    assert_nothing_left_behind(&rt, &id, &cgroup, &rootfs);
}

#[test]
fn pause_and_resume() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");

    let out = c.pause();
    assert!(out.success(), "pause: {out:?}\nlog: {}", rt.log_text());
    assert_eq!(c.status(), "paused");

    let out = c.resume();
    assert!(out.success(), "resume: {out:?}\nlog: {}", rt.log_text());
    assert_eq!(c.status(), "running");

    let (id, cgroup, rootfs) = (c.id.clone(), c.cgroup.clone(), c.rootfs.clone());
    let out = c.delete_force();
    assert!(
        out.success(),
        "delete --force: {out:?}\nlog: {}",
        rt.log_text()
    );
    assert_nothing_left_behind(&rt, &id, &cgroup, &rootfs);
}

#[test]
fn delete_force_removes_a_running_container() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let (id, cgroup, rootfs) = (c.id.clone(), c.cgroup.clone(), c.rootfs.clone());
    let out = c.delete_force();
    assert!(
        out.success(),
        "delete --force: {out:?}\nlog: {}",
        rt.log_text()
    );
    assert_nothing_left_behind(&rt, &id, &cgroup, &rootfs);
}

#[test]
fn delete_of_a_created_container_cleans_up() {
    let rt = runtime!();
    let bundle = BundleBuilder::new().build();
    let c = rt.create(&bundle).expect("create");
    assert_eq!(c.status(), "created");
    let (id, cgroup, rootfs) = (c.id.clone(), c.cgroup.clone(), c.rootfs.clone());
    // A created (never started) container is deleted with --force, as the shim does.
    let out = c.delete_force();
    assert!(
        out.success(),
        "delete --force: {out:?}\nlog: {}",
        rt.log_text()
    );
    assert_nothing_left_behind(&rt, &id, &cgroup, &rootfs);
}

#[test]
fn kill_sigterm_reaches_init() {
    let rt = runtime!();
    // busybox sh as pid 1 ignores SIGTERM unless trapped; the trap proves delivery.
    let bundle = BundleBuilder::new()
        .shell("trap 'echo got-term; exit 0' TERM; while true; do sleep 0.05; done")
        .build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    // Give the shell time to install its trap.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(c.kill("TERM").success());
    if let Some(code) = c.wait() {
        assert_eq!(code, 0);
    }
    c.wait_status("stopped");
    assert_eq!(c.stdout(), "got-term\n");
}

/// A foreground `run` passes the signals it gets on to the container (as runc
/// does): SIGTERM to the runtime reaches the init's trap, the container's exit
/// status comes back, and nothing is left behind.
#[test]
fn foreground_run_forwards_sigterm_to_the_container() {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;
    use std::time::Duration;
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .shell("trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done")
        .build();
    let mut child = rt
        .command(&[
            "run",
            "--bundle",
            bundle.path().to_str().unwrap(),
            bundle.id.as_str(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn run");
    // Lines arrive through a thread so a regression fails the test instead of
    // hanging it.
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| {
        rx.recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no {what} line from the container"))
    };
    let ready = next("ready");
    // SAFETY: kill(2) reads no memory; the pid is our own unreaped child.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let got = rx.recv_timeout(Duration::from_secs(30));
    let status = if got.is_ok() {
        child.wait().ok()
    } else {
        // The runtime died without forwarding: end it and its container.
        let _ = child.kill();
        let _ = child.wait();
        stockade_integration_tests::runtime::cleanup_container(
            &rt,
            &bundle.id,
            &bundle.cgroup_relative(),
            None,
        );
        None
    };
    assert_eq!(ready, "ready");
    assert_eq!(rc, 0);
    assert_eq!(
        got.ok().as_deref(),
        Some("got-term"),
        "SIGTERM reached the container"
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(7),
        "the container's exit status comes back"
    );
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}
