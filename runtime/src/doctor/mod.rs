//! `stockade doctor`: is this node ready to run hardened containers?
//!
//! Two steps, like the rest of the runtime: [`probe::probe`] gathers [`NodeFacts`]
//! (the only impure part: kernel interfaces, the node config and profiles, containerd's
//! config), and [`assess`] turns them into [`Finding`]s, each with what to do about a
//! problem. `assess` is pure and table-tested on made-up nodes.

pub mod probe;

use std::path::PathBuf;

use serde::Serialize;

use crate::profile::host::CgroupVersion;

/// Everything the assessment looks at.
#[derive(Debug, Clone, Serialize)]
pub struct NodeFacts {
    pub kernel: String,
    /// `/proc/sys/user/max_user_namespaces`; `None` when the kernel has no user namespaces.
    pub max_user_namespaces: Option<u64>,
    /// `/proc/sys/kernel/seccomp/actions_avail`; `None` without seccomp filters.
    pub seccomp_actions: Option<Vec<String>>,
    pub landlock_abi: Option<u8>,
    /// The lowest oom_score_adj the runtime (run like this doctor, by root) can give
    /// a container: `None` with CAP_SYS_RESOURCE (`HostFacts::oom_score_adj_floor`).
    pub oom_score_adj_floor: Option<i32>,
    pub cgroup: CgroupVersion,
    /// Controllers the v2 hierarchy offers (root `cgroup.controllers`), or the v1
    /// hierarchies mounted under /sys/fs/cgroup.
    pub cgroup_controllers: Vec<String>,
    /// systemd is the init (`/run/systemd/system` exists): kubelet and containerd then
    /// normally use the systemd cgroup driver.
    pub systemd_init: bool,
    /// Directories whose filesystem must support idmapped mounts.
    pub idmap: Vec<IdmapProbe>,
    pub node_config: NodeConfigFacts,
    pub containerd: ContainerdFacts,
    /// `containerd-shim-stockade-v2` found on PATH (containerd looks it up there).
    pub shim: Option<PathBuf>,
    /// The read-only bind mount containers are entered from (CVE-2019-5736), or why
    /// this binary cannot have one (`self_protect::protected_binary`).
    pub protected_binary: Result<PathBuf, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdmapProbe {
    pub path: PathBuf,
    /// Filesystem type name (`ext4`, `tmpfs`, `overlay`...).
    pub fs_type: String,
    /// Why an idmapped clone of `path` could not be made; `None`: it can.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeConfigFacts {
    pub path: PathBuf,
    /// A config exists; `false`: none at the default path (the compiled-in
    /// `default` profile applies).
    pub found: bool,
    /// Why it could not be read or is invalid.
    pub error: Option<String>,
    pub default_profile: Option<String>,
    /// Every `*.toml` of the profiles dir (and the profiles the config names).
    pub profiles: Vec<ProfileFacts>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileFacts {
    pub name: String,
    /// Why it does not load; `None`: it loads.
    pub error: Option<String>,
    /// The profile's Landlock `min_abi` when it needs one (hard or soft requirement).
    pub landlock_min_abi: Option<u8>,
    /// Landlock compat level: `best_effort` profiles run on any ABI.
    pub landlock_best_effort: bool,
    pub requires_userns: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContainerdFacts {
    pub path: PathBuf,
    /// The config format's `version`, when the file was read.
    pub version: Option<i64>,
    /// Why it could not be read.
    pub error: Option<String>,
    pub cri_disabled: bool,
    pub default_runtime: Option<String>,
    /// The default runtime has its own runtime table (containerd refuses to start the
    /// CRI plugin otherwise).
    pub default_runtime_defined: bool,
    pub handlers: Vec<HandlerFacts>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HandlerFacts {
    pub name: String,
    pub runtime_type: String,
    pub pod_annotations: Vec<String>,
    /// `BinaryName` for a runc.v2 handler driving `stockade`.
    pub binary_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about it (for warnings and failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn finding(check: &'static str, status: Status, detail: String, fix: Option<&str>) -> Finding {
    Finding {
        check,
        status,
        detail,
        fix: fix.map(str::to_string),
    }
}

/// Seccomp actions the filters Stockade compiles use.
const SECCOMP_ACTIONS: &[&str] = &["kill_process", "kill_thread", "trap", "errno", "allow"];
const CGROUP_CONTROLLERS: &[&str] = &["cpu", "memory", "pids"];
pub const STOCKADE_RUNTIME_TYPE: &str = "io.containerd.stockade.v2";
const STOCKADE_ANNOTATIONS: &str = "org.stockade.*";

/// Judge the node. Findings come in a fixed order: kernel, cgroups, filesystems,
/// profiles, containerd.
pub fn assess(f: &NodeFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    kernel(f, &mut out);
    oom_score_adj(f, &mut out);
    protected_binary(f, &mut out);
    cgroups(f, &mut out);
    idmap(f, &mut out);
    profiles(f, &mut out);
    containerd(f, &mut out);
    out
}

/// The worst status among `findings` (Ok for none).
pub fn worst(findings: &[Finding]) -> Status {
    findings
        .iter()
        .map(|f| f.status)
        .max()
        .unwrap_or(Status::Ok)
}

fn kernel(f: &NodeFacts, out: &mut Vec<Finding>) {
    out.push(finding("kernel", Status::Ok, f.kernel.clone(), None));
    let needs_userns = f.node_config.profiles.iter().any(|p| p.requires_userns);
    out.push(match f.max_user_namespaces {
        Some(n) if n > 0 => finding("user namespaces", Status::Ok, format!("max_user_namespaces = {n}"), None),
        _ => finding(
            "user namespaces",
            if needs_userns { Status::Fail } else { Status::Warn },
            "user namespaces are unavailable (max_user_namespaces is 0 or missing)".into(),
            Some("set the sysctl user.max_user_namespaces (e.g. 65536) and use a kernel built with CONFIG_USER_NS; profiles that require a user namespace refuse every container until then"),
        ),
    });
    out.push(match &f.seccomp_actions {
        Some(actions) => {
            let missing: Vec<&str> = SECCOMP_ACTIONS
                .iter()
                .copied()
                .filter(|a| !actions.iter().any(|x| x == a))
                .collect();
            if missing.is_empty() {
                finding(
                    "seccomp",
                    Status::Ok,
                    format!("filter actions: {}", actions.join(" ")),
                    None,
                )
            } else {
                finding(
                    "seccomp",
                    Status::Fail,
                    format!("the kernel lacks seccomp actions {}", missing.join(", ")),
                    Some("use a kernel with CONFIG_SECCOMP_FILTER (Linux 4.14 or newer)"),
                )
            }
        }
        None => finding(
            "seccomp",
            Status::Fail,
            "seccomp filters are unavailable (/proc/sys/kernel/seccomp/actions_avail is missing)"
                .into(),
            Some("use a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER"),
        ),
    });
    let needed = f
        .node_config
        .profiles
        .iter()
        .filter(|p| p.error.is_none() && !p.landlock_best_effort)
        .filter_map(|p| p.landlock_min_abi.map(|abi| (abi, p.name.as_str())))
        .max();
    out.push(match (f.landlock_abi, needed) {
        (Some(abi), Some((min, name))) if abi < min => finding(
            "landlock",
            Status::Fail,
            format!("Landlock ABI {abi}, but profile {name:?} requires ABI {min}"),
            Some("use a newer kernel, or lower the profile's landlock.min_abi / set compat = \"best_effort\""),
        ),
        (None, Some((min, name))) => finding(
            "landlock",
            Status::Fail,
            format!("Landlock is unavailable, but profile {name:?} requires ABI {min}"),
            Some("enable Landlock: boot with lsm=...,landlock (CONFIG_SECURITY_LANDLOCK)"),
        ),
        (Some(abi), _) => finding("landlock", Status::Ok, format!("ABI {abi}"), None),
        (None, None) => finding(
            "landlock",
            Status::Warn,
            "Landlock is unavailable: best-effort profiles run without their file and network rules".into(),
            Some("enable Landlock: boot with lsm=...,landlock (CONFIG_SECURITY_LANDLOCK)"),
        ),
    });
}

fn oom_score_adj(f: &NodeFacts, out: &mut Vec<Finding>) {
    out.push(match f.oom_score_adj_floor {
        None => finding(
            "oom_score_adj",
            Status::Ok,
            "CAP_SYS_RESOURCE: any oomScoreAdj can be set".into(),
            None,
        ),
        Some(floor) => finding(
            "oom_score_adj",
            Status::Warn,
            format!(
                "no CAP_SYS_RESOURCE: an oomScoreAdj below {floor} (containerd's -998 for pod sandboxes, the kubelet's -997 for Guaranteed pods) is raised to {floor}, noted in each container's audit record"
            ),
            Some("run containerd (and so the runtime) with CAP_SYS_RESOURCE in its bounding set; where the node cannot grant it, pods run less protected from the OOM killer"),
        ),
    });
}

fn protected_binary(f: &NodeFacts, out: &mut Vec<Finding>) {
    out.push(match &f.protected_binary {
        Ok(path) => finding(
            "runtime binary",
            Status::Ok,
            format!(
                "containers are entered from a read-only mount of this binary, {} (CVE-2019-5736)",
                path.display()
            ),
            None,
        ),
        Err(e) => finding(
            "runtime binary",
            Status::Warn,
            format!(
                "no read-only bind mount of this binary ({e}): every create, run and exec first copies the binary into a sealed memfd and executes the copy (protected, but slower)"
            ),
            Some("let the runtime mount under /run/stockade/bin: run it as root in the host's (or containerd's) mount namespace, with /run writable"),
        ),
    });
}

fn cgroups(f: &NodeFacts, out: &mut Vec<Finding>) {
    let layout = match f.cgroup {
        CgroupVersion::V1 => "v1",
        CgroupVersion::Hybrid => "v1 (hybrid: v2 mounted at /sys/fs/cgroup/unified)",
        CgroupVersion::V2 => "v2 (unified)",
    };
    let missing: Vec<&str> = CGROUP_CONTROLLERS
        .iter()
        .copied()
        .filter(|c| !f.cgroup_controllers.iter().any(|x| x == c))
        .collect();
    out.push(if missing.is_empty() {
        finding(
            "cgroups",
            Status::Ok,
            format!("{layout}; controllers {}", f.cgroup_controllers.join(" ")),
            None,
        )
    } else {
        finding(
            "cgroups",
            Status::Fail,
            format!("{layout}; controllers {} are not available", missing.join(", ")),
            Some("enable the controllers (v2: add them to the root cgroup.subtree_control; v1: mount their hierarchies)"),
        )
    });
    out.push(if f.systemd_init {
        finding(
            "cgroup driver",
            Status::Ok,
            "systemd is the init: kubelet's and containerd's cgroup driver is normally systemd; set SystemdCgroup = true in each Stockade handler's options (systemd_cgroup = true in its shim options file) to match".into(),
            None,
        )
    } else {
        finding(
            "cgroup driver",
            Status::Ok,
            "no systemd init: the cgroupfs driver applies".into(),
            None,
        )
    });
}

fn idmap(f: &NodeFacts, out: &mut Vec<Finding>) {
    for p in &f.idmap {
        out.push(match &p.error {
            None => finding(
                "idmapped mounts",
                Status::Ok,
                format!("{} ({})", p.path.display(), p.fs_type),
                None,
            ),
            Some(e) => finding(
                "idmapped mounts",
                Status::Warn,
                format!("{} ({}) cannot be idmapped: {e}", p.path.display(), p.fs_type),
                Some(if p.fs_type == "tmpfs" {
                    "tmpfs supports idmapped mounts from Linux 6.3: volumes on tmpfs (Secrets, ConfigMaps, emptyDir medium Memory) need that kernel under a user-namespace profile"
                } else {
                    "put container images and volumes on a filesystem with idmapped mount support (ext4, xfs, btrfs)"
                }),
            ),
        });
    }
}

fn profiles(f: &NodeFacts, out: &mut Vec<Finding>) {
    let nc = &f.node_config;
    match (&nc.error, nc.found) {
        (None, true) => out.push(finding(
            "node config",
            Status::Ok,
            format!(
                "{} (default profile {:?})",
                nc.path.display(),
                nc.default_profile.as_deref().unwrap_or("?")
            ),
            None,
        )),
        (None, false) => out.push(finding(
            "node config",
            Status::Warn,
            format!(
                "no node config at {}: every container gets the compiled-in default profile",
                nc.path.display()
            ),
            Some("install /etc/stockade/config.toml and the profiles (see deploy/README.md)"),
        )),
        (Some(e), _) => out.push(finding(
            "node config",
            Status::Fail,
            format!("{}: {e}", nc.path.display()),
            Some("fix the node config: until then Stockade refuses every container"),
        )),
    }
    for p in &nc.profiles {
        out.push(match &p.error {
            None => finding("profile", Status::Ok, p.name.clone(), None),
            Some(e) => finding(
                "profile",
                Status::Fail,
                format!("{}: {e}", p.name),
                Some("run `stockade profile lint` on it; containers selecting it are refused"),
            ),
        });
    }
    if let (None, true, Some(d)) = (&nc.error, nc.found, &nc.default_profile) {
        if !nc.profiles.iter().any(|p| &p.name == d) {
            out.push(finding(
                "profile",
                Status::Fail,
                format!("the default profile {d:?} is not in the profiles dir"),
                Some("copy it into the profiles dir or change default_profile"),
            ));
        }
    }
}

fn containerd(f: &NodeFacts, out: &mut Vec<Finding>) {
    let c = &f.containerd;
    let version = match (&c.error, c.version) {
        (None, Some(v)) => v,
        (e, _) => {
            let e = e.as_deref().unwrap_or("no version");
            out.push(finding(
                "containerd",
                Status::Warn,
                format!("{}: {e}", c.path.display()),
                Some("configure containerd's runtime handlers (deploy/README.md, shim/README.md)"),
            ));
            return;
        }
    };
    if c.cri_disabled {
        out.push(finding(
            "containerd",
            Status::Fail,
            "the CRI plugin is disabled: Kubernetes cannot reach Stockade".into(),
            Some("remove \"cri\" from disabled_plugins"),
        ));
    }
    if let Some(d) = &c.default_runtime {
        if !c.default_runtime_defined {
            out.push(finding(
                "containerd",
                Status::Fail,
                format!("default_runtime_name = {d:?} has no runtime table: containerd's CRI plugin will not start"),
                Some("keep the runc runtime table (runtime_type = \"io.containerd.runc.v2\") when adding Stockade's"),
            ));
        }
    }
    let ours: Vec<&HandlerFacts> = c
        .handlers
        .iter()
        .filter(|h| {
            h.runtime_type == STOCKADE_RUNTIME_TYPE
                || h.binary_name
                    .as_deref()
                    .is_some_and(|b| b.ends_with("/stockade") || b == "stockade")
        })
        .collect();
    if ours.is_empty() {
        out.push(finding(
            "containerd",
            Status::Fail,
            format!(
                "{} (version {version}) has no Stockade runtime handler",
                c.path.display()
            ),
            Some("add the handlers (deploy/installer/stockade-node-install.sh does it)"),
        ));
        return;
    }
    for h in ours {
        if h.pod_annotations
            .iter()
            .any(|a| a == STOCKADE_ANNOTATIONS || a == "*")
        {
            out.push(finding(
                "containerd handler",
                Status::Ok,
                h.name.clone(),
                None,
            ));
        } else {
            out.push(finding(
                "containerd handler",
                Status::Warn,
                format!("{}: pod_annotations lacks \"org.stockade.*\": the profile and Landlock annotations do not reach the runtime", h.name),
                Some("add pod_annotations = [\"org.stockade.*\"] to the handler's runtime table"),
            ));
        }
    }
    if f.shim.is_none()
        && c.handlers
            .iter()
            .any(|h| h.runtime_type == STOCKADE_RUNTIME_TYPE)
    {
        out.push(finding(
            "containerd handler",
            Status::Fail,
            "containerd-shim-stockade-v2 is not on PATH: containerd cannot start the handler's shim".into(),
            Some("install it next to containerd, e.g. /usr/local/bin/containerd-shim-stockade-v2"),
        ));
    }
}

#[cfg(test)]
mod tests;
