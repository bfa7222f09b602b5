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
    cgroup_path::CgroupPaths,
    error::{Error, Result},
    instance::OomNotify,
    stats::{parse_flat_keyed, CgroupFileError},
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
    resolve(&CgroupPaths::of_pid(pid)?)
        .ok_or_else(|| Error::InvalidRequest(format!("no memory cgroup for pid {pid}")))
}

/// Pure part of [`memory_cgroup`]: v1 when a v1 hierarchy holds the memory
/// controller (on a hybrid host the unified tree has none), v2 otherwise.
pub fn resolve(paths: &CgroupPaths) -> Option<MemoryCgroup> {
    match paths.v1_dir("memory") {
        Some(dir) => Some(MemoryCgroup::V1(dir)),
        None => paths.v2_dir().map(MemoryCgroup::V2),
    }
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

/// The v2 OOM detector: a cgroup directory's `memory.events` `oom_kill` counter and
/// the last value seen. The kernel counts a kill there each time the OOM killer picks
/// a process in the cgroup (Documentation/admin-guide/cgroup-v2.rst, memory.events);
/// `oom` alone (an OOM that killed nothing) or `max` (the limit was hit) is no kill.
#[derive(Debug)]
pub struct OomKills {
    dir: PathBuf,
    seen: u64,
}

impl OomKills {
    /// Starts from the counter's current value: kills before the watch began are not
    /// reported.
    pub fn new(dir: PathBuf) -> Result<Self, CgroupFileError> {
        let seen = read_oom_kills(&dir)?;
        Ok(Self { dir, seen })
    }

    pub fn events_file(&self) -> PathBuf {
        self.dir.join(MEMORY_EVENTS)
    }

    /// Re-reads the counter; true exactly when it has increased since the last read
    /// (several kills between two reads are one notification).
    pub fn increased(&mut self) -> Result<bool, CgroupFileError> {
        let now = read_oom_kills(&self.dir)?;
        let increased = now > self.seen;
        self.seen = now;
        Ok(increased)
    }
}

const MEMORY_EVENTS: &str = "memory.events";

/// `oom_kill` of `dir/memory.events`; 0 when the key is absent (kernels before 4.13).
fn read_oom_kills(dir: &Path) -> Result<u64, CgroupFileError> {
    let content = crate::stats::read_required(dir, MEMORY_EVENTS)?;
    let events = parse_flat_keyed(&dir.join(MEMORY_EVENTS), &content)?;
    Ok(events.get("oom_kill").copied().unwrap_or(0))
}

fn watch_v2(dir: PathBuf, notify: OomNotify) -> Result<()> {
    let mut kills = OomKills::new(dir).map_err(Error::CgroupStats)?;
    let events = kills.events_file();
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(Error::sys("inotify init"))?;
    inotify
        .add_watch(&events, AddWatchFlags::IN_MODIFY)
        .map_err(Error::sys(format!("watch {}", events.display())))?;
    std::thread::Builder::new()
        .name("oom-v2".into())
        .stack_size(WATCH_STACK)
        .spawn(move || loop {
            match inotify.read_events() {
                Ok(evs) => {
                    // IN_IGNORED: the watch is gone with the cgroup (rmdir).
                    if evs
                        .iter()
                        .any(|e| e.mask.contains(AddWatchFlags::IN_IGNORED))
                    {
                        break;
                    }
                    match kills.increased() {
                        Ok(true) => notify(),
                        Ok(false) => {}
                        Err(_) => break, // cgroup removed between event and read
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

    use crate::cgroup_path::tests::MOUNTINFO_HYBRID as MOUNTINFO_V1;

    #[test]
    fn v1_memory_cgroup() {
        let cg = "12:hugetlb:/\n5:memory:/stockade-test/c1\n0::/\n";
        assert_eq!(
            resolve(&CgroupPaths::parse(cg, MOUNTINFO_V1)),
            Some(MemoryCgroup::V1(
                "/sys/fs/cgroup/memory/stockade-test/c1".into()
            ))
        );
    }

    #[test]
    fn v2_memory_cgroup() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate";
        assert_eq!(
            resolve(&CgroupPaths::parse("0::/k8s/pod1/c1\n", mi)),
            Some(MemoryCgroup::V2("/sys/fs/cgroup/k8s/pod1/c1".into()))
        );
    }

    fn write_events(dir: &Path, oom: u64, oom_kill: u64) {
        std::fs::write(
            dir.join("memory.events"),
            format!("low 0\nhigh 0\nmax 7\noom {oom}\noom_kill {oom_kill}\noom_group_kill 0\n"),
        )
        .unwrap();
    }

    #[test]
    fn oom_fires_exactly_when_oom_kill_increases() {
        let dir = tempfile::tempdir().unwrap();
        write_events(dir.path(), 1, 1);
        // A kill before the watch started is not reported.
        let mut kills = OomKills::new(dir.path().to_owned()).unwrap();
        // (oom, oom_kill) after each kernel write -> notification expected.
        let steps = [
            ((1, 1), false), // unrelated modification (e.g. `max` or `high` bumped)
            ((2, 1), false), // OOM without a kill
            ((3, 2), true),  // one kill
            ((3, 2), false),
            ((5, 5), true), // several kills between two reads: one notification
            ((5, 5), false),
        ];
        for (i, ((oom, oom_kill), fires)) in steps.into_iter().enumerate() {
            write_events(dir.path(), oom, oom_kill);
            assert_eq!(kills.increased().unwrap(), fires, "step {i}");
        }
    }

    #[test]
    fn oom_kill_key_absent_counts_zero() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("memory.events"),
            "low 0\nhigh 0\nmax 0\noom 0\n",
        )
        .unwrap();
        let mut kills = OomKills::new(dir.path().to_owned()).unwrap();
        assert!(!kills.increased().unwrap());
        write_events(dir.path(), 1, 1);
        assert!(kills.increased().unwrap());
    }

    #[test]
    fn oom_events_errors_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        // No memory.events: the cgroup is gone, or not a v2 memory cgroup.
        assert!(matches!(
            OomKills::new(dir.path().to_owned()),
            Err(CgroupFileError::Read { .. })
        ));
        write_events(dir.path(), 0, 0);
        let mut kills = OomKills::new(dir.path().to_owned()).unwrap();
        std::fs::write(dir.path().join("memory.events"), "oom_kill lots\n").unwrap();
        assert!(matches!(
            kills.increased(),
            Err(CgroupFileError::ParseValue { .. })
        ));
        std::fs::remove_file(dir.path().join("memory.events")).unwrap();
        assert!(matches!(
            kills.increased(),
            Err(CgroupFileError::Read { .. })
        ));
    }

    /// The watcher thread end to end on a tempdir: a write raising `oom_kill` is one
    /// notification, and removing the file (as rmdir of the cgroup does) ends the thread.
    #[test]
    fn v2_watcher_notifies_on_oom_kill() {
        let dir = tempfile::tempdir().unwrap();
        write_events(dir.path(), 0, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        watch_v2(
            dir.path().to_owned(),
            Box::new(move || tx.lock().unwrap().send(()).unwrap()),
        )
        .unwrap();
        write_events(dir.path(), 1, 0);
        write_events(dir.path(), 1, 1);
        // Generous guard against a hang, not a timing assumption.
        let guard = std::time::Duration::from_secs(30);
        rx.recv_timeout(guard).expect("notification for the kill");
        std::fs::remove_file(dir.path().join("memory.events")).unwrap();
        // The thread drops the sender when it ends: no second notification.
        assert_eq!(
            rx.recv_timeout(guard),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        );
    }
}
