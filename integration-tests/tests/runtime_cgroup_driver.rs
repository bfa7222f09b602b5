//! The cgroup driver (runc's `--systemd-cgroup`), observed from inside the container.
//!
//! - cgroupfs (default): a kubelet-style systemd path `slice:prefix:name` is refused
//!   naming `linux.cgroupsPath`, never made into a directory with colons at the root.
//! - systemd: an absolute path is refused (as runc refuses it). On a host where
//!   systemd is PID 1 with a unified cgroup v2 hierarchy (the VM lane's systemd
//!   boot), a kubelet path lands in `<prefix>-<name>.scope` inside the expanded pod
//!   slice, its memory limit applies and `delete` removes the scope. Anywhere else
//!   the driver is refused at admission, naming what is missing, with nothing left.

use std::path::{Path, PathBuf};

use serde_json::json;
use stockade_integration_tests::{
    assert_nothing_left_behind, assert_refused, runtime, skip_on_reference, Bundle, BundleBuilder,
    Runtime,
};

const SYSTEMD: &str = "--systemd-cgroup";

/// A kubelet pod uid, escaped as kubelet escapes it in slice names (`-` → `_`).
fn pod_uid() -> String {
    let id = stockade_integration_tests::bundle::unique_id();
    id.replace('-', "_")
}

/// A bundle whose cgroupsPath is kubelet's (systemd driver) form for pod `pod`.
fn kubelet_bundle(pod: &str, edit: impl FnOnce(BundleBuilder) -> BundleBuilder) -> Bundle {
    let mut b = edit(BundleBuilder::new());
    let path = format!(
        "kubepods-besteffort-pod{pod}.slice:cri-containerd:{}",
        b.id()
    );
    b.spec_mut()["linux"]["cgroupsPath"] = json!(path);
    b.build()
}

/// `create` with `extra` global flags must fail with exit 1 naming one of `needles`,
/// and leave nothing behind (no state, and no cgroup named after the colon path:
/// `cgroup_relative` is the colon path itself).
fn assert_create_refused(rt: &Runtime, bundle: &Bundle, extra: &[&str], needles: &[&str]) {
    let extra: Vec<&std::ffi::OsStr> = extra.iter().map(std::ffi::OsStr::new).collect();
    let failed = match rt.create_with_args(bundle, &bundle.id, &extra) {
        Ok(c) => panic!("create succeeded ({c:?}); expected a refusal naming {needles:?}"),
        Err(failed) => failed,
    };
    assert_refused(rt, &failed.out, needles);
    assert_nothing_left_behind(rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

fn systemd_v2_host() -> bool {
    Path::new("/run/systemd/system").is_dir()
        && Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

#[test]
fn systemd_path_without_the_systemd_driver_is_refused() {
    if skip_on_reference("runc reads a colon path as a cgroupfs directory") {
        return;
    }
    let rt = runtime!();
    let bundle = kubelet_bundle(&pod_uid(), |b| b);
    assert_create_refused(
        &rt,
        &bundle,
        &[],
        &["linux.cgroupsPath", "--systemd-cgroup"],
    );
}

#[test]
fn systemd_driver_refuses_an_absolute_path() {
    let rt = runtime!();
    // The bundle's default path is the absolute /<parent>/<id>.
    let bundle = BundleBuilder::new().build();
    assert_create_refused(&rt, &bundle, &[SYSTEMD], &["slice:prefix:name"]);
}

/// Where the driver cannot work, create says why before anything is made.
#[test]
fn systemd_driver_is_refused_where_it_cannot_work() {
    if systemd_v2_host() {
        eprintln!("systemd with cgroup v2 here: covered by systemd_driver_places_kubelet_path_in_its_scope");
        return;
    }
    if skip_on_reference("runc's refusal is worded differently") {
        return;
    }
    let rt = runtime!();
    let bundle = kubelet_bundle(&pod_uid(), |b| b);
    let needle = if Path::new("/run/systemd/system").is_dir() {
        "cgroup v2 hierarchy only"
    } else {
        "needs systemd"
    };
    assert_create_refused(&rt, &bundle, &[SYSTEMD], &[needle]);
}

#[test]
fn systemd_driver_places_kubelet_path_in_its_scope() {
    if !systemd_v2_host() {
        eprintln!(
            "no systemd PID 1 with cgroup v2 here: covered by \
             systemd_driver_is_refused_where_it_cannot_work (the VM lane's systemd boot runs this)"
        );
        return;
    }
    let rt = runtime!();
    let pod = pod_uid();
    // No cgroup namespace: the process sees its real cgroup path.
    let bundle = kubelet_bundle(&pod, |b| {
        b.memory_limit(48 << 20)
            .edit(|s| {
                let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
                ns.retain(|n| n["type"] != "cgroup");
            })
            .shell(
                "cg=$(sed -n 's/^0:://p' /proc/self/cgroup); echo \"cgroup=$cg\"; \
                 for f in /sys/fs/cgroup$cg/memory.max /sys/fs/cgroup/memory.max; do \
                 [ -r $f ] && { echo \"max=$(cat $f)\"; break; }; done; sleep 300",
            )
    });
    let scope = PathBuf::from(format!(
        "/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{pod}.slice/cri-containerd-{}.scope",
        bundle.id
    ));
    let extra = [std::ffi::OsStr::new(SYSTEMD)];
    let c = rt
        .create_with_args(&bundle, &bundle.id, &extra)
        .unwrap_or_else(|f| panic!("create: {:?}\nlog: {}", f.out, rt.log_text()));
    assert!(
        scope.is_dir(),
        "no scope {}\nlog: {}",
        scope.display(),
        rt.log_text()
    );
    let state = c.state();
    assert_eq!(state["cgroupDriver"], "systemd", "{state}");
    c.start();
    let want_cgroup = format!(
        "cgroup=/{}",
        scope.strip_prefix("/sys/fs/cgroup").unwrap().display()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !c.stdout().contains("max=") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = c.stdout();
    assert!(
        out.lines().any(|l| l == want_cgroup),
        "want {want_cgroup}; inside: {out}"
    );
    assert!(
        out.lines().any(|l| l == format!("max={}", 48u64 << 20)),
        "memory limit inside: {out}"
    );
    let host_max = std::fs::read_to_string(scope.join("memory.max")).unwrap();
    assert_eq!(host_max.trim(), (48u64 << 20).to_string());
    // Later verbs reach the scope through the driver recorded at create.
    let pid = c.pid.expect("init pid");
    assert!(c.ps().contains(&i64::from(pid)), "ps lists the init {pid}");
    // An exec'd process joins the same scope (systemd attaches it to the unit).
    let out = c.exec(&["/bin/cat", "/proc/self/cgroup"]).expect_ok(&rt);
    assert!(
        out.stdout
            .lines()
            .any(|l| l == format!("0::{}", &want_cgroup["cgroup=".len()..])),
        "exec'd process in the scope: {}",
        out.stdout
    );
    let resources = json!({"memory": {"limit": 80u64 << 20}});
    let out = rt.exec_cmd_stdin(
        &["update", "--resources", "-", &c.id],
        resources.to_string().as_bytes(),
    );
    assert!(out.success(), "update: {out:?}\nlog: {}", rt.log_text());
    let host_max = std::fs::read_to_string(scope.join("memory.max")).unwrap();
    assert_eq!(host_max.trim(), (80u64 << 20).to_string(), "update applied");
    let out = c.delete_force();
    assert!(out.success(), "delete --force: {out:?}");
    for _ in 0..100 {
        if !scope.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!scope.exists(), "delete left the scope {}", scope.display());
}

/// `features` says the systemd driver exists; `state` says which driver a
/// container was created with.
#[test]
fn features_and_state_name_the_cgroup_driver() {
    if skip_on_reference("cgroupDriver in state is Stockade's") {
        return;
    }
    let rt = runtime!();
    let out = rt.exec_cmd(&["features"]).expect_ok(&rt);
    let features: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(features["linux"]["cgroup"]["systemd"], true, "{features}");
    let bundle = BundleBuilder::new().shell("sleep 60").build();
    let c = rt
        .create(&bundle)
        .unwrap_or_else(|f| panic!("create: {:?}\nlog: {}", f.out, rt.log_text()));
    let state = c.state();
    assert_eq!(state["cgroupDriver"], "cgroupfs", "{state}");
    let out = c.delete_force();
    assert!(out.success(), "delete --force: {out:?}");
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}
