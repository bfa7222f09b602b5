//! Where a process's cgroups are, read once: its `/proc/<pid>/cgroup` lines joined
//! with the cgroup mounts of our `/proc/self/mountinfo`. The OOM watcher and the
//! metrics readers both locate the container's cgroup directories through here
//! (pure functions on the two texts, so tests feed them fake ones).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A process's cgroup membership and the cgroup filesystems we see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupPaths {
    /// `(controllers, path)` per hierarchy line; v2's line has no controllers.
    lines: Vec<(Vec<String>, String)>,
    /// `(mountpoint, fstype, super options)` of each cgroup or cgroup2 mount.
    mounts: Vec<(String, String, Vec<String>)>,
}

impl CgroupPaths {
    /// Read `/proc/<pid>/cgroup` and `/proc/self/mountinfo`.
    pub fn of_pid(pid: u32) -> Result<Self> {
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map_err(Error::io(format!("read cgroups of pid {pid}")))?;
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").map_err(Error::io("read mountinfo"))?;
        Ok(Self::parse(&cgroups, &mountinfo))
    }

    /// Parse the two texts; malformed lines are skipped.
    pub fn parse(cgroups: &str, mountinfo: &str) -> Self {
        let lines = cgroups
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
                let ctrls = ctrls
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect();
                Some((ctrls, path.to_owned()))
            })
            .collect();
        let mounts = mountinfo
            .lines()
            .filter_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                let mountpoint = pre.split(' ').nth(4)?;
                let mut post = post.split(' ');
                let fstype = post.next()?;
                if fstype != "cgroup" && fstype != "cgroup2" {
                    return None;
                }
                let superopts = post.nth(1).unwrap_or("");
                Some((
                    mountpoint.to_owned(),
                    fstype.to_owned(),
                    superopts.split(',').map(String::from).collect(),
                ))
            })
            .collect();
        Self { lines, mounts }
    }

    /// The process's directory in the v1 hierarchy holding `controller`, if that
    /// controller is mounted as a v1 hierarchy.
    pub fn v1_dir(&self, controller: &str) -> Option<PathBuf> {
        let (_, path) = self
            .lines
            .iter()
            .find(|(ctrls, _)| ctrls.iter().any(|c| c == controller))?;
        let (mountpoint, _, _) = self
            .mounts
            .iter()
            .find(|(_, t, opts)| t == "cgroup" && opts.iter().any(|o| o == controller))?;
        Some(join(mountpoint, path))
    }

    /// The process's directory in the unified (v2) hierarchy, if one is mounted.
    pub fn v2_dir(&self) -> Option<PathBuf> {
        let (_, path) = self.lines.iter().find(|(ctrls, _)| ctrls.is_empty())?;
        let (mountpoint, _, _) = self.mounts.iter().find(|(_, t, _)| t == "cgroup2")?;
        Some(join(mountpoint, path))
    }
}

fn join(mountpoint: &str, path: &str) -> PathBuf {
    Path::new(mountpoint).join(path.trim_start_matches('/'))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A hybrid host's cgroup mounts (also the OOM watcher's tests' host).
    pub(crate) const MOUNTINFO_HYBRID: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:15 - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct";

    #[test]
    fn each_hierarchy_is_joined_with_its_mount() {
        let p = CgroupPaths::parse(
            "12:hugetlb:/\n5:memory:/s/c1\n3:cpu,cpuacct:/s/c1\n0::/u\n",
            MOUNTINFO_HYBRID,
        );
        assert_eq!(
            p.v1_dir("memory"),
            Some("/sys/fs/cgroup/memory/s/c1".into())
        );
        assert_eq!(
            p.v1_dir("cpuacct"),
            Some("/sys/fs/cgroup/cpu,cpuacct/s/c1".into())
        );
        // hugetlb has a line but no v1 mount here; pids has neither.
        assert_eq!(p.v1_dir("hugetlb"), None);
        assert_eq!(p.v1_dir("pids"), None);
        assert_eq!(p.v2_dir(), Some("/sys/fs/cgroup/unified/u".into()));
    }

    #[test]
    fn a_pure_v2_host_has_no_v1_dirs() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate";
        let p = CgroupPaths::parse("0::/k8s/pod1/c1\n", mi);
        assert_eq!(p.v1_dir("memory"), None);
        assert_eq!(p.v2_dir(), Some("/sys/fs/cgroup/k8s/pod1/c1".into()));
    }
}
