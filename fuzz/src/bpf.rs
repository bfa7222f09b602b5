//! A classic-BPF interpreter for seccomp programs, independent of the runtime's own
//! test evaluator: it knows the instructions the kernel's seccomp checker accepts
//! (net/core/filter.c `seccomp_check_filter`) and panics on anything else, on a jump
//! out of the program and on running off its end, as the kernel would refuse them.

/// The data a seccomp filter sees (struct seccomp_data, little-endian).
#[derive(Debug, Clone, Copy)]
pub struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    fn word(&self, offset: u32) -> u32 {
        let lo = |v: u64| v as u32;
        let hi = |v: u64| (v >> 32) as u32;
        match offset {
            0 => self.nr,
            4 => self.arch,
            8 => lo(self.instruction_pointer),
            12 => hi(self.instruction_pointer),
            16..=60 if offset.is_multiple_of(4) => {
                let arg = self.args[((offset - 16) / 8) as usize];
                if offset.is_multiple_of(8) {
                    lo(arg)
                } else {
                    hi(arg)
                }
            }
            _ => panic!("BPF load at offset {offset} outside struct seccomp_data"),
        }
    }
}

/// The kernel's limit on a seccomp program (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// Run `program` on `data`; the return value the kernel would act on.
pub fn run(program: &[libc::sock_filter], data: &SeccompData) -> u32 {
    assert!(!program.is_empty(), "empty program");
    assert!(
        program.len() <= MAX_INSNS,
        "program of {} insns",
        program.len()
    );
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    loop {
        let ins = program
            .get(pc)
            .unwrap_or_else(|| panic!("pc {pc} ran off a program of {}", program.len()));
        let k = ins.k;
        let code = u32::from(ins.code);
        let class = code & 0x07;
        pc += 1;
        match class {
            // BPF_LD
            0x00 => match code {
                0x20 => a = data.word(k),         // LD W ABS
                0x00 => a = k,                    // LD IMM
                0x80 => a = 64,                   // LD W LEN (sizeof seccomp_data)
                0x60 => a = mem[k as usize & 15], // LD MEM
                _ => panic!("unsupported BPF_LD opcode {code:#x}"),
            },
            // BPF_LDX
            0x01 => match code {
                0x01 => x = k,
                0x81 => x = 64,
                0x61 => x = mem[k as usize & 15],
                _ => panic!("unsupported BPF_LDX opcode {code:#x}"),
            },
            0x02 => mem[k as usize & 15] = a, // ST
            0x03 => mem[k as usize & 15] = x, // STX
            // BPF_ALU
            0x04 => {
                let src = if code & 0x08 != 0 { x } else { k };
                a = match code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    0x30 => a.checked_div(src).expect("BPF division by zero"),
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.checked_shl(src).unwrap_or(0),
                    0x70 => a.checked_shr(src).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 => a.checked_rem(src).expect("BPF modulo by zero"),
                    0xa0 => a ^ src,
                    _ => panic!("unsupported BPF_ALU opcode {code:#x}"),
                };
            }
            // BPF_JMP
            0x05 => {
                let op = code & 0xf0;
                if op == 0x00 {
                    pc += k as usize; // JA
                } else {
                    let src = if code & 0x08 != 0 { x } else { k };
                    let taken = match op {
                        0x10 => a == src,
                        0x20 => a > src,
                        0x30 => a >= src,
                        0x40 => a & src != 0,
                        _ => panic!("unsupported BPF_JMP opcode {code:#x}"),
                    };
                    pc += usize::from(if taken { ins.jt } else { ins.jf });
                }
                assert!(pc < program.len(), "jump past the end of the program");
            }
            // BPF_RET
            0x06 => {
                return match code & 0x18 {
                    0x00 => k, // RET K
                    0x10 => a, // RET A
                    _ => panic!("unsupported BPF_RET opcode {code:#x}"),
                };
            }
            // BPF_MISC
            0x07 => match code {
                0x07 => x = a, // TAX
                0x87 => a = x, // TXA
                _ => panic!("unsupported BPF_MISC opcode {code:#x}"),
            },
            _ => unreachable!("class is 3 bits"),
        }
    }
}
