//! The rest of what a spec asks for, observed from inside the container (issue 2,
//! "everything else the spec asks for is honoured"): hooks (order, namespaces, state
//! on stdin), rlimits, sysctls, `linux.devices` and the devices cgroup, tmpfs and
//! read-only bind mounts, `process.user` (additionalGids, umask), cwd, env,
//! oomScoreAdj, hostname and domainname, and `events --stats` in runc's shape.
//!
//! Every scenario also runs against runc (`STOCKADE_TEST_RUNTIME=/usr/sbin/runc
//! STOCKADE_TEST_REFERENCE=1`), which proves the expectations are the spec's and
//! not Stockade's.

use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};
use stockade_integration_tests::{
    assert_nothing_left_behind, runtime,
    runtime::{is_reference, parse_report},
    skip_on_reference, BundleBuilder, Container,
};

fn delete_and_check(c: Container<'_>) {
    let rt = c.runtime();
    let (id, cgroup, rootfs) = (c.id.clone(), c.cgroup.clone(), c.rootfs.clone());
    let out = c.delete_force();
    assert!(out.success(), "delete --force: {out:?}");
    assert_nothing_left_behind(rt, &id, &cgroup, &rootfs);
}

/// Runs the bundle in the foreground and returns its stdout; the run must succeed.
fn run_stdout(edit: impl FnOnce(BundleBuilder) -> BundleBuilder) -> String {
    let rt = runtime!();
    let bundle = edit(BundleBuilder::new()).build();
    let out = rt.run(&bundle).expect_ok(&rt);
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    out.stdout
}

/// `probe ARGS...` as the container's process; its report.
fn probe(args: &[&str], edit: impl FnOnce(BundleBuilder) -> BundleBuilder) -> Value {
    let mut argv = vec!["/usr/bin/probe"];
    argv.extend_from_slice(args);
    parse_report(&run_stdout(|b| edit(b.args(&argv))))
}

/// The text of `path` as the container's process reads it (`probe cat`).
fn cat_inside(path: &str, edit: impl FnOnce(BundleBuilder) -> BundleBuilder) -> String {
    let report = probe(&["cat", path], edit);
    assert_eq!(report["ok"], true, "cat {path}: {report}");
    report["text"].as_str().unwrap_or_default().to_string()
}

/// The value of `Key:` in a `/proc/self/status`-like text.
fn status_field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key}: in {text}"))
        .trim()
}

// ---------------------------------------------------------------------------
// Hooks
// ---------------------------------------------------------------------------

/// A hook that appends `NAME <state JSON from stdin>` to `log` as one line, in a
/// single O_APPEND write, so hooks that run concurrently cannot interleave.
fn marker_hook(shell: &str, name: &str, log: &str) -> Value {
    let script = format!("state=$(cat); echo \"{name} $state\" >> {log}");
    json!({"path": shell, "args": ["sh", "-c", script]})
}

/// The `(name, state)` lines written so far, in order; the container process's
/// own marker line has no state (`Null`).
fn hook_lines(log: &Path) -> Vec<(String, Value)> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_once(' ') {
            None => (l.to_string(), Value::Null),
            Some((name, state)) => {
                let state: Value = serde_json::from_str(state).unwrap_or_else(|e| {
                    panic!("{name}: state on stdin is not JSON ({e}): {state}")
                });
                (name.to_string(), state)
            }
        })
        .collect()
}

fn hook_names(lines: &[(String, Value)]) -> Vec<&str> {
    lines.iter().map(|(n, _)| n.as_str()).collect()
}

fn position(names: &[&str], name: &str) -> usize {
    names
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("{name} did not run: {names:?}"))
}

/// All six hooks run at their lifecycle step, in the spec's order, each with the
/// container's state (its `id`) on stdin. prestart, createRuntime, poststart and
/// poststop run in the runtime's namespaces (host `/bin/sh`, host path);
/// createContainer runs in the container's mount namespace before pivot_root (the
/// host path still resolves); startContainer runs inside the container after
/// pivot_root, so it uses the container's `/bin/sh` and writes through a bind mount.
///
/// Not asserted: the order of poststart against startContainer and the user
/// process. runtime-spec puts poststart after the process starts, but start only
/// signals the init, which then runs startContainer and execs; libcontainer (like
/// crun, containers/crun#1562) runs poststart right after that signal, so they
/// race. runc 1.1 even runs poststart during `create` (opencontainers/runc#1710,
/// fixed by runc#5186), which the reference run tolerates.
#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    let rt = runtime!();
    let markers = tempfile::tempdir().expect("marker dir");
    let host_log = markers.path().join("hooks.log");
    let host = host_log.to_str().expect("utf-8 temp path");
    let inside = "/hooks/hooks.log";
    let bundle = BundleBuilder::new()
        .shell(&format!(
            "echo process >> {inside}; exec /usr/bin/probe sleep 600"
        ))
        .mount(json!({
            "destination": "/hooks", "type": "bind",
            "source": markers.path(), "options": ["rbind", "rw"]
        }))
        .edit(|s| {
            s["hooks"] = json!({
                "prestart": [marker_hook("/bin/sh", "prestart", host)],
                "createRuntime": [marker_hook("/bin/sh", "createRuntime", host)],
                "createContainer": [marker_hook("/bin/sh", "createContainer", host)],
                "startContainer": [marker_hook("/bin/sh", "startContainer", inside)],
                "poststart": [marker_hook("/bin/sh", "poststart", host)],
                "poststop": [marker_hook("/bin/sh", "poststop", host)],
            });
        })
        .build();

    let c = rt
        .create(&bundle)
        .unwrap_or_else(|f| panic!("create failed: {:?}\nlog: {}", f.out, rt.log_text()));
    let created = hook_lines(&host_log);
    let mut expected = vec!["prestart", "createRuntime", "createContainer"];
    if is_reference() && hook_names(&created).last() == Some(&"poststart") {
        eprintln!("reference runtime ran poststart during create (runc < 1.4, runc#1710)");
        expected.push("poststart");
    }
    assert_eq!(
        hook_names(&created),
        expected,
        "create runs the create-time hooks, in order: {created:?}"
    );

    c.start();
    // The process's own marker: startContainer must be done by then.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !hook_names(&hook_lines(&host_log)).contains(&"process") {
        assert!(Instant::now() < deadline, "the container process never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = hook_lines(&host_log);
    let names = hook_names(&started);
    assert_eq!(
        names.len(),
        6,
        "start adds startContainer and poststart once: {names:?}"
    );
    assert!(
        position(&names, "createContainer") < position(&names, "startContainer")
            && position(&names, "startContainer") < position(&names, "process"),
        "startContainer runs after create, before the process: {names:?}"
    );
    position(&names, "poststart");

    let (id, cgroup, rootfs) = (c.id.clone(), c.cgroup.clone(), c.rootfs.clone());
    c.kill("KILL");
    c.wait();
    let out = c.delete();
    assert!(out.success(), "delete: {out:?}\nlog: {}", rt.log_text());
    assert_nothing_left_behind(&rt, &id, &cgroup, &rootfs);

    let all = hook_lines(&host_log);
    assert_eq!(
        hook_names(&all).last(),
        Some(&"poststop"),
        "delete runs poststop last: {all:?}"
    );
    assert_eq!(all.len(), 7, "every hook ran once: {all:?}");
    for (name, state) in all.iter().filter(|(n, _)| n != "process") {
        assert_eq!(
            state["id"],
            id.as_str(),
            "{name} got the container's state: {state}"
        );
        assert!(state["ociVersion"].is_string(), "{name}: {state}");
        assert!(state["status"].is_string(), "{name}: {state}");
        let bundle_path = state["bundle"].as_str().unwrap_or_default();
        assert!(
            bundle_path.starts_with('/'),
            "{name}: bundle is absolute: {state}"
        );
        // runtime-spec runtime.md: pid is REQUIRED when status is created or running.
        if matches!(state["status"].as_str(), Some("created" | "running")) {
            assert!(state["pid"].as_i64().unwrap_or(0) > 0, "{name}: {state}");
        }
    }
}

// ---------------------------------------------------------------------------
// process: rlimits, user, cwd, env, umask, oomScoreAdj
// ---------------------------------------------------------------------------

/// `process.rlimits` are set on the init (setrlimit(2)); /proc/self/limits shows
/// soft and hard. Both values lie below this machine's hard limit: without
/// CAP_SYS_RESOURCE in the bounding set nobody may raise a hard limit.
#[test]
fn rlimits_are_set_soft_and_hard() {
    let limits = cat_inside("/proc/self/limits", |b| {
        b.edit(|s| {
            s["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
                {"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192}
            ]);
        })
    });
    let row = |name: &str| -> Vec<String> {
        let line = limits
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {limits}"));
        line[name.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("Max open files")[..2], ["123", "456"], "{limits}");
    assert_eq!(row("Max core file size")[..2], ["4096", "8192"], "{limits}");
}

/// `process.user` with additionalGids: uid/gid switched, supplementary groups are
/// exactly the additional ones; `umask` applied; `cwd` and `env` as given.
#[test]
fn process_user_groups_umask_cwd_and_env() {
    let out = run_stdout(|b| {
        b.shell(
            "cat /proc/self/status; echo cwd=$(pwd); echo env=$STOCKADE_HONOURED; \
             echo umask=$(umask)",
        )
        .cwd("/etc")
        .env("STOCKADE_HONOURED=yes please")
        .edit(|s| {
            s["process"]["user"] = json!({
                "uid": 1000, "gid": 1001, "additionalGids": [2000, 3000], "umask": 0o027
            });
        })
    });
    let words = |key: &str| -> Vec<String> {
        status_field(&out, key)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(words("Uid"), ["1000"; 4], "{out}");
    assert_eq!(words("Gid"), ["1001"; 4], "{out}");
    assert_eq!(words("Groups"), ["2000", "3000"], "{out}");
    assert_eq!(status_field(&out, "Umask"), "0027", "{out}");
    let value = |key: &str| -> &str {
        out.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key}= in {out}"))
    };
    assert_eq!(value("cwd"), "/etc", "{out}");
    assert_eq!(value("env"), "yes please", "{out}");
    assert_eq!(value("umask"), "0027", "{out}");
}

/// `process.oomScoreAdj` is written to the init's /proc/self/oom_score_adj. A
/// positive value: lowering it needs CAP_SYS_RESOURCE, which this machine's
/// bounding set lacks.
#[test]
fn oom_score_adj_is_set() {
    let text = cat_inside("/proc/self/oom_score_adj", |b| {
        b.edit(|s| s["process"]["oomScoreAdj"] = json!(500))
    });
    assert_eq!(text.trim(), "500");
}

// ---------------------------------------------------------------------------
// linux: sysctls, devices, hostname, domainname
// ---------------------------------------------------------------------------

/// `linux.sysctl` values are written in the container's namespaces: a network one
/// (new network namespace) and an IPC one (new IPC namespace) read back from
/// /proc/sys inside, while the host keeps its own values.
#[test]
fn namespaced_sysctls_are_set() {
    let host_port =
        fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").expect("host sysctl");
    let out = run_stdout(|b| {
        b.shell(
            "echo port=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start); \
             echo shm=$(cat /proc/sys/kernel/shm_rmid_forced)",
        )
        .edit(|s| {
            s["linux"]["sysctl"] = json!({
                "net.ipv4.ip_unprivileged_port_start": "80",
                "kernel.shm_rmid_forced": "1"
            });
        })
    });
    assert!(out.lines().any(|l| l == "port=80"), "{out}");
    assert!(out.lines().any(|l| l == "shm=1"), "{out}");
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap(),
        host_port,
        "the host's value is untouched"
    );
}

/// A `linux.devices` entry at a custom path: the node exists inside with the
/// spec's type, major:minor, mode and owner; allowed by `resources.devices`, it
/// behaves as the device it stands for (1:7 is /dev/full: writes fail ENOSPC).
#[test]
fn linux_devices_entry_is_created_and_usable() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .edit(|s| {
            s["linux"]["devices"] = json!([{
                "path": "/dev/stockade-full", "type": "c", "major": 1, "minor": 7,
                "fileMode": 0o640, "uid": 0, "gid": 0
            }]);
            s["linux"]["resources"]["devices"] = json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rw"}
            ]);
        })
        .build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let node = c
        .exec(&["/usr/bin/probe", "stat", "/dev/stockade-full"])
        .expect_ok(&rt)
        .report();
    assert_eq!(node["type"], "c", "{node}");
    assert_eq!(
        (node["major"].as_u64(), node["minor"].as_u64()),
        (Some(1), Some(7)),
        "{node}"
    );
    assert_eq!(node["mode"], 0o640, "{node}");
    assert_eq!(
        (node["uid"].as_u64(), node["gid"].as_u64()),
        (Some(0), Some(0)),
        "{node}"
    );
    let write = c
        .exec(&["/usr/bin/probe", "write", "/dev/stockade-full"])
        .expect_ok(&rt)
        .report();
    assert_eq!(
        write["errno"],
        libc::ENOSPC,
        "an allowed /dev/full: {write}"
    );
    delete_and_check(c);
}

/// The devices cgroup denies what `resources.devices` does not allow: a container
/// with CAP_MKNOD may create a node for /dev/fuse (10:229, which opens without any
/// capability), but opening it fails with EPERM at the cgroup's check.
#[test]
fn devices_cgroup_denies_a_device_not_allowed() {
    let caps = ["CAP_MKNOD", "CAP_DAC_OVERRIDE", "CAP_SYS_ADMIN"];
    let out = run_stdout(|b| {
        b.capabilities(&caps)
            .shell("mknod -m 666 /dev/denied-fuse c 10 229 && /usr/bin/probe open /dev/denied-fuse")
    });
    let report = parse_report(&out);
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["errno"], libc::EPERM, "devices cgroup: {report}");
}

/// `hostname` in the container's UTS namespace.
#[test]
fn hostname_is_set() {
    let out = run_stdout(|b| b.shell("echo host=$(hostname)").hostname("honoured"));
    assert!(out.lines().any(|l| l == "host=honoured"), "{out}");
}

/// `domainname` (runtime-spec 1.1) in the container's UTS namespace.
#[test]
fn domainname_is_set() {
    if skip_on_reference("runc 1.1 ignores domainname (added in runc 1.2, runc#3600)") {
        return;
    }
    let out = run_stdout(|b| {
        b.shell("echo domain=$(cat /proc/sys/kernel/domainname)")
            .edit(|s| s["domainname"] = json!("stockade.test"))
    });
    assert!(out.lines().any(|l| l == "domain=stockade.test"), "{out}");
}

// ---------------------------------------------------------------------------
// mounts
// ---------------------------------------------------------------------------

/// The mountinfo(5) line whose mount point is `target`.
fn mountinfo_line<'a>(mountinfo: &'a str, target: &str) -> &'a str {
    mountinfo
        .lines()
        .rfind(|l| l.split_whitespace().nth(4) == Some(target))
        .unwrap_or_else(|| panic!("{target} is not a mount point:\n{mountinfo}"))
}

/// A tmpfs mount with `size=` and `mode=`: both show in its superblock options
/// (the kernel prints size in KiB), flags like `noexec` in the mount options.
#[test]
fn tmpfs_mount_options_are_applied() {
    let mountinfo = cat_inside("/proc/self/mountinfo", |b| {
        b.mount(json!({
            "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "noexec", "size=2m", "mode=1770"]
        }))
    });
    let line = mountinfo_line(&mountinfo, "/scratch");
    let fields: Vec<&str> = line.split_whitespace().collect();
    let mount_opts: Vec<&str> = fields[5].split(',').collect();
    for flag in ["nosuid", "nodev", "noexec"] {
        assert!(mount_opts.contains(&flag), "{flag}: {line}");
    }
    let sep = fields
        .iter()
        .position(|f| *f == "-")
        .expect("mountinfo separator");
    assert_eq!(fields[sep + 1], "tmpfs", "{line}");
    let super_opts: Vec<&str> = fields[sep + 3].split(',').collect();
    assert!(super_opts.contains(&"size=2048k"), "{line}");
    assert!(super_opts.contains(&"mode=1770"), "{line}");
}

/// A read-only bind mount refuses writes with EROFS; the host directory is
/// untouched, and a read-write bind next to it accepts them.
#[test]
fn readonly_bind_mount_refuses_writes() {
    let ro = tempfile::tempdir().expect("ro source");
    let rw = tempfile::tempdir().expect("rw source");
    let out = run_stdout(|b| {
        b.shell("/usr/bin/probe write /ro/x; /usr/bin/probe write /rw/y")
            .mount(json!({
                "destination": "/ro", "type": "bind", "source": ro.path(),
                "options": ["rbind", "ro"]
            }))
            .mount(json!({
                "destination": "/rw", "type": "bind", "source": rw.path(),
                "options": ["rbind", "rw"]
            }))
    });
    let reports: Vec<Value> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(reports.len(), 2, "{out}");
    assert_eq!(reports[0]["errno"], libc::EROFS, "ro bind: {}", reports[0]);
    assert_eq!(reports[1]["ok"], true, "rw bind: {}", reports[1]);
    assert!(!ro.path().join("x").exists());
    assert!(rw.path().join("y").exists());
}

// ---------------------------------------------------------------------------
// events --stats
// ---------------------------------------------------------------------------

/// `events --stats` data in runc's `types.Stats` shape, which go-runc decodes:
/// `memory.usage.limit` is the spec's memory limit, `pids.current` counts the init
/// and `pids.limit` is the spec's, `cpu.usage.total` is cumulative nanoseconds.
#[test]
fn events_stats_data_has_runcs_shape() {
    let rt = runtime!();
    let limit: u64 = 64 << 20;
    let bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .memory_limit(limit as i64)
        .pids_limit(32)
        .build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let out = rt.exec_cmd_timeout(&["events", "--stats", &c.id], Duration::from_secs(10));
    assert!(
        out.success(),
        "events --stats: {out:?}\nlog: {}",
        rt.log_text()
    );
    let event: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON line ({e}): {}", out.stdout));
    assert_eq!(event["type"], "stats", "{event}");
    assert_eq!(event["id"], c.id.as_str(), "{event}");
    let data = &event["data"];
    assert_eq!(data["memory"]["usage"]["limit"], limit, "{data}");
    assert!(
        data["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{data}"
    );
    assert!(data["pids"]["current"].as_u64().unwrap_or(0) >= 1, "{data}");
    assert_eq!(data["pids"]["limit"], 32, "{data}");
    assert!(
        data["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0,
        "{data}"
    );
    assert!(data["cpu"]["usage"]["kernel"].is_u64(), "{data}");
    assert!(data["cpu"]["usage"]["user"].is_u64(), "{data}");
    assert!(data["cpu"]["throttling"].is_object(), "{data}");
    assert!(data["memory"]["raw"].is_object(), "{data}");
    assert!(data["blkio"].is_object(), "{data}");
    delete_and_check(c);
}

/// `events --interval=1s` (no `--stats`; a Go duration, the form go-runc's
/// `Events` passes) streams one `stats` line per interval, in the same shape. The test reads two lines, then ends the stream it started.
#[test]
fn events_interval_streams_stats_lines() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .pids_limit(16)
        .build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let mut events = rt
        .command(&["events", "--interval=1s", &c.id])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn events");
    let stdout = events.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    for _ in 0..2 {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => lines.push(line),
            Err(e) => {
                let _ = events.kill();
                panic!(
                    "events streamed {lines:?}, then {e}\nlog: {}",
                    rt.log_text()
                );
            }
        }
    }
    events.kill().expect("end the events stream");
    events.wait().expect("reap events");
    for line in &lines {
        let event: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(event["type"], "stats", "{event}");
        assert_eq!(event["id"], c.id.as_str(), "{event}");
        assert_eq!(event["data"]["pids"]["limit"], 16, "{event}");
    }
    delete_and_check(c);
}

// ---------------------------------------------------------------------------
// process.env without PATH (issue 7, item 2)
// ---------------------------------------------------------------------------

/// A process with no env at all (the upstream pause image sets none) and an absolute
/// `args[0]` runs, as under runc: PATH is only needed to search for a bare name.
#[test]
fn absolute_args0_runs_without_path() {
    let text = cat_inside("/proc/self/environ", |b| {
        b.edit(|s| {
            s["process"].as_object_mut().expect("process").remove("env");
        })
    });
    assert!(
        !text.split('\0').any(|v| v.starts_with("PATH=")),
        "no PATH expected inside: {text:?}"
    );
}

/// A bare `args[0]` without PATH is not searched for anywhere: create fails naming
/// the executable, as runc's does (its exec.LookPath on an empty PATH), and leaves
/// nothing behind.
#[test]
fn bare_args0_without_path_is_not_found() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .args(&["probe"])
        .edit(|s| s["process"]["env"] = json!(["TERM=xterm"]))
        .build();
    let failed = match rt.create(&bundle) {
        Ok(c) => {
            let id = c.id.clone();
            drop(c);
            panic!("create of {id} with a bare args[0] and no PATH succeeded")
        }
        Err(failed) => failed,
    };
    let log = rt.log_text();
    assert!(
        log.contains("probe") && log.contains("PATH"),
        "the error names the executable and PATH: {log}\n{:?}",
        failed.out
    );
    drop(failed);
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}
