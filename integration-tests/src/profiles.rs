//! Support for the hardening-profile scenarios (`tests/profile_*.rs`): the Pod
//! Security fixtures as bundles, capability masks as `/proc/self/status` prints
//! them, a stand-in pod sandbox whose namespaces fixtures can join, and the probe's
//! multi-line output.

use crate::bundle::{cgroup_parent, BundleBuilder};
use serde_json::{json, Value};
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Capability names in kernel bit order (capability.h, Linux 6.x).
pub const CAP_NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The bit mask `/proc/self/status` prints for the capabilities `names`.
pub fn cap_mask<S: AsRef<str>>(names: &[S]) -> u64 {
    names.iter().fold(0, |mask, name| {
        let name = name.as_ref();
        let bit = CAP_NAMES
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("unknown capability {name}"));
        mask | (1u64 << bit)
    })
}

/// Names of the capabilities set in `mask`.
pub fn cap_names(mask: u64) -> Vec<&'static str> {
    CAP_NAMES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// A `/proc/self/status` hex field of a probe report.
pub fn status_hex(report: &Value, field: &str) -> u64 {
    let text = report["status"][field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in report: {report}"));
    u64::from_str_radix(text, 16).unwrap_or_else(|e| panic!("{field}={text}: {e}"))
}

/// A `/proc/self/status` field of a probe report, as printed.
pub fn status_str<'a>(report: &'a Value, field: &str) -> &'a str {
    report["status"][field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in report: {report}"))
}

/// One line of `/proc/<pid>/uid_map` (or a report's `uid_map`): `(inside, host, size)`.
pub fn parse_id_map(text: &str) -> Vec<(u64, u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            (f.len() == 3).then(|| (f[0], f[1], f[2]))
        })
        .collect()
}

/// Every line of `stdout` that is a JSON object, in order (a script that runs the
/// probe several times prints one report per line).
pub fn reports(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

/// `runtime/src/profile/fixtures`: one spec per Pod Security control.
pub fn fixtures_dir() -> PathBuf {
    crate::installer::repo_root().join("runtime/src/profile/fixtures")
}

/// A fixture's spec, as written.
pub fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(format!("{name}.json"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A bundle whose config.json is `spec` with only what makes it this test's own:
/// `root.path` is the bundle's private rootfs copy, `cgroupsPath` the bundle's
/// unique test cgroup. Everything else stays as the caller wrote it.
pub fn bundle_from_spec(mut spec: Value) -> BundleBuilder {
    let builder = BundleBuilder::new();
    let id = builder.id().to_string();
    spec["root"]["path"] = json!("rootfs");
    if !spec["linux"].is_object() {
        spec["linux"] = json!({});
    }
    spec["linux"]["cgroupsPath"] = json!(format!("/{}/{id}", cgroup_parent()));
    builder.edit(|s| *s = spec)
}

/// Rewrites every namespace `path` of the form `/proc/<from>/ns/...` to
/// `/proc/<to>/ns/...`. The fixtures name a pod sandbox as pid 42 (the unit tests
/// fake its inodes); a real run points them at a [`PodSandbox`].
pub fn repoint_namespaces(spec: &mut Value, from: u32, to: u32) {
    let prefix = format!("/proc/{from}/ns/");
    if let Some(nss) = spec["linux"]["namespaces"].as_array_mut() {
        for ns in nss {
            if let Some(p) = ns["path"].as_str() {
                if let Some(rest) = p.strip_prefix(&prefix) {
                    ns["path"] = json!(format!("/proc/{to}/ns/{rest}"));
                }
            }
        }
    }
}

/// A stand-in for a pod's sandbox (pause) process: `sleep` in its own network, IPC
/// and UTS namespaces (unshare(1)), so a spec may join them by `/proc/<pid>/ns/*`
/// paths that are not the host's. Killed, by its own pid, on drop.
pub struct PodSandbox {
    child: Child,
}

impl PodSandbox {
    pub fn start() -> Self {
        let child = Command::new("unshare")
            .args(["--net", "--ipc", "--uts", "sleep", "600"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn unshare(1) for a pod sandbox stand-in");
        // From here on, drop kills and reaps it.
        let sandbox = Self { child };
        let pid = sandbox.pid();
        // unshare(1) unshares, then execs sleep: wait until the exec happened, so the
        // namespaces at /proc/<pid>/ns are the new ones.
        let own = fs::read_link("/proc/self/ns/net").expect("read own net ns");
        for _ in 0..500 {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let net = fs::read_link(format!("/proc/{pid}/ns/net")).ok();
            if comm.trim() == "sleep" && net.as_ref().is_some_and(|n| *n != own) {
                return sandbox;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("pod sandbox stand-in {pid} never reached its own namespaces");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for PodSandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every capability this test process holds in its bounding set: "all capabilities"
/// for a privileged spec on this host (a spec asking for one the runtime itself lacks
/// cannot start under any runtime: capset(2) EPERM).
pub fn all_host_caps() -> Vec<&'static str> {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .expect("CapBnd in /proc/self/status");
    cap_names(bnd)
}

/// (fixture, expected (rule, spec path) pairs under `restricted`): the table the
/// unit tests in `runtime/src/profile/tests.rs` use too.
pub fn pod_security() -> Vec<(String, std::collections::BTreeSet<(String, String)>)> {
    #[derive(serde::Deserialize)]
    struct Row {
        fixture: String,
        violations: Vec<(String, String)>,
    }
    let rows: Vec<Row> = serde_json::from_str(include_str!(
        "../../runtime/src/profile/pod_security_expected.json"
    ))
    .expect("pod_security_expected.json parses");
    rows.into_iter()
        .map(|r| (r.fixture, r.violations.into_iter().collect()))
        .collect()
}

/// The `(rule, path)` pairs `restricted` reports for fixture `name` (`all`: every
/// control's).
pub fn expected_violations(name: &str) -> std::collections::BTreeSet<(String, String)> {
    let table = pod_security();
    if name == "all" {
        return table.into_iter().flat_map(|(_, v)| v).collect();
    }
    table
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no expectation for fixture {name}"))
        .1
}

/// Fixture `name` with its namespace paths made real on this host: the pod sandbox
/// (pid 42 in the fixtures, whose inodes the unit tests fake) becomes `sandbox`, and
/// the host (pid 1) becomes this test process, which shares its namespaces with the
/// runtime it spawns; that is what "host namespace" means to the rule (pid 1 itself
/// may not be inspectable in a sandboxed test VM).
pub fn fixture_on_this_host(name: &str, sandbox: &PodSandbox) -> Value {
    let mut spec = fixture(name);
    repoint_namespaces(&mut spec, 42, sandbox.pid());
    repoint_namespaces(&mut spec, 1, std::process::id());
    spec
}
