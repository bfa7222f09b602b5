//! Stitch per-action `seccompiler` programs into one seccomp BPF program.
//!
//! See the module documentation of `seccomp` for the layout. Everything here is pure.

use std::collections::BTreeMap;

use seccompiler::{sock_filter, BpfProgram, SeccompAction, SeccompFilter, SeccompRule, TargetArch};

use super::SeccompError;

// Classic BPF opcodes (linux/bpf_common.h); libc has them as u32.
const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JMP_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const JMP_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JMP_JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
#[cfg(target_arch = "x86_64")]
const JMP_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const CLASS_MASK: u16 = 0x07;
const CLASS_JMP: u16 = libc::BPF_JMP as u16;
const CLASS_RET: u16 = libc::BPF_RET as u16;
const JMP_OP_MASK: u16 = 0xf0;

/// Offsets in `struct seccomp_data` (linux/seccomp.h).
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

/// BPF_MAXINSNS (linux/bpf_common.h): the kernel refuses longer seccomp programs.
pub(super) const MAX_INSNS: usize = 4096;

/// AUDIT_ARCH_X86_64 = EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE (linux/audit.h).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_NATIVE: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// AUDIT_ARCH_AARCH64 = EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE (linux/audit.h).
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_NATIVE: u32 = 183 | 0x8000_0000 | 0x4000_0000;
#[cfg(target_arch = "x86_64")]
const TARGET_ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const TARGET_ARCH: TargetArch = TargetArch::aarch64;

/// __X32_SYSCALL_BIT (asm/unistd.h): x32 syscalls arrive with AUDIT_ARCH_X86_64 and
/// this bit set in the number.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// What a rule returns: an action `seccompiler` can build, or
/// `SECCOMP_RET_USER_NOTIF` (`SCMP_ACT_NOTIFY`), which it cannot: a notify group is
/// built with a stand-in action whose returns are then rewritten.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Action {
    Kernel(SeccompAction),
    Notify,
}

impl Action {
    /// The seccomp return value.
    pub(super) fn ret(&self) -> u32 {
        match self {
            Action::Kernel(a) => u32::from(a.clone()),
            Action::Notify => libc::SECCOMP_RET_USER_NOTIF,
        }
    }
}

/// One group: every syscall whose entry has exactly this action.
pub(super) struct Group {
    pub action: Action,
    /// Syscall number -> ORed rules; an empty list matches unconditionally.
    pub rules: BTreeMap<i64, Vec<SeccompRule>>,
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The arch check `seccompiler` puts at the start of every filter it builds.
fn arch_check() -> [sock_filter; 3] {
    [
        stmt(LD_W_ABS, DATA_ARCH),
        jump(JMP_JEQ_K, AUDIT_ARCH_NATIVE, 1, 0),
        stmt(RET_K, libc::SECCOMP_RET_KILL_PROCESS),
    ]
}

/// Arch check, then (x86_64) the x32 check.
fn prologue() -> Vec<sock_filter> {
    let mut prologue = arch_check().to_vec();
    // x32 shares AUDIT_ARCH_X86_64, so the arch check alone lets its syscalls through
    // with numbers the filter below never compares against; kill them outright.
    // nr == -1 (a syscall skipped by a ptracer, or syscall(-1)) is exempt, as in
    // libseccomp: it has every bit set but is no x32 call.
    #[cfg(target_arch = "x86_64")]
    prologue.extend([
        stmt(LD_W_ABS, DATA_NR),
        jump(JMP_JEQ_K, u32::MAX, 2, 0),
        jump(JMP_JSET_K, X32_SYSCALL_BIT, 0, 1),
        stmt(RET_K, libc::SECCOMP_RET_KILL_PROCESS),
    ]);
    prologue
}

/// Reached when no group matched.
fn tail(default: &SeccompAction, enosys_above: Option<u32>) -> Vec<sock_filter> {
    let mut tail = Vec::with_capacity(4);
    if let Some(max) = enosys_above {
        // Numbers newer than our table: ENOSYS so libc falls back (clone3 -> clone).
        tail.extend([
            stmt(LD_W_ABS, DATA_NR),
            jump(JMP_JGT_K, max, 0, 1),
            stmt(RET_K, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        ]);
    }
    tail.push(stmt(RET_K, u32::from(default.clone())));
    tail
}

/// A mismatch action the group never returns, so its RETs can be found and rewritten.
fn sentinel_for(action: &SeccompAction) -> SeccompAction {
    if *action == SeccompAction::KillThread {
        SeccompAction::KillProcess
    } else {
        SeccompAction::KillThread
    }
}

/// Rewrite the placeholder RETs at `at` into jumps to `target`.
fn patch(program: &mut [sock_filter], at: &[usize], target: usize) {
    for &i in at {
        // target > i always (placeholders lie before the block they jump to), and the
        // program is at most MAX_INSNS long, so the offset fits JA's 32-bit k.
        program[i] = stmt(JMP_JA, (target - i - 1) as u32);
    }
}

/// Build the whole program: prologue, `groups` in the given order, tail.
pub(super) fn assemble(
    groups: Vec<Group>,
    default: &SeccompAction,
    enosys_above: Option<u32>,
) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let mut program = prologue();
    let mut placeholders: Vec<usize> = Vec::new();
    for group in groups.into_iter().filter(|g| !g.rules.is_empty()) {
        let match_ret = group.action.ret();
        // A notify group is built with ALLOW as a stand-in (its sentinel is a kill)
        // and every stand-in return becomes USER_NOTIF below.
        let built = match &group.action {
            Action::Kernel(a) => a.clone(),
            Action::Notify => SeccompAction::Allow,
        };
        let built_ret = u32::from(built.clone());
        let sentinel = sentinel_for(&built);
        let sentinel_ret = u32::from(sentinel.clone());
        let filter = SeccompFilter::new(group.rules, sentinel, built, TARGET_ARCH)
            .map_err(SeccompError::Compile)?;
        let compiled: BpfProgram = filter.try_into().map_err(SeccompError::Compile)?;
        let body = strip_arch_check(compiled, program.len())?;

        let start = program.len();
        patch(&mut program, &placeholders, start);
        placeholders.clear();
        for (i, mut insn) in body.into_iter().enumerate() {
            if insn.code == RET_K && insn.k == sentinel_ret {
                placeholders.push(start + i);
            } else if insn.code == RET_K && insn.k == built_ret {
                insn.k = match_ret;
            } else if insn.code == RET_K {
                return Err(SeccompError::MalformedProgram {
                    at: start + i,
                    reason: "group returns an action it was not built with",
                });
            }
            program.push(insn);
        }
        if program.len() > MAX_INSNS {
            return Err(SeccompError::ProgramTooLong {
                len: program.len(),
                max: MAX_INSNS,
            });
        }
    }
    let tail_start = program.len();
    patch(&mut program, &placeholders, tail_start);
    program.extend(tail(default, enosys_above));

    if program.len() > MAX_INSNS {
        return Err(SeccompError::ProgramTooLong {
            len: program.len(),
            max: MAX_INSNS,
        });
    }
    verify(&program)?;
    Ok(program
        .into_iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect())
}

/// Drop `seccompiler`'s arch check from a group after checking it is exactly the one we
/// already emitted; the rest must start by loading the syscall number.
fn strip_arch_check(compiled: BpfProgram, at: usize) -> Result<BpfProgram, SeccompError> {
    let expected = arch_check();
    if compiled.len() <= expected.len() || compiled[..expected.len()] != expected {
        return Err(SeccompError::MalformedProgram {
            at,
            reason: "seccompiler group does not start with the expected arch check",
        });
    }
    let body = compiled[expected.len()..].to_vec();
    if body[0] != stmt(LD_W_ABS, DATA_NR) {
        return Err(SeccompError::MalformedProgram {
            at,
            reason: "seccompiler group does not load the syscall number first",
        });
    }
    Ok(body)
}

/// Every jump lands inside the program and the program ends with a return, which is
/// what the kernel's classic BPF checker (bpf_check_classic) will insist on at load
/// time; checking here turns a stitching bug into an error in the parent.
fn verify(program: &[sock_filter]) -> Result<(), SeccompError> {
    let len = program.len();
    for (i, insn) in program.iter().enumerate() {
        if insn.code & CLASS_MASK != CLASS_JMP {
            continue;
        }
        let next = i + 1;
        let in_bounds = if insn.code & JMP_OP_MASK == libc::BPF_JA as u16 {
            next.checked_add(insn.k as usize).is_some_and(|t| t < len)
        } else {
            next + usize::from(insn.jt) < len && next + usize::from(insn.jf) < len
        };
        if !in_bounds {
            return Err(SeccompError::MalformedProgram {
                at: i,
                reason: "jump target outside the program",
            });
        }
    }
    match program.last() {
        Some(last) if last.code & CLASS_MASK == CLASS_RET => Ok(()),
        _ => Err(SeccompError::MalformedProgram {
            at: len.saturating_sub(1),
            reason: "program does not end with a return",
        }),
    }
}

/// A classic BPF interpreter for the subset the filters use, so tests can check what a
/// program returns for a syscall without loading it.
#[cfg(test)]
pub(super) fn evaluate(program: &[libc::sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = Vec::with_capacity(64);
    data.extend_from_slice(&nr.to_ne_bytes());
    data.extend_from_slice(&arch.to_ne_bytes());
    data.extend_from_slice(&0u64.to_ne_bytes());
    for arg in args {
        data.extend_from_slice(&arg.to_ne_bytes());
    }
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    loop {
        let insn = program[pc];
        pc += 1;
        match insn.code {
            LD_W_ABS => {
                let at = insn.k as usize;
                acc = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
            }
            c if c == (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16 => acc &= insn.k,
            JMP_JA => pc += insn.k as usize,
            JMP_JEQ_K | JMP_JGT_K => {
                let taken = if insn.code == JMP_JEQ_K {
                    acc == insn.k
                } else {
                    acc > insn.k
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
            c if c == (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16 => {
                pc += usize::from(if acc >= insn.k { insn.jt } else { insn.jf });
            }
            c if c == (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16 => {
                pc += usize::from(if acc & insn.k != 0 { insn.jt } else { insn.jf });
            }
            RET_K => return insn.k,
            other => panic!("unexpected bpf opcode {other:#x} at {}", pc - 1),
        }
    }
}

#[cfg(test)]
pub(super) const NATIVE_AUDIT_ARCH: u32 = AUDIT_ARCH_NATIVE;

#[cfg(test)]
mod tests {
    use super::*;

    fn to_libc(program: &[sock_filter]) -> Vec<libc::sock_filter> {
        program
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect()
    }

    #[test]
    fn verify_rejects_jumps_outside_the_program() {
        let program = [stmt(JMP_JA, 5), stmt(RET_K, 0)];
        assert!(matches!(
            verify(&program),
            Err(SeccompError::MalformedProgram { at: 0, .. })
        ));
        let program = [jump(JMP_JEQ_K, 1, 0, 1), stmt(RET_K, 0)];
        assert!(verify(&program).is_err());
        let program = [stmt(LD_W_ABS, 0)];
        assert!(verify(&program).is_err());
    }

    #[test]
    fn empty_groups_give_prologue_and_tail_only() {
        let program = assemble(vec![], &SeccompAction::Allow, None).unwrap();
        assert_eq!(program.len(), prologue().len() + 1);
        let prologue = to_libc(&prologue());
        assert_eq!(
            evaluate(&program, 0, AUDIT_ARCH_NATIVE, [0; 6]),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            evaluate(&prologue, 0, 0x4000_0003, [0; 6]),
            libc::SECCOMP_RET_KILL_PROCESS,
            "i386 audit arch is killed"
        );
    }

    #[test]
    fn long_groups_stitch_with_valid_jumps() {
        // Many syscalls with long AND rules in several groups: far more than 255
        // instructions between a group's placeholders and the next group.
        let cond = |v| {
            seccompiler::SeccompCondition::new(
                0,
                seccompiler::SeccompCmpArgLen::Qword,
                seccompiler::SeccompCmpOp::MaskedEq(0xff),
                v,
            )
            .unwrap()
        };
        let rule = |v| SeccompRule::new((0..40).map(|_| cond(v)).collect()).unwrap();
        let groups: Vec<Group> = [SeccompAction::Errno(1), SeccompAction::Errno(2)]
            .into_iter()
            .enumerate()
            .map(|(g, action)| Group {
                action: Action::Kernel(action),
                rules: (0..6i64)
                    .map(|nr| (nr + g as i64 * 10, vec![rule(7)]))
                    .collect(),
            })
            .collect();
        let program = assemble(groups, &SeccompAction::Allow, None).unwrap();
        assert!(program.len() > 2 * 255, "len {}", program.len());
        let arch = AUDIT_ARCH_NATIVE;
        assert_eq!(
            evaluate(&program, 3, arch, [7, 0, 0, 0, 0, 0]),
            libc::SECCOMP_RET_ERRNO | 1
        );
        assert_eq!(
            evaluate(&program, 3, arch, [8, 0, 0, 0, 0, 0]),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            evaluate(&program, 15, arch, [7, 0, 0, 0, 0, 0]),
            libc::SECCOMP_RET_ERRNO | 2
        );
        assert_eq!(
            evaluate(&program, 15, arch, [0x107, 0, 0, 0, 0, 0]),
            libc::SECCOMP_RET_ERRNO | 2
        );
        assert_eq!(
            evaluate(&program, 99, arch, [7, 0, 0, 0, 0, 0]),
            libc::SECCOMP_RET_ALLOW
        );
    }
}
