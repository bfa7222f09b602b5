//! Idmapped rootfs end to end: an image owned by host root, idmapped onto a target
//! for host range 200000+65536, runs in a container whose root is host 200000 and
//! still looks root-owned (and writable by root) from inside; removing the mount
//! leaves nothing behind.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use stockade::userns::{self, idmap, HostRange, RangeAllocator};
use stockade_integration_tests::{assert_nothing_left_behind, runtime, Bundle, BundleBuilder};

const BLOCK: u32 = 65536;

/// What the container reports about its rootfs, one `key=value` per line.
const SCRIPT: &str = "\
echo root=$(stat -c %u:%g /); \
echo busybox=$(stat -c %u:%g /bin/busybox); \
echo probe=$(stat -c %u:%g /usr/bin/probe); \
echo uid=$(id -u); \
echo uid_map=$(cat /proc/self/uid_map); \
if touch /made-by-root 2>/dev/null; then echo write_root=ok; else echo write_root=denied; fi; \
/usr/bin/probe >/dev/null && echo probe_runs=ok";

fn with_userns(b: BundleBuilder, range: HostRange) -> BundleBuilder {
    b.edit(|spec| {
        spec["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let mapping = json!([{"containerID": 0, "hostID": range.start, "size": range.size}]);
        spec["linux"]["uidMappings"] = mapping.clone();
        spec["linux"]["gidMappings"] = mapping;
    })
    .shell(SCRIPT)
}

/// Point the bundle's config.json at `root` (absolute), as `create` will for the
/// idmapped target.
fn set_root(bundle: &Bundle, root: &Path) {
    let config = bundle.path().join("config.json");
    let mut spec: Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
    spec["root"]["path"] = json!(root);
    fs::write(&config, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
}

fn report(stdout: &str) -> std::collections::BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect()
}

fn mounted_at_or_below(path: &Path) -> Vec<String> {
    let p = path.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&p))
        .collect()
}

fn owner(path: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.uid(), m.gid())
}

/// Removes the idmapped mount even when an assertion fails first.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        // Best effort on the failure path; the test asserts the removal itself.
        let _ = idmap::remove(&self.0);
    }
}

#[test]
fn idmapped_rootfs_looks_root_owned_inside_an_unprivileged_range() {
    let rt = runtime!();
    let db = tempfile::tempdir().unwrap();
    let alloc = RangeAllocator::new(db.path().join("ranges.json"), 200_000, BLOCK * 4, BLOCK);
    let bundle = with_userns(
        BundleBuilder::new(),
        HostRange {
            start: 200_000,
            size: BLOCK,
        },
    )
    .build();
    let range = alloc.allocate(&bundle.id, None).unwrap();
    assert_eq!(
        range,
        HostRange {
            start: 200_000,
            size: BLOCK
        }
    );

    // The image is owned by host root, as an unpacked image is.
    assert_eq!(owner(&bundle.rootfs.join("bin/busybox")), (0, 0));

    // The bundle dir is 0711, so the container's host ids can reach the target.
    let target: PathBuf = bundle.path().join("idmapped-rootfs");
    let (uid, gid) = userns::mappings_for(range, range.size);
    idmap::mount(&bundle.rootfs, &target, &uid, &gid).unwrap();
    let guard = Unmount(target.clone());
    set_root(&bundle, &target);

    // Host view through the idmapped mount: the range's root owns the files.
    assert_eq!(owner(&target), (200_000, 200_000));
    assert_eq!(owner(&target.join("bin/busybox")), (200_000, 200_000));
    assert_eq!(owner(&target.join("usr/bin/probe")), (200_000, 200_000));
    // ...while the image itself is untouched.
    assert_eq!(owner(&bundle.rootfs.join("bin/busybox")), (0, 0));

    let out = rt.run(&bundle).expect_ok(&rt);
    let r = report(&out.stdout);
    assert_eq!(r["uid_map"], "0 200000 65536", "{out:?}");
    assert_eq!(r["uid"], "0", "{out:?}");
    assert_eq!(r["root"], "0:0", "rootfs root inside: {out:?}");
    assert_eq!(r["busybox"], "0:0", "{out:?}");
    assert_eq!(r["probe"], "0:0", "{out:?}");
    assert_eq!(r["write_root"], "ok", "container root owns /: {out:?}");
    assert_eq!(r["probe_runs"], "ok", "{out:?}");

    // A file container root made is host root's on disk, the range's through the mount.
    assert_eq!(owner(&bundle.rootfs.join("made-by-root")), (0, 0));
    assert_eq!(owner(&target.join("made-by-root")), (200_000, 200_000));

    // The container is gone; the idmapped mount is ours until we remove it.
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    assert_eq!(
        mounted_at_or_below(&target),
        vec![target.display().to_string()]
    );
    idmap::remove(&target).unwrap();
    drop(guard);
    assert!(!target.exists());
    assert_eq!(mounted_at_or_below(&target), Vec::<String>::new());
    assert_eq!(mounted_at_or_below(bundle.path()), Vec::<String>::new());
    alloc.release(&bundle.id).unwrap();
    assert_eq!(alloc.lookup(&bundle.id).unwrap(), None);
}

/// Control: the same image and mapping without the idmapped mount — root inside does
/// not own its rootfs (host root is unmapped: the overflow id), so it cannot write /.
#[test]
fn without_idmap_the_image_is_owned_by_the_overflow_id() {
    let rt = runtime!();
    let bundle = with_userns(
        BundleBuilder::new(),
        HostRange {
            start: 200_000,
            size: BLOCK,
        },
    )
    .build();
    let out = rt.run(&bundle).expect_ok(&rt);
    let r = report(&out.stdout);
    let overflow = fs::read_to_string("/proc/sys/kernel/overflowuid").unwrap();
    let overflow = overflow.trim();
    assert_eq!(r["root"], format!("{overflow}:{overflow}"), "{out:?}");
    assert_eq!(r["write_root"], "denied", "{out:?}");
    // Other-readable and -executable files still run.
    assert_eq!(r["probe_runs"], "ok", "{out:?}");
}
