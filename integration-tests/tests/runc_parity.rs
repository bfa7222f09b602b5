//! runc parity (issue 14): CLI behaviour that containerd's runc shim, CRI-O and
//! people's scripts rely on. Each test drives the SAME bundle through Stockade
//! (under the `unconfined` profile, so hardening is out of the picture) and through
//! runc (`/usr/sbin/runc`, or `$STOCKADE_TEST_RUNC`) in the same run, one after the
//! other, and asserts that both give runc's answer.

use std::path::PathBuf;
use stockade_integration_tests::runtime::{cleanup_container, CmdOutput, TIMEOUT};
use stockade_integration_tests::{
    assert_nothing_left_behind, runtime, Bundle, BundleBuilder, Runtime,
};

/// Stockade (the runtime under test) first, then runc: `(name, runtime)`.
fn both() -> [(&'static str, Runtime); 2] {
    [("stockade", runtime!()), ("runc", Runtime::runc())]
}

fn sleeper() -> BundleBuilder {
    BundleBuilder::new().args(&["/usr/bin/probe", "sleep", "600"])
}

/// Runs `scenario` on `bundle` with each runtime in turn and asserts that every
/// runtime observed `want` (runc's answer). The observations are compared whole, so
/// a failure shows both runtimes side by side.
fn assert_parity<T: PartialEq + std::fmt::Debug>(
    bundle: &Bundle,
    want: T,
    scenario: impl Fn(&Runtime, &Bundle) -> T,
) {
    let seen: Vec<(&str, T)> = both()
        .iter()
        .map(|(name, rt)| (*name, scenario(rt, bundle)))
        .collect();
    for (name, got) in &seen {
        assert_eq!(
            got, &want,
            "{name} differs from runc's answer; all runtimes: {seen:#?}"
        );
    }
}

fn code(out: &CmdOutput) -> Option<i32> {
    out.code
}

/// `kill ID 0` sends nothing and answers whether the init lives: 0 for a created
/// and a running container, "container not running" (exit 1) once it is stopped.
#[test]
fn kill_signal_0_probes_liveness() {
    let bundle = sleeper().build();
    assert_parity(&bundle, (Some(0), Some(0), Some(1), true), |rt, bundle| {
        let c = rt
            .create(bundle)
            .unwrap_or_else(|f| panic!("create with {}: {f:?}", rt.binary().display()));
        let created = c.kill("0");
        c.start();
        c.wait_status("running");
        let running = c.kill("0");
        assert_eq!(c.status(), "running", "signal 0 must deliver nothing");
        assert!(c.kill("KILL").success());
        c.wait();
        c.wait_status("stopped");
        let stopped = c.kill("0");
        let says_not_running = stopped.stderr.contains("container not running")
            || rt.log_text().contains("container not running");
        let out = c.delete_force();
        assert!(out.success(), "delete --force: {out:?}");
        (
            code(&created),
            code(&running),
            code(&stopped),
            says_not_running,
        )
    });
}

/// `create --pid-file` naming a path that cannot be written (its directory does not
/// exist) fails, and leaves no container, cgroup, process or mount behind.
#[test]
fn unwritable_pid_file_fails_create_and_leaves_nothing() {
    let bundle = sleeper().build();
    let pid_file = bundle.path().join("no-such-dir").join("init.pid");
    assert_parity(&bundle, (false, false), |rt, bundle| {
        let out = rt.exec_cmd_timeout(
            &[
                "create".as_ref(),
                "--bundle".as_ref(),
                bundle.path().as_os_str(),
                "--pid-file".as_ref(),
                pid_file.as_os_str(),
                bundle.id.as_ref(),
            ],
            TIMEOUT,
        );
        let created = out.success();
        if created {
            // The defect: make sure nothing outlives the test before failing it.
            cleanup_container(rt, &bundle.id, &bundle.cgroup_relative(), None);
        } else {
            assert_nothing_left_behind(rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
        }
        (created, pid_file.exists())
    });
    // Stockade says which file, once, with the cause.
    let rt = runtime!();
    let out = rt.exec_cmd_timeout(
        &[
            "create".as_ref(),
            "--bundle".as_ref(),
            bundle.path().as_os_str(),
            "--pid-file".as_ref(),
            pid_file.as_os_str(),
            bundle.id.as_ref(),
        ],
        TIMEOUT,
    );
    if out.success() {
        cleanup_container(&rt, &bundle.id, &bundle.cgroup_relative(), None);
    }
    assert!(
        !out.success(),
        "create with an unwritable pid file: {out:?}"
    );
    let named = out.stderr.contains(&*pid_file.to_string_lossy());
    assert!(named, "the error names the pid file: {out:?}");
    assert!(
        out.stderr.contains("No such file or directory"),
        "the error carries its cause: {out:?}"
    );
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

/// `exec` into a created (not yet started) container runs the process, as runc;
/// into a paused one it fails with exit status 255 and runc's reason unless
/// `--ignore-paused`; after `resume` it works again.
#[test]
fn exec_into_created_and_paused_containers() {
    let bundle = sleeper().build();
    assert_parity(
        &bundle,
        (Some(0), Some(255), true, Some(0)),
        |rt, bundle| {
            let c = rt
                .create(bundle)
                .unwrap_or_else(|f| panic!("create with {}: {f:?}", rt.binary().display()));
            let in_created = c.exec(&["/bin/sh", "-c", "exit 0"]);
            c.start();
            c.wait_status("running");
            assert!(c.pause().success(), "pause");
            c.wait_status("paused");
            let in_paused = c.exec(&["/bin/sh", "-c", "exit 0"]);
            let says_paused = in_paused.stderr.contains("paused");
            assert!(c.resume().success(), "resume");
            c.wait_status("running");
            let after_resume = c.exec(&["/bin/sh", "-c", "exit 0"]);
            let out = c.delete_force();
            assert!(out.success(), "delete --force: {out:?}");
            (
                code(&in_created),
                code(&in_paused),
                says_paused,
                code(&after_resume),
            )
        },
    );
}

/// The container's `cpu.cfs_quota_us` (v1) or `cpu.max` quota (v2) on the host.
fn cpu_quota(cgroup: &str) -> String {
    let v2 = PathBuf::from("/sys/fs/cgroup/cgroup.controllers").exists();
    if v2 {
        let text = std::fs::read_to_string(format!("/sys/fs/cgroup/{cgroup}/cpu.max"))
            .expect("read cpu.max");
        text.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    } else {
        std::fs::read_to_string(format!("/sys/fs/cgroup/cpu/{cgroup}/cpu.cfs_quota_us"))
            .expect("read cpu.cfs_quota_us")
            .trim()
            .to_string()
    }
}

/// `update --cpu-quota -1` lifts a CPU quota (runc's way of saying "unlimited").
#[test]
fn update_cpu_quota_minus_one_lifts_the_limit() {
    let bundle = sleeper()
        .edit(|s| {
            s["linux"]["resources"]["cpu"] = serde_json::json!({"quota": 50000, "period": 100000});
        })
        .build();
    let unlimited = if PathBuf::from("/sys/fs/cgroup/cgroup.controllers").exists() {
        "max"
    } else {
        "-1"
    };
    assert_parity(
        &bundle,
        ("50000".to_string(), Some(0), unlimited.to_string()),
        |rt, bundle| {
            let c = rt.create_started(bundle);
            c.wait_status("running");
            let before = cpu_quota(&c.cgroup);
            let out = rt.exec_cmd(&["update", "--cpu-quota", "-1", &c.id]);
            let after = cpu_quota(&c.cgroup);
            let del = c.delete_force();
            assert!(del.success(), "delete --force: {del:?}");
            (before, code(&out), after)
        },
    );
}

// ---- cgroups: frozen parents, sub-cgroups, every update flag (issue 14) ----

fn cgroup_v2() -> bool {
    PathBuf::from("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The directory of cgroup `rel` in `controller`'s hierarchy (v1), or in the
/// unified hierarchy (v2).
fn controller_dir(controller: &str, rel: &str) -> PathBuf {
    if cgroup_v2() {
        PathBuf::from("/sys/fs/cgroup").join(rel)
    } else {
        PathBuf::from("/sys/fs/cgroup").join(controller).join(rel)
    }
}

fn read_trimmed(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Removes `rel` and everything below it in every hierarchy, deepest first, after
/// thawing and killing what is inside: the tests' own cleanup, whatever the runtime
/// left.
fn remove_cgroup_tree(rel: &str) {
    fn remove(dir: &std::path::Path) {
        let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
        let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    remove(&e.path());
                }
            }
        }
        for _ in 0..100 {
            for p in std::fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
            {
                // SAFETY: kill has no memory effects; p is in this test's cgroup.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    for dir in runtime::cgroup_dirs(rel) {
        remove(&dir);
    }
}

/// `create` in a cgroup that is already frozen fails at once, saying so (runc:
/// "container's cgroup unexpectedly frozen"), and leaves no container and no
/// process; it used to hang forever with the init stuck in the frozen cgroup.
#[test]
fn create_in_a_frozen_cgroup_fails_instead_of_hanging() {
    let bundle = sleeper().build();
    assert_parity(&bundle, (false, true, false), |rt, bundle| {
        let rel = bundle.cgroup_relative();
        let freezer = controller_dir("freezer", &rel);
        std::fs::create_dir_all(&freezer).expect("make the cgroup");
        if cgroup_v2() {
            std::fs::write(freezer.join("cgroup.freeze"), "1").expect("freeze (v2)");
        } else {
            std::fs::write(freezer.join("freezer.state"), "FROZEN").expect("freeze (v1)");
        }
        let create = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.exec_cmd_timeout(
                &[
                    "create".as_ref(),
                    "--bundle".as_ref(),
                    bundle.path().as_os_str(),
                    bundle.id.as_ref(),
                ],
                std::time::Duration::from_secs(20),
            )
        }));
        let listed = rt
            .exec_cmd(&["list", "--format", "json"])
            .stdout
            .contains(&format!("\"{}\"", bundle.id));
        // Whatever happened, nothing may outlive the test (a hung create leaves its
        // init frozen in the cgroup).
        cleanup_container(rt, &bundle.id, &rel, None);
        remove_cgroup_tree(&rel);
        let out = match create {
            Ok(out) => out,
            Err(_) => panic!("{}: create in a frozen cgroup hung", rt.binary().display()),
        };
        let says = format!("{}{}", out.stderr, rt.log_text()).contains("frozen");
        (out.success(), says, listed)
    });
}

/// `exec --cgroup SUB` runs the process in the container's sub-cgroup SUB, which
/// must exist: a missing one fails the exec (exit 255, runc's "exec failed") and is
/// not created.
#[test]
fn exec_into_a_missing_sub_cgroup_fails_and_makes_nothing() {
    let bundle = sleeper().build();
    assert_parity(&bundle, (Some(255), false, true), |rt, bundle| {
        let c = rt.create_started(bundle);
        c.wait_status("running");
        let missing = rt.exec_cmd(&["exec", "--cgroup", "nosuch", &c.id, "/bin/true"]);
        let made = !runtime::cgroup_dirs(&format!("{}/nosuch", c.cgroup)).is_empty();
        // An existing sub-cgroup (made in every hierarchy the container has) works.
        make_cgroup_dirs(&c.cgroup, &["there"]);
        let there = rt.exec_cmd(&[
            "exec",
            "--cgroup",
            "there",
            &c.id,
            "cat",
            "/proc/self/cgroup",
        ]);
        let in_there = there.success() && there.stdout.lines().any(|l| l.ends_with("/there"));
        assert!(in_there || !there.success(), "{there:?}");
        // This test is about exec: its sub-cgroups go before the delete.
        for sub in ["nosuch", "there"] {
            remove_cgroup_tree(&format!("{}/{sub}", c.cgroup));
        }
        let out = c.delete_force();
        assert!(out.success(), "delete --force: {out:?}");
        (code(&missing), made, in_there)
    });
}

/// Makes the cgroups `names` (in order, relative to `rel`) in every hierarchy that
/// has `rel`, ready to be joined.
fn make_cgroup_dirs(rel: &str, names: &[&str]) {
    for dir in runtime::cgroup_dirs(rel) {
        for name in names {
            let sub = dir.join(name);
            std::fs::create_dir(&sub).expect("make a sub-cgroup");
            // A new v1 cpuset cgroup has no cpus or mems: nothing could join it. (On
            // v2 the file is there only with the controller enabled, and inherits.)
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let empty =
                    std::fs::read_to_string(sub.join(file)).is_ok_and(|v| v.trim().is_empty());
                if let (true, Ok(v)) = (empty, std::fs::read_to_string(dir.join(file))) {
                    std::fs::write(sub.join(file), v.trim()).expect("copy the cpuset");
                }
            }
        }
    }
}

/// Makes `sub/deeper` in every hierarchy of the container's cgroup (what a
/// container with a writable cgroupfs does, e.g. systemd inside) and runs a
/// process in `sub`. The detached process is re-parented to this test process (a
/// subreaper): a thread reaps it once it is killed, or the container's pid
/// namespace could not finish dying (its init waits for every member to be reaped).
fn make_sub_cgroups(rt: &Runtime, id: &str, rel: &str) {
    make_cgroup_dirs(rel, &["sub", "sub/deeper"]);
    let pid_file = tempfile::NamedTempFile::new().expect("pid file");
    // Output to files: the detached process keeps a pipe open for 600 s.
    let out = rt.exec_cmd_timeout(
        &[
            "exec".as_ref(),
            "--detach".as_ref(),
            "--pid-file".as_ref(),
            pid_file.path().as_os_str(),
            "--cgroup".as_ref(),
            "sub".as_ref(),
            id.as_ref(),
            "/usr/bin/probe".as_ref(),
            "sleep".as_ref(),
            "600".as_ref(),
        ],
        TIMEOUT,
    );
    assert!(out.success(), "exec into sub: {out:?}");
    let pid: i32 = read_trimmed(pid_file.path()).parse().expect("exec pid");
    std::thread::spawn(move || {
        let mut status = 0;
        // SAFETY: status is writable; waits only for this one (adopted) child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    });
}

/// `delete --force` of a container that made sub-cgroups (and runs a process in
/// one) succeeds, kills everything and removes the whole tree; it failed
/// ("could not delete", EBUSY) and leaked the cgroups and the container.
#[test]
fn delete_force_removes_sub_cgroups() {
    let bundle = sleeper().build();
    assert_parity(&bundle, (true, Vec::<String>::new()), |rt, bundle| {
        let c = rt.create_started(bundle);
        c.wait_status("running");
        make_sub_cgroups(rt, &c.id, &c.cgroup);
        let rel = c.cgroup.clone();
        let out = c.delete_force();
        if !out.success() {
            eprintln!("{}: {out:?}\nlog: {}", rt.binary().display(), rt.log_text());
        }
        let left: Vec<String> = runtime::cgroup_dirs(&rel)
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        remove_cgroup_tree(&rel);
        if out.success() {
            assert_nothing_left_behind(rt, &bundle.id, &rel, &bundle.rootfs);
        }
        (out.success(), left)
    });
}

/// The same under a shipped profile, whose user namespace gives the container an
/// idmapped rootfs: that mount, the range and the cgroups all go.
#[test]
fn delete_force_with_sub_cgroups_leaves_nothing_under_default() {
    let rt = runtime!(profile = "default");
    let bundle = sleeper().build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    make_sub_cgroups(&rt, &c.id, &c.cgroup);
    let rel = c.cgroup.clone();
    let out = c.delete_force();
    let left = runtime::cgroup_dirs(&rel);
    remove_cgroup_tree(&rel);
    assert!(
        out.success(),
        "delete --force: {out:?}\nlog: {}",
        rt.log_text()
    );
    assert!(left.is_empty(), "cgroups left: {left:?}");
    assert_nothing_left_behind(&rt, &bundle.id, &rel, &bundle.rootfs);
}

/// The blkio weight file this kernel offers for the cgroup, if any (v1 `blkio.weight`
/// or BFQ's `blkio.bfq.weight`; v2 `io.bfq.weight` or `io.weight`).
fn blkio_weight_file(rel: &str) -> Option<PathBuf> {
    let dir = controller_dir("blkio", rel);
    let names: &[&str] = if cgroup_v2() {
        &["io.bfq.weight", "io.weight"]
    } else {
        &["blkio.weight", "blkio.bfq.weight"]
    };
    names.iter().map(|n| dir.join(n)).find(|p| p.exists())
}

/// Gives the test cgroup parent a real-time budget (cgroup v1 with
/// CONFIG_RT_GROUP_SCHED), without which no child can have one, as on a node that
/// runs real-time containers. `None` where the kernel has no RT group scheduling.
fn rt_budget_for(rel: &str) -> Option<()> {
    if cgroup_v2() {
        return None;
    }
    let parent = controller_dir("cpu", rel).parent()?.to_path_buf();
    std::fs::create_dir_all(&parent).ok()?;
    let file = parent.join("cpu.rt_runtime_us");
    if !file.exists() {
        return None;
    }
    // 5 % of the parent's period: room for the 1 % each runtime's container asks,
    // also while the kernel still counts a container just deleted (1 % exactly made
    // runc's update fail with EINVAL after Stockade's container had held it).
    let have: u64 = read_trimmed(&file).parse().ok()?;
    if have < 50000 {
        std::fs::write(&file, "50000").expect("give the test parent an RT budget");
    }
    Some(())
}

/// Every resource flag of runc's `update` reaches the cgroup: cpuset cpus and mems,
/// blkio weight (where the kernel has a weight file), CPU real-time period/runtime
/// (where it has RT group scheduling). Stockade used to accept them and apply
/// nothing.
#[test]
fn update_flags_are_all_applied() {
    type Seen = (
        Option<i32>,
        String,
        String,
        Option<String>,
        Option<(String, String)>,
    );
    let bundle = sleeper().build();
    let rt_sched = rt_budget_for(&bundle.cgroup_relative()).is_some();
    let seen: Vec<(&str, Seen)> = both()
        .iter()
        .map(|(name, rt)| {
            let c = rt.create_started(&bundle);
            c.wait_status("running");
            let mut args = vec![
                "update",
                "--cpuset-cpus",
                "0",
                "--cpuset-mems",
                "0",
                "--blkio-weight",
                "300",
            ];
            if rt_sched {
                args.extend(["--cpu-rt-period", "100000", "--cpu-rt-runtime", "1000"]);
            }
            args.push(&c.id);
            let out = rt.exec_cmd(&args);
            if !out.success() {
                // Shown with the failure below (libtest prints a failed test's output).
                eprintln!("{name}: update failed: {out:?}");
            }
            let cpuset = controller_dir("cpuset", &c.cgroup);
            let cpu = controller_dir("cpu", &c.cgroup);
            let got = (
                code(&out),
                read_trimmed(&cpuset.join("cpuset.cpus")),
                read_trimmed(&cpuset.join("cpuset.mems")),
                blkio_weight_file(&c.cgroup).map(|f| read_trimmed(&f)),
                rt_sched.then(|| {
                    (
                        read_trimmed(&cpu.join("cpu.rt_period_us")),
                        read_trimmed(&cpu.join("cpu.rt_runtime_us")),
                    )
                }),
            );
            let del = c.delete_force();
            assert!(del.success(), "delete --force: {del:?}");
            (*name, got)
        })
        .collect();
    let (_, runc) = &seen[1];
    for (name, got) in &seen {
        assert_eq!(got, runc, "{name} differs from runc: {seen:#?}");
        assert_eq!(
            (got.0, &*got.1, &*got.2),
            (Some(0), "0", "0"),
            "{name}: {seen:#?}"
        );
        // The weight's file and scale differ (v1 blkio.weight, BFQ's own file, v2
        // io.weight's 1..10000): runc's value, compared above, is the answer.
        if let Some(rt) = &got.4 {
            assert_eq!(rt, &("100000".to_string(), "1000".to_string()), "{name}");
        }
    }
}

/// Under a parent limited to half a CPU (quota 50000 / period 100000), the
/// container's 50000/100000 becomes 25000/50000. Written period first, the kernel
/// sees 50000/50000 (a whole CPU, over the parent's) and says EINVAL; runc then
/// writes the quota and retries the period. cgroup v1 only (v2 writes both at once).
#[test]
fn update_cpu_period_and_quota_under_a_parent_limit() {
    if cgroup_v2() {
        // cpu.max takes "quota period" in one write: there is no order to get wrong.
        return;
    }
    let id = stockade_integration_tests::bundle::unique_id();
    let parent = format!(
        "{}/{id}-limit",
        stockade_integration_tests::bundle::cgroup_parent()
    );
    let bundle = sleeper()
        .edit(|s| {
            s["linux"]["cgroupsPath"] = serde_json::json!(format!("/{parent}/{id}"));
            s["linux"]["resources"]["cpu"] = serde_json::json!({"quota": 50000, "period": 100000});
        })
        .build();
    let cpu = controller_dir("cpu", &parent);
    std::fs::create_dir_all(&cpu).expect("make the limited parent");
    std::fs::write(cpu.join("cpu.cfs_period_us"), "100000").expect("parent period");
    std::fs::write(cpu.join("cpu.cfs_quota_us"), "50000").expect("parent quota");
    let want = (Some(0), ("25000".to_string(), "50000".to_string()));
    let seen: Vec<_> = both()
        .iter()
        .map(|(name, rt)| {
            let c = rt.create_started(&bundle);
            c.wait_status("running");
            let out = rt.exec_cmd(&[
                "update",
                "--cpu-period",
                "50000",
                "--cpu-quota",
                "25000",
                &c.id,
            ]);
            let dir = controller_dir("cpu", &c.cgroup);
            let now = (
                read_trimmed(&dir.join("cpu.cfs_quota_us")),
                read_trimmed(&dir.join("cpu.cfs_period_us")),
            );
            let del = c.delete_force();
            assert!(del.success(), "delete --force: {del:?}");
            (*name, (code(&out), now), out.stderr)
        })
        .collect();
    remove_cgroup_tree(&parent);
    for (name, got, stderr) in &seen {
        assert_eq!(got, &want, "{name} (stderr {stderr}); all: {seen:#?}");
    }
}

/// `update -r` with device rules while the container has a sub-cgroup: the cgroup
/// v1 devices controller refuses a write of `a` (deny or allow all) to a cgroup with
/// children (EINVAL), so only the rules that change may be written, as runc's
/// devices emulator does. runc's update leaves devices alone (exit 0); Stockade
/// applies the new rule.
#[test]
fn update_devices_with_a_sub_cgroup() {
    let bundle = sleeper().build();
    let doc = r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":11,"access":"rwm"}]}"#;
    let v1 = !cgroup_v2();
    assert_parity(&bundle, (Some(0), true), |rt, bundle| {
        let c = rt.create_started(bundle);
        c.wait_status("running");
        make_cgroup_dirs(&c.cgroup, &["sub"]);
        let out = rt.exec_cmd_stdin(&["update", "-r", "-", &c.id], doc.as_bytes());
        let applied = if v1 && !rt.binary().ends_with("runc") {
            let list = read_trimmed(&controller_dir("devices", &c.cgroup).join("devices.list"));
            list.lines().any(|l| l == "c 1:11 rwm") && !list.contains("a *:* rwm")
        } else {
            true
        };
        remove_cgroup_tree(&format!("{}/sub", c.cgroup));
        let del = c.delete_force();
        assert!(del.success(), "delete --force: {del:?}");
        (code(&out), applied)
    });
}

/// Hooks (issue 14): what a hook sees on stdin, and what a failing hook of each
/// kind does to the lifecycle.
mod hooks {
    use super::*;
    use serde_json::{json, Value};
    use std::time::{Duration, Instant};

    /// A hook that appends `NAME <state JSON from stdin>` to `log` in one write.
    fn marker_hook(name: &str, log: &str) -> Value {
        let script = format!("state=$(cat); echo \"{name} $state\" >> {log}");
        json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
    }

    /// Every hook kind gets the caller's bundle (the directory given to `create`)
    /// as `bundle` in the state on its stdin, as from runc. Stockade runs the
    /// container from its hardened copy of the spec; hooks used to get that
    /// directory.
    #[test]
    fn hooks_get_the_callers_bundle_in_their_state() {
        let kinds = [
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        ];
        for (name, rt) in both() {
            let markers = tempfile::tempdir().expect("marker dir");
            let host_log = markers.path().join("hooks.log");
            let host = host_log.to_str().expect("utf-8 temp path").to_string();
            let inside = "/hooks/hooks.log";
            let bundle = sleeper()
                .mount(serde_json::json!({
                    "destination": "/hooks", "type": "bind",
                    "source": markers.path(), "options": ["rbind", "rw"]
                }))
                .edit(|s| {
                    s["hooks"] = json!({
                        "createRuntime": [marker_hook("createRuntime", &host)],
                        "createContainer": [marker_hook("createContainer", &host)],
                        // Runs inside the container: its own sh, through the bind.
                        "startContainer": [marker_hook("startContainer", inside)],
                        "poststart": [marker_hook("poststart", &host)],
                        "poststop": [marker_hook("poststop", &host)],
                    });
                })
                .build();
            let c = rt.create_started(&bundle);
            c.wait_status("running");
            let (id, cgroup, rootfs) = (c.id.clone(), c.cgroup.clone(), c.rootfs.clone());
            let out = c.delete_force();
            assert!(out.success(), "{name}: delete --force: {out:?}");
            assert_nothing_left_behind(&rt, &id, &cgroup, &rootfs);

            let want = std::fs::canonicalize(bundle.path()).expect("canonical bundle");
            let log = std::fs::read_to_string(&host_log).unwrap_or_default();
            for kind in kinds {
                let line = log
                    .lines()
                    .find_map(|l| l.strip_prefix(kind)?.strip_prefix(' '))
                    .unwrap_or_else(|| panic!("{name}: {kind} did not run: {log}"));
                let state: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{name}: {kind} state is not JSON ({e}): {line}"));
                assert_eq!(
                    state["bundle"].as_str().map(std::path::Path::new),
                    Some(want.as_path()),
                    "{name}: {kind} got {state}"
                );
            }
        }
    }

    /// Whether `pid` is a live process (not gone, not a zombie).
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
            .unwrap_or(false)
    }

    /// What one runtime did with a bundle whose `kind` hook fails (`/bin/false`).
    #[derive(Debug)]
    struct Failed {
        /// `create` exited 0.
        created: bool,
        /// `start`'s output, when create succeeded.
        start: Option<CmdOutput>,
        /// The container's own process ran (it writes `/ran` first).
        process_ran: bool,
        /// The container's init still lives afterwards.
        alive_after: bool,
    }

    fn with_failing_hook(rt: &Runtime, kind: &str) -> Failed {
        let bundle = BundleBuilder::new()
            .shell("echo ran > /ran; exec /usr/bin/probe sleep 600")
            .edit(|s| s["hooks"] = json!({kind: [{"path": "/bin/false"}]}))
            .build();
        let ran = bundle.rootfs.join("ran");
        let failed = match rt.create(&bundle) {
            Err(failed) => {
                drop(failed);
                Failed {
                    created: false,
                    start: None,
                    process_ran: ran.exists(),
                    alive_after: false,
                }
            }
            Ok(c) => {
                let start = rt.exec_cmd(&["start", c.id.as_str()]);
                // Give the process time to run, or the init time to die.
                let deadline = Instant::now() + Duration::from_secs(2);
                while Instant::now() < deadline && !ran.exists() {
                    std::thread::sleep(Duration::from_millis(20));
                }
                std::thread::sleep(Duration::from_millis(300));
                let pid = c.pid.expect("init pid");
                let seen = Failed {
                    created: true,
                    start: Some(start),
                    process_ran: ran.exists(),
                    alive_after: alive(pid),
                };
                let del = c.delete_force();
                assert!(del.success(), "delete --force: {del:?}");
                seen
            }
        };
        assert_nothing_left_behind(rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
        failed
    }

    /// runtime-spec lifecycle: a failing createRuntime or createContainer hook fails
    /// `create` and leaves nothing; a failing startContainer hook fails `start` and
    /// the process never runs; a failing poststart hook fails the verb that runs it
    /// and stops the container. In every case nothing of the container keeps
    /// running. (Poststop failures are warnings: `runtime_crash`.)
    ///
    /// runc 1.1 differs in two places the test allows for it alone: it runs
    /// poststart during `create` (opencontainers/runc#1710, so `create` fails and
    /// the process never runs), and after a failing startContainer hook its `start`
    /// exits 0 although the process never ran. Stockade runs poststart at `start`,
    /// after the process started, as runc 1.4 does, and its `start` reports both.
    #[test]
    fn failing_hooks_fail_the_lifecycle_and_stop_the_container() {
        for kind in [
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
        ] {
            for (name, rt) in both() {
                let seen = with_failing_hook(&rt, kind);
                let start_failed = seen.start.as_ref().map(|s| !s.success());
                assert!(!seen.alive_after, "{name} {kind}: {seen:#?}");
                match (kind, name) {
                    ("createRuntime" | "createContainer", _) | ("poststart", "runc") => {
                        assert!(!seen.created, "{name} {kind}: {seen:#?}");
                        assert!(!seen.process_ran, "{name} {kind}: {seen:#?}");
                    }
                    ("startContainer", _) => {
                        assert!(seen.created, "{name} {kind}: {seen:#?}");
                        assert!(!seen.process_ran, "{name} {kind}: {seen:#?}");
                        if name == "stockade" {
                            assert_eq!(start_failed, Some(true), "{name} {kind}: {seen:#?}");
                        }
                    }
                    _ => {
                        // Stockade's poststart runs at start, after the process.
                        assert!(seen.created, "{name} {kind}: {seen:#?}");
                        assert_eq!(start_failed, Some(true), "{name} {kind}: {seen:#?}");
                    }
                }
                if name == "stockade" {
                    if let Some(start) = seen.start.as_ref().filter(|s| !s.success()) {
                        assert!(
                            start.stderr.contains("hook") && start.stderr.contains("exit"),
                            "{kind}: start says which step failed and how: {start:?}"
                        );
                    }
                }
            }
        }
    }
}

/// `process.terminal: true` in a foreground `run` or `exec` without
/// `--console-socket`: the runtime allocates the pty itself and proxies it to its
/// own stdio (issue 14), as runc does.
mod terminal {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::process::Stdio;
    use std::time::Instant;

    /// A pty pair (openpty(3)): `(master, slave)`.
    fn openpty() -> (OwnedFd, OwnedFd) {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two fds into the given ints; the name, termios and
        // winsize pointers may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty just created both fds; nothing else owns them.
        unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
    }

    /// Runs `rt ARGS` with a terminal of ours as its stdin, stdout and stderr,
    /// types `input` into it, and returns its exit code and everything it wrote.
    pub(super) fn on_our_terminal(
        rt: &Runtime,
        args: &[&str],
        input: &[u8],
    ) -> (Option<i32>, String) {
        let (master, slave) = openpty();
        let fd = |f: &OwnedFd| Stdio::from(f.try_clone().expect("dup pty slave"));
        let mut child = rt
            .command(args)
            .stdin(fd(&slave))
            .stdout(fd(&slave))
            .stderr(fd(&slave))
            .spawn()
            .expect("spawn runtime");
        drop(slave);
        let mut writer = std::fs::File::from(master.try_clone().expect("dup master"));
        writer.write_all(input).expect("type into the terminal");
        let mut reader = std::fs::File::from(master);
        let deadline = Instant::now() + TIMEOUT;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let mut pfd = libc::pollfd {
                fd: reader.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, 100) };
            if rc > 0 {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break, // EIO: the runtime closed the terminal.
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                }
            } else if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!(
                    "{args:?} still running; output so far: {}",
                    String::from_utf8_lossy(&out)
                );
            }
        }
        let status = child.wait().expect("wait runtime");
        (status.code(), String::from_utf8_lossy(&out).into_owned())
    }

    /// What `SCRIPT` printed shows stdio on a terminal that is the process's
    /// controlling terminal (`tty_nr` not 0).
    fn assert_on_a_terminal(name: &str, out: &str) {
        assert!(out.contains("stdio-is-a-tty"), "{name}: {out}");
        let tty_nr = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("tty_nr:"))
            .unwrap_or_else(|| panic!("{name}: no tty_nr in {out}"));
        assert_ne!(tty_nr, "0", "{name}: a controlling terminal: {out}");
    }

    /// `tty_nr` (field 7 of /proc/self/stat, proc(5)): the process's controlling
    /// terminal, 0 when it has none.
    const SCRIPT: &str = "read line; echo \"got:$line\"; \
        set -- $(cat /proc/self/stat); echo \"tty_nr:$7\"; \
        [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty";

    /// Foreground `run` of a `terminal: true` container: its process has a
    /// controlling terminal (the runtime's pty), its stdio are that terminal, what
    /// we type reaches it and its output reaches us, and `run` exits with its status.
    #[test]
    fn foreground_run_allocates_a_pty() {
        for (name, rt) in both() {
            let bundle = BundleBuilder::new()
                .args(&["/bin/sh", "-c", &format!("{SCRIPT}; exit 3")])
                .terminal(true)
                .build();
            let path = bundle.path().to_str().expect("utf-8 bundle").to_string();
            let (code, out) =
                on_our_terminal(&rt, &["run", "--bundle", &path, &bundle.id], b"ping\n");
            cleanup_container(&rt, &bundle.id, &bundle.cgroup_relative(), None);
            assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
            assert_eq!(code, Some(3), "{name}: {out}");
            assert!(out.contains("got:ping"), "{name}: {out}");
            assert_on_a_terminal(name, &out);
        }
    }

    /// The same for a foreground `exec --tty` into a running container.
    #[test]
    fn foreground_exec_tty_allocates_a_pty() {
        for (name, rt) in both() {
            let bundle = sleeper().build();
            let c = rt.create_started(&bundle);
            c.wait_status("running");
            let script = format!("{SCRIPT}; exit 4");
            let (code, out) = on_our_terminal(
                &rt,
                &["exec", "--tty", c.id.as_str(), "/bin/sh", "-c", &script],
                b"pong\n",
            );
            let (id, cgroup, rootfs) = (c.id.clone(), c.cgroup.clone(), c.rootfs.clone());
            let del = c.delete_force();
            assert!(del.success(), "{name}: delete --force: {del:?}");
            assert_nothing_left_behind(&rt, &id, &cgroup, &rootfs);
            assert_eq!(code, Some(4), "{name}: {out}");
            assert!(out.contains("got:pong"), "{name}: {out}");
            assert_on_a_terminal(name, &out);
        }
    }

    /// `--console-socket` is for a detached container: a foreground `run` refuses
    /// it (it proxies the terminal itself) and leaves nothing, as runc.
    #[test]
    fn foreground_run_refuses_a_console_socket() {
        for (name, rt) in both() {
            let bundle = BundleBuilder::new()
                .args(&["/bin/true"])
                .terminal(true)
                .build();
            let socket = bundle.path().join("console.sock");
            let out = rt.exec_cmd_timeout(
                &[
                    "run".as_ref(),
                    "--bundle".as_ref(),
                    bundle.path().as_os_str(),
                    "--console-socket".as_ref(),
                    socket.as_os_str(),
                    bundle.id.as_ref(),
                ],
                TIMEOUT,
            );
            cleanup_container(&rt, &bundle.id, &bundle.cgroup_relative(), None);
            assert_eq!(out.code, Some(1), "{name}: {out:?}");
            assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
        }
    }
}

/// `exec --process FILE` whose process says nothing of `user` (issue 14): both
/// runtimes accept the file and run it; a file that names a user gets that user in
/// both. Without one Stockade runs the process as the container's user, never as a
/// root nobody asked for; runc 1.1 runs it as uid 0 (Go's zero value for the field
/// runtime-spec calls REQUIRED), a difference kept on purpose and not asserted.
mod exec_process_user {
    use super::*;
    use serde_json::json;

    #[test]
    fn exec_process_without_user_runs_as_the_containers_user() {
        for (name, rt) in both() {
            let bundle = sleeper()
                .edit(|s| s["process"]["user"] = json!({"uid": 1000, "gid": 1001}))
                .build();
            let file = bundle.path().join("process.json");
            let c = rt.create_started(&bundle);
            c.wait_status("running");
            let exec = |process: serde_json::Value| {
                std::fs::write(&file, process.to_string()).expect("write process.json");
                rt.exec_cmd(&[
                    "exec".as_ref(),
                    "--process".as_ref(),
                    file.as_os_str(),
                    c.id.as_ref(),
                ])
            };
            let args = json!(["/bin/sh", "-c", "id -u; id -g"]);
            let without = exec(json!({"args": args, "cwd": "/", "env": ["PATH=/bin"]}));
            let root = exec(json!({
                "args": args, "cwd": "/", "env": ["PATH=/bin"],
                "user": {"uid": 0, "gid": 0}
            }));
            let (id, cgroup, rootfs) = (c.id.clone(), c.cgroup.clone(), c.rootfs.clone());
            let del = c.delete_force();
            assert!(del.success(), "{name}: delete --force: {del:?}");
            assert_nothing_left_behind(&rt, &id, &cgroup, &rootfs);
            assert!(without.success(), "{name}: {without:?}");
            assert_eq!(root.code, Some(0), "{name}: {root:?}");
            assert_eq!(root.stdout, "0\n0\n", "{name}: {root:?}");
            if name == "stockade" {
                assert_eq!(without.stdout, "1000\n1001\n", "{name}: {without:?}");
            }
        }
    }
}

/// Output shapes scripts and runc's own integration tests read (issue 14): `events`
/// key order, `list` and `ps` tables.
mod cli_shapes {
    use super::*;

    /// `events --stats` prints one line that starts `{"type":"stats","id":ID,"data":`
    /// (runc's `types.Event` field order; tools match the prefix).
    #[test]
    fn events_stats_keys_in_runcs_order() {
        for (name, rt) in both() {
            let bundle = sleeper().build();
            let c = rt.create_started(&bundle);
            c.wait_status("running");
            let out = rt.exec_cmd(&["events", "--stats", c.id.as_str()]);
            let want = format!("{{\"type\":\"stats\",\"id\":\"{}\",\"data\":{{", c.id);
            let del = c.delete_force();
            assert!(del.success(), "{name}: delete --force: {del:?}");
            assert!(out.success(), "{name}: {out:?}");
            assert!(out.stdout.starts_with(&want), "{name}: {}", out.stdout);
            assert_eq!(out.stdout.lines().count(), 1, "{name}: {}", out.stdout);
        }
    }

    /// `list`: runc's header (`ID PID STATUS BUNDLE CREATED OWNER`, as runc's
    /// list.bats matches it), columns padded with spaces (Go's tabwriter: no tabs),
    /// the owner of the container's state (root); the JSON form says `owner` too.
    #[test]
    fn list_table_and_json() {
        for (name, rt) in both() {
            let bundle = sleeper().build();
            let c = rt.create_started(&bundle);
            c.wait_status("running");
            let table = rt.exec_cmd(&["list"]);
            let json = rt.exec_cmd(&["list", "--format", "json"]);
            let pid = c.pid.expect("init pid").to_string();
            let id = c.id.clone();
            let del = c.delete_force();
            assert!(del.success(), "{name}: delete --force: {del:?}");
            assert!(
                table.success() && json.success(),
                "{name}: {table:?} {json:?}"
            );
            assert!(!table.stdout.contains('\t'), "{name}: {:?}", table.stdout);
            let mut lines = table.stdout.lines();
            let header: Vec<&str> = lines
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect();
            assert_eq!(
                header[..6],
                ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
                "{name}: {}",
                table.stdout
            );
            let row: Vec<&str> = lines
                .find(|l| l.starts_with(id.as_str()))
                .unwrap_or_else(|| panic!("{name}: {id} not listed: {}", table.stdout))
                .split_whitespace()
                .collect();
            let bundle_path = bundle.path().to_str().expect("utf-8 bundle");
            assert_eq!(
                row[..4],
                [id.as_str(), &pid, "running", bundle_path],
                "{name}"
            );
            assert_eq!(row[5], "root", "{name}: {}", table.stdout);
            let listed: serde_json::Value =
                serde_json::from_str(&json.stdout).expect("list --format json is JSON");
            let entry = listed
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["id"] == id.as_str())
                .unwrap_or_else(|| panic!("{name}: {id} not in {}", json.stdout));
            assert_eq!(entry["owner"], "root", "{name}: {entry}");
            assert_eq!(entry["status"], "running", "{name}: {entry}");
        }
    }

    /// `ps`: runc runs the host's `ps` with the caller's options (default `-ef`)
    /// and keeps its header and the container's lines, found by the PID column
    /// (runc's ps.bats reads `UID PID PPID C STIME TTY TIME CMD`, and
    /// `PID TTY STAT TIME COMMAND` for `-e -x`); `--format json` is the pid list.
    #[test]
    fn ps_table_is_the_hosts_ps_filtered() {
        for (name, rt) in both() {
            let bundle = sleeper().build();
            let c = rt.create_started(&bundle);
            c.wait_status("running");
            let pid = c.pid.expect("init pid").to_string();
            let default = rt.exec_cmd(&["ps", c.id.as_str()]);
            let options = rt.exec_cmd(&["ps", c.id.as_str(), "-e", "-x"]);
            let json = rt.exec_cmd(&["ps", "--format", "json", c.id.as_str()]);
            let del = c.delete_force();
            assert!(del.success(), "{name}: delete --force: {del:?}");
            for (out, header, pid_column) in [
                (&default, "UID PID PPID C STIME TTY TIME CMD", 1),
                (&options, "PID TTY STAT TIME COMMAND", 0),
            ] {
                assert!(out.success(), "{name}: {out:?}");
                let lines: Vec<&str> = out.stdout.lines().collect();
                assert_eq!(
                    lines
                        .first()
                        .map(|h| h.split_whitespace().collect::<Vec<_>>().join(" ")),
                    Some(header.to_string()),
                    "{name}: {}",
                    out.stdout
                );
                let pids: Vec<&str> = lines[1..]
                    .iter()
                    .filter_map(|l| l.split_whitespace().nth(pid_column))
                    .collect();
                assert_eq!(pids, [pid.as_str()], "{name}: {}", out.stdout);
            }
            assert_eq!(json.stdout.trim(), format!("[{pid}]"), "{name}: {json:?}");
        }
    }

    /// A streaming `events` reports an OOM kill in the container as the line
    /// `{"type":"oom","id":ID}` (runc's `oom` event, no data).
    #[test]
    fn events_reports_oom_kills() {
        use std::io::BufRead;
        for (name, rt) in both() {
            let bundle = BundleBuilder::new()
                .shell("sleep 1; dd if=/dev/zero of=/dev/null bs=256M count=1; exec sleep 600")
                .edit(|s| {
                    s["linux"]["resources"]["memory"] =
                        serde_json::json!({"limit": 32 << 20, "swap": 32 << 20});
                })
                .build();
            let c = rt.create_started(&bundle);
            let mut events = rt
                .command(&["events", "--interval", "1s", c.id.as_str()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn events");
            let stdout = events.stdout.take().expect("piped stdout");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
            let want = format!("{{\"type\":\"oom\",\"id\":\"{}\"}}", c.id);
            let deadline = std::time::Instant::now() + TIMEOUT;
            let mut seen = Vec::new();
            let found = loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(left) {
                    Ok(line) if line == want => break true,
                    Ok(line) => seen.push(line.chars().take(80).collect::<String>()),
                    Err(_) => break false,
                }
            };
            // Our child, by its own pid.
            let _ = events.kill();
            let _ = events.wait();
            let (id, cgroup, rootfs) = (c.id.clone(), c.cgroup.clone(), c.rootfs.clone());
            let del = c.delete_force();
            assert!(del.success(), "{name}: delete --force: {del:?}");
            assert_nothing_left_behind(&rt, &id, &cgroup, &rootfs);
            assert!(found, "{name}: no {want} among {seen:#?}");
        }
    }

    /// `--debug` where runc's debug.bats reads it: without `--log` the debug lines
    /// go to stderr in logrus text (`level=debug`); with `--log` nothing goes to the
    /// output and the file holds them, as text (`level=debug`) or, with
    /// `--log-format json`, as `"level":"debug"`. (runc's own messages, e.g.
    /// "nsexec started", are its implementation's, not a shape.)
    #[test]
    fn debug_output_shape() {
        for (name, rt) in both() {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = dir.path().join("log.out");
            let log_arg = log.to_str().expect("utf-8 path").to_string();
            let cases: [(&[&str], Option<&str>); 4] = [
                (&[], None),
                (&["--log", &log_arg], Some("level=debug")),
                (
                    &["--log", &log_arg, "--log-format", "text"],
                    Some("level=debug"),
                ),
                (
                    &["--log", &log_arg, "--log-format", "json"],
                    Some("\"level\":\"debug\""),
                ),
            ];
            for (flags, in_log) in cases {
                let _ = std::fs::remove_file(&log);
                let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
                let out = std::process::Command::new(rt.binary())
                    .arg("--root")
                    .arg(rt.state_root())
                    .args(flags)
                    .args(["--debug", "run", "--bundle"])
                    .arg(bundle.path())
                    .arg(&bundle.id)
                    .env("STOCKADE_CONFIG", rt.node_config_path())
                    .env("STOCKADE_USERNS_DB", rt.userns_db_path())
                    .stdin(std::process::Stdio::null())
                    .current_dir("/")
                    .output()
                    .expect("spawn runtime");
                cleanup_container(&rt, &bundle.id, &bundle.cgroup_relative(), None);
                assert_nothing_left_behind(
                    &rt,
                    &bundle.id,
                    &bundle.cgroup_relative(),
                    &bundle.rootfs,
                );
                let output = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(out.status.code(), Some(0), "{name} {flags:?}: {output}");
                let logged = std::fs::read_to_string(&log).unwrap_or_default();
                match in_log {
                    None => assert!(output.contains("level=debug"), "{name} {flags:?}: {output}"),
                    Some(needle) => {
                        assert!(
                            !output.contains("level=debug"),
                            "{name} {flags:?}: {output}"
                        );
                        assert!(logged.contains(needle), "{name} {flags:?}: {logged}");
                    }
                }
            }
        }
    }
}
