//! Host id ranges for user namespaces: one block of the node's pool per sandbox (or
//! per container outside any sandbox), never overlapping, never host id 0.
//!
//! Several `stockade create` processes run at once, so the allocation database is a
//! small JSON file changed only under an exclusive flock(2) on a lock file beside it,
//! and rewritten through a temp file and rename(2): a crash leaves either the old or
//! the new database, never a torn one. flock(2) locks belong to the open file
//! description, so every call opens the lock file afresh and threads of one process
//! exclude each other exactly like processes do.
//!
//! ```text
//! {"version":1,"ranges":[{"owner":"<sandbox id>","start":100000,"size":65536,
//!                          "members":["<sandbox id>","<container id>"]}]}
//! ```
//!
//! The owner is the CRI sandbox id (`io.kubernetes.cri.sandbox-id`; the pause
//! container's own id is the sandbox id) or, outside a sandbox, the container id; a
//! range is freed when its last member is released. Ids are unique only within one
//! state root (containerd keeps one per namespace), so an entry also names its
//! `scope`, the state root: the same id in two state roots is two containers and
//! gets two ranges. Entries written before scopes existed match any scope.

use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::UsernsError;
use crate::lockfile::{FileLock, Kind};

/// Default database path on a node (tmpfs: ranges die with the containers on reboot).
pub const DEFAULT_DB: &str = "/run/stockade/userns-ranges.json";

/// The CRI annotation naming a container's sandbox.
pub const SANDBOX_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

/// Database format version; an unknown version is refused, never rewritten.
const VERSION: u32 = 1;

/// A contiguous range of host ids: `start .. start + size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRange {
    pub start: u32,
    pub size: u32,
}

impl HostRange {
    /// One past the last host id of the range.
    pub fn end(&self) -> u64 {
        u64::from(self.start) + u64::from(self.size)
    }

    pub fn overlaps(&self, other: &HostRange) -> bool {
        u64::from(self.start) < other.end() && u64::from(other.start) < self.end()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Entry {
    owner: String,
    start: u32,
    size: u32,
    members: BTreeSet<String>,
    /// The state root whose containers these are; `None`: written before scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

impl Entry {
    fn range(&self) -> HostRange {
        HostRange {
            start: self.start,
            size: self.size,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Database {
    version: u32,
    ranges: Vec<Entry>,
}

impl Default for Database {
    fn default() -> Self {
        Self {
            version: VERSION,
            ranges: Vec::new(),
        }
    }
}

/// Allocates blocks of `block` host ids from the pool `pool_start .. pool_start +
/// pool_size`, recording them in the database at `db`.
#[derive(Debug, Clone)]
pub struct RangeAllocator {
    db: PathBuf,
    lock: PathBuf,
    pool_start: u32,
    pool_size: u32,
    block: u32,
    scope: Option<String>,
}

impl RangeAllocator {
    pub fn new(db: PathBuf, pool_start: u32, pool_size: u32, block: u32) -> Self {
        let mut lock = db.clone().into_os_string();
        lock.push(".lock");
        Self {
            db,
            lock: PathBuf::from(lock),
            pool_start,
            pool_size,
            block,
            scope: None,
        }
    }

    /// Ids given to this allocator belong to the state root `scope`.
    pub fn scoped(mut self, scope: &str) -> Self {
        self.scope = Some(scope.to_string());
        self
    }

    /// Whether `e` is an entry of this allocator's state root.
    fn in_scope(&self, e: &Entry) -> bool {
        e.scope.is_none() || e.scope == self.scope
    }

    /// `e` was reserved by this scope's container `id`.
    fn owns(&self, e: &Entry, id: &str) -> bool {
        e.owner == id && self.in_scope(e)
    }

    pub fn db_path(&self) -> &Path {
        &self.db
    }

    /// The range of `container_id`: the one it already holds, else its sandbox's,
    /// else a fresh block. Idempotent for the same container id.
    pub fn allocate(
        &self,
        container_id: &str,
        sandbox_id: Option<&str>,
    ) -> Result<HostRange, UsernsError> {
        self.check_pool()?;
        let owner = sandbox_id.unwrap_or(container_id);
        let _lock = self.lock()?;
        let mut db = self.load()?;

        if let Some(held) = db
            .ranges
            .iter()
            .find(|e| self.in_scope(e) && e.members.contains(container_id))
        {
            if held.owner != owner {
                return Err(UsernsError::SandboxMismatch {
                    container: container_id.to_string(),
                    held: held.owner.clone(),
                    requested: owner.to_string(),
                });
            }
            return Ok(held.range());
        }
        let scope = self.scope.clone();
        if let Some(shared) = db
            .ranges
            .iter_mut()
            .find(|e| (e.scope.is_none() || e.scope == scope) && e.owner == owner)
        {
            shared.members.insert(container_id.to_string());
            let range = shared.range();
            self.store(&db)?;
            return Ok(range);
        }

        let range = self.free_block(&db)?;
        db.ranges.push(Entry {
            owner: owner.to_string(),
            start: range.start,
            size: range.size,
            members: BTreeSet::from([container_id.to_string()]),
            scope: self.scope.clone(),
        });
        self.store(&db)?;
        Ok(range)
    }

    /// Record host ids a spec maps explicitly (`(field, range)`, e.g.
    /// `("linux.uidMappings[0]", ..)`) as held by `container_id`, so no allocation
    /// hands them out again; refused, naming the field, when they overlap a range
    /// another container holds. The parts of one container's mappings may overlap
    /// each other (uid and gid maps are usually the same).
    pub fn reserve(
        &self,
        container_id: &str,
        mappings: &[(String, HostRange)],
    ) -> Result<(), UsernsError> {
        let _lock = self.lock()?;
        let mut db = self.load()?;
        for (field, range) in mappings {
            if let Some(held) = db
                .ranges
                .iter()
                .find(|e| !self.owns(e, container_id) && e.range().overlaps(range))
            {
                return Err(UsernsError::ExplicitOverlap {
                    field: field.clone(),
                    start: u64::from(range.start),
                    end: range.end(),
                    owner: held.owner.clone(),
                    held_start: u64::from(held.start),
                    held_end: held.range().end(),
                });
            }
        }
        // One entry per disjoint stretch of ids: the database holds no overlaps.
        let mut spans: Vec<(u64, u64)> = mappings
            .iter()
            .map(|(_, r)| (u64::from(r.start), r.end()))
            .chain(
                db.ranges
                    .iter()
                    .filter(|e| self.owns(e, container_id))
                    .map(|e| (u64::from(e.start), e.range().end())),
            )
            .collect();
        spans.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        db.ranges.retain(|e| !self.owns(e, container_id));
        for (start, end) in merged {
            // Both fit in u32: they come from u32 host ids and sizes within the id space.
            let (Ok(start), Ok(size)) = (u32::try_from(start), u32::try_from(end - start)) else {
                continue;
            };
            db.ranges.push(Entry {
                owner: container_id.to_string(),
                start,
                size,
                members: BTreeSet::from([container_id.to_string()]),
                scope: self.scope.clone(),
            });
        }
        self.store(&db)
    }

    /// Drops `container_id` from every range it is in and frees a range when it was
    /// the last member. Releasing an unknown id is fine (delete is idempotent).
    pub fn release(&self, container_id: &str) -> Result<(), UsernsError> {
        let _lock = self.lock()?;
        let mut db = self.load()?;
        let before = db.ranges.clone();
        // Every entry this container holds in this scope (its range and any
        // explicit mappings it reserved).
        for e in db.ranges.iter_mut().filter(|e| self.in_scope(e)) {
            e.members.remove(container_id);
        }
        db.ranges.retain(|e| !e.members.is_empty());
        if db.ranges == before {
            return Ok(());
        }
        self.store(&db)
    }

    /// The range `container_id` holds, if any.
    pub fn lookup(&self, container_id: &str) -> Result<Option<HostRange>, UsernsError> {
        let _lock = self.lock()?;
        let db = self.load()?;
        Ok(db
            .ranges
            .iter()
            .find(|e| self.in_scope(e) && e.members.contains(container_id))
            .map(Entry::range))
    }

    fn check_pool(&self) -> Result<(), UsernsError> {
        let invalid = |why| UsernsError::InvalidPool {
            start: self.pool_start,
            size: self.pool_size,
            block: self.block,
            why,
        };
        if self.pool_start == 0 {
            // Host id 0 is host root: a container must never be able to own its files.
            return Err(invalid("it includes host id 0 (root)"));
        }
        if self.block == 0 {
            return Err(invalid("the block size is 0"));
        }
        if self.pool_size < self.block {
            return Err(invalid("it is smaller than one block"));
        }
        // (uid_t)-1 is "no id" to the kernel (setresuid(2), chown(2)); it cannot be mapped.
        if u64::from(self.pool_start) + u64::from(self.pool_size) > u64::from(u32::MAX) {
            return Err(invalid("it reaches host id 4294967295, which is not an id"));
        }
        Ok(())
    }

    /// First block of the pool that overlaps no recorded range (ranges recorded under
    /// another pool configuration included).
    fn free_block(&self, db: &Database) -> Result<HostRange, UsernsError> {
        let blocks = self.pool_size / self.block;
        (0..blocks)
            .map(|k| HostRange {
                start: self.pool_start + k * self.block,
                size: self.block,
            })
            .find(|cand| !db.ranges.iter().any(|e| e.range().overlaps(cand)))
            .ok_or(UsernsError::PoolExhausted {
                start: self.pool_start,
                size: self.pool_size,
                block: self.block,
                used: db.ranges.len(),
            })
    }

    fn lock(&self) -> Result<FileLock, UsernsError> {
        let wrap = |source| UsernsError::LockDatabase {
            path: self.lock.clone(),
            source,
        };
        if let Some(parent) = self.db.parent().filter(|p| !p.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(wrap)?;
        }
        // flock: threads of one process exclude each other too; nothing forks while
        // it is held.
        FileLock::acquire(&self.lock, Kind::Shared).map_err(wrap)
    }

    fn load(&self) -> Result<Database, UsernsError> {
        let bytes = match fs::read(&self.db) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Database::default()),
            Err(source) => {
                return Err(UsernsError::ReadDatabase {
                    path: self.db.clone(),
                    source,
                })
            }
        };
        let db: Database =
            serde_json::from_slice(&bytes).map_err(|source| UsernsError::CorruptDatabase {
                path: self.db.clone(),
                source,
            })?;
        if db.version != VERSION {
            return Err(UsernsError::CorruptDatabase {
                path: self.db.clone(),
                source: serde::de::Error::custom(format!(
                    "version {} is not the supported version {VERSION}",
                    db.version
                )),
            });
        }
        // Fail closed: a hand-edited database with overlaps would hand two sandboxes
        // the same host ids.
        for (i, a) in db.ranges.iter().enumerate() {
            if db.ranges[i + 1..]
                .iter()
                .any(|b| a.range().overlaps(&b.range()))
            {
                return Err(UsernsError::OverlappingDatabase {
                    path: self.db.clone(),
                });
            }
        }
        Ok(db)
    }

    /// Replace the database atomically. Callers hold the lock, so one temp name is enough.
    fn store(&self, db: &Database) -> Result<(), UsernsError> {
        let wrap = |source| UsernsError::WriteDatabase {
            path: self.db.clone(),
            source,
        };
        let mut tmp = self.db.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let json = serde_json::to_vec(db).map_err(|e| wrap(io::Error::other(e)))?;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(wrap)?;
        file.write_all(&json).map_err(wrap)?;
        file.sync_all().map_err(wrap)?;
        fs::rename(&tmp, &self.db).map_err(wrap)?;
        if let Some(parent) = self.db.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(wrap)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::process::Command;
    use std::sync::Arc;

    const BLOCK: u32 = 65536;

    fn alloc(dir: &Path, blocks: u32) -> RangeAllocator {
        RangeAllocator::new(dir.join("db.json"), 100_000, BLOCK * blocks, BLOCK)
    }

    fn assert_disjoint(ranges: &[(String, HostRange)]) {
        for (i, (a_id, a)) in ranges.iter().enumerate() {
            for (b_id, b) in &ranges[i + 1..] {
                assert!(!a.overlaps(b), "{a_id} {a:?} overlaps {b_id} {b:?}");
            }
        }
    }

    #[test]
    fn containers_get_disjoint_blocks_inside_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let a = alloc(dir.path(), 8);
        let got: Vec<(String, HostRange)> = (0..8)
            .map(|i| {
                let id = format!("c{i}");
                let r = a.allocate(&id, None).unwrap();
                (id, r)
            })
            .collect();
        assert_disjoint(&got);
        for (_, r) in &got {
            assert_eq!(r.size, BLOCK);
            assert!(r.start >= 100_000 && r.end() <= 100_000 + 8 * u64::from(BLOCK));
            assert_ne!(r.start, 0);
        }
        assert_eq!(
            got[0].1,
            HostRange {
                start: 100_000,
                size: BLOCK
            }
        );
    }

    #[test]
    fn explicit_mappings_are_reserved_or_refused_when_they_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let a = RangeAllocator::new(dir.path().join("db.json"), 1_000_000, 1_000_000, 1000);
        let first = a.allocate("a", None).unwrap();
        let over = HostRange {
            start: first.start + 10,
            size: 100,
        };
        let err = a
            .reserve("b", &[("linux.uidMappings[0]".into(), over)])
            .unwrap_err();
        assert!(err.to_string().contains("linux.uidMappings[0]"), "{err}");
        assert!(err.to_string().contains("\"a\""), "{err}");
        let free = HostRange {
            start: first.start + 1000,
            size: 1000,
        };
        let both = [("u".to_string(), free), ("g".to_string(), free)];
        a.reserve("b", &both).unwrap();
        let partly = HostRange {
            start: free.start + 500,
            size: 1000,
        };
        a.reserve("b", &[("g".to_string(), partly)]).unwrap();
        assert!(a.allocate("e", None).is_ok(), "the database stays valid");
        assert_ne!(
            a.allocate("c", None).unwrap(),
            free,
            "reserved ids are not handed out"
        );
        a.release("b").unwrap();
        assert_eq!(a.allocate("d", None).unwrap(), free, "released on delete");
    }

    #[test]
    fn allocate_is_idempotent_per_container() {
        let dir = tempfile::tempdir().unwrap();
        let a = alloc(dir.path(), 4);
        let first = a.allocate("c1", None).unwrap();
        assert_eq!(a.allocate("c1", None).unwrap(), first);
        assert_eq!(a.lookup("c1").unwrap(), Some(first));
        // A second allocator on the same database sees the same state.
        let b = alloc(dir.path(), 4);
        assert_eq!(b.allocate("c1", None).unwrap(), first);
        assert_ne!(b.allocate("c2", None).unwrap(), first);
    }

    #[test]
    fn one_id_in_two_state_roots_gets_two_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let a = alloc(dir.path(), 4).scoped("/run/a");
        let b = alloc(dir.path(), 4).scoped("/run/b");
        let ra = a.allocate("c1", None).unwrap();
        let rb = b.allocate("c1", None).unwrap();
        assert!(!ra.overlaps(&rb), "{ra:?} {rb:?}");
        // A pod id in two roots: two pods.
        assert!(!a
            .allocate("p", Some("sb"))
            .unwrap()
            .overlaps(&b.allocate("p", Some("sb")).unwrap()));
        b.release("c1").unwrap();
        assert_eq!(
            a.lookup("c1").unwrap(),
            Some(ra),
            "the other root's c1 keeps it"
        );
        assert_eq!(b.lookup("c1").unwrap(), None);
    }

    #[test]
    fn sandbox_members_share_one_range_until_the_last_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let a = alloc(dir.path(), 4);
        let pause = a.allocate("sb1", Some("sb1")).unwrap();
        let app = a.allocate("app1", Some("sb1")).unwrap();
        let side = a.allocate("side1", Some("sb1")).unwrap();
        assert_eq!(pause, app);
        assert_eq!(pause, side);
        let other = a.allocate("app2", Some("sb2")).unwrap();
        assert!(!other.overlaps(&pause));
        let loner = a.allocate("loner", None).unwrap();
        assert!(!loner.overlaps(&pause) && !loner.overlaps(&other));

        // The pause container may go first: the range stays while members remain.
        a.release("sb1").unwrap();
        a.release("app1").unwrap();
        assert_eq!(a.lookup("side1").unwrap(), Some(pause));
        let newcomer = a.allocate("fresh", None).unwrap();
        assert!(!newcomer.overlaps(&pause), "held range handed out again");
        a.release("side1").unwrap();
        assert_eq!(a.lookup("side1").unwrap(), None);
        assert_eq!(
            a.allocate("again", None).unwrap(),
            pause,
            "freed range reused"
        );
    }

    #[test]
    fn a_container_cannot_switch_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        let a = alloc(dir.path(), 4);
        a.allocate("c1", Some("sb1")).unwrap();
        let err = a.allocate("c1", Some("sb2")).unwrap_err();
        assert!(
            matches!(err, UsernsError::SandboxMismatch { ref held, ref requested, .. }
                if held == "sb1" && requested == "sb2"),
            "{err:?}"
        );
    }

    #[test]
    fn release_is_idempotent_and_frees_for_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let a = alloc(dir.path(), 2);
        a.release("never-seen").unwrap();
        assert!(!dir.path().join("db.json").exists(), "no-op release wrote");
        let r1 = a.allocate("c1", None).unwrap();
        let r2 = a.allocate("c2", None).unwrap();
        a.release("c1").unwrap();
        a.release("c1").unwrap();
        assert_eq!(a.allocate("c3", None).unwrap(), r1);
        assert_eq!(a.lookup("c2").unwrap(), Some(r2));
    }

    #[test]
    fn exhaustion_is_a_clear_error_and_release_cures_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = alloc(dir.path(), 2);
        a.allocate("c1", None).unwrap();
        a.allocate("c2", None).unwrap();
        // Joining an existing sandbox needs no new block.
        a.allocate("c2-side", Some("c2")).unwrap();
        let err = a.allocate("c3", None).unwrap_err();
        assert!(
            matches!(err, UsernsError::PoolExhausted { used: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("exhausted"), "{err}");
        a.release("c1").unwrap();
        a.allocate("c3", None).unwrap();
    }

    #[test]
    fn invalid_pools_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.json");
        let cases: &[(u32, u32, u32, &str)] = &[
            (0, BLOCK * 4, BLOCK, "host id 0"),
            (100_000, BLOCK, 0, "block size is 0"),
            (100_000, 1000, BLOCK, "smaller than one block"),
            (u32::MAX - BLOCK + 1, BLOCK, BLOCK, "4294967295"),
        ];
        for &(start, size, block, needle) in cases {
            let err = RangeAllocator::new(db.clone(), start, size, block)
                .allocate("c", None)
                .unwrap_err();
            assert!(
                matches!(err, UsernsError::InvalidPool { .. }) && err.to_string().contains(needle),
                "pool {start}+{size}/{block}: {err}"
            );
        }
        // The last usable host id is u32::MAX - 1.
        let top = RangeAllocator::new(db, u32::MAX - BLOCK, BLOCK, BLOCK);
        assert_eq!(top.allocate("c", None).unwrap().end(), u64::from(u32::MAX));
    }

    #[test]
    fn ranges_from_another_pool_configuration_are_respected() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.json");
        // An older configuration used small blocks at an offset.
        let old = RangeAllocator::new(db.clone(), 150_000, 10_000, 10_000);
        let held = old.allocate("old", None).unwrap();
        let new = RangeAllocator::new(db, 100_000, BLOCK * 4, BLOCK);
        let r = new.allocate("new", None).unwrap();
        assert!(!r.overlaps(&held), "{r:?} overlaps {held:?}");
        assert_eq!(r.start, 100_000 + BLOCK);
    }

    #[test]
    fn corrupt_or_overlapping_databases_fail_closed() {
        let dir = tempfile::tempdir().unwrap();
        let a = alloc(dir.path(), 4);
        fs::write(a.db_path(), "{not json").unwrap();
        assert!(matches!(
            a.allocate("c", None).unwrap_err(),
            UsernsError::CorruptDatabase { .. }
        ));
        fs::write(
            a.db_path(),
            r#"{"version":1,"ranges":[
                {"owner":"a","start":100000,"size":65536,"members":["a"]},
                {"owner":"b","start":100001,"size":10,"members":["b"]}]}"#,
        )
        .unwrap();
        assert!(matches!(
            a.allocate("c", None).unwrap_err(),
            UsernsError::OverlappingDatabase { .. }
        ));
        fs::write(a.db_path(), r#"{"version":2,"ranges":[]}"#).unwrap();
        assert!(matches!(
            a.release("c").unwrap_err(),
            UsernsError::CorruptDatabase { .. }
        ));
    }

    #[test]
    fn threads_allocating_at_once_never_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(dir.path().join("db.json"));
        let handles: Vec<_> = (0..16)
            .map(|t| {
                let db = Arc::clone(&db);
                std::thread::spawn(move || {
                    // Each thread its own allocator: every call opens its own lock fd.
                    let a = RangeAllocator::new((*db).clone(), 100_000, BLOCK * 64, BLOCK);
                    let mut got = Vec::new();
                    for i in 0..4 {
                        let id = format!("t{t}-c{i}");
                        // Half of them join a per-thread sandbox.
                        let sandbox = (i % 2 == 1).then(|| format!("t{t}-c0"));
                        got.push((id.clone(), a.allocate(&id, sandbox.as_deref()).unwrap()));
                    }
                    got
                })
            })
            .collect();
        let all: Vec<(String, HostRange)> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        check_concurrent_result(&db, &all);
    }

    /// Distinct owners never overlap; sandbox members share; the database agrees.
    fn check_concurrent_result(db: &Path, all: &[(String, HostRange)]) {
        let mut by_owner: BTreeMap<String, HostRange> = BTreeMap::new();
        for (id, r) in all {
            let (thread, i) = id.rsplit_once("-c").unwrap();
            let i: u32 = i.parse().unwrap();
            let owner = if i % 2 == 1 {
                format!("{thread}-c0")
            } else {
                id.clone()
            };
            if let Some(prev) = by_owner.insert(owner.clone(), *r) {
                assert_eq!(prev, *r, "members of {owner} got different ranges");
            }
        }
        let owners: Vec<(String, HostRange)> = by_owner.into_iter().collect();
        assert_disjoint(&owners);
        let a = RangeAllocator::new(db.to_path_buf(), 100_000, BLOCK * 64, BLOCK);
        for (id, r) in all {
            assert_eq!(a.lookup(id).unwrap(), Some(*r), "database lost {id}");
        }
    }

    const CHILD_DB_ENV: &str = "STOCKADE_TEST_ALLOC_DB";
    const CHILD_TAG_ENV: &str = "STOCKADE_TEST_ALLOC_TAG";

    /// Body of the child processes of `processes_allocating_at_once_never_overlap`;
    /// a no-op when run directly.
    #[test]
    #[ignore = "child process of processes_allocating_at_once_never_overlap"]
    fn child_process_allocates() {
        let (Some(db), Some(tag)) = (
            std::env::var_os(CHILD_DB_ENV),
            std::env::var(CHILD_TAG_ENV).ok(),
        ) else {
            return;
        };
        let a = RangeAllocator::new(PathBuf::from(db), 100_000, BLOCK * 64, BLOCK);
        for i in 0..4 {
            let id = format!("{tag}-c{i}");
            let sandbox = (i % 2 == 1).then(|| format!("{tag}-c0"));
            let r = a.allocate(&id, sandbox.as_deref()).unwrap();
            println!("ALLOC {id} {} {}", r.start, r.size);
        }
    }

    #[test]
    fn processes_allocating_at_once_never_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.json");
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..8)
            .map(|p| {
                Command::new(&exe)
                    .args([
                        "--exact",
                        "userns::alloc::tests::child_process_allocates",
                        "--ignored",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(CHILD_DB_ENV, &db)
                    .env(CHILD_TAG_ENV, format!("p{p}"))
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut all = Vec::new();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "child failed: {out:?}");
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                // The harness prints "test NAME ... " without a newline first.
                let Some((_, rest)) = line.split_once("ALLOC ") else {
                    continue;
                };
                let f: Vec<&str> = rest.split_whitespace().collect();
                all.push((
                    f[0].to_string(),
                    HostRange {
                        start: f[1].parse().unwrap(),
                        size: f[2].parse().unwrap(),
                    },
                ));
            }
        }
        assert_eq!(all.len(), 32, "every child reports 4 allocations: {all:?}");
        check_concurrent_result(&db, &all);
    }
}
