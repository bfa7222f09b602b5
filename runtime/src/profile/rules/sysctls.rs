//! `sysctls.allowed`: only namespaced sysctls Kubernetes considers safe.

use serde_json::Value;

use super::join;
use crate::profile::schema::SysctlsSection;
use crate::profile::violation::{RuleMeta, Violation};

pub fn check(doc: &Value, section: &SysctlsSection, meta: RuleMeta) -> Vec<Violation> {
    let Some(map) = doc.pointer("/linux/sysctl").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    keys.into_iter()
        // `kernel/core_pattern` and `kernel.core_pattern` name the same file.
        .filter(|k| !section.allowed.iter().any(|a| *a == k.replace('/', ".")))
        .map(|k| {
            meta.violation(
                "sysctls.allowed",
                format!("linux.sysctl.{k}"),
                format!("{k}={}", map[k.as_str()].as_str().unwrap_or_default()),
                join(&section.allowed),
                "spec.securityContext.sysctls",
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::rules::test_util::*;

    #[test]
    fn table() {
        let s = SysctlsSection {
            reason: "r".into(),
            mode: None,
            allowed: vec!["net.ipv4.tcp_syncookies".into()],
        };
        let cases: &[(&str, &[&str])] = &[
            ("{}", &[]),
            (
                r#"{"linux":{"sysctl":{"net.ipv4.tcp_syncookies":"1"}}}"#,
                &[],
            ),
            (
                r#"{"linux":{"sysctl":{"net/ipv4/tcp_syncookies":"1"}}}"#,
                &[],
            ),
            (
                r#"{"linux":{"sysctl":{"kernel.core_pattern":"|/x","net.ipv4.tcp_syncookies":"1"}}}"#,
                &["sysctls.allowed"],
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(ids(&check(&doc(spec), &s, meta())), *want, "{spec}");
        }
    }
}
