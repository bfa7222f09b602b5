//! `capabilities.*`: every capability set within the allow-list; inheritable and ambient
//! empty (CVE-2022-29162: a non-empty inheritable set lets execve of a file with
//! inheritable file capabilities regain them).

use serde_json::Value;

use super::{is_pod_sandbox, join, str_items};
use crate::profile::schema::{CapabilitiesSection, OnExcess};
use crate::profile::violation::{Injection, RuleMeta, Violation};

const SETS: [&str; 5] = [
    "bounding",
    "effective",
    "permitted",
    "inheritable",
    "ambient",
];
const ALWAYS_EMPTY: [&str; 2] = ["inheritable", "ambient"];

fn allowed(section: &CapabilitiesSection, cap: &str, set: &str) -> bool {
    !ALWAYS_EMPTY.contains(&set) && section.allowed.iter().any(|a| a == cap)
}

pub fn check(doc: &Value, section: &CapabilitiesSection, meta: RuleMeta) -> Vec<Violation> {
    let mut out = Vec::new();
    for set in SETS {
        let path = format!("process.capabilities.{set}");
        let mut excess: Vec<&str> = str_items(doc, &format!("/process/capabilities/{set}"))
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| !allowed(section, c, set))
            .collect();
        if excess.is_empty() {
            continue;
        }
        excess.sort_unstable();
        out.push(if ALWAYS_EMPTY.contains(&set) {
            meta.violation(
                "capabilities.inheritable_ambient",
                path,
                join(&excess),
                "none",
                "securityContext.capabilities",
            )
        } else {
            meta.violation(
                "capabilities.allowed",
                path,
                join(&excess),
                join(&section.allowed),
                "securityContext.capabilities.drop",
            )
        });
    }
    out
}

/// With `on_excess = "strip"` (and always for a CRI pod sandbox), drop every
/// capability outside the allow-list.
pub fn harden(doc: &mut Value, section: &CapabilitiesSection) -> Vec<Injection> {
    let sandbox = is_pod_sandbox(doc);
    if section.on_excess != OnExcess::Strip && !sandbox {
        return Vec::new();
    }
    let mut out = Vec::new();
    let Some(caps) = doc
        .pointer_mut("/process/capabilities")
        .and_then(Value::as_object_mut)
    else {
        return out;
    };
    for set in SETS {
        let Some(list) = caps.get_mut(set).and_then(Value::as_array_mut) else {
            continue;
        };
        let mut dropped: Vec<String> = Vec::new();
        list.retain(|c| {
            let name = c.as_str().unwrap_or_default();
            let keep = allowed(section, name, set);
            if !keep {
                dropped.push(name.to_owned());
            }
            keep
        });
        if !dropped.is_empty() {
            dropped.sort();
            let why = if section.on_excess == OnExcess::Strip {
                String::new()
            } else {
                " (pod sandbox: containerd sets its capabilities, no kubelet setting can)".into()
            };
            out.push(Injection::new(
                "capabilities.allowed",
                format!("process.capabilities.{set}"),
                format!("dropped {}{why}", join(&dropped)),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::rules::test_util::*;

    fn section(on_excess: OnExcess) -> CapabilitiesSection {
        CapabilitiesSection {
            reason: "r".into(),
            mode: None,
            on_excess,
            allowed: vec!["CAP_NET_BIND_SERVICE".into()],
        }
    }

    #[test]
    fn table() {
        let cases: &[(&str, &[&str])] = &[
            (r#"{}"#, &[]),
            (
                r#"{"process":{"capabilities":{"bounding":["CAP_NET_BIND_SERVICE"]}}}"#,
                &[],
            ),
            (
                r#"{"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"],"effective":["CAP_SYS_ADMIN","CAP_NET_BIND_SERVICE"]}}}"#,
                &["capabilities.allowed", "capabilities.allowed"],
            ),
            (
                r#"{"process":{"capabilities":{"inheritable":["CAP_NET_BIND_SERVICE"]}}}"#,
                &["capabilities.inheritable_ambient"],
            ),
            (
                r#"{"process":{"capabilities":{"ambient":["CAP_CHOWN"]}}}"#,
                &["capabilities.inheritable_ambient"],
            ),
        ];
        for (spec, want) in cases {
            let got = check(&doc(spec), &section(OnExcess::Refuse), meta());
            assert_eq!(ids(&got), *want, "{spec}");
        }
    }

    #[test]
    fn violation_names_excess_caps() {
        let v = check(
            &doc(r#"{"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN","CAP_NET_RAW"]}}}"#),
            &section(OnExcess::Refuse),
            meta(),
        );
        assert_eq!(v[0].path, "process.capabilities.bounding");
        assert_eq!(v[0].actual, "CAP_NET_RAW, CAP_SYS_ADMIN");
        assert_eq!(v[0].allowed, "CAP_NET_BIND_SERVICE");
    }

    #[test]
    fn strip_drops_excess_then_check_passes() {
        let mut d = doc(
            r#"{"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN","CAP_NET_BIND_SERVICE"],"ambient":["CAP_NET_BIND_SERVICE"]}}}"#,
        );
        let inj = harden(&mut d, &section(OnExcess::Strip));
        assert_eq!(inj.len(), 2);
        assert!(check(&d, &section(OnExcess::Strip), meta()).is_empty());
        assert_eq!(
            d.pointer("/process/capabilities/bounding").unwrap(),
            &serde_json::json!(["CAP_NET_BIND_SERVICE"])
        );
    }

    #[test]
    fn refuse_mode_does_not_harden() {
        let mut d = doc(r#"{"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}"#);
        assert!(harden(&mut d, &section(OnExcess::Refuse)).is_empty());
    }

    #[test]
    fn a_pod_sandbox_loses_its_excess_even_under_refuse() {
        let sandbox = r#"{"annotations":{"io.kubernetes.cri.container-type":"sandbox"},
            "process":{"capabilities":{"bounding":["CAP_NET_RAW","CAP_CHOWN","CAP_NET_BIND_SERVICE"],
            "effective":["CAP_NET_RAW"],"ambient":["CAP_CHOWN"]}}}"#;
        let mut d = doc(sandbox);
        let inj = harden(&mut d, &section(OnExcess::Refuse));
        assert_eq!(inj.len(), 3, "{inj:?}");
        assert!(inj[0].change.contains("pod sandbox"), "{inj:?}");
        assert!(check(&d, &section(OnExcess::Refuse), meta()).is_empty());
        // An app container of the same pod is still refused.
        let app = sandbox.replace("\"sandbox\"", "\"container\"");
        let mut d = doc(&app);
        assert!(harden(&mut d, &section(OnExcess::Refuse)).is_empty());
        assert_eq!(check(&d, &section(OnExcess::Refuse), meta()).len(), 3);
    }
}
