//! Errors of seccomp translation and loading; each names the spec field at fault.

/// Why a `linux.seccomp` section could not be compiled or loaded.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error(
        "linux.seccomp.syscalls[{entry}].names[{index}]: unknown syscall {name:?} in a {action} \
         rule: dropping it would let it through under defaultAction {default}"
    )]
    UnknownSyscall {
        entry: usize,
        index: usize,
        name: String,
        action: String,
        default: String,
    },

    #[error("linux.seccomp.syscalls[{entry}].names: list is empty")]
    EmptyNames { entry: usize },

    #[error(
        "linux.seccomp.listenerPath: required by the SCMP_ACT_NOTIFY rule \
         linux.seccomp.syscalls[{entry}] (the runtime sends the listener there)"
    )]
    ListenerPathMissing { entry: usize },

    #[error(
        "linux.seccomp.syscalls[{entry}].names[{index}]: write cannot be SCMP_ACT_NOTIFY (the \
         init writes to the runtime before the agent holds the listener, as runc refuses)"
    )]
    NotifyWrite { entry: usize, index: usize },

    #[error("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action (runc refuses it too)")]
    NotifyDefault,

    #[error("linux.seccomp.flags[{index}]: flag {flag} is not supported")]
    UnsupportedFlag { index: usize, flag: String },

    #[error("linux.seccomp.syscalls[{entry}].args[{arg}].index: {index} is not an argument index (0..=5)")]
    InvalidArgIndex {
        entry: usize,
        arg: usize,
        index: usize,
    },

    #[error(
        "linux.seccomp.syscalls[{entry}].args[{arg}]: SCMP_CMP_MASKED_EQ valueTwo {value_two:#x} \
         has bits outside mask {mask:#x} and can never match"
    )]
    UnsatisfiableMaskedEq {
        entry: usize,
        arg: usize,
        mask: u64,
        value_two: u64,
    },

    #[error("{field}: {value} is out of range for {action} (at most {max})")]
    ErrnoRetOutOfRange {
        field: String,
        action: String,
        value: u32,
        max: u32,
    },

    #[error("{field}: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not {action}")]
    ErrnoRetNotApplicable { field: String, action: String },

    #[error("linux.seccomp: building the bpf program failed")]
    Compile(#[source] seccompiler::BackendError),

    #[error("linux.seccomp: program has {len} bpf instructions, the kernel allows at most {max}")]
    ProgramTooLong { len: usize, max: usize },

    #[error("linux.seccomp: generated bpf program is malformed at instruction {at}: {reason}")]
    MalformedProgram { at: usize, reason: &'static str },

    #[error("loading the seccomp filter (seccomp(SECCOMP_SET_MODE_FILTER)) failed")]
    Load(#[source] std::io::Error),
}
