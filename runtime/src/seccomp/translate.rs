//! Translate the OCI `linux.seccomp` section into action groups, then into BPF.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use seccompiler::{SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};

use super::bpf::{self, Group};
use super::names::{max_native_number, resolve, Resolved};
use super::{CompiledFilter, SeccompError};

#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: Arch = Arch::ScmpArchX86_64;
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: Arch = Arch::ScmpArchAarch64;

/// Largest errno the kernel returns unclamped (MAX_ERRNO, linux/err.h).
const MAX_ERRNO: u32 = 4095;
/// SECCOMP_RET_DATA: the 16 bits of data a TRACE return carries.
const MAX_TRACE_DATA: u32 = 0xffff;

/// Compile `seccomp` into one BPF program. Pure: no syscalls, safe in the parent.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<CompiledFilter, SeccompError> {
    check_listener(seccomp)?;
    check_architectures(seccomp.architectures().as_deref().unwrap_or_default())?;
    let flags = translate_flags(seccomp.flags().as_deref().unwrap_or_default())?;
    let default = translate_action(
        Site::Default,
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        &[],
    )?;
    let mut skipped = Vec::new();
    let groups = group_entries(
        seccomp.syscalls().as_deref().unwrap_or_default(),
        &mut skipped,
    )?;
    let enosys_above = denies(&default).then(|| max_native_number() as u32);
    let program = bpf::assemble(groups, &default, enosys_above)?;
    Ok(CompiledFilter {
        program,
        flags,
        skipped,
    })
}

/// Where an action came from, for error messages.
#[derive(Clone, Copy)]
enum Site {
    Default,
    Entry(usize),
}

impl Site {
    fn action_field(self) -> String {
        match self {
            Site::Default => "linux.seccomp.defaultAction".to_owned(),
            Site::Entry(i) => format!("linux.seccomp.syscalls[{i}].action"),
        }
    }

    fn errno_field(self) -> String {
        match self {
            Site::Default => "linux.seccomp.defaultErrnoRet".to_owned(),
            Site::Entry(i) => format!("linux.seccomp.syscalls[{i}].errnoRet"),
        }
    }
}

/// The spelling a value has in config.json (oci-spec serializes enums that way).
fn spec_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "<unnamed>".to_owned(),
    }
}

fn check_listener(seccomp: &LinuxSeccomp) -> Result<(), SeccompError> {
    if seccomp.listener_path().is_some() {
        return Err(SeccompError::ListenerUnsupported {
            field: "linux.seccomp.listenerPath",
        });
    }
    if seccomp.listener_metadata().is_some() {
        return Err(SeccompError::ListenerUnsupported {
            field: "linux.seccomp.listenerMetadata",
        });
    }
    Ok(())
}

fn check_architectures(arches: &[Arch]) -> Result<(), SeccompError> {
    if arches.is_empty()
        || arches
            .iter()
            .any(|a| *a == NATIVE_ARCH || *a == Arch::ScmpArchNative)
    {
        return Ok(());
    }
    Err(SeccompError::ForeignArchOnly {
        native: super::SUPPORTED_ARCHES[0],
        listed: arches.iter().map(spec_name).collect(),
    })
}

fn translate_flags(flags: &[LinuxSeccompFilterFlag]) -> Result<u32, SeccompError> {
    let mut bits = 0;
    for (index, flag) in flags.iter().enumerate() {
        match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                bits |= libc::SECCOMP_FILTER_FLAG_LOG as u32
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                bits |= libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32
            }
            // The init loads the filter while single-threaded: nothing to sync.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {}
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(SeccompError::UnsupportedFlag {
                    index,
                    flag: spec_name(flag),
                })
            }
        }
    }
    Ok(bits)
}

fn translate_action(
    site: Site,
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    syscalls: &[String],
) -> Result<SeccompAction, SeccompError> {
    // The site's own field: defaultErrnoRet for the default, errnoRet for an entry.
    let default_data = errno_ret.unwrap_or(libc::EPERM as u32);
    let data = |max: u32| {
        if default_data > max {
            Err(SeccompError::ErrnoRetOutOfRange {
                field: site.errno_field(),
                action: spec_name(&action),
                value: default_data,
                max,
            })
        } else {
            Ok(default_data)
        }
    };
    let translated = match action {
        LinuxSeccompAction::ScmpActErrno => return Ok(SeccompAction::Errno(data(MAX_ERRNO)?)),
        LinuxSeccompAction::ScmpActTrace => return Ok(SeccompAction::Trace(data(MAX_TRACE_DATA)?)),
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        // libseccomp: SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD.
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::UnsupportedAction {
                field: site.action_field(),
                action: spec_name(&action),
                syscalls: syscalls.to_vec(),
            })
        }
    };
    if errno_ret.is_some() {
        return Err(SeccompError::ErrnoRetNotApplicable {
            field: site.errno_field(),
            action: spec_name(&action),
        });
    }
    Ok(translated)
}

/// Whether `action` denies the call (and so unknown-new syscalls get ENOSYS instead).
fn denies(action: &SeccompAction) -> bool {
    match action {
        SeccompAction::Errno(_)
        | SeccompAction::KillThread
        | SeccompAction::KillProcess
        | SeccompAction::Trap => true,
        // TRACE defers to a tracer (and returns ENOSYS itself without one).
        SeccompAction::Allow | SeccompAction::Log | SeccompAction::Trace(_) => false,
    }
}

/// Most restrictive first: the kernel's precedence of return values (seccomp(2)).
fn precedence(action: &SeccompAction) -> (u8, u32) {
    match action {
        SeccompAction::KillProcess => (0, 0),
        SeccompAction::KillThread => (1, 0),
        SeccompAction::Trap => (2, 0),
        SeccompAction::Errno(e) => (3, *e),
        SeccompAction::Trace(d) => (4, *d),
        SeccompAction::Log => (5, 0),
        SeccompAction::Allow => (6, 0),
    }
}

/// The rules of one syscall within one group.
enum Chain {
    /// Some entry matches the syscall whatever its arguments.
    Unconditional,
    /// ORed rules, each an AND of argument conditions.
    AnyOf(Vec<SeccompRule>),
}

fn group_entries(
    entries: &[LinuxSyscall],
    skipped: &mut Vec<String>,
) -> Result<Vec<Group>, SeccompError> {
    let mut groups: BTreeMap<(u8, u32), (SeccompAction, BTreeMap<i64, Chain>)> = BTreeMap::new();
    for (entry, syscall) in entries.iter().enumerate() {
        let action = translate_action(
            Site::Entry(entry),
            syscall.action(),
            syscall.errno_ret(),
            syscall.names(),
        )?;
        if syscall.names().is_empty() {
            return Err(SeccompError::EmptyNames { entry });
        }
        let rule = translate_args(entry, syscall.args().as_deref().unwrap_or_default())?;
        let numbers = resolve_names(entry, syscall.names(), skipped)?;
        let (_, chains) = groups
            .entry(precedence(&action))
            .or_insert_with(|| (action, BTreeMap::new()));
        for nr in numbers {
            let chain = chains.entry(nr).or_insert(Chain::AnyOf(Vec::new()));
            match (&rule, chain) {
                (_, Chain::Unconditional) => {}
                (None, chain) => *chain = Chain::Unconditional,
                (Some(rule), Chain::AnyOf(rules)) => rules.push(rule.clone()),
            }
        }
    }
    Ok(groups
        .into_values()
        .map(|(action, chains)| Group {
            action,
            rules: chains
                .into_iter()
                .map(|(nr, chain)| match chain {
                    // seccompiler matches a syscall with no rules unconditionally.
                    Chain::Unconditional => (nr, Vec::new()),
                    Chain::AnyOf(rules) => (nr, rules),
                })
                .collect(),
        })
        .collect())
}

fn resolve_names(
    entry: usize,
    names: &[String],
    skipped: &mut Vec<String>,
) -> Result<Vec<i64>, SeccompError> {
    let mut numbers = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        match resolve(name) {
            Resolved::Native(nr) => numbers.push(nr),
            // Not invocable on this architecture: skipping neither widens nor narrows.
            Resolved::ForeignOnly => skipped.push(format!(
                "linux.seccomp.syscalls[{entry}].names[{index}] {name:?}"
            )),
            Resolved::Unknown => {
                return Err(SeccompError::UnknownSyscall {
                    entry,
                    index,
                    name: name.clone(),
                })
            }
        }
    }
    Ok(numbers)
}

/// The AND of an entry's argument conditions; `None` when it has none.
fn translate_args(
    entry: usize,
    args: &[LinuxSeccompArg],
) -> Result<Option<SeccompRule>, SeccompError> {
    if args.is_empty() {
        return Ok(None);
    }
    let conditions = args
        .iter()
        .enumerate()
        .map(|(arg, a)| translate_arg(entry, arg, a))
        .collect::<Result<Vec<_>, _>>()?;
    SeccompRule::new(conditions)
        .map(Some)
        .map_err(SeccompError::Compile)
}

fn translate_arg(
    entry: usize,
    arg: usize,
    a: &LinuxSeccompArg,
) -> Result<SeccompCondition, SeccompError> {
    let index =
        u8::try_from(a.index())
            .ok()
            .filter(|i| *i <= 5)
            .ok_or(SeccompError::InvalidArgIndex {
                entry,
                arg,
                index: a.index(),
            })?;
    let (op, value) = match a.op() {
        LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, a.value()),
        LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, a.value()),
        LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, a.value()),
        LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, a.value()),
        LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, a.value()),
        LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, a.value()),
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            // OCI/libseccomp: (arg & value) == valueTwo. seccompiler masks the operand
            // too, which would turn an impossible comparison into a possible one.
            let (mask, value_two) = (a.value(), a.value_two().unwrap_or(0));
            if value_two & !mask != 0 {
                return Err(SeccompError::UnsatisfiableMaskedEq {
                    entry,
                    arg,
                    mask,
                    value_two,
                });
            }
            (SeccompCmpOp::MaskedEq(mask), value_two)
        }
    };
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value).map_err(SeccompError::Compile)
}
