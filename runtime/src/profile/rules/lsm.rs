//! `lsm.*`: AppArmor profile and SELinux type are checked against allow-lists and passed
//! through unchanged.

use serde_json::Value;

use super::join;
use crate::profile::schema::LsmSection;
use crate::profile::violation::{RuleMeta, Violation};

pub(crate) fn matches(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

pub fn check(doc: &Value, section: &LsmSection, meta: RuleMeta) -> Vec<Violation> {
    let mut out = Vec::new();
    if let Some(p) = doc
        .pointer("/process/apparmorProfile")
        .and_then(Value::as_str)
    {
        // `unconfined` is refused even if a pattern would match it.
        if p == "unconfined" || !section.apparmor_profiles.iter().any(|a| matches(a, p)) {
            out.push(meta.violation(
                "lsm.apparmor",
                "process.apparmorProfile",
                p,
                join(&section.apparmor_profiles),
                "securityContext.appArmorProfile",
            ));
        }
    }
    if let Some(label) = doc.pointer("/process/selinuxLabel").and_then(Value::as_str) {
        // user:role:type:level; the level may itself contain ':'.
        let ty = label.split(':').nth(2).unwrap_or_default();
        if !section.selinux_types.iter().any(|t| t == ty) {
            out.push(meta.violation(
                "lsm.selinux",
                "process.selinuxLabel",
                label,
                join(&section.selinux_types),
                "securityContext.seLinuxOptions.type",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::rules::test_util::*;

    #[test]
    fn table() {
        let s = LsmSection {
            reason: "r".into(),
            mode: None,
            apparmor_profiles: vec!["cri-containerd.apparmor.d".into(), "localhost/*".into()],
            selinux_types: vec!["container_t".into()],
        };
        let cases: &[(&str, &[&str])] = &[
            ("{}", &[]),
            (
                r#"{"process":{"apparmorProfile":"cri-containerd.apparmor.d"}}"#,
                &[],
            ),
            (r#"{"process":{"apparmorProfile":"localhost/mine"}}"#, &[]),
            (
                r#"{"process":{"apparmorProfile":"unconfined"}}"#,
                &["lsm.apparmor"],
            ),
            (
                r#"{"process":{"selinuxLabel":"system_u:system_r:container_t:s0:c1,c2"}}"#,
                &[],
            ),
            (
                r#"{"process":{"selinuxLabel":"system_u:system_r:spc_t:s0"}}"#,
                &["lsm.selinux"],
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(ids(&check(&doc(spec), &s, meta())), *want, "{spec}");
        }
    }
}
