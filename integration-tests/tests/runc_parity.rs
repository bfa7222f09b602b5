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
/// must exist: a missing one fails the exec and is not created (runc).
#[test]
fn exec_into_a_missing_sub_cgroup_fails_and_makes_nothing() {
    let bundle = sleeper().build();
    assert_parity(&bundle, (false, false, true), |rt, bundle| {
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
        (missing.success(), made, in_there)
    });
}

/// Makes the cgroups `names` (in order, relative to `rel`) in every hierarchy that
/// has `rel`, ready to be joined.
fn make_cgroup_dirs(rel: &str, names: &[&str]) {
    for dir in runtime::cgroup_dirs(rel) {
        for name in names {
            let sub = dir.join(name);
            std::fs::create_dir(&sub).expect("make a sub-cgroup");
            // A new v1 cpuset cgroup has no cpus or mems: nothing could join it.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = std::fs::read_to_string(dir.join(file)) {
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
    let have: u64 = read_trimmed(&file).parse().ok()?;
    if have < 10000 {
        std::fs::write(&file, "10000").expect("give the test parent an RT budget");
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
