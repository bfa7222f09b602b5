//! The rest of the runc CLI as containerd's shim and people at a shell use it:
//! terminals through `--console-socket`, `update`, `events --stats`, `features`,
//! `list`, `spec`, `exec --process`, the JSON error log (a rootfs failure named
//! once, with its errno), `kill --all`, `kill` of a stopped container, `delete`
//! without `--force`, and `state` after the init exits.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use stockade_integration_tests::console::{read_until_closed, ConsoleSocket};
use stockade_integration_tests::{
    assert_nothing_left_behind, runtime, runtime::parse_report, skip_on_reference, BundleBuilder,
    Container,
};

fn sleeper() -> BundleBuilder {
    BundleBuilder::new().args(&["/usr/bin/probe", "sleep", "600"])
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not one JSON document ({e}): {text}"))
}

fn delete_and_check<'a>(c: Container<'a>) {
    let rt: &'a stockade_integration_tests::Runtime = c.runtime();
    let (id, cgroup, rootfs) = (c.id.clone(), c.cgroup.clone(), c.rootfs.clone());
    let out = c.delete_force();
    assert!(out.success(), "delete --force: {out:?}");
    assert_nothing_left_behind(rt, &id, &cgroup, &rootfs);
}

/// `process.terminal: true`: the runtime sends the pty master over the console
/// socket during `create`; the workload's stdio is the slave.
#[test]
fn terminal_through_console_socket() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .terminal(true)
        .shell("tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty; exit 0")
        .build();
    let socket = ConsoleSocket::listen();
    let c = rt
        .create_with_args(
            &bundle,
            &bundle.id,
            &["--console-socket".as_ref(), socket.path().as_os_str()],
        )
        .unwrap_or_else(|f| panic!("create with a terminal: {f:?}\nlog: {}", rt.log_text()));
    let master = socket.master().expect("pty master over SCM_RIGHTS");
    c.start();
    let output = read_until_closed(&master, Duration::from_secs(10));
    assert!(
        output.contains("/dev/pts/"),
        "tty names a pts device: {output:?}"
    );
    assert!(output.contains("stdio-is-a-tty"), "{output:?}");
    if let Some(code) = c.wait() {
        assert_eq!(code, 0);
    }
    c.wait_status("stopped");
    delete_and_check(c);
}

/// `update --resources -` changes the limits, visible from inside the container.
#[test]
fn update_resources_from_stdin_changes_the_limits() {
    let rt = runtime!();
    let bundle = sleeper().memory_limit(64 << 20).pids_limit(32).build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let before = c.exec(&["/usr/bin/probe"]).expect_ok(&rt).report();
    assert_eq!(before["cgroup"]["pids_max"]["value"], "32", "{before}");

    let resources = json!({"memory": {"limit": 96u64 << 20}, "pids": {"limit": 48}});
    let out = rt.exec_cmd_stdin(
        &["update", "--resources", "-", &c.id],
        resources.to_string().as_bytes(),
    );
    assert!(out.success(), "update: {out:?}\nlog: {}", rt.log_text());

    let after = c.exec(&["/usr/bin/probe"]).expect_ok(&rt).report();
    assert_eq!(
        after["cgroup"]["memory_limit"]["value"],
        (96u64 << 20).to_string(),
        "{after}"
    );
    assert_eq!(after["cgroup"]["pids_max"]["value"], "48", "{after}");
    delete_and_check(c);
}

/// `events --stats ID` prints one stats event and exits (runc's shape:
/// `{"type":"stats","id":ID,"data":{...}}`), it does not stream.
#[test]
fn events_stats_prints_once_and_exits() {
    let rt = runtime!();
    let bundle = sleeper().pids_limit(32).build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let out = rt.exec_cmd_timeout(&["events", "--stats", &c.id], Duration::from_secs(10));
    assert!(
        out.success(),
        "events --stats: {out:?}\nlog: {}",
        rt.log_text()
    );
    let event = json_of(out.stdout.trim());
    assert_eq!(event["type"], "stats", "runc's event envelope: {event}");
    assert_eq!(event["id"], c.id.as_str(), "{event}");
    assert!(event["data"].is_object(), "{event}");
    assert!(
        event["data"]["pids"]["current"].as_u64().unwrap_or(0) >= 1,
        "the init is counted: {event}"
    );
    delete_and_check(c);
}

/// `features`: seccomp actions include SCMP_ACT_ERRNO; Stockade also reports the
/// Landlock ABI it will use, which must be the kernel's (the probe asks the kernel
/// directly, on the host).
#[test]
fn features_report_seccomp_actions_and_the_kernels_landlock_abi() {
    let rt = runtime!();
    let out = rt.exec_cmd(&["features"]).expect_ok(&rt);
    let features = json_of(&out.stdout);
    let actions = features["linux"]["seccomp"]["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("no linux.seccomp.actions: {features}"));
    assert!(actions.iter().any(|a| a == "SCMP_ACT_ERRNO"), "{actions:?}");
    assert_eq!(features["linux"]["seccomp"]["enabled"], true);
    if skip_on_reference("org.stockade.landlock.abi is Stockade's annotation") {
        return;
    }
    let probe = std::process::Command::new(stockade_integration_tests::rootfs::probe_binary())
        .output()
        .expect("run the probe on the host");
    let host = parse_report(&String::from_utf8_lossy(&probe.stdout));
    let kernel_abi = host["landlock_abi"]["ret"].as_i64().unwrap().max(0);
    assert_eq!(
        features["annotations"]["org.stockade.landlock.abi"],
        kernel_abi.to_string(),
        "features: {features}\nhost probe: {host}"
    );
}

/// `list` (table) and `list --format json` show a created container.
#[test]
fn list_shows_a_created_container() {
    let rt = runtime!();
    let bundle = sleeper().build();
    let c = rt.create(&bundle).expect("create");
    let pid = c.pid.unwrap();

    let table = rt.exec_cmd(&["list"]).expect_ok(&rt).stdout;
    let row = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(c.id.as_str()))
        .unwrap_or_else(|| panic!("list shows {}: {table}", c.id));
    assert!(row.split_whitespace().any(|f| f == "created"), "{row}");
    assert!(
        row.split_whitespace().any(|f| f == pid.to_string()),
        "{row}"
    );

    let list = json_of(
        &rt.exec_cmd(&["list", "--format", "json"])
            .expect_ok(&rt)
            .stdout,
    );
    let entry = list
        .as_array()
        .unwrap_or_else(|| panic!("list --format json is an array: {list}"))
        .iter()
        .find(|e| e["id"] == c.id.as_str())
        .unwrap_or_else(|| panic!("{} in {list}", c.id));
    assert_eq!(entry["status"], "created", "{entry}");
    assert_eq!(entry["pid"], pid, "{entry}");

    // Stockade adds the profile that admitted the container (the runtime tests' node
    // default is `unconfined`): last column of the table, `profile` in JSON and state.
    if !stockade_integration_tests::runtime::is_reference() {
        let version = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/unconfined.toml"),
        )
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("profile version");
        let want = format!("unconfined v{version}");
        // runc's table: columns padded with spaces (tabwriter), so the profile is
        // what follows the row's last run of two or more spaces.
        assert!(
            table.lines().next().unwrap().ends_with("  PROFILE"),
            "{table}"
        );
        assert_eq!(
            row.trim_end().rsplit("  ").next(),
            Some(want.as_str()),
            "{row}"
        );
        assert_eq!(entry["profile"], want.as_str(), "{entry}");
        let state = json_of(&rt.exec_cmd(&["state", &c.id]).expect_ok(&rt).stdout);
        assert_eq!(state["profile"], want.as_str(), "{state}");
    }
    delete_and_check(c);
}

/// `spec` writes a config.json that runs against the test rootfs once root.path,
/// a cgroupsPath and the command are set; the container gets no_new_privs and a
/// read-only root from the generated spec itself.
#[test]
fn spec_writes_a_runnable_hardened_config() {
    let rt = runtime!();
    // A bundle with our rootfs; its config.json is replaced by `spec`'s.
    let bundle = BundleBuilder::new().build();
    let config = bundle.path().join("config.json");
    std::fs::remove_file(&config).unwrap();
    let dir = bundle.path().to_str().unwrap();
    rt.exec_cmd(&["spec", "--bundle", dir]).expect_ok(&rt);
    let mut spec = json_of(&std::fs::read_to_string(&config).expect("spec wrote config.json"));
    assert_eq!(spec["root"]["readonly"], true, "{spec}");
    assert_eq!(spec["process"]["noNewPrivileges"], true, "{spec}");

    spec["root"]["path"] = json!("rootfs");
    spec["linux"]["cgroupsPath"] = json!(format!("/{}", bundle.cgroup_relative()));
    spec["process"]["args"] = json!(["/usr/bin/probe"]);
    // runc's spec asks for a terminal; the harness has no console here.
    spec["process"]["terminal"] = json!(false);
    std::fs::write(&config, serde_json::to_string_pretty(&spec).unwrap()).unwrap();

    let report = rt.run_report(&bundle);
    assert_eq!(report["status"]["NoNewPrivs"], "1", "{report}");
    assert_eq!(report["root"]["rdonly"], true, "{report}");
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

/// `exec --process FILE` (containerd's way): args, env, cwd and user come from the
/// file; output and exit code pass through; seccomp and capabilities are the
/// init's.
#[test]
fn exec_process_json_passes_through_and_keeps_confinement() {
    let rt = runtime!();
    let caps = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let filter = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV}]
    });
    let bundle = sleeper().capabilities(&caps).seccomp(filter).build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let pid = c.pid.unwrap();
    let init_status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |status: &str, name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };

    let process = |uid: u32, args: Value| {
        json!({
            "terminal": false,
            "user": {"uid": uid, "gid": uid},
            "args": args,
            "env": ["PATH=/usr/bin:/bin", "GREETING=from-process-json"],
            "cwd": "/tmp",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": true
        })
    };
    let file = bundle.path().join("process.json");
    let exec_file = |p: Value| {
        std::fs::write(&file, p.to_string()).unwrap();
        rt.exec_cmd(&[
            "exec".as_ref(),
            "--process".as_ref(),
            file.as_os_str(),
            c.id.as_ref(),
        ])
    };

    let out = exec_file(process(
        1000,
        json!(["/bin/sh", "-c", "echo $GREETING; pwd; id -u; id -g; exit 6"]),
    ));
    assert_eq!(
        out.code,
        Some(6),
        "exit code passes through: {out:?}\nlog: {}",
        rt.log_text()
    );
    assert_eq!(
        out.stdout, "from-process-json\n/tmp\n1000\n1000\n",
        "{out:?}"
    );

    // As root, like the init: a non-root execve would drop CapEff (capabilities(7)).
    let out = exec_file(process(0, json!(["/usr/bin/probe"])));
    let exec = out.report();
    for name in [
        "Seccomp",
        "Seccomp_filters",
        "CapEff",
        "CapBnd",
        "NoNewPrivs",
    ] {
        assert_eq!(
            exec["status"][name].as_str().unwrap_or_default(),
            field(&init_status, name),
            "{name}: exec {exec} vs init\n{init_status}"
        );
    }
    assert_eq!(exec["status"]["Seccomp"], "2", "{exec}");

    let out = exec_file(process(0, json!(["/usr/bin/probe", "syscall", "keyctl"])));
    assert_eq!(
        out.report()["errno"],
        libc::EXDEV,
        "the init's filter: {out:?}"
    );
    delete_and_check(c);
}

/// Argv-form `exec` without --cwd/--user runs in the spec's cwd as the spec's
/// user, as runc does (never root by default).
#[test]
fn exec_defaults_to_the_specs_cwd_and_user() {
    let rt = runtime!();
    let bundle = sleeper()
        .cwd("/tmp")
        .edit(|s| s["process"]["user"] = json!({"uid": 1000, "gid": 1000}))
        .build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let out = c
        .exec(&["/bin/sh", "-c", "pwd; id -u; id -g"])
        .expect_ok(&rt);
    assert_eq!(out.stdout, "/tmp\n1000\n1000\n", "{out:?}");
    let out = rt
        .exec_cmd(&[
            "exec",
            "--cwd",
            "/etc",
            "--user",
            "0:0",
            &c.id,
            "/bin/sh",
            "-c",
            "pwd; id -u",
        ])
        .expect_ok(&rt);
    assert_eq!(out.stdout, "/etc\n0\n", "flags override the spec: {out:?}");
    delete_and_check(c);
}

/// `--log F --log-format json` on a refused create: the last line of the log is
/// `{"level":"error","msg":...}` with the reason, which containerd's runc shim
/// shows to the user.
#[test]
fn refused_create_logs_the_reason_as_a_json_error_line() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .edit(|s| s["root"]["path"] = json!("no-such-rootfs"))
        .build();
    let failed = rt.create(&bundle).expect_err("create must be refused");
    assert_eq!(failed.out.code, Some(1), "{:?}", failed.out);
    let log = rt.log_text();
    let last = log
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("empty log; stderr: {}", failed.out.stderr));
    let line = json_of(last);
    assert_eq!(line["level"], "error", "{last}");
    let msg = line["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("no-such-rootfs"),
        "the reason is in msg: {last}"
    );
    drop(failed);
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

/// Stockade-specific refusal, through the same log line: an unknown seccomp
/// syscall is named (runc ignores unknown names).
#[test]
fn refused_seccomp_is_named_in_the_json_error_line() {
    if skip_on_reference("runc ignores unknown seccomp syscall names") {
        return;
    }
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .seccomp(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]
        }))
        .build();
    let failed = rt.create(&bundle).expect_err("create must be refused");
    let log = rt.log_text();
    let last = json_of(log.lines().rev().find(|l| !l.trim().is_empty()).unwrap());
    assert_eq!(last["level"], "error", "{last}");
    assert!(
        last["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("no_such_syscall"),
        "{last}"
    );
    drop(failed);
}

/// Issue 7 item 8: a create that fails while the init prepares the rootfs (a bind
/// mount whose source does not exist) names the mount and the errno, in the log's
/// error line and on stderr, each exactly once (libcontainer used to hand over only
/// "failed to prepare rootfs", and logged each layer's error besides).
#[test]
fn rootfs_failure_names_the_mount_and_errno_once() {
    let rt = runtime!();
    let missing = format!("/nonexistent-stockade-src-{}", std::process::id());
    let bundle = BundleBuilder::new()
        .mount(
            json!({"destination": "/data", "type": "bind", "source": missing,
                      "options": ["rbind"]}),
        )
        .build();
    let failed = rt.create(&bundle).expect_err("create must fail");
    assert_eq!(failed.out.code, Some(1), "{:?}", failed.out);
    let log = rt.log_text();
    let errors: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["level"] == "error")
        .collect();
    let last = errors
        .last()
        .unwrap_or_else(|| panic!("no error line: {log}"));
    let msg = last["msg"].as_str().unwrap_or_default();
    let stderr = failed.out.stderr.clone();
    for (what, text) in [("log msg", msg), ("stderr", stderr.as_str())] {
        assert!(text.contains(&missing), "{what} names the source: {text}");
        assert!(
            text.to_lowercase().contains("no such file or directory"),
            "{what} names the errno: {text}"
        );
    }
    if !skip_on_reference("runc names the source twice (in its stat error)") {
        assert_eq!(errors.len(), 1, "one error line, not one per layer: {log}");
        for (what, text) in [("log msg", msg), ("stderr", stderr.as_str())] {
            assert_eq!(text.matches(&missing).count(), 1, "{what}: {text}");
            assert_eq!(
                text.matches("No such file or directory").count(),
                1,
                "{what}: {text}"
            );
            assert!(
                text.contains("/data"),
                "{what} names the destination: {text}"
            );
        }
    }
    drop(failed);
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

/// Issue 7 item 8: a working directory the init cannot enter is named with its
/// errno ("failed to unix syscall: ENOENT" named neither the call nor the path).
/// A missing one is created, as by runc (`runc_parity_spec`); a regular file is no
/// directory to enter.
#[test]
fn unusable_cwd_names_the_directory_and_errno() {
    if skip_on_reference("the message is Stockade's") {
        return;
    }
    let rt = runtime!();
    let cwd = "/etc/passwd";
    let bundle = BundleBuilder::new()
        .edit(|s| s["process"]["cwd"] = json!(cwd))
        .build();
    let failed = rt.create(&bundle).expect_err("create must fail");
    let err = failed.out.stderr.clone();
    assert_eq!(err.matches(cwd).count(), 1, "{err}");
    assert_eq!(err.matches("Not a directory").count(), 1, "{err}");
    assert!(!err.contains("failed to unix syscall"), "{err}");
    drop(failed);
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

/// Issue 7 item 9: `kill` of a stopped container fails with runc's exact text
/// "container not running" (containerd's runc shim turns it into NotFound for a
/// kill of an exited task); `kill --all` of a stopped container succeeds, as runc's.
#[test]
fn kill_of_a_stopped_container_says_not_running() {
    let rt = runtime!();
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    let c = rt.create_started(&bundle);
    c.wait();
    c.wait_status("stopped");
    let before = rt.log_text().len();
    let out = c.kill("KILL");
    assert_eq!(out.code, Some(1), "kill of a stopped container: {out:?}");
    let log = rt.log_text();
    let last = json_of(
        log[before..]
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_else(|| panic!("no log line; stderr {}", out.stderr)),
    );
    assert_eq!(last["level"], "error", "{last}");
    assert_eq!(last["msg"], "container not running", "{last}");
    assert!(out.stderr.contains("container not running"), "{out:?}");
    let out = rt.exec_cmd(&["kill", "--all", &c.id, "KILL"]);
    assert!(out.success(), "kill --all of a stopped container: {out:?}");
    delete_and_check(c);
}

/// Host pids of `sleep 600` processes in the container (from `ps`).
fn long_sleeps(c: &Container<'_>) -> Vec<i64> {
    c.ps()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x00600\x00")
        })
        .collect()
}

/// `kill --all` signals every process in the container, not only the init. The
/// init is a shell that traps USR1 (a pid-namespace init ignores signals it has
/// no handler for); its two `sleep 600` children die of USR1.
#[test]
fn kill_all_reaches_every_process() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .shell(
            "trap 'echo init-got-usr1' USR1; sleep 600 & sleep 600 & \
             echo ready; while true; do sleep 0.1; done",
        )
        .build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let deadline = Instant::now() + Duration::from_secs(10);
    while long_sleeps(&c).len() < 2 || !c.stdout().contains("ready") {
        assert!(Instant::now() < deadline, "children never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let children = long_sleeps(&c);

    // Without --all only the init gets it: the children live on.
    assert!(c.kill("USR1").success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c.stdout().contains("init-got-usr1") {
        assert!(Instant::now() < deadline, "init never got USR1");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        long_sleeps(&c),
        children,
        "kill without --all spares children"
    );

    let out = rt.exec_cmd(&["kill", "--all", &c.id, "USR1"]);
    assert!(out.success(), "kill --all: {out:?}\nlog: {}", rt.log_text());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !long_sleeps(&c).is_empty() || c.stdout().matches("init-got-usr1").count() < 2 {
        assert!(
            Instant::now() < deadline,
            "after kill --all: sleeps {:?}, stdout {:?}",
            long_sleeps(&c),
            c.stdout()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.status(), "running", "the init trapped USR1 and lives");
    delete_and_check(c);
}

/// `delete` without --force refuses a running container and leaves it intact;
/// once the init exits, `state` says stopped with pid 0 and `delete` works.
#[test]
fn delete_without_force_refuses_a_running_container() {
    let rt = runtime!();
    let bundle = sleeper().build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let pid = c.pid.unwrap();

    let out = rt.exec_cmd(&["delete", &c.id]);
    assert_ne!(out.code, Some(0), "delete of a running container: {out:?}");
    assert_eq!(
        c.status(),
        "running",
        "still running after a refused delete"
    );
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "init alive"
    );
    let out = c.exec(&["/bin/echo", "still-here"]).expect_ok(&rt);
    assert_eq!(out.stdout, "still-here\n");

    assert!(c.kill("KILL").success());
    c.wait();
    c.wait_status("stopped");
    let state = c.state();
    assert_eq!(state["status"], "stopped", "{state}");
    assert_eq!(
        state["pid"], 0,
        "a stopped container reports pid 0: {state}"
    );

    let (id, cgroup, rootfs) = (c.id.clone(), c.cgroup.clone(), c.rootfs.clone());
    let out = c.delete();
    assert!(out.success(), "delete of a stopped container: {out:?}");
    assert_nothing_left_behind(&rt, &id, &cgroup, &rootfs);
}
