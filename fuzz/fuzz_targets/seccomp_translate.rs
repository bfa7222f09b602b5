//! The seccomp translation: an OCI `linux.seccomp` section (JSON) -> one BPF program.
//!
//! Invariants: compiling never panics; a refusal names the spec field at fault; a
//! program that compiles fits the kernel (<= 4096 insns, only instructions seccomp
//! accepts, every jump inside it, every path ends in a return), and for every syscall
//! the spec names (each with boundary arguments), every other native number, x32
//! numbers, the skipped-syscall number -1 and the i386 ABI, it returns exactly what
//! the spec means (see `stockade_fuzz::seccomp_model`): so it never allows a call the
//! spec denies, nor the reverse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::LinuxSeccomp;
use stockade_fuzz::bpf::{run, SeccompData};
use stockade_fuzz::seccomp_model::{self as model, AUDIT_ARCH_I386, NATIVE_AUDIT_ARCH};

fuzz_target!(|data: &[u8]| {
    // What the runtime hands `compile`: the section as oci-spec parsed it.
    let Ok(spec) = serde_json::from_slice::<LinuxSeccomp>(data) else {
        return;
    };
    let filter = match stockade::seccomp::compile(&spec) {
        Ok(f) => f,
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.starts_with("linux.seccomp") || text.contains("linux.seccomp"),
                "a refusal must name its field: {text}"
            );
            return;
        }
    };
    // A listener exactly when a rule notifies (the runtime then needs listenerPath).
    let notifies = spec
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|s| s.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActNotify);
    assert_eq!(filter.notifies(), notifies);
    assert_eq!(
        filter.flags() & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32 != 0,
        notifies
    );
    assert!(!notifies || spec.listener_path().is_some());
    let program = filter.instructions();
    assert!(!program.is_empty() && program.len() <= stockade_fuzz::bpf::MAX_INSNS);
    let check = |nr: u32, arch: u32, args: [u64; 6]| {
        let data = SeccompData {
            nr,
            arch,
            instruction_pointer: 0,
            args,
        };
        let got = run(program, &data);
        let want = model::expected(&spec, nr, arch, &args);
        assert_eq!(
            got, want,
            "syscall {nr} ({:?}) arch {arch:#x} args {args:x?}: filter returns {got:#x}, the spec means {want:#x}",
            stockade::seccomp::syscall_name(i64::from(nr))
        );
    };
    let max = model::max_native_number();
    for nr in 0..=max + 2 {
        for args in model::probe_args(&spec, nr) {
            check(nr, NATIVE_AUDIT_ARCH, args);
        }
    }
    for nr in [u32::MAX, 1 << 30, (1 << 30) | 39, 0x7fff_ffff, 0xffff_fffe] {
        check(nr, NATIVE_AUDIT_ARCH, [0; 6]);
    }
    for nr in [0, 20, 120, 400] {
        check(nr, AUDIT_ARCH_I386, [0; 6]);
    }
});
