//! Fault injection (Stockade only): `strace -e inject=...` fails or kills a verb at
//! a side-effecting syscall; afterwards `delete --force` must leave no mount,
//! cgroup, host id range, state dir or process behind.
//!
//! strace traces only the runtime's main process (no `-f`): the failures land where
//! the runtime itself must recover, while its children run on unhindered, which is
//! exactly the race a crash or an interrupted syscall creates on a node.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use stockade_integration_tests::{
    assert_nothing_left_behind, runtime, skip_on_reference, Bundle, BundleBuilder, Runtime,
};

const STRACE: &str = "/usr/bin/strace";

/// strace is a test dependency (scripts/install-deps.sh): missing, the test fails.
fn require_strace() {
    assert!(
        Path::new(STRACE).exists(),
        "{STRACE} is missing: run scripts/install-deps.sh"
    );
}

/// Run `args` under strace with `inject` (an `-e inject=` expression); returns the
/// exit status code (None when killed by a signal).
fn run_injected(rt: &Runtime, inject: &[&str], args: &[&std::ffi::OsStr]) -> Option<i32> {
    let mut wrapper = vec![STRACE.to_string(), "-o".into(), "/dev/null".into()];
    for i in inject {
        if *i == "-f" {
            wrapper.push("-f".into());
        } else {
            wrapper.push("-e".into());
            wrapper.push(format!("inject={i}"));
        }
    }
    rt.command_via(&wrapper, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn strace")
        .code()
}

fn create_args(bundle: &Bundle) -> Vec<std::ffi::OsString> {
    vec![
        "create".into(),
        "--bundle".into(),
        bundle.path().into(),
        bundle.id.clone().into(),
    ]
}

/// After the fault, the failed or killed verb's leftovers must all go with
/// `delete --force` (which must succeed).
fn assert_force_delete_cleans(rt: &Runtime, bundle: &Bundle, what: &str) {
    // A child of the interrupted runtime may still be running on.
    std::thread::sleep(Duration::from_millis(300));
    let out = rt.exec_cmd(&["delete", "--force", bundle.id.as_str()]);
    assert!(
        out.success(),
        "{what}: delete --force failed: {out:?}\nlog: {}",
        rt.log_text()
    );
    assert_nothing_left_behind(rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

/// The create process's channel read from its intermediate child fails (EINTR, as a
/// signal would make it): the create fails, and the child, which goes on to create
/// the cgroup, must not leave it (or itself) behind.
#[test]
fn create_whose_channel_read_fails_leaves_nothing() {
    if skip_on_reference("fault injection targets Stockade's process layout") {
        return;
    }
    require_strace();
    let rt = runtime!(profile = "default");
    for when in ["1", "2", "3"] {
        let bundle = BundleBuilder::new()
            .args(&["/usr/bin/probe", "sleep", "600"])
            .build();
        let args = create_args(&bundle);
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let code = run_injected(&rt, &[&format!("recvmsg:error=EINTR:when={when}")], &args);
        let what = format!("recvmsg #{when} fails");
        assert_ne!(code, Some(0), "{what}: create succeeded");
        // Nothing to delete: the failed create must already have cleaned up.
        std::thread::sleep(Duration::from_millis(300));
        assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
        assert_force_delete_cleans(&rt, &bundle, &what);
    }
}

/// The same failure while the intermediate child is slow to create the cgroup
/// (its mkdir delayed): the create's cleanup runs before the cgroup exists, so the
/// child must be stopped before cleaning up, or it creates the cgroup afterwards.
#[test]
fn create_failing_before_its_child_made_the_cgroup_leaves_nothing() {
    if skip_on_reference("fault injection targets Stockade's process layout") {
        return;
    }
    require_strace();
    let rt = runtime!(profile = "default");
    let bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build();
    let args = create_args(&bundle);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let code = run_injected(
        &rt,
        &[
            "-f",
            "mkdir:delay_enter=500000",
            "recvmsg:error=EINTR:when=1",
        ],
        &args,
    );
    assert_ne!(code, Some(0), "create succeeded");
    std::thread::sleep(Duration::from_millis(1500));
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    assert_force_delete_cleans(&rt, &bundle, "slow cgroup");
}
