#!/usr/bin/env python3
"""Generate runtime/src/seccomp/syscall_table.rs from the libc crate's SYS_* constants.

Usage (from the repository root):

    python3 runtime/src/seccomp/tools/gen_syscall_table.py \
        ~/.cargo/registry/src/*/libc-0.2.*/ > runtime/src/seccomp/syscall_table.rs

The argument is the libc crate source directory (the version in Cargo.lock). The
output is deterministic; re-run it when libc is bumped and review the diff.

Two tables come out:
- NATIVE_*: name -> number for each architecture Stockade runs on natively
  (x86_64 and aarch64, glibc flavour of libc's tables, which are kernel numbers).
- FOREIGN_NAMES: every syscall name known on *any* Linux architecture libc
  describes, plus the few private/multiplexed names libseccomp accepts that libc
  lacks (EXTRA_FOREIGN). A spec name found here but not natively is skipped
  (it cannot be invoked natively); a name found nowhere is refused.

libc lags the kernel, so SUPPLEMENT adds syscalls newer than libc's table.
Since Linux 5.1 (number 424 onward) every architecture except alpha shares the
same numbers, so one supplement serves x86_64 and aarch64. Source: the kernel's
arch/x86/entry/syscalls/syscall_64.tbl and scripts/syscall.tbl of KERNEL_VERSION
(printed into the generated file). When the kernel moves on, compare both tables
with the supplements and bump KERNEL_VERSION.
"""

import os
import re
import sys

# The newest kernel whose syscall tables the supplements below were checked against.
KERNEL_VERSION = "Linux 6.18"

NATIVE_FILES = {
    "x86_64": "src/unix/linux_like/linux/gnu/b64/x86_64/not_x32.rs",
    "aarch64": "src/unix/linux_like/linux/gnu/b64/aarch64/mod.rs",
}

# Syscalls the libc crate does not list yet: (name, number), shared numbering.
SUPPLEMENT = [
    ("cachestat", 451),
    ("fchmodat2", 452),
    ("map_shadow_stack", 453),
    ("futex_wake", 454),
    ("futex_wait", 455),
    ("futex_requeue", 456),
    ("statmount", 457),
    ("listmount", 458),
    ("lsm_get_self_attr", 459),
    ("lsm_set_self_attr", 460),
    ("lsm_list_modules", 461),
    ("mseal", 462),
    ("setxattrat", 463),
    ("getxattrat", 464),
    ("listxattrat", 465),
    ("removexattrat", 466),
    ("open_tree_attr", 467),
    ("file_getattr", 468),
    ("file_setattr", 469),
]

# Removed syscalls whose numbers x86_64 still reserves (arch/x86/entry/syscalls/
# syscall_64.tbl lists them without an entry point; the kernel returns ENOSYS).
# libseccomp resolves them and containerd's/Docker's profiles name them, but libc
# does not define them. Generic-table architectures (aarch64) never had them.
#
# Also syscalls libc simply omits for an architecture although the kernel has them
# (io_pgetevents: x86_64 333, aarch64 292, since Linux 4.18).
NATIVE_SUPPLEMENT = {
    "x86_64": [
        ("create_module", 174),
        ("get_kernel_syms", 177),
        ("query_module", 178),
        ("io_pgetevents", 333),
        # x86_64-only (the generic table has neither): uprobe return and entry
        # trampolines. containerd 2.3's RuntimeDefault allows uretprobe.
        ("uretprobe", 335),  # Linux 6.11
        ("uprobe", 336),  # Linux 6.18
    ],
    "aarch64": [("io_pgetevents", 292)],
}

# Names libseccomp knows on some architecture that libc has no SYS_* for:
# ARM private syscalls (__ARM_NR_*), RISC-V private ones, and socketcall
# multiplexed names that are real syscalls only on a few architectures.
EXTRA_FOREIGN = [
    "breakpoint",
    "set_tls",
    "usr26",
    "usr32",
    "riscv_flush_icache",
    "riscv_hwprobe",
    "recv",
    "send",
]

CONST_RE = re.compile(r"pub const SYS_([a-z0-9_]+)\s*:\s*[A-Za-z_:]+\s*=\s*([^;]+);")


def parse(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for m in CONST_RE.finditer(f.read()):
            out[m.group(1)] = m.group(2).strip()
    return out


def native_table(libc_dir, arch, rel):
    table = {}
    for name, value in parse(os.path.join(libc_dir, rel)).items():
        if not re.fullmatch(r"[0-9]+", value):
            sys.exit(f"{rel}: SYS_{name} = {value} is not a plain number")
        table[name] = int(value)
    for name, nr in SUPPLEMENT + NATIVE_SUPPLEMENT[arch]:
        if name in table and table[name] != nr:
            sys.exit(f"{rel}: SYS_{name} = {table[name]} disagrees with supplement {nr}")
        table[name] = nr
    numbers = {}
    for name, nr in table.items():
        if nr in numbers:
            sys.exit(f"{rel}: {name} and {numbers[nr]} share number {nr}")
        numbers[nr] = name
    return table


def all_names(libc_dir):
    names = set(EXTRA_FOREIGN)
    root = os.path.join(libc_dir, "src/unix/linux_like/linux")
    for dirpath, _, files in os.walk(root):
        for fname in files:
            if fname.endswith(".rs"):
                names.update(parse(os.path.join(dirpath, fname)).keys())
    names.update(name for name, _ in SUPPLEMENT)
    return names


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    libc_dir = sys.argv[1]
    version = os.path.basename(os.path.normpath(libc_dir))
    natives = {arch: native_table(libc_dir, arch, rel) for arch, rel in NATIVE_FILES.items()}
    names = all_names(libc_dir)
    for table in natives.values():
        names.update(table)

    print(f"// @generated by runtime/src/seccomp/tools/gen_syscall_table.py from {version}")
    print("// plus the script's SUPPLEMENT lists and EXTRA_FOREIGN, checked against the")
    print(f"// syscall tables of {KERNEL_VERSION}. Do not edit by hand;")
    print("// regenerate as described in the script's docstring.")
    print()
    for arch, table in natives.items():
        print(f"/// Native {arch} syscalls, sorted by name: (name, number).")
        print(f'#[cfg(target_arch = "{arch}")]')
        print("pub(super) const NATIVE: &[(&str, i64)] = &[")
        for name in sorted(table):
            print(f'    ("{name}", {table[name]}),')
        print("];")
        print()
    print("/// Every syscall name known on any Linux architecture, sorted.")
    print("pub(super) const ALL_ARCHES: &[&str] = &[")
    for name in sorted(names):
        print(f'    "{name}",')
    print("];")


if __name__ == "__main__":
    main()
