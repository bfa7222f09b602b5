//! Translate the OCI `linux.seccomp` section into action groups, then into BPF.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use seccompiler::{SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};

use super::bpf::{self, Action, Group};
use super::names::{max_native_number, resolve, Resolved};
use super::{CompiledFilter, SeccompError};

/// Largest errno the kernel returns unclamped (MAX_ERRNO, linux/err.h).
const MAX_ERRNO: u32 = 4095;
/// SECCOMP_RET_DATA: the 16 bits of data a TRACE return carries.
const MAX_TRACE_DATA: u32 = 0xffff;

/// Compile `seccomp` into one BPF program. Pure: no syscalls, safe in the parent.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<CompiledFilter, SeccompError> {
    let notify = check_notify(seccomp)?;
    // The native architecture is always in the program, listed or not: libseccomp
    // (and so runc) adds it to every filter. Other listed ABIs are killed (below).
    let mut flags = translate_flags(seccomp.flags().as_deref().unwrap_or_default())?;
    if notify {
        // The kernel returns the listener fd, which the init hands to the agent.
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
    }
    let default = default_action(seccomp)?;
    let mut names = SkippedNames::default();
    let default_name = spec_name(&seccomp.default_action());
    let groups = group_entries(
        seccomp.syscalls().as_deref().unwrap_or_default(),
        (&default, &default_name),
        &mut names,
    )?;
    let enosys_above = denies(&default)
        .then(|| enosys_threshold(seccomp))
        .flatten()
        .map(|nr| nr as u32);
    let program = bpf::assemble(groups, &default, enosys_above)?;
    Ok(CompiledFilter {
        program,
        flags,
        notify,
        skipped: names.foreign,
        dropped_unknown: names.unknown,
    })
}

/// Numbers above this get ENOSYS under a denying default: the highest native number
/// the filter names, as runc's -ENOSYS stub does (libseccomp's numbers for the
/// config's names). A filter written before a syscall existed does not name it, and
/// its callers expect the ENOSYS an older kernel gives: glibc's pthread_create falls
/// back from clone3 to clone only on ENOSYS; using the highest number of our own
/// table (which knows clone3) gave it the default EPERM. A filter naming no native
/// syscall falls back to our table's highest number (runc makes no stub then).
///
/// `None` (no stub: every unnamed number gets the default action) when the native
/// architecture is not in `architectures`: runc 1.1 builds its stub only for the
/// architectures the config lists (`findLastSyscalls` loops over them), so an
/// absent or empty list, or one naming only companion ABIs, gets no native stub,
/// although libseccomp still filters the native architecture with the rules.
fn enosys_threshold(seccomp: &LinuxSeccomp) -> Option<i64> {
    if !lists_native_arch(seccomp) {
        return None;
    }
    let named = seccomp
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .flat_map(|entry| entry.names())
        .filter_map(|name| super::names::syscall_number(name))
        .max();
    Some(named.unwrap_or_else(max_native_number))
}

/// Whether `architectures` names this machine's architecture (or `SCMP_ARCH_NATIVE`).
fn lists_native_arch(seccomp: &LinuxSeccomp) -> bool {
    #[cfg(target_arch = "x86_64")]
    const NATIVE: Arch = Arch::ScmpArchX86_64;
    #[cfg(target_arch = "aarch64")]
    const NATIVE: Arch = Arch::ScmpArchAarch64;
    seccomp
        .architectures()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|arch| matches!(arch, Arch::ScmpArchNative) || *arch == NATIVE)
}

/// A syscall name that no table of ours knows (newer than the table, or made up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// Index into `linux.seccomp.syscalls`.
    pub entry: usize,
    /// Index into that entry's `names`.
    pub index: usize,
    pub name: String,
}

impl UnknownName {
    /// `linux.seccomp.syscalls[i].names[j]`.
    pub fn path(&self) -> String {
        format!(
            "linux.seccomp.syscalls[{}].names[{}]",
            self.entry, self.index
        )
    }
}

/// The unknown names of `seccomp` that can be dropped without weakening the filter, in
/// spec order; an error for the first one whose drop would weaken it.
///
/// A syscall we cannot name can only be filtered by the default action (or ENOSYS
/// above the table, which also denies). So dropping a name from an entry is safe
/// exactly when the default action is at least as restrictive as the entry's action:
/// an allow (or log, trace) rule under a denying default loses a permission, the
/// filter gets stricter. A name in a rule more restrictive than the default (say
/// ERRNO under an ALLOW default) would be let through by the drop, so it is refused.
pub fn droppable_unknown_names(seccomp: &LinuxSeccomp) -> Result<Vec<UnknownName>, SeccompError> {
    let default = default_action(seccomp)?;
    let default_name = spec_name(&seccomp.default_action());
    let mut out = Vec::new();
    for (entry, syscall) in seccomp
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        for (index, name) in syscall.names().iter().enumerate() {
            if resolve(name) == Resolved::Unknown {
                check_droppable(entry, index, syscall, (&default, &default_name))?;
                out.push(UnknownName {
                    entry,
                    index,
                    name: name.clone(),
                });
            }
        }
    }
    Ok(out)
}

fn check_droppable(
    entry: usize,
    index: usize,
    syscall: &LinuxSyscall,
    (default, default_name): (&SeccompAction, &str),
) -> Result<(), SeccompError> {
    let action = translate_action(Site::Entry(entry), syscall.action(), syscall.errno_ret())?;
    if precedence(&Action::Kernel(default.clone())).0 <= precedence(&action).0 {
        return Ok(());
    }
    Err(SeccompError::UnknownSyscall {
        entry,
        index,
        name: syscall.names()[index].clone(),
        action: spec_name(&syscall.action()),
        default: default_name.to_owned(),
    })
}

/// Names `compile` leaves out of the program, for the caller to report.
#[derive(Default)]
struct SkippedNames {
    /// Real syscalls of other architectures only.
    foreign: Vec<String>,
    /// Names no table knows, dropped from rules no more restrictive than the default.
    unknown: Vec<String>,
}

/// Where an action came from, for error messages.
#[derive(Clone, Copy)]
enum Site {
    Default,
    Entry(usize),
}

impl Site {
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

/// The default action: never `SCMP_ACT_NOTIFY` (runc refuses it: every syscall the
/// init still makes, the write that hands the listener over included, would wait for
/// an agent that does not have the listener yet).
fn default_action(seccomp: &LinuxSeccomp) -> Result<SeccompAction, SeccompError> {
    match translate_action(
        Site::Default,
        seccomp.default_action(),
        seccomp.default_errno_ret(),
    )? {
        Action::Kernel(action) => Ok(action),
        Action::Notify => Err(SeccompError::NotifyDefault),
    }
}

/// Whether the filter notifies an agent (some rule is `SCMP_ACT_NOTIFY`), checked as
/// runc checks it: such a filter needs `listenerPath` (the runtime-spec: the runtime
/// sends the listener there), and `write` may not notify (the init writes to the
/// runtime after loading the filter, before the agent has the listener: it would
/// hang). A `listenerPath` without notify rules gets no listener, as under runc.
fn check_notify(seccomp: &LinuxSeccomp) -> Result<bool, SeccompError> {
    let mut notify = false;
    for (entry, syscall) in seccomp
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if syscall.action() != LinuxSeccompAction::ScmpActNotify {
            continue;
        }
        notify = true;
        if let Some(index) = syscall.names().iter().position(|n| n == "write") {
            return Err(SeccompError::NotifyWrite { entry, index });
        }
        if seccomp.listener_path().is_none() {
            return Err(SeccompError::ListenerPathMissing { entry });
        }
    }
    Ok(notify)
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
) -> Result<Action, SeccompError> {
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
        LinuxSeccompAction::ScmpActErrno => {
            return Ok(Action::Kernel(SeccompAction::Errno(data(MAX_ERRNO)?)))
        }
        LinuxSeccompAction::ScmpActTrace => {
            return Ok(Action::Kernel(SeccompAction::Trace(data(MAX_TRACE_DATA)?)))
        }
        LinuxSeccompAction::ScmpActAllow => Action::Kernel(SeccompAction::Allow),
        LinuxSeccompAction::ScmpActLog => Action::Kernel(SeccompAction::Log),
        LinuxSeccompAction::ScmpActTrap => Action::Kernel(SeccompAction::Trap),
        // libseccomp: SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD.
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            Action::Kernel(SeccompAction::KillThread)
        }
        LinuxSeccompAction::ScmpActKillProcess => Action::Kernel(SeccompAction::KillProcess),
        LinuxSeccompAction::ScmpActNotify => Action::Notify,
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
fn precedence(action: &Action) -> (u8, u32) {
    match action {
        Action::Kernel(SeccompAction::KillProcess) => (0, 0),
        Action::Kernel(SeccompAction::KillThread) => (1, 0),
        Action::Kernel(SeccompAction::Trap) => (2, 0),
        Action::Kernel(SeccompAction::Errno(e)) => (3, *e),
        Action::Notify => (4, 0),
        Action::Kernel(SeccompAction::Trace(d)) => (5, *d),
        Action::Kernel(SeccompAction::Log) => (6, 0),
        Action::Kernel(SeccompAction::Allow) => (7, 0),
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
    default: (&SeccompAction, &str),
    skipped: &mut SkippedNames,
) -> Result<Vec<Group>, SeccompError> {
    let mut groups: BTreeMap<(u8, u32), (Action, BTreeMap<i64, Chain>)> = BTreeMap::new();
    for (entry, syscall) in entries.iter().enumerate() {
        let action = translate_action(Site::Entry(entry), syscall.action(), syscall.errno_ret())?;
        if syscall.names().is_empty() {
            return Err(SeccompError::EmptyNames { entry });
        }
        let rule = translate_args(entry, syscall.args().as_deref().unwrap_or_default())?;
        let numbers = resolve_names(entry, syscall, default, skipped)?;
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
    syscall: &LinuxSyscall,
    default: (&SeccompAction, &str),
    skipped: &mut SkippedNames,
) -> Result<Vec<i64>, SeccompError> {
    let names = syscall.names();
    let mut numbers = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let at = format!("linux.seccomp.syscalls[{entry}].names[{index}] {name:?}");
        match resolve(name) {
            Resolved::Native(nr) => numbers.push(nr),
            // Not invocable on this architecture: skipping neither widens nor narrows.
            Resolved::ForeignOnly => skipped.foreign.push(at),
            // Refused where dropping would weaken the filter (`droppable_unknown_names`).
            Resolved::Unknown => {
                check_droppable(entry, index, syscall, default)?;
                skipped.unknown.push(at)
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

#[cfg(test)]
pub(super) mod tests {
    use serde_json::json;

    use super::super::bpf::{evaluate, NATIVE_AUDIT_ARCH};
    use super::super::names::native_names;
    use super::super::syscall_number;
    use super::*;

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;
    const KILL_THREAD: u32 = libc::SECCOMP_RET_KILL_THREAD;

    fn errno(e: i32) -> u32 {
        libc::SECCOMP_RET_ERRNO | e as u32
    }

    fn spec(value: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(value).expect("test spec must parse")
    }

    fn compiled(value: serde_json::Value) -> CompiledFilter {
        compile(&spec(value)).expect("test spec must compile")
    }

    fn refused(value: serde_json::Value) -> String {
        compile(&spec(value))
            .expect_err("test spec must be refused")
            .to_string()
    }

    fn nr(name: &str) -> u32 {
        syscall_number(name).unwrap_or_else(|| panic!("{name} is native")) as u32
    }

    /// What the program returns for `name` with arguments `args` (rest zero).
    fn ret(filter: &CompiledFilter, name: &str, args: &[u64]) -> u32 {
        ret_nr(filter, nr(name), args)
    }

    fn ret_nr(filter: &CompiledFilter, nr: u32, args: &[u64]) -> u32 {
        let mut full = [0u64; 6];
        full[..args.len()].copy_from_slice(args);
        evaluate(filter.instructions(), nr, NATIVE_AUDIT_ARCH, full)
    }

    #[test]
    fn each_action_translates_to_its_return_value() {
        let cases: &[(serde_json::Value, Option<u32>, u32)] = &[
            (json!("SCMP_ACT_ALLOW"), None, ALLOW),
            (json!("SCMP_ACT_ERRNO"), None, errno(libc::EPERM)),
            (json!("SCMP_ACT_ERRNO"), Some(38), errno(libc::ENOSYS)),
            (json!("SCMP_ACT_ERRNO"), Some(0), errno(0)),
            (json!("SCMP_ACT_KILL"), None, KILL_THREAD),
            (json!("SCMP_ACT_KILL_THREAD"), None, KILL_THREAD),
            (json!("SCMP_ACT_KILL_PROCESS"), None, KILL_PROCESS),
            (json!("SCMP_ACT_TRAP"), None, libc::SECCOMP_RET_TRAP),
            (json!("SCMP_ACT_TRACE"), None, libc::SECCOMP_RET_TRACE | 1),
            (
                json!("SCMP_ACT_TRACE"),
                Some(7),
                libc::SECCOMP_RET_TRACE | 7,
            ),
            (json!("SCMP_ACT_LOG"), None, libc::SECCOMP_RET_LOG),
        ];
        for (action, errno_ret, expected) in cases {
            let mut entry = json!({"names": ["getppid"], "action": action});
            if let Some(e) = errno_ret {
                entry["errnoRet"] = json!(e);
            }
            // A default different from every tested action.
            let filter = compiled(json!({
                "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 99, "syscalls": [entry]
            }));
            assert_eq!(
                ret(&filter, "getppid", &[]),
                *expected,
                "{action} {errno_ret:?}"
            );
            assert_eq!(ret(&filter, "getpid", &[]), errno(99), "{action}: default");
        }
    }

    #[test]
    fn errno_defaults_follow_the_oci_spec() {
        let filter = compiled(json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]
        }));
        assert_eq!(
            ret(&filter, "uname", &[]),
            errno(libc::EACCES),
            "defaultErrnoRet"
        );
        assert_eq!(
            ret(&filter, "getcwd", &[]),
            errno(libc::EPERM),
            "an entry without errnoRet gets EPERM, not defaultErrnoRet"
        );
        let filter = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO"}));
        assert_eq!(ret(&filter, "uname", &[]), errno(libc::EPERM));
        let filter = compiled(json!({"defaultAction": "SCMP_ACT_TRACE", "defaultErrnoRet": 5}));
        assert_eq!(ret(&filter, "uname", &[]), libc::SECCOMP_RET_TRACE | 5);
    }

    #[test]
    fn errno_ret_is_refused_where_it_cannot_apply() {
        assert_eq!(
            refused(json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1})),
            "linux.seccomp.defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, \
             not SCMP_ACT_ALLOW"
        );
        assert_eq!(
            refused(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["uname"], "action": "SCMP_ACT_KILL", "errnoRet": 1}
            ]})),
            "linux.seccomp.syscalls[1].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an \
             errno, not SCMP_ACT_KILL"
        );
        assert_eq!(
            refused(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4096}
            ]})),
            "linux.seccomp.syscalls[0].errnoRet: 4096 is out of range for SCMP_ACT_ERRNO (at most 4095)"
        );
        assert!(
            refused(json!({"defaultAction": "SCMP_ACT_TRACE", "defaultErrnoRet": 65536}))
                .starts_with("linux.seccomp.defaultErrnoRet: 65536 is out of range")
        );
    }

    #[test]
    fn every_comparison_operator_is_64_bit() {
        const HI: u64 = 0x1_0000_0000;
        /// (op, value, valueTwo, args that match, args that do not)
        type Case = (&'static str, u64, u64, &'static [u64], &'static [u64]);
        let cases: &[Case] = &[
            (
                "SCMP_CMP_EQ",
                HI + 5,
                0,
                &[HI + 5],
                &[5, HI + 6, 2 * HI + 5, 0],
            ),
            (
                "SCMP_CMP_NE",
                HI + 5,
                0,
                &[5, HI + 6, 2 * HI + 5, 0],
                &[HI + 5],
            ),
            (
                "SCMP_CMP_LT",
                HI + 5,
                0,
                &[HI + 4, 5, HI - 1, 0],
                &[HI + 5, HI + 6, 2 * HI],
            ),
            (
                "SCMP_CMP_LE",
                HI + 5,
                0,
                &[HI + 5, HI + 4, 0, 6],
                &[HI + 6, 2 * HI],
            ),
            (
                "SCMP_CMP_GE",
                HI + 5,
                0,
                &[HI + 5, HI + 6, 2 * HI, u64::MAX],
                &[HI + 4, HI - 1, 5],
            ),
            (
                "SCMP_CMP_GT",
                HI + 5,
                0,
                &[HI + 6, 2 * HI, u64::MAX],
                &[HI + 5, HI + 4, 0x7],
            ),
            (
                "SCMP_CMP_MASKED_EQ",
                0x7_0000_00ff,
                0x1_0000_0028,
                &[0x1_0000_0028, 0xf1_0000_ff28, 0x1_1234_0028],
                &[0x28, 0x1_0000_0029, 0x3_0000_0028],
            ),
        ];
        for (op, value, value_two, hits, misses) in cases {
            let filter = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
                 "args": [{"index": 2, "value": value, "valueTwo": value_two, "op": op}]}
            ]}));
            for hit in *hits {
                assert_eq!(
                    ret(&filter, "close", &[0, 0, *hit]),
                    errno(7),
                    "{op} {hit:#x}"
                );
            }
            for miss in *misses {
                assert_eq!(
                    ret(&filter, "close", &[0, 0, *miss]),
                    ALLOW,
                    "{op} {miss:#x}"
                );
            }
        }
    }

    #[test]
    fn args_in_one_entry_are_anded_and_entries_are_ored() {
        let filter = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}
        ]}));
        let eperm = errno(libc::EPERM);
        assert_eq!(ret(&filter, "kill", &[1, 9]), eperm);
        assert_eq!(ret(&filter, "kill", &[1, 8]), ALLOW);
        assert_eq!(ret(&filter, "kill", &[3, 9]), ALLOW);
        assert_eq!(ret(&filter, "kill", &[2, 0]), eperm);
        assert_eq!(ret(&filter, "kill", &[2, 9]), eperm);
    }

    #[test]
    fn an_unconditional_entry_covers_conditional_ones_with_the_same_action() {
        for order in [[0, 1], [1, 0]] {
            let entries = [
                json!({"names": ["close"], "action": "SCMP_ACT_ALLOW"}),
                json!({"names": ["close"], "action": "SCMP_ACT_ALLOW",
                       "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]}),
            ];
            let filter = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [entries[order[0]].clone(), entries[order[1]].clone()]}));
            assert_eq!(ret(&filter, "close", &[4]), ALLOW);
            assert_eq!(ret(&filter, "close", &[3]), ALLOW);
        }
    }

    #[test]
    fn on_overlap_the_more_restrictive_action_wins() {
        let filter = compiled(
            json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [
                {"names": ["close", "read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
                 "args": [{"index": 0, "value": 5000, "op": "SCMP_CMP_GT"}]},
                {"names": ["close"], "action": "SCMP_ACT_TRAP",
                 "args": [{"index": 0, "value": 9000, "op": "SCMP_CMP_GT"}]},
                {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9},
                {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 8},
                {"names": ["read"], "action": "SCMP_ACT_LOG"}
            ]}),
        );
        assert_eq!(ret(&filter, "close", &[3]), ALLOW);
        assert_eq!(ret(&filter, "close", &[6000]), errno(7));
        assert_eq!(ret(&filter, "close", &[9001]), libc::SECCOMP_RET_TRAP);
        assert_eq!(
            ret(&filter, "read", &[]),
            errno(8),
            "lower errno first, deterministic"
        );
        assert_eq!(ret(&filter, "write", &[]), KILL_PROCESS);
    }

    #[test]
    fn entries_with_the_default_action_still_take_precedence() {
        let filter = compiled(
            json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["socket"], "action": "SCMP_ACT_KILL_PROCESS",
                 "args": [{"index": 0, "value": libc::AF_VSOCK, "op": "SCMP_CMP_EQ"}]}
            ]}),
        );
        assert_eq!(ret(&filter, "socket", &[libc::AF_UNIX as u64]), ALLOW);
        assert_eq!(
            ret(&filter, "socket", &[libc::AF_VSOCK as u64]),
            KILL_PROCESS
        );
    }

    #[test]
    fn unknown_names_in_rules_that_only_loosen_are_dropped_and_reported() {
        // Issue 7: containerd 2.3's RuntimeDefault allows syscalls newer than a table.
        for (default, action) in [
            ("SCMP_ACT_ERRNO", "SCMP_ACT_ALLOW"),
            ("SCMP_ACT_KILL_PROCESS", "SCMP_ACT_ALLOW"),
            ("SCMP_ACT_ERRNO", "SCMP_ACT_LOG"),
            ("SCMP_ACT_ERRNO", "SCMP_ACT_ERRNO"),
            ("SCMP_ACT_TRAP", "SCMP_ACT_ERRNO"),
            ("SCMP_ACT_ALLOW", "SCMP_ACT_ALLOW"),
        ] {
            let json = json!({"defaultAction": default, "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["write", "future_syscall_2099"], "action": action},
                {"names": ["getcwdd"], "action": action}
            ]});
            let filter = compiled(json.clone());
            assert_eq!(
                filter.dropped_unknown(),
                [
                    r#"linux.seccomp.syscalls[1].names[1] "future_syscall_2099""#,
                    r#"linux.seccomp.syscalls[2].names[0] "getcwdd""#,
                ],
                "{default} / {action}"
            );
            assert!(filter.skipped().is_empty());
            assert_eq!(ret(&filter, "read", &[]), ALLOW);
            let names: Vec<_> = droppable_unknown_names(&spec(json))
                .expect("droppable")
                .into_iter()
                .map(|u| u.path())
                .collect();
            assert_eq!(
                names,
                [
                    "linux.seccomp.syscalls[1].names[1]",
                    "linux.seccomp.syscalls[2].names[0]"
                ]
            );
        }
    }

    #[test]
    fn unknown_names_whose_drop_would_weaken_the_filter_are_refused() {
        for (default, action) in [
            ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"),
            ("SCMP_ACT_ALLOW", "SCMP_ACT_KILL_PROCESS"),
            ("SCMP_ACT_LOG", "SCMP_ACT_TRAP"),
            ("SCMP_ACT_ERRNO", "SCMP_ACT_KILL_THREAD"),
        ] {
            let json = json!({"defaultAction": default, "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["write", "getcwdd"], "action": action}
            ]});
            let want = format!(
                "linux.seccomp.syscalls[1].names[1]: unknown syscall \"getcwdd\" in a {action} \
                 rule: dropping it would let it through under defaultAction {default}"
            );
            assert_eq!(refused(json.clone()), want);
            assert_eq!(
                droppable_unknown_names(&spec(json))
                    .expect_err("weakening")
                    .to_string(),
                want
            );
        }
    }

    #[test]
    fn newest_syscalls_of_the_table_resolve() {
        // Linux 6.11 / 6.18 (x86_64 only): the table is generated from Linux 6.18.
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(syscall_number("uretprobe"), Some(335));
            assert_eq!(syscall_number("uprobe"), Some(336));
        }
        assert_eq!(syscall_number("file_setattr"), Some(469));
    }

    #[test]
    fn empty_names_are_refused() {
        assert_eq!(
            refused(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": [], "action": "SCMP_ACT_ALLOW"}
            ]})),
            "linux.seccomp.syscalls[0].names: list is empty"
        );
    }

    #[test]
    fn foreign_only_names_are_skipped_and_reported() {
        let filter = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO",
            "architectures": [super::super::SUPPORTED_ARCHES[0]], "syscalls": [
            {"names": ["_llseek", "read", "chown32", "socketcall"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["s390_runtime_instr"], "action": "SCMP_ACT_ALLOW"}
        ]}));
        assert_eq!(
            filter.skipped(),
            [
                r#"linux.seccomp.syscalls[0].names[0] "_llseek""#,
                r#"linux.seccomp.syscalls[0].names[2] "chown32""#,
                r#"linux.seccomp.syscalls[0].names[3] "socketcall""#,
                r#"linux.seccomp.syscalls[1].names[0] "s390_runtime_instr""#,
            ]
        );
        assert_eq!(ret(&filter, "read", &[]), ALLOW);
        // Above the highest native number the filter names (read): runc's ENOSYS stub.
        assert_eq!(ret(&filter, "write", &[]), errno(libc::ENOSYS));
    }

    #[test]
    fn notify_rules_return_user_notif_and_ask_for_a_listener() {
        let filter = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock", "listenerMetadata": "m", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 2, "value": 0o700, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getcwd"], "action": "SCMP_ACT_TRACE"}
        ]}));
        assert!(filter.notifies());
        assert_eq!(
            filter.flags(),
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32
        );
        let notif = libc::SECCOMP_RET_USER_NOTIF;
        assert_eq!(ret(&filter, "mkdirat", &[0, 0, 0o755]), notif);
        // ERRNO is more restrictive than USER_NOTIF, TRACE less (seccomp(2)).
        assert_eq!(ret(&filter, "mkdirat", &[0, 0, 0o700]), errno(libc::EPERM));
        assert_eq!(ret(&filter, "getcwd", &[]), libc::SECCOMP_RET_TRACE | 1);
        assert_eq!(ret(&filter, "read", &[]), ALLOW);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(ret(&filter, "mkdir", &[]), notif);
        // A listenerPath without notify rules gets no listener (runc).
        let plain = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock", "listenerMetadata": "m"}));
        assert!(!plain.notifies());
        assert_eq!(plain.flags(), 0);
    }

    #[test]
    fn notify_is_refused_where_runc_refuses_it() {
        assert_eq!(
            refused(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["mount", "umount2"], "action": "SCMP_ACT_NOTIFY"}
            ]})),
            "linux.seccomp.listenerPath: required by the SCMP_ACT_NOTIFY rule \
             linux.seccomp.syscalls[1] (the runtime sends the listener there)"
        );
        assert_eq!(
            refused(json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"})),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action \
             (runc refuses it too)"
        );
        assert_eq!(
            refused(
                json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a", "syscalls": [
                    {"names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY"}
                ]})
            ),
            "linux.seccomp.syscalls[0].names[1]: write cannot be SCMP_ACT_NOTIFY (the init \
             writes to the runtime before the agent holds the listener, as runc refuses)"
        );
        assert_eq!(
            refused(
                json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a", "syscalls": [
                    {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY", "errnoRet": 1}
                ]})
            ),
            "linux.seccomp.syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an \
             errno, not SCMP_ACT_NOTIFY"
        );
    }

    #[test]
    fn invalid_arguments_are_refused() {
        assert_eq!(
            refused(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["close"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}
            ]})),
            "linux.seccomp.syscalls[0].args[1].index: 6 is not an argument index (0..=5)"
        );
        assert_eq!(
            refused(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["clone"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": 0xff, "valueTwo": 0x100, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]})),
            "linux.seccomp.syscalls[0].args[0]: SCMP_CMP_MASKED_EQ valueTwo 0x100 has bits \
             outside mask 0xff and can never match"
        );
    }

    #[test]
    fn the_native_architecture_is_always_in_the_filter() {
        #[cfg(target_arch = "x86_64")]
        let (native, companions) = ("SCMP_ARCH_X86_64", ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
        #[cfg(target_arch = "aarch64")]
        let (native, companions) = ("SCMP_ARCH_AARCH64", ["SCMP_ARCH_ARM", "SCMP_ARCH_ARM"]);
        for ok in [
            json!([]),
            json!([native]),
            json!([native, companions[0], companions[1]]),
            json!(["SCMP_ARCH_NATIVE"]),
        ] {
            compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ok}));
        }
        // Companions only: libseccomp (runc) adds the native architecture, and the
        // rules apply to it.
        let filter = compiled(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": companions,
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}),
        );
        assert_eq!(ret(&filter, "getcwd", &[]), errno(libc::EPERM));
        assert_eq!(ret(&filter, "read", &[]), ALLOW);
        // Unknown names never reach compile(): the spec does not parse.
        let bad = serde_json::from_value::<LinuxSeccomp>(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
        );
        assert!(bad.is_err());
    }

    #[test]
    fn foreign_abis_are_always_killed() {
        let filter = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": [super::super::SUPPORTED_ARCHES[0], "SCMP_ARCH_X86", "SCMP_ARCH_X32"]}));
        const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
        let i386 = evaluate(filter.instructions(), 20, AUDIT_ARCH_I386, [0; 6]);
        assert_eq!(i386, KILL_PROCESS);
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(
                ret_nr(&filter, 0x4000_0000 | 39, &[]),
                KILL_PROCESS,
                "x32 getpid"
            );
            assert_eq!(ret_nr(&filter, 0x4000_0000 | 4000, &[]), KILL_PROCESS);
        }
        assert_eq!(
            ret_nr(&filter, u32::MAX, &[]),
            ALLOW,
            "nr -1 is no x32 call"
        );
        assert_eq!(ret(&filter, "getpid", &[]), ALLOW);
    }

    #[test]
    fn flags_translate_or_are_refused() {
        let filter = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [
            "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"
        ]}));
        assert_eq!(
            filter.flags(),
            (libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW) as u32
        );
        let filter = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC"]}));
        assert_eq!(
            filter.flags(),
            0,
            "tsync is a no-op in a single-threaded init"
        );
        assert_eq!(
            refused(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [
                "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
            ]})),
            "linux.seccomp.flags[1]: flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported"
        );
        let listener = serde_json::from_value::<LinuxSeccomp>(json!({
            "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]
        }));
        assert!(
            listener.is_err(),
            "oci-spec cannot even express NEW_LISTENER"
        );
    }

    #[test]
    fn syscalls_newer_than_the_table_get_enosys_when_the_default_denies() {
        let newer = max_native_number() as u32 + 1;
        for (default, unlisted) in [
            (
                json!({"defaultAction": "SCMP_ACT_ERRNO"}),
                errno(libc::EPERM),
            ),
            (
                json!({"defaultAction": "SCMP_ACT_KILL_PROCESS"}),
                KILL_PROCESS,
            ),
            (json!({"defaultAction": "SCMP_ACT_KILL"}), KILL_THREAD),
            (
                json!({"defaultAction": "SCMP_ACT_TRAP"}),
                libc::SECCOMP_RET_TRAP,
            ),
        ] {
            let mut value = default.clone();
            value["architectures"] = json!([super::super::SUPPORTED_ARCHES[0]]);
            value["syscalls"] =
                json!([{"names": ["read", "exit_group"], "action": "SCMP_ACT_ALLOW"}]);
            let filter = compiled(value);
            assert_eq!(
                ret_nr(&filter, newer, &[]),
                errno(libc::ENOSYS),
                "{default}"
            );
            assert_eq!(
                ret_nr(&filter, newer + 1000, &[]),
                errno(libc::ENOSYS),
                "{default}"
            );
            assert_eq!(
                ret_nr(&filter, u32::MAX, &[]),
                errno(libc::ENOSYS),
                "{default} nr -1"
            );
            assert_eq!(
                ret(&filter, "getcwd", &[]),
                unlisted,
                "{default}: known, unlisted"
            );
            assert_eq!(ret(&filter, "read", &[]), ALLOW, "{default}");
            // Known to the table but above the highest the filter names (exit_group),
            // as runc's stub: a filter older than clone3 lets glibc fall back to clone.
            assert_eq!(
                ret(&filter, "clone3", &[]),
                errno(libc::ENOSYS),
                "{default}: newer than the filter"
            );
        }
        for (default, expected) in [
            ("SCMP_ACT_ALLOW", ALLOW),
            ("SCMP_ACT_LOG", libc::SECCOMP_RET_LOG),
            ("SCMP_ACT_TRACE", libc::SECCOMP_RET_TRACE | 1),
        ] {
            let filter = compiled(json!({"defaultAction": default}));
            assert_eq!(ret_nr(&filter, newer, &[]), expected, "{default}");
        }
    }

    #[test]
    fn without_the_native_architecture_listed_there_is_no_enosys_stub() {
        #[cfg(target_arch = "x86_64")]
        let companion = "SCMP_ARCH_X86";
        #[cfg(target_arch = "aarch64")]
        let companion = "SCMP_ARCH_ARM";
        let newer = max_native_number() as u32 + 1;
        let rules = json!([{"names": ["read", "exit_group"], "action": "SCMP_ACT_ALLOW"}]);
        // runc 1.1 builds its stub per listed architecture: none for these.
        for architectures in [None, Some(json!([])), Some(json!([companion]))] {
            let mut value = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules});
            if let Some(a) = &architectures {
                value["architectures"] = a.clone();
            }
            let filter = compiled(value);
            for nr in [nr("clone3"), newer, u32::MAX] {
                assert_eq!(
                    ret_nr(&filter, nr, &[]),
                    errno(libc::EPERM),
                    "{architectures:?}: {nr}"
                );
            }
            assert_eq!(ret(&filter, "read", &[]), ALLOW, "{architectures:?}");
        }
        for listed in [
            json!(["SCMP_ARCH_NATIVE"]),
            json!([companion, super::super::SUPPORTED_ARCHES[0]]),
        ] {
            let filter = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO",
                "architectures": listed, "syscalls": rules}));
            assert_eq!(ret(&filter, "clone3", &[]), errno(libc::ENOSYS), "{listed}");
        }
    }

    #[test]
    fn compiled_filter_can_be_shared_with_the_init() {
        fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug>() {}
        assert_traits::<CompiledFilter>();
    }

    /// A RuntimeDefault-sized profile: every native syscall but a deny list, the
    /// containerd arg rules, and foreign names as containerd lists them.
    pub(in super::super) fn large_allow_list() -> serde_json::Value {
        const DENIED: &[&str] = &[
            "add_key",
            "bpf",
            "clone",
            "clone3",
            "delete_module",
            "finit_module",
            "getcwd",
            "init_module",
            "kexec_file_load",
            "kexec_load",
            "keyctl",
            "mount",
            "move_mount",
            "open_by_handle_at",
            "open_tree",
            "perf_event_open",
            "personality",
            "pivot_root",
            "ptrace",
            "reboot",
            "request_key",
            "setns",
            "socket",
            "swapoff",
            "swapon",
            "umount2",
            "unshare",
            "userfaultfd",
        ];
        let allowed: Vec<&str> = native_names().filter(|n| !DENIED.contains(n)).collect();
        let namespaces = (libc::CLONE_NEWNS
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUSER
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWCGROUP) as u64;
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": [super::super::SUPPORTED_ARCHES[0]],
            "syscalls": [
                {"names": allowed, "action": "SCMP_ACT_ALLOW"},
                {"names": ["_llseek", "chown32", "fcntl64", "socketcall", "arm_fadvise64_64",
                           "breakpoint", "cacheflush", "set_tls", "sync_file_range2"],
                 "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": namespaces, "valueTwo": 0,
                           "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": libc::AF_VSOCK, "op": "SCMP_CMP_NE"}]},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}
            ]
        })
    }

    #[test]
    fn large_allow_list_fits_the_kernel_limit() {
        let value = large_allow_list();
        let names = value["syscalls"][0]["names"].as_array().unwrap().len();
        let filter = compiled(value);
        println!(
            "large allow-list: {names} native names + arg rules -> {} bpf instructions",
            filter.len()
        );
        assert!(names >= 300, "only {names} names");
        assert!(
            filter.len() <= bpf::MAX_INSNS,
            "{} instructions",
            filter.len()
        );
        assert_eq!(filter.skipped().len(), 9);
        assert_eq!(ret(&filter, "read", &[]), ALLOW);
        assert_eq!(ret(&filter, "getcwd", &[]), errno(libc::EPERM));
        assert_eq!(ret(&filter, "personality", &[8]), ALLOW);
        assert_eq!(
            ret(&filter, "personality", &[0x0040_0000]),
            errno(libc::EPERM)
        );
        let newns = libc::CLONE_NEWNS as u64;
        assert_eq!(ret(&filter, "clone", &[libc::SIGCHLD as u64]), ALLOW);
        assert_eq!(ret(&filter, "clone", &[newns | 17]), errno(libc::EPERM));
        assert_eq!(ret(&filter, "clone3", &[]), errno(libc::ENOSYS));
        assert_eq!(ret(&filter, "socket", &[libc::AF_INET as u64]), ALLOW);
        assert_eq!(
            ret(&filter, "socket", &[libc::AF_VSOCK as u64]),
            errno(libc::EPERM)
        );
    }
}
