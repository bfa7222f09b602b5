//! Gathers [`NodeFacts`] from the running node. Read-only, except that the idmapped
//! mount check makes a detached idmapped clone of each directory and drops it again
//! (never attached anywhere), and that the runtime binary's read-only bind mount is
//! made if it is not there yet, as the next create would make it.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxIdMappingBuilder;

use super::{ContainerdFacts, HandlerFacts, IdmapProbe, NodeConfigFacts, NodeFacts, ProfileFacts};
use crate::host_probe::probe_oom_score_adj_floor;
use crate::landlock::plan::Compat;
use crate::profile::host::{probe_cgroup, probe_landlock_abi, CgroupVersion};
use crate::profile::node_config::{NodeConfig, DEFAULT_CONFIG_PATH};
use crate::userns::idmap::IdmapUserns;

/// Where the node keeps what containers are made of: each must allow idmapped mounts
/// for a user-namespace profile to serve images and volumes from it.
const IDMAP_DIRS: &[&str] = &[
    "/var/lib/containerd",
    "/var/lib/kubelet",
    "/var/lib/stockade",
    "/run",
];

/// Inputs of the probe that callers choose.
#[derive(Debug, Clone)]
pub struct ProbeInputs {
    pub node_config: Option<PathBuf>,
    pub containerd_config: PathBuf,
    /// Directories to try idmapped mounts on (default: [`IDMAP_DIRS`] that exist).
    pub idmap_dirs: Option<Vec<PathBuf>>,
}

pub fn probe(inputs: &ProbeInputs) -> NodeFacts {
    let idmap_dirs = inputs.idmap_dirs.clone().unwrap_or_else(|| {
        IDMAP_DIRS
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .collect()
    });
    let cgroup = probe_cgroup(Path::new("/sys/fs/cgroup"));
    NodeFacts {
        kernel: kernel_release(),
        max_user_namespaces: read_trimmed("/proc/sys/user/max_user_namespaces")
            .and_then(|s| s.parse().ok()),
        seccomp_actions: read_trimmed("/proc/sys/kernel/seccomp/actions_avail")
            .map(|s| s.split_whitespace().map(str::to_string).collect()),
        landlock_abi: probe_landlock_abi(),
        oom_score_adj_floor: probe_oom_score_adj_floor(),
        cgroup,
        cgroup_controllers: cgroup_controllers(cgroup),
        systemd_init: Path::new("/run/systemd/system").is_dir(),
        idmap: idmap_dirs.iter().map(|d| probe_idmap(d)).collect(),
        node_config: node_config(inputs.node_config.as_deref()),
        containerd: containerd(&inputs.containerd_config),
        shim: which("containerd-shim-stockade-v2"),
        protected_binary: crate::self_protect::protected_binary(),
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| format!("Linux {}", u.release().to_string_lossy()))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

fn cgroup_controllers(v: CgroupVersion) -> Vec<String> {
    match v {
        CgroupVersion::V2 => read_trimmed("/sys/fs/cgroup/cgroup.controllers")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        // v1: one mounted hierarchy per controller (or a comma-joined pair, linked).
        CgroupVersion::V1 | CgroupVersion::Hybrid => {
            let mut names: Vec<String> = fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| Path::new("/sys/fs/cgroup").join(n).join("tasks").exists())
                .flat_map(|n| n.split(',').map(str::to_string).collect::<Vec<_>>())
                .collect();
            names.sort();
            names.dedup();
            names
        }
    }
}

fn fs_type(path: &Path) -> String {
    // statfs f_type magic numbers (linux/magic.h) of the filesystems worth naming.
    match nix::sys::statfs::statfs(path) {
        Ok(s) => match s.filesystem_type().0 as u64 {
            0xEF53 => "ext4".into(),
            0x5846_5342 => "xfs".into(),
            0x9123_683E => "btrfs".into(),
            0x0102_1994 => "tmpfs".into(),
            0x794C_7630 => "overlay".into(),
            0x0102_1997 => "9p".into(),
            0x6969 => "nfs".into(),
            other => format!("0x{other:x}"),
        },
        Err(e) => format!("unknown ({e})"),
    }
}

/// Can `dir` be idmapped? Clone it detached, idmap the clone, drop it.
fn probe_idmap(dir: &Path) -> IdmapProbe {
    IdmapProbe {
        path: dir.to_path_buf(),
        fs_type: fs_type(dir),
        error: try_idmap(dir).err(),
    }
}

fn try_idmap(dir: &Path) -> Result<(), String> {
    let map = LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(1_000_000u32)
        .size(65536u32)
        .build()
        .map_err(|e| e.to_string())?;
    let userns = IdmapUserns::new(&[map], &[map]).map_err(|e| crate::error_chain(&e))?;
    // Dropping the detached clone dissolves it: nothing becomes visible.
    let tree = stockade_mountapi::clone_tree(stockade_mountapi::Source::Path(dir), false)
        .map_err(|e| format!("open_tree: {e}"))?;
    userns
        .idmap_tree(std::os::fd::AsFd::as_fd(&tree), false)
        .map_err(|e| format!("mount_setattr(MOUNT_ATTR_IDMAP): {e}"))
}

fn node_config(path: Option<&Path>) -> NodeConfigFacts {
    let path = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    let cfg = match NodeConfig::read(&path) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => {
            return NodeConfigFacts {
                path,
                found: false,
                error: None,
                default_profile: Some("default".into()),
                profiles: vec![profile_facts(
                    "default (compiled in)",
                    crate::profile::node_config::builtin_default()
                        .map_err(|e| crate::error_chain(&e)),
                )],
            }
        }
        Err(e) => {
            return NodeConfigFacts {
                path,
                found: true,
                error: Some(crate::error_chain(&e)),
                default_profile: None,
                profiles: Vec::new(),
            }
        }
    };
    let mut names: Vec<String> = fs::read_dir(&cfg.profiles_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            (p.extension().is_some_and(|x| x == "toml") && p.is_file())
                .then(|| p.file_stem()?.to_str().map(str::to_string))
                .flatten()
        })
        .collect();
    // Profiles the config names must load even if someone removed their file.
    names.push(cfg.default_profile.clone());
    names.extend(cfg.handler.iter().map(|h| h.profile.clone()));
    names.extend(cfg.state_root.iter().map(|s| s.profile.clone()));
    names.extend(cfg.annotation_allowed.iter().cloned());
    names.sort();
    names.dedup();
    let profiles = names
        .iter()
        .map(|n| {
            profile_facts(
                n,
                crate::profile::load_profile(&cfg.profiles_dir, n)
                    .map_err(|e| crate::error_chain(&e)),
            )
        })
        .collect();
    NodeConfigFacts {
        path,
        found: true,
        error: None,
        default_profile: Some(cfg.default_profile.clone()),
        profiles,
    }
}

fn profile_facts(name: &str, loaded: Result<crate::profile::Profile, String>) -> ProfileFacts {
    match loaded {
        Ok(p) => {
            let ll = p.landlock.as_ref().filter(|l| l.enabled);
            ProfileFacts {
                name: name.to_string(),
                error: None,
                landlock_min_abi: ll.map(|l| l.min_abi),
                landlock_best_effort: ll.is_none_or(|l| l.compat == Compat::BestEffort),
                requires_userns: p.user_namespace.as_ref().is_some_and(|u| u.required),
            }
        }
        Err(e) => ProfileFacts {
            name: name.to_string(),
            error: Some(e),
            landlock_min_abi: None,
            landlock_best_effort: true,
            requires_userns: false,
        },
    }
}

fn containerd(path: &Path) -> ContainerdFacts {
    let mut facts = ContainerdFacts {
        path: path.to_path_buf(),
        version: None,
        error: None,
        cri_disabled: false,
        default_runtime: None,
        default_runtime_defined: false,
        handlers: Vec::new(),
    };
    let text = match crate::bounded_read::read_to_string(path, crate::bounded_read::CONFIG_CAP) {
        Ok(t) => t,
        Err(e) => {
            facts.error = Some(format!("cannot read: {e}"));
            return facts;
        }
    };
    let cfg: toml::Table = match text.parse() {
        Ok(c) => c,
        Err(e) => {
            facts.error = Some(format!("not valid TOML: {e}"));
            return facts;
        }
    };
    let version = cfg
        .get("version")
        .and_then(toml::Value::as_integer)
        .unwrap_or(1);
    facts.version = Some(version);
    let (plugin, names): (&str, &[&str]) = match version {
        3 => (
            "io.containerd.cri.v1.runtime",
            &["io.containerd.cri.v1.runtime", "cri"],
        ),
        _ => (
            "io.containerd.grpc.v1.cri",
            &["io.containerd.grpc.v1.cri", "cri"],
        ),
    };
    facts.cri_disabled = cfg
        .get("disabled_plugins")
        .and_then(toml::Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .any(|p| p.as_str().is_some_and(|p| names.contains(&p)))
        });
    let section = cfg
        .get("plugins")
        .and_then(|p| p.get(plugin))
        .and_then(|p| p.get("containerd"));
    let runtimes = section
        .and_then(|c| c.get("runtimes"))
        .and_then(toml::Value::as_table);
    // containerd's built-in default when the config names none.
    let default = section
        .and_then(|c| c.get("default_runtime_name"))
        .and_then(toml::Value::as_str)
        .unwrap_or("runc");
    facts.default_runtime = Some(default.to_string());
    // containerd 1.x replaces its built-in runtimes table with the config's, so a
    // config that defines runtimes must define the default one too.
    facts.default_runtime_defined = runtimes.is_none_or(|r| r.contains_key(default));
    for (name, rt) in runtimes.into_iter().flatten() {
        let str_of = |v: Option<&toml::Value>| v.and_then(toml::Value::as_str).map(str::to_string);
        facts.handlers.push(HandlerFacts {
            name: name.clone(),
            runtime_type: str_of(rt.get("runtime_type")).unwrap_or_default(),
            pod_annotations: rt
                .get("pod_annotations")
                .and_then(toml::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            binary_name: str_of(rt.get("options").and_then(|o| o.get("BinaryName"))),
        });
    }
    facts
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}
