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
