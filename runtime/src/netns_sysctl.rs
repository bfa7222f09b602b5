//! Network sysctls of a network namespace the container joins but does not own.
//!
//! A CRI pod's network namespace is created and pinned by containerd in the host's
//! user namespace. A container with its own user namespace joins it by path and
//! holds no capability over it, so:
//!
//! - its `net.*` sysctls cannot be written from inside (libcontainer writes
//!   `linux.sysctl` in the init, after the user namespace exists: EACCES). containerd
//!   2.x puts `net.ipv4.ip_unprivileged_port_start` and `net.ipv4.ping_group_range`
//!   in every sandbox spec. They are written here instead, from the host side, in
//!   the namespace they belong to, and taken out of the spec the init applies.
//!   `ping_group_range` is interpreted by the kernel in the id space of the
//!   namespace's owner (the host's), as containerd means it.
//! - CAP_NET_BIND_SERVICE in the container's user namespace does not count for a
//!   port below `ip_unprivileged_port_start`: the kernel checks the capability
//!   against the network namespace's owner. When the profile admitted the
//!   capability for this container (it is in the spec's bounding set after
//!   admission), the runtime lowers the namespace's port floor to 0 — what
//!   containerd 2.x does for every pod (`enable_unprivileged_ports`), and a sysctl
//!   Kubernetes counts as safe. The floor applies to the whole pod network
//!   namespace, so a pod whose containers are all denied the capability keeps the
//!   kernel's default; a value the spec sets itself wins.
//!
//! `plan` is pure; `apply` is the thin privileged step (a short-lived thread that
//! enters the namespace and writes `/proc/sys/net/...`, which resolves in the
//! writer's network namespace).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Capability, LinuxNamespaceType, Spec};

/// The sysctl that lets unprivileged processes bind ports at or above its value.
pub const PORT_FLOOR: &str = "net.ipv4.ip_unprivileged_port_start";

/// Sysctls to write from the host into a joined network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsSysctls {
    pub netns: PathBuf,
    /// `(key, value)` in the spec's order, then the port floor if added.
    pub values: Vec<(String, String)>,
}

/// The network namespace path the spec joins, if any.
pub fn joined_netns(spec: &Spec) -> Option<PathBuf> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Network)?
        .path()
        .clone()
}

/// Whether the container gets a user namespace (new or joined).
pub fn has_userns(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| nss.iter().any(|n| n.typ() == LinuxNamespaceType::User))
}

fn admits_net_bind_service(spec: &Spec) -> bool {
    let Some(caps) = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
    else {
        return false;
    };
    caps.bounding()
        .as_ref()
        .or(caps.effective().as_ref())
        .is_some_and(|set| set.contains(&Capability::NetBindService))
}

/// Decide what to write from the host. `host_owned` tells whether the spec's joined
/// network namespace is owned by the runtime's own (the host's) user namespace.
/// Moves the `net.*` keys out of `spec.linux.sysctl`. `None`: nothing to do (no
/// joined namespace, no user namespace for the container, or a namespace the
/// container's own user namespace may govern).
pub fn plan(spec: &mut Spec, host_owned: bool) -> Option<NetnsSysctls> {
    let netns = joined_netns(spec)?;
    if !has_userns(spec) || !host_owned {
        return None;
    }
    let mut values = Vec::new();
    if let Some(linux) = spec.linux_mut().as_mut() {
        if let Some(mut sysctl) = linux.sysctl().clone() {
            let net: Vec<String> = sysctl
                .keys()
                .filter(|k| k.starts_with("net."))
                .cloned()
                .collect();
            for key in net {
                if let Some(v) = sysctl.remove(&key) {
                    values.push((key, v));
                }
            }
            values.sort();
            linux.set_sysctl(Some(sysctl));
        }
    }
    if admits_net_bind_service(spec) && !values.iter().any(|(k, _)| k == PORT_FLOOR) {
        values.push((PORT_FLOOR.to_string(), "0".to_string()));
    }
    (!values.is_empty()).then_some(NetnsSysctls { netns, values })
}

/// `/proc/sys/<key with dots as slashes>`, as runc maps keys. Dots become slashes,
/// so no component can be `..`; empty components are refused.
pub fn proc_path(key: &str) -> Option<PathBuf> {
    let rel = key.replace('.', "/");
    if !key.starts_with("net.") || rel.split('/').any(str::is_empty) {
        return None;
    }
    Some(Path::new("/proc/sys").join(rel))
}

/// Whether the network namespace at `path` is owned by this process's user
/// namespace (ioctl_ns(2) `NS_GET_USERNS`).
pub fn owned_by_our_userns(path: &Path) -> io::Result<bool> {
    /// `_IO(0xb7, 0x1)` from linux/nsfs.h.
    const NS_GET_USERNS: libc::c_ulong = 0xb701;
    let ns = File::open(path)?;
    // SAFETY: NS_GET_USERNS takes no argument and returns a new fd or -1; the
    // namespace fd is valid for the call.
    let owner = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_USERNS as _) };
    if owner < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the ioctl just returned this descriptor; nothing else owns it.
    let owner = unsafe { OwnedFd::from_raw_fd(owner) };
    let owner = File::from(owner).metadata()?;
    let ours = std::fs::metadata("/proc/self/ns/user")?;
    Ok(owner.dev() == ours.dev() && owner.ino() == ours.ino())
}

/// Why a host-side write failed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsSysctlError {
    #[error("cannot open network namespace {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot enter network namespace {path}")]
    Enter {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("sysctl {key}: not a network sysctl the runtime writes")]
    Key { key: String },
    #[error("cannot write sysctl {key}={value:?} in network namespace {path}")]
    Write {
        key: String,
        value: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Write `plan.values` in `plan.netns`, from a thread that enters the namespace
/// (setns(2) of a network namespace changes only the calling thread) and ends.
pub fn apply(plan: &NetnsSysctls) -> Result<(), NetnsSysctlError> {
    let _s = tracing::debug_span!("netns_sysctl", netns = %plan.netns.display()).entered();
    let ns = File::open(&plan.netns).map_err(|source| NetnsSysctlError::Open {
        path: plan.netns.clone(),
        source,
    })?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(
                    |source| NetnsSysctlError::Enter {
                        path: plan.netns.clone(),
                        source,
                    },
                )?;
                for (key, value) in &plan.values {
                    let path = proc_path(key).ok_or_else(|| NetnsSysctlError::Key {
                        key: key.clone(),
                    })?;
                    let write = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .and_then(|mut f| f.write_all(value.as_bytes()));
                    write.map_err(|source| NetnsSysctlError::Write {
                        key: key.clone(),
                        value: value.clone(),
                        path: plan.netns.clone(),
                        source,
                    })?;
                    tracing::info!(%key, %value, "network sysctl written from the host in the joined network namespace");
                }
                Ok(())
            })
            .join()
            .expect("the sysctl writer thread does not panic")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        let mut base = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["x"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                "capabilities": {"bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL"]}},
            "linux": {"namespaces": [{"type": "user"}, {"type": "network", "path": "/run/netns/p"}],
                "sysctl": {"net.ipv4.ping_group_range": "0 2147483647", "kernel.shm_rmid_forced": "1"}}
        });
        for (k, v) in json.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn net_keys_move_out_and_the_port_floor_is_added_with_the_capability() {
        let mut s = spec(serde_json::json!({}));
        let p = plan(&mut s, true).unwrap();
        assert_eq!(p.netns, PathBuf::from("/run/netns/p"));
        assert_eq!(
            p.values,
            vec![
                ("net.ipv4.ping_group_range".into(), "0 2147483647".into()),
                (PORT_FLOOR.into(), "0".into()),
            ]
        );
        let left = s.linux().as_ref().unwrap().sysctl().clone().unwrap();
        assert_eq!(left.keys().collect::<Vec<_>>(), ["kernel.shm_rmid_forced"]);
    }

    #[test]
    fn the_specs_own_port_floor_wins() {
        let mut s = spec(serde_json::json!({}));
        s.linux_mut()
            .as_mut()
            .unwrap()
            .sysctl_mut()
            .as_mut()
            .unwrap()
            .insert(PORT_FLOOR.into(), "443".into());
        let p = plan(&mut s, true).unwrap();
        assert!(p.values.contains(&(PORT_FLOOR.into(), "443".into())));
        assert!(!p.values.contains(&(PORT_FLOOR.into(), "0".into())));
    }

    #[test]
    fn nothing_without_the_capability_userns_join_or_host_owner() {
        let mut s = spec(serde_json::json!({"process": {"args": ["x"], "cwd": "/",
            "user": {"uid": 0, "gid": 0}, "capabilities": {"bounding": ["CAP_KILL"]}}}));
        s.linux_mut().as_mut().unwrap().set_sysctl(None);
        assert_eq!(plan(&mut s, true), None);

        let mut s = spec(serde_json::json!({}));
        assert_eq!(
            plan(&mut s, false),
            None,
            "a namespace the container may own"
        );
        assert!(s
            .linux()
            .as_ref()
            .unwrap()
            .sysctl()
            .as_ref()
            .unwrap()
            .contains_key("net.ipv4.ping_group_range"));

        let mut s = spec(
            serde_json::json!({"linux": {"namespaces": [{"type": "user"}, {"type": "network"}]}}),
        );
        assert_eq!(plan(&mut s, true), None, "own new network namespace");

        let mut s =
            spec(serde_json::json!({"linux": {"namespaces": [{"type": "network", "path": "/x"}]}}));
        assert_eq!(
            plan(&mut s, true),
            None,
            "no user namespace: the init writes them"
        );
    }

    #[test]
    fn keys_map_under_proc_sys_net_only() {
        assert_eq!(
            proc_path(PORT_FLOOR).unwrap(),
            Path::new("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        );
        assert_eq!(proc_path("kernel.shmmax"), None);
        assert_eq!(proc_path("net..x"), None);
        assert_eq!(proc_path("net.ipv4."), None);
    }
}
