//! OCI bundles for tests: a `config.json` built from a sane default spec (the shape
//! of `runc spec`, non-terminal) plus a private copy of the test rootfs, in a
//! temporary directory removed on drop.
//!
//! The spec is kept as `serde_json::Value` on purpose: bad-input tests must be able
//! to write specs that no typed model would let us construct.

use crate::rootfs;
use serde_json::{json, Value};
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Parent of every test container's cgroup (absolute `cgroupsPath` = `/stockade-test/<id>`).
pub fn cgroup_parent() -> &'static str {
    static PARENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PARENT.get_or_init(|| {
        std::env::var(CGROUP_PARENT_ENV)
            .map(|p| p.trim_matches('/').to_string())
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "stockade-test".to_string())
    })
}

/// Env var naming another test cgroup parent, so that several checkouts can run the
/// suite on one machine at once without touching each other's cgroups.
pub const CGROUP_PARENT_ENV: &str = "STOCKADE_TEST_CGROUP_PARENT";

/// A unique name for this test process and call: `st-<pid>-<counter>-<random>`.
/// Used as container id and cgroup leaf, so parallel tests (and parallel test
/// binaries) never collide.
pub fn unique_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut rnd = [0u8; 4];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut rnd))
        .expect("read /dev/urandom");
    format!(
        "st-{}-{n}-{:08x}",
        std::process::id(),
        u32::from_ne_bytes(rnd)
    )
}

/// The default spec, as `runc spec` (1.1+) writes it: namespaces pid, ipc, uts, mount,
/// network and cgroup (so /sys/fs/cgroup shows the container's own limits on v1 and
/// v2, and /proc/self/cgroup `/`); runc's default
/// mounts, masked and readonly paths; writable root (tests opt into readonly).
pub fn default_spec(id: &str) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/usr/bin/probe"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "stockade-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "cgroupsPath": format!("/{}/{id}", cgroup_parent()),
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// Builds a [`Bundle`]. Every setter edits the JSON spec; `spec_mut` allows anything else.
pub struct BundleBuilder {
    id: String,
    spec: Value,
    raw_config: Option<String>,
    rootfs_owner: Option<(u32, u32)>,
    with_rootfs: bool,
}

impl Default for BundleBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BundleBuilder {
    pub fn new() -> Self {
        let id = unique_id();
        let spec = default_spec(&id);
        Self {
            id,
            spec,
            raw_config: None,
            rootfs_owner: None,
            with_rootfs: true,
        }
    }

    /// The container id this bundle is meant for (also its cgroup leaf name).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn spec_mut(&mut self) -> &mut Value {
        &mut self.spec
    }

    pub fn edit(mut self, f: impl FnOnce(&mut Value)) -> Self {
        f(&mut self.spec);
        self
    }

    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.spec["process"]["args"] = json!(args.iter().map(|s| s.as_ref()).collect::<Vec<_>>());
        self
    }

    /// `sh -c SCRIPT` with busybox's shell.
    pub fn shell(self, script: &str) -> Self {
        self.args(&["/bin/sh", "-c", script])
    }

    pub fn env(mut self, var: &str) -> Self {
        push(&mut self.spec["process"]["env"], json!(var));
        self
    }

    pub fn cwd(mut self, cwd: &str) -> Self {
        self.spec["process"]["cwd"] = json!(cwd);
        self
    }

    pub fn terminal(mut self, on: bool) -> Self {
        self.spec["process"]["terminal"] = json!(on);
        self
    }

    pub fn hostname(mut self, name: &str) -> Self {
        self.spec["hostname"] = json!(name);
        self
    }

    pub fn readonly_root(mut self, on: bool) -> Self {
        self.spec["root"]["readonly"] = json!(on);
        self
    }

    pub fn no_new_privileges(mut self, on: bool) -> Self {
        self.spec["process"]["noNewPrivileges"] = json!(on);
        self
    }

    /// Sets bounding, effective and permitted to `caps` (ambient and inheritable empty).
    pub fn capabilities(mut self, caps: &[&str]) -> Self {
        self.spec["process"]["capabilities"] = json!({
            "bounding": caps, "effective": caps, "permitted": caps
        });
        self
    }

    /// Sets `linux.seccomp` verbatim.
    pub fn seccomp(mut self, seccomp: Value) -> Self {
        self.spec["linux"]["seccomp"] = seccomp;
        self
    }

    pub fn memory_limit(mut self, bytes: i64) -> Self {
        self.spec["linux"]["resources"]["memory"] = json!({"limit": bytes});
        self
    }

    pub fn pids_limit(mut self, max: i64) -> Self {
        self.spec["linux"]["resources"]["pids"] = json!({"limit": max});
        self
    }

    pub fn mount(mut self, mount: Value) -> Self {
        push(&mut self.spec["mounts"], mount);
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        if !self.spec["annotations"].is_object() {
            self.spec["annotations"] = json!({});
        }
        self.spec["annotations"][key] = json!(value);
        self
    }

    /// Adds a user namespace mapping container 0.. to `host..host+size` for uids and
    /// gids, and gives the bundle's rootfs copy to the host range so the mapped root
    /// owns its files (otherwise they would show as the overflow id).
    pub fn user_namespace(mut self, host: u32, size: u32) -> Self {
        push(
            &mut self.spec["linux"]["namespaces"],
            json!({"type": "user"}),
        );
        let mapping = json!([{"containerID": 0, "hostID": host, "size": size}]);
        self.spec["linux"]["uidMappings"] = mapping.clone();
        self.spec["linux"]["gidMappings"] = mapping;
        self.rootfs_owner = Some((host, host));
        self
    }

    /// Writes `text` as config.json instead of the spec (for malformed-input tests).
    pub fn raw_config(mut self, text: &str) -> Self {
        self.raw_config = Some(text.to_string());
        self
    }

    /// Leaves the bundle without a rootfs directory.
    pub fn without_rootfs(mut self) -> Self {
        self.with_rootfs = false;
        self
    }

    pub fn build(self) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("stockade-bundle-")
            .tempdir()
            .expect("create bundle tempdir");
        // 0711: a user-namespaced init (host uid 100000) must be able to traverse
        // into the bundle to reach its rootfs.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711))
            .expect("chmod bundle dir");
        let rootfs = dir.path().join("rootfs");
        if self.with_rootfs {
            rootfs::copy_to(&rootfs).expect("copy test rootfs into bundle");
            if let Some((uid, gid)) = self.rootfs_owner {
                rootfs::chown_all(&rootfs, uid, gid).expect("chown rootfs for user namespace");
            }
        }
        let config = match self.raw_config {
            Some(text) => text,
            None => serde_json::to_string_pretty(&self.spec).expect("serialize spec"),
        };
        fs::write(dir.path().join("config.json"), config).expect("write config.json");
        Bundle {
            id: self.id,
            spec: self.spec,
            rootfs,
            dir,
        }
    }
}

fn push(array: &mut Value, item: Value) {
    match array.as_array_mut() {
        Some(a) => a.push(item),
        None => *array = json!([item]),
    }
}

/// A bundle on disk. The directory is removed on drop (after the container guard
/// that uses it, since tests declare the bundle first).
pub struct Bundle {
    pub id: String,
    pub spec: Value,
    pub rootfs: PathBuf,
    dir: tempfile::TempDir,
}

impl Bundle {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Cgroup path relative to each controller's mount, e.g. `stockade-test/<id>`.
    pub fn cgroup_relative(&self) -> String {
        self.spec["linux"]["cgroupsPath"]
            .as_str()
            .map(|p| p.trim_start_matches('/').to_string())
            .unwrap_or_else(|| format!("{}/{}", cgroup_parent(), self.id))
    }
}
