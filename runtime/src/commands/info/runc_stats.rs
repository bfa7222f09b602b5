//! The `data` of a `stats` event in runc's shape (runc `types/events.go`,
//! `types.Stats`), which go-runc's `Stats` and so containerd's runc shim decode.
//! libcgroups' `Stats` has its own field names and, on cgroup v1, reports
//! cpuacct.stat's user/system in clock ticks; runc reports nanoseconds throughout.
//!
//! `omitempty` in runc's Go tags is mirrored with `skip_serializing_if`, so the
//! JSON matches runc's field for field. Not reported (absent, which Go decodes as
//! zero values): `cpuset`, `intel_rdt`, `network_interfaces`, PSI and memory
//! event counts — libcgroups does not collect them.

use std::collections::BTreeMap;

use libcgroups::stats::{
    BlkioDeviceStat, BlkioStats, CpuStats, HugeTlbStats, MemoryData, MemoryStats, PidStats,
    Stats as CgroupStats,
};
use serde::Serialize;

const NANOS_PER_SEC: u64 = 1_000_000_000;
const NANOS_PER_MICRO: u64 = 1_000;

/// The unit libcgroups read the cpu user/system times in: cgroup v1's
/// cpuacct.stat counts USER_HZ ticks (proc(5)), v2's cpu.stat microseconds. Per-cpu
/// and total usage are already nanoseconds on v1, microseconds (total) on v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuTimeUnit {
    V1 { ticks_per_sec: u64 },
    V2,
}

impl CpuTimeUnit {
    /// cgroup v1 with the kernel's USER_HZ (sysconf(3) `_SC_CLK_TCK`).
    pub fn v1_host() -> Self {
        // SAFETY: sysconf only reads a constant of the C library.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // USER_HZ is 100 on every Linux architecture; sysconf cannot fail for it.
        let ticks_per_sec = u64::try_from(hz).ok().filter(|&h| h > 0).unwrap_or(100);
        Self::V1 { ticks_per_sec }
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// runc `types.Stats`.
#[derive(Debug, Serialize, PartialEq)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// All nanoseconds.
#[derive(Debug, Serialize, PartialEq)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    // runc's tag really is "ioQueueRecursive".
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

impl Stats {
    pub fn from_cgroup(s: &CgroupStats, unit: CpuTimeUnit) -> Self {
        Self {
            cpu: cpu(&s.cpu, unit),
            memory: memory(&s.memory),
            pids: pids(&s.pids),
            blkio: blkio(&s.blkio),
            hugetlb: s
                .hugetlb
                .iter()
                .map(|(size, h)| (size.clone(), hugetlb(h)))
                .collect(),
        }
    }
}

impl CpuTimeUnit {
    /// cpu user/system time (cpuacct.stat ticks on v1, µs on v2) to nanoseconds.
    fn user_system_nanos(self, v: u64) -> u64 {
        match self {
            Self::V1 { ticks_per_sec } => v.saturating_mul(NANOS_PER_SEC) / ticks_per_sec,
            Self::V2 => v.saturating_mul(NANOS_PER_MICRO),
        }
    }

    /// Total and per-cpu usage, throttled time (ns on v1, µs on v2) to nanoseconds.
    fn usage_nanos(self, v: u64) -> u64 {
        match self {
            Self::V1 { .. } => v,
            Self::V2 => v.saturating_mul(NANOS_PER_MICRO),
        }
    }
}

fn cpu(c: &CpuStats, unit: CpuTimeUnit) -> Cpu {
    let u = &c.usage;
    let each = |v: &[u64]| v.iter().map(|&x| unit.usage_nanos(x)).collect();
    Cpu {
        usage: CpuUsage {
            total: unit.usage_nanos(u.usage_total),
            percpu: each(&u.per_core_usage_total),
            percpu_kernel: each(&u.per_core_usage_kernel),
            percpu_user: each(&u.per_core_usage_user),
            kernel: unit.user_system_nanos(u.usage_kernel),
            user: unit.user_system_nanos(u.usage_user),
        },
        throttling: Throttling {
            periods: c.throttling.periods,
            throttled_periods: c.throttling.throttled_periods,
            throttled_time: unit.usage_nanos(c.throttling.throttled_time),
        },
    }
}

fn memory_entry(d: &MemoryData) -> MemoryEntry {
    MemoryEntry {
        limit: d.limit,
        usage: d.usage,
        max: d.max_usage,
        failcnt: d.fail_count,
    }
}

fn memory(m: &MemoryStats) -> Memory {
    Memory {
        cache: m.cache,
        usage: memory_entry(&m.memory),
        swap: memory_entry(&m.memswap),
        kernel: memory_entry(&m.kernel),
        kernel_tcp: memory_entry(&m.kernel_tcp),
        raw: m.stats.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    }
}

fn pids(p: &PidStats) -> Pids {
    Pids {
        current: p.current,
        limit: p.limit,
    }
}

fn blkio_entries(stats: &[BlkioDeviceStat]) -> Vec<BlkioEntry> {
    stats
        .iter()
        .map(|d| BlkioEntry {
            major: d.major,
            minor: d.minor,
            op: d.op_type.clone().unwrap_or_default(),
            value: d.value,
        })
        .collect()
}

fn blkio(b: &BlkioStats) -> Blkio {
    Blkio {
        io_service_bytes_recursive: blkio_entries(&b.service_bytes),
        io_serviced_recursive: blkio_entries(&b.serviced),
        io_queued_recursive: blkio_entries(&b.queued),
        io_service_time_recursive: blkio_entries(&b.service_time),
        io_wait_time_recursive: blkio_entries(&b.wait_time),
        io_merged_recursive: blkio_entries(&b.merged),
        io_time_recursive: blkio_entries(&b.time),
        sectors_recursive: blkio_entries(&b.sectors),
    }
}

fn hugetlb(h: &HugeTlbStats) -> Hugetlb {
    Hugetlb {
        usage: h.usage,
        max: h.max_usage,
        failcnt: h.fail_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcgroups::stats::{CpuThrottling, CpuUsage as CgroupCpuUsage};
    use serde_json::json;

    fn sample() -> CgroupStats {
        let mut s = CgroupStats::default();
        s.cpu.usage = CgroupCpuUsage {
            usage_total: 13_000_000,
            usage_user: 3,
            usage_kernel: 2,
            per_core_usage_total: vec![10_000_000, 3_000_000],
            per_core_usage_user: vec![7, 1],
            per_core_usage_kernel: vec![5, 0],
        };
        s.cpu.throttling = CpuThrottling {
            periods: 4,
            throttled_periods: 1,
            throttled_time: 250,
        };
        s.memory.memory = MemoryData {
            usage: 516_096,
            max_usage: 786_432,
            fail_count: 0,
            limit: 64 << 20,
        };
        s.memory.memswap.limit = u64::MAX;
        s.memory.stats.insert("rss".into(), 135_168);
        s.pids = PidStats {
            current: 1,
            limit: 32,
        };
        s.blkio.service_bytes.push(BlkioDeviceStat {
            major: 8,
            minor: 0,
            op_type: Some("Read".into()),
            value: 4096,
        });
        s.hugetlb.insert(
            "2MB".into(),
            HugeTlbStats {
                usage: 0,
                max_usage: 0,
                fail_count: 0,
            },
        );
        s
    }

    #[test]
    fn v1_stats_map_to_runcs_types_stats() {
        let data = Stats::from_cgroup(&sample(), CpuTimeUnit::V1 { ticks_per_sec: 100 });
        let expected = json!({
            "cpu": {
                "usage": {
                    "total": 13_000_000u64,
                    "percpu": [10_000_000u64, 3_000_000u64],
                    "percpu_kernel": [5, 0],
                    "percpu_user": [7, 1],
                    // cpuacct.stat ticks at USER_HZ=100: 10ms each.
                    "kernel": 20_000_000u64,
                    "user": 30_000_000u64
                },
                "throttling": {"periods": 4, "throttledPeriods": 1, "throttledTime": 250}
            },
            "memory": {
                "usage": {"limit": 67_108_864u64, "usage": 516_096, "max": 786_432, "failcnt": 0},
                "swap": {"limit": u64::MAX, "failcnt": 0},
                "kernel": {"limit": 0, "failcnt": 0},
                "kernelTCP": {"limit": 0, "failcnt": 0},
                "raw": {"rss": 135_168}
            },
            "pids": {"current": 1, "limit": 32},
            "blkio": {
                "ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 4096}]
            },
            "hugetlb": {"2MB": {"failcnt": 0}}
        });
        assert_eq!(serde_json::to_value(&data).unwrap(), expected);
    }

    #[test]
    fn v2_microseconds_become_nanoseconds() {
        let mut s = CgroupStats::default();
        s.cpu.usage.usage_total = 7730;
        s.cpu.usage.usage_user = 4387;
        s.cpu.usage.usage_kernel = 3498;
        s.cpu.throttling.throttled_time = 5000;
        let data = Stats::from_cgroup(&s, CpuTimeUnit::V2);
        assert_eq!(data.cpu.usage.total, 7_730_000);
        assert_eq!(data.cpu.usage.user, 4_387_000);
        assert_eq!(data.cpu.usage.kernel, 3_498_000);
        assert_eq!(data.cpu.throttling.throttled_time, 5_000_000);
    }

    #[test]
    fn empty_stats_keep_runcs_always_present_fields() {
        let data = Stats::from_cgroup(&CgroupStats::default(), CpuTimeUnit::V2);
        let v = serde_json::to_value(&data).unwrap();
        assert_eq!(
            v["cpu"],
            json!({"usage": {"kernel": 0, "user": 0}, "throttling": {}})
        );
        assert_eq!(v["pids"], json!({}));
        assert_eq!(v["blkio"], json!({}));
        assert_eq!(v["hugetlb"], json!({}));
        assert_eq!(v["memory"]["usage"], json!({"limit": 0, "failcnt": 0}));
        assert!(v["memory"].get("raw").is_none() && v["memory"].get("cache").is_none());
    }
}
