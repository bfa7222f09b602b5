//! The binary's entry point on x86-64: for a verb that enters a container, re-execute
//! from the read-only bind mount of this very binary before the C library starts.
//!
//! A container-entering invocation must run from a binary nothing can open for
//! writing (CVE-2019-5736, see [`stockade::self_protect`]), so an invocation started
//! from the installed, writable file executes itself a second time, from
//! `/run/stockade/bin/<dev>-<ino>/stockade`. Done from `main`, the first image paid
//! for everything that precedes `main` and that the second image pays again: the
//! relocation of a static PIE (~20,000 relocations, ~90 pages written), glibc's
//! start-up (its CPU feature probing executes CPUID 43 times, and each traps to the
//! hypervisor on a virtual machine: ~4 µs each on the development VM) and Rust's
//! runtime set-up: ~1 ms of a ~8 ms `run` (bench/README.md, "The re-execution before
//! the C library").
//!
//! This entry point runs first, with nothing relocated or initialised, so it is
//! assembly: position-independent code that reads only its own constants, the
//! process's initial stack and the results of five system calls. When any argument
//! names an entering verb (the same rule as `main`) and `/proc/self/exe` is not on a
//! read-only mount, it looks for the protected copy that an earlier invocation
//! mounted (`self_protect::prepare_protected_binary`) and executes it with the same
//! arguments and environment, but only if that path has the very device and inode of
//! the running binary and is on a read-only mount. In every other case (no such
//! mount yet, a replaced binary, any error, execve failing) it hands over to the C
//! library's `_start` unchanged, and `main` protects the invocation as before: it
//! makes the mount or falls back to a sealed copy. So this path only ever skips work,
//! never a check.

use stockade::self_protect::{PROTECTED_BINARY_DIR, PROTECTED_BINARY_NAME};

use crate::ENTERING_VERBS;

/// The path's prefix, `PROTECTED_BINARY_DIR` and a slash.
const DIR_PARTS: &[&str] = &[PROTECTED_BINARY_DIR, "/"];
/// The path's last component, after `<dev>-<ino>`.
const NAME_PARTS: &[&str] = &["/", PROTECTED_BINARY_NAME];

static DIR_PREFIX: [u8; c_len(DIR_PARTS)] = c_string(DIR_PARTS);
static BINARY_SUFFIX: [u8; c_len(NAME_PARTS)] = c_string(NAME_PARTS);
static VERB_0: [u8; c_len(&[ENTERING_VERBS[0]])] = c_string(&[ENTERING_VERBS[0]]);
static VERB_1: [u8; c_len(&[ENTERING_VERBS[1]])] = c_string(&[ENTERING_VERBS[1]]);
static VERB_2: [u8; c_len(&[ENTERING_VERBS[2]])] = c_string(&[ENTERING_VERBS[2]]);
static SELF_EXE: [u8; 15] = *b"/proc/self/exe\0";
static HEX_DIGITS: [u8; 16] = *b"0123456789abcdef";

// The scratch frame below the entry stack: the path, a `struct stat`, a `struct statfs`.
const PATH: usize = 0;
const STAT: usize = 128;
const STATFS: usize = 288;
const FRAME: usize = 512;
/// `f_flags` of the kernel's `struct statfs` follows `f_frsize` (statfs(2), Linux
/// 2.6.36); the libc crate's struct keeps it among its private spare words.
const F_FLAGS: usize =
    std::mem::offset_of!(libc::statfs, f_frsize) + std::mem::size_of::<libc::__fsword_t>();
const _: () = {
    assert!(
        ENTERING_VERBS.len() == 3,
        "the entry point compares three verbs"
    );
    // The prefix, two u64 in hex, a dash, the suffix with its NUL.
    assert!(c_len(DIR_PARTS) - 1 + 16 + 1 + 16 + c_len(NAME_PARTS) <= STAT - PATH);
    assert!(std::mem::size_of::<libc::stat>() <= STATFS - STAT);
    assert!(STATFS + std::mem::size_of::<libc::statfs>() <= FRAME);
};

/// The length of `parts` concatenated, with a terminating NUL.
const fn c_len(parts: &[&str]) -> usize {
    let mut n = 1;
    let mut i = 0;
    while i < parts.len() {
        n += parts[i].len();
        i += 1;
    }
    n
}

/// `parts` concatenated and NUL-terminated; `N` is [`c_len`] of them.
const fn c_string<const N: usize>(parts: &[&str]) -> [u8; N] {
    assert!(N == c_len(parts));
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < parts.len() {
        let bytes = parts[i].as_bytes();
        let mut j = 0;
        while j < bytes.len() {
            assert!(bytes[j] != 0, "a NUL inside a C string");
            out[at] = bytes[j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

// Register use: r15 keeps rdx (the dynamic loader's termination function, 0 in a
// static binary) and r14 the entry stack pointer, both handed to `_start` as they
// came; rbx holds argc, r13 argv, r12 the argument index, r8/r9 the binary's
// st_dev/st_ino. The frame (`PATH`, `STAT`, `STATFS`) lies below the entry stack.
// System calls clobber only rax, rcx and r11. Labels are named: numeric ones made of
// 0s and 1s read as binary literals in Intel syntax.
//
// SAFETY: this code runs before anything else and hands the process to `_start`
// exactly as the kernel (or the dynamic loader) started it: rsp and rdx restored,
// every other register being undefined at an ELF entry. It reads the initial stack
// only within argc and the strings it points to (NUL-terminated by the kernel),
// writes only its own frame below the entry stack (the path's bound is checked at
// compile time above), addresses its constants RIP-relative (no relocation, which
// has not happened yet in a static PIE), and calls nothing but the kernel.
std::arch::global_asm!(
    ".pushsection .text.stockade_entry,\"ax\",@progbits",
    ".globl stockade_entry",
    ".type stockade_entry,@function",
    "stockade_entry:",
    "    mov r15, rdx",
    "    mov r14, rsp",
    "    mov rbx, qword ptr [rsp]",
    "    lea r13, [rsp + 8]",
    "    sub rsp, {FRAME}",
    "    and rsp, -16",
    // Any argument equal to an entering verb (`main`'s rule), from argv[1] on.
    "    mov r12, 1",
    ".Lstockade_next_arg:",
    "    cmp r12, rbx",
    "    jae .Lstockade_start",
    "    mov rsi, qword ptr [r13 + r12*8]",
    "    lea rdi, [rip + {verb0}]",
    "    call .Lstockade_streq",
    "    je .Lstockade_entering",
    "    lea rdi, [rip + {verb1}]",
    "    call .Lstockade_streq",
    "    je .Lstockade_entering",
    "    lea rdi, [rip + {verb2}]",
    "    call .Lstockade_streq",
    "    je .Lstockade_entering",
    "    inc r12",
    "    jmp .Lstockade_next_arg",
    // Nothing to do if the binary already runs from a read-only mount (the second
    // image), or if statfs fails.
    ".Lstockade_entering:",
    "    mov eax, {SYS_statfs}",
    "    lea rdi, [rip + {self_exe}]",
    "    lea rsi, [rsp + {STATFS}]",
    "    syscall",
    "    test rax, rax",
    "    jnz .Lstockade_start",
    "    test qword ptr [rsp + {STATFS} + {F_FLAGS}], {ST_RDONLY}",
    "    jnz .Lstockade_start",
    // The running binary's identity names its protected copy.
    "    mov eax, {SYS_stat}",
    "    lea rdi, [rip + {self_exe}]",
    "    lea rsi, [rsp + {STAT}]",
    "    syscall",
    "    test rax, rax",
    "    jnz .Lstockade_start",
    "    mov r8, qword ptr [rsp + {STAT} + {ST_DEV}]",
    "    mov r9, qword ptr [rsp + {STAT} + {ST_INO}]",
    "    lea rdi, [rsp + {PATH}]",
    "    lea rsi, [rip + {dir_prefix}]",
    "    call .Lstockade_strcpy",
    "    mov rax, r8",
    "    call .Lstockade_hex",
    "    mov byte ptr [rdi], 0x2d",
    "    inc rdi",
    "    mov rax, r9",
    "    call .Lstockade_hex",
    "    lea rsi, [rip + {binary_suffix}]",
    "    call .Lstockade_strcpy",
    // Only the very same file, and only on a read-only mount.
    "    mov eax, {SYS_stat}",
    "    lea rdi, [rsp + {PATH}]",
    "    lea rsi, [rsp + {STAT}]",
    "    syscall",
    "    test rax, rax",
    "    jnz .Lstockade_start",
    "    cmp qword ptr [rsp + {STAT} + {ST_DEV}], r8",
    "    jne .Lstockade_start",
    "    cmp qword ptr [rsp + {STAT} + {ST_INO}], r9",
    "    jne .Lstockade_start",
    "    mov eax, {SYS_statfs}",
    "    lea rdi, [rsp + {PATH}]",
    "    lea rsi, [rsp + {STATFS}]",
    "    syscall",
    "    test rax, rax",
    "    jnz .Lstockade_start",
    "    test qword ptr [rsp + {STATFS} + {F_FLAGS}], {ST_RDONLY}",
    "    jz .Lstockade_start",
    // execve(path, argv, envp); envp follows argv's terminating NULL.
    "    mov eax, {SYS_execve}",
    "    lea rdi, [rsp + {PATH}]",
    "    mov rsi, r13",
    "    lea rdx, [r13 + rbx*8 + 8]",
    "    syscall",
    // Returned: it failed. Start normally; `main` protects the invocation.
    ".Lstockade_start:",
    "    mov rsp, r14",
    "    mov rdx, r15",
    "    jmp _start",
    // Compare the NUL-terminated strings at rdi and rsi: ZF set when equal.
    ".Lstockade_streq:",
    "    mov al, byte ptr [rdi]",
    "    cmp al, byte ptr [rsi]",
    "    jne .Lstockade_streq_done",
    "    test al, al",
    "    jz .Lstockade_streq_done",
    "    inc rdi",
    "    inc rsi",
    "    jmp .Lstockade_streq",
    ".Lstockade_streq_done:",
    "    ret",
    // Copy the NUL-terminated string at rsi to rdi; rdi is left at the copied NUL.
    ".Lstockade_strcpy:",
    "    mov al, byte ptr [rsi]",
    "    mov byte ptr [rdi], al",
    "    test al, al",
    "    jz .Lstockade_strcpy_done",
    "    inc rsi",
    "    inc rdi",
    "    jmp .Lstockade_strcpy",
    ".Lstockade_strcpy_done:",
    "    ret",
    // Write rax in lower-case hex without leading zeros (Rust's `{:x}`) at rdi,
    // advancing rdi. Clobbers rcx, rdx, r10, r11.
    ".Lstockade_hex:",
    "    mov ecx, 60",
    "    xor edx, edx",
    ".Lstockade_hex_digit:",
    "    mov r10, rax",
    "    shr r10, cl",
    "    and r10d, 15",
    "    or edx, r10d",
    "    jnz .Lstockade_hex_put",
    "    test ecx, ecx",
    "    jnz .Lstockade_hex_skip",
    ".Lstockade_hex_put:",
    "    lea r11, [rip + {hex_digits}]",
    "    movzx r10d, byte ptr [r11 + r10]",
    "    mov byte ptr [rdi], r10b",
    "    inc rdi",
    ".Lstockade_hex_skip:",
    "    sub ecx, 4",
    "    jns .Lstockade_hex_digit",
    "    ret",
    ".size stockade_entry, . - stockade_entry",
    ".popsection",
    verb0 = sym VERB_0,
    verb1 = sym VERB_1,
    verb2 = sym VERB_2,
    self_exe = sym SELF_EXE,
    dir_prefix = sym DIR_PREFIX,
    binary_suffix = sym BINARY_SUFFIX,
    hex_digits = sym HEX_DIGITS,
    SYS_statfs = const libc::SYS_statfs,
    SYS_stat = const libc::SYS_stat,
    SYS_execve = const libc::SYS_execve,
    F_FLAGS = const F_FLAGS,
    ST_RDONLY = const libc::ST_RDONLY,
    ST_DEV = const std::mem::offset_of!(libc::stat, st_dev),
    ST_INO = const std::mem::offset_of!(libc::stat, st_ino),
    PATH = const PATH,
    STAT = const STAT,
    STATFS = const STATFS,
    FRAME = const FRAME,
);
