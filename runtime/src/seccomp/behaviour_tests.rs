//! Behaviour tests: load compiled filters in forked children and watch the kernel.
//!
//! Seccomp filters cannot be removed, so every filter is loaded in a child process,
//! never in the test process. The child reports through its exit status: 0 when every
//! check passed, otherwise the number of the first failed check; a seccomp kill shows
//! up as death by SIGSYS. No root needed (no_new_privs makes seccomp unprivileged).

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use serde_json::json;

use super::names::max_native_number;
use super::translate::tests::large_allow_list;
use super::{compile, load, CompiledFilter};

/// Exit codes the child uses for its own setup failures.
const SETUP_NO_NEW_PRIVS: i32 = 100;
const SETUP_LOAD: i32 = 101;
const SETUP_CORE_LIMIT: i32 = 102;

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Exited(i32),
    Killed(Signal),
}

fn filter(value: serde_json::Value) -> CompiledFilter {
    compile(&serde_json::from_value(value).expect("test spec must parse"))
        .expect("test spec must compile")
}

/// Run `probe` in a forked child after loading `filter` there.
///
/// The test process is multithreaded, so the child sticks to async-signal-safe work:
/// raw syscalls and `_exit`, no allocation, no locks. `probe` must do the same.
fn run_under(filter: &CompiledFilter, probe: impl Fn() -> i32) -> Outcome {
    // SAFETY: the child only makes raw syscalls (setrlimit, prctl, seccomp, the
    // probe's) and leaves with _exit; it touches no lock or allocator state that
    // another thread of the parent may have held at fork time.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = child(filter, probe);
            // SAFETY: _exit ends the child without running the parent's atexit
            // handlers or flushing its (shared) stdio buffers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None).expect("waitpid") {
            WaitStatus::Exited(_, code) => Outcome::Exited(code),
            WaitStatus::Signaled(_, signal, _) => Outcome::Killed(signal),
            other => panic!("unexpected child status {other:?}"),
        },
    }
}

fn child(filter: &CompiledFilter, probe: impl Fn() -> i32) -> i32 {
    // A seccomp kill dumps core; keep test runs from leaving core files behind.
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the rlimit struct we pass; no memory is retained.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) } != 0 {
        return SETUP_CORE_LIMIT;
    }
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return SETUP_NO_NEW_PRIVS;
    }
    if load(filter).is_err() {
        return SETUP_LOAD;
    }
    probe()
}

/// A raw syscall with up to three integer arguments: Ok(return) or Err(errno).
fn sys(nr: i64, a0: i64, a1: i64, a2: i64) -> Result<i64, i32> {
    // SAFETY: every probe passes integers or pointers to live stack buffers of the
    // stated length; the syscalls used here do not retain them.
    let rc = unsafe { libc::syscall(nr, a0, a1, a2) };
    if rc == -1 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(rc)
    }
}

/// Each check in order; the number of the first one that fails, or 0.
fn checks(results: &[bool]) -> i32 {
    results
        .iter()
        .position(|ok| !ok)
        .map_or(0, |i| i as i32 + 1)
}

fn getcwd() -> Result<i64, i32> {
    let mut buf = [0u8; 256];
    sys(
        libc::SYS_getcwd,
        buf.as_mut_ptr() as i64,
        buf.len() as i64,
        0,
    )
}

#[test]
fn denied_syscall_returns_the_spec_errno_and_others_work() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV}
    ]}));
    let outcome = run_under(&f, || {
        // SAFETY: utsname is plain old data; all-zero is a valid value.
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        let uts_ptr = &mut uts as *mut libc::utsname as i64;
        checks(&[
            getcwd() == Err(libc::EXDEV),
            sys(libc::SYS_getpid, 0, 0, 0).is_ok(),
            sys(libc::SYS_uname, uts_ptr, 0, 0) == Ok(0),
        ])
    });
    assert_eq!(outcome, Outcome::Exited(0));
}

#[test]
fn default_errno_denies_unlisted_and_newer_syscalls_get_enosys() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "architectures": [super::SUPPORTED_ARCHES[0]], "syscalls": [
        {"names": ["exit", "exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"}
    ]}));
    let newer = max_native_number() + 1;
    let outcome = run_under(&f, || {
        checks(&[
            sys(libc::SYS_getpid, 0, 0, 0).is_ok(),
            getcwd() == Err(libc::EPERM),
            sys(newer, 0, 0, 0) == Err(libc::ENOSYS),
            sys(newer + 500, 0, 0, 0) == Err(libc::ENOSYS),
            sys(-1, 0, 0, 0) == Err(libc::ENOSYS),
        ])
    });
    assert_eq!(outcome, Outcome::Exited(0));
}

#[test]
fn arg_filters_deny_only_the_matching_arguments() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EDOM,
         "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOTBLK,
         "args": [{"index": 0, "value": 0xff, "valueTwo": libc::AF_VSOCK,
                   "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV,
         "args": [{"index": 0, "value": 5000, "op": "SCMP_CMP_GT"}]}
    ]}));
    let outcome = run_under(&f, || {
        let unix = sys(
            libc::SYS_socket,
            libc::AF_UNIX.into(),
            libc::SOCK_STREAM.into(),
            0,
        );
        checks(&[
            sys(libc::SYS_personality, 0xffff_ffff, 0, 0) == Err(libc::EDOM),
            sys(
                libc::SYS_socket,
                libc::AF_VSOCK.into(),
                libc::SOCK_STREAM.into(),
                0,
            ) == Err(libc::ENOTBLK),
            unix.is_ok(),
            unix.and_then(|fd| sys(libc::SYS_close, fd, 0, 0)) == Ok(0),
            sys(libc::SYS_close, 6000, 0, 0) == Err(libc::EXDEV),
            sys(libc::SYS_close, 4000, 0, 0) == Err(libc::EBADF),
        ])
    });
    assert_eq!(outcome, Outcome::Exited(0));
}

#[test]
fn every_operator_matches_in_the_kernel() {
    // close(fd) on fds that are not open: a hit returns EXDEV, a miss EBADF. Upper
    // 32 bits make sure the kernel compares all 64 bits (close truncates the fd to
    // 32 bits, 0x7000 is not open in the child).
    const HI: i64 = 0x1_0000_0000;
    let cases: &[(&str, i64, i64, i64, i64)] = &[
        // (op, value, valueTwo, hit, miss)
        ("SCMP_CMP_EQ", HI + 0x7000, 0, HI + 0x7000, 0x7000),
        ("SCMP_CMP_NE", HI + 0x7000, 0, 0x7000, HI + 0x7000),
        ("SCMP_CMP_LT", HI + 0x7000, 0, 0x7001, HI + 0x7000),
        ("SCMP_CMP_LE", HI + 0x7000, 0, HI + 0x7000, HI + 0x7001),
        ("SCMP_CMP_GE", HI + 0x7000, 0, 2 * HI + 0x7000, 0x7fff),
        ("SCMP_CMP_GT", HI + 0x7000, 0, HI + 0x7001, HI + 0x7000),
        (
            "SCMP_CMP_MASKED_EQ",
            3 * HI + 0xf000,
            HI + 0x7000,
            HI + 0x7123,
            0x7000,
        ),
    ];
    for (op, value, value_two, hit, miss) in cases {
        let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV,
             "args": [{"index": 0, "value": value, "valueTwo": value_two, "op": op}]}
        ]}));
        let outcome = run_under(&f, || {
            checks(&[
                sys(libc::SYS_close, *hit, 0, 0) == Err(libc::EXDEV),
                sys(libc::SYS_close, *miss, 0, 0) == Err(libc::EBADF),
            ])
        });
        assert_eq!(outcome, Outcome::Exited(0), "{op}");
    }
}

#[test]
fn each_action_behaves_as_the_kernel_documents() {
    let sigsys = Outcome::Killed(Signal::SIGSYS);
    let cases = [
        ("SCMP_ACT_ALLOW", None, Ok(()), Outcome::Exited(0)),
        ("SCMP_ACT_LOG", None, Ok(()), Outcome::Exited(0)),
        (
            "SCMP_ACT_ERRNO",
            Some(libc::EXDEV),
            Err(libc::EXDEV),
            Outcome::Exited(0),
        ),
        // No tracer attached: the kernel fails the call with ENOSYS (seccomp(2)).
        (
            "SCMP_ACT_TRACE",
            None,
            Err(libc::ENOSYS),
            Outcome::Exited(0),
        ),
        (
            "SCMP_ACT_TRAP",
            None,
            Ok(()),
            Outcome::Killed(Signal::SIGSYS),
        ),
        (
            "SCMP_ACT_KILL",
            None,
            Ok(()),
            Outcome::Killed(Signal::SIGSYS),
        ),
        (
            "SCMP_ACT_KILL_THREAD",
            None,
            Ok(()),
            Outcome::Killed(Signal::SIGSYS),
        ),
        ("SCMP_ACT_KILL_PROCESS", None, Ok(()), sigsys),
    ];
    for (action, errno_ret, expected_errno, expected) in cases {
        let mut entry = json!({"names": ["getppid"], "action": action});
        if let Some(e) = errno_ret {
            entry["errnoRet"] = json!(e);
        }
        let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [entry]}));
        let outcome = run_under(&f, || {
            let got = sys(libc::SYS_getppid, 0, 0, 0).map(|_| ());
            checks(&[got == expected_errno])
        });
        assert_eq!(outcome, expected, "{action}");
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x32_syscalls_kill_the_process() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]}));
    const X32_GETPID: i64 = 0x4000_0000 | 39;
    let outcome = run_under(&f, || {
        let _ = sys(X32_GETPID, 0, 0, 0);
        1
    });
    assert_eq!(outcome, Outcome::Killed(Signal::SIGSYS));
}

#[test]
fn large_allow_list_loads_and_enforces() {
    let f = filter(large_allow_list());
    let outcome = run_under(&f, || {
        checks(&[
            sys(libc::SYS_getpid, 0, 0, 0).is_ok(),
            getcwd() == Err(libc::EPERM),
            sys(libc::SYS_clone3, 0, 0, 0) == Err(libc::ENOSYS),
            sys(libc::SYS_personality, 0xffff_ffff, 0, 0).is_ok(),
            sys(libc::SYS_personality, 0x0040_0000, 0, 0) == Err(libc::EPERM),
            sys(libc::SYS_ptrace, 0, 0, 0) == Err(libc::EPERM),
            sys(
                libc::SYS_socket,
                libc::AF_VSOCK.into(),
                libc::SOCK_STREAM.into(),
                0,
            ) == Err(libc::EPERM),
        ])
    });
    assert_eq!(outcome, Outcome::Exited(0));
}

#[test]
fn supported_flags_are_accepted_by_the_kernel() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                  "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}));
    assert_ne!(f.flags(), 0);
    let outcome = run_under(&f, || checks(&[getcwd() == Err(libc::EPERM)]));
    assert_eq!(outcome, Outcome::Exited(0));
}
