//! Crash recovery: the intent journal of `create` and the `gc` verb.
//!
//! A `create` killed between its first side effect (the host id range) and the
//! point where libcontainer's state and Stockade's plan record describe everything
//! it made would leak the range and its idmapped mounts: nothing else names them.
//! So before any side effect `create` writes `<root>/.stockade/journal/<id>`, saying
//! which range database, state root and idmap directory it is about to use, and
//! removes it once the container exists (or the failed create is undone). Every
//! path `create` mounts for an id is a function of that record and the id, so a
//! journal left behind is enough to reclaim them all.
//!
//! A leftover journal is acted on, under the id's lock (so never while its create
//! still runs: the lock dies with its holder), by `delete` of the id, by the next
//! `create` of the id, and by `stockade gc` for every id of the state root.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{CommandError, Global};
use crate::userns::RangeAllocator;

/// What a `create` in progress may have made on the host, besides its plan dir.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// Range database a host id range may have been taken from.
    pub db: PathBuf,
    /// The state root (the range's scope).
    pub scope: String,
    /// Node idmap directory of this state root (`root/<id>`, `binds/<id>`,
    /// `layers/<id>` below it).
    pub idmap_dir: PathBuf,
}

fn journal_dir(g: &Global) -> PathBuf {
    g.root.path().join(".stockade").join("journal")
}

fn journal_path(g: &Global, id: &str) -> PathBuf {
    journal_dir(g).join(id)
}

/// Removes the temporary files of journal writes killed before their rename
/// (`.ID.PID.tmp`, `write_file_atomic`) that `owned` picks and whose writer is
/// gone: a create killed there left one that no journal names. A live writer's
/// (a create under way) is never touched.
fn remove_torn_journal_writes(dir: &Path, owned: impl Fn(&str) -> bool) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = name
            .strip_suffix(".tmp")
            .and_then(|n| n.rsplit_once('.'))
            .and_then(|(_, pid)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if !name.starts_with('.') || !owned(name) {
            continue;
        }
        // Signal 0: is the writer (a create under way) still there?
        let writer_alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        if !writer_alive {
            if let Err(e) = fs::remove_file(entry.path()) {
                tracing::warn!(error = %e, file = name, "failed to remove a torn journal write");
            }
        }
    }
}

/// Record the intent to create `id`, durably, before the first side effect.
pub fn begin(g: &Global, id: &str) -> Result<(), CommandError> {
    let intent = Intent {
        db: g.userns_db.clone(),
        scope: g.root.path().to_string_lossy().into_owned(),
        idmap_dir: g.root.rootfs_dir(),
    };
    let path = journal_path(g, id);
    let wrap = CommandError::io(format!(
        "cannot write the create journal {}",
        path.display()
    ));
    let dir = path.parent().expect("journal path has a parent");
    fs::create_dir_all(dir).map_err(wrap)?;
    let json = serde_json::to_vec(&intent).map_err(|e| CommandError::Io {
        what: "cannot serialize the create journal".into(),
        source: io::Error::other(e),
    })?;
    libcontainer::utils::write_file_atomic(&path, &json).map_err(CommandError::io(format!(
        "cannot write the create journal {}",
        path.display()
    )))
}

/// The container exists (or the failed create was undone): forget the intent.
pub fn end(g: &Global, id: &str) {
    match fs::remove_file(journal_path(g, id)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            tracing::warn!(error = %e, "failed to remove the create journal")
        }
        _ => {}
    }
}

/// Whether a create of `id` left its journal behind (it was killed).
pub fn pending(g: &Global, id: &str) -> bool {
    journal_path(g, id).exists()
}

/// Reclaim what an interrupted create of `id` may have made: the plan record's
/// user namespace (idmapped mounts, a rebuilt overlay, the range) if it got that
/// far, else everything the journal names. The caller holds the id's lock and has
/// checked that libcontainer has no state for it. Idempotent.
pub fn reclaim(g: &Global, id: &str) -> Result<(), CommandError> {
    let _s = tracing::info_span!("reclaim", id).entered();
    if let Some(userns) = g.root.read_plan(id).ok().and_then(|r| r.userns) {
        super::userns_setup::teardown(id, &userns);
    }
    let path = journal_path(g, id);
    match fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice::<Intent>(&bytes) {
            Ok(intent) => reclaim_intent(id, &intent),
            Err(e) => {
                tracing::warn!(error = %e, journal = %path.display(), "unreadable create journal; reclaiming by the state root's own paths")
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(error = %e, journal = %path.display(), "cannot read the create journal")
        }
    }
    // The journal may be missing or torn; the state root's own paths are known.
    reclaim_intent(
        id,
        &Intent {
            db: g.userns_db.clone(),
            scope: g.root.path().to_string_lossy().into_owned(),
            idmap_dir: g.root.rootfs_dir(),
        },
    );
    g.root
        .remove_plan(id)
        .map_err(CommandError::io("failed to remove the hardened bundle"))?;
    end(g, id);
    remove_torn_journal_writes(&journal_dir(g), |name| {
        name.strip_prefix('.')
            .and_then(|n| n.strip_prefix(id))
            .and_then(|n| n.strip_prefix('.'))
            .is_some()
    });
    tracing::info!("reclaimed what an interrupted create left");
    Ok(())
}

fn reclaim_intent(id: &str, intent: &Intent) {
    let mut targets = vec![intent.idmap_dir.join("root").join(id)];
    for sub in ["binds", "layers"] {
        let dir = intent.idmap_dir.join(sub).join(id);
        if let Ok(entries) = fs::read_dir(&dir) {
            targets.extend(entries.flatten().map(|e| e.path()));
        }
        targets.push(dir);
    }
    // Children first: the per-id directories go last.
    for target in &targets {
        if let Err(e) = crate::userns::idmap::remove(target) {
            tracing::warn!(error = %crate::error_chain(&e), target = %target.display(), "cannot remove a mount of an interrupted create");
        }
    }
    let alloc = RangeAllocator::new(intent.db.clone(), 1, 1, 1).scoped(&intent.scope);
    if let Err(e) = alloc.release(id) {
        tracing::warn!(error = %crate::error_chain(&e), "cannot release the range of an interrupted create");
    }
}

/// What `stockade gc` did.
#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    /// Ids whose interrupted create was reclaimed.
    pub reclaimed: Vec<String>,
    /// Idmap mount dirs of ids that no longer exist, removed.
    pub stale_mounts: Vec<PathBuf>,
    /// The state roots whose leftovers were judged: this one, and every other one
    /// that owns a part of the node's idmap tree.
    pub state_roots: Vec<PathBuf>,
    /// Idmap directories of state roots that no longer exist, removed.
    pub abandoned: Vec<PathBuf>,
    /// Ids of vanished state roots kept: their rootfs is still a process's root.
    pub in_use: Vec<String>,
    /// Idmap directories without an owner record (made by an older runtime, or for
    /// a relative `--root`), left alone: nothing tells whose they are.
    pub unattributed: usize,
    /// State roots gc could not finish, with the reason.
    pub failed: Vec<String>,
}

/// `stockade gc`: reclaim every interrupted create, idmapped mounts of containers
/// that no longer exist and protected copies of runtime binaries that have since
/// been replaced — of this state root and of every other one on the node, found
/// through the owner records of the idmap tree (`state_root::idmap_owner`). Each
/// root's leftovers are judged by that root's own id locks and state, so live
/// containers and creates in progress (their lock is held) are never touched. The
/// idmap directory of a state root that no longer exists goes entirely, except for
/// ids whose rootfs is still a process's root. A state root gc cannot finish is
/// named in the report's `failed` (and the log), and the others are still collected.
pub fn gc(g: &Global) -> Result<GcReport, CommandError> {
    let _s = tracing::info_span!("gc").entered();
    let mut report = GcReport::default();
    gc_root(g, &mut report)?;
    let own = g.root.rootfs_dir();
    for dir in entries(Path::new(crate::state_root::IDMAP_ROOT)) {
        if dir == own || !dir.is_dir() {
            continue;
        }
        let Some(root) = crate::state_root::idmap_owner(&dir) else {
            report.unattributed += 1;
            continue;
        };
        if root.is_dir() {
            let other = Global {
                root: crate::state_root::StateRoot::new(&root),
                ..g.clone()
            };
            if let Err(e) = gc_root(&other, &mut report) {
                let e = crate::error_chain(&e);
                tracing::warn!(root = %root.display(), error = %e, "cannot collect a state root");
                report.failed.push(format!("{}: {e}", root.display()));
            }
        } else {
            reclaim_abandoned(g, &dir, &root, &mut report);
        }
    }
    crate::self_protect::remove_replaced_binaries();
    Ok(report)
}

/// The leftovers of one state root: interrupted creates (their journals) and idmap
/// dirs of ids that do not exist there, each under the id's lock.
fn gc_root(g: &Global, report: &mut GcReport) -> Result<(), CommandError> {
    let _s = tracing::info_span!("gc_root", root = %g.root.path().display()).entered();
    report.state_roots.push(g.root.path().to_path_buf());
    let journal_dir = journal_dir(g);
    // Every id's torn journal writes whose writer is gone (see `reclaim`).
    remove_torn_journal_writes(&journal_dir, |_| true);
    for id in names(&journal_dir) {
        let lock = g.root.lock(&id)?;
        if g.root.container_dir(&id).join("state.json").exists() {
            // The create got far enough: the container and its plan describe it all.
            end(g, &id);
        } else if pending(g, &id) {
            // (Unless another gc reclaimed it while we waited for the lock.)
            reclaim(g, &id)?;
            report.reclaimed.push(id.clone());
        }
        g.root.release_lock(&id, lock);
    }
    // Lock files of ids with neither a container nor a journal: a create killed
    // before its journal was written left one (delete --force of the id removes it
    // too). Taken first, so a create under way is waited for, never undone.
    for id in names(&g.root.path().join(".stockade").join("locks")) {
        let lock = g.root.lock(&id)?;
        if !pending(g, &id) {
            g.root.release_lock(&id, lock);
        }
    }
    let idmap = g.root.rootfs_dir();
    for sub in ["root", "binds", "layers"] {
        for id in names(&idmap.join(sub)) {
            let lock = g.root.lock(&id)?;
            let dir = idmap.join(sub).join(&id);
            if g.root.exists(&id) || !dir.exists() {
                g.root.release_lock(&id, lock);
                continue;
            }
            reclaim_intent(
                &id,
                &Intent {
                    db: g.userns_db.clone(),
                    scope: g.root.path().to_string_lossy().into_owned(),
                    idmap_dir: idmap.clone(),
                },
            );
            report.stale_mounts.push(dir);
            g.root.release_lock(&id, lock);
        }
    }
    Ok(())
}

/// The idmap directory `dir` of `root`, a state root that no longer exists: no
/// runtime can address its containers any more (their state was in it), and no
/// create can be under way in it. Every id's mounts and range go, but for an id
/// whose rootfs is still some process's root (a container whose state root was
/// wiped under it): its range must not be handed out again while it runs.
fn reclaim_abandoned(g: &Global, dir: &Path, root: &Path, report: &mut GcReport) {
    let _s = tracing::info_span!("gc_abandoned", root = %root.display()).entered();
    let scope = root.to_string_lossy().into_owned();
    let mut kept = false;
    for sub in ["root", "binds", "layers"] {
        for id in names(&dir.join(sub)) {
            if report.in_use.contains(&id) {
                continue;
            }
            if is_some_process_root(&dir.join("root").join(&id)) {
                tracing::warn!(
                    id,
                    "a process runs in a container whose state root is gone; kept"
                );
                report.in_use.push(id);
                kept = true;
                continue;
            }
            reclaim_intent(
                &id,
                &Intent {
                    db: g.userns_db.clone(),
                    scope: scope.clone(),
                    idmap_dir: dir.to_path_buf(),
                },
            );
            report.stale_mounts.push(dir.join(sub).join(&id));
        }
    }
    if kept {
        return;
    }
    // Only empty directories are removed: anything unexpected in it stays. (The
    // record, and a temporary of it a killed create may have left.)
    for e in entries(dir) {
        let name = e
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.starts_with(crate::state_root::IDMAP_OWNER) && e.is_file() {
            let _ = fs::remove_file(&e);
        }
    }
    for sub in ["root", "binds", "layers"] {
        let _ = fs::remove_dir(dir.join(sub));
    }
    match fs::remove_dir(dir) {
        Ok(()) => report.abandoned.push(dir.to_path_buf()),
        Err(e) => {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot remove the idmap directory of a vanished state root")
        }
    }
}

/// Whether `rootfs` (a container's idmapped rootfs mount point) is the root
/// directory of a live process: the container's processes see their copy of that
/// mount as `/`, with the same device and inode. (Host id ranges cannot tell: on a
/// node with more than one range database they may overlap.)
fn is_some_process_root(rootfs: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(want) = fs::metadata(rootfs) else {
        return false;
    };
    entries(Path::new("/proc")).iter().any(|p| {
        fs::metadata(p.join("root")).is_ok_and(|m| m.dev() == want.dev() && m.ino() == want.ino())
    })
}

/// The entries of `dir` as paths (none when it cannot be read).
fn entries(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    out.sort();
    out.dedup();
    out
}
