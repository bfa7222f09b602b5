//! A cgroup v2 directory's statistics as containerd's `io.containerd.cgroups.v2.Metrics`,
//! with the same file-to-field mapping as containerd's own cgroups v2 manager
//! (time in microseconds, swap apart from memory).
//!
//! Reading is by hand rather than through cgroups-rs 0.5, which turns unreadable or
//! malformed counters into zeros, reads unlimited `memory.swap.max` as 0 and does not
//! expose `memory.events` or `io.stat`.

use std::path::Path;

use containerd_shim::protos::cgroups_v2::metrics::{
    CPUStat, IOEntry, IOStat, MemoryEvents, MemoryStat, Metrics, PidsStat,
};

use super::cgroupfs::{self, fill, CgroupFileError, Setter};

const CPU_FIELDS: [(&str, Setter<CPUStat>); 8] = [
    ("usage_usec", CPUStat::set_usage_usec),
    ("user_usec", CPUStat::set_user_usec),
    ("system_usec", CPUStat::set_system_usec),
    ("nr_periods", CPUStat::set_nr_periods),
    ("nr_throttled", CPUStat::set_nr_throttled),
    ("throttled_usec", CPUStat::set_throttled_usec),
    ("nr_bursts", CPUStat::set_nr_bursts),
    ("burst_usec", CPUStat::set_burst_usec),
];

const MEMORY_STAT_FIELDS: [(&str, Setter<MemoryStat>); 31] = [
    ("anon", MemoryStat::set_anon),
    ("file", MemoryStat::set_file),
    ("kernel_stack", MemoryStat::set_kernel_stack),
    ("slab", MemoryStat::set_slab),
    ("sock", MemoryStat::set_sock),
    ("shmem", MemoryStat::set_shmem),
    ("file_mapped", MemoryStat::set_file_mapped),
    ("file_dirty", MemoryStat::set_file_dirty),
    ("file_writeback", MemoryStat::set_file_writeback),
    ("anon_thp", MemoryStat::set_anon_thp),
    ("inactive_anon", MemoryStat::set_inactive_anon),
    ("active_anon", MemoryStat::set_active_anon),
    ("inactive_file", MemoryStat::set_inactive_file),
    ("active_file", MemoryStat::set_active_file),
    ("unevictable", MemoryStat::set_unevictable),
    ("slab_reclaimable", MemoryStat::set_slab_reclaimable),
    ("slab_unreclaimable", MemoryStat::set_slab_unreclaimable),
    ("pgfault", MemoryStat::set_pgfault),
    ("pgmajfault", MemoryStat::set_pgmajfault),
    ("workingset_refault", MemoryStat::set_workingset_refault),
    ("workingset_activate", MemoryStat::set_workingset_activate),
    (
        "workingset_nodereclaim",
        MemoryStat::set_workingset_nodereclaim,
    ),
    ("pgrefill", MemoryStat::set_pgrefill),
    ("pgscan", MemoryStat::set_pgscan),
    ("pgsteal", MemoryStat::set_pgsteal),
    ("pgactivate", MemoryStat::set_pgactivate),
    ("pgdeactivate", MemoryStat::set_pgdeactivate),
    ("pglazyfree", MemoryStat::set_pglazyfree),
    ("pglazyfreed", MemoryStat::set_pglazyfreed),
    ("thp_fault_alloc", MemoryStat::set_thp_fault_alloc),
    ("thp_collapse_alloc", MemoryStat::set_thp_collapse_alloc),
];

const MEMORY_EVENT_FIELDS: [(&str, Setter<MemoryEvents>); 6] = [
    ("low", MemoryEvents::set_low),
    ("high", MemoryEvents::set_high),
    ("max", MemoryEvents::set_max),
    ("oom", MemoryEvents::set_oom),
    ("oom_kill", MemoryEvents::set_oom_kill),
    ("oom_group_kill", MemoryEvents::set_oom_group_kill),
];

/// Reads the cgroup v2 directory `dir` (e.g. `/sys/fs/cgroup/k8s/pod1/c1`).
///
/// `cpu.stat` is a core file present in every cgroup, so its absence means the cgroup
/// is gone and is an error. Every controller file may be missing (controller not
/// enabled in the parent's `cgroup.subtree_control`, or an older kernel): its section
/// or field is then left unset.
pub fn metrics(dir: &Path) -> Result<Metrics, CgroupFileError> {
    let mut m = Metrics::new();

    let cpu_stat = cgroupfs::read_required(dir, "cpu.stat")?;
    let cpu_stat = cgroupfs::parse_flat_keyed(&dir.join("cpu.stat"), &cpu_stat)?;
    let mut cpu = CPUStat::new();
    fill(&mut cpu, &cpu_stat, &CPU_FIELDS);
    m.set_cpu(cpu);

    if let Some(memory) = memory(dir)? {
        m.set_memory(memory);
    }
    if let Some(events) = cgroupfs::flat_keyed(dir, "memory.events")? {
        let mut e = MemoryEvents::new();
        fill(&mut e, &events, &MEMORY_EVENT_FIELDS);
        m.set_memory_events(e);
    }
    if let Some(current) = cgroupfs::single(dir, "pids.current")? {
        let mut p = PidsStat::new();
        p.set_current(current);
        // No limit is reported as 0, as runc and containerd do.
        p.set_limit(cgroupfs::limit(dir, "pids.max", 0)?.unwrap_or(0));
        m.set_pids(p);
    }
    if let Some(devices) = cgroupfs::nested_keyed(dir, "io.stat")? {
        let mut io = IOStat::new();
        io.usage = devices
            .into_iter()
            .map(|d| {
                let mut e = IOEntry::new();
                e.set_major(d.major);
                e.set_minor(d.minor);
                let get = |k: &str| d.values.get(k).copied().unwrap_or(0);
                e.set_rbytes(get("rbytes"));
                e.set_wbytes(get("wbytes"));
                e.set_rios(get("rios"));
                e.set_wios(get("wios"));
                e
            })
            .collect();
        m.set_io(io);
    }
    Ok(m)
}

/// The memory section, `None` when the memory controller is not enabled.
fn memory(dir: &Path) -> Result<Option<MemoryStat>, CgroupFileError> {
    let Some(usage) = cgroupfs::single(dir, "memory.current")? else {
        return Ok(None);
    };
    let mut mem = MemoryStat::new();
    if let Some(stat) = cgroupfs::flat_keyed(dir, "memory.stat")? {
        fill(&mut mem, &stat, &MEMORY_STAT_FIELDS);
    }
    mem.set_usage(usage);
    // An unlimited limit is reported as u64::MAX, as containerd does.
    mem.set_usage_limit(cgroupfs::limit(dir, "memory.max", u64::MAX)?.unwrap_or(u64::MAX));
    // memory.peak and memory.swap.peak exist since Linux 5.19 and 6.5.
    if let Some(peak) = cgroupfs::single(dir, "memory.peak")? {
        mem.set_max_usage(peak);
    }
    if let Some(swap) = cgroupfs::single(dir, "memory.swap.current")? {
        mem.set_swap_usage(swap);
    }
    if let Some(swap_limit) = cgroupfs::limit(dir, "memory.swap.max", u64::MAX)? {
        mem.set_swap_limit(swap_limit);
    }
    if let Some(peak) = cgroupfs::single(dir, "memory.swap.peak")? {
        mem.set_swap_max_usage(peak);
    }
    Ok(Some(mem))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Formats as a 6.x kernel prints them.
    const CPU_STAT: &str = "\
usage_usec 1234567
user_usec 1000000
system_usec 234567
core_sched.force_idle_usec 0
nr_periods 40
nr_throttled 3
throttled_usec 9876
nr_bursts 2
burst_usec 55
";

    const MEMORY_STAT: &str = "\
anon 1
file 2
kernel 999
kernel_stack 3
pagetables 998
sec_pagetables 0
percpu 997
sock 4
vmalloc 0
shmem 5
zswap 0
zswapped 0
file_mapped 6
file_dirty 7
file_writeback 8
swapcached 0
anon_thp 9
file_thp 0
shmem_thp 0
inactive_anon 10
active_anon 11
inactive_file 12
active_file 13
unevictable 14
slab_reclaimable 15
slab_unreclaimable 16
slab 17
workingset_refault_anon 0
workingset_refault_file 0
workingset_activate_anon 0
workingset_activate_file 0
workingset_restore_anon 0
workingset_restore_file 0
workingset_nodereclaim 22
pgdemote_kswapd 0
pgscan 24
pgsteal 25
pgscan_kswapd 0
pgfault 18
pgmajfault 19
pgrefill 23
pgactivate 26
pgdeactivate 27
pglazyfree 28
pglazyfreed 29
zswpin 0
thp_fault_alloc 30
thp_collapse_alloc 31
";

    const MEMORY_EVENTS: &str = "low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\noom_group_kill 6\n";

    const IO_STAT: &str = "\
8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0
253:1 rbytes=10 wbytes=20 rios=30 wios=40 dbytes=50 dios=60
";

    fn cgroup(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        dir
    }

    fn full() -> tempfile::TempDir {
        cgroup(&[
            ("cpu.stat", CPU_STAT),
            ("memory.current", "8192\n"),
            ("memory.max", "268435456\n"),
            ("memory.peak", "16384\n"),
            ("memory.swap.current", "512\n"),
            ("memory.swap.max", "max\n"),
            ("memory.swap.peak", "1024\n"),
            ("memory.stat", MEMORY_STAT),
            ("memory.events", MEMORY_EVENTS),
            ("pids.current", "3\n"),
            ("pids.max", "100\n"),
            ("io.stat", IO_STAT),
        ])
    }

    #[test]
    fn full_cgroup_fills_every_field() {
        let d = full();
        let m = metrics(d.path()).unwrap();

        let cpu = m.cpu.as_ref().unwrap();
        assert_eq!(
            (cpu.usage_usec, cpu.user_usec, cpu.system_usec),
            (1234567, 1000000, 234567)
        );
        assert_eq!(
            (cpu.nr_periods, cpu.nr_throttled, cpu.throttled_usec),
            (40, 3, 9876)
        );
        assert_eq!((cpu.nr_bursts, cpu.burst_usec), (2, 55));

        let mem = m.memory.as_ref().unwrap();
        // Every memory.stat key lands in its own field: the fake file numbers them.
        let stat_fields = [
            mem.anon,
            mem.file,
            mem.kernel_stack,
            mem.sock,
            mem.shmem,
            mem.file_mapped,
            mem.file_dirty,
            mem.file_writeback,
            mem.anon_thp,
            mem.inactive_anon,
            mem.active_anon,
            mem.inactive_file,
            mem.active_file,
            mem.unevictable,
            mem.slab_reclaimable,
            mem.slab_unreclaimable,
            mem.slab,
            mem.pgfault,
            mem.pgmajfault,
            mem.workingset_nodereclaim,
            mem.pgrefill,
            mem.pgscan,
            mem.pgsteal,
            mem.pgactivate,
            mem.pgdeactivate,
            mem.pglazyfree,
            mem.pglazyfreed,
            mem.thp_fault_alloc,
            mem.thp_collapse_alloc,
        ];
        let expected: Vec<u64> = (1..=19).chain(22..=31).collect();
        assert_eq!(stat_fields.to_vec(), expected);
        // The 6.x kernel splits workingset_refault/activate by anon/file; the
        // combined keys containerd's type has are absent and stay 0.
        assert_eq!((mem.workingset_refault, mem.workingset_activate), (0, 0));
        assert_eq!(
            (mem.usage, mem.usage_limit, mem.max_usage),
            (8192, 268435456, 16384)
        );
        assert_eq!(
            (mem.swap_usage, mem.swap_limit, mem.swap_max_usage),
            (512, u64::MAX, 1024)
        );

        let ev = m.memory_events.as_ref().unwrap();
        assert_eq!(
            (
                ev.low,
                ev.high,
                ev.max,
                ev.oom,
                ev.oom_kill,
                ev.oom_group_kill
            ),
            (1, 2, 3, 4, 5, 6)
        );

        let pids = m.pids.as_ref().unwrap();
        assert_eq!((pids.current, pids.limit), (3, 100));

        let io: Vec<_> =
            m.io.usage
                .iter()
                .map(|e| (e.major, e.minor, e.rbytes, e.wbytes, e.rios, e.wios))
                .collect();
        assert_eq!(io, [(8, 0, 1, 2, 3, 4), (253, 1, 10, 20, 30, 40)]);
    }

    #[test]
    fn workingset_keys_of_older_kernels() {
        let d = cgroup(&[
            ("cpu.stat", "usage_usec 1\n"),
            ("memory.current", "1\n"),
            (
                "memory.stat",
                "workingset_refault 20\nworkingset_activate 21\n",
            ),
        ]);
        let m = metrics(d.path()).unwrap();
        let mem = m.memory.as_ref().unwrap();
        assert_eq!((mem.workingset_refault, mem.workingset_activate), (20, 21));
    }

    #[test]
    fn unlimited_limits() {
        let d = cgroup(&[
            ("cpu.stat", CPU_STAT),
            ("memory.current", "1\n"),
            ("memory.max", "max\n"),
            ("pids.current", "1\n"),
            ("pids.max", "max\n"),
        ]);
        let m = metrics(d.path()).unwrap();
        assert_eq!(m.memory.usage_limit, u64::MAX);
        assert_eq!(m.pids.limit, 0);
    }

    #[test]
    fn missing_controller_files_are_tolerated() {
        // Only the core cpu.stat: no memory, pids or io controller enabled.
        let d = cgroup(&[("cpu.stat", "usage_usec 5\nuser_usec 3\nsystem_usec 2\n")]);
        let m = metrics(d.path()).unwrap();
        assert_eq!(m.cpu.usage_usec, 5);
        assert!(m.memory.is_none());
        assert!(m.memory_events.is_none());
        assert!(m.pids.is_none());
        assert!(m.io.is_none());

        // Memory enabled on a kernel without memory.peak, swap files or memory.max
        // (the root cgroup has none).
        let d = cgroup(&[("cpu.stat", CPU_STAT), ("memory.current", "7\n")]);
        let mem = metrics(d.path()).unwrap().memory.unwrap();
        assert_eq!(
            (mem.usage, mem.usage_limit, mem.max_usage),
            (7, u64::MAX, 0)
        );
        assert_eq!((mem.swap_usage, mem.swap_limit), (0, 0));
    }

    #[test]
    fn gone_cgroup_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let err = metrics(&d.path().join("removed")).unwrap_err();
        assert!(
            matches!(&err, CgroupFileError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
    }

    #[test]
    fn malformed_file_is_an_error() {
        let cases = [
            ("cpu.stat", "usage_usec many\n"),
            ("memory.current", "\n"),
            ("memory.max", "1G\n"),
            ("memory.stat", "anon\n"),
            ("memory.events", "oom_kill -1\n"),
            ("pids.current", "3 4\n"),
            ("pids.max", "unlimited\n"),
            ("io.stat", "8:0 rbytes=1 wbytes=two\n"),
            ("io.stat", "8-0 rbytes=1\n"),
        ];
        for (name, content) in cases {
            let d = full();
            std::fs::write(d.path().join(name), content).unwrap();
            let err = metrics(d.path()).unwrap_err();
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
