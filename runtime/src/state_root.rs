//! Layout of the state root (`--root`): libcontainer's per-container directories,
//! plus Stockade's hardened bundles under a dot-directory no container id can name
//! (`.` is allowed in ids, but an id never *is* a path with a slash).
//!
//! ```text
//! <root>/<id>/state.json                  libcontainer's state
//! <root>/.stockade/plans/<id>/config.json  the hardened spec libcontainer runs
//! <root>/.stockade/plans/<id>/plan.json    landlock domains, original bundle, the admitting profile
//! <root>/.stockade/locks/<id>              flock held by create and delete of <id>
//! <root>/.stockade/cache/                  parses of profiles (`file_cache`)
//! <root>/.stockade/mounts/                 snapshots of the cgroup v1 mounts (`cgroup_mounts`)
//! /run/stockade/rootfs/<hash(root)>/root/<id>       idmapped rootfs (see `rootfs_dir`)
//! /run/stockade/rootfs/<hash(root)>/binds/<id>/<n>  idmapped bind mount sources
//! /run/stockade/rootfs/<hash(root)>/.owner          the state root that made it
//! ```
//!
//! The idmap tree is node-wide while ids are only unique within a state root, so each
//! state root's part of it carries an owner record naming that root: `stockade gc`
//! from any `--root` can then tell whose a leftover directory is, and judge it by
//! that root's locks and state (see `commands::recover::gc`).

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::landlock::plan::LandlockPlan;
use crate::lockfile::{FileLock, Kind};

/// Node-wide parent of idmapped rootfs mounts (see [`StateRoot::rootfs_dir`]).
pub const IDMAP_ROOT: &str = "/run/stockade/rootfs";

/// The owner record in a state root's idmap directory (a dot name: never an id).
pub const IDMAP_OWNER: &str = ".owner";

/// What [`IDMAP_OWNER`] holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnerRecord {
    /// The state root, exactly as the runtime that made the directory was given it.
    state_root: PathBuf,
}

/// The state root that owns the idmap directory `dir` (a child of [`IDMAP_ROOT`]), if
/// its owner record names one that really maps to `dir`: an absolute path whose hash
/// is `dir`'s name. `None` for a directory an older runtime made (no record), a torn
/// or foreign record, or a relative `--root`: such a directory cannot be attributed.
pub fn idmap_owner(dir: &Path) -> Option<PathBuf> {
    let bytes = crate::bounded_read::read(&dir.join(IDMAP_OWNER), 64 * 1024).ok()?;
    let record: OwnerRecord = serde_json::from_slice(&bytes).ok()?;
    let root = record.state_root;
    (root.is_absolute() && StateRoot::new(&root).rootfs_dir().file_name() == dir.file_name())
        .then_some(root)
}

#[derive(Debug, thiserror::Error)]
pub enum StateRootError {
    #[error("state root {path}: cannot create or use it")]
    CreateRoot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("container {id:?}: cannot lock {}", path.display())]
    Lock {
        id: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{field}: {} is inside the runtime's own state ({}); a container may not see it", path.display(), state.display())]
    RuntimeStateSource {
        field: String,
        path: PathBuf,
        state: PathBuf,
    },
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("cannot write the hardened bundle for container {id:?}")]
    WritePlan {
        id: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the hardened bundle for container {id:?}")]
    ReadPlan {
        id: String,
        #[source]
        source: io::Error,
    },
    #[error("hardened bundle of container {id:?} is corrupt")]
    CorruptPlan {
        id: String,
        #[source]
        source: serde_json::Error,
    },
}

/// What Stockade keeps beside libcontainer's state for one container.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PlanRecord {
    /// The bundle the caller gave; `state` reports it as runc does.
    pub bundle: PathBuf,
    /// Landlock domains applied to the init and every exec'd process.
    pub landlock: Vec<LandlockPlan>,
    /// Name and version of the profile that admitted the container, if any.
    pub profile: Option<String>,
    /// That profile's rules, as loaded at create: `exec` and `update` are judged by
    /// them (see `profile::gate`), not by whatever the node config names later.
    #[serde(default)]
    pub policy: Option<crate::profile::Profile>,
    /// User namespace range and idmapped rootfs to give back on delete.
    #[serde(default)]
    pub userns: Option<crate::userns::setup::UsernsRecord>,
}

#[derive(Debug, Clone)]
pub struct StateRoot {
    root: PathBuf,
}

impl StateRoot {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    pub fn plan_dir(&self, id: &str) -> PathBuf {
        self.root.join(".stockade").join("plans").join(id)
    }

    /// Where this state root's idmapped mounts live:
    /// `/run/stockade/rootfs/<hash of the state root>/{root,binds}/<id>`.
    ///
    /// Not under the state root: the container's root, an unprivileged host uid, must
    /// traverse every ancestor of its rootfs (libcontainer bind-mounts it from inside
    /// the new user namespace), and a state root may sit below a 0700 directory. This
    /// tree is 0711 all the way down and holds nothing but mount points.
    pub fn rootfs_dir(&self) -> PathBuf {
        use std::hash::{Hash, Hasher};
        // SipHash with fixed keys: the same state root always names the same dir.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.root.hash(&mut h);
        Path::new(IDMAP_ROOT).join(format!("{:016x}", h.finish()))
    }

    /// Create the layout: plans are root's alone (0700); the idmap tree is 0711.
    pub fn ensure(&self) -> Result<(), StateRootError> {
        let wrap = |source| StateRootError::CreateRoot {
            path: self.root.clone(),
            source,
        };
        for sub in ["plans", "locks"] {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(self.root.join(".stockade").join(sub))
                .map_err(wrap)?;
        }
        let idmap = self.rootfs_dir();
        DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&idmap)
            .map_err(wrap)?;
        for dir in idmap
            .ancestors()
            .take_while(|d| d.starts_with("/run/stockade"))
        {
            std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o711))
                .map_err(wrap)?;
        }
        self.write_owner(&idmap).map_err(wrap)
    }

    /// Record in `idmap` that this state root owns it (atomically, once): made after
    /// the state root itself, so a record always names a root that existed.
    fn write_owner(&self, idmap: &Path) -> io::Result<()> {
        if idmap_owner(idmap).as_deref() == Some(self.root.as_path()) {
            return Ok(());
        }
        let json = serde_json::to_vec(&OwnerRecord {
            state_root: self.root.clone(),
        })
        .map_err(io::Error::other)?;
        let tmp = idmap.join(format!("{IDMAP_OWNER}.{}", std::process::id()));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        io::Write::write_all(&mut f, &json)?;
        f.sync_all()?;
        fs::rename(&tmp, idmap.join(IDMAP_OWNER))
    }

    /// Take the lock of container `id`, waiting for whoever holds it. `create` holds
    /// it from its existence check until libcontainer has written the state (or the
    /// failed create is undone), `delete` for its whole run: two creates of one id
    /// cannot both pass the check, and neither can undo what the other made.
    pub fn lock(&self, id: &str) -> Result<FileLock, StateRootError> {
        let dir = self.root.join(".stockade").join("locks");
        let path = dir.join(id);
        let wrap = |source| StateRootError::Lock {
            id: id.to_string(),
            path: path.clone(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(wrap)?;
        FileLock::acquire(&path, Kind::Process).map_err(wrap)
    }

    /// [`Self::lock`] for a verb on a container that must exist (`start`, `pause`,
    /// `resume`; `kill` after a failed state write): `None` when the container is
    /// gone once the lock is held (a delete finished meanwhile, or it never
    /// existed). The lock file is then removed again, as delete removes it, so a
    /// verb on a missing id leaves no file behind.
    pub fn lock_existing(&self, id: &str) -> Result<Option<FileLock>, StateRootError> {
        let lock = self.lock(id)?;
        if self.exists(id) {
            return Ok(Some(lock));
        }
        self.release_lock(id, lock);
        Ok(None)
    }

    /// Releases `lock`, the lock of `id`, and removes its file when no container
    /// of `id` exists: a lock file goes with its container, whichever verb held
    /// it last (a delete, a failed create, gc's reclaim, a verb on a missing id).
    /// Waiters on the removed file retry on a fresh one ([`FileLock::acquire`]).
    pub fn release_lock(&self, id: &str, lock: FileLock) {
        if self.exists(id) {
            return;
        }
        if let Err(e) = lock.remove() {
            tracing::warn!(error = %e, id, "failed to remove the lock file of an id with no container");
        }
    }

    /// Refuse a rootfs that is, holds or lies inside the runtime's own state (this
    /// state root, or the node-wide `/run/stockade`: ranges, idmapped mounts,
    /// protected binaries), and a bind mount source inside it. Whatever the
    /// profile: a container that can write there can rewrite another container's
    /// plan or its own range. Paths are resolved (symlinks followed) where they
    /// exist; `rootfs` already is (`bundle::load` resolved it a moment ago, in this
    /// process: resolving it again would only read the same links once more).
    pub fn refuse_runtime_state(&self, spec: &Spec, rootfs: &Path) -> Result<(), StateRootError> {
        let resolve = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let state_dirs = [resolve(&self.root), PathBuf::from("/run/stockade")];
        // `real`: the path as resolved (the caller resolves it).
        let check = |field: String, real: PathBuf, holding: bool| match state_dirs
            .iter()
            .find(|s| real.starts_with(s) || (holding && s.starts_with(&real)))
        {
            Some(state) => Err(StateRootError::RuntimeStateSource {
                field,
                path: real,
                state: state.clone(),
            }),
            None => Ok(()),
        };
        check("root.path".into(), rootfs.to_path_buf(), true)?;
        for (i, m) in spec.mounts().iter().flatten().enumerate() {
            let bind = crate::bundle::is_bind_mount(m);
            if let Some(source) = m.source().as_ref().filter(|s| bind && s.is_absolute()) {
                check(format!("mounts[{i}].source"), resolve(source), false)?;
            }
        }
        Ok(())
    }

    pub fn exists(&self, id: &str) -> bool {
        self.container_dir(id).exists()
    }

    /// Write the hardened spec and plan record; returns the hardened bundle dir.
    pub fn write_plan(
        &self,
        id: &str,
        spec: &Spec,
        record: &PlanRecord,
    ) -> Result<PathBuf, StateRootError> {
        let dir = self.plan_dir(id);
        let wrap = |source| StateRootError::WritePlan {
            id: id.to_string(),
            source,
        };
        if dir.exists() {
            // Left by a create that died before libcontainer wrote its state: the
            // container does not exist, so the stale plan may go.
            fs::remove_dir_all(&dir).map_err(wrap)?;
        }
        DirBuilder::new().mode(0o700).create(&dir).map_err(wrap)?;
        let spec_json = serde_json::to_vec(spec).map_err(|e| wrap(io::Error::other(e)))?;
        fs::write(dir.join("config.json"), spec_json).map_err(wrap)?;
        let rec_json = serde_json::to_vec(record).map_err(|e| wrap(io::Error::other(e)))?;
        fs::write(dir.join("plan.json"), rec_json).map_err(wrap)?;
        Ok(dir)
    }

    /// Replace the hardened spec of a live container (after `update` changed its
    /// resources), atomically: a reader sees the old spec or the new one.
    pub fn rewrite_spec(&self, id: &str, spec: &Spec) -> Result<(), StateRootError> {
        let dir = self.plan_dir(id);
        let wrap = |source| StateRootError::WritePlan {
            id: id.to_string(),
            source,
        };
        let json = serde_json::to_vec(spec).map_err(|e| wrap(io::Error::other(e)))?;
        let tmp = dir.join(format!(".config.json.{}", std::process::id()));
        fs::write(&tmp, json).map_err(wrap)?;
        fs::rename(&tmp, dir.join("config.json")).map_err(wrap)
    }

    pub fn read_plan(&self, id: &str) -> Result<PlanRecord, StateRootError> {
        let path = self.plan_dir(id).join("plan.json");
        let bytes = fs::read(&path).map_err(|source| StateRootError::ReadPlan {
            id: id.to_string(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| StateRootError::CorruptPlan {
            id: id.to_string(),
            source,
        })
    }

    /// Remove the plan dir; a missing one is fine (idempotent delete).
    pub fn remove_plan(&self, id: &str) -> io::Result<()> {
        match fs::remove_dir_all(self.plan_dir(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Container ids with a libcontainer state dir.
    pub fn list(&self) -> io::Result<Vec<String>> {
        let mut ids = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && entry.path().join("state.json").exists() {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idmap_dirs_name_the_state_root_that_owns_them() {
        let base = tempfile::tempdir().unwrap();
        let root = StateRoot::new(Path::new("/run/containerd/runc/k8s.io"));
        let name = root.rootfs_dir().file_name().unwrap().to_owned();
        let dir = base.path().join(&name);
        fs::create_dir(&dir).unwrap();
        assert_eq!(
            idmap_owner(&dir),
            None,
            "an older runtime's dir has no owner"
        );
        root.write_owner(&dir).unwrap();
        assert_eq!(idmap_owner(&dir).as_deref(), Some(root.path()));
        root.write_owner(&dir).unwrap();
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "one record, no temporary left"
        );
        // A record that does not hash to its directory's name attributes nothing.
        let elsewhere = base.path().join("0123456789abcdef");
        fs::create_dir(&elsewhere).unwrap();
        root.write_owner(&elsewhere).unwrap();
        assert_eq!(idmap_owner(&elsewhere), None);
        // Nor does a relative state root, or a torn record.
        let relative = StateRoot::new(Path::new("state"));
        let dir = base.path().join(relative.rootfs_dir().file_name().unwrap());
        fs::create_dir(&dir).unwrap();
        relative.write_owner(&dir).unwrap();
        assert_eq!(idmap_owner(&dir), None);
        fs::write(dir.join(IDMAP_OWNER), b"{\"state_root\":").unwrap();
        assert_eq!(idmap_owner(&dir), None);
    }

    #[test]
    fn plan_round_trip_and_idempotent_removal() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(&dir.path().join("state"));
        fs::create_dir_all(root.path().join(".stockade").join("plans")).unwrap();
        let spec = Spec::default();
        let rec = PlanRecord {
            bundle: "/b".into(),
            ..Default::default()
        };
        let plan = root.write_plan("c1", &spec, &rec).unwrap();
        assert!(plan.join("config.json").exists());
        assert_eq!(root.read_plan("c1").unwrap().bundle, PathBuf::from("/b"));
        root.remove_plan("c1").unwrap();
        root.remove_plan("c1").unwrap();
        assert!(root.list().unwrap().is_empty(), "plans are not containers");
    }

    /// libcontainer's state is replaced, never truncated in place: a runtime killed
    /// mid-write must leave a loadable state. A reader that opened the old file keeps
    /// reading the whole old document, and no temp file is left beside it.
    #[test]
    fn libcontainer_state_is_replaced_atomically() {
        use libcontainer::container::{ContainerStatus, State};
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let created = State::new("c1", ContainerStatus::Created, Some(42), "/b".into());
        created.save(dir.path()).unwrap();
        let mut old = fs::File::open(State::file_path(dir.path())).unwrap();
        let running = State::new("c1", ContainerStatus::Running, Some(42), "/b".into());
        running.save(dir.path()).unwrap();
        let mut text = String::new();
        old.read_to_string(&mut text).unwrap();
        let seen: State = serde_json::from_str(&text).unwrap();
        assert_eq!(
            seen.status,
            ContainerStatus::Created,
            "old file changed in place"
        );
        assert_eq!(
            State::load(dir.path()).unwrap().status,
            ContainerStatus::Running
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }
}
