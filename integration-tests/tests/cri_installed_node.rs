//! A node set up the way an operator sets one up, end to end (issue 11): the real
//! installer (`deploy/installer/stockade-node-install.sh install`, `HOST_ROOT=/`) on
//! a node without a containerd config, then `containerd --config
//! /etc/containerd/config.toml` on the config it wrote — byte for byte the shipped
//! `deploy/containerd/config-v2.toml`, never patched — with every default path:
//! `/var/lib/containerd`, `/run/containerd`, `/opt/cni/bin`, `/etc/cni/net.d`, the
//! binaries in `/usr/local/bin`, the node config and profiles in `/etc/stockade`, the
//! audit log in `/var/log/stockade`, no `STOCKADE_*` variable anywhere.
//!
//! The node is this machine seen through a private mount namespace (`unshare -m`,
//! propagation private): `/etc`, `/opt`, `/var/lib`, `/var/log` and `/run` are
//! overlays whose upper dirs are in the test's temp dir (so mount points can be made
//! without touching the host), and each directory the node uses is an empty temp dir
//! bound over its default path, so containerd, the shims and the runtime find
//! nothing of the host's (nor of other tests') containerd, CNI, Stockade state or
//! network namespace files. The test reads and checks those temp dirs from outside.
//!
//! The node's environment, as a cluster would provide it: a CNI network in
//! `/etc/cni/net.d` (the test-only plugin that gives each pod a link-local dummy
//! `eth0`: no bridge, no address range shared with anyone) and the pause image under
//! the name containerd's config defaults to (`sandbox_image`, read from `containerd
//! config dump`): one static `/pause`. Pods are driven through the CRI as a kubelet
//! drives them, under the shipped handlers `stockade`, `stockade-baseline` and
//! `stockade-restricted`. Root only.

mod cri_common;

use std::{
    fs,
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};
use stockade_integration_tests::installer::{repo_root, stage_artifacts};

use cri_common::{
    assert_confined, container_config, is_root, logged_report, pod_config, root_range, unique,
    CriClient, PodShape,
};
use k8s_cri::v1::LinuxContainerResources;
use serde_json::Value;
use stockade_integration_tests::containerd::{
    cni_plugin_source, remove_leftover_tasks, skip_unless_stockade, CNI_PLUGIN, IMAGE,
    WORKLOAD_IMAGE,
};
use stockade_integration_tests::runtime::parse_report;

/// Parents of the node's directories, overlaid so the mount points below can be
/// made privately (node path, name of its overlay dirs).
const OVERLAID: &[(&str, &str)] = &[
    ("/etc", "etc"),
    ("/opt", "opt"),
    ("/var/lib", "var-lib"),
    ("/var/log", "var-log"),
    ("/run", "run"),
];

/// The node's directories: each an empty temp dir bound over its default path.
const NODE_DIRS: &[&str] = &[
    "/etc/containerd",
    "/etc/stockade",
    "/etc/cni/net.d",
    "/opt/cni/bin",
    "/opt/containerd",
    "/usr/local/bin",
    "/var/lib/containerd",
    "/var/lib/stockade",
    "/var/lib/node_exporter",
    "/var/log/stockade",
    "/run/containerd",
    "/run/stockade",
    "/run/netns",
];

/// What a systemd unit's processes get (containerd's own unit sets no PATH).
const SYSTEMD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The installed node: containerd running on the installer's config in a private
/// mount namespace.
struct Node {
    dir: tempfile::TempDir,
    containerd: Option<Child>,
}

impl Node {
    /// Where node path `p` (one of [`NODE_DIRS`] or below) lives on the host.
    fn host(&self, p: &str) -> PathBuf {
        let p = match p.strip_prefix("/var/run/") {
            Some(rest) => format!("/run/{rest}"),
            None => p.to_string(),
        };
        assert!(
            NODE_DIRS
                .iter()
                .any(|d| p == *d || p.starts_with(&format!("{d}/"))),
            "{p} is not in a node dir"
        );
        self.dir.path().join("node").join(&p[1..])
    }

    /// Installs with the real installer and starts containerd, both inside the
    /// node's private mount namespace.
    fn install_and_start() -> Node {
        let dir = tempfile::Builder::new()
            .prefix("stockade-node")
            .tempdir()
            .unwrap();
        let t = dir.path().to_path_buf();
        let t = t.as_path();
        for d in NODE_DIRS {
            fs::create_dir_all(t.join("node").join(&d[1..])).unwrap();
        }
        // The installer's artifacts, as the DaemonSet's image holds them.
        stage_artifacts(t);
        let node = Node {
            dir,
            containerd: None,
        };
        node.install_cni();

        // The installer runs with RESTART_CONTAINERD empty: containerd is started
        // right after it, on what it wrote, as the installer's restart would.
        let script = format!(
            r#"set -eu
T=$1
for o in {overlaid}; do
  d=${{o%%:*}} n=${{o#*:}}
  mkdir -p "$T/ovl/$n/upper" "$T/ovl/$n/work"
  mount -t overlay "stockade-node-$n" -o "lowerdir=$d,upperdir=$T/ovl/$n/upper,workdir=$T/ovl/$n/work" "$d"
done
for d in {node_dirs}; do
  mkdir -p "$d"
  mount --bind "$T/node$d" "$d"
done
HOST_ROOT=/ ARTIFACTS="$T/artifacts" RESTART_CONTAINERD= {installer} install > "$T/install.log" 2>&1
exec containerd --config /etc/containerd/config.toml
"#,
            overlaid = OVERLAID
                .iter()
                .map(|(d, n)| format!("{d}:{n}"))
                .collect::<Vec<_>>()
                .join(" "),
            node_dirs = NODE_DIRS.join(" "),
            installer = repo_root()
                .join("deploy/installer/stockade-node-install.sh")
                .display(),
        );
        let log = fs::File::create(t.join("containerd.log")).unwrap();
        let child = Command::new("unshare")
            .args([
                "-m",
                "--propagation",
                "private",
                "--",
                "bash",
                "-c",
                &script,
            ])
            .arg("bash")
            .arg(t)
            // Nothing of the test's environment (no STOCKADE_*): what systemd gives.
            .env_clear()
            .env("PATH", SYSTEMD_PATH)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("unshare");
        let mut node = node;
        node.containerd = Some(child);
        node.wait_ready();
        node
    }

    /// CNI as a cluster's network add-on installs it: `loopback` and the test-only
    /// plugin in `/opt/cni/bin`, its network in `/etc/cni/net.d`.
    fn install_cni(&self) {
        use std::os::unix::fs::PermissionsExt;
        let bin = self.host("/opt/cni/bin");
        fs::copy("/usr/lib/cni/loopback", bin.join("loopback")).unwrap();
        fs::copy(cni_plugin_source(), bin.join(CNI_PLUGIN)).unwrap();
        fs::set_permissions(bin.join(CNI_PLUGIN), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            self.host("/etc/cni/net.d/10-stockade-test.conflist"),
            format!(
                r#"{{"cniVersion":"1.0.0","name":"{CNI_PLUGIN}","plugins":[{{"type":"{CNI_PLUGIN}"}}]}}"#
            ),
        )
        .unwrap();
    }

    fn socket(&self) -> PathBuf {
        self.host("/run/containerd/containerd.sock")
    }

    fn log(&self) -> String {
        let read = |n: &str| fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        format!(
            "installer:\n{}\ncontainerd:\n{}",
            read("install.log"),
            read("containerd.log")
        )
    }

    fn ctr(&self, ns: &str, args: &[&str]) -> std::process::Output {
        Command::new("ctr")
            .arg("-a")
            .arg(self.socket())
            .args(["-n", ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = self.containerd.as_mut().unwrap().try_wait().unwrap() {
                panic!("node setup or containerd exited ({st}):\n{}", self.log());
            }
            if UnixStream::connect(self.socket()).is_ok()
                && self.ctr("default", &["version"]).status.success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not come up:\n{}",
                self.log()
            );
            sleep(Duration::from_millis(100));
        }
    }

    /// containerd's own reading of the installed config (`config dump`).
    fn containerd_config(&self) -> toml::Table {
        let out = Command::new("containerd")
            .arg("--config")
            .arg(self.host("/etc/containerd/config.toml"))
            .args(["config", "dump"])
            .output()
            .expect("containerd config dump");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).parse().unwrap()
    }

    /// The test images, the pause image under `pause` (containerd's sandbox image).
    fn import_images(&self, pause: &str) {
        let work = self.dir.path().join("images");
        fs::create_dir_all(&work).unwrap();
        let images = stockade_integration_tests::image::build_test_images(
            &work,
            IMAGE,
            pause,
            WORKLOAD_IMAGE,
        )
        .expect("build the test images");
        for archive in [images.pause, images.workload] {
            let out = self.ctr(
                "k8s.io",
                &["images", "import", &archive.display().to_string()],
            );
            assert!(
                out.status.success(),
                "import {}: {out:?}",
                archive.display()
            );
        }
        fs::remove_dir_all(&work).unwrap();
    }

    /// PIDs of processes in the node's mount namespace other than containerd (its
    /// shims; the containers have mount namespaces of their own).
    fn shims(&self) -> Vec<i32> {
        self.containerd
            .as_ref()
            .map_or_else(Vec::new, |c| same_mount_ns(c.id()))
    }
}

/// Other processes in the mount namespace of `pid`.
fn same_mount_ns(pid: u32) -> Vec<i32> {
    let Ok(ns) = fs::read_link(format!("/proc/{pid}/ns/mnt")) else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if p as u32 != pid && fs::read_link(e.path().join("ns/mnt")).is_ok_and(|n| n == ns) {
            pids.push(p);
        }
    }
    pids
}

/// Removes the cgroups of this test process's pods (named by [`unique`]) and of
/// their containers, in every hierarchy: a failed test's leftovers.
fn remove_own_pod_cgroups() {
    let suffix = format!("-{}", std::process::id());
    for h in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let parent = h
            .path()
            .join(stockade_integration_tests::bundle::cgroup_parent());
        for pod in fs::read_dir(&parent).into_iter().flatten().flatten() {
            if !pod.file_name().to_string_lossy().ends_with(&suffix) {
                continue;
            }
            for c in fs::read_dir(pod.path()).into_iter().flatten().flatten() {
                let _ = fs::remove_dir(c.path());
            }
            let _ = fs::remove_dir(pod.path());
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let Some(mut child) = self.containerd.take() else {
            return;
        };
        if child.try_wait().ok().flatten().is_none() {
            // A failed test's pods: tasks killed and removed through containerd.
            remove_leftover_tasks(&self.socket(), &["k8s.io"]);
            let shims = same_mount_ns(child.id());
            // Our own child, by PID.
            // SAFETY: kill(2) on the PID of the child we spawned.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            for pid in shims {
                // A shim of our containerd that outlived its tasks (failed test).
                // SAFETY: kill(2) on a process in the mount namespace we made.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = child.wait();
        remove_own_pod_cgroups();
        // The mounts lived in the node's namespace, gone with its last process.
    }
}

fn audit_lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The value of metric line `name` in a Prometheus text file (0 when absent).
fn metric(prom: &str, name: &str) -> f64 {
    prom.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Whether this process (root, as containerd and the runtime) may lower
/// oom_score_adj: CAP_SYS_RESOURCE in its effective set.
fn has_cap_sys_resource() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    // CAP_SYS_RESOURCE is capability 24 (linux/capability.h).
    eff & (1 << 24) != 0
}

/// What the kubelet asks for the containers of a Guaranteed pod.
const GUARANTEED_OOM_SCORE_ADJ: i64 = -997;

/// The shipped handlers and the profiles they run under.
const HANDLERS: &[(&str, &str)] = &[
    ("stockade", "default"),
    ("stockade-baseline", "baseline"),
    ("stockade-restricted", "restricted"),
];

#[test]
fn installed_node_runs_cri_pods_under_every_shipped_handler() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    if skip_unless_stockade("the installer installs Stockade") {
        return;
    }
    stockade_integration_tests::rootfs::set_probe_binary(env!("CARGO_BIN_EXE_stockade-probe"));
    let node = Node::install_and_start();

    // containerd runs on the shipped file as written: the installer wrote exactly it
    // (and the handlers' options files), nothing patched it.
    let shipped = repo_root().join("deploy/containerd");
    assert_eq!(
        fs::read_to_string(node.host("/etc/containerd/config.toml")).unwrap(),
        fs::read_to_string(shipped.join("config-v2.toml")).unwrap(),
        "the installer's containerd config is not the shipped config-v2.toml"
    );
    for (_, profile) in HANDLERS {
        let name = format!("stockade-{profile}.toml");
        assert_eq!(
            fs::read_to_string(node.host(&format!("/etc/containerd/{name}"))).unwrap(),
            fs::read_to_string(shipped.join(&name)).unwrap(),
            "{name}"
        );
    }
    let config = node.containerd_config();
    let pause = config["plugins"]["io.containerd.grpc.v1.cri"]["sandbox_image"]
        .as_str()
        .expect("sandbox_image")
        .to_string();
    node.import_images(&pause);

    let mut cri = CriClient::connect(&node.socket());
    let logs = tempfile::tempdir().unwrap();
    let mut sandboxes = Vec::new();
    let (mut apps, mut exec_oom) = (Vec::new(), Vec::new());

    // Admitted pods run, confined, observed from inside.
    for (n, (handler, profile)) in HANDLERS.iter().enumerate() {
        let what = format!("{handler} ({profile})");
        eprintln!("--- {what}");
        let name = unique("node", n);
        let dir = logs.path().join(&name);
        fs::create_dir_all(&dir).unwrap();
        let shape = PodShape::default();
        let config = pod_config(&name, &dir, shape);
        let pod = cri
            .run_pod(handler, &config)
            .unwrap_or_else(|e| panic!("{what}: RunPodSandbox: {e}\n{}", node.log()));
        sandboxes.push(pod.clone());
        let cmd = ["/bin/sh", "-c", "/usr/bin/probe; exec /bin/sleep 1000"];
        // A Guaranteed pod's container: the kubelet asks oom_score_adj -997.
        let mut cc = container_config("a", WORKLOAD_IMAGE, &cmd, shape);
        cc.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
            oom_score_adj: GUARANTEED_OOM_SCORE_ADJ,
            ..Default::default()
        });
        let a = cri.create_started(&what, &pod, &config, cc);
        apps.push(a.clone());
        let report = logged_report(&dir.join("a.log"));
        assert_confined(&what, &report);
        let (code, out, err) = cri.exec_sync(&a, &["/usr/bin/probe"]);
        assert_eq!(code, 0, "{what}: exec probe: {err}");
        let exec = parse_report(&out);
        assert_confined(&format!("{what}: exec"), &exec);
        assert_eq!(root_range(&exec), root_range(&report), "{what}");
        // An exec'd process is never more OOM-protected than the init (containerd
        // sends the container's -997 for it too).
        let (code, out, err) = cri.exec_sync(&a, &["/bin/cat", "/proc/self/oom_score_adj"]);
        assert_eq!(code, 0, "{what}: exec cat: {err}");
        exec_oom.push(out.trim().parse::<i64>().expect("oom_score_adj"));
        cri.stop_and_remove(&a);
        cri.stop_and_remove_pod(&pod, Duration::from_secs(30));
    }

    // A hostNetwork pod is refused: the CRI error (what the pod's events show) is the
    // short refusal naming the rule and the audit record, which outlives the pod in
    // the node's audit log.
    let audit = node.host("/var/log/stockade/audit.jsonl");
    for (n, (handler, profile)) in HANDLERS.iter().enumerate() {
        let what = format!("hostNetwork pod under {handler} ({profile})");
        let shape = PodShape {
            host_network: true,
            ..Default::default()
        };
        let config = pod_config(&unique("hostnet", n), logs.path(), shape);
        let err = match cri.run_pod(handler, &config) {
            Ok(pod) => panic!("{what}: admitted ({pod})"),
            Err(e) => e,
        };
        eprintln!("{what}: {err}");
        assert!(err.len() < 1024, "{what}: {} bytes: {err}", err.len());
        assert!(
            err.contains(&format!("container refused by profile \"{profile}\""))
                && err.contains("[namespaces.")
                && err.contains("network"),
            "{what}: {err}"
        );
        assert_eq!(
            err.matches("container refused by profile").count(),
            1,
            "{what}: said once: {err}"
        );
        // Each violation names the pod field that caused it (the UTS namespace is
        // shared because of hostNetwork too).
        for line in err.lines().filter(|l| l.trim_start().starts_with("- [")) {
            assert!(line.ends_with("change spec.hostNetwork"), "{what}: {line}");
        }
        let id = err
            .split("full record: audit id ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("{what}: no audit id: {err}"));
        assert!(
            err.contains(&format!("audit id {id} in /var/log/stockade/audit.jsonl")),
            "{what}: {err}"
        );
        let lines = audit_lines(&audit);
        let rec = lines
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{what}: record {id} not in the audit log: {lines:?}"));
        assert_eq!(rec["outcome"], "refused", "{rec}");
        assert_eq!(rec["profile"], *profile, "{rec}");
        assert!(
            rec["violations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["rule"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("namespaces."))),
            "{what}: {rec}"
        );
    }

    // Every decision is in the audit log; the metrics file counts them.
    let lines = audit_lines(&audit);
    let prom =
        fs::read_to_string(node.host("/var/lib/node_exporter/textfile_collector/stockade.prom"))
            .unwrap_or_else(|e| panic!("metrics file: {e}\n{lines:?}"));
    for (_, profile) in HANDLERS {
        let of = |outcome: &str| {
            lines
                .iter()
                .filter(|r| r["profile"] == *profile && r["outcome"] == outcome)
                .count() as f64
        };
        let admitted = of("admitted") + of("hardened");
        // Pause + app container + the exec, at least.
        assert!(
            admitted >= 3.0,
            "{profile}: {admitted} admissions: {lines:?}"
        );
        assert_eq!(of("refused"), 1.0, "{profile}: {lines:?}");
        for outcome in ["admitted", "hardened", "refused"] {
            assert_eq!(
                metric(
                    &prom,
                    &format!(
                        "stockade_decisions_total{{profile=\"{profile}\",outcome=\"{outcome}\"}}"
                    )
                ),
                of(outcome),
                "{profile} {outcome}:\n{prom}"
            );
        }
    }
    assert!(
        metric(&prom, "stockade_create_duration_seconds_count") >= 6.0,
        "{prom}"
    );

    // containerd asks oom_score_adj -998 for every sandbox, the kubelet -997 for a
    // Guaranteed pod's containers. Where the runtime may not lower its own (no
    // CAP_SYS_RESOURCE, as on this test machine) the value is raised to what it can
    // set and the admission says so; elsewhere it is kept. An exec gets the init's.
    let can_lower = has_cap_sys_resource();
    let containers = sandboxes.iter().map(|p| (p, -998, None));
    let apps = apps.iter().zip(&exec_oom).map(|(a, e)| (a, -997, Some(*e)));
    for (id, asked, exec) in containers.chain(apps) {
        let rec = lines
            .iter()
            .find(|r| r["container_id"] == id.as_str() && r["verb"] == "create")
            .unwrap_or_else(|| panic!("no audit record of {id}: {lines:?}"));
        let note = rec["injected"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["rule"] == "process.oom_score_adj");
        let ran_with = match note {
            None => {
                assert!(can_lower, "{id}: no oomScoreAdj note: {rec}");
                asked
            }
            Some(n) => {
                assert!(!can_lower, "{id}: raised though it may lower: {rec}");
                assert_eq!(n["path"], "process.oomScoreAdj", "{rec}");
                let change = n["change"].as_str().unwrap();
                assert!(change.contains("lacks CAP_SYS_RESOURCE"), "{rec}");
                change
                    .strip_prefix(&format!("raised from {asked} to "))
                    .and_then(|r| r.split(':').next())
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or_else(|| panic!("{id}: {rec}"))
            }
        };
        if let Some(exec) = exec {
            assert_eq!(exec, ran_with, "{id}: exec'd process's oom_score_adj");
        }
    }

    // Nothing left: no shim, no runtime state, no host id range, no pod netns.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.shims().is_empty() && Instant::now() < deadline {
        sleep(Duration::from_millis(100));
    }
    assert_eq!(node.shims(), Vec::<i32>::new(), "shims left");
    let left = |p: &str| -> Vec<String> {
        fs::read_dir(node.host(p))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".stockade")
            .collect()
    };
    assert_eq!(left("/run/netns"), Vec::<String>::new(), "pod netns left");
    assert_eq!(
        left("/run/containerd/stockade/k8s.io"),
        Vec::<String>::new(),
        "runtime state left"
    );
    let ranges: Value = serde_json::from_str(
        &fs::read_to_string(node.host("/run/stockade/userns-ranges.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        ranges["ranges"].as_array().map_or(0, Vec::len),
        0,
        "host id ranges left: {ranges}"
    );
    cri.netns.clear();
    cri.assert_pods_gone();
}
