//! Malformed or hostile bundles: `create` exits with status 1, its stderr or JSON
//! log names the offending field, and nothing is left behind (no state dir, cgroup,
//! process or mount).

use serde_json::json;
use stockade_integration_tests::{
    assert_nothing_left_behind, assert_refused, runtime, skip_on_reference, Bundle, BundleBuilder,
    Runtime,
};

/// `create` must be refused with exit status 1, naming one of `needles`.
fn assert_create_refused(rt: &Runtime, bundle: &Bundle, needles: &[&str]) {
    let failed = match rt.create(bundle) {
        Ok(c) => panic!(
            "create of a bad bundle succeeded ({c:?}); config:\n{}",
            std::fs::read_to_string(bundle.path().join("config.json")).unwrap_or_default()
        ),
        Err(failed) => failed,
    };
    assert_refused(rt, &failed.out, needles);
    assert_nothing_left_behind(rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

#[test]
fn malformed_config_json() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .raw_config("{\"ociVersion\": \"1.0.2\", bad")
        .build();
    assert_create_refused(&rt, &bundle, &["config.json", "json", "invalid character"]);
}

#[test]
fn missing_root() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .edit(|s| {
            s.as_object_mut().unwrap().remove("root");
        })
        .build();
    assert_create_refused(&rt, &bundle, &["root"]);
}

#[test]
fn missing_rootfs_directory() {
    let rt = runtime!();
    let bundle = BundleBuilder::new().without_rootfs().build();
    assert_create_refused(&rt, &bundle, &["rootfs", "root.path", "root"]);
}

#[test]
fn root_path_naming_a_missing_directory() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .edit(|s| s["root"]["path"] = json!("no-such-rootfs"))
        .build();
    assert_create_refused(&rt, &bundle, &["no-such-rootfs", "root"]);
}

/// A relative `root.path` is valid OCI: it is resolved against the bundle, never
/// against the runtime's cwd (the harness always runs the runtime from `/`).
#[test]
fn relative_root_path_resolves_against_the_bundle() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .edit(|s| s["root"]["path"] = json!("./rootfs"))
        .shell("echo relative-ok")
        .build();
    let out = rt.run(&bundle).expect_ok(&rt);
    assert_eq!(out.stdout, "relative-ok\n");
}

#[test]
fn duplicate_container_id() {
    let rt = runtime!();
    let first = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build();
    let c = rt.create(&first).expect("first create");
    let second = BundleBuilder::new().build();
    let failed = rt
        .create_with_id(&second, &first.id)
        .expect_err("a second container with the same id must be refused");
    // The id belongs to the first container: the failure's cleanup must not touch it.
    let out = failed.disarm();
    assert_refused(&rt, &out, &["exist", &first.id]);
    // The first container is intact, and the second left nothing of its own.
    assert_eq!(c.status(), "created");
    assert_nothing_left_behind(&rt, "no-such-id", &second.cgroup_relative(), &second.rootfs);

    let (id, cgroup, rootfs) = (c.id.clone(), c.cgroup.clone(), c.rootfs.clone());
    assert!(c.delete_force().success());
    assert_nothing_left_behind(&rt, &id, &cgroup, &rootfs);
}

#[test]
fn user_namespace_with_empty_uid_mapping() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .user_namespace(100_000, 65_536)
        .edit(|s| {
            s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 0}])
        })
        .build();
    assert_create_refused(&rt, &bundle, &["uidMappings", "mapping"]);
}

#[test]
fn unwritable_state_root() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let state_root = file.join("state");
    let rt = Runtime::with_state_root(Some(state_root.clone()));
    stockade_integration_tests::rootfs::set_probe_binary(env!("CARGO_BIN_EXE_stockade-probe"));
    let bundle = BundleBuilder::new().build();
    assert_create_refused(
        &rt,
        &bundle,
        &[&state_root.to_string_lossy(), "a-file", "root"],
    );
    assert!(!state_root.exists());
}

/// Stockade refuses a mount whose destination climbs out with `..`; runc instead
/// resolves it inside the rootfs, so this is Stockade-specific.
#[test]
fn mount_destination_escaping_the_rootfs() {
    if skip_on_reference("runc resolves `..` inside the rootfs instead of refusing") {
        return;
    }
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .mount(
            json!({"destination": "/../../../tmp/stockade-escape", "type": "tmpfs",
                      "source": "tmpfs", "options": ["nosuid", "nodev"]}),
        )
        .build();
    assert_create_refused(&rt, &bundle, &["mounts", "destination", ".."]);
}

/// Whatever a runtime does with `..` in a mount destination, the mount must never
/// land outside the rootfs (CVE-2021-30465 class). Holds for runc too.
#[test]
fn mount_destination_never_lands_outside_the_rootfs() {
    let rt = runtime!();
    let outside = tempfile::tempdir().unwrap();
    let escape = outside.path().join("escape");
    std::fs::create_dir(&escape).unwrap();
    let depth = "/..".repeat(16);
    let bundle = BundleBuilder::new()
        .mount(
            json!({"destination": format!("{depth}{}", escape.display()),
                      "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}),
        )
        .shell("echo marker > /tmp/x; true")
        .build();
    let _ = rt.run(&bundle);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(&escape.to_string_lossy().into_owned()),
        "a container mount appeared on the host at {}",
        escape.display()
    );
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

/// Stockade never drops a seccomp rule it cannot express; runc skips unknown names.
#[test]
fn seccomp_unknown_syscall_name() {
    if skip_on_reference("runc ignores unknown syscall names") {
        return;
    }
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .seccomp(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO"}]
        }))
        .build();
    assert_create_refused(&rt, &bundle, &["no_such_syscall_xyz"]);
}

/// `SCMP_ACT_NOTIFY` without `listenerPath`: nowhere to send the listener, so the
/// spec is refused naming the field (runc fails such a create as well, with its own
/// words; a filter with a listener runs: `seccomp_notify.rs`).
#[test]
fn seccomp_notify_action_without_listener_path_is_refused() {
    if skip_on_reference("runc's message differs") {
        return;
    }
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .seccomp(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }))
        .build();
    assert_create_refused(&rt, &bundle, &["linux.seccomp.listenerPath: required"]);
}

/// An `architectures` list without the native one is not bad input: as libseccomp
/// (runc) does, the native architecture is filtered anyway, so the rules apply (here:
/// keyctl fails with EXDEV) and the foreign ABI can never pass (issue 14; it used
/// to be refused).
#[test]
fn seccomp_architectures_without_the_native_one_still_filter_natively() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "syscall", "keyctl"])
        .seccomp(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_S390X"],
            "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV}]
        }))
        .build();
    let report = rt.run(&bundle).expect_ok(&rt).report();
    assert_eq!(report["errno"], libc::EXDEV, "{report}");
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

/// The rootfs gets the forbidden-source rules of bind mounts: `root.path: "/"`
/// (or a `rootfs -> /` symlink) would show the container the host's /etc/shadow.
#[test]
fn host_root_as_rootfs_is_refused() {
    if skip_on_reference("runc runs a container on the host's root") {
        return;
    }
    let rt = runtime!(profile = "default");
    let direct = BundleBuilder::new()
        .edit(|s| s["root"]["path"] = json!("/"))
        .build();
    assert_create_refused(&rt, &direct, &["root.path"]);
    let link = BundleBuilder::new()
        .edit(|s| s["root"]["path"] = json!("host"))
        .build();
    std::os::unix::fs::symlink("/", link.path().join("host")).expect("symlink");
    assert_create_refused(&rt, &link, &["root.path"]);
    let proc_root = BundleBuilder::new()
        .edit(|s| s["root"]["path"] = json!("/proc/1/root"))
        .build();
    assert_create_refused(&rt, &proc_root, &["root.path"]);
}

/// Whatever the profile, a container never gets the runtime's own state as its
/// rootfs or a volume: it could rewrite plans and ranges.
#[test]
fn runtime_state_as_rootfs_or_volume_is_refused() {
    if skip_on_reference("the state layout is Stockade's") {
        return;
    }
    let rt = runtime!();
    std::fs::create_dir_all(rt.state_root()).expect("state root");
    let root = BundleBuilder::new()
        .edit(|s| s["root"]["path"] = json!("/"))
        .build();
    assert_create_refused(&rt, &root, &["root.path", "runtime's own state"]);
    let state = rt.state_root().to_path_buf();
    let volume = BundleBuilder::new()
        .mount(json!({
            "destination": "/state", "type": "bind",
            "source": state, "options": ["rbind", "ro"]
        }))
        .build();
    assert_create_refused(&rt, &volume, &["mounts[", "runtime's own state"]);
}

/// containerd writes config.json on one line: "line 1 column 1234" names nothing,
/// so the error names the JSON path of the bad value.
#[test]
fn type_error_names_the_json_path() {
    if skip_on_reference("runc names the Go field, not the JSON path") {
        return;
    }
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .user_namespace(1_000_000, 65536)
        .edit(|s| s["linux"]["uidMappings"][0]["size"] = json!("65536"))
        .build();
    assert_create_refused(&rt, &bundle, &["linux.uidMappings[0].size"]);
}

/// An `oomScoreAdj` outside -1000..1000 is refused by the kernel (EINVAL) when the
/// runtime writes it; the error names the field, the file and the errno, once
/// (it used to end in a bare "io error").
#[test]
fn oom_score_adj_out_of_range_names_field_and_errno() {
    if skip_on_reference("the error text is Stockade's") {
        return;
    }
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .edit(|s| s["process"]["oomScoreAdj"] = json!(1001))
        .args(&["true"])
        .build();
    let failed = match rt.create(&bundle) {
        Ok(c) => panic!("oomScoreAdj 1001 was admitted ({c:?})"),
        Err(failed) => failed,
    };
    let err = &failed.out.stderr;
    assert_eq!(failed.out.code, Some(1), "{err}");
    for needle in [
        "process.oomScoreAdj",
        "/proc/self/oom_score_adj",
        "Invalid argument",
    ] {
        assert_eq!(err.matches(needle).count(), 1, "{needle} once in: {err}");
    }
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

/// A limit the kernel refuses (a CFS quota under its 1 ms minimum: EINVAL) fails
/// the create naming the cgroup file and the errno, once, and leaves nothing:
/// with a user namespace (the intermediate process joins the cgroup) and without
/// one (the init joins it itself as its first step, libcontainer patch 40), there
/// also with a prestart hook (the init's error reaches the runtime while it waits
/// for the hook request; it used to read "received unexpected message").
#[test]
fn a_limit_the_kernel_refuses_names_the_cgroup_file_and_errno() {
    if skip_on_reference("the error text is Stockade's") {
        return;
    }
    for (profile, hook) in [
        ("unconfined", false),
        ("unconfined", true),
        ("default", false),
    ] {
        let rt = runtime!(profile = profile);
        let bundle = BundleBuilder::new()
            .edit(|s| {
                s["linux"]["resources"]["cpu"] = json!({"quota": 100, "period": 100000});
                if hook {
                    s["hooks"] = json!({"prestart": [{"path": "/bin/true"}]});
                }
            })
            .args(&["true"])
            .build();
        let what = format!("{profile}, hook {hook}");
        let failed = match rt.create(&bundle) {
            Ok(c) => panic!("{what}: a quota of 100 us was admitted ({c:?})"),
            Err(failed) => failed,
        };
        let err = &failed.out.stderr;
        assert_eq!(failed.out.code, Some(1), "{what}: {err}");
        let file = ["cpu.cfs_quota_us", "cpu.max"]
            .into_iter()
            .find(|f| err.contains(f))
            .unwrap_or_else(|| panic!("{what}: no cgroup file named: {err}"));
        for needle in [file, "Invalid argument"] {
            assert_eq!(
                err.matches(needle).count(),
                1,
                "{what}: {needle} once in: {err}"
            );
        }
        assert!(!err.contains("unexpected message"), "{what}: {err}");
        assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    }
}
