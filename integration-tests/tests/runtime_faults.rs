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
    assert_nothing_left_behind, runtime, skip_on_reference, torn_journal_writes, Bundle,
    BundleBuilder, Runtime,
};

const STRACE: &str = "/usr/bin/strace";

/// `stockade gc` reclaims the leftovers of every state root on the node, so a test
/// that runs it would also reclaim what another test of this file left on purpose
/// (a killed create its own recovery path is about to reclaim). Tests that run gc
/// hold this for writing, the others for reading.
static GC: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn gc_exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    GC.write().unwrap_or_else(|e| e.into_inner())
}

fn gc_shared() -> std::sync::RwLockReadGuard<'static, ()> {
    GC.read().unwrap_or_else(|e| e.into_inner())
}

/// strace is a test dependency (scripts/install-deps.sh): missing, the test fails.
fn require_strace() {
    assert!(
        Path::new(STRACE).exists(),
        "{STRACE} is missing: run scripts/install-deps.sh"
    );
}

/// strace's command line for `inject` (`-e inject=` expressions; `-f` passed as is).
fn strace_wrapper(inject: &[&str]) -> Vec<String> {
    let mut wrapper = vec![STRACE.to_string(), "-o".into(), "/dev/null".into()];
    for i in inject {
        if *i == "-f" {
            wrapper.push("-f".into());
        } else {
            wrapper.push("-e".into());
            wrapper.push(format!("inject={i}"));
        }
    }
    wrapper
}

/// Run `args` under strace with `inject` (an `-e inject=` expression); returns the
/// exit status code (None when killed by a signal).
fn run_injected(rt: &Runtime, inject: &[&str], args: &[&std::ffi::OsStr]) -> Option<i32> {
    let wrapper = strace_wrapper(inject);
    // Null stdio: a child the killed runtime leaks must not hold the test's pipes.
    rt.command_via(&wrapper, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn strace")
        .code()
}

/// Start the runtime with `args` under strace with one `-e inject=` expression,
/// without waiting: its stderr is piped for the caller's message.
fn spawn_injected(rt: &Runtime, inject: &str, args: &[&str]) -> std::process::Child {
    rt.command_via(&strace_wrapper(&[inject]), args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strace")
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

/// The two process layouts of a create: with a user namespace (`default`) the
/// runtime forks libcontainer's intermediate process, which forks the init; without
/// one (`unconfined`) the runtime forks the init itself, which joins its cgroup
/// first. Each profile with the reads of the runtime's channel that its create
/// makes (user namespace mapping, intermediate ready, init ready; init ready).
const LAYOUTS: [(&str, &[&str]); 2] = [("default", &["1", "2", "3"]), ("unconfined", &["1"])];

/// The create process's channel read from its child fails (EINTR, as a signal
/// would make it): the create fails, and the child, which goes on to create the
/// cgroup, must not leave it (or itself) behind.
#[test]
fn create_whose_channel_read_fails_leaves_nothing() {
    let _gc = gc_shared();
    if skip_on_reference("fault injection targets Stockade's process layout") {
        return;
    }
    require_strace();
    for (profile, reads) in LAYOUTS {
        let rt = runtime!(profile = profile);
        for when in reads {
            let bundle = BundleBuilder::new()
                .args(&["/usr/bin/probe", "sleep", "600"])
                .build();
            let args = create_args(&bundle);
            let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
            let code = run_injected(&rt, &[&format!("recvmsg:error=EINTR:when={when}")], &args);
            let what = format!("{profile}: recvmsg #{when} fails");
            assert_ne!(code, Some(0), "{what}: create succeeded");
            // Nothing to delete: the failed create must already have cleaned up.
            std::thread::sleep(Duration::from_millis(300));
            assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
            assert_force_delete_cleans(&rt, &bundle, &what);
        }
    }
}

/// The same failure while the child (the intermediate, or the init forked
/// directly) is slow to create the cgroup (its mkdir delayed): the create's
/// cleanup runs before the cgroup exists, so the child must be stopped before
/// cleaning up, or it creates the cgroup afterwards.
#[test]
fn create_failing_before_its_child_made_the_cgroup_leaves_nothing() {
    let _gc = gc_shared();
    if skip_on_reference("fault injection targets Stockade's process layout") {
        return;
    }
    require_strace();
    for (profile, _) in LAYOUTS {
        let rt = runtime!(profile = profile);
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
        assert_ne!(code, Some(0), "{profile}: create succeeded");
        std::thread::sleep(Duration::from_millis(1500));
        assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
        assert_force_delete_cleans(&rt, &bundle, &format!("{profile}: slow cgroup"));
    }
}

/// Live processes (not zombies) whose command line names `id`: the runtime
/// processes of that container's verbs, and anything they forked.
fn processes_naming(id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if cmdline.contains(id) && !zombie {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

/// `create` killed (-9) while it builds the idmapped rootfs: after its host id range
/// was taken, before any plan records it, while a namespace holder child runs.
/// The holder dies with it, and `delete --force`, `gc` or the next `create` of
/// the id reclaim the range and the mounts.
#[test]
fn create_killed_during_userns_setup_is_reclaimed() {
    let _gc = gc_exclusive();
    if skip_on_reference("fault injection targets Stockade's process layout") {
        return;
    }
    require_strace();
    let rt = runtime!(profile = "default");
    for recovery in ["delete --force", "gc", "create again"] {
        let bundle = BundleBuilder::new()
            .args(&["/usr/bin/probe", "sleep", "600"])
            .build();
        let args = create_args(&bundle);
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        // The create kills namespace holders with kill(2): at admission (probing
        // idmap support) and while it idmaps the rootfs, after the range is taken.
        // Kill the create at each in turn until one lands after the range.
        let mut landed = false;
        for when in 1..=8 {
            let code = run_injected(&rt, &[&format!("kill:signal=KILL:when={when}")], &args);
            assert_eq!(
                code, None,
                "{recovery}: create was not killed at kill #{when}"
            );
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(
                processes_naming(&bundle.id),
                Vec::<String>::new(),
                "{recovery}: a child of the create killed at kill #{when} outlived it"
            );
            if !rt.userns_ranges().is_empty() {
                landed = true;
                break;
            }
            // Killed before any side effect: still nothing may be left.
            assert_force_delete_cleans(&rt, &bundle, &format!("killed at kill #{when}"));
        }
        assert!(
            landed,
            "{recovery}: no kill(2) of create after the range was taken"
        );
        match recovery {
            "delete --force" => {
                rt.exec_cmd(&["delete", "--force", bundle.id.as_str()])
                    .expect_ok(&rt);
            }
            "gc" => {
                let out = rt.exec_cmd(&["gc"]).expect_ok(&rt);
                assert!(out.stdout.contains(&bundle.id), "gc reports it: {out:?}");
            }
            _ => {
                let c = rt.create(&bundle).expect("create after a killed create");
                assert_eq!(rt.userns_ranges().len(), 1, "{:?}", rt.userns_db());
                c.delete_force().expect_ok(&rt);
            }
        }
        assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    }
}

/// Idmapped mounts and a range left by a container whose state is gone (a runtime
/// of an older version killed, a state root wiped by hand): `gc` reclaims them.
#[test]
fn gc_reclaims_idmapped_mounts_and_ranges_of_vanished_containers() {
    let _gc = gc_exclusive();
    if skip_on_reference("gc is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build();
    let c = rt.create(&bundle).expect("create");
    let pid = c.pid.expect("init pid");
    // SAFETY: kill has no memory effects; pid is our container's init.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    c.wait();
    std::fs::remove_dir_all(rt.state_root().join(&bundle.id)).expect("wipe state");
    std::fs::remove_dir_all(rt.plan_dir(&bundle.id)).expect("wipe plan");
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .filter(|m| {
                m.starts_with("/run/stockade/rootfs/")
                    && m.ends_with(&format!("/root/{}", bundle.id))
            })
            .count()
    };
    assert_eq!(mounted(), 1, "the idmapped rootfs outlived the state");
    assert_eq!(rt.userns_ranges().len(), 1);
    let out = rt.exec_cmd(&["gc"]).expect_ok(&rt);
    assert!(out.stdout.contains(&bundle.id), "gc reports it: {out:?}");
    assert_eq!(mounted(), 0, "gc left the idmapped rootfs");
    assert!(rt.userns_ranges().is_empty(), "{:?}", rt.userns_db());
    // The guard removes the cgroup libcontainer made (gc cannot know it).
    drop(c);
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

/// Mount points under the node's idmap tree that belong to container `id`.
fn idmapped_mounts(id: &str) -> Vec<String> {
    let root = format!("/root/{id}");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| m.starts_with("/run/stockade/rootfs/") && m.ends_with(&root))
        .map(str::to_string)
        .collect()
}

/// Whether the (shared) range database has a range for `id`.
fn holds_range(rt: &Runtime, id: &str) -> bool {
    rt.userns_ranges()
        .iter()
        .any(|(owner, _, members)| owner == id || members.iter().any(|m| m == id))
}

/// Kill (-9) `create` of `bundle` in `rt` once it has taken its host id range (at
/// a kill(2) of a namespace holder, as above): a create that leaves its journal,
/// its range and maybe idmapped mounts, and no container.
fn kill_create_after_its_range(rt: &Runtime, bundle: &Bundle) {
    let args = create_args(bundle);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    for when in 1..=8 {
        let code = run_injected(rt, &[&format!("kill:signal=KILL:when={when}")], &args);
        assert_eq!(code, None, "create was not killed at kill #{when}");
        std::thread::sleep(Duration::from_millis(300));
        if holds_range(rt, &bundle.id) {
            return;
        }
        assert_force_delete_cleans(rt, bundle, &format!("killed at kill #{when}"));
    }
    panic!("no kill(2) of create after the range was taken");
}

/// Issue 10, item 10: the idmap tree under /run/stockade/rootfs is node-wide, and
/// each state root's part of it names its owner, so one `gc`, run from any state
/// root, reclaims what killed creates left in every state root — and never
/// anything of a live container.
#[test]
fn gc_from_any_state_root_reclaims_killed_creates_of_every_root() {
    let _gc = gc_exclusive();
    if skip_on_reference("gc is Stockade's") {
        return;
    }
    require_strace();
    let a = runtime!(profile = "default");
    let b = Runtime::beside(&a);
    // A live container in the first root, created before the kills.
    let live_bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build();
    let live = a.create(&live_bundle).expect("create the live container");
    let stale_a = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build();
    let stale_b = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build();
    kill_create_after_its_range(&a, &stale_a);
    kill_create_after_its_range(&b, &stale_b);
    assert_eq!(a.userns_ranges().len(), 3, "{:?}", a.userns_db());

    // gc from a third state root, which made none of it.
    let c = Runtime::beside(&a);
    let out = c.exec_cmd(&["gc"]).expect_ok(&c);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("gc's JSON report");
    let listed = |key: &str, want: &str| {
        report[key]
            .as_array()
            .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(want)))
    };
    for (rt, bundle) in [(&a, &stale_a), (&b, &stale_b)] {
        assert!(listed("reclaimed", &bundle.id), "{}: {report:#}", bundle.id);
        let root = rt.state_root().to_str().unwrap();
        assert!(listed("state_roots", root), "{root}: {report:#}");
        assert!(!holds_range(rt, &bundle.id), "{:?}", rt.userns_db());
        assert_eq!(idmapped_mounts(&bundle.id), Vec::<String>::new());
        assert_nothing_left_behind(rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    }
    assert!(!listed("reclaimed", &live_bundle.id), "{report:#}");
    // The live container kept its range and its idmapped rootfs, and runs.
    assert!(holds_range(&a, &live_bundle.id), "{:?}", a.userns_db());
    assert_eq!(a.userns_ranges().len(), 1, "{:?}", a.userns_db());
    assert_eq!(idmapped_mounts(&live_bundle.id).len(), 1);
    live.start();
    let probe = live.exec(&["/usr/bin/probe"]).expect_ok(&a);
    assert!(probe.stdout.contains("uid_map"), "{}", probe.stdout);
    live.delete_force().expect_ok(&a);
    assert_nothing_left_behind(
        &a,
        &live_bundle.id,
        &live_bundle.cgroup_relative(),
        &live_bundle.rootfs,
    );
}

/// A state root that is gone (a containerd namespace removed, a test's tempdir):
/// its containers can never be addressed again, so `gc` from another root removes
/// their idmapped mounts, their ranges and the root's whole idmap directory.
#[test]
fn gc_removes_the_idmap_dir_of_a_vanished_state_root() {
    let _gc = gc_exclusive();
    if skip_on_reference("gc is Stockade's") {
        return;
    }
    let a = runtime!(profile = "default");
    let gone = Runtime::beside(&a);
    let bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build();
    let c = gone.create(&bundle).expect("create");
    let pid = c.pid.expect("init pid");
    // SAFETY: kill has no memory effects; pid is our container's init.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    c.wait();
    let mounts = idmapped_mounts(&bundle.id);
    assert_eq!(mounts.len(), 1, "the idmapped rootfs");
    let idmap_dir = Path::new(&mounts[0])
        .ancestors()
        .nth(2)
        .expect("/run/stockade/rootfs/<hash>/root/<id>")
        .to_path_buf();
    assert!(
        idmap_dir.join(".owner").is_file(),
        "{}",
        idmap_dir.display()
    );
    std::fs::remove_dir_all(gone.state_root()).expect("wipe the state root");
    assert!(holds_range(&a, &bundle.id));

    let out = a.exec_cmd(&["gc"]).expect_ok(&a);
    assert!(
        out.stdout.contains(idmap_dir.to_str().unwrap()),
        "gc reports the directory: {out:?}"
    );
    assert_eq!(idmapped_mounts(&bundle.id), Vec::<String>::new());
    assert!(!idmap_dir.exists(), "{} is left", idmap_dir.display());
    assert!(!holds_range(&a, &bundle.id), "{:?}", a.userns_db());
    // The guard removes the cgroup libcontainer made (gc cannot know it).
    drop(c);
    assert_nothing_left_behind(&gone, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

/// Which verb the fault hits; the verbs before it ran normally.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Create,
    Start,
    Delete,
}

/// A representative set of kills and failures at side-effecting syscalls of each
/// verb (the create's user-namespace steps are covered above). Whatever the verb
/// was doing, `delete --force` afterwards leaves nothing.
#[test]
fn verbs_killed_or_failed_at_side_effects_leave_nothing_after_delete_force() {
    let _gc = gc_shared();
    if skip_on_reference("fault injection targets Stockade's process layout") {
        return;
    }
    require_strace();
    let rt = runtime!(profile = "default");
    let cases: &[(Stage, &str)] = &[
        // libcontainer's wait for its intermediate child: the init exists, the
        // state says "creating".
        (Stage::Create, "wait4:signal=KILL:when=2"),
        // The state file replaced by rename(2): killed before, the old state stays.
        (Stage::Start, "rename:signal=KILL:when=1"),
        (Stage::Start, "fsync:signal=KILL:when=1"),
        (Stage::Start, "rename:error=EIO:when=1"),
        // delete --force killed while it kills the container, then while it
        // removes the cgroup.
        (Stage::Delete, "kill:signal=KILL:when=1"),
        (Stage::Delete, "rmdir:signal=KILL:when=1"),
        (Stage::Delete, "rmdir:error=EBUSY:when=1"),
    ];
    for &(stage, inject) in cases {
        let what = format!("{stage:?} with {inject}");
        let bundle = BundleBuilder::new()
            .args(&["/usr/bin/probe", "sleep", "600"])
            .build();
        let id = bundle.id.clone();
        let code = match stage {
            Stage::Create => {
                let args = create_args(&bundle);
                let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
                run_injected(&rt, &[inject], &args)
            }
            Stage::Start | Stage::Delete => {
                let c = rt
                    .create(&bundle)
                    .unwrap_or_else(|f| panic!("{what}: create: {f:?}"));
                let verb: Vec<&std::ffi::OsStr> = match stage {
                    Stage::Start => vec!["start".as_ref(), id.as_ref()],
                    _ => {
                        c.start();
                        vec!["delete".as_ref(), "--force".as_ref(), id.as_ref()]
                    }
                };
                let code = run_injected(&rt, &[inject], &verb);
                // From here on the runtime, not the guard, must clean up.
                std::mem::forget(c);
                code
            }
        };
        if inject.contains("signal=KILL") {
            assert_eq!(code, None, "{what}: the kill did not land");
        }
        // An injected error may be retried away (libcgroups retries rmdir): fine.
        std::thread::sleep(Duration::from_millis(300));
        assert_force_delete_cleans(&rt, &bundle, &what);
        assert_eq!(processes_naming(&id), Vec::<String>::new(), "{what}");
    }
    assert!(rt.userns_ranges().is_empty(), "{:?}", rt.userns_db());
}

/// A create killed inside its journal write, between the temporary file and its
/// rename (a create's first rename once the state root has its idmap owner
/// record, which a first container writes): `.ID.PID.tmp`
/// stayed in the journal directory for good, named by no journal (bench/soak.sh
/// counted them). `delete --force` of the id and `gc` remove it (never a live
/// writer's).
#[test]
fn a_create_killed_in_its_journal_write_leaves_no_temporary_file() {
    let _gc = gc_exclusive();
    if skip_on_reference("fault injection targets Stockade's journal") {
        return;
    }
    require_strace();
    for recovery in ["delete --force", "gc"] {
        let rt = runtime!(profile = "default");
        let first = BundleBuilder::new().args(&["/bin/true"]).build();
        let ran = rt.run(&first);
        assert_eq!(ran.code, Some(0), "{recovery}: a first container: {ran:?}");
        let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
        let args = create_args(&bundle);
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let code = run_injected(&rt, &["rename:signal=KILL:when=1"], &args);
        assert_eq!(code, None, "{recovery}: the create was not killed");
        assert!(
            !torn_journal_writes(&rt, &bundle.id).is_empty(),
            "{recovery}: the kill did not land in the journal write"
        );
        let out = match recovery {
            "gc" => rt.exec_cmd(&["gc"]),
            _ => rt.exec_cmd(&["delete", "--force", bundle.id.as_str()]),
        };
        assert!(out.success(), "{recovery}: {out:?}");
        assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    }
}

/// A `delete --force` while a `start` is under way (bench/soak.sh found it: its
/// kill -9 of a backgrounded start reached the shell, and the start ran on): the
/// delete removed the container's directory file by file while start wrote its
/// state there, failed with ENOTEMPTY and left the whole container behind. start
/// now holds the id's lock, as delete does: the delete waits for the start (held
/// here at its state write), then removes everything.
#[test]
fn delete_force_during_a_start_waits_for_it_and_leaves_nothing() {
    let _gc = gc_shared();
    if skip_on_reference("fault injection targets Stockade's start") {
        return;
    }
    require_strace();
    let rt = runtime!(profile = "default");
    let bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build();
    let c = rt
        .create(&bundle)
        .unwrap_or_else(|failed| panic!("create failed: {:?}\nlog: {}", failed.out, rt.log_text()));
    let start = spawn_injected(
        &rt,
        "rename,renameat,renameat2:delay_enter=2000000",
        &["start", bundle.id.as_str()],
    );
    // The start has signalled the init and waits at its state write.
    std::thread::sleep(Duration::from_millis(500));
    let deleted = rt.exec_cmd(&["delete", "--force", bundle.id.as_str()]);
    let started = start.wait_with_output().expect("wait for start");
    assert_eq!(
        started.status.code(),
        Some(0),
        "start, overtaken by the delete: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    assert!(deleted.success(), "delete --force: {deleted:?}");
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    drop(c);
}

/// A started container is killed (SIGKILL) by a `kill` run under strace with
/// `kill_inject`, which holds back or fails its state write after the signal;
/// `delete` deletes the container meanwhile. The kill did what it was asked: it
/// must exit 0, and nothing may be left.
fn kill_racing_a_delete(kill_inject: &str, delete: impl FnOnce(&Runtime, &str)) {
    let _gc = gc_shared();
    require_strace();
    let rt = runtime!();
    let bundle = BundleBuilder::new().args(&["sleep", "1000"]).build();
    let c = rt.create_started(&bundle);
    let kill = spawn_injected(&rt, kill_inject, &["kill", bundle.id.as_str(), "KILL"]);
    assert_eq!(
        c.wait(),
        Some(128 + libc::SIGKILL),
        "the init died of the kill"
    );
    delete(&rt, &bundle.id);
    let out = kill.wait_with_output().expect("wait for kill");
    assert_eq!(
        out.status.code(),
        Some(0),
        "kill failed after its signal landed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    drop(c);
}

/// A `kill` whose signal ended the init, and whose container was deleted before the
/// kill recorded the stop (containerd deletes a pod sandbox as soon as its exit is
/// published, racing StopPodSandbox's own kill): the kill did what it was asked and
/// exits 0, as runc (which records nothing after signalling) does. strace holds the
/// kill's state write (its rename) back until the delete is done.
#[test]
fn kill_whose_container_is_deleted_meanwhile_succeeds() {
    if skip_on_reference("fault injection targets Stockade's kill") {
        return;
    }
    kill_racing_a_delete("rename,renameat,renameat2:delay_enter=3000000", |rt, id| {
        let deleted = rt.exec_cmd(&["delete", id]);
        assert!(deleted.success(), "{deleted:?}");
    });
}

/// The same race caught half-way: a delete of the stopped container (it holds the
/// id's lock) has begun removing the container's directory file by file when the
/// kill writes its state there, so the write fails (ENOENT) while the directory
/// still exists. Seen through containerd's CRI, which deletes a task as soon as
/// its exit is published while StopContainer's kill is still returning: the kill
/// failed with "failed to write container state file ... No such file or
/// directory", which containerd reports as an unknown error. The kill waits for
/// the delete in progress, then finds the container gone: its signal landed.
#[test]
fn kill_whose_container_a_delete_is_removing_succeeds() {
    if skip_on_reference("fault injection targets Stockade's kill") {
        return;
    }
    // The kill's state write fails as the delete's removal makes it fail, 2 s after
    // the signal: by then the delete below holds the lock and is removing files,
    // each unlinked 1.5 s late, so the directory is still there at the failure.
    kill_racing_a_delete(
        "rename,renameat,renameat2:error=ENOENT:delay_enter=2000000",
        |rt, id| {
            let delete = spawn_injected(rt, "unlinkat:delay_enter=1500000", &["delete", id]);
            // The kill's verdict is checked after this returns; the delete must
            // finish (and succeed) first, as a node's would.
            let deleted = delete.wait_with_output().expect("wait for delete");
            assert_eq!(
                deleted.status.code(),
                Some(0),
                "delete: {}",
                String::from_utf8_lossy(&deleted.stderr)
            );
        },
    );
}
