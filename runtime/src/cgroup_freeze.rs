//! Is the cgroup a container is about to be created in already frozen?
//!
//! A process added to a frozen cgroup stops at once, so the process that joins it
//! (libcontainer's intermediate, or the init forked directly) would never answer
//! and `create` would wait forever. runc refuses such a
//! cgroup ("container's cgroup unexpectedly frozen"); so does Stockade, before it
//! makes anything. Read-only; the host's cgroup layout and mount table are passed
//! in (the create reads the table once for all its processes), and so is the
//! hierarchy's mount point, so the check runs on a fake tree in tests.

use std::fs;
use std::path::{Path, PathBuf};

use libcgroups::common::CgroupSetup;

/// How the freezer is exposed on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freezer {
    /// cgroup v1: `freezer.state` (THAWED / FREEZING / FROZEN), a child reports
    /// FROZEN when an ancestor is.
    V1,
    /// cgroup v2: `cgroup.events` (`frozen 1`, the effective state including
    /// ancestors) and `cgroup.freeze`.
    V2,
}

/// The freezer's mount point and kind on a host whose cgroup layout is `setup`:
/// v2's one hierarchy, or on v1 (legacy or hybrid) the freezer hierarchy found in
/// `mountinfo`, the text of the host's `/proc/self/mountinfo`. `None` when the
/// host has no freezer (a v1 host without the controller) or the v1 table was not
/// read.
pub fn host_freezer(setup: &CgroupSetup, mountinfo: Option<&str>) -> Option<(PathBuf, Freezer)> {
    match setup {
        CgroupSetup::Unified => Some((
            PathBuf::from(libcgroups::common::DEFAULT_CGROUP_ROOT),
            Freezer::V2,
        )),
        CgroupSetup::Legacy | CgroupSetup::Hybrid => {
            let mount = libcgroups::v1::util::subsystem_mount_point_in(
                mountinfo?,
                &libcgroups::v1::ControllerType::Freezer,
            );
            mount.ok().map(|m| (m, Freezer::V1))
        }
    }
}

/// A freezer state file that exists but cannot be read: the cgroup's state is
/// unknown, so the create stops rather than guess "thawed" and hang.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the freezer state {}", file.display())]
pub struct UnreadableState {
    pub file: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The cgroup (or the nearest existing ancestor, whose state a new cgroup would
/// inherit) that is frozen, if `cgroup` (relative to `mount`) would be.
pub fn frozen(
    mount: &Path,
    cgroup: &Path,
    kind: Freezer,
) -> Result<Option<PathBuf>, UnreadableState> {
    let rel = cgroup.strip_prefix("/").unwrap_or(cgroup);
    let mut dir = mount.join(rel);
    loop {
        if dir.is_dir() {
            return Ok(is_frozen(&dir, kind, dir == mount)?.then_some(dir));
        }
        if dir == mount || !dir.pop() {
            return Ok(None);
        }
    }
}

fn is_frozen(dir: &Path, kind: Freezer, is_root: bool) -> Result<bool, UnreadableState> {
    // The root of a hierarchy has no freezer files (it can never be frozen); every
    // other cgroup has them, so there a missing file is as unknown as an unreadable one.
    let read = |name: &str| -> Result<String, UnreadableState> {
        let file = dir.join(name);
        match fs::read_to_string(&file) {
            Ok(text) => Ok(text),
            Err(e) if is_root && e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(source) => Err(UnreadableState { file, source }),
        }
    };
    Ok(match kind {
        Freezer::V1 => matches!(read("freezer.state")?.trim(), "FROZEN" | "FREEZING"),
        Freezer::V2 => {
            read("cgroup.events")?
                .lines()
                .any(|l| l.trim() == "frozen 1")
                || read("cgroup.freeze")?.trim() == "1"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = root.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        root
    }

    #[test]
    fn v1_frozen_cgroup_and_its_missing_child() {
        let root = tree(&[("pods/c1/freezer.state", "FROZEN\n")]);
        let m = root.path();
        assert_eq!(
            frozen(m, Path::new("/pods/c1"), Freezer::V1).unwrap(),
            Some(m.join("pods/c1"))
        );
        assert_eq!(
            frozen(m, Path::new("/pods/c1/new"), Freezer::V1).unwrap(),
            Some(m.join("pods/c1"))
        );
        let thawed = tree(&[("pods/c1/freezer.state", "THAWED\n")]);
        assert_eq!(
            frozen(thawed.path(), Path::new("/pods/c1"), Freezer::V1).unwrap(),
            None
        );
        assert_eq!(
            frozen(m, Path::new("/elsewhere/c"), Freezer::V1).unwrap(),
            None
        );
    }

    #[test]
    fn v2_effective_or_requested_freeze() {
        let root = tree(&[
            ("a/cgroup.events", "populated 0\nfrozen 1\n"),
            ("a/cgroup.freeze", "0\n"),
            ("b/cgroup.events", "populated 0\nfrozen 0\n"),
            ("b/cgroup.freeze", "1\n"),
            ("c/cgroup.events", "populated 0\nfrozen 0\n"),
            ("c/cgroup.freeze", "0\n"),
        ]);
        let m = root.path();
        assert!(frozen(m, Path::new("/a/x"), Freezer::V2).unwrap().is_some());
        assert!(frozen(m, Path::new("/b"), Freezer::V2).unwrap().is_some());
        assert_eq!(frozen(m, Path::new("/c"), Freezer::V2).unwrap(), None);
    }

    /// Two lines of a hybrid host's mountinfo: the freezer and the v2 hugetlb mount.
    const HYBRID_MOUNTINFO: &str = "\
35 25 0:30 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,freezer
28 25 0:25 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw
";

    #[test]
    fn the_freezer_is_v2s_hierarchy_or_found_in_the_v1_table_given() {
        assert_eq!(
            host_freezer(&CgroupSetup::Unified, None),
            Some((PathBuf::from("/sys/fs/cgroup"), Freezer::V2))
        );
        for v1 in [CgroupSetup::Hybrid, CgroupSetup::Legacy] {
            assert_eq!(
                host_freezer(&v1, Some(HYBRID_MOUNTINFO)),
                Some((PathBuf::from("/sys/fs/cgroup/freezer"), Freezer::V1))
            );
            // No freezer controller mounted, or no table read: no freezer known.
            let without = HYBRID_MOUNTINFO.lines().nth(1).unwrap();
            assert_eq!(host_freezer(&v1, Some(without)), None);
            assert_eq!(host_freezer(&v1, None), None);
        }
    }

    #[test]
    fn a_cgroup_without_its_state_file_is_unknown_not_thawed() {
        // The root has no freezer files: not frozen. A child without them cannot be
        // judged: an error naming the file, never a silent "thawed".
        let root = tree(&[("pods/c1/other", "")]);
        let m = root.path();
        assert_eq!(frozen(m, Path::new("/new"), Freezer::V1).unwrap(), None);
        let err = frozen(m, Path::new("/pods/c1"), Freezer::V1).unwrap_err();
        assert_eq!(err.file, m.join("pods/c1/freezer.state"));
        let err = frozen(m, Path::new("/pods/c1/x"), Freezer::V2).unwrap_err();
        assert_eq!(err.file, m.join("pods/c1/cgroup.events"));
    }
}
