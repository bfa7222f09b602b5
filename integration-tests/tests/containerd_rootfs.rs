//! Minimal images through containerd (issue 7, defect 1): an image whose rootfs is
//! one static binary — no `/proc`, `/dev`, `/sys`, `/tmp`, `/run`, `/var` — as the
//! upstream pause image and distroless images are. Run with `ctr run` through our
//! shim and through containerd's runc shim driving `stockade`, under the shipped
//! `default` profile (user namespace, overlay rebuilt over idmapped lower layers,
//! read-only root, profile-injected tmpfs on `/tmp`, `/var/tmp`, `/run`).
//! Every mount point must be made, and the image's layers keep their owners and
//! content.
//!
//! Root only. Every container lives in cgroup `<parent>/<id>`; after each test no
//! shim, mount, task dir, runtime state, host id range or cgroup is left.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Output;

use stockade_integration_tests::containerd::{
    cgroup_parent, remove_test_cgroups, runtime_binary, shim_dir, skip_unless_stockade,
    test_cgroups, Containerd, RUNTIME,
};
use stockade_integration_tests::image::oci_archive;
use stockade_integration_tests::profiles::parse_id_map;

const MINIMAL_IMAGE: &str = "docker.io/library/stockade-minimal:test";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Imports an image whose only file is a static busybox at `/busybox`.
fn import_minimal_image(c: &Containerd) {
    let work = c.dir().join("minimal-image");
    let rootfs = work.join("rootfs");
    fs::create_dir_all(&rootfs).unwrap();
    fs::copy("/bin/busybox", rootfs.join("busybox")).expect("busybox-static is installed");
    let archive = work.join("minimal.tar");
    oci_archive(&rootfs, MINIMAL_IMAGE, &["/busybox", "sh"], &archive).unwrap();
    let out = c.ctr(&["images", "import", archive.to_str().unwrap()]);
    assert!(out.status.success(), "import: {}", text(&out.stderr));
}

/// Owner, mode and entries of every overlayfs snapshot directory (the image's
/// layers), to prove running a container changed none of them.
fn layers(c: &Containerd) -> BTreeMap<PathBuf, (u32, u32, u32, Vec<String>)> {
    let snapshots = c
        .root()
        .join("io.containerd.snapshotter.v1.overlayfs/snapshots");
    let mut out = BTreeMap::new();
    for e in fs::read_dir(&snapshots).into_iter().flatten().flatten() {
        let fs_dir = e.path().join("fs");
        let Ok(meta) = fs::metadata(&fs_dir) else {
            continue;
        };
        let mut entries: Vec<String> = fs::read_dir(&fs_dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        out.insert(fs_dir, (meta.uid(), meta.gid(), meta.mode(), entries));
    }
    out
}

/// What the container prints: its uid map, the mount points it found missing, and
/// whether the writable tmpfs mounts take a write.
const SCRIPT: &str = "/busybox cat /proc/self/uid_map; \
    for d in /proc /dev /dev/pts /dev/shm /sys /tmp /var/tmp /run; do \
      test -d $d || echo missing $d; done; \
    for d in /tmp /var/tmp /run; do echo w > $d/f && /busybox cat $d/f; done; \
    /busybox grep Seccomp: /proc/self/status";

fn check_output(out: &Output) {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    assert!(!stdout.contains("missing"), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| *l == "w").count(), 3, "{stdout}");
    let map = parse_id_map(stdout.lines().next().unwrap_or_default());
    assert_eq!(map.len(), 1, "{stdout}");
    assert_eq!(map[0].0, 0, "{stdout}");
    assert!(
        map[0].1 >= 1_000_000,
        "container root is host uid {}: {stdout}",
        map[0].1
    );
    assert!(stdout.contains("Seccomp:\t2"), "{stdout}");
}

fn assert_all_clean(c: &Containerd, id: &str) {
    c.assert_clean();
    let left = test_cgroups(id);
    remove_test_cgroups(id);
    assert!(left.is_empty(), "cgroups left: {left:?}");
}

fn run(c: &Containerd, id: &str, runtime: &[String]) -> Output {
    let mut args: Vec<String> = vec!["run".into(), "--rm".into()];
    args.extend(runtime.iter().cloned());
    args.extend([
        "--cgroup".into(),
        format!("{}/{id}", cgroup_parent()),
        MINIMAL_IMAGE.into(),
        id.into(),
        "/busybox".into(),
        "sh".into(),
        "-c".into(),
        SCRIPT.into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    c.ctr(&args)
}

fn minimal_image_runs(runtime: impl Fn(&Containerd) -> Vec<String>, name: &str) {
    let c = Containerd::start().expect("containerd");
    import_minimal_image(&c);
    let before = layers(&c);
    assert!(
        before.values().any(|(.., e)| e == &["busybox".to_string()]),
        "the image layer holds only busybox: {before:?}"
    );
    let id = format!("minimal-{name}-{}", std::process::id());
    let out = run(&c, &id, &runtime(&c));
    check_output(&out);
    assert_all_clean(&c, &id);
    // The container's own snapshot (its upper dir) may linger until containerd's
    // garbage collection; the image layers that existed before must be unchanged.
    let after = layers(&c);
    for (dir, was) in &before {
        assert_eq!(
            after.get(dir),
            Some(was),
            "image layer {} changed",
            dir.display()
        );
    }
}

#[test]
fn minimal_image_runs_under_default_profile_through_our_shim() {
    if skip_unless_stockade("the default profile's user namespace is Stockade's") {
        return;
    }
    minimal_image_runs(
        |c| {
            vec![
                "--runtime".into(),
                RUNTIME.into(),
                "--runtime-config-path".into(),
                c.runtime_config().display().to_string(),
            ]
        },
        "shim",
    );
}

#[test]
fn minimal_image_runs_under_default_profile_through_the_runc_shim() {
    if skip_unless_stockade("the default profile's user namespace is Stockade's") {
        return;
    }
    minimal_image_runs(
        |c| {
            vec![
                "--runtime".into(),
                "io.containerd.runc.v2".into(),
                "--runc-binary".into(),
                runtime_binary(),
                "--runc-root".into(),
                c.runc_shim_root().display().to_string(),
            ]
        },
        "runc",
    );
}

/// `stockade features` advertises idmapped mounts, so containerd 2.x sends a
/// `hostUsers: false` pod's rootfs as an overlay with `uidmap=`/`gidmap=` options;
/// the shim mounts those over idmapped lower layers (unit-tested on a real overlay
/// in shim/src/rootfs.rs), holding the idmapping's user namespace with a re-exec of
/// itself. That holder mode waits for stdin to close, prints nothing and exits 0.
#[test]
fn features_advertise_idmap_and_the_shim_can_hold_an_idmapping() {
    if skip_unless_stockade("the features document and the shim are Stockade's") {
        return;
    }
    let out = std::process::Command::new(runtime_binary())
        .arg("features")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let features: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        features["linux"]["mountExtensions"]["idmap"]["enabled"], true,
        "{features}"
    );

    // Spawned as the shim spawns it: in a new user namespace, whose mapping is then
    // written from here.
    let mut cmd = std::process::Command::new(shim_dir().join("containerd-shim-stockade-v2"));
    cmd.arg("--stockade-userns-holder")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only makes the
    // unshare(2) system call.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut holder = cmd.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        holder.try_wait().unwrap().is_none(),
        "the holder exited before its stdin closed"
    );
    let proc_dir = PathBuf::from(format!("/proc/{}", holder.id()));
    fs::write(proc_dir.join("uid_map"), "0 1230000 65536\n").expect("write the holder's uid_map");
    assert_eq!(
        parse_id_map(&fs::read_to_string(proc_dir.join("uid_map")).unwrap()),
        [(0, 1_230_000, 65536)]
    );
    assert_ne!(
        fs::metadata(proc_dir.join("ns/user")).unwrap().ino(),
        fs::metadata("/proc/self/ns/user").unwrap().ino(),
        "the holder has its own user namespace"
    );
    drop(holder.stdin.take());
    let out = holder.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}
