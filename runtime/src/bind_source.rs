//! Bind mount sources as objects, not strings (issue 9).
//!
//! A bind source is a path, and a path can change between the moment it is judged
//! and the moment it is mounted: swap a symlink under an allowed prefix from a
//! volume to a runtime socket after the check, and the container gets the socket.
//! So a source is opened once at admission ([`CheckedSources::open`]: `O_PATH`,
//! symlinks followed as mount(2) follows them) and that object is what counts:
//!
//! 1. the policy gate judges where the opened fd leads (`/proc/self/fd/N`);
//! 2. the user-namespace setup idmaps that very fd (`open_tree(fd, "",
//!    AT_EMPTY_PATH)`), never the path again;
//! 3. the plan records each admitted object's identity (device and inode) by the
//!    source path the init will mount ([`BindIdentities`]), and the init — which
//!    can only re-open a path in its own mount namespace — opens the source once,
//!    has [`BindIdentities::verify`] compare that fd with the plan, and mounts
//!    that fd (`third_party/PATCHES.md`, the bind source check). A different
//!    object, or a source that did not exist at admission, stops the create.
//!
//! The fds opened at admission are held until libcontainer returns, so an admitted
//! inode cannot be freed and its number reused by another object meanwhile.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

/// What makes a file the same object: its device and inode numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
}

impl FileIdentity {
    /// The identity of the object `fd` refers to (fstat(2); works on `O_PATH`).
    pub fn of(fd: BorrowedFd<'_>) -> io::Result<Self> {
        let meta = File::from(fd.try_clone_to_owned()?).metadata()?;
        Ok(Self {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

impl std::fmt::Display for FileIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (major, minor) = (libc::major(self.dev), libc::minor(self.dev));
        write!(f, "device {major}:{minor} inode {}", self.ino)
    }
}

/// One bind source of the caller's spec as admission opened it.
#[derive(Debug)]
pub struct CheckedSource {
    /// Index of the mount in the spec admission judged.
    pub index: usize,
    /// The source as the spec writes it.
    pub source: PathBuf,
    /// Where the opened fd really is, as the kernel names it.
    pub real: String,
    pub identity: FileIdentity,
    /// Held from the check until the container exists.
    pub fd: OwnedFd,
}

/// Every bind source of a spec that could be opened at admission.
#[derive(Debug, Default)]
pub struct CheckedSources(Vec<CheckedSource>);

impl CheckedSources {
    /// Open each bind mount source of `spec` once (a relative one from the cwd, as
    /// the init resolves it). Read-only: a source that cannot be opened is left out
    /// (the init then reports the mount's own error, or refuses a source that has
    /// appeared since).
    pub fn open(spec: &Spec) -> Self {
        let mut out = Vec::new();
        for (index, m) in spec.mounts().iter().flatten().enumerate() {
            let bind = crate::bundle::is_bind_mount(m);
            let Some(source) = m.source().as_ref().filter(|_| bind) else {
                continue;
            };
            let opened = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
                .open(source);
            let Ok(file) = opened else {
                continue;
            };
            let fd = OwnedFd::from(file);
            let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            let (Ok(real), Ok(identity)) = (real, FileIdentity::of(fd.as_fd())) else {
                continue;
            };
            out.push(CheckedSource {
                index,
                source: source.clone(),
                real: real.to_string_lossy().into_owned(),
                identity,
                fd,
            });
        }
        Self(out)
    }

    /// What the gate judges: mount index and where its source really leads.
    pub fn for_gate(&self) -> Vec<(usize, String)> {
        self.0.iter().map(|c| (c.index, c.real.clone())).collect()
    }

    /// The admitted object behind the spec's source `source`.
    pub fn get(&self, source: &Path) -> Option<&CheckedSource> {
        self.0.iter().find(|c| c.source == source)
    }

    /// The identities the init must find, by source path, before any rewrite.
    pub fn identities(&self) -> BindIdentities {
        let mut ids = BindIdentities::default();
        for c in &self.0 {
            ids.insert(c.source.clone(), c.identity);
        }
        ids
    }
}

/// The plan's record of what each bind source must be when the init mounts it,
/// keyed by the source path in the hardened spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindIdentities(BTreeMap<PathBuf, FileIdentity>);

/// A bind source the init opened that is not the object admitted.
#[derive(Debug, thiserror::Error)]
pub enum BindSourceError {
    #[error("cannot stat bind source {path}")]
    Stat {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("bind source {path} was not there when the container was admitted; refusing to mount what appeared since")]
    NotAdmitted { path: PathBuf },
    #[error("bind source {path} changed since admission: it is now {now}, not the {admitted} that was checked (a symlink swapped?); refusing to mount it")]
    Changed {
        path: PathBuf,
        admitted: FileIdentity,
        now: FileIdentity,
    },
}

impl BindIdentities {
    pub fn insert(&mut self, source: PathBuf, identity: FileIdentity) {
        self.0.insert(source, identity);
    }

    /// Record a source the runtime itself chose (not the caller), opened now.
    pub fn insert_runtime_source(&mut self, source: &Path) -> io::Result<()> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(source)?;
        let identity = FileIdentity::of(file.as_fd())?;
        self.insert(source.to_path_buf(), identity);
        Ok(())
    }

    /// Is `opened` (the init's fd of the spec's source `source`) the object admitted?
    pub fn verify(&self, source: &Path, opened: BorrowedFd<'_>) -> Result<(), BindSourceError> {
        let admitted = self
            .0
            .get(source)
            .ok_or_else(|| BindSourceError::NotAdmitted {
                path: source.to_path_buf(),
            })?;
        let now = FileIdentity::of(opened).map_err(|e| BindSourceError::Stat {
            path: source.to_path_buf(),
            source: e,
        })?;
        if now != *admitted {
            return Err(BindSourceError::Changed {
                path: source.to_path_buf(),
                admitted: *admitted,
                now,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(p: &Path) -> OwnedFd {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(p)
            .unwrap()
            .into()
    }

    #[test]
    fn the_admitted_object_passes_and_a_swapped_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::write(&b, "forbidden").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let mut spec = Spec::default();
        let mount = oci_spec::runtime::MountBuilder::default()
            .destination("/v")
            .typ("bind")
            .source(&link)
            .options(vec!["rbind".to_string()])
            .build()
            .unwrap();
        spec.set_mounts(Some(vec![mount]));
        let checked = CheckedSources::open(&spec);
        assert_eq!(checked.for_gate(), vec![(0, a.display().to_string())]);
        let ids = checked.identities();
        ids.verify(&link, open(&link).as_fd()).unwrap();
        // The symlink now leads elsewhere: same path, another object.
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&b, &link).unwrap();
        let err = ids.verify(&link, open(&link).as_fd()).unwrap_err();
        assert!(matches!(err, BindSourceError::Changed { .. }), "{err}");
        assert!(err.to_string().contains("changed since admission"), "{err}");
        // A source nobody admitted is refused, whatever it is.
        let err = ids.verify(&b, open(&b).as_fd()).unwrap_err();
        assert!(matches!(err, BindSourceError::NotAdmitted { .. }), "{err}");
    }

    #[test]
    fn a_source_that_cannot_be_opened_is_left_to_the_mount() {
        let mut spec = Spec::default();
        let mount = oci_spec::runtime::MountBuilder::default()
            .destination("/v")
            .typ("bind")
            .source("/nonexistent/stockade-test-source")
            .build()
            .unwrap();
        spec.set_mounts(Some(vec![mount]));
        let checked = CheckedSources::open(&spec);
        assert!(checked.for_gate().is_empty());
        assert_eq!(checked.identities(), BindIdentities::default());
    }
}
