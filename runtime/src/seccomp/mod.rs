//! Translate an OCI `linux.seccomp` section into one seccomp BPF program, and load it.
//!
//! [`compile`] is pure and runs in the runtime parent before the container init is
//! cloned; [`load`] runs in the init (as late as the executor can, see `executor`) and
//! only hands the finished bytes to `seccomp(2)`. The init makes no policy decisions.
//!
//! # How the program is built
//!
//! `seccompiler` builds a filter with exactly one match action and one mismatch action,
//! while an OCI profile gives every syscall entry its own action. So the entries are
//! grouped by their exact return value (action plus errno/trace data), each group is
//! compiled by `seccompiler` with a sentinel mismatch action that the group never uses,
//! and the groups are stitched into one program:
//!
//! ```text
//! prologue   load arch; != native audit arch -> KILL_PROCESS
//!            (x86_64) nr has bit 0x40000000 (x32 ABI) and nr != -1 -> KILL_PROCESS
//! group 1    seccompiler chain for the most restrictive action; every sentinel RET is
//!            rewritten into `JA` to the start of group 2
//! group ...  same, the last group's sentinels jump to the tail
//! tail       (deny default only) nr > highest native number the filter names
//!            -> ERRNO(ENOSYS)
//!            RET defaultAction
//! ```
//!
//! Each group body starts by reloading the syscall number, and a rewritten `RET` keeps
//! its position, so every jump `seccompiler` computed inside a group stays valid; the
//! new `JA` carries a 32-bit offset, so distance between groups is never a problem
//! (`jt`/`jf` are only 8 bits, but those are only used inside a group and `seccompiler`
//! already inserts helper jumps for long rules). The repeated arch prologue of each
//! group is checked against the expected instructions and dropped. The finished program
//! is verified (every jump lands inside the program, the last instruction returns)
//! before [`compile`] returns it, so a stitching bug is an error in the parent, not a
//! broken container.
//!
//! # Semantics, decision by decision
//!
//! - **Overlapping entries: the most restrictive action wins.** Groups run in the order
//!   KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, USER_NOTIF, TRACE, LOG, ALLOW (the kernel's own
//!   precedence when several filters are stacked, see seccomp(2) "Filter return
//!   values"); within ERRNO or TRACE lower data values come first. So `close` allowed
//!   unconditionally and denied when `fd > 5000` is denied for `fd > 5000`. Entries whose
//!   action equals `defaultAction` are kept, because under this ordering they still
//!   take precedence over less restrictive overlapping entries.
//! - **Actions.** `SCMP_ACT_ALLOW`, `SCMP_ACT_LOG`, `SCMP_ACT_TRAP`,
//!   `SCMP_ACT_KILL` (kills the thread, as libseccomp defines it), `SCMP_ACT_KILL_THREAD`,
//!   `SCMP_ACT_KILL_PROCESS`, `SCMP_ACT_ERRNO`, `SCMP_ACT_TRACE` and `SCMP_ACT_NOTIFY`.
//! - **User notification** (`SCMP_ACT_NOTIFY`, as runc): the rule returns
//!   SECCOMP_RET_USER_NOTIF (seccompiler cannot build it, so the group is built with a
//!   stand-in action whose returns are rewritten), the filter is loaded with
//!   `SECCOMP_FILTER_FLAG_NEW_LISTENER`, and [`load`] returns the listener, which the
//!   init hands to the runtime and the runtime sends with the container process
//!   state to the agent at `listenerPath` (libcontainer patch 28) before `create`
//!   (or `exec`) returns. As under runc: such a filter needs `listenerPath`;
//!   `write` may not notify and neither may `defaultAction` (the init writes to the
//!   runtime after loading the filter, before the agent holds the listener); a
//!   `listenerPath` without notify rules gets no listener; `listenerMetadata` is passed
//!   through. An agent is not a security boundary (seccomp_unotify(2): it reads
//!   pointer arguments the caller can still change), so profiles decide whether one may
//!   run (`[seccomp] user_notification`, `forbid` in every shipped profile but
//!   `unconfined`) and the admission record says which syscalls it decides.
//! - **errno values.** A syscall entry's ERRNO/TRACE data is its `errnoRet`, else EPERM
//!   (OCI runtime spec: "If not specified its default value is EPERM"; runc does the
//!   same). `defaultErrnoRet` applies to `defaultAction` only. `errnoRet` on any other
//!   action is refused (the spec says the runtime MUST fail), as is an ERRNO value above
//!   4095 (the kernel would clamp it) or TRACE data above 0xffff (it would be truncated).
//! - **Arguments.** Index 0..=5, compared as 64-bit values (as libseccomp does).
//!   `SCMP_CMP_MASKED_EQ` is `(arg & value) == valueTwo`; a `valueTwo` with bits outside
//!   `value` can never match, which almost certainly is a mistake in the profile, so it
//!   is refused rather than compiled into a dead rule. Several args in one entry are
//!   ANDed; several entries for one syscall are ORed; an entry without args matches the
//!   syscall unconditionally.
//! - **Syscall names.** A name known natively becomes its number. A name that is a real
//!   Linux syscall only on other architectures (containerd's RuntimeDefault lists
//!   `_llseek`, `chown32`, `socketcall`, `s390_*`, ...) is skipped: it cannot be invoked
//!   natively, so skipping it neither widens nor narrows the filter; skipped names are
//!   reported by [`CompiledFilter::skipped`]. A name unknown on every architecture
//!   (newer than our table, e.g. containerd 2.3 allowing `uretprobe` before the table
//!   had it, or made up) is dropped when its entry is no more restrictive than
//!   `defaultAction` — the syscall then gets the default action (or ENOSYS), so the
//!   filter only gets stricter — and reported by [`CompiledFilter::dropped_unknown`];
//!   in a more restrictive entry (an ERRNO rule under an ALLOW default) dropping would
//!   let the call through, so it is refused with the entry's path
//!   ([`droppable_unknown_names`]). Tables are generated from Linux 6.18's lists, see
//!   `syscall_table.rs`.
//! - **Architectures.** The native architecture is always filtered, listed or not
//!   (libseccomp adds it to every filter, so runc does too: a list naming only
//!   `SCMP_ARCH_X86` still has its rules applied natively). Other known
//!   names (`SCMP_ARCH_X86`, `SCMP_ARCH_X32`, ...) are accepted, but those ABIs are
//!   always killed: the prologue kills any foreign audit arch (i386 via `int $0x80`
//!   arrives as AUDIT_ARCH_I386), and on x86_64 an explicit check kills x32 syscalls,
//!   which share AUDIT_ARCH_X86_64 and differ only by bit 0x40000000 of the number.
//!   Number -1 is exempt from that check: it is what a ptrace-skipped syscall looks
//!   like, and natively it just returns ENOSYS. Unknown names never reach us: oci-spec
//!   refuses them while parsing.
//! - **Syscalls newer than the filter.** When `defaultAction` denies (ERRNO, KILL*,
//!   TRAP), any number above the highest native number the filter names returns
//!   ENOSYS instead of the default action, as runc's -ENOSYS stub does. libc wrappers
//!   treat ENOSYS as "kernel too old" and fall back (glibc's clone3 -> clone), while
//!   EPERM would be reported as a hard failure: a filter written before clone3 existed
//!   does not name it, and its threads must still start. (The threshold used to be the
//!   highest number of our own table, which knows clone3: such a filter got EPERM.)
//!   A filter naming no native syscall uses our table's highest number. Explicit
//!   entries are checked first and win; numbers below the threshold that the filter
//!   does not name get the default action. runc 1.1 builds its stub only for the
//!   architectures `architectures` lists, so a filter whose list is absent, empty or
//!   names only companion ABIs gets no stub here either: every number it does not
//!   name gets the default action (clone3 included), although the native
//!   architecture's rules still apply.
//! - **Flags.** `SECCOMP_FILTER_FLAG_LOG` and `SECCOMP_FILTER_FLAG_SPEC_ALLOW` are passed
//!   to the kernel. `SECCOMP_FILTER_FLAG_TSYNC` is accepted as a no-op: the init is
//!   single-threaded when it loads the filter. `SECCOMP_FILTER_FLAG_NEW_LISTENER` is
//!   set by the runtime exactly when a rule notifies (oci-spec cannot express it as a
//!   flag). `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (Linux 5.19, which runc 1.1 does
//!   not know) is refused.
//! - **Length.** The program is a linear chain, never reordered for speed; it must fit
//!   the kernel's BPF_MAXINSNS (4096). `seccompiler` spends 5 instructions on an
//!   unconditional syscall, so a RuntimeDefault-sized allow-list (~350 names plus arg
//!   rules) is about 1800 instructions.

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("stockade's seccomp translation supports x86_64 and aarch64 only");

mod bpf;
mod error;
mod load;
mod names;
mod syscall_table;
mod translate;

#[cfg(test)]
mod behaviour_tests;

pub use error::SeccompError;
pub use load::load;
pub use names::{closest_syscall, is_known_syscall, syscall_name, syscall_number};
pub use translate::{compile, droppable_unknown_names, UnknownName};

/// A finished seccomp program plus the `SECCOMP_FILTER_FLAG_*` bits to load it with.
///
/// Built by [`compile`] in the runtime parent, cloned into the container init and
/// handed to [`load`] unchanged.
#[derive(Clone)]
pub struct CompiledFilter {
    program: Vec<libc::sock_filter>,
    flags: u32,
    notify: bool,
    skipped: Vec<String>,
    dropped_unknown: Vec<String>,
}

impl CompiledFilter {
    /// The BPF instructions, ready for `struct sock_fprog`.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.program
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    /// Always false: a compiled program holds at least the prologue and a return.
    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }

    /// `SECCOMP_FILTER_FLAG_*` bits for `seccomp(SECCOMP_SET_MODE_FILTER, flags, ...)`.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether some rule is `SCMP_ACT_NOTIFY`: the filter is loaded with
    /// `SECCOMP_FILTER_FLAG_NEW_LISTENER`, [`load`] returns the listener, and the
    /// agent at `linux.seccomp.listenerPath` decides those syscalls.
    pub fn notifies(&self) -> bool {
        self.notify
    }

    /// Syscall names of the spec that exist only on other architectures and were
    /// skipped, as `linux.seccomp.syscalls[i].names[j] "name"`.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Names no syscall table of ours knows (newer than the table, or made up) that
    /// were dropped from rules no more restrictive than the default action, so the
    /// filter got stricter; same format as [`Self::skipped`].
    pub fn dropped_unknown(&self) -> &[String] {
        &self.dropped_unknown
    }
}

impl std::fmt::Debug for CompiledFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // libc::sock_filter has no Debug without libc's extra_traits feature.
        f.debug_struct("CompiledFilter")
            .field("len", &self.program.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("notify", &self.notify)
            .field("skipped", &self.skipped)
            .field("dropped_unknown", &self.dropped_unknown)
            .finish()
    }
}

/// The kernel whose syscall lists the generated tables were checked against.
pub const TABLE_KERNEL: &str = "Linux 6.18";

/// Actions accepted in `defaultAction` and `syscalls[].action`, for `stockade features`.
pub const SUPPORTED_ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

/// Architectures whose syscalls the filter can allow, for `stockade features`.
///
/// Other known `SCMP_ARCH_*` names are accepted in a spec next to the native one, but
/// their ABIs are always killed (see the module documentation).
#[cfg(target_arch = "x86_64")]
pub const SUPPORTED_ARCHES: &[&str] = &["SCMP_ARCH_X86_64"];
/// Architectures whose syscalls the filter can allow, for `stockade features`.
#[cfg(target_arch = "aarch64")]
pub const SUPPORTED_ARCHES: &[&str] = &["SCMP_ARCH_AARCH64"];

/// Filter flags accepted in `linux.seccomp.flags`, for `stockade features`.
pub const SUPPORTED_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
];
