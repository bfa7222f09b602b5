//! `namespaces.*`: the required namespaces exist, and none of the forbidden kinds is the
//! runtime's own (what `hostPID`/`hostNetwork`/`hostIPC` look like to a runtime: a
//! `path` to a namespace whose inode is the host's, or no entry at all).

use serde_json::Value;
use std::path::Path;

use crate::profile::host::{HostFacts, NsInodeLookup};
use crate::profile::schema::{NamespacesSection, NsType};
use crate::profile::violation::{RuleMeta, Violation};

fn k8s_field(ns: NsType) -> &'static str {
    match ns {
        NsType::Pid => "spec.hostPID",
        NsType::Network => "spec.hostNetwork",
        NsType::Ipc => "spec.hostIPC",
        NsType::User => "spec.hostUsers",
        _ => "none (set by the container runtime)",
    }
}

pub fn check(
    doc: &Value,
    section: &NamespacesSection,
    host: &HostFacts,
    lookup: &dyn NsInodeLookup,
    meta: RuleMeta,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let entries: Vec<(usize, &str, Option<&str>)> = doc
        .pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .enumerate()
                .map(|(i, n)| {
                    (
                        i,
                        n.get("type").and_then(Value::as_str).unwrap_or_default(),
                        n.get("path").and_then(Value::as_str),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    for ns in &section.required {
        if !entries.iter().any(|(_, t, _)| *t == ns.oci_name()) {
            out.push(meta.violation(
                "namespaces.required",
                "linux.namespaces",
                format!("no {} namespace (shares the host's)", ns.oci_name()),
                "a namespace of its own",
                k8s_field(*ns),
            ));
        }
    }
    for (i, ty, path) in &entries {
        let Some(path) = path else { continue };
        let Some(ns) = NsType::ALL.iter().copied().find(|n| n.oci_name() == *ty) else {
            continue;
        };
        if !section.host_forbidden.contains(&ns) {
            continue;
        }
        let at = format!("linux.namespaces[{i}].path");
        match lookup.inode(Path::new(path)) {
            // Fail closed: a namespace we cannot identify could be the host's.
            Err(e) => out.push(meta.violation(
                "namespaces.unresolvable",
                at,
                format!("{path}: {e}"),
                "a namespace path that can be inspected",
                k8s_field(ns),
            )),
            Ok(ino) if host.own_namespaces.get(&ns) == Some(&ino) => out.push(meta.violation(
                "namespaces.host",
                at,
                format!("{path} is the host {} namespace", ns.oci_name()),
                "a namespace other than the host's",
                k8s_field(ns),
            )),
            Ok(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::host::fake::{host, FakeNs};
    use crate::profile::rules::test_util::*;

    #[test]
    fn table() {
        let s = NamespacesSection {
            reason: "r".into(),
            mode: None,
            required: vec![NsType::Pid, NsType::Network],
            host_forbidden: vec![NsType::Pid, NsType::Network, NsType::Ipc],
        };
        let h = host();
        let fake = FakeNs::new(&h);
        let cases: &[(&str, &[&str])] = &[
            (
                r#"{"linux":{"namespaces":[{"type":"pid"},{"type":"network"}]}}"#,
                &[],
            ),
            (
                r#"{"linux":{"namespaces":[{"type":"pid"}]}}"#,
                &["namespaces.required"],
            ),
            (
                r#"{"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/proc/42/ns/net"}]}}"#,
                &[],
            ),
            (
                r#"{"linux":{"namespaces":[{"type":"pid","path":"/proc/1/ns/pid"},{"type":"network"}]}}"#,
                &["namespaces.host"],
            ),
            (
                r#"{"linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc","path":"/proc/1/ns/ipc"}]}}"#,
                &["namespaces.host"],
            ),
            (
                r#"{"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/nonexistent"}]}}"#,
                &["namespaces.unresolvable"],
            ),
            (
                r#"{"linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"uts","path":"/proc/1/ns/uts"}]}}"#,
                &[],
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(
                ids(&check(&doc(spec), &s, &h, &fake, meta())),
                *want,
                "{spec}"
            );
        }
    }
}
