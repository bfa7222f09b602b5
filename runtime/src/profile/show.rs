//! `stockade profile show P`: a profile's effective seccomp allow-list, compiled with the
//! runtime's own translator, and the length of the BPF program every container of the
//! profile loads. Pure apart from the compilation, which makes no syscalls.

use serde::Serialize;
use std::fmt;

use super::schema::Profile;
use super::seccomp_data::{ArgOp, DefaultAction, SeccompDataError};

#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    #[error("cannot build the filter of profile {profile:?}")]
    Build {
        profile: String,
        #[source]
        source: SeccompDataError,
    },
    #[error("cannot compile the filter of profile {profile:?}")]
    Compile {
        profile: String,
        #[source]
        source: crate::seccomp::SeccompError,
    },
}

/// The filter a container without its own gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeccompShow {
    /// The filter's name and the file the profile names.
    pub filter: String,
    pub default_filter: String,
    /// What an unlisted syscall gets (`errno 1`, `kill_process`).
    pub default_action: String,
    pub architectures: Vec<String>,
    /// Allowed whatever the arguments, sorted.
    pub allow: Vec<String>,
    /// Allowed only with these arguments (`clone: arg0 & 0x7e020000 == 0`).
    pub conditional: Vec<String>,
    /// Failing with a chosen errno (`clone3: errno 38`).
    pub errno: Vec<String>,
    /// Instructions of the compiled BPF program (the kernel's limit is 4096).
    pub bpf_instructions: usize,
}

fn op(o: ArgOp) -> &'static str {
    match o {
        ArgOp::Ne => "!=",
        ArgOp::Lt => "<",
        ArgOp::Le => "<=",
        ArgOp::Eq => "==",
        ArgOp::Ge => ">=",
        ArgOp::Gt => ">",
        ArgOp::MaskedEq => "==",
    }
}

/// The profile's default filter, or `None` when it has no `[seccomp]` section.
pub fn seccomp(p: &Profile) -> Result<Option<SeccompShow>, ShowError> {
    let (Some(section), Some(f)) = (&p.seccomp, &p.seccomp_filter) else {
        return Ok(None);
    };
    let oci = f.to_oci().map_err(|source| ShowError::Build {
        profile: p.name.clone(),
        source,
    })?;
    let compiled = crate::seccomp::compile(&oci).map_err(|source| ShowError::Compile {
        profile: p.name.clone(),
        source,
    })?;
    let mut allow: Vec<String> = f.allow.iter().map(|a| a.name.clone()).collect();
    allow.sort();
    let conditional = f
        .conditional
        .iter()
        .map(|c| {
            let args: Vec<String> = c
                .args
                .iter()
                .map(|a| match a.mask {
                    Some(m) => format!("arg{} & {m:#x} {} {:#x}", a.index, op(a.op), a.value),
                    None => format!("arg{} {} {:#x}", a.index, op(a.op), a.value),
                })
                .collect();
            format!("{}: {}", c.name, args.join(" && "))
        })
        .collect();
    let errno = f
        .errno
        .iter()
        .map(|e| format!("{}: errno {}", e.name, e.errno))
        .collect();
    Ok(Some(SeccompShow {
        filter: f.name.clone(),
        default_filter: section.default_filter.clone(),
        default_action: match f.default_action {
            DefaultAction::Errno => format!("errno {}", f.default_errno),
            DefaultAction::KillProcess => "kill_process".to_owned(),
        },
        architectures: f.architectures.clone(),
        allow,
        conditional,
        errno,
        bpf_instructions: compiled.len(),
    }))
}

impl fmt::Display for SeccompShow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seccomp filter {:?} ({}, relative to the profile's directory)",
            self.filter, self.default_filter
        )?;
        writeln!(f, "  default action: {}", self.default_action)?;
        writeln!(f, "  architectures: {}", self.architectures.join(", "))?;
        writeln!(
            f,
            "  BPF program: {} instructions (kernel limit 4096)",
            self.bpf_instructions
        )?;
        writeln!(f, "  allowed ({}):", self.allow.len())?;
        for name in &self.allow {
            writeln!(f, "    {name}")?;
        }
        writeln!(f, "  allowed with arguments ({}):", self.conditional.len())?;
        for c in &self.conditional {
            writeln!(f, "    {c}")?;
        }
        write!(f, "  failing with an errno ({}):", self.errno.len())?;
        for e in &self.errno {
            write!(f, "\n    {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::tests::shipped;

    #[test]
    fn shows_the_default_filter_and_its_program_length() {
        let s = seccomp(&shipped("default")).unwrap().unwrap();
        assert!(s.allow.contains(&"read".to_owned()));
        assert!(!s.allow.contains(&"bpf".to_owned()));
        assert!(s.allow.windows(2).all(|w| w[0] <= w[1]));
        assert!(
            s.bpf_instructions > 100 && s.bpf_instructions < 4096,
            "{}",
            s.bpf_instructions
        );
        assert_eq!(seccomp(&shipped("unconfined")).unwrap(), None);
    }
}
