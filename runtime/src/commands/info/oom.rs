//! OOM kills of a container for `events` (runc's `oom` events): the kernel's count of
//! OOM kills in the container's memory cgroup (`oom_kill` in cgroup v1's
//! `memory.oom_control`, kernel 4.13+, and in cgroup v2's `memory.events`), read
//! each tick; an increase is one event. The cgroup is found from the init's
//! `/proc/PID/cgroup` and the mount table, so either cgroup driver works.

use std::path::{Path, PathBuf};

/// The file holding the container's `oom_kill` counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomCounter {
    file: PathBuf,
    last: u64,
}

impl OomCounter {
    /// The counter of the memory cgroup of process `pid`, or `None` when it has no
    /// memory controller (then there are no OOM events to report).
    pub fn from_process(pid: i32) -> Option<Self> {
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let file = counter_file(&cgroups, &mountinfo)?;
        let last = read_oom_kills(&file).unwrap_or(0);
        Some(Self { file, last })
    }

    /// Whether OOM kills happened since the last call (or since `from_process`).
    /// A counter that cannot be read (the cgroup is gone) counts as no change.
    pub fn increased(&mut self) -> bool {
        match read_oom_kills(&self.file) {
            Some(now) if now > self.last => {
                self.last = now;
                true
            }
            _ => false,
        }
    }
}

fn read_oom_kills(file: &Path) -> Option<u64> {
    parse_oom_kills(&std::fs::read_to_string(file).ok()?)
}

/// `oom_kill N` from `memory.oom_control` or `memory.events` (0 when the kernel
/// has no such line).
fn parse_oom_kills(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .map(|n| n.trim().parse().ok())
        .unwrap_or(Some(0))
}

/// The counter file of the memory cgroup named in `cgroups` (`/proc/PID/cgroup`),
/// located through `mountinfo` (`/proc/self/mountinfo`, proc(5)): cgroup v1's
/// memory hierarchy if the process is in one, else the unified hierarchy.
fn counter_file(cgroups: &str, mountinfo: &str) -> Option<PathBuf> {
    let mut v2_path = None;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (hierarchy, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if hierarchy == "0" && controllers.is_empty() {
            v2_path = Some(path);
        } else if controllers.split(',').any(|c| c == "memory") {
            let (mount, root) = mount_of(mountinfo, |fstype, opts| {
                fstype == "cgroup" && opts.split(',').any(|o| o == "memory")
            })?;
            return Some(join(&mount, &root, path).join("memory.oom_control"));
        }
    }
    let path = v2_path?;
    let (mount, root) = mount_of(mountinfo, |fstype, _| fstype == "cgroup2")?;
    let dir = join(&mount, &root, path);
    // A hybrid host's unified hierarchy has no memory controller.
    let file = dir.join("memory.events");
    file.exists().then_some(file)
}

/// Mount point and root of the first mount `matches(fstype, super options)` accepts.
fn mount_of(mountinfo: &str, matches: impl Fn(&str, &str) -> bool) -> Option<(String, String)> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        matches(right.first()?, right.get(2).copied().unwrap_or_default())
            .then(|| Some((left.get(4)?.to_string(), left.get(3)?.to_string())))?
    })
}

/// `path` (as the kernel names it, from the hierarchy's root) under a mount of
/// that hierarchy whose own root is `root`.
fn join(mount: &str, root: &str, path: &str) -> PathBuf {
    let rel = path
        .strip_prefix(root)
        .filter(|_| root != "/")
        .unwrap_or(path);
    Path::new(mount).join(rel.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_HYBRID: &str = "\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn v1_memory_hierarchy_is_preferred() {
        let cgroups = "9:name=systemd:/a/b\n4:memory:/a/b\n0::/a/b\n";
        assert_eq!(
            counter_file(cgroups, MOUNTINFO_HYBRID),
            Some(PathBuf::from(
                "/sys/fs/cgroup/memory/a/b/memory.oom_control"
            ))
        );
    }

    #[test]
    fn a_mount_of_a_sub_tree_is_joined_below_its_root() {
        let mountinfo = "35 31 0:32 /a /mnt/mem rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            counter_file("4:memory:/a/b\n", mountinfo),
            Some(PathBuf::from("/mnt/mem/b/memory.oom_control"))
        );
    }

    #[test]
    fn no_memory_controller_means_no_counter() {
        let mountinfo = "35 31 0:32 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(counter_file("1:cpu:/a\n", mountinfo), None);
    }

    #[test]
    fn oom_kill_line_is_read_and_absent_counts_zero() {
        assert_eq!(
            parse_oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
            Some(3)
        );
        assert_eq!(parse_oom_kills("low 0\nhigh 0\nmax 2\noom 1\n"), Some(0));
        assert_eq!(parse_oom_kills("oom_kill x\n"), None);
    }
}
