//! `process.*`: no_new_privileges, who the process runs as, and where it starts.

use serde_json::Value;
use std::path::{Component, Path};

use super::{ensure_object, map_id, user_namespace};
use crate::profile::schema::{IdRange, OnMissing, ProcessSection, RootPolicy};
use crate::profile::violation::{Injection, RuleMeta, Violation, UNSET};

fn ranges(r: &[IdRange]) -> String {
    r.iter()
        .map(|r| format!("{}-{}", r.min, r.max))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether container id 0 runs as an unprivileged host id: the spec maps it to a non-zero
/// host id, or the runtime will create a user namespace for it (`userns_requested`).
fn root_is_mapped(doc: &Value, which: &str, userns_requested: bool) -> bool {
    if userns_requested {
        return true;
    }
    match user_namespace(doc) {
        // Joining an existing user namespace: its mapping was checked when it was made,
        // and `namespaces.host` refuses the host's own.
        Some(ns) if ns.get("path").is_some() => true,
        Some(_) => matches!(map_id(doc.pointer(&format!("/linux/{which}")), 0), Some(h) if h != 0),
        None => false,
    }
}

pub fn check(
    doc: &Value,
    section: &ProcessSection,
    userns_requested: bool,
    meta: RuleMeta,
) -> Vec<Violation> {
    let mut out = Vec::new();
    if doc
        .pointer("/process/noNewPrivileges")
        .and_then(Value::as_bool)
        != Some(true)
    {
        out.push(
            meta.violation(
                "process.no_new_privileges",
                "process.noNewPrivileges",
                doc.pointer("/process/noNewPrivileges")
                    .map_or(UNSET.to_owned(), Value::to_string),
                "true",
                "securityContext.allowPrivilegeEscalation",
            ),
        );
    }
    let ids = [
        (
            "uid",
            "uidMappings",
            &section.uid_ranges,
            "securityContext.runAsUser",
        ),
        (
            "gid",
            "gidMappings",
            &section.gid_ranges,
            "securityContext.runAsGroup",
        ),
    ];
    for (field, mappings, allowed, k8s) in ids {
        let Some(id) = doc
            .pointer(&format!("/process/user/{field}"))
            .and_then(Value::as_u64)
        else {
            continue;
        };
        let path = format!("process.user.{field}");
        if id == 0 {
            let ok = match section.root {
                RootPolicy::Never => false,
                RootPolicy::IfUserns => root_is_mapped(doc, mappings, userns_requested),
            };
            if !ok {
                let allowed = match section.root {
                    RootPolicy::Never => "non-zero",
                    RootPolicy::IfUserns => "non-zero, or 0 mapped by a user namespace",
                };
                out.push(meta.violation(
                    "process.run_as_non_root",
                    path,
                    "0",
                    allowed,
                    "securityContext.runAsNonRoot",
                ));
                continue;
            }
        }
        let in_range = u32::try_from(id).is_ok_and(|id| allowed.iter().any(|r| r.contains(id)));
        if !in_range {
            let rule = if field == "uid" {
                "process.uid_range"
            } else {
                "process.gid_range"
            };
            out.push(meta.violation(rule, path, id.to_string(), ranges(allowed), k8s));
        }
    }
    if let Some(cwd) = doc.pointer("/process/cwd").and_then(Value::as_str) {
        // Lexical: `..` can only climb, so a cwd containing it is refused rather than
        // resolved (a symlinked cwd is re-checked by the runtime after pivot_root).
        let has_dotdot = Path::new(cwd)
            .components()
            .any(|c| c == Component::ParentDir);
        let forbidden = section
            .forbidden_cwd
            .iter()
            .find(|f| Path::new(cwd).starts_with(f.as_str()));
        if has_dotdot || forbidden.is_some() {
            out.push(meta.violation(
                "process.cwd",
                "process.cwd",
                cwd,
                format!("not under {}, no '..'", super::join(&section.forbidden_cwd)),
                "workingDir",
            ));
        }
    }
    out
}

/// With `no_new_privileges = "inject"`, set `process.noNewPrivileges` to true. containerd
/// writes false for an unset `allowPrivilegeEscalation`, so false is treated as silence.
pub fn harden(doc: &mut Value, section: &ProcessSection) -> Vec<Injection> {
    if section.no_new_privileges != OnMissing::Inject
        || doc
            .pointer("/process/noNewPrivileges")
            .and_then(Value::as_bool)
            == Some(true)
    {
        return Vec::new();
    }
    ensure_object(doc, "/process").insert("noNewPrivileges".into(), Value::Bool(true));
    vec![Injection::new(
        "process.no_new_privileges",
        "process.noNewPrivileges",
        "set true",
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::rules::test_util::*;

    fn section(root: RootPolicy, nnp: OnMissing) -> ProcessSection {
        ProcessSection {
            reason: "r".into(),
            mode: None,
            no_new_privileges: nnp,
            root,
            uid_ranges: vec![IdRange { min: 0, max: 65535 }],
            gid_ranges: vec![IdRange { min: 0, max: 65535 }],
            forbidden_cwd: vec!["/proc".into()],
            max_preserve_fds: 0,
        }
    }

    const OK: &str =
        r#"{"process":{"noNewPrivileges":true,"cwd":"/","user":{"uid":1000,"gid":1000}}}"#;

    #[test]
    fn table() {
        let cases: &[(&str, RootPolicy, bool, &[&str])] = &[
            (OK, RootPolicy::Never, false, &[]),
            (
                r#"{"process":{"noNewPrivileges":false,"cwd":"/","user":{"uid":1,"gid":1}}}"#,
                RootPolicy::Never,
                false,
                &["process.no_new_privileges"],
            ),
            (
                r#"{"process":{"cwd":"/","user":{"uid":1,"gid":1}}}"#,
                RootPolicy::Never,
                false,
                &["process.no_new_privileges"],
            ),
            (
                r#"{"process":{"noNewPrivileges":true,"cwd":"/","user":{"uid":0,"gid":0}}}"#,
                RootPolicy::Never,
                true,
                &["process.run_as_non_root", "process.run_as_non_root"],
            ),
            (
                r#"{"process":{"noNewPrivileges":true,"cwd":"/","user":{"uid":0,"gid":0}}}"#,
                RootPolicy::IfUserns,
                false,
                &["process.run_as_non_root", "process.run_as_non_root"],
            ),
            (
                r#"{"process":{"noNewPrivileges":true,"cwd":"/","user":{"uid":0,"gid":0}}}"#,
                RootPolicy::IfUserns,
                true,
                &[],
            ),
            (
                r#"{"process":{"noNewPrivileges":true,"cwd":"/","user":{"uid":0,"gid":0}},
                   "linux":{"namespaces":[{"type":"user"}],
                   "uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
                   "gidMappings":[{"containerID":0,"hostID":0,"size":65536}]}}"#,
                RootPolicy::IfUserns,
                false,
                &["process.run_as_non_root"],
            ),
            (
                r#"{"process":{"noNewPrivileges":true,"cwd":"/","user":{"uid":70000,"gid":1}}}"#,
                RootPolicy::Never,
                false,
                &["process.uid_range"],
            ),
            (
                r#"{"process":{"noNewPrivileges":true,"cwd":"/proc/self/fd/7","user":{"uid":1,"gid":1}}}"#,
                RootPolicy::Never,
                false,
                &["process.cwd"],
            ),
            (
                r#"{"process":{"noNewPrivileges":true,"cwd":"/app/../proc","user":{"uid":1,"gid":1}}}"#,
                RootPolicy::Never,
                false,
                &["process.cwd"],
            ),
            (
                r#"{"process":{"noNewPrivileges":true,"cwd":"/processes","user":{"uid":1,"gid":1}}}"#,
                RootPolicy::Never,
                false,
                &[],
            ),
        ];
        for (spec, root, userns, want) in cases {
            let got = check(
                &doc(spec),
                &section(*root, OnMissing::Refuse),
                *userns,
                meta(),
            );
            assert_eq!(ids(&got), *want, "{spec}");
        }
    }

    #[test]
    fn inject_sets_nnp() {
        let mut d = doc(r#"{"process":{"noNewPrivileges":false}}"#);
        let s = section(RootPolicy::Never, OnMissing::Inject);
        assert_eq!(harden(&mut d, &s).len(), 1);
        assert_eq!(d["process"]["noNewPrivileges"], true);
        assert!(harden(&mut d, &s).is_empty());
    }
}

/// Rule id of the note for an `oomScoreAdj` this runtime cannot set.
pub const OOM_SCORE_ADJ_RULE: &str = "process.oom_score_adj";

/// Whatever the profile: a `process.oomScoreAdj` below what the runtime can set on
/// this host (it lacks CAP_SYS_RESOURCE, see `HostFacts::oom_score_adj_floor`) is
/// raised to that floor and said at admission, as containerd's
/// `restrict_oom_score_adj` does, instead of failing every such container in the
/// middle of create (containerd asks -998 for every pod's sandbox). It only makes
/// the process likelier to be chosen by the OOM killer; it grants nothing.
pub fn oom_score_adj_host_note(
    doc: &mut Value,
    host: &crate::profile::HostFacts,
) -> Vec<Injection> {
    let Some(floor) = host.oom_score_adj_floor else {
        return Vec::new();
    };
    let Some(asked) = doc
        .pointer("/process/oomScoreAdj")
        .and_then(Value::as_i64)
        .filter(|a| *a < i64::from(floor))
    else {
        return Vec::new();
    };
    doc["process"]["oomScoreAdj"] = floor.into();
    vec![Injection::new(
        OOM_SCORE_ADJ_RULE,
        "process.oomScoreAdj",
        format!(
            "raised from {asked} to {floor}: the runtime lacks CAP_SYS_RESOURCE, which \
             lowering oom_score_adj below its own ({floor}) needs"
        ),
    )]
}

#[cfg(test)]
mod oom_score_adj_tests {
    use super::*;

    #[test]
    fn oom_score_adj_below_the_runtimes_floor_is_raised_and_said() {
        let mut host = crate::profile::host::fake::host();
        let spec = serde_json::json!({"process":{"oomScoreAdj":-998}});
        // With CAP_SYS_RESOURCE: unchanged, nothing said.
        let mut d = spec.clone();
        assert!(oom_score_adj_host_note(&mut d, &host).is_empty());
        assert_eq!(d, spec);
        host.oom_score_adj_floor = Some(1);
        let mut d = spec.clone();
        let notes = oom_score_adj_host_note(&mut d, &host);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].rule, OOM_SCORE_ADJ_RULE);
        assert_eq!(notes[0].path, "process.oomScoreAdj");
        assert!(
            notes[0].change.starts_with("raised from -998 to 1"),
            "{notes:?}"
        );
        assert_eq!(d["process"]["oomScoreAdj"], 1);
        // At or above the floor, or unset: unchanged.
        for spec in [
            serde_json::json!({"process":{"oomScoreAdj":1}}),
            serde_json::json!({"process":{"oomScoreAdj":1000}}),
            serde_json::json!({"process":{}}),
        ] {
            let mut d = spec.clone();
            assert!(oom_score_adj_host_note(&mut d, &host).is_empty());
            assert_eq!(d, spec);
        }
    }
}
