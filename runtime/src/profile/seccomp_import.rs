//! Import an existing Docker / OCI seccomp JSON profile as Stockade seccomp data, so a
//! security team can start from the filter it already ships. What cannot be expressed as
//! a default-deny allow-list (capability-conditional rules, foreign architectures, log or
//! notify actions, unknown names) is dropped and reported, never widened.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use super::schema::SCHEMA_VERSION;
use super::seccomp_data::{
    AllowedSyscall, ArgCondition, ArgOp, ConditionalSyscall, DefaultAction, ErrnoSyscall,
    SeccompFilter,
};

/// Architectures a filter may name: the native ABIs Stockade runs on.
const NATIVE_ARCHES: [&str; 2] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"];
/// How Docker's `includes.arches` spells them.
const NATIVE_ARCH_ALIASES: [&str; 4] = ["amd64", "x86_64", "arm64", "aarch64"];

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot parse seccomp JSON")]
    Parse(#[source] serde_json::Error),
    #[error("default action {0} lets unlisted syscalls run: not a default-deny filter")]
    PermissiveDefault(String),
    #[error("unknown seccomp action {0}")]
    UnknownAction(String),
    #[error("unknown seccomp operator {0}")]
    UnknownOperator(String),
}

// Docker's and the OCI runtime spec's shared shape; unknown keys are ignored on purpose
// (comments, future libseccomp flags): the importer reports what it dropped instead.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Json {
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    syscalls: Vec<JsonRule>,
}

#[derive(Deserialize)]
struct ArchMap {
    architecture: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonRule {
    #[serde(default)]
    names: Vec<String>,
    name: Option<String>,
    action: String,
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<JsonArg>,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    includes: Filter,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonArg {
    index: u8,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

/// Why part of the input was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Dropped {
    /// Allowed only for containers holding these capabilities.
    NeedsCapabilities {
        names: Vec<String>,
        caps: Vec<String>,
    },
    /// Rule for other architectures only.
    ForeignArchitecture {
        names: Vec<String>,
        arches: Vec<String>,
    },
    /// Architecture not native to Stockade's targets.
    Architecture { name: String },
    /// Real syscalls, but of other ABIs only (`chown32`, `socketcall`...): they cannot
    /// be called natively, so leaving them out changes nothing. One summary entry.
    OtherAbiOnly { names: Vec<String> },
    /// Left out because the caller said `--exclude`.
    Excluded { names: Vec<String> },
    /// LOG / TRACE / NOTIFY rules: not allow-or-deny; left to the default (deny).
    UnsupportedAction { names: Vec<String>, action: String },
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[String]| v.join(", ");
        match self {
            Dropped::NeedsCapabilities { names, caps } => write!(
                f,
                "{}: allowed by the source only to containers holding {}; denied here",
                list(names),
                list(caps)
            ),
            Dropped::ForeignArchitecture { names, arches } => write!(
                f,
                "{}: rule for architectures {} only",
                list(names),
                list(arches)
            ),
            Dropped::Architecture { name } => write!(
                f,
                "architecture {name}: not native here; its syscalls get the default action"
            ),
            Dropped::OtherAbiOnly { names } => write!(
                f,
                "{} {} only on other ABIs (not callable natively, nothing lost): {}",
                names.len(),
                if names.len() == 1 {
                    "name exists"
                } else {
                    "names exist"
                },
                list(names)
            ),
            Dropped::Excluded { names } => write!(f, "excluded on request: {}", list(names)),
            Dropped::UnsupportedAction { names, action } => {
                let what = match action.as_str() {
                    "SCMP_ACT_LOG" => "allowed and logged by the source (an audit rule)",
                    "SCMP_ACT_TRACE" => "handed to a ptrace tracer by the source",
                    "SCMP_ACT_NOTIFY" => "handed to a user-space supervisor by the source",
                    _ => "an action Stockade does not import",
                };
                write!(
                    f,
                    "{}: {action}, {what}; denied here by the default action",
                    list(names)
                )
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub filter: SeccompFilter,
    pub dropped: Vec<Dropped>,
    /// Names that are not a syscall on any architecture (misspelt, or newer than our
    /// table): an error for the caller to resolve, never silently dropped.
    pub unknown: Vec<String>,
}

fn op(name: &str) -> Result<ArgOp, ImportError> {
    Ok(match name {
        "SCMP_CMP_NE" => ArgOp::Ne,
        "SCMP_CMP_LT" => ArgOp::Lt,
        "SCMP_CMP_LE" => ArgOp::Le,
        "SCMP_CMP_EQ" => ArgOp::Eq,
        "SCMP_CMP_GE" => ArgOp::Ge,
        "SCMP_CMP_GT" => ArgOp::Gt,
        "SCMP_CMP_MASKED_EQ" => ArgOp::MaskedEq,
        other => return Err(ImportError::UnknownOperator(other.to_owned())),
    })
}

/// Convert Docker / OCI seccomp JSON. `source` is quoted in imported justifications;
/// names in `exclude` are left out (and reported).
pub fn import(
    json: &str,
    name: &str,
    source: &str,
    exclude: &[String],
) -> Result<Imported, ImportError> {
    let j: Json = serde_json::from_str(json).map_err(ImportError::Parse)?;
    let default_action = match j.default_action.as_str() {
        "SCMP_ACT_ERRNO" => DefaultAction::Errno,
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" | "SCMP_ACT_KILL_PROCESS" | "SCMP_ACT_TRAP" => {
            DefaultAction::KillProcess
        }
        other => return Err(ImportError::PermissiveDefault(other.to_owned())),
    };
    let mut dropped = Vec::new();
    let mut architectures = Vec::new();
    let arches = j
        .arch_map
        .iter()
        .map(|a| a.architecture.clone())
        .chain(j.architectures.iter().cloned());
    for a in arches {
        if NATIVE_ARCHES.contains(&a.as_str()) {
            if !architectures.contains(&a) {
                architectures.push(a);
            }
        } else {
            dropped.push(Dropped::Architecture { name: a });
        }
    }
    let mut filter = SeccompFilter {
        schema: SCHEMA_VERSION,
        name: name.to_owned(),
        description: format!("imported from {source}"),
        default_action,
        default_errno: j.default_errno_ret.unwrap_or(1),
        architectures,
        allow: Vec::new(),
        conditional: Vec::new(),
        errno: Vec::new(),
        deny: Vec::new(),
    };
    let mut seen_allow = BTreeSet::new();
    let mut other_abi = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    let mut excluded = BTreeSet::new();
    for rule in j.syscalls {
        let mut names = rule.names;
        names.extend(rule.name);
        names.retain(|n| {
            let keep = !exclude.contains(n);
            if !keep {
                excluded.insert(n.clone());
            }
            keep
        });
        if names.is_empty() {
            continue;
        }
        if !rule.includes.caps.is_empty() {
            dropped.push(Dropped::NeedsCapabilities {
                names,
                caps: rule.includes.caps,
            });
            continue;
        }
        if !rule.includes.arches.is_empty()
            && !rule
                .includes
                .arches
                .iter()
                .any(|a| NATIVE_ARCH_ALIASES.contains(&a.as_str()))
        {
            dropped.push(Dropped::ForeignArchitecture {
                names,
                arches: rule.includes.arches,
            });
            continue;
        }
        let (known, not_native): (Vec<String>, Vec<String>) = names
            .into_iter()
            .partition(|n| crate::seccomp::syscall_number(n).is_some());
        for n in not_native {
            if crate::seccomp::is_known_syscall(&n) {
                other_abi.insert(n);
            } else {
                unknown.insert(n);
            }
        }
        // The justification says what the source does with the name, by action.
        let why = if !rule.comment.is_empty() {
            rule.comment.clone()
        } else if rule.action == "SCMP_ACT_ERRNO" {
            format!(
                "fails with errno {} in {source}",
                rule.errno_ret.unwrap_or(filter.default_errno)
            )
        } else {
            format!("allowed by {source}")
        };
        match rule.action.as_str() {
            "SCMP_ACT_ALLOW" if rule.args.is_empty() => {
                for n in known {
                    if seen_allow.insert(n.clone()) {
                        filter.allow.push(AllowedSyscall {
                            name: n,
                            why: why.clone(),
                        });
                    }
                }
            }
            "SCMP_ACT_ALLOW" => {
                let args = rule
                    .args
                    .iter()
                    .map(|a| {
                        let op = op(&a.op)?;
                        Ok(match op {
                            ArgOp::MaskedEq => ArgCondition {
                                index: a.index,
                                op,
                                value: a.value_two,
                                mask: Some(a.value),
                            },
                            _ => ArgCondition {
                                index: a.index,
                                op,
                                value: a.value,
                                mask: None,
                            },
                        })
                    })
                    .collect::<Result<Vec<_>, ImportError>>()?;
                for n in known {
                    filter.conditional.push(ConditionalSyscall {
                        name: n,
                        why: why.clone(),
                        args: args.clone(),
                    });
                }
            }
            "SCMP_ACT_ERRNO" => match rule.errno_ret {
                Some(errno) if rule.args.is_empty() => {
                    filter.errno.extend(known.into_iter().map(|n| ErrnoSyscall {
                        name: n,
                        errno,
                        why: why.clone(),
                    }))
                }
                // Same as the default, or argument-specific denials of something not
                // otherwise allowed: nothing to add to a default-deny list.
                _ => {}
            },
            "SCMP_ACT_KILL"
            | "SCMP_ACT_KILL_THREAD"
            | "SCMP_ACT_KILL_PROCESS"
            | "SCMP_ACT_TRAP" => {}
            "SCMP_ACT_LOG" | "SCMP_ACT_TRACE" | "SCMP_ACT_NOTIFY" => {
                dropped.push(Dropped::UnsupportedAction {
                    names: known,
                    action: rule.action,
                })
            }
            other => return Err(ImportError::UnknownAction(other.to_owned())),
        }
    }
    // A name allowed unconditionally makes its conditional rules moot.
    filter.conditional.retain(|c| !seen_allow.contains(&c.name));
    if !other_abi.is_empty() {
        dropped.push(Dropped::OtherAbiOnly {
            names: other_abi.into_iter().collect(),
        });
    }
    if !excluded.is_empty() {
        dropped.push(Dropped::Excluded {
            names: excluded.into_iter().collect(),
        });
    }
    Ok(Imported {
        filter,
        dropped,
        unknown: unknown.into_iter().collect(),
    })
}

/// The filter as seccomp data TOML, for `profiles/seccomp/`.
pub fn to_toml(filter: &SeccompFilter) -> Result<String, toml::ser::Error> {
    toml::to_string_pretty(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::load::parse_seccomp_filter;

    const DOCKER: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_S390X"}
        ],
        "syscalls": [
            {"names": ["read", "write", "socketcall", "_llseek"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
             "comment": "no namespaces", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["mount", "bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["s390_pci_mmio_read"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}}
        ]
    }"#;

    #[test]
    fn imports_docker_profile_and_reports_drops() {
        let i = import(DOCKER, "docker-default", "moby default.json", &[]).unwrap();
        let allow: Vec<_> = i.filter.allow.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(allow, ["read", "write", "arch_prctl"]);
        assert_eq!(i.filter.conditional[0].args[0].mask, Some(0x7E02_0000));
        assert_eq!(i.filter.conditional[0].args[0].value, 0);
        assert_eq!(i.filter.conditional[0].why, "no namespaces");
        assert_eq!(i.filter.errno[0].errno, 38);
        assert_eq!(i.filter.architectures, ["SCMP_ARCH_X86_64"]);
        assert!(i.dropped.contains(&Dropped::OtherAbiOnly {
            names: vec!["_llseek".into(), "socketcall".into()]
        }));
        assert!(i.unknown.is_empty());
        assert!(i
            .dropped
            .iter()
            .any(|d| matches!(d, Dropped::NeedsCapabilities { .. })));
        assert!(i
            .dropped
            .iter()
            .any(|d| matches!(d, Dropped::ForeignArchitecture { .. })));
        assert!(i.dropped.contains(&Dropped::Architecture {
            name: "SCMP_ARCH_S390X".into()
        }));
    }

    #[test]
    fn round_trips_through_toml_and_the_loader() {
        let i = import(DOCKER, "docker-default", "moby", &[]).unwrap();
        let text = to_toml(&i.filter).unwrap();
        assert_eq!(parse_seccomp_filter(&text, "x.toml").unwrap(), i.filter);
    }

    #[test]
    fn refuses_allow_by_default_filters() {
        let e = import(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}"#,
            "x",
            "y",
            &[],
        )
        .unwrap_err();
        assert!(matches!(e, ImportError::PermissiveDefault(_)));
    }

    #[test]
    fn unknown_names_are_errors_and_excluded_names_are_left_out() {
        let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["read","reed","io_uring_setup","chown32"],"action":"SCMP_ACT_ALLOW"},
            {"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
            {"names":["ptrace"],"action":"SCMP_ACT_LOG"}]}"#;
        let i = import(json, "x", "src.json", &["io_uring_setup".into()]).unwrap();
        assert_eq!(i.unknown, ["reed"]);
        let allow: Vec<_> = i.filter.allow.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(allow, ["read"]);
        assert_eq!(i.filter.errno[0].why, "fails with errno 38 in src.json");
        let text: Vec<String> = i.dropped.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "ptrace: SCMP_ACT_LOG, allowed and logged by the source (an audit rule); \
                 denied here by the default action",
                "1 name exists only on other ABIs (not callable natively, nothing lost): \
                 chown32",
                "excluded on request: io_uring_setup",
            ]
        );
    }
}
