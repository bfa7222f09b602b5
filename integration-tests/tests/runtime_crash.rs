//! Crash safety and races (Stockade only): concurrent verbs on one id, a runtime
//! killed or failing half-way, hooks that fail. Whatever happens, the container that
//! won keeps everything it made, and `delete --force` leaves no mount, cgroup, host
//! id range, state dir or process behind.

use std::fs;
use stockade_integration_tests::profiles::parse_id_map;
use stockade_integration_tests::{
    assert_nothing_left_behind, runtime, skip_on_reference, Bundle, BundleBuilder, Container,
    Runtime,
};

fn assert_clean(rt: &Runtime, bundle: &Bundle) {
    assert_nothing_left_behind(rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

/// `(host start, size)` of the mapping of container id 0 of a live init.
fn host_root(c: &Container<'_>) -> (u64, u64) {
    let pid = c.pid.expect("init pid");
    let map = fs::read_to_string(format!("/proc/{pid}/uid_map")).expect("read uid_map");
    let maps = parse_id_map(&map);
    assert_eq!(maps.len(), 1, "one mapping expected: {map:?}");
    assert_eq!(maps[0].0, 0, "{map:?}");
    (maps[0].1, maps[0].2)
}

/// Mount points under the node's idmap tree that belong to container `id`.
fn idmapped_mounts(id: &str) -> Vec<String> {
    let root = format!("/root/{id}");
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| m.starts_with("/run/stockade/rootfs/") && m.ends_with(&root))
        .map(str::to_string)
        .collect()
}

/// A container that waits in its init under `default` (own user namespace, idmapped
/// rootfs, a host id range).
fn sleeper() -> BundleBuilder {
    BundleBuilder::new().args(&["/usr/bin/probe", "sleep", "600"])
}

#[test]
fn parallel_creates_of_one_id_one_wins_and_keeps_everything() {
    if skip_on_reference("user namespace ranges are Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    for round in 0..3 {
        let bundle = sleeper().build();
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| rt.create(&bundle))).collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("create thread"))
                .collect()
        });
        let mut winners = Vec::new();
        let mut losers = Vec::new();
        for r in results {
            match r {
                Ok(c) => winners.push(c),
                // The id belongs to the winner: a loser's guard must not delete it.
                Err(failed) => losers.push(failed.disarm()),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one create of {} must win; losers: {losers:#?}\nlog: {}",
            bundle.id,
            rt.log_text()
        );
        for out in &losers {
            assert_eq!(out.code, Some(1), "{out:?}");
            assert!(
                out.stderr.contains("already exists"),
                "a loser must say why: {out:?}"
            );
        }
        let c = winners.pop().expect("one winner");
        // Nothing of the winner was taken away by a loser's cleanup.
        let (start, size) = host_root(&c);
        let db = rt.userns_ranges();
        assert_eq!(db.len(), 1, "round {round}: {db:?}");
        assert_eq!(db[0].1, start, "the winner's range is recorded: {db:?}");
        assert_eq!(db[0].2, vec![bundle.id.clone()], "{db:?}");
        assert_eq!(idmapped_mounts(&bundle.id).len(), 1, "idmapped rootfs");
        assert!(rt.plan_dir(&bundle.id).join("config.json").is_file());
        // A later container never gets the winner's range.
        let other = sleeper().build();
        let o = rt.create(&other).expect("create another container");
        let (o_start, o_size) = host_root(&o);
        assert!(
            o_start + o_size <= start || start + size <= o_start,
            "ranges overlap: {start}+{size} and {o_start}+{o_size}"
        );
        // And the winner still works end to end.
        c.start();
        let out = c.exec(&["/usr/bin/probe"]).expect_ok(&rt);
        assert!(out.stdout.contains("uid_map"), "{}", out.stdout);
        o.delete_force().expect_ok(&rt);
        assert_clean(&rt, &other);
        c.delete_force().expect_ok(&rt);
        assert_clean(&rt, &bundle);
    }
    assert!(rt.userns_ranges().is_empty(), "{:?}", rt.userns_db());
}

/// The same id in two state roots (two containerd namespaces) are two containers:
/// they must never share a host id range.
#[test]
fn one_id_in_two_state_roots_gets_two_ranges() {
    if skip_on_reference("user namespace ranges are Stockade's") {
        return;
    }
    let a = runtime!(profile = "default");
    let b = Runtime::beside(&a);
    let bundle = sleeper().build();
    let ca = a.create(&bundle).expect("create in the first root");
    // Its own bundle (and cgroup), the same id.
    let other = sleeper().build();
    let cb = b
        .create_with_id(&other, &bundle.id)
        .expect("create in the second root");
    let (sa, na) = host_root(&ca);
    let (sb, nb) = host_root(&cb);
    assert!(
        sa + na <= sb || sb + nb <= sa,
        "ranges overlap: {sa}+{na} and {sb}+{nb}"
    );
    cb.delete_force().expect_ok(&b);
    // The first container keeps its range.
    assert_eq!(host_root(&ca), (sa, na));
    let db = a.userns_ranges();
    assert_eq!(db.len(), 1, "{db:?}");
    assert_eq!(db[0].1, sa, "{db:?}");
    ca.delete_force().expect_ok(&a);
    assert_clean(&a, &bundle);
    assert_nothing_left_behind(&b, &bundle.id, &other.cgroup_relative(), &other.rootfs);
    assert!(a.userns_ranges().is_empty(), "{:?}", a.userns_db());
}

/// A runtime killed while writing `state.json` used to leave it empty; whatever the
/// state file holds, `delete --force` removes the container and everything it had.
#[test]
fn delete_force_removes_a_container_whose_state_is_unreadable() {
    if skip_on_reference("runc refuses to delete a container it cannot load") {
        return;
    }
    let rt = runtime!(profile = "default");
    for broken in ["", "{\"id\": \"trunc"] {
        let bundle = sleeper().build();
        let c = rt.create(&bundle).expect("create");
        c.start();
        let state = rt.state_root().join(&bundle.id).join("state.json");
        fs::write(&state, broken).expect("break the state");
        let out = rt.exec_cmd(&["delete", "--force", bundle.id.as_str()]);
        assert!(
            out.success(),
            "delete --force failed: {out:?}\nlog: {}",
            rt.log_text()
        );
        assert_clean(&rt, &bundle);
        drop(c);
    }
    assert!(rt.userns_ranges().is_empty(), "{:?}", rt.userns_db());
}

/// runtime-spec: a failing poststop hook is logged and the remaining hooks and the
/// deletion go on; it used to make every `delete` fail, forever.
#[test]
fn failing_poststop_hook_is_logged_and_delete_continues() {
    let rt = runtime!();
    let markers = tempfile::tempdir().expect("marker dir");
    let marker = markers.path().join("second-hook-ran");
    let bundle = BundleBuilder::new()
        .args(&["/bin/true"])
        .edit(|s| {
            s["hooks"] = serde_json::json!({"poststop": [
                {"path": "/bin/false"},
                {"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", marker.display())]},
            ]});
        })
        .build();
    let c = rt.create(&bundle).expect("create");
    c.start();
    assert_eq!(c.wait(), Some(0));
    let out = c.delete();
    assert!(out.success(), "delete: {out:?}\nlog: {}", rt.log_text());
    assert!(marker.exists(), "the hook after the failing one ran too");
    if !skip_on_reference("the log format is Stockade's") {
        assert!(
            rt.log_text().contains("poststop"),
            "the failure is logged: {}",
            rt.log_text()
        );
    }
    assert_clean(&rt, &bundle);
}

/// `exec --process` with `"args": []` is the caller's error, named, never a panic.
#[test]
fn exec_process_with_empty_args_is_refused_not_a_panic() {
    let rt = runtime!();
    let bundle = sleeper().build();
    let c = rt.create(&bundle).expect("create");
    c.start();
    let process = bundle.path().join("empty-args.json");
    fs::write(
        &process,
        serde_json::json!({
            "args": [], "cwd": "/", "env": ["PATH=/bin:/usr/bin"],
            "user": {"uid": 0, "gid": 0}
        })
        .to_string(),
    )
    .expect("write process.json");
    let out = rt.exec_cmd(&[
        "exec".as_ref(),
        "--process".as_ref(),
        process.as_os_str(),
        bundle.id.as_ref(),
    ]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    assert!(out.stderr.contains("args"), "names the field: {out:?}");
    // The container is unharmed.
    c.exec(&["/usr/bin/probe"]).expect_ok(&rt);
    c.delete_force().expect_ok(&rt);
    assert_clean(&rt, &bundle);
}

/// A reader that went away (`stockade list | head -0`, a closed pipe) makes the
/// runtime exit quietly, never panic.
#[test]
fn output_verbs_exit_quietly_on_a_closed_stdout() {
    let rt = runtime!();
    for verb in [&["features"][..], &["list"], &["list", "--format", "json"]] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = rt
            .command(verb)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("spawn");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{verb:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{verb:?}: {stderr}");
    }
}

/// A create that fails inside libcontainer (a prestart hook failing, a mount the
/// kernel refuses) leaves no cgroup, no state and no "stopped" container in `list`.
#[test]
fn failed_creates_leave_no_cgroup_and_no_stopped_container() {
    let rt = runtime!();
    type Edit = fn(&mut serde_json::Value);
    let failing: [(&str, Edit); 3] = [
        ("prestart hook", |s| {
            s["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/false"}]})
        }),
        (
            "createRuntime hook",
            |s| s["hooks"] = serde_json::json!({"createRuntime": [{"path": "/bin/false"}]}),
        ),
        ("mount error", |s| {
            s["mounts"]
                .as_array_mut()
                .expect("mounts")
                .push(serde_json::json!({
                    "destination": "/mnt", "type": "no-such-filesystem", "source": "none"
                }))
        }),
    ];
    for (what, edit) in failing {
        let bundle = BundleBuilder::new().args(&["/bin/true"]).edit(edit).build();
        let failed = match rt.create(&bundle) {
            Ok(c) => panic!("{what}: create succeeded ({c:?})"),
            Err(f) => f,
        };
        assert_eq!(failed.out.code, Some(1), "{what}: {:?}", failed.out);
        // Give a straggling child of the failed create time to do damage.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let list = rt.exec_cmd(&["list", "--quiet"]).expect_ok(&rt);
        assert!(
            !list.stdout.contains(&bundle.id),
            "{what}: the failed container is listed: {}",
            list.stdout
        );
        assert_clean(&rt, &bundle);
    }
}
