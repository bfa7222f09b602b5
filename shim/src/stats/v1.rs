//! A cgroup v1 container's statistics as containerd's `io.containerd.cgroups.v1.Metrics`,
//! with the file-to-field mapping of containerd's cgroups v1 package
//! (Documentation/admin-guide/cgroup-v1/{memory,cpuacct,pids}.rst).
//!
//! v1 has one directory per controller hierarchy, so the reader takes a [`V1Dirs`];
//! tests point each at a tempdir of fake files.

use std::path::{Path, PathBuf};

use containerd_shim::protos::cgroups::metrics::{
    CPUStat, CPUUsage, MemoryEntry, MemoryOomControl, MemoryStat, Metrics, PidsStat, Throttle,
};

use super::cgroupfs::{self, fill, CgroupFileError, Setter};
use crate::cgroup_path::CgroupPaths;

/// The container's directory in each v1 hierarchy we read; `None` when the
/// controller is not mounted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct V1Dirs {
    pub memory: Option<PathBuf>,
    pub cpu: Option<PathBuf>,
    pub cpuacct: Option<PathBuf>,
    pub pids: Option<PathBuf>,
}

impl V1Dirs {
    /// The process's directory in each hierarchy ([`CgroupPaths`], as the OOM
    /// watcher finds its memory cgroup).
    pub fn locate(paths: &CgroupPaths) -> Self {
        Self {
            memory: paths.v1_dir("memory"),
            cpu: paths.v1_dir("cpu"),
            cpuacct: paths.v1_dir("cpuacct"),
            pids: paths.v1_dir("pids"),
        }
    }
}

/// `cpuacct.stat` counts in USER_HZ ticks, which is 100 on every architecture
/// (times(2)); containerd converts with the same constant.
const USER_HZ: u64 = 100;
const NANOS_PER_TICK: u64 = 1_000_000_000 / USER_HZ;

const MEMORY_STAT_FIELDS: [(&str, Setter<MemoryStat>); 32] = [
    ("cache", MemoryStat::set_cache),
    ("rss", MemoryStat::set_rss),
    ("rss_huge", MemoryStat::set_rss_huge),
    ("mapped_file", MemoryStat::set_mapped_file),
    ("dirty", MemoryStat::set_dirty),
    ("writeback", MemoryStat::set_writeback),
    ("pgpgin", MemoryStat::set_pg_pg_in),
    ("pgpgout", MemoryStat::set_pg_pg_out),
    ("pgfault", MemoryStat::set_pg_fault),
    ("pgmajfault", MemoryStat::set_pg_maj_fault),
    ("inactive_anon", MemoryStat::set_inactive_anon),
    ("active_anon", MemoryStat::set_active_anon),
    ("inactive_file", MemoryStat::set_inactive_file),
    ("active_file", MemoryStat::set_active_file),
    ("unevictable", MemoryStat::set_unevictable),
    (
        "hierarchical_memory_limit",
        MemoryStat::set_hierarchical_memory_limit,
    ),
    (
        "hierarchical_memsw_limit",
        MemoryStat::set_hierarchical_swap_limit,
    ),
    ("total_cache", MemoryStat::set_total_cache),
    ("total_rss", MemoryStat::set_total_rss),
    ("total_rss_huge", MemoryStat::set_total_rss_huge),
    ("total_mapped_file", MemoryStat::set_total_mapped_file),
    ("total_dirty", MemoryStat::set_total_dirty),
    ("total_writeback", MemoryStat::set_total_writeback),
    ("total_pgpgin", MemoryStat::set_total_pg_pg_in),
    ("total_pgpgout", MemoryStat::set_total_pg_pg_out),
    ("total_pgfault", MemoryStat::set_total_pg_fault),
    ("total_pgmajfault", MemoryStat::set_total_pg_maj_fault),
    ("total_inactive_anon", MemoryStat::set_total_inactive_anon),
    ("total_active_anon", MemoryStat::set_total_active_anon),
    ("total_inactive_file", MemoryStat::set_total_inactive_file),
    ("total_active_file", MemoryStat::set_total_active_file),
    ("total_unevictable", MemoryStat::set_total_unevictable),
];

const OOM_CONTROL_FIELDS: [(&str, Setter<MemoryOomControl>); 3] = [
    ("oom_kill_disable", MemoryOomControl::set_oom_kill_disable),
    ("under_oom", MemoryOomControl::set_under_oom),
    ("oom_kill", MemoryOomControl::set_oom_kill),
];

const THROTTLE_FIELDS: [(&str, Setter<Throttle>); 3] = [
    ("nr_periods", Throttle::set_periods),
    ("nr_throttled", Throttle::set_throttled_periods),
    ("throttled_time", Throttle::set_throttled_time),
];

/// Reads the container's v1 cgroup directories. The memory directory must hold
/// `memory.usage_in_bytes` (its absence means the cgroup is gone); every other file
/// may be missing (e.g. `memory.memsw.*` without swap accounting), leaving its field
/// or section unset.
pub fn metrics(dirs: &V1Dirs) -> Result<Metrics, CgroupFileError> {
    let mut m = Metrics::new();
    if let Some(dir) = &dirs.memory {
        m.set_memory(memory(dir)?);
        if let Some(oom) = cgroupfs::flat_keyed(dir, "memory.oom_control")? {
            let mut o = MemoryOomControl::new();
            fill(&mut o, &oom, &OOM_CONTROL_FIELDS);
            m.set_memory_oom_control(o);
        }
    }
    if let Some(cpu) = cpu(dirs)? {
        m.set_cpu(cpu);
    }
    if let Some(dir) = &dirs.pids {
        // The root of the pids hierarchy has neither file.
        if let Some(current) = cgroupfs::single(dir, "pids.current")? {
            let mut p = PidsStat::new();
            p.set_current(current);
            p.set_limit(cgroupfs::limit(dir, "pids.max", 0)?.unwrap_or(0));
            m.set_pids(p);
        }
    }
    Ok(m)
}

fn memory(dir: &Path) -> Result<MemoryStat, CgroupFileError> {
    let mut mem = MemoryStat::new();
    if let Some(stat) = cgroupfs::flat_keyed(dir, "memory.stat")? {
        fill(&mut mem, &stat, &MEMORY_STAT_FIELDS);
    }
    let usage = cgroupfs::read_required(dir, "memory.usage_in_bytes")?;
    let mut entry = memory_entry(dir, "memory")?;
    entry.set_usage(cgroupfs::parse_single(
        &dir.join("memory.usage_in_bytes"),
        &usage,
    )?);
    mem.set_usage(entry);
    // memsw counts memory and swap together: containerd reports it as `swap`.
    mem.set_swap(memory_entry(dir, "memory.memsw")?);
    mem.set_kernel(memory_entry(dir, "memory.kmem")?);
    mem.set_kernel_tcp(memory_entry(dir, "memory.kmem.tcp")?);
    Ok(mem)
}

/// `<prefix>.{usage_in_bytes,limit_in_bytes,max_usage_in_bytes,failcnt}`.
fn memory_entry(dir: &Path, prefix: &str) -> Result<MemoryEntry, CgroupFileError> {
    let mut e = MemoryEntry::new();
    let read = |suffix: &str| cgroupfs::single(dir, &format!("{prefix}.{suffix}"));
    e.set_usage(read("usage_in_bytes")?.unwrap_or(0));
    e.set_limit(read("limit_in_bytes")?.unwrap_or(0));
    e.set_max(read("max_usage_in_bytes")?.unwrap_or(0));
    e.set_failcnt(read("failcnt")?.unwrap_or(0));
    Ok(e)
}

fn cpu(dirs: &V1Dirs) -> Result<Option<CPUStat>, CgroupFileError> {
    let mut usage = None;
    if let Some(dir) = &dirs.cpuacct {
        let mut u = CPUUsage::new();
        if let Some(total) = cgroupfs::single(dir, "cpuacct.usage")? {
            u.set_total(total);
        }
        if let Some(per_cpu) = cgroupfs::read_optional(dir, "cpuacct.usage_percpu")? {
            let path = dir.join("cpuacct.usage_percpu");
            u.per_cpu = per_cpu
                .split_whitespace()
                .map(|v| cgroupfs::parse_single(&path, v))
                .collect::<Result<_, _>>()?;
        }
        if let Some(stat) = cgroupfs::flat_keyed(dir, "cpuacct.stat")? {
            let ns = |k: &str| stat.get(k).map_or(0, |t| t.saturating_mul(NANOS_PER_TICK));
            u.set_user(ns("user"));
            u.set_kernel(ns("system"));
        }
        usage = Some(u);
    }
    let mut throttle = None;
    if let Some(dir) = &dirs.cpu {
        if let Some(stat) = cgroupfs::flat_keyed(dir, "cpu.stat")? {
            let mut t = Throttle::new();
            fill(&mut t, &stat, &THROTTLE_FIELDS);
            throttle = Some(t);
        }
    }
    if usage.is_none() && throttle.is_none() {
        return Ok(None);
    }
    let mut cpu = CPUStat::new();
    if let Some(u) = usage {
        cpu.set_usage(u);
    }
    if let Some(t) = throttle {
        cpu.set_throttling(t);
    }
    Ok(Some(cpu))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu
34 30 0:30 / /sys/fs/cgroup/cpuacct rw,nosuid - cgroup cgroup rw,cpuacct
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:15 - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids";

    #[test]
    fn locates_each_hierarchy() {
        let cg = "12:hugetlb:/\n6:pids:/s/c1\n5:memory:/s/c1\n4:cpuacct:/s/c1\n3:cpu:/s/c1\n0::/\n";
        let d = V1Dirs::locate(&CgroupPaths::parse(cg, MOUNTINFO));
        assert_eq!(d.memory, Some("/sys/fs/cgroup/memory/s/c1".into()));
        assert_eq!(d.cpu, Some("/sys/fs/cgroup/cpu/s/c1".into()));
        assert_eq!(d.cpuacct, Some("/sys/fs/cgroup/cpuacct/s/c1".into()));
        assert_eq!(d.pids, Some("/sys/fs/cgroup/pids/s/c1".into()));

        // Co-mounted cpu,cpuacct (the common layout).
        let mi = "36 30 0:32 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct";
        let d = V1Dirs::locate(&CgroupPaths::parse("3:cpu,cpuacct:/s/c1\n", mi));
        assert_eq!(d.cpu, Some("/sys/fs/cgroup/cpu,cpuacct/s/c1".into()));
        assert_eq!(d.cpuacct, d.cpu);
        assert_eq!((d.memory, d.pids), (None, None));
    }

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        dir
    }

    // memory.stat as a 6.x kernel prints it, each mapped value numbered.
    const MEMORY_STAT: &str = "\
cache 1
rss 2
rss_huge 3
shmem 900
mapped_file 4
dirty 5
writeback 6
workingset_refault_anon 0
workingset_refault_file 18418
swap 0
swapcached 0
pgpgin 7
pgpgout 8
pgfault 9
pgmajfault 10
inactive_anon 11
active_anon 12
inactive_file 13
active_file 14
unevictable 15
hierarchical_memory_limit 16
hierarchical_memsw_limit 17
total_cache 18
total_rss 19
total_rss_huge 20
total_shmem 901
total_mapped_file 21
total_dirty 22
total_writeback 23
total_workingset_refault_anon 0
total_swap 0
total_pgpgin 24
total_pgpgout 25
total_pgfault 26
total_pgmajfault 27
total_inactive_anon 28
total_active_anon 29
total_inactive_file 30
total_active_file 31
total_unevictable 32
";

    struct Fake {
        memory: tempfile::TempDir,
        cpu: tempfile::TempDir,
        cpuacct: tempfile::TempDir,
        pids: tempfile::TempDir,
    }

    impl Fake {
        fn full() -> Self {
            Self {
                memory: dir_with(&[
                    ("memory.stat", MEMORY_STAT),
                    ("memory.usage_in_bytes", "1000\n"),
                    ("memory.limit_in_bytes", "9223372036854771712\n"),
                    ("memory.max_usage_in_bytes", "2000\n"),
                    ("memory.failcnt", "3\n"),
                    ("memory.memsw.usage_in_bytes", "1100\n"),
                    ("memory.memsw.limit_in_bytes", "4000\n"),
                    ("memory.memsw.max_usage_in_bytes", "2100\n"),
                    ("memory.memsw.failcnt", "4\n"),
                    ("memory.kmem.usage_in_bytes", "100\n"),
                    ("memory.kmem.limit_in_bytes", "5000\n"),
                    ("memory.kmem.max_usage_in_bytes", "200\n"),
                    ("memory.kmem.failcnt", "5\n"),
                    ("memory.kmem.tcp.usage_in_bytes", "10\n"),
                    ("memory.kmem.tcp.limit_in_bytes", "6000\n"),
                    ("memory.kmem.tcp.max_usage_in_bytes", "20\n"),
                    ("memory.kmem.tcp.failcnt", "6\n"),
                    (
                        "memory.oom_control",
                        "oom_kill_disable 1\nunder_oom 1\noom_kill 7\n",
                    ),
                ]),
                cpu: dir_with(&[(
                    "cpu.stat",
                    "nr_periods 40\nnr_throttled 3\nthrottled_time 9876\nnr_bursts 0\nburst_time 0\n",
                )]),
                cpuacct: dir_with(&[
                    ("cpuacct.usage", "7947535722013\n"),
                    ("cpuacct.usage_percpu", "3798551391286 4148985896364 \n"),
                    ("cpuacct.stat", "user 631824\nsystem 162929\n"),
                ]),
                pids: dir_with(&[("pids.current", "3\n"), ("pids.max", "max\n")]),
            }
        }

        fn dirs(&self) -> V1Dirs {
            V1Dirs {
                memory: Some(self.memory.path().to_owned()),
                cpu: Some(self.cpu.path().to_owned()),
                cpuacct: Some(self.cpuacct.path().to_owned()),
                pids: Some(self.pids.path().to_owned()),
            }
        }
    }

    fn entry(e: &MemoryEntry) -> (u64, u64, u64, u64) {
        (e.usage, e.limit, e.max, e.failcnt)
    }

    #[test]
    fn full_cgroup_fills_every_field() {
        let f = Fake::full();
        let m = metrics(&f.dirs()).unwrap();

        let mem = m.memory.as_ref().unwrap();
        let stat = [
            mem.cache,
            mem.rss,
            mem.rss_huge,
            mem.mapped_file,
            mem.dirty,
            mem.writeback,
            mem.pg_pg_in,
            mem.pg_pg_out,
            mem.pg_fault,
            mem.pg_maj_fault,
            mem.inactive_anon,
            mem.active_anon,
            mem.inactive_file,
            mem.active_file,
            mem.unevictable,
            mem.hierarchical_memory_limit,
            mem.hierarchical_swap_limit,
            mem.total_cache,
            mem.total_rss,
            mem.total_rss_huge,
            mem.total_mapped_file,
            mem.total_dirty,
            mem.total_writeback,
            mem.total_pg_pg_in,
            mem.total_pg_pg_out,
            mem.total_pg_fault,
            mem.total_pg_maj_fault,
            mem.total_inactive_anon,
            mem.total_active_anon,
            mem.total_inactive_file,
            mem.total_active_file,
            mem.total_unevictable,
        ];
        assert_eq!(stat.to_vec(), (1..=32).collect::<Vec<u64>>());
        assert_eq!(entry(&mem.usage), (1000, 9223372036854771712, 2000, 3));
        assert_eq!(entry(&mem.swap), (1100, 4000, 2100, 4));
        assert_eq!(entry(&mem.kernel), (100, 5000, 200, 5));
        assert_eq!(entry(&mem.kernel_tcp), (10, 6000, 20, 6));

        let oom = m.memory_oom_control.as_ref().unwrap();
        assert_eq!(
            (oom.oom_kill_disable, oom.under_oom, oom.oom_kill),
            (1, 1, 7)
        );

        let usage = &m.cpu.usage;
        assert_eq!(usage.total, 7947535722013);
        assert_eq!(usage.per_cpu, [3798551391286, 4148985896364]);
        assert_eq!(
            (usage.user, usage.kernel),
            (631824 * 10_000_000, 162929 * 10_000_000)
        );
        let t = &m.cpu.throttling;
        assert_eq!(
            (t.periods, t.throttled_periods, t.throttled_time),
            (40, 3, 9876)
        );

        let pids = m.pids.as_ref().unwrap();
        assert_eq!((pids.current, pids.limit), (3, 0));
    }

    #[test]
    fn missing_optional_files_are_tolerated() {
        // No swap accounting, no kmem files, no cpu/pids hierarchies mounted.
        let memory = dir_with(&[("memory.usage_in_bytes", "5\n")]);
        let dirs = V1Dirs {
            memory: Some(memory.path().to_owned()),
            ..V1Dirs::default()
        };
        let m = metrics(&dirs).unwrap();
        assert_eq!(entry(&m.memory.usage), (5, 0, 0, 0));
        assert_eq!(entry(&m.memory.swap), (0, 0, 0, 0));
        assert!(m.cpu.is_none());
        assert!(m.pids.is_none());
        assert!(m.memory_oom_control.is_none());

        // The pids hierarchy's root has no pids.current.
        let f = Fake::full();
        std::fs::remove_file(f.pids.path().join("pids.current")).unwrap();
        assert!(metrics(&f.dirs()).unwrap().pids.is_none());
    }

    #[test]
    fn gone_memory_cgroup_is_an_error() {
        let f = Fake::full();
        std::fs::remove_file(f.memory.path().join("memory.usage_in_bytes")).unwrap();
        assert!(matches!(
            metrics(&f.dirs()),
            Err(CgroupFileError::Read { .. })
        ));
    }

    #[test]
    fn malformed_file_is_an_error() {
        let cases = [
            ("memory.usage_in_bytes", "1k\n"),
            ("memory.limit_in_bytes", "-1\n"),
            ("memory.stat", "cache\n"),
            ("memory.oom_control", "oom_kill x\n"),
            ("cpuacct.usage", "\n"),
            ("cpuacct.usage_percpu", "1 two 3\n"),
            ("cpuacct.stat", "user 1 2\n"),
            ("pids.max", "unlimited\n"),
        ];
        for (name, content) in cases {
            let f = Fake::full();
            let dir = match name.split('.').next() {
                Some("memory") => f.memory.path(),
                Some("cpuacct") => f.cpuacct.path(),
                _ => f.pids.path(),
            };
            std::fs::write(dir.join(name), content).unwrap();
            let err = metrics(&f.dirs()).unwrap_err();
            assert!(
                matches!(
                    err,
                    CgroupFileError::ParseValue { .. } | CgroupFileError::MalformedLine { .. }
                ),
                "{name} {content:?}: {err:?}"
            );
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
