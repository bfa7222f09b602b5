//! The cgroup driver (runc's `--systemd-cgroup`), observed from inside the container.
//!
//! - cgroupfs (default): a kubelet-style systemd path `slice:prefix:name` is refused
//!   naming `linux.cgroupsPath`, never made into a directory with colons at the root.
//! - systemd: an absolute path is refused (as runc refuses it). On a host where
//!   systemd is PID 1 (the VM lane's systemd boots: cgroup v2, and v1 hybrid) a
//!   kubelet path lands in `<prefix>-<name>.scope` inside the expanded pod slice (on
//!   v1 in every controller: systemd's own and those the runtime joins), its limits
//!   apply (and are systemd's unit properties, so a `daemon-reload` keeps them) and
//!   `delete` removes the unit and its cgroups. Without systemd the driver is refused
//!   at admission, naming what is missing, with nothing left.

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

fn systemd_host() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn unified_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
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

/// Without systemd, create says why before anything is made.
#[test]
fn systemd_driver_is_refused_without_systemd() {
    if systemd_host() {
        eprintln!(
            "systemd is PID 1 here: covered by systemd_driver_places_kubelet_path_in_its_scope*"
        );
        return;
    }
    if skip_on_reference("runc's refusal is worded differently") {
        return;
    }
    let rt = runtime!();
    let bundle = kubelet_bundle(&pod_uid(), |b| b);
    assert_create_refused(&rt, &bundle, &[SYSTEMD], &["needs systemd"]);
}

#[test]
fn systemd_driver_places_kubelet_path_in_its_scope() {
    if !systemd_host() || !unified_host() {
        eprintln!(
            "no systemd PID 1 with cgroup v2 here: the VM lane's systemd boot runs this \
             (v1: systemd_driver_places_kubelet_path_in_its_scope_on_cgroup_v1)"
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

/// The v1 controllers a container joins (libcgroups' v1 manager, and systemd's
/// name=systemd hierarchy), as `/proc/<pid>/cgroup` names them.
const V1_CONTROLLERS: &[&str] = &[
    "name=systemd",
    "memory",
    "cpu",
    "cpuacct",
    "blkio",
    "pids",
    "devices",
    "cpuset",
    "freezer",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
];

/// The lines of a `/proc/<pid>/cgroup` text whose controllers include one of
/// [`V1_CONTROLLERS`] and whose path is not `want`.
fn v1_lines_elsewhere(proc_cgroup: &str, want: &str) -> Vec<String> {
    proc_cgroup
        .lines()
        .filter(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next(), parts.next(), parts.next());
            ctrls.is_some_and(|c| c.split(',').any(|c| V1_CONTROLLERS.contains(&c)))
                && path != Some(want)
        })
        .map(str::to_owned)
        .collect()
}

fn systemctl(args: &[&str]) -> std::process::Output {
    std::process::Command::new("systemctl")
        .args(args)
        .output()
        .expect("run systemctl")
}

fn read_trim(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// cgroup v1 (legacy or hybrid) with systemd as PID 1, as runc's v1 systemd driver:
/// systemd creates the scope in the controllers it manages, the runtime joins the
/// same path in the others; limits are written and are the unit's properties.
#[test]
fn systemd_driver_places_kubelet_path_in_its_scope_on_cgroup_v1() {
    if !systemd_host() || unified_host() {
        eprintln!(
            "no systemd PID 1 with cgroup v1 here: the VM lane's systemd v1 boot runs this \
             (without systemd: systemd_driver_is_refused_without_systemd)"
        );
        return;
    }
    let rt = runtime!();
    let pod = pod_uid();
    let bundle = kubelet_bundle(&pod, |b| {
        b.memory_limit(48 << 20)
            .pids_limit(77)
            .edit(|s| {
                let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
                ns.retain(|n| n["type"] != "cgroup");
            })
            .shell("cat /proc/self/cgroup; echo done; sleep 300")
    });
    let unit = format!("cri-containerd-{}.scope", bundle.id);
    let rel = format!(
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{pod}.slice/{unit}"
    );
    // Every mounted v1 hierarchy the container is placed in.
    let dirs: Vec<PathBuf> = [
        "systemd",
        "memory",
        "cpu,cpuacct",
        "blkio",
        "pids",
        "devices",
        "cpuset",
        "freezer",
    ]
    .iter()
    .map(|c| PathBuf::from("/sys/fs/cgroup").join(c))
    .filter(|m| m.is_dir())
    .map(|m| m.join(rel.trim_start_matches('/')))
    .collect();
    assert!(dirs.len() >= 7, "v1 hierarchies mounted: {dirs:?}");
    let extra = [std::ffi::OsStr::new(SYSTEMD)];
    let c = rt
        .create_with_args(&bundle, &bundle.id, &extra)
        .unwrap_or_else(|f| panic!("create: {:?}\nlog: {}", f.out, rt.log_text()));
    for d in &dirs {
        assert!(d.is_dir(), "no {}\nlog: {}", d.display(), rt.log_text());
    }
    let shown = systemctl(&["show", "--property=ActiveState,Slice,Delegate", &unit]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    for want in [
        "ActiveState=active".to_string(),
        format!("Slice=kubepods-besteffort-pod{pod}.slice"),
        "Delegate=yes".to_string(),
    ] {
        assert!(
            shown.lines().any(|l| l == want),
            "{unit}: want {want} in {shown}"
        );
    }
    assert_eq!(c.state()["cgroupDriver"], "systemd");
    c.start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !c.stdout().contains("done") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = c.stdout();
    assert!(out.contains("done"), "inside: {out}");
    let elsewhere = v1_lines_elsewhere(&out, &rel);
    assert!(
        elsewhere.is_empty(),
        "not in {rel}: {elsewhere:?}\ninside: {out}"
    );
    assert!(
        V1_CONTROLLERS[..8]
            .iter()
            .all(|c| out.contains(&format!(":{c}:"))
                || out.contains(&format!(",{c}:"))
                || out.contains(&format!(":{c},"))),
        "inside: {out}"
    );
    // Limits read back, in the cgroup and as the unit's properties.
    let memory = PathBuf::from("/sys/fs/cgroup/memory").join(rel.trim_start_matches('/'));
    let pids = PathBuf::from("/sys/fs/cgroup/pids").join(rel.trim_start_matches('/'));
    assert_eq!(
        read_trim(&memory.join("memory.limit_in_bytes")),
        (48u64 << 20).to_string()
    );
    assert_eq!(read_trim(&pids.join("pids.max")), "77");
    // An exec'd process joins the scope in every controller too.
    let exec = c.exec(&["/bin/cat", "/proc/self/cgroup"]).expect_ok(&rt);
    let elsewhere = v1_lines_elsewhere(&exec.stdout, &rel);
    assert!(
        elsewhere.is_empty(),
        "exec'd process not in {rel}: {elsewhere:?}"
    );
    let resources = json!({"memory": {"limit": 80u64 << 20}});
    let out = rt.exec_cmd_stdin(
        &["update", "--resources", "-", &c.id],
        resources.to_string().as_bytes(),
    );
    assert!(out.success(), "update: {out:?}\nlog: {}", rt.log_text());
    assert_eq!(
        read_trim(&memory.join("memory.limit_in_bytes")),
        (80u64 << 20).to_string()
    );
    let prop = systemctl(&["show", "--value", "--property=MemoryLimit", &unit]);
    assert_eq!(
        String::from_utf8_lossy(&prop.stdout).trim(),
        (80u64 << 20).to_string()
    );
    // systemd re-applies its units' properties on daemon-reload: the limits stay,
    // and so do the device rules (an allow-list, not "a *:* rwm").
    let devices = PathBuf::from("/sys/fs/cgroup/devices").join(rel.trim_start_matches('/'));
    let before = read_trim(&devices.join("devices.list"));
    assert!(
        !before.lines().any(|l| l.starts_with("a ")),
        "devices.list: {before}"
    );
    assert!(systemctl(&["daemon-reload"]).status.success());
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after = read_trim(&devices.join("devices.list"));
    assert_eq!(after, before, "devices.list after daemon-reload");
    assert_eq!(
        read_trim(&memory.join("memory.limit_in_bytes")),
        (80u64 << 20).to_string()
    );
    assert_eq!(read_trim(&pids.join("pids.max")), "77");
    let out = c.delete_force();
    assert!(out.success(), "delete --force: {out:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while dirs.iter().any(|d| d.exists()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let left: Vec<_> = dirs.iter().filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "delete left {left:?}");
    let state = systemctl(&["show", "--value", "--property=LoadState,ActiveState", &unit]);
    let state = String::from_utf8_lossy(&state.stdout);
    assert!(
        !state.lines().any(|l| l == "active" || l == "loaded"),
        "{unit} after delete: {state}"
    );
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
