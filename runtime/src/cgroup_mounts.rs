//! Where the host's cgroup v1 hierarchies are mounted, without rendering the whole
//! mount table for every `create` and `delete`.
//!
//! On cgroup v1 the cgroup manager, the freezer check and the init's cgroup mounts
//! find the hierarchies in `/proc/self/mountinfo`. The kernel renders every mount
//! of the namespace for each read (~2 µs a mount here: ~0.1 ms on this host, and
//! milliseconds on a node with a mount per volume of hundreds of pods), and only
//! the `cgroup` lines are used. crun reads no mount table at all (it assumes
//! `/sys/fs/cgroup/<controller>`).
//!
//! So the cgroup lines are kept under the state root, in `.stockade/mounts` (a
//! [`FileCache`] of their own, with its ownership and integrity checks, apart from
//! the parse cache), one entry per mount namespace, each line with
//! the unique id of the mount it describes (`statx` `STATX_MNT_ID_UNIQUE`, Linux
//! 6.8: never reused until reboot). A snapshot is used only while it still
//! describes this namespace:
//!
//! - every mount point it names still resolves to that very mount (same unique
//!   id): nothing was unmounted, moved or mounted over it, so its fields (root,
//!   superblock, controllers) are those recorded;
//! - this process belongs to the same hierarchies (`/proc/self/cgroup`, ids and
//!   controllers): a hierarchy mounted since (a new v1 hierarchy appears there)
//!   makes the table read again.
//!
//! Anything else (no cache, an unusable entry, a kernel without unique mount ids, a
//! mount point the table escapes) reads the table as before, and the fresh
//! snapshot replaces the entry. It is stored only if a second read of the table,
//! after the mount ids were taken, has the same cgroup lines: a mount replaced in
//! between is never paired with another mount's id. Not seen: a second mount of an already mounted
//! hierarchy added later (its first mount point, the one the manager uses, is
//! unchanged), and a remount changing a hierarchy mount's flags (not its
//! controllers, which v1 cannot change while mounted).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::file_cache::FileCache;
use crate::profile::load::ParseCache;

/// The cache entry kind; its key text is the mount namespace (`mnt:[inode]`).
const KIND: &str = "cgroup-v1-mounts";
const MAGIC: &str = "stockade cgroup v1 mounts 1";

/// The cgroup lines of this process's mount table (a text in the shape of
/// `/proc/self/mountinfo`; the whole table when it was just read), or `None` when
/// it cannot be read. `state_root` holds the cache.
pub fn host_table(state_root: &Path) -> Option<Rc<str>> {
    let cache = FileCache::of_this_binary(state_root.join(".stockade").join("mounts"));
    let namespace = std::fs::read_link("/proc/self/ns/mnt").ok();
    let hierarchies = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .map(|text| hierarchies_of(&text));
    let key = namespace.as_ref().map(|n| n.as_os_str().to_string_lossy());
    if let (Some(cache), Some(key), Some(hierarchies)) = (&cache, &key, &hierarchies) {
        if let Some(snapshot) = cache.get(KIND, key).and_then(|b| Snapshot::decode(&b)) {
            if snapshot.describes(hierarchies, unique_mount_id) {
                tracing::debug!("cgroup v1 mount points from the cache");
                return Some(snapshot.lines().into());
            }
            tracing::debug!("cgroup v1 mount snapshot outdated: reading the mount table");
        }
    }
    let text = match read_mount_table() {
        Ok(text) => text,
        Err(error) => {
            tracing::debug!(%error, "host mount table unread; libcontainer reads its own");
            return None;
        }
    };
    if let (Some(cache), Some(key), Some(hierarchies)) = (&cache, &key, hierarchies) {
        let reread = || read_mount_table().ok();
        match Snapshot::take_stable(&text, hierarchies, unique_mount_id, reread) {
            Some(snapshot) => cache.put(KIND, key, &snapshot.encode()),
            None => tracing::debug!(
                "cgroup v1 mount points not cached (no unique mount ids, or a mount changed)"
            ),
        }
    }
    Some(text.into())
}

/// This namespace's mount table, by path, in one read: the runtime runs in the
/// host's mount namespace, whose /proc no container can mount over (libcgroups'
/// own read makes and checks a private procfs instance for it, ~40 syscalls;
/// libcgroups patch 21).
fn read_mount_table() -> std::io::Result<String> {
    std::fs::File::open("/proc/self/mountinfo").and_then(libcgroups::common::read_proc_text)
}

/// The cgroup v1 lines of a mount table, as a mount table text.
fn cgroup_lines(mountinfo: &str) -> String {
    let mut text = String::new();
    for line in libcgroups::v1::util::cgroup_v1_lines(mountinfo) {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// The cgroup v1 mounts of a mount table, each with its unique mount id, and the
/// hierarchies (`id:controllers` of `/proc/self/cgroup`) seen when it was taken.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    hierarchies: String,
    mounts: Vec<(u64, String)>,
}

impl Snapshot {
    /// The cgroup lines of `mountinfo` with the mount id `mount_id` finds at each
    /// mount point; `None` if one has none (an older kernel) or cannot be named.
    fn take(
        mountinfo: &str,
        hierarchies: String,
        mount_id: impl Fn(&Path) -> Option<u64>,
    ) -> Option<Self> {
        let mounts = libcgroups::v1::util::cgroup_v1_lines(mountinfo)
            .map(|line| Some((mount_id(&mount_point(line)?)?, line.to_string())))
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            hierarchies,
            mounts,
        })
    }

    /// [`Snapshot::take`], kept only if the table read again (`reread`) after the
    /// ids were taken has the same cgroup lines: a mount replaced between the first
    /// read and the `statx` would pair its old line with the new mount's id, and
    /// be trusted as long as that mount stays. (One replaced after the second read
    /// has a new id, which the next use sees.)
    fn take_stable(
        mountinfo: &str,
        hierarchies: String,
        mount_id: impl Fn(&Path) -> Option<u64>,
        reread: impl FnOnce() -> Option<String>,
    ) -> Option<Self> {
        let snapshot = Self::take(mountinfo, hierarchies, mount_id)?;
        let again = reread()?;
        (cgroup_lines(&again) == snapshot.lines()).then_some(snapshot)
    }

    /// Whether this namespace still has these mounts, each where it was, and the
    /// process still belongs to the same hierarchies.
    fn describes(&self, hierarchies: &str, mount_id: impl Fn(&Path) -> Option<u64>) -> bool {
        self.hierarchies == hierarchies
            && self
                .mounts
                .iter()
                .all(|(id, line)| mount_point(line).and_then(|p| mount_id(&p)) == Some(*id))
    }

    /// The snapshot's lines, as a mount table text.
    fn lines(&self) -> String {
        let mut text = String::new();
        for (_, line) in &self.mounts {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    fn encode(&self) -> Vec<u8> {
        let mut text = format!("{MAGIC}\nH {}\n", self.hierarchies);
        for (id, line) in &self.mounts {
            text.push_str(&format!("M {id} {line}\n"));
        }
        text.into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let hierarchies = lines.next()?.strip_prefix("H ")?.to_string();
        let mounts = lines
            .map(|l| {
                let (id, line) = l.strip_prefix("M ")?.split_once(' ')?;
                Some((id.parse().ok()?, line.to_string()))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            hierarchies,
            mounts,
        })
    }
}

/// `id:controllers` of each line of `/proc/self/cgroup`, sorted (the cgroup path
/// after them is where this process is, not which hierarchies exist).
fn hierarchies_of(proc_self_cgroup: &str) -> String {
    let mut ids: Vec<&str> = proc_self_cgroup
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (id, controllers) = (parts.next()?, parts.next()?);
            Some(&l[..id.len() + 1 + controllers.len()])
        })
        .collect();
    ids.sort_unstable();
    ids.join(" ")
}

/// The mount point of a mountinfo line (its fifth field), or `None` when the
/// kernel escaped a character in it (`\040` for a space ...): such a mount is not
/// snapshotted rather than unescaped here.
fn mount_point(line: &str) -> Option<PathBuf> {
    let field = line.split(' ').nth(4)?;
    (!field.contains('\\') && field.starts_with('/')).then(|| PathBuf::from(field))
}

/// The unique id of the mount `path` resolves to (its last component not
/// followed), or `None` on a kernel that has none (before 6.8).
fn unique_mount_id(path: &Path) -> Option<u64> {
    let path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero `statx` is a valid value of this plain C struct.
    let mut buf: libc::statx = unsafe { std::mem::zeroed() };
    // The raw syscall, not glibc's wrapper: Rust's std refers to `statx` weakly (it
    // probes for it at run time), so in the shipped static binary nothing links
    // glibc's in and the symbol is null (a call to address 0).
    // SAFETY: `path` is a NUL-terminated string and `buf` a writable statx, both
    // live across the call; the arguments are those statx(2) takes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_statx,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT | libc::AT_STATX_DONT_SYNC,
            libc::STATX_MNT_ID_UNIQUE,
            &mut buf as *mut libc::statx,
        )
    };
    (rc == 0 && buf.stx_mask & libc::STATX_MNT_ID_UNIQUE != 0).then_some(buf.stx_mnt_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 0:21 / / rw,relatime - ext4 /dev/vda1 rw
30 22 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:10 - cgroup cgroup rw,memory
32 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct
33 30 0:29 / /sys/fs/cgroup/unified rw,nosuid shared:12 - cgroup2 cgroup2 rw
";
    const HIERARCHIES: &str = "12:memory:/a\n3:cpu,cpuacct:/a\n0::/a\n";

    fn ids(path: &Path) -> Option<u64> {
        match path.to_str()? {
            "/sys/fs/cgroup/memory" => Some(7001),
            "/sys/fs/cgroup/cpu,cpuacct" => Some(7002),
            _ => None,
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot::take(TABLE, hierarchies_of(HIERARCHIES), ids).expect("a snapshot")
    }

    #[test]
    fn a_snapshot_holds_the_cgroup_v1_lines_with_their_mount_ids() {
        let s = snapshot();
        let ids: Vec<u64> = s.mounts.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [7001, 7002]);
        assert_eq!(s.hierarchies, "0: 12:memory 3:cpu,cpuacct");
        // The same mount points as the whole table gives, for every consumer.
        let all = libcgroups::v1::util::list_subsystem_mount_points_in(TABLE).unwrap();
        let cut = libcgroups::v1::util::list_subsystem_mount_points_in(&s.lines()).unwrap();
        assert_eq!(all, cut);
        assert_eq!(Snapshot::decode(&s.encode()), Some(s));
    }

    #[test]
    fn a_snapshot_describes_the_namespace_only_while_each_mount_is_where_it_was() {
        let s = snapshot();
        let now = hierarchies_of("3:cpu,cpuacct:/elsewhere\n12:memory:/b\n0::/b\n");
        assert!(
            s.describes(&now, ids),
            "moving between cgroups changes nothing"
        );
        // A mount point that resolves to another mount (unmounted, moved, or
        // mounted over): the table is read again.
        let over = |p: &Path| {
            if p.ends_with("memory") {
                Some(9)
            } else {
                ids(p)
            }
        };
        assert!(!s.describes(&now, over));
        assert!(!s.describes(&now, |_| None));
        // A hierarchy mounted since the snapshot.
        let more = hierarchies_of("12:memory:/a\n3:cpu,cpuacct:/a\n5:pids:/a\n0::/a\n");
        assert!(!s.describes(&more, ids));
    }

    #[test]
    fn no_snapshot_is_kept_when_the_cgroup_mounts_changed_while_it_was_taken() {
        let hierarchies = || hierarchies_of(HIERARCHIES);
        let same = Snapshot::take_stable(TABLE, hierarchies(), ids, || Some(TABLE.into()));
        assert_eq!(same, Some(snapshot()));
        // Another mount of the memory hierarchy (another root) by the second read.
        let moved = TABLE.replace(
            "0:27 / /sys/fs/cgroup/memory",
            "0:27 /a /sys/fs/cgroup/memory",
        );
        assert_eq!(
            Snapshot::take_stable(TABLE, hierarchies(), ids, || Some(moved)),
            None
        );
        assert_eq!(
            Snapshot::take_stable(TABLE, hierarchies(), ids, || None),
            None
        );
        // A change elsewhere in the table does not matter.
        let other = TABLE.replace("/dev/vda1 rw", "/dev/vda1 ro");
        assert!(Snapshot::take_stable(TABLE, hierarchies(), ids, || Some(other)).is_some());
    }

    #[test]
    fn no_snapshot_without_unique_mount_ids_or_with_an_escaped_mount_point() {
        assert_eq!(Snapshot::take(TABLE, String::new(), |_| None), None);
        let escaped = "31 30 0:27 / /sys/fs/cgroup/my\\040memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(Snapshot::take(escaped, String::new(), |_| Some(1)), None);
    }

    #[test]
    fn damaged_entries_decode_to_nothing() {
        let good = snapshot().encode();
        assert_eq!(Snapshot::decode(b"something else\nH x\n"), None);
        let mut bad_id = String::from_utf8(good.clone()).unwrap();
        bad_id = bad_id.replace("M 7001", "M x7001");
        assert_eq!(Snapshot::decode(bad_id.as_bytes()), None);
        assert_eq!(Snapshot::decode(&good[..MAGIC.len()]), None);
    }

    #[test]
    fn this_kernel_names_the_mount_of_a_path() {
        // Where the kernel has unique mount ids (6.8 and later), two paths of one
        // mount share it and a mount's root differs from its parent's.
        let Some(root) = unique_mount_id(Path::new("/")) else {
            assert!(
                kernel_older_than(6, 8),
                "no unique mount id on a kernel that has them"
            );
            return;
        };
        assert_eq!(unique_mount_id(Path::new("/")), Some(root));
        assert_ne!(unique_mount_id(Path::new("/proc")), Some(root));
    }

    fn kernel_older_than(major: u32, minor: u32) -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut parts = release.trim().split(['.', '-']);
        let m: u32 = parts.next().unwrap().parse().unwrap();
        let n: u32 = parts.next().unwrap().parse().unwrap();
        (m, n) < (major, minor)
    }
}
