//! A cache of pure results (parsed profiles and seccomp data) under the state root,
//! `<root>/.stockade/cache/`, so a `create` does not parse the same TOML again.
//!
//! What is stored there decides a container's hardening, so nothing read from it is
//! trusted beyond what the checks here and the caller's prove:
//!
//! - **Keyed by content.** An entry's name and header hold a SHA-256 of the kind,
//!   the exact text parsed and the binary that parsed it (version, and the
//!   executable's device, inode, size and mtime, so a rebuilt or upgraded binary
//!   never reads another's entries). An edited profile is a different key whatever
//!   its timestamps; there is no invalidation to forget.
//! - **Verified on read.** An entry carries the length of its value and a SHA-256 of
//!   header and value: a truncated, torn or foreign (other key) entry is ignored and
//!   rebuilt. The caller then decodes the value and validates it exactly as freshly
//!   parsed text (`profile::load::ParseCache`); what fails is parsed from the text.
//! - **Who can write.** The directory is made 0700 and used only when it is a real
//!   directory (not a symlink) owned by this process's euid with no group or other
//!   access; entries are opened through that directory fd without following
//!   symlinks, and used only when they are regular files owned by the euid, mode
//!   0600, with one link. Whoever could still write there is root in the runtime's
//!   own state root, who could equally replace the runtime binary. The digest is an
//!   integrity check against damage, not a signature.
//! - **Written atomically** (a fresh temporary file renamed over the entry), without
//!   fsync: an entry lost or torn by a crash fails its check and is rebuilt.
//! - **Bounded.** At most [`MAX_ENTRIES`] entries: a write into a full directory
//!   first removes the others (profiles change rarely; a node uses a handful).
//!
//! A cache that cannot be opened or written costs time, never correctness: every
//! failure here falls back to parsing, logged at debug level. (A runtime that had
//! to fall back to a sealed memfd copy of itself has a new executable inode per
//! process, so it never hits: its entries only churn within [`MAX_ENTRIES`].)

use std::fs::{DirBuilder, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, UnlinkatFlags};
use sha2::{Digest, Sha256};

use crate::profile::load::ParseCache;

/// Entries a cache directory holds at most.
pub const MAX_ENTRIES: usize = 64;
/// The largest entry read back (the shipped default profile's data is ~60 kB).
const MAX_ENTRY_BYTES: u64 = 4 << 20;
const MAGIC: &[u8; 8] = b"STKCACH1";
const HEADER: usize = MAGIC.len() + 32 + 8;
const TRAILER: usize = 32;

/// The cache directory of a state root.
pub fn dir_of(state_root: &Path) -> PathBuf {
    state_root.join(".stockade").join("cache")
}

/// A cache directory; every read and write opens and checks it again.
#[derive(Debug)]
pub struct FileCache {
    path: PathBuf,
    /// Identifies the binary whose parser produced the entries.
    binary: String,
}

impl FileCache {
    /// The parse cache of `state_root`, or `None` when the running binary cannot be
    /// identified (its entries could not be told from another binary's).
    pub fn for_state_root(state_root: &Path) -> Option<Self> {
        Self::of_this_binary(dir_of(state_root))
    }

    /// A cache of the running binary's entries in `dir`, a directory directly under
    /// a state root's `.stockade/` (made only once that state root exists), or
    /// `None` as [`FileCache::for_state_root`].
    pub fn of_this_binary(dir: PathBuf) -> Option<Self> {
        let exe = match std::fs::metadata("/proc/self/exe") {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "parse cache off: cannot identify the runtime binary");
                return None;
            }
        };
        let binary = format!(
            "{} {:x}:{:x}:{}:{}.{}",
            env!("CARGO_PKG_VERSION"),
            exe.dev(),
            exe.ino(),
            exe.size(),
            exe.mtime(),
            exe.mtime_nsec()
        );
        Some(Self::new(dir, binary))
    }

    /// A cache in `path` for entries of the binary identified by `binary`.
    pub fn new(path: PathBuf, binary: String) -> Self {
        Self { path, binary }
    }

    fn key(&self, kind: &str, text: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [
            b"stockade parse cache 1".as_slice(),
            kind.as_bytes(),
            self.binary.as_bytes(),
        ] {
            // Length-prefixed, so no two different inputs concatenate alike.
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
        h.finalize().into()
    }

    /// The directory, opened without following symlinks and checked (with `create`,
    /// made first if missing, but only inside a state root that already exists: a
    /// create refused on a fresh node leaves no state root behind for a cache).
    fn dir(&self, create: bool) -> Option<OwnedFd> {
        if create {
            let state_root = self.path.parent().and_then(Path::parent);
            if !state_root.is_some_and(Path::is_dir) {
                tracing::debug!(dir = %self.path.display(), "parse cache: no state root yet");
                return None;
            }
            let made = DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.path);
            if let Err(e) = made {
                tracing::debug!(error = %e, dir = %self.path.display(), "parse cache: cannot create");
                return None;
            }
        }
        open_checked_dir(&self.path)
    }

    fn read_entry(&self, key: &[u8; 32]) -> Option<Vec<u8>> {
        let dir = self.dir(false)?;
        let name = hex(key);
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = openat(Some(dir.as_raw_fd()), name.as_str(), flags, Mode::empty()).ok()?;
        // SAFETY: `openat` just returned this fd and nothing else owns it.
        let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let meta = file.metadata().ok()?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if !meta.file_type().is_file()
            || meta.uid() != euid
            || meta.mode() & 0o7777 != 0o600
            || meta.nlink() != 1
            || meta.len() > MAX_ENTRY_BYTES
        {
            tracing::debug!(entry = %name, "parse cache: entry ignored (not a 0600 regular file of ours)");
            return None;
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes).ok()?;
        let value = decode(&bytes, key);
        if value.is_none() {
            tracing::debug!(entry = %name, "parse cache: entry ignored (truncated, damaged or foreign)");
        }
        value
    }

    fn write_entry(&self, key: &[u8; 32], value: &[u8]) -> std::io::Result<()> {
        let Some(dir) = self.dir(true) else {
            return Err(std::io::Error::other(
                "the cache directory failed its checks",
            ));
        };
        let dirfd = dir.as_raw_fd();
        let name = hex(key);
        if count_entries(&self.path) >= MAX_ENTRIES {
            clear(dirfd, &self.path);
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = format!(".tmp-{}-{nanos:x}", std::process::id());
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(
            Some(dirfd),
            tmp.as_str(),
            flags,
            Mode::from_bits_truncate(0o600),
        )?;
        // SAFETY: `openat` just returned this fd and nothing else owns it.
        let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        // Exactly 0600 whatever the umask: a reader ignores any other mode.
        let written = file
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .and_then(|()| file.write_all(&encode(key, value)))
            .and_then(|()| {
                Ok(renameat(
                    Some(dirfd),
                    tmp.as_str(),
                    Some(dirfd),
                    name.as_str(),
                )?)
            });
        if written.is_err() {
            let _ = unlinkat(Some(dirfd), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        written
    }
}

impl ParseCache for FileCache {
    fn get(&self, kind: &'static str, text: &str) -> Option<Vec<u8>> {
        self.read_entry(&self.key(kind, text))
    }

    fn put(&self, kind: &'static str, text: &str, value: &[u8]) {
        if let Err(e) = self.write_entry(&self.key(kind, text), value) {
            tracing::debug!(error = %e, kind, "parse cache: entry not written");
        }
    }
}

/// Open `path` as a directory without following a symlink, and keep it only if it
/// is owned by our euid and closed to group and others.
fn open_checked_dir(path: &Path) -> Option<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::open(path, flags, Mode::empty()).ok()?;
    // SAFETY: `open` just returned this fd and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let meta = File::from(fd.try_clone().ok()?).metadata().ok()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid || meta.mode() & 0o077 != 0 {
        tracing::debug!(dir = %path.display(), "parse cache off: the directory is not ours alone");
        return None;
    }
    Some(fd)
}

fn count_entries(path: &Path) -> usize {
    std::fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

/// Remove every entry (the directory is full): they are rebuilt on demand.
fn clear(dirfd: i32, path: &Path) {
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for e in entries.flatten() {
        let _ = unlinkat(
            Some(dirfd),
            e.file_name().as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `MAGIC | key | value length (u64 LE) | value | SHA-256 of everything before`.
fn encode(key: &[u8; 32], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + value.len() + TRAILER);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(key);
    out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    out.extend_from_slice(value);
    let digest: [u8; 32] = Sha256::digest(&out).into();
    out.extend_from_slice(&digest);
    out
}

/// The value of an entry written by [`encode`] for `key`; `None` for anything else.
fn decode(bytes: &[u8], key: &[u8; 32]) -> Option<Vec<u8>> {
    let body_len = bytes.len().checked_sub(TRAILER)?;
    let (body, digest) = bytes.split_at(body_len);
    if body.len() < HEADER
        || !body.starts_with(MAGIC)
        || &body[MAGIC.len()..MAGIC.len() + 32] != key
    {
        return None;
    }
    let len = u64::from_le_bytes(body[MAGIC.len() + 32..HEADER].try_into().ok()?);
    if len != (body.len() - HEADER) as u64 || Sha256::digest(body).as_slice() != digest {
        return None;
    }
    Some(body[HEADER..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(dir: &Path) -> FileCache {
        FileCache::new(dir.join("cache"), "test-binary".into())
    }

    #[test]
    fn no_state_root_is_made_for_a_cache() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("fresh-root");
        let c = FileCache::new(dir_of(&root), "test-binary".into());
        c.put("profile", "a = 1", b"parsed");
        assert!(!root.exists(), "the cache made the state root");
        assert_eq!(c.get("profile", "a = 1"), None);
        // Once the state root exists, the cache makes its own directories in it.
        std::fs::create_dir(&root).unwrap();
        c.put("profile", "a = 1", b"parsed");
        assert_eq!(c.get("profile", "a = 1").as_deref(), Some(&b"parsed"[..]));
    }

    #[test]
    fn a_stored_value_comes_back_for_the_same_text_only() {
        let d = tempfile::tempdir().unwrap();
        let c = cache(d.path());
        assert_eq!(c.get("profile", "a = 1"), None);
        c.put("profile", "a = 1", b"parsed");
        assert_eq!(c.get("profile", "a = 1").as_deref(), Some(&b"parsed"[..]));
        assert_eq!(c.get("profile", "a = 2"), None);
        assert_eq!(c.get("seccomp-data", "a = 1"), None);
        // Another binary never reads it.
        let other = FileCache::new(d.path().join("cache"), "other-binary".into());
        assert_eq!(other.get("profile", "a = 1"), None);
        let mode = std::fs::metadata(d.path().join("cache")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn damaged_truncated_or_foreign_entries_are_ignored() {
        let d = tempfile::tempdir().unwrap();
        let c = cache(d.path());
        c.put("profile", "x", b"value");
        c.put("profile", "y", b"other");
        let entry = |t: &str| d.path().join("cache").join(hex(&c.key("profile", t)));
        let good = std::fs::read(entry("x")).unwrap();
        let write = |bytes: &[u8]| {
            std::fs::write(entry("x"), bytes).unwrap();
        };
        // One bit flipped in the value.
        let mut flipped = good.clone();
        flipped[HEADER] ^= 1;
        write(&flipped);
        assert_eq!(cache(d.path()).get("profile", "x"), None);
        // Truncated.
        write(&good[..good.len() - 1]);
        assert_eq!(cache(d.path()).get("profile", "x"), None);
        write(&[]);
        assert_eq!(cache(d.path()).get("profile", "x"), None);
        // Another key's entry under this name.
        write(&std::fs::read(entry("y")).unwrap());
        assert_eq!(cache(d.path()).get("profile", "x"), None);
        // Intact again, but writable by others: ignored.
        write(&good);
        assert!(cache(d.path()).get("profile", "x").is_some());
        std::fs::set_permissions(
            entry("x"),
            std::os::unix::fs::PermissionsExt::from_mode(0o666),
        )
        .unwrap();
        assert_eq!(cache(d.path()).get("profile", "x"), None);
    }

    #[test]
    fn a_directory_open_to_others_or_a_symlink_is_not_used() {
        let d = tempfile::tempdir().unwrap();
        let c = cache(d.path());
        c.put("profile", "x", b"value");
        let dir = d.path().join("cache");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o733))
            .unwrap();
        assert_eq!(cache(d.path()).get("profile", "x"), None);
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        std::fs::rename(&dir, d.path().join("real")).unwrap();
        std::os::unix::fs::symlink(d.path().join("real"), &dir).unwrap();
        assert_eq!(cache(d.path()).get("profile", "x"), None);
    }

    #[test]
    fn a_full_directory_is_emptied_before_a_write() {
        let d = tempfile::tempdir().unwrap();
        let c = cache(d.path());
        for i in 0..MAX_ENTRIES + 3 {
            c.put("profile", &i.to_string(), b"v");
        }
        assert!(count_entries(&d.path().join("cache")) <= MAX_ENTRIES);
        assert!(c.get("profile", &(MAX_ENTRIES + 2).to_string()).is_some());
    }
}
