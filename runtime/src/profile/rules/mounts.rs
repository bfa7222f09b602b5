//! `mounts.*`: allowed mount types, bind sources under allowed prefixes and never a
//! forbidden source (host root, procfs, sysfs, devices, container-runtime sockets), no
//! shared propagation back to the host, `nosuid,nodev` on binds.
//!
//! Sources are checked lexically: a source containing `..` is refused outright. A symlink
//! in the source can still redirect it, so the runtime must re-check the path it actually
//! opened (via `/proc/self/fd`) before mounting (CVE-2021-30465).

use serde_json::Value;
use std::path::{Component, Path};

use super::join;
use crate::profile::schema::{MountsSection, OnMissing};
use crate::profile::violation::{Injection, RuleMeta, Violation};

fn options(m: &Value) -> Vec<&str> {
    m.get("options")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A bind mount, whatever its `type` says (runc treats a `bind`/`rbind` option as bind).
pub(crate) fn is_bind(m: &Value) -> bool {
    m.get("type").and_then(Value::as_str) == Some("bind")
        || options(m).iter().any(|o| *o == "bind" || *o == "rbind")
}

fn mount_type(m: &Value) -> &str {
    if is_bind(m) {
        "bind"
    } else {
        m.get("type").and_then(Value::as_str).unwrap_or("none")
    }
}

fn under(path: &Path, dir: &str) -> bool {
    path.starts_with(dir)
}

pub fn check(doc: &Value, section: &MountsSection, meta: RuleMeta) -> Vec<Violation> {
    let mut out = Vec::new();
    let mounts = doc.pointer("/mounts").and_then(Value::as_array);
    for (i, m) in mounts.into_iter().flatten().enumerate() {
        let dest = m
            .get("destination")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ty = mount_type(m);
        if !section.allowed_types.iter().any(|t| t == ty) {
            out.push(meta.violation(
                "mounts.type",
                format!("mounts[{i}].type"),
                format!("{ty} at {dest}"),
                join(&section.allowed_types),
                "spec.volumes",
            ));
        }
        let opts = options(m);
        if section.forbid_shared_propagation {
            if let Some(o) = opts.iter().find(|o| **o == "shared" || **o == "rshared") {
                out.push(meta.violation(
                    "mounts.propagation",
                    format!("mounts[{i}].options"),
                    format!("{o} at {dest}"),
                    "private, rprivate, slave, rslave",
                    "spec.containers[].volumeMounts[].mountPropagation",
                ));
            }
        }
        if ty != "bind" {
            continue;
        }
        let source = m.get("source").and_then(Value::as_str).unwrap_or_default();
        let src = Path::new(source);
        let path = format!("mounts[{i}].source");
        let lexical_ok = src.is_absolute() && !src.components().any(|c| c == Component::ParentDir);
        if let Some(f) = section
            .forbidden_sources
            .iter()
            .find(|f| src == Path::new(&f.path) || (f.subtree && under(src, &f.path)))
        {
            let mut v = meta.violation(
                "mounts.forbidden_source",
                path,
                format!("{source} at {dest}"),
                format!("not {}", f.path),
                "spec.volumes[].hostPath",
            );
            v.reason = f.reason.clone();
            out.push(v);
        } else if !lexical_ok
            || !section
                .resolved_bind_source_prefixes
                .iter()
                .any(|p| under(src, p))
        {
            out.push(meta.violation(
                "mounts.bind_source",
                path,
                format!("{source} at {dest}"),
                format!(
                    "under {} (absolute, no '..')",
                    join(&section.resolved_bind_source_prefixes)
                ),
                "spec.volumes[].hostPath",
            ));
        }
        let miss: Vec<&String> = section
            .bind_required_options
            .iter()
            .filter(|r| !opts.contains(&r.as_str()))
            .collect();
        if !miss.is_empty() {
            out.push(meta.violation(
                "mounts.bind_options",
                format!("mounts[{i}].options"),
                format!("missing {} at {dest}", join(&miss)),
                join(&section.bind_required_options),
                "spec.volumes",
            ));
        }
    }
    if section.forbid_shared_propagation {
        if let Some(p) = doc
            .pointer("/linux/rootfsPropagation")
            .and_then(Value::as_str)
        {
            if p == "shared" || p == "rshared" {
                out.push(meta.violation(
                    "mounts.propagation",
                    "linux.rootfsPropagation",
                    p,
                    "private, rprivate, slave, rslave",
                    "spec.containers[].volumeMounts[].mountPropagation",
                ));
            }
        }
    }
    out
}

/// With `on_missing = "inject"`, add the required options to every bind mount.
pub fn harden(doc: &mut Value, section: &MountsSection) -> Vec<Injection> {
    let mut out = Vec::new();
    if section.on_missing != OnMissing::Inject {
        return out;
    }
    let Some(mounts) = doc.pointer_mut("/mounts").and_then(Value::as_array_mut) else {
        return out;
    };
    for (i, m) in mounts.iter_mut().enumerate() {
        if !is_bind(m) {
            continue;
        }
        let miss: Vec<String> = section
            .bind_required_options
            .iter()
            .filter(|r| !options(m).contains(&r.as_str()))
            .cloned()
            .collect();
        if miss.is_empty() {
            continue;
        }
        let Some(obj) = m.as_object_mut() else {
            continue;
        };
        let opts = obj
            .entry("options")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = opts {
            a.extend(miss.iter().cloned().map(Value::String));
        }
        out.push(Injection::new(
            "mounts.bind_options",
            format!("mounts[{i}].options"),
            format!("added {}", join(&miss)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::rules::test_util::*;
    use crate::profile::schema::ForbiddenSource;

    fn section(on_missing: OnMissing) -> MountsSection {
        MountsSection {
            reason: "r".into(),
            mode: None,
            allowed_types: vec!["bind".into(), "tmpfs".into(), "proc".into()],
            bind_source_prefixes: vec!["${kubelet_root}/pods".into(), "/run".into()],
            resolved_bind_source_prefixes: vec!["/var/lib/kubelet/pods".into(), "/run".into()],
            forbidden_sources: vec![
                ForbiddenSource {
                    path: "/".into(),
                    subtree: false,
                    reason: "host root".into(),
                },
                ForbiddenSource {
                    path: "/proc".into(),
                    subtree: true,
                    reason: "procfs".into(),
                },
                ForbiddenSource {
                    path: "/run/containerd/containerd.sock".into(),
                    subtree: false,
                    reason: "runtime socket".into(),
                },
            ],
            forbid_shared_propagation: true,
            bind_required_options: vec!["nosuid".into(), "nodev".into()],
            on_missing,
        }
    }

    fn one(m: &str) -> String {
        format!(r#"{{"mounts":[{m}]}}"#)
    }

    #[test]
    fn table() {
        let cases: Vec<(String, Vec<&str>)> = vec![
            (
                one(r#"{"destination":"/proc","type":"proc","source":"proc"}"#),
                vec![],
            ),
            (
                one(
                    r#"{"destination":"/d","type":"bind","source":"/var/lib/kubelet/pods/u/volumes/x","options":["rbind","nosuid","nodev"]}"#,
                ),
                vec![],
            ),
            (
                one(
                    r#"{"destination":"/d","source":"/var/lib/kubelet/pods/x","options":["rbind"]}"#,
                ),
                vec!["mounts.bind_options"],
            ),
            (
                one(
                    r#"{"destination":"/d","type":"bind","source":"/etc","options":["nosuid","nodev"]}"#,
                ),
                vec!["mounts.bind_source"],
            ),
            (
                one(
                    r#"{"destination":"/d","type":"bind","source":"/var/lib/kubelet/pods/../../../etc","options":["nosuid","nodev"]}"#,
                ),
                vec!["mounts.bind_source"],
            ),
            (
                one(
                    r#"{"destination":"/d","type":"bind","source":"/","options":["nosuid","nodev"]}"#,
                ),
                vec!["mounts.forbidden_source"],
            ),
            (
                one(
                    r#"{"destination":"/d","type":"bind","source":"/proc/1/root","options":["nosuid","nodev"]}"#,
                ),
                vec!["mounts.forbidden_source"],
            ),
            (
                one(
                    r#"{"destination":"/s","type":"bind","source":"/run/containerd/containerd.sock","options":["nosuid","nodev"]}"#,
                ),
                vec!["mounts.forbidden_source"],
            ),
            (
                one(
                    r#"{"destination":"/d","type":"bind","source":"/run/x","options":["rshared","nosuid","nodev"]}"#,
                ),
                vec!["mounts.propagation"],
            ),
            (
                one(r#"{"destination":"/d","type":"nfs","source":"h:/x"}"#),
                vec!["mounts.type"],
            ),
            (
                r#"{"linux":{"rootfsPropagation":"shared"}}"#.into(),
                vec!["mounts.propagation"],
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(
                ids(&check(&doc(&spec), &section(OnMissing::Refuse), meta())),
                want,
                "{spec}"
            );
        }
    }

    #[test]
    fn forbidden_source_carries_its_own_reason() {
        let v = check(
            &doc(&one(
                r#"{"destination":"/d","type":"bind","source":"/","options":["nosuid","nodev"]}"#,
            )),
            &section(OnMissing::Refuse),
            meta(),
        );
        assert_eq!(v[0].reason, "host root");
    }

    #[test]
    fn inject_adds_bind_options() {
        let mut d = doc(&one(
            r#"{"destination":"/d","type":"bind","source":"/run/x","options":["rbind","nosuid"]}"#,
        ));
        let s = section(OnMissing::Inject);
        assert_eq!(harden(&mut d, &s).len(), 1);
        assert!(check(&d, &s, meta()).is_empty());
    }
}
