//! `start`, `state`, `kill`, `delete`, `pause`, `resume`.

use libcgroups::common::CgroupSetup;
use libcontainer::container::ContainerStatus;
use libcontainer::signal::Signal;
use serde::Serialize;

use super::{load, CommandError, Global};
use crate::cgroup_placement::CgroupDriver;

pub fn start(g: &Global, id: &str) -> Result<(), CommandError> {
    let _s = tracing::info_span!("start", id).entered();
    // A verb that writes the container's state holds the id's lock: a `delete
    // --force` meanwhile (it holds the lock) removed the state directory under
    // start's write, failed with ENOTEMPTY and left the container behind.
    let _lock = g.root.lock_existing(id)?;
    let mut c = load(g, id)?;
    c.start().map_err(CommandError::container(id, "start"))
}

/// runc's `state` document (what go-runc's `State` decodes).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuncState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: &'static str,
    pub bundle: std::path::PathBuf,
    pub rootfs: std::path::PathBuf,
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::HashMap<String, String>>,
    pub owner: String,
    /// The hardening profile that admitted the container (`name vVERSION`); an
    /// addition to runc's fields, which runc's readers ignore.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Stockade: the cgroup driver the container was created with
    /// (`cgroupfs` or `systemd`).
    pub cgroup_driver: CgroupDriver,
}

pub fn status_name(s: ContainerStatus) -> &'static str {
    match s {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}

pub fn state(g: &Global, id: &str) -> Result<RuncState, CommandError> {
    let c = load(g, id)?;
    let status = c.status();
    let record = g.root.read_plan(id).ok();
    let profile = record.as_ref().and_then(|r| r.profile.clone());
    let rootfs = read_rootfs(&c.bundle().join("config.json")).unwrap_or_default();
    Ok(RuncState {
        oci_version: c.state.oci_version.clone(),
        id: id.to_string(),
        // runc reports pid 0 once the init is gone.
        pid: if status == ContainerStatus::Stopped {
            0
        } else {
            c.pid().map(|p| p.as_raw()).unwrap_or(0)
        },
        status: status_name(status),
        bundle: record
            .map(|r| r.bundle)
            .unwrap_or_else(|| c.bundle().clone()),
        rootfs,
        created: c
            .created()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .unwrap_or_default(),
        annotations: c.state.annotations.clone(),
        owner: String::new(),
        profile,
        cgroup_driver: if c.systemd() {
            CgroupDriver::Systemd
        } else {
            CgroupDriver::Cgroupfs
        },
    })
}

fn read_rootfs(config: &std::path::Path) -> Option<std::path::PathBuf> {
    let bytes = std::fs::read(config).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.pointer("/root/path")?.as_str().map(Into::into)
}

pub fn kill(g: &Global, id: &str, signal: &str, all: bool) -> Result<(), CommandError> {
    let _s = tracing::info_span!("kill", id, signal).entered();
    // Signal 0 delivers nothing: callers (runc's users, health scripts) use it to
    // ask whether the init is alive. libcontainer has no signal 0, so it is probed
    // here, with runc's answers.
    if signal == "0" {
        return probe_alive(g, id, all);
    }
    let sig = Signal::try_from(signal).map_err(|_| CommandError::Signal(signal.to_string()))?;
    let mut c = load(g, id)?;
    // As runc: signalling the init of a stopped container is an error a caller can
    // recognise (containerd's runc shim answers NotFound); `--all` still sweeps
    // whatever is left in the container's cgroup.
    if !all && c.status() == ContainerStatus::Stopped {
        return Err(CommandError::NotRunning);
    }
    match c.kill(sig, all) {
        Ok(()) => Ok(()),
        // libcontainer records "stopped" after signalling. When the signal ended the
        // init, its container may be deleted before that write (containerd deletes a
        // pod sandbox as soon as the exit is published, while StopPodSandbox's kill
        // is still returning): the kill did what it was asked, as under runc, which
        // records nothing after the signal.
        Err(e) if deleted_meanwhile(g, id) => {
            tracing::debug!(error = %crate::error_chain(&e), "container deleted while it was killed");
            Ok(())
        }
        Err(e) => Err(CommandError::container(id, "kill")(e)),
    }
}

/// Whether the container was deleted while a verb that does not take the id's lock
/// (kill) worked on it. A delete holds that lock from its start to the end, and
/// removes the container's directory file by file: a write in it fails (ENOENT)
/// while the directory itself is still there. So wait for a delete in progress to
/// finish, then look (containerd's CRI deletes a task as soon as its exit is
/// published, while the StopContainer kill that ended it is still returning).
fn deleted_meanwhile(g: &Global, id: &str) -> bool {
    if !g.root.container_dir(id).exists() {
        return true;
    }
    match g.root.lock_existing(id) {
        Ok(lock) => lock.is_none(),
        Err(_) => !g.root.container_dir(id).exists(),
    }
}

/// `kill ID 0`: exit 0 while the container's init lives (created, running or
/// paused), "container not running" once it is gone, as runc. With `--all` a
/// stopped container is no error, as for any other signal.
fn probe_alive(g: &Global, id: &str, all: bool) -> Result<(), CommandError> {
    let c = load(g, id)?;
    let alive = c.status() != ContainerStatus::Stopped
        && c.pid()
            .is_some_and(|pid| nix::sys::signal::kill(pid, None).is_ok());
    if alive || all {
        Ok(())
    } else {
        Err(CommandError::NotRunning)
    }
}

pub fn delete(g: &Global, id: &str, force: bool) -> Result<(), CommandError> {
    let _s = tracing::info_span!("delete", id, force).entered();
    // Never tear down what a create of this id in progress is making.
    let lock = g.root.lock(id)?;
    let result = delete_locked(g, id, force);
    // Gone (or never there): the lock file goes too.
    g.root.release_lock(id, lock);
    result
}

fn delete_locked(g: &Global, id: &str, force: bool) -> Result<(), CommandError> {
    let dir = g.root.container_dir(id);
    if !dir.join("state.json").exists() {
        // Like runc: a create that died before writing state may leave a directory
        // behind; remove it. Without --force a missing container is an error.
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(CommandError::io(format!(
                "failed to remove stale state dir {}",
                dir.display()
            )))?;
        }
        // A create killed half-way: its plan record or its journal name what it made.
        super::recover::reclaim(g, id)?;
        return if force {
            Ok(())
        } else {
            Err(crate::state_root::StateRootError::NotFound(id.to_string()).into())
        };
    }
    let mut c = match load(g, id) {
        Ok(c) => c,
        // A runtime killed while writing the state (before writes were atomic), a
        // full disk, a hand edit: the container must still be removable.
        Err(e) if force => {
            tracing::warn!(error = %crate::error_chain(&e), "container state is unreadable; removing what can be found");
            return remove_unloadable(g, id);
        }
        Err(e) => return Err(e),
    };
    let record = g.root.read_plan(id);
    // cgroup v1: the hierarchies' mount points from the state root's snapshot of
    // the mount table rather than the whole table rendered again (cgroup_mounts).
    let host_mountinfo = match libcgroups::common::get_cgroup_setup() {
        Ok(CgroupSetup::Legacy | CgroupSetup::Hybrid) => {
            crate::cgroup_mounts::host_table(g.root.path())
        }
        _ => None,
    };
    c.delete_with_host_mountinfo(force, host_mountinfo.as_deref())
        .map_err(CommandError::container(id, "delete"))?;
    // The idmapped rootfs and the host id range outlive the init; give them back
    // only once the container is gone.
    match record {
        Ok(r) => {
            if let Some(userns) = &r.userns {
                super::userns_setup::teardown(id, userns);
            }
        }
        Err(e) => {
            tracing::warn!(error = %crate::error_chain(&e), "no plan record: nothing of the user namespace to give back")
        }
    }
    // A create killed after libcontainer wrote the state left its journal.
    super::recover::end(g, id);
    g.root
        .remove_plan(id)
        .map_err(CommandError::io("failed to remove the hardened bundle"))
}

/// `delete --force` of a container whose `state.json` cannot be read: kill what
/// runs in its cgroup (named by libcontainer's config, else by the hardened spec),
/// remove the cgroup, give back the user namespace and remove both state dirs.
fn remove_unloadable(g: &Global, id: &str) -> Result<(), CommandError> {
    use libcgroups::common::{CgroupConfig, CgroupManager, FreezerState};
    let dir = g.root.container_dir(id);
    let cgroup_path = libcontainer::config::YoukiConfig::load(&dir)
        .map(|c| c.cgroup_path)
        .ok()
        .or_else(|| {
            let spec =
                oci_spec::runtime::Spec::load(g.root.plan_dir(id).join("config.json")).ok()?;
            let path = spec.linux().as_ref()?.cgroups_path().clone();
            Some(libcontainer::utils::get_cgroup_path(&path, id))
        });
    match cgroup_path {
        Some(cgroup_path) => {
            let cgroup = |source| CommandError::Cgroup {
                id: id.to_string(),
                op: "removal",
                source,
            };
            let manager = libcgroups::common::create_cgroup_manager(CgroupConfig {
                cgroup_path,
                systemd_cgroup: false,
                container_name: id.to_string(),
            })
            .map_err(|e| cgroup(Box::new(e)))?;
            // Frozen, no process can fork a new one between listing and killing.
            let frozen = manager.freeze(FreezerState::Frozen).is_ok();
            for pid in manager.get_all_pids().unwrap_or_default() {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
            if frozen {
                manager
                    .freeze(FreezerState::Thawed)
                    .map_err(|e| cgroup(Box::new(e)))?;
            }
            libcontainer::container::wait_for_empty_cgroup(&manager);
            manager.remove().map_err(|e| cgroup(Box::new(e)))?;
        }
        None => tracing::warn!("neither libcontainer's config nor the hardened spec names the cgroup: no process killed"),
    }
    if let Some(userns) = g.root.read_plan(id).ok().and_then(|r| r.userns) {
        super::userns_setup::teardown(id, &userns);
    }
    g.root
        .remove_plan(id)
        .map_err(CommandError::io("failed to remove the hardened bundle"))?;
    std::fs::remove_dir_all(&dir).map_err(CommandError::io(format!(
        "failed to remove state dir {}",
        dir.display()
    )))
}

pub fn pause(g: &Global, id: &str) -> Result<(), CommandError> {
    let _s = tracing::info_span!("pause", id).entered();
    let _lock = g.root.lock_existing(id)?;
    load(g, id)?
        .pause()
        .map_err(CommandError::container(id, "pause"))
}

pub fn resume(g: &Global, id: &str) -> Result<(), CommandError> {
    let _s = tracing::info_span!("resume", id).entered();
    let _lock = g.root.lock_existing(id)?;
    load(g, id)?
        .resume()
        .map_err(CommandError::container(id, "resume"))
}
