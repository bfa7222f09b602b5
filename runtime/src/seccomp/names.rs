//! Syscall name lookups in the generated tables.

use super::syscall_table::{ALL_ARCHES, NATIVE};

/// What a syscall name from a spec means on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resolved {
    /// A native syscall with this number.
    Native(i64),
    /// A real syscall, but only on other architectures: not invocable natively.
    ForeignOnly,
    /// Not a syscall on any architecture we know of.
    Unknown,
}

/// The native syscall number of `name`, if it is a syscall of this architecture.
pub fn syscall_number(name: &str) -> Option<i64> {
    NATIVE
        .binary_search_by(|(candidate, _)| (*candidate).cmp(name))
        .ok()
        .map(|i| NATIVE[i].1)
}

/// Whether `name` is a Linux syscall on any architecture we have a table for: the
/// check profiles and seccomp data use to catch misspelt names.
pub fn is_known_syscall(name: &str) -> bool {
    syscall_number(name).is_some() || ALL_ARCHES.binary_search(&name).is_ok()
}

/// The native syscall named by number `nr`, if the table has it.
pub fn syscall_name(nr: i64) -> Option<&'static str> {
    NATIVE.iter().find(|(_, n)| *n == nr).map(|(name, _)| *name)
}

/// The known syscall name closest to a misspelt `name`, if one is close.
pub fn closest_syscall(name: &str) -> Option<String> {
    crate::profile::load::closest(
        name,
        NATIVE
            .iter()
            .map(|(n, _)| *n)
            .chain(ALL_ARCHES.iter().copied()),
    )
}

pub(super) fn resolve(name: &str) -> Resolved {
    match syscall_number(name) {
        Some(nr) => Resolved::Native(nr),
        None if ALL_ARCHES.binary_search(&name).is_ok() => Resolved::ForeignOnly,
        None => Resolved::Unknown,
    }
}

/// Highest native syscall number in the table; anything above is newer than we know.
pub(super) fn max_native_number() -> i64 {
    NATIVE.iter().map(|(_, nr)| *nr).max().unwrap_or(0)
}

#[cfg(test)]
pub(super) fn native_names() -> impl Iterator<Item = &'static str> {
    NATIVE.iter().map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_for_binary_search() {
        assert!(NATIVE.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(ALL_ARCHES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn every_native_name_is_in_the_all_arches_set() {
        for (name, _) in NATIVE {
            assert!(ALL_ARCHES.binary_search(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn native_numbers_match_libc() {
        assert_eq!(syscall_number("read"), Some(libc::SYS_read));
        assert_eq!(syscall_number("getcwd"), Some(libc::SYS_getcwd));
        assert_eq!(syscall_number("clone3"), Some(libc::SYS_clone3));
        assert_eq!(syscall_number("personality"), Some(libc::SYS_personality));
        assert_eq!(syscall_number("no_such_call"), None);
    }

    #[test]
    fn names_resolve_native_foreign_or_unknown() {
        assert_eq!(resolve("uname"), Resolved::Native(libc::SYS_uname));
        #[cfg(target_arch = "x86_64")]
        for foreign in [
            "_llseek",
            "chown32",
            "fcntl64",
            "arm_fadvise64_64",
            "breakpoint",
            "cacheflush",
            "set_tls",
            "socketcall",
            "s390_runtime_instr",
            "sync_file_range2",
            "riscv_flush_icache",
        ] {
            assert_eq!(resolve(foreign), Resolved::ForeignOnly, "{foreign}");
        }
        assert_eq!(resolve("getcwdd"), Resolved::Unknown);
        assert_eq!(resolve(""), Resolved::Unknown);
    }

    #[test]
    fn runtime_default_style_names_all_resolve() {
        // Names container profiles use that are old, removed, multiplexed or 32-bit
        // only: each must be native or foreign-only, never refused as unknown.
        for name in [
            "epoll_ctl_old",
            "epoll_wait_old",
            "recv",
            "send",
            "ugetrlimit",
            "sigreturn",
            "waitpid",
            "umount",
            "stime",
            "query_module",
            "create_module",
            "get_kernel_syms",
            "nfsservctl",
            "uselib",
            "vm86",
            "vm86old",
            "timerfd_gettime64",
            "futex_time64",
            "ipc",
            "get_thread_area",
            "arch_prctl",
            "modify_ldt",
            "io_pgetevents_time64",
            "arm_sync_file_range",
            "lookup_dcookie",
            "_newselect",
            "mmap2",
            "fadvise64_64",
            "sendfile64",
            "sigprocmask",
            "statfs64",
            "fstatat64",
            "time",
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "usr26",
            "usr32",
            "riscv_hwprobe",
            "spu_run",
        ] {
            assert_ne!(resolve(name), Resolved::Unknown, "{name}");
        }
        #[cfg(target_arch = "x86_64")]
        assert_eq!(resolve("query_module"), Resolved::Native(178));
    }

    #[test]
    fn max_number_covers_recent_syscalls() {
        assert!(max_native_number() >= 462, "mseal (462) must be known");
    }
}
