//! The privileged half of a profile's user-namespace request: allocate the host id
//! range, write the mappings into the spec, and idmap the rootfs so an image owned by
//! host root looks root-owned inside the range.
//!
//! Containers of one pod (same CRI sandbox id) share one range. A pod's app
//! containers join the pause container's user namespace by path: they already join
//! its network/IPC/UTS namespaces by `/proc/<pid>/ns/*`, and setns into a namespace
//! owned by another user namespace needs that namespace, not a sibling with the same
//! mappings.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceBuilder, LinuxNamespaceType, Spec};

use crate::bind_source::{BindIdentities, CheckedSources};
use crate::commands::CommandError;
use crate::profile::UsernsRequest;
use crate::userns::{self, HostRange, RangeAllocator, UsernsError};

/// overlayfs cannot itself be idmapped (mount_setattr returns EINVAL on 6.x).
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct UsernsRecord {
    /// Allocation database the range was taken from.
    pub db: PathBuf,
    /// The state root the range was allocated for (ids are unique only within one).
    #[serde(default)]
    pub scope: Option<String>,
    pub range: Option<HostRange>,
    /// Where the idmapped rootfs is mounted, if it was idmapped.
    pub idmapped_rootfs: Option<PathBuf>,
    /// Idmapped clones of the spec's bind mount sources.
    #[serde(default)]
    pub idmapped_binds: Vec<PathBuf>,
    /// Idmapped clones of an overlay rootfs's lower layers.
    #[serde(default)]
    pub idmapped_layers: Vec<PathBuf>,
    /// The caller's overlay rootfs, rebuilt over `idmapped_layers`: put back on delete.
    #[serde(default)]
    pub rebuilt_overlay: Option<userns::overlay::SavedOverlay>,
    /// Where a rootfs that cannot be idmapped (overlayfs) is bound so the container's
    /// root can reach it, if it was.
    #[serde(default)]
    pub bound_rootfs: Option<PathBuf>,
    /// The user namespace joined by path (pod member), if any.
    pub joined: Option<PathBuf>,
    /// The spec's own mappings were reserved in the range database (see
    /// [`reserve_explicit`]): give them back on delete.
    #[serde(default)]
    pub reserved: bool,
}

/// Reserve the host ids the spec maps explicitly inside the profile's pool, so no
/// allocation hands them out and no other container shares them; refused, naming the
/// mapping, when they overlap a range another container holds. `None` when the spec
/// maps nothing inside the pool.
pub fn reserve_explicit(
    id: &str,
    spec: &Spec,
    pool: crate::profile::schema::HostIdRange,
    db: &Path,
    scope: &Path,
) -> Result<Option<UsernsRecord>, CommandError> {
    let wanted = userns::explicit_in_pool(
        spec,
        HostRange {
            start: pool.start,
            size: pool.size,
        },
    );
    if wanted.is_empty() {
        return Ok(None);
    }
    // Pool bounds do not matter for a reservation (the spec's ids are its own).
    let scope = scope.to_string_lossy().into_owned();
    RangeAllocator::new(db.to_path_buf(), 1, 1, 1)
        .scoped(&scope)
        .reserve(id, &wanted)
        .map_err(CommandError::Userns)?;
    Ok(Some(UsernsRecord {
        db: db.to_path_buf(),
        scope: Some(scope),
        reserved: true,
        ..Default::default()
    }))
}

pub fn allocator(req: &UsernsRequest, db: &Path, scope: &str) -> RangeAllocator {
    RangeAllocator::new(
        db.to_path_buf(),
        req.host_range.start,
        req.host_range.size,
        req.size,
    )
    .scoped(scope)
}

/// The bind sources admission opened and the identities the init must find.
pub struct Binds<'a> {
    pub checked: &'a CheckedSources,
    pub identities: &'a mut BindIdentities,
}

/// Apply `req` to `spec`. On error everything this function made is undone.
pub fn setup(
    id: &str,
    spec: &mut Spec,
    req: &UsernsRequest,
    db: &Path,
    state_root: &Path,
    idmap_dir: &Path,
    mut binds: Binds<'_>,
) -> Result<UsernsRecord, CommandError> {
    let _s = tracing::debug_span!("userns").entered();
    let scope = state_root.to_string_lossy().into_owned();
    let alloc = allocator(req, db, &scope);
    let sandbox = req.sandbox_id.as_deref().filter(|s| *s != id);
    let range = alloc
        .allocate(id, req.sandbox_id.as_deref())
        .map_err(CommandError::Userns)?;
    let mut record = UsernsRecord {
        db: db.to_path_buf(),
        scope: Some(scope),
        range: Some(range),
        ..Default::default()
    };
    let result = (|| {
        if sandbox.is_some() {
            if let Some(path) = pod_userns_path(spec) {
                join(spec, &path);
                record.joined = Some(path);
            }
        }
        if record.joined.is_none() {
            userns::inject(spec, range).map_err(CommandError::Userns)?;
        }
        // A pod member shares its sandbox's range, and the sandbox's namespace maps
        // exactly that range, so the same idmapping fits the namespace it joins.
        // Without it the member's image would look owned by the overflow id.
        let (uid, gid) = userns::mappings_for(range, range.size);
        let idmap = userns::IdmapUserns::new(&uid, &gid).map_err(CommandError::Userns)?;
        let rootfs = idmap_rootfs(
            id,
            spec,
            &idmap,
            idmap_dir,
            &mut record.idmapped_layers,
            &mut record.rebuilt_overlay,
        )?;
        match rootfs {
            RootfsMount::Idmapped(t) => record.idmapped_rootfs = Some(t),
            RootfsMount::Bound(t) => record.bound_rootfs = Some(t),
            RootfsMount::None => {}
        }
        idmap_binds(
            id,
            spec,
            &idmap,
            idmap_dir,
            &mut binds,
            &mut record.idmapped_binds,
        )?;
        if sysfs_for_foreign_netns(spec) {
            // The runtime's own substitution: the init must find this /sys.
            binds
                .identities
                .insert_runtime_source(Path::new("/sys"))
                .map_err(CommandError::io("cannot open /sys".to_string()))?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        teardown(id, &record);
        return Err(e);
    }
    Ok(record)
}

/// Undo [`setup`]; idempotent, used by a failed create and by delete.
pub fn teardown(id: &str, record: &UsernsRecord) {
    let mounts = record.idmapped_binds.iter();
    for target in mounts
        .chain(&record.idmapped_rootfs)
        .chain(&record.bound_rootfs)
    {
        if let Err(e) = userns::idmap::remove(target) {
            tracing::warn!(error = %crate::error_chain(&e), target = %target.display(), "failed to remove a mount made for the container");
        }
    }
    // The caller's overlay goes back before the layer clones it was rebuilt over
    // are detached.
    if let Some(saved) = &record.rebuilt_overlay {
        if let Err(e) = saved.restore() {
            tracing::warn!(error = %e, rootfs = %saved.mount_point.display(), "failed to put the original overlay rootfs back");
        }
    }
    for target in &record.idmapped_layers {
        if let Err(e) = userns::idmap::remove(target) {
            tracing::warn!(error = %crate::error_chain(&e), target = %target.display(), "failed to remove a mount made for the container");
        }
    }
    for made in [&record.idmapped_binds, &record.idmapped_layers] {
        if let Some(parent) = made.first().and_then(|t| t.parent()) {
            let _ = std::fs::remove_dir(parent);
        }
    }
    if record.range.is_some() || record.reserved {
        // Pool bounds do not matter for release.
        let mut alloc = RangeAllocator::new(record.db.clone(), 1, 1, 1);
        if let Some(scope) = &record.scope {
            alloc = alloc.scoped(scope);
        }
        if let Err(e) = alloc.release(id) {
            tracing::warn!(error = %crate::error_chain(&e), "failed to release the user namespace range");
        }
    }
}

/// The user namespace of the process whose namespaces a pod member joins, when that
/// is not the host's own.
fn pod_userns_path(spec: &Spec) -> Option<PathBuf> {
    let namespaces = spec.linux().as_ref()?.namespaces().as_ref()?;
    let host = std::fs::metadata("/proc/self/ns/user").ok()?.ino();
    namespaces.iter().find_map(|ns| {
        let path = ns.path().as_ref()?;
        let pid_dir = path.parent()?.parent()?;
        let candidate = pid_dir.join("ns").join("user");
        let ino = std::fs::metadata(&candidate).ok()?.ino();
        (ino != host).then_some(candidate)
    })
}

fn join(spec: &mut Spec, path: &Path) {
    if let Some(linux) = spec.linux_mut().as_mut() {
        let mut namespaces = linux.namespaces().clone().unwrap_or_default();
        namespaces.retain(|n| n.typ() != LinuxNamespaceType::User);
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::User)
                .path(path.to_path_buf())
                .build()
                .expect("type and path are set"),
        );
        linux.set_namespaces(Some(namespaces));
        linux.set_uid_mappings(None);
        linux.set_gid_mappings(None);
    }
}

/// What [`idmap_rootfs`] mounted under the node's idmap dir.
enum RootfsMount {
    Idmapped(PathBuf),
    Bound(PathBuf),
    None,
}

/// Idmap a plain-directory rootfs onto `<idmap_dir>/root/<id>` and point the spec at
/// it. An overlay rootfs (containerd's snapshots) cannot be idmapped: it is bound
/// there as it is, because the caller's bundle directory may be closed to the
/// container's unprivileged root (containerd makes it 0700 when its spec has no user
/// namespace, and the container's init mounts the rootfs from inside the new user
/// namespace). Its files then show as the overflow id inside the container, which
/// the read-only rootfs default makes harmless for reading images.
fn idmap_rootfs(
    id: &str,
    spec: &mut Spec,
    idmap: &userns::IdmapUserns,
    idmap_dir: &Path,
    layers: &mut Vec<PathBuf>,
    overlay: &mut Option<userns::overlay::SavedOverlay>,
) -> Result<RootfsMount, CommandError> {
    let Some(mut root) = spec.root().clone() else {
        return Ok(RootfsMount::None);
    };
    let source = root.path().clone();
    let target = idmap_dir.join("root").join(id);
    make_dir_0711(target.parent().expect("joined path has a parent"))?;
    // A create that crashed may have left a mount here; never stack on it.
    userns::idmap::remove(&target).map_err(CommandError::Userns)?;
    let mounted = if is_overlay(&source)? {
        let rebuilt = idmap_overlay_layers(id, &source, idmap, idmap_dir, layers).inspect_err(
            |e| tracing::info!(error = %crate::error_chain(e), "cannot idmap the overlay's layers"),
        );
        match rebuilt {
            Ok(Some(saved)) => *overlay = Some(saved),
            Ok(None) | Err(_) => {
                // Not an overlay we can rebuild (a read-only view, layers on a
                // filesystem without idmap support): its files stay owned by host
                // root.
                tracing::info!(rootfs = %source.display(), "overlay rootfs used without idmapping");
            }
        }
        // Either way the overlay's root directory is containerd's upper dir, owned by
        // host root, which the container's mapped root cannot write: a minimal image
        // (the pause image, distroless) lacks /proc, /dev, /tmp, ... and the init
        // could not create them. Make the spec's mount points now, as host root, in
        // the upper layer (the container's own writable layer, as runc would);
        // nothing of the caller's lower layers or of the upper dir's owner changes.
        precreate_mount_points(&source, spec)?;
        // The caller's bundle dir may be closed to the container's mapped root.
        userns::idmap::bind(&source, &target).map_err(CommandError::Userns)?;
        RootfsMount::Bound(target.clone())
    } else {
        idmap
            .mount(&source, &target)
            .map_err(CommandError::Userns)?;
        RootfsMount::Idmapped(target.clone())
    };
    root.set_path(target);
    spec.set_root(Some(root));
    Ok(mounted)
}

/// Rebuild containerd's overlay at `source` over idmapped clones of its lower
/// layers (see `userns::overlay`). `Ok(None)`: nothing to rebuild (no upper layer).
fn idmap_overlay_layers(
    id: &str,
    source: &Path,
    idmap: &userns::IdmapUserns,
    idmap_dir: &Path,
    made: &mut Vec<PathBuf>,
) -> Result<Option<userns::overlay::SavedOverlay>, CommandError> {
    let io = |what: &str| CommandError::io(format!("{what} {}", source.display()));
    let Some(ov) = userns::overlay::find(source).map_err(io("cannot read the mounts of"))? else {
        return Ok(None);
    };
    if !ov.has_upper() {
        return Ok(None);
    }
    let dir = idmap_dir.join("layers").join(id);
    make_dir_0711(&dir)?;
    let mut lowers = Vec::new();
    for (i, lower) in ov.lowerdirs().iter().enumerate() {
        let clone = dir.join(i.to_string());
        userns::idmap::remove(&clone).map_err(CommandError::Userns)?;
        let mounted = idmap.mount(lower, &clone);
        if let Err(e) = mounted {
            undo_layers(made);
            return Err(CommandError::Userns(e));
        }
        made.push(clone.clone());
        lowers.push(clone);
    }
    match userns::overlay::remount_with_lowerdirs(&ov, &lowers) {
        Ok(saved) => Ok(Some(saved)),
        Err(e) => {
            undo_layers(made);
            Err(io("cannot rebuild the overlay at")(e))
        }
    }
}

fn undo_layers(made: &mut Vec<PathBuf>) {
    for clone in made.drain(..) {
        let _ = userns::idmap::remove(&clone);
    }
}

/// Idmap every bind mount source so a volume owned by host root looks root-owned in
/// the container's range, as the rootfs does. `rbind` sources are cloned with their
/// submounts. A source on a filesystem that cannot be idmapped (overlayfs, some
/// network filesystems) keeps its plain bind: its files show as the overflow id.
/// What is idmapped is the object admission opened and checked (`binds.checked`),
/// never the path looked up again; a source admission could not open is left to
/// the init, which refuses it if it has appeared since.
fn idmap_binds(
    id: &str,
    spec: &mut Spec,
    idmap: &userns::IdmapUserns,
    idmap_dir: &Path,
    binds: &mut Binds<'_>,
    made: &mut Vec<PathBuf>,
) -> Result<(), CommandError> {
    let Some(mut mounts) = spec.mounts().clone() else {
        return Ok(());
    };
    let dir = idmap_dir.join("binds").join(id);
    for (index, m) in mounts.iter_mut().enumerate() {
        let opts = m.options().clone().unwrap_or_default();
        let recursive = opts.iter().any(|o| o == "rbind");
        let is_bind =
            recursive || opts.iter().any(|o| o == "bind") || m.typ().as_deref() == Some("bind");
        let Some(source) = m.source().clone().filter(|s| is_bind && s.is_absolute()) else {
            continue;
        };
        let Some(checked) = binds.checked.get(&source) else {
            continue;
        };
        if is_overlay_fd(&source, checked.fd.as_fd())? {
            continue;
        }
        if made.is_empty() {
            make_dir_0711(&dir)?;
        }
        let target = dir.join(index.to_string());
        userns::idmap::remove(&target).map_err(CommandError::Userns)?;
        match idmap.mount_opened(&source, checked.fd.as_fd(), &target, recursive) {
            Ok(()) => {
                made.push(target.clone());
                // The clone's root is the admitted object itself.
                binds.identities.insert(target.clone(), checked.identity);
                m.set_source(Some(target));
            }
            Err(e) => tracing::info!(
                source = %source.display(),
                error = %crate::error_chain(&e),
                "bind source cannot be idmapped; its files show as the overflow id"
            ),
        }
    }
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// Create every mount destination the rootfs lacks (a directory, or an empty file
/// for a bind of a file), resolving each path inside `rootfs` with libpathrs so a
/// symlink in the image can never lead outside it (CVE-2021-30465).
fn precreate_mount_points(rootfs: &Path, spec: &Spec) -> Result<(), CommandError> {
    use pathrs::flags::OpenFlags;
    use std::os::unix::fs::PermissionsExt;
    let wrap = |dest: &Path, e: pathrs::error::Error| CommandError::Io {
        what: format!("cannot create mount point {} in the rootfs", dest.display()),
        source: std::io::Error::other(e),
    };
    let root = pathrs::Root::open(rootfs).map_err(|e| wrap(rootfs, e))?;
    let dir_perm = std::fs::Permissions::from_mode(0o755);
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination();
        if root.resolve(dest).is_ok() {
            continue;
        }
        let file_source = m
            .source()
            .as_ref()
            .filter(|_| m.typ().as_deref() == Some("bind"))
            .is_some_and(|s| s.is_file());
        if file_source {
            if let Some(parent) = dest.parent() {
                root.mkdir_all(parent, &dir_perm)
                    .map_err(|e| wrap(dest, e))?;
            }
            root.create_file(
                dest,
                OpenFlags::O_EXCL
                    | OpenFlags::O_CREAT
                    | OpenFlags::O_NOFOLLOW
                    | OpenFlags::O_CLOEXEC,
                &std::fs::Permissions::from_mode(0o644),
            )
            .map_err(|e| wrap(dest, e))?;
        } else {
            root.mkdir_all(dest, &dir_perm).map_err(|e| wrap(dest, e))?;
        }
    }
    Ok(())
}

/// Mounting sysfs needs CAP_SYS_ADMIN over the user namespace that owns the network
/// namespace. A pod's network namespace is pinned by containerd and owned by the
/// host's user namespace, so inside the container's own user namespace the mount
/// fails with EPERM. As runc does, such a container gets the host's /sys bound
/// read-only instead (masked paths still apply on top of it). Runs after the
/// profile check: this is the runtime's substitution, not the spec's request.
/// True when a sysfs mount was replaced.
fn sysfs_for_foreign_netns(spec: &mut Spec) -> bool {
    let joins_netns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| {
            nss.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_some())
        });
    if !joins_netns {
        return false;
    }
    let Some(mut mounts) = spec.mounts().clone() else {
        return false;
    };
    let mut replaced = false;
    for m in mounts
        .iter_mut()
        .filter(|m| m.typ().as_deref() == Some("sysfs"))
    {
        replaced = true;
        m.set_typ(Some("bind".into()));
        m.set_source(Some(PathBuf::from("/sys")));
        m.set_options(Some(
            ["rbind", "nosuid", "noexec", "nodev", "ro"]
                .map(String::from)
                .to_vec(),
        ));
    }
    spec.set_mounts(Some(mounts));
    replaced
}

/// [`is_overlay`] of the object `fd` (an opened `path`).
fn is_overlay_fd(path: &Path, fd: BorrowedFd<'_>) -> Result<bool, CommandError> {
    let fs = nix::sys::statfs::fstatfs(fd).map_err(|e| CommandError::Io {
        what: format!("cannot stat {}", path.display()),
        source: e.into(),
    })?;
    Ok(fs.filesystem_type().0 as i64 == OVERLAYFS_SUPER_MAGIC)
}

fn is_overlay(path: &Path) -> Result<bool, CommandError> {
    let fs = nix::sys::statfs::statfs(path).map_err(|e| CommandError::Io {
        what: format!("cannot stat {}", path.display()),
        source: e.into(),
    })?;
    Ok(fs.filesystem_type().0 as i64 == OVERLAYFS_SUPER_MAGIC)
}

/// The container's mapped root must traverse to its idmapped mounts: 0711, no more.
fn make_dir_0711(dir: &Path) -> Result<(), CommandError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)
        .map_err(CommandError::io(format!("cannot create {}", dir.display())))
}

impl From<UsernsError> for CommandError {
    fn from(e: UsernsError) -> Self {
        CommandError::Userns(e)
    }
}
