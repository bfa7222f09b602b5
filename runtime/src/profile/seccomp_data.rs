//! The default-deny seccomp allow-list, shipped as data (`profiles/seccomp/*.toml`): one
//! entry per syscall with a one-line justification. It is turned into an OCI
//! `linux.seccomp` so the runtime's ordinary seccomp translator compiles it like any
//! other spec filter.

use oci_spec::runtime::LinuxSeccomp;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum SeccompDataError {
    #[error("cannot build the OCI seccomp filter")]
    BuildOci(#[source] serde_json::Error),
}

/// Filter-wide default for syscalls no entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAction {
    /// Return `default_errno` (EPERM): the caller sees an ordinary error.
    Errno,
    KillProcess,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeccompFilter {
    pub schema: u32,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub default_action: DefaultAction,
    pub default_errno: u32,
    /// OCI architecture names (`SCMP_ARCH_*`). Only native ABIs: a syscall made through
    /// another ABI (e.g. `int $0x80` on x86_64) gets the default action.
    pub architectures: Vec<String>,
    /// Allowed whatever the arguments.
    #[serde(default)]
    pub allow: Vec<AllowedSyscall>,
    /// Allowed only when every condition of one entry holds; entries for the same
    /// syscall are alternatives.
    #[serde(default)]
    pub conditional: Vec<ConditionalSyscall>,
    /// Fail with a chosen errno instead of the default (e.g. `clone3` -> ENOSYS).
    #[serde(default)]
    pub errno: Vec<ErrnoSyscall>,
    /// Denied by the default action; listed to document why, and checked by the linter
    /// never to appear among the allowed.
    #[serde(default)]
    pub deny: Vec<AllowedSyscall>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedSyscall {
    pub name: String,
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == value`.
    MaskedEq,
}

impl ArgOp {
    fn oci_name(self) -> &'static str {
        match self {
            ArgOp::Ne => "SCMP_CMP_NE",
            ArgOp::Lt => "SCMP_CMP_LT",
            ArgOp::Le => "SCMP_CMP_LE",
            ArgOp::Eq => "SCMP_CMP_EQ",
            ArgOp::Ge => "SCMP_CMP_GE",
            ArgOp::Gt => "SCMP_CMP_GT",
            ArgOp::MaskedEq => "SCMP_CMP_MASKED_EQ",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgCondition {
    pub index: u8,
    pub op: ArgOp,
    pub value: u64,
    /// Only for `masked_eq`.
    pub mask: Option<u64>,
}

impl ArgCondition {
    /// The condition as an OCI `linux.seccomp.syscalls[].args[]` entry.
    pub fn to_oci_json(&self) -> serde_json::Value {
        match self.op {
            // OCI / libseccomp: MASKED_EQ takes the mask in `value` and the
            // expected result in `valueTwo`.
            ArgOp::MaskedEq => json!({
                "index": self.index,
                "value": self.mask.unwrap_or(u64::MAX),
                "valueTwo": self.value,
                "op": self.op.oci_name(),
            }),
            _ => json!({ "index": self.index, "value": self.value, "op": self.op.oci_name() }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionalSyscall {
    pub name: String,
    pub why: String,
    pub args: Vec<ArgCondition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrnoSyscall {
    pub name: String,
    pub errno: u32,
    pub why: String,
}

impl SeccompFilter {
    /// Every syscall this filter lets through, with or without conditions.
    pub fn allowed_names(&self) -> impl Iterator<Item = &str> {
        self.allow
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.conditional.iter().map(|s| s.name.as_str()))
    }

    /// Every syscall name the filter mentions, in any list.
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        self.allowed_names()
            .chain(self.errno.iter().map(|s| s.name.as_str()))
            .chain(self.deny.iter().map(|s| s.name.as_str()))
    }

    /// The filter as OCI `linux.seccomp`, in the same shape containerd and Docker emit.
    pub fn to_oci_json(&self) -> serde_json::Value {
        let mut syscalls = Vec::new();
        let plain: Vec<&str> = self.allow.iter().map(|s| s.name.as_str()).collect();
        if !plain.is_empty() {
            syscalls.push(json!({ "names": plain, "action": "SCMP_ACT_ALLOW" }));
        }
        for c in &self.conditional {
            let args: Vec<serde_json::Value> =
                c.args.iter().map(ArgCondition::to_oci_json).collect();
            syscalls.push(json!({ "names": [c.name], "action": "SCMP_ACT_ALLOW", "args": args }));
        }
        for e in &self.errno {
            syscalls.push(
                json!({ "names": [e.name], "action": "SCMP_ACT_ERRNO", "errnoRet": e.errno }),
            );
        }
        let default_action = match self.default_action {
            DefaultAction::Errno => "SCMP_ACT_ERRNO",
            DefaultAction::KillProcess => "SCMP_ACT_KILL_PROCESS",
        };
        json!({
            "defaultAction": default_action,
            "defaultErrnoRet": self.default_errno,
            "architectures": self.architectures,
            "syscalls": syscalls,
        })
    }

    /// The filter as the typed OCI value the spec carries.
    pub fn to_oci(&self) -> Result<LinuxSeccomp, SeccompDataError> {
        serde_json::from_value(self.to_oci_json()).map_err(SeccompDataError::BuildOci)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> SeccompFilter {
        toml::from_str(
            r#"
schema = 1
name = "t"
default_action = "errno"
default_errno = 1
architectures = ["SCMP_ARCH_X86_64"]
allow = [{ name = "read", why = "r" }, { name = "write", why = "w" }]
conditional = [{ name = "clone", why = "c", args = [{ index = 0, op = "masked_eq", mask = 0x7E020000, value = 0 }] }]
errno = [{ name = "clone3", errno = 38, why = "fallback to clone" }]
deny = [{ name = "bpf", why = "kernel attack surface" }]
"#,
        )
        .unwrap()
    }

    #[test]
    fn converts_to_oci_like_docker_does() {
        let oci = filter().to_oci().unwrap();
        let v = serde_json::to_value(&oci).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["defaultErrnoRet"], 1);
        let sc = v["syscalls"].as_array().unwrap();
        assert_eq!(sc[0]["names"], json!(["read", "write"]));
        assert_eq!(sc[1]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(sc[1]["args"][0]["value"], 0x7E02_0000u64);
        assert_eq!(sc[1]["args"][0]["valueTwo"], 0);
        assert_eq!(sc[2]["errnoRet"], 38);
        assert!(!v.to_string().contains("bpf"));
    }
}
