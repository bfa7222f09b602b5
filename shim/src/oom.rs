//! OOM notifications from the container's memory cgroup.
//!
//! cgroup v1: an eventfd registered on `memory.oom_control` through
//! `cgroup.event_control` (Documentation/admin-guide/cgroup-v1/memory.rst, section 11);
//! the kernel also signals it when the cgroup is removed, which ends the watcher.
//! cgroup v2: inotify on `memory.events`, reporting each increase of `oom_kill`.

use std::{
    fs::File,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

use nix::sys::{
    eventfd::{EfdFlags, EventFd},
    inotify::{AddWatchFlags, InitFlags, Inotify},
};

use crate::{
    error::{Error, Result},
    instance::OomNotify,
};

const WATCH_STACK: usize = 64 * 1024;

/// Which memory cgroup a process is in.
#[derive(Debug, PartialEq, Eq)]
pub enum MemoryCgroup {
    V1(PathBuf),
    V2(PathBuf),
}

/// Finds the memory cgroup of `pid` from its `/proc/<pid>/cgroup` and our mountinfo.
pub fn memory_cgroup(pid: u32) -> Result<MemoryCgroup> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(Error::io(format!("read cgroups of pid {pid}")))?;
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(Error::io("read mountinfo"))?;
    resolve(&cgroups, &mountinfo)
        .ok_or_else(|| Error::InvalidRequest(format!("no memory cgroup for pid {pid}")))
}

/// Pure part of [`memory_cgroup`].
pub fn resolve(cgroups: &str, mountinfo: &str) -> Option<MemoryCgroup> {
    let mounts: Vec<(&str, &str, &str)> = mountinfo
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mountpoint = pre.split(' ').nth(4)?;
            let mut post = post.split(' ');
            let fstype = post.next()?;
            let superopts = post.nth(1).unwrap_or("");
            Some((mountpoint, fstype, superopts))
        })
        .collect();
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.split(',').any(|c| c == "memory") {
            let mp = mounts
                .iter()
                .find(|(_, t, o)| *t == "cgroup" && o.split(',').any(|x| x == "memory"))?;
            return Some(MemoryCgroup::V1(join(mp.0, path)));
        }
    }
    let v2 = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mp = mounts.iter().find(|(_, t, _)| *t == "cgroup2")?;
    Some(MemoryCgroup::V2(join(mp.0, v2)))
}

fn join(mountpoint: &str, path: &str) -> PathBuf {
    Path::new(mountpoint).join(path.trim_start_matches('/'))
}

/// Starts a watcher thread for the memory cgroup of `pid`.
pub fn watch(pid: u32, notify: OomNotify) -> Result<()> {
    match memory_cgroup(pid)? {
        MemoryCgroup::V1(dir) => watch_v1(dir, notify),
        MemoryCgroup::V2(dir) => watch_v2(dir, notify),
    }
}

fn watch_v1(dir: PathBuf, notify: OomNotify) -> Result<()> {
    let efd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC)
        .map_err(Error::sys("create eventfd"))?;
    let control = File::open(dir.join("memory.oom_control")).map_err(Error::io(format!(
        "open {}/memory.oom_control",
        dir.display()
    )))?;
    std::fs::write(
        dir.join("cgroup.event_control"),
        format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()),
    )
    .map_err(Error::io(format!(
        "register OOM eventfd in {}",
        dir.display()
    )))?;
    std::thread::Builder::new()
        .name("oom-v1".into())
        .stack_size(WATCH_STACK)
        .spawn(move || {
            let _control = control;
            loop {
                match efd.read() {
                    Ok(_) if dir.join("memory.oom_control").exists() => notify(),
                    Ok(_) => break, // cgroup removed
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break,
                }
            }
        })
        .map(drop)
        .map_err(Error::io("spawn OOM watcher"))
}

fn oom_kills(events: &Path) -> Option<u64> {
    std::fs::read_to_string(events)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}

fn watch_v2(dir: PathBuf, notify: OomNotify) -> Result<()> {
    let events = dir.join("memory.events");
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(Error::sys("inotify init"))?;
    inotify
        .add_watch(&events, AddWatchFlags::IN_MODIFY)
        .map_err(Error::sys(format!("watch {}", events.display())))?;
    let mut seen = oom_kills(&events).unwrap_or(0);
    std::thread::Builder::new()
        .name("oom-v2".into())
        .stack_size(WATCH_STACK)
        .spawn(move || loop {
            match inotify.read_events() {
                Ok(evs) => {
                    if evs
                        .iter()
                        .any(|e| e.mask.contains(AddWatchFlags::IN_IGNORED))
                    {
                        break;
                    }
                    let Some(now) = oom_kills(&events) else { break };
                    if now > seen {
                        seen = now;
                        notify();
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        })
        .map(drop)
        .map_err(Error::io("spawn OOM watcher"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_V1: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:15 - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct";

    #[test]
    fn v1_memory_cgroup() {
        let cg = "12:hugetlb:/\n5:memory:/stockade-test/c1\n0::/\n";
        assert_eq!(
            resolve(cg, MOUNTINFO_V1),
            Some(MemoryCgroup::V1(
                "/sys/fs/cgroup/memory/stockade-test/c1".into()
            ))
        );
    }

    #[test]
    fn v2_memory_cgroup() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate";
        assert_eq!(
            resolve("0::/k8s/pod1/c1\n", mi),
            Some(MemoryCgroup::V2("/sys/fs/cgroup/k8s/pod1/c1".into()))
        );
    }

    #[test]
    fn oom_kill_counter_parses() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("memory.events");
        std::fs::write(&f, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n").unwrap();
        assert_eq!(oom_kills(&f), Some(2));
    }
}
