//! The container's root filesystem as Kubernetes images and pods shape it (issue 7):
//! `linux.rootfsPropagation` applied like runc, observed in the container's own
//! `/proc/self/mountinfo`.
//!
//! Stockade (like youki) applies the requested type to the container's copy of the
//! host mounts before pivot_root, as runc does, and again to the new `/` after it,
//! which is what these tests observe. Debian's runc 1.1.5 does only the first
//! step, so its `/` shows no shared/unbindable tag here: not a reference for this
//! file.

use stockade_integration_tests::{
    assert_nothing_left_behind, runtime, runtime::parse_report, skip_on_reference, BundleBuilder,
    Runtime,
};

/// The optional fields (`shared:N`, `master:N`, ...) of the mountinfo line for `/`.
fn root_propagation(mountinfo: &str) -> Vec<String> {
    let line = mountinfo
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no mountinfo line for / in {mountinfo}"));
    let (left, _) = line.split_once(" - ").expect("mountinfo separator");
    left.split(' ')
        .skip(6)
        .map(|f| f.split(':').next().unwrap_or_default().to_string())
        .collect()
}

/// `/`'s propagation tags as the container sees them with `rootfsPropagation` = `value`.
fn root_tags(value: &str) -> Vec<String> {
    root_tags_in(&runtime!(), value)
}

fn root_tags_in(rt: &Runtime, value: &str) -> Vec<String> {
    let bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "cat", "/proc/self/mountinfo"])
        .edit(|s| s["linux"]["rootfsPropagation"] = value.into())
        .build();
    let out = rt.run(&bundle).expect_ok(rt);
    assert_nothing_left_behind(rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    let report = parse_report(&out.stdout);
    assert_eq!(report["ok"], true, "{report}");
    root_propagation(report["text"].as_str().unwrap_or_default())
}

#[test]
fn rootfs_propagation_recursive_values_apply_like_runc() {
    let shared = root_tags("rshared");
    assert!(
        shared.contains(&"shared".to_string()),
        "rshared: {shared:?}"
    );
    let private = root_tags("rprivate");
    assert!(private.is_empty(), "rprivate: {private:?}");
    let slave = root_tags("rslave");
    assert!(!slave.contains(&"shared".to_string()), "rslave: {slave:?}");
}

#[test]
fn rootfs_propagation_plain_values_apply_like_runc() {
    let shared = root_tags("shared");
    assert!(shared.contains(&"shared".to_string()), "shared: {shared:?}");
    let private = root_tags("private");
    assert!(private.is_empty(), "private: {private:?}");
    let slave = root_tags("slave");
    assert!(!slave.contains(&"shared".to_string()), "slave: {slave:?}");
    let unbindable = root_tags("unbindable");
    assert!(
        unbindable.contains(&"unbindable".to_string()),
        "unbindable: {unbindable:?}"
    );
}

/// What containerd sends for a `HostToContainer` volume, under the shipped `default`
/// profile (user namespace, idmapped rootfs; the profile refuses `rshared`).
#[test]
fn rootfs_propagation_rslave_under_default_profile() {
    if skip_on_reference("Stockade profiles") {
        return;
    }
    let tags = root_tags_in(&runtime!(profile = "default"), "rslave");
    assert!(!tags.contains(&"shared".to_string()), "rslave: {tags:?}");
    let tags = root_tags_in(&runtime!(profile = "default"), "rprivate");
    assert!(tags.is_empty(), "rprivate: {tags:?}");
}

/// A bundle whose rootfs is one static binary (no /proc, /dev, /sys, /tmp, /run,
/// /var): every mount point of the spec and of the profile's injected tmpfs is
/// created, under the shipped `default` profile (user namespace, idmapped rootfs).
#[test]
fn minimal_rootfs_runs_under_default_profile() {
    if skip_on_reference("Stockade profiles") {
        return;
    }
    let rt = runtime!(profile = "default");
    let script = "/busybox cat /proc/self/uid_map; \
        for d in /proc /dev /dev/pts /dev/shm /sys /tmp /var/tmp /run; do \
          test -d $d || echo missing $d; done; \
        for d in /tmp /var/tmp /run; do echo w > $d/f && /busybox cat $d/f; done";
    let bundle = BundleBuilder::new()
        .without_rootfs()
        .args(&["/busybox", "sh", "-c", script])
        .build();
    std::fs::create_dir(&bundle.rootfs).unwrap();
    std::fs::copy("/bin/busybox", bundle.rootfs.join("busybox"))
        .expect("busybox-static is installed");
    let out = rt.run(&bundle).expect_ok(&rt);
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    assert!(!out.stdout.contains("missing"), "{}", out.stdout);
    assert_eq!(
        out.stdout.lines().filter(|l| *l == "w").count(),
        3,
        "{}",
        out.stdout
    );
    let uid_map = out.stdout.lines().next().unwrap_or_default();
    let host: u64 = uid_map
        .split_whitespace()
        .nth(1)
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("uid_map: {uid_map:?}"));
    assert!(host >= 1_000_000, "container root is host uid {host}");
}
