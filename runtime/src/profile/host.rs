//! Facts about the host the pure check depends on, probed once (`host_probe`:
//! `HostFacts::probe`) and passed in as a value.

use serde::Serialize;
use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::schema::NsType;

/// cgroup hierarchy layout of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupVersion {
    V1,
    /// v1 controllers plus an (often empty) v2 hierarchy at `/sys/fs/cgroup/unified`.
    Hybrid,
    V2,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostFacts {
    /// Landlock ABI version, `None` when Landlock is unavailable or disabled.
    pub landlock_abi: Option<u8>,
    pub cgroup: CgroupVersion,
    /// Inode of each of the runtime's own namespaces (`/proc/self/ns/*`): a container that
    /// joins a namespace with one of these inodes shares it with the host.
    pub own_namespaces: BTreeMap<NsType, u64>,
    /// Whether a tmpfs mount can be idmapped (Linux >= 6.3): Kubernetes Secrets,
    /// ConfigMap projections, memory-backed emptyDirs and a pod's /dev/shm are tmpfs.
    pub tmpfs_idmap: bool,
    /// `uname -r`, for messages that name a kernel requirement.
    pub kernel_release: String,
    /// The lowest `process.oomScoreAdj` the runtime can give a container: `None` when
    /// it holds CAP_SYS_RESOURCE (any value); else its own current value. Without the
    /// capability the kernel refuses (EACCES) to go below the minimum a privileged
    /// ancestor last set, which is not readable; the runtime's own value is one it
    /// can always set.
    pub oom_score_adj_floor: Option<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum HostProbeError {
    #[error("cannot stat own namespace {path}")]
    StatOwnNamespace {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Resolve a namespace `path` of the spec to its inode. A trait so rule functions stay
/// pure and tests can use a fake.
pub trait NsInodeLookup {
    fn inode(&self, path: &Path) -> io::Result<u64>;

    /// Whether `path` (a bind mount source) lives on tmpfs. Only rules about
    /// idmapped volumes ask; the default answers "no".
    fn on_tmpfs(&self, _path: &Path) -> io::Result<bool> {
        Ok(false)
    }
}

/// Looks namespaces up with stat(2), following the `/proc/<pid>/ns/*` magic links.
#[derive(Debug, Default, Clone, Copy)]
pub struct StatNsLookup;

impl NsInodeLookup for StatNsLookup {
    fn inode(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.ino())
    }

    fn on_tmpfs(&self, path: &Path) -> io::Result<bool> {
        let st = nix::sys::statfs::statfs(path).map_err(io::Error::from)?;
        Ok(st.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
    }
}

/// `landlock_create_ruleset(2)` flag asking for the highest supported ABI.
const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;

/// `major.minor` of a release string such as `6.1.0-27-amd64` is at least `want`.
pub fn kernel_at_least(release: &str, want: (u32, u32)) -> bool {
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok());
    match (nums.next().flatten(), nums.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= want,
        _ => false,
    }
}

pub fn probe_landlock_abi() -> Option<u8> {
    // SAFETY: with a null attr, size 0 and the VERSION flag, landlock_create_ruleset(2)
    // reads no memory and only returns the ABI version (or -1 with errno set).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u8::try_from(ret).ok().filter(|abi| *abi > 0)
}

/// Classify the cgroup layout under `root` (normally `/sys/fs/cgroup`).
pub fn probe_cgroup(root: &Path) -> CgroupVersion {
    if root.join("cgroup.controllers").exists() {
        CgroupVersion::V2
    } else if root.join("unified").join("cgroup.controllers").exists() {
        CgroupVersion::Hybrid
    } else {
        CgroupVersion::V1
    }
}

#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;

    /// Host with ABI 6 Landlock and namespace inodes 4026531830 + index.
    pub fn host() -> HostFacts {
        HostFacts {
            landlock_abi: Some(6),
            cgroup: CgroupVersion::V1,
            own_namespaces: NsType::ALL
                .iter()
                .enumerate()
                .map(|(i, ns)| (*ns, 4_026_531_830 + i as u64))
                .collect(),
            tmpfs_idmap: true,
            kernel_release: "6.18.0-test".into(),
            oom_score_adj_floor: None,
        }
    }

    /// Paths `/proc/1/ns/*` resolve to the host's inodes, `/proc/42/ns/*` to others.
    pub struct FakeNs(pub HashMap<PathBuf, u64>);

    impl FakeNs {
        pub fn new(host: &HostFacts) -> Self {
            let mut m = HashMap::new();
            for (ns, ino) in &host.own_namespaces {
                m.insert(
                    PathBuf::from(format!("/proc/1/ns/{}", ns.proc_name())),
                    *ino,
                );
                m.insert(
                    PathBuf::from(format!("/proc/42/ns/{}", ns.proc_name())),
                    ino + 1000,
                );
            }
            FakeNs(m)
        }
    }

    impl NsInodeLookup for FakeNs {
        fn inode(&self, path: &Path) -> io::Result<u64> {
            self.0
                .get(path)
                .copied()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_layout_is_read_from_the_given_root() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(probe_cgroup(d.path()), CgroupVersion::V1);
        std::fs::create_dir(d.path().join("unified")).unwrap();
        std::fs::write(d.path().join("unified/cgroup.controllers"), "").unwrap();
        assert_eq!(probe_cgroup(d.path()), CgroupVersion::Hybrid);
        std::fs::write(d.path().join("cgroup.controllers"), "").unwrap();
        assert_eq!(probe_cgroup(d.path()), CgroupVersion::V2);
    }

    #[test]
    fn kernel_versions_compare_by_major_and_minor() {
        assert!(kernel_at_least("6.18.0-1-amd64", (6, 3)));
        assert!(kernel_at_least("6.3", (6, 3)));
        assert!(!kernel_at_least("6.1.0-27-amd64", (6, 3)));
        assert!(!kernel_at_least("5.19.0", (6, 3)));
        assert!(!kernel_at_least("", (6, 3)));
    }

    #[test]
    fn probe_reads_own_namespaces() {
        let h = HostFacts::probe().unwrap();
        let net = StatNsLookup.inode(Path::new("/proc/self/ns/net")).unwrap();
        assert_eq!(h.own_namespaces.get(&NsType::Network), Some(&net));
        assert!(h.own_namespaces.contains_key(&NsType::Pid));
    }

    #[test]
    fn stat_lookup_resolves_own_namespace() {
        let a = StatNsLookup.inode(Path::new("/proc/self/ns/net")).unwrap();
        let b = StatNsLookup
            .inode(Path::new(&format!("/proc/{}/ns/net", std::process::id())))
            .unwrap();
        assert_eq!(a, b);
    }
}
