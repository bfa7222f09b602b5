//! Errors of host id range allocation, idmapped mounts and mapping injection.

use std::io;
use std::path::PathBuf;

/// Why a container could not get, keep or give back its user namespace setup.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("user namespace pool {start}+{size} (block {block}) is invalid: {why}")]
    InvalidPool {
        start: u32,
        size: u32,
        block: u32,
        why: &'static str,
    },

    #[error(
        "user namespace pool {start}+{size} is exhausted: no free block of {block} host ids \
         ({used} blocks in use)"
    )]
    PoolExhausted {
        start: u32,
        size: u32,
        block: u32,
        used: usize,
    },

    #[error(
        "container {container:?} already holds the host id range of sandbox {held:?}, \
         not of {requested:?}"
    )]
    SandboxMismatch {
        container: String,
        held: String,
        requested: String,
    },

    #[error(
        "{field}: host ids {start}..{end} overlap the range {held_start}..{held_end} held by {owner:?}"
    )]
    ExplicitOverlap {
        field: String,
        start: u64,
        end: u64,
        owner: String,
        held_start: u64,
        held_end: u64,
    },

    #[error("cannot lock the host id range database {}", path.display())]
    LockDatabase {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot read the host id range database {}", path.display())]
    ReadDatabase {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("host id range database {} is corrupt", path.display())]
    CorruptDatabase {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("host id range database {} holds overlapping ranges", path.display())]
    OverlappingDatabase { path: PathBuf },

    #[error("cannot write the host id range database {}", path.display())]
    WriteDatabase {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot clone the user namespace holder process into a new user namespace")]
    HolderClone(#[source] nix::Error),

    #[error("cannot write {}", path.display())]
    WriteIdMap {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot open user namespace {}", path.display())]
    OpenUserNamespace {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("{kind} mapping is empty: an idmapped mount needs at least one range")]
    EmptyIdMap { kind: &'static str },

    #[error("cannot inspect idmap source {}", path.display())]
    StatSource {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("idmap source {} is neither a directory nor a regular file", path.display())]
    UnsupportedSource { path: PathBuf },

    #[error("cannot create idmap target {}", path.display())]
    CreateTarget {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("open_tree(OPEN_TREE_CLONE) of {} failed", path.display())]
    OpenTree {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("mount_setattr(MOUNT_ATTR_IDMAP) on a clone of {} failed", path.display())]
    SetIdmap {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("move_mount of the idmapped clone of {} onto {} failed", from.display(), to.display())]
    MoveMount {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot bind {} onto {}", from.display(), to.display())]
    BindMount {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot unmount idmapped mount {}", path.display())]
    Unmount {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot remove idmap target {}", path.display())]
    RemoveTarget {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "linux.{field}[{index}]: maps container ids {container_id}..{} onto host root \
         (host id 0); container root must never be host root",
        u64::from(*container_id) + u64::from(*size)
    )]
    MapsHostRoot {
        field: &'static str,
        index: usize,
        container_id: u32,
        size: u32,
    },

    #[error(
        "linux.namespaces: joins the existing user namespace {path}; Stockade cannot give \
         it its own host id range"
    )]
    JoinsUserNamespace { path: String },

    #[error("linux: section missing; cannot add a user namespace to the spec")]
    NoLinuxSection,

    #[error("host id range {start}+{size} is empty")]
    EmptyRange { start: u32, size: u32 },
}
