//! What an OCI `linux.seccomp` section means for one syscall, computed straight from
//! the spec by the semantics Stockade documents (runtime/src/seccomp/mod.rs) — no
//! grouping, no BPF: every entry that names the syscall natively and whose argument
//! conditions all hold is a candidate, and the most restrictive candidate wins;
//! without one, the default (ENOSYS above the highest native number the filter names,
//! or above the table when it names none, under a denying default and only when
//! `architectures` lists the native one: runc's stub).
//! Foreign ABIs (another audit arch, x32 numbers) are killed.

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

#[cfg(target_arch = "x86_64")]
pub const NATIVE_AUDIT_ARCH: u32 = 62 | 0x8000_0000 | 0x4000_0000;
#[cfg(target_arch = "aarch64")]
pub const NATIVE_AUDIT_ARCH: u32 = 183 | 0x8000_0000 | 0x4000_0000;
/// AUDIT_ARCH_I386: what `int $0x80` on x86_64 reports.
pub const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The highest syscall number the runtime's table names natively.
pub fn max_native_number() -> u32 {
    static MAX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        (0..4096u32)
            .rev()
            .find(|nr| stockade::seccomp::syscall_name(i64::from(*nr)).is_some())
            .expect("the table names some syscall")
    })
}

/// Numbers above this get ENOSYS under a denying default: the highest native number
/// the spec names (names looked up by scanning the table's number -> name function,
/// not through the translator's own lookup), the table's highest when it names none.
pub fn enosys_threshold(spec: &LinuxSeccomp) -> Option<u32> {
    // runc builds its stub per listed architecture: none unless the native is listed.
    #[cfg(target_arch = "x86_64")]
    let native = Arch::ScmpArchX86_64;
    #[cfg(target_arch = "aarch64")]
    let native = Arch::ScmpArchAarch64;
    let listed = spec
        .architectures()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|a| *a == native || *a == Arch::ScmpArchNative);
    if !listed {
        return None;
    }
    static BY_NAME: std::sync::OnceLock<std::collections::HashMap<String, u32>> =
        std::sync::OnceLock::new();
    let by_name = BY_NAME.get_or_init(|| {
        (0..4096u32)
            .filter_map(|nr| {
                stockade::seccomp::syscall_name(i64::from(nr)).map(|n| (n.to_string(), nr))
            })
            .collect()
    });
    spec.syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .flat_map(|entry| entry.names())
        .filter_map(|name| by_name.get(name).copied())
        .max()
        .or_else(|| Some(max_native_number()))
}

/// Return value of `action` with errno/trace data `data` (EPERM when absent, as the
/// OCI spec says for entries; `defaultErrnoRet` for the default).
fn ret(action: LinuxSeccompAction, data: Option<u32>) -> u32 {
    let data = data.unwrap_or(libc::EPERM as u32);
    match action {
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | data,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | data,
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
        // The runtime refuses it as the default, so only rules get here.
        LinuxSeccompAction::ScmpActNotify => RET_USER_NOTIF,
    }
}

/// Kernel precedence of a return value, most restrictive first (seccomp(2)); within
/// ERRNO and TRACE the lower data value first, as the runtime documents.
pub fn precedence(ret: u32) -> (u8, u32) {
    let data = ret & 0xffff;
    match ret & 0xffff_0000 {
        RET_KILL_PROCESS => (0, 0),
        RET_KILL_THREAD => (1, 0),
        RET_TRAP => (2, 0),
        RET_ERRNO => (3, data),
        RET_USER_NOTIF => (4, 0),
        RET_TRACE => (5, data),
        RET_LOG => (6, 0),
        RET_ALLOW => (7, 0),
        other => panic!("unknown seccomp return {other:#x}"),
    }
}

/// Whether a return value denies the call.
pub fn denies(ret: u32) -> bool {
    precedence(ret).0 <= 3
}

/// What `spec` says a native call of `nr` with `args` must return.
pub fn expected(spec: &LinuxSeccomp, nr: u32, arch: u32, args: &[u64; 6]) -> u32 {
    if arch != NATIVE_AUDIT_ARCH {
        return RET_KILL_PROCESS;
    }
    if cfg!(target_arch = "x86_64") && nr & X32_SYSCALL_BIT != 0 && nr != u32::MAX {
        return RET_KILL_PROCESS;
    }
    let mut best: Option<u32> = None;
    for entry in spec.syscalls().as_deref().unwrap_or_default() {
        let names_nr = entry
            .names()
            .iter()
            .any(|n| stockade::seccomp::syscall_number(n).is_some_and(|x| i64::from(nr) == x));
        if !names_nr {
            continue;
        }
        let all_hold = entry.args().as_deref().unwrap_or_default().iter().all(|a| {
            let v = args[a.index()];
            match a.op() {
                LinuxSeccompOperator::ScmpCmpNe => v != a.value(),
                LinuxSeccompOperator::ScmpCmpLt => v < a.value(),
                LinuxSeccompOperator::ScmpCmpLe => v <= a.value(),
                LinuxSeccompOperator::ScmpCmpEq => v == a.value(),
                LinuxSeccompOperator::ScmpCmpGe => v >= a.value(),
                LinuxSeccompOperator::ScmpCmpGt => v > a.value(),
                LinuxSeccompOperator::ScmpCmpMaskedEq => {
                    v & a.value() == a.value_two().unwrap_or(0)
                }
            }
        });
        if all_hold {
            let r = ret(entry.action(), entry.errno_ret());
            if best.is_none_or(|b| precedence(r) < precedence(b)) {
                best = Some(r);
            }
        }
    }
    if let Some(r) = best {
        return r;
    }
    let default = ret(spec.default_action(), spec.default_errno_ret());
    if denies(default) && enosys_threshold(spec).is_some_and(|t| nr > t) {
        return RET_ERRNO | libc::ENOSYS as u32;
    }
    default
}

/// Argument vectors worth probing for `spec`: all zero, and for every entry with
/// conditions one vector meeting them and each condition's boundaries (value - 1,
/// value, value + 1, and for masked compares the wanted bits with and without the
/// rest of the mask).
pub fn probe_args(spec: &LinuxSeccomp, nr: u32) -> Vec<[u64; 6]> {
    let mut out = vec![[0u64; 6], [u64::MAX; 6]];
    for entry in spec.syscalls().as_deref().unwrap_or_default() {
        if !entry
            .names()
            .iter()
            .any(|n| stockade::seccomp::syscall_number(n).is_some_and(|x| i64::from(nr) == x))
        {
            continue;
        }
        let conds = entry.args().as_deref().unwrap_or_default();
        let mut base = [0u64; 6];
        for a in conds {
            let Some(slot) = base.get_mut(a.index()) else {
                continue;
            };
            *slot = match a.op() {
                LinuxSeccompOperator::ScmpCmpNe => a.value().wrapping_add(1),
                LinuxSeccompOperator::ScmpCmpLt => a.value().wrapping_sub(1),
                LinuxSeccompOperator::ScmpCmpLe
                | LinuxSeccompOperator::ScmpCmpEq
                | LinuxSeccompOperator::ScmpCmpGe => a.value(),
                LinuxSeccompOperator::ScmpCmpGt => a.value().wrapping_add(1),
                LinuxSeccompOperator::ScmpCmpMaskedEq => a.value_two().unwrap_or(0),
            };
        }
        out.push(base);
        for a in conds {
            if a.index() > 5 {
                continue;
            }
            let mut candidates = vec![
                a.value().wrapping_sub(1),
                a.value(),
                a.value().wrapping_add(1),
                a.value() ^ (1 << 32),
            ];
            if let Some(v2) = a.value_two() {
                candidates.extend([v2, v2 | !a.value(), v2 ^ a.value()]);
            }
            for c in candidates {
                let mut v = base;
                v[a.index()] = c;
                out.push(v);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}
