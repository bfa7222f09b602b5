//! `namespaces.*`: the required namespaces exist, and none of the forbidden kinds is the
//! runtime's own (what `hostPID`/`hostNetwork`/`hostIPC` look like to a runtime: a
//! `path` to a namespace whose inode is the host's, or no entry at all). `inject` adds
//! a new namespace of a kind the spec left out (a spec without a cgroup namespace
//! sees the node's whole cgroup tree in `/proc/self/cgroup` and a cgroup mount).

use serde_json::Value;
use std::path::Path;

use crate::profile::host::{HostFacts, NsInodeLookup};
use crate::profile::schema::{NamespacesSection, NsType};
use crate::profile::violation::{Injection, RuleMeta, Violation};

use super::ensure_object;

fn k8s_field(ns: NsType) -> &'static str {
    match ns {
        NsType::Pid => "spec.hostPID",
        // A hostNetwork pod shares the node's UTS namespace too (the kubelet asks
        // the CRI for NODE network, and containerd then leaves out both).
        NsType::Network | NsType::Uts => "spec.hostNetwork",
        NsType::Ipc => "spec.hostIPC",
        NsType::User => "spec.hostUsers",
        _ => "none (set by the container runtime)",
    }
}

fn has_entry(doc: &Value, ns: NsType) -> bool {
    doc.pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .any(|n| n.get("type").and_then(Value::as_str) == Some(ns.oci_name()))
        })
}

/// Adds a new namespace of every `inject` kind the spec has no entry for. An entry
/// with a `path` is the spec's choice and is left to `check`.
pub fn harden(doc: &mut Value, section: &NamespacesSection) -> Vec<Injection> {
    let mut out = Vec::new();
    for i in &section.inject {
        if has_entry(doc, i.kind) {
            continue;
        }
        let linux = ensure_object(doc, "/linux");
        let list = linux
            .entry("namespaces")
            .or_insert_with(|| Value::Array(Vec::new()));
        if !list.is_array() {
            *list = Value::Array(Vec::new());
        }
        if let Value::Array(a) = list {
            a.push(serde_json::json!({ "type": i.kind.oci_name() }));
        }
        out.push(Injection::new(
            "namespaces.inject",
            "linux.namespaces",
            format!("added a {} namespace: {}", i.kind.oci_name(), i.reason),
        ));
    }
    out
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
            inject: Vec::new(),
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

    fn injecting(kinds: &[NsType]) -> NamespacesSection {
        NamespacesSection {
            reason: "r".into(),
            mode: None,
            required: vec![NsType::Cgroup],
            host_forbidden: vec![NsType::Cgroup],
            inject: kinds
                .iter()
                .map(|&kind| crate::profile::schema::NsInjection {
                    kind,
                    reason: "hide the node's cgroup tree".into(),
                })
                .collect(),
        }
    }

    fn types(doc: &Value) -> Vec<String> {
        doc["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.to_string())
            .collect()
    }

    #[test]
    fn inject_adds_a_missing_namespace_and_keeps_the_specs_own() {
        let s = injecting(&[NsType::Cgroup]);
        let h = host();
        let fake = FakeNs::new(&h);
        let cases: &[(&str, &[&str], usize)] = &[
            // Silent spec: a new cgroup namespace, and `required` is then satisfied.
            (
                r#"{"linux":{"namespaces":[{"type":"pid"}]}}"#,
                &[r#"{"type":"pid"}"#, r#"{"type":"cgroup"}"#],
                1,
            ),
            (r#"{}"#, &[r#"{"type":"cgroup"}"#], 1),
            // The spec's own cgroup namespace, new or joined by path, is kept as is.
            (
                r#"{"linux":{"namespaces":[{"type":"cgroup"}]}}"#,
                &[r#"{"type":"cgroup"}"#],
                0,
            ),
            (
                r#"{"linux":{"namespaces":[{"type":"cgroup","path":"/proc/42/ns/cgroup"}]}}"#,
                &[r#"{"path":"/proc/42/ns/cgroup","type":"cgroup"}"#],
                0,
            ),
        ];
        for (spec, want, n) in cases {
            let mut d = doc(spec);
            let injected = harden(&mut d, &s);
            assert_eq!(injected.len(), *n, "{spec}");
            assert_eq!(types(&d), *want, "{spec}");
            assert!(ids(&check(&d, &s, &h, &fake, meta())).is_empty(), "{spec}");
        }
        let mut d = doc(r#"{}"#);
        let i = harden(&mut d, &s);
        assert_eq!(i[0].rule, "namespaces.inject");
        assert!(i[0].change.contains("cgroup") && i[0].change.contains("node's cgroup tree"));
    }

    #[test]
    fn without_inject_a_missing_required_namespace_is_refused() {
        let s = injecting(&[]);
        let h = host();
        let fake = FakeNs::new(&h);
        let mut d = doc(r#"{"linux":{"namespaces":[{"type":"pid"}]}}"#);
        assert!(harden(&mut d, &s).is_empty());
        assert_eq!(
            ids(&check(&d, &s, &h, &fake, meta())),
            ["namespaces.required"]
        );
        // Joining the host's own cgroup namespace by path is refused, injection or not.
        let s = injecting(&[NsType::Cgroup]);
        let mut d =
            doc(r#"{"linux":{"namespaces":[{"type":"cgroup","path":"/proc/1/ns/cgroup"}]}}"#);
        assert!(harden(&mut d, &s).is_empty());
        assert_eq!(ids(&check(&d, &s, &h, &fake, meta())), ["namespaces.host"]);
    }
}
