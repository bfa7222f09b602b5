//! `filesystem.*`: read-only rootfs; masked and read-only paths a superset of the
//! profile's lists (which the linter keeps a superset of the Kubernetes defaults).

use serde_json::Value;

use super::{ensure_object, join, str_items};
use crate::profile::schema::{FilesystemSection, OnMissing};
use crate::profile::violation::{Injection, RuleMeta, Violation, UNSET};

fn missing<'a>(doc: &Value, pointer: &str, required: &'a [String]) -> Vec<&'a str> {
    let have = str_items(doc, pointer);
    required
        .iter()
        .map(String::as_str)
        .filter(|r| !have.iter().any(|(_, h)| h == r))
        .collect()
}

pub fn check(doc: &Value, section: &FilesystemSection, meta: RuleMeta) -> Vec<Violation> {
    let mut out = Vec::new();
    let ro = doc.pointer("/root/readonly").and_then(Value::as_bool);
    if section.readonly_rootfs && ro != Some(true) {
        out.push(meta.violation(
            "filesystem.readonly_rootfs",
            "root.readonly",
            ro.map_or(UNSET.to_owned(), |b| b.to_string()),
            "true",
            "securityContext.readOnlyRootFilesystem",
        ));
    }
    let lists = [
        (
            "filesystem.masked_paths",
            "maskedPaths",
            &section.masked_paths,
        ),
        (
            "filesystem.readonly_paths",
            "readonlyPaths",
            &section.readonly_paths,
        ),
    ];
    // Masked paths carry their own reason when the profile gives one.
    let masked_meta = RuleMeta {
        reason: section.masked_reason.as_deref().unwrap_or(meta.reason),
        mode: meta.mode,
    };
    for (rule, field, required) in lists {
        let miss = missing(doc, &format!("/linux/{field}"), required);
        if !miss.is_empty() {
            let actual = if unmasked(doc, field) {
                "none: an unmasked /proc (procMount Unmasked or privileged)".to_owned()
            } else {
                format!("missing {}", join(&miss))
            };
            out.push(masked_meta.violation(
                rule,
                format!("linux.{field}"),
                actual,
                format!("at least {}", join(required)),
                "securityContext.procMount / securityContext.privileged",
            ));
        }
    }
    out
}

/// Whether the spec masks nothing at all in `field`: the shape of an unmasked /proc
/// (Kubernetes `procMount: Unmasked`) or a privileged container, for which containerd
/// leaves `maskedPaths` and `readonlyPaths` empty.
fn unmasked(doc: &Value, field: &str) -> bool {
    str_items(doc, &format!("/linux/{field}")).is_empty()
}

/// Complete the masked and read-only path lists; with `on_missing = "inject"` also make
/// the rootfs read-only and fill lists the spec left empty.
///
/// A spec that masks some paths asked for a masked /proc (`procMount: Default`): the
/// paths it lacks are only ones its containerd version does not know yet (containerd
/// 1.6 lacks `/sys/devices/virtual/powercap`), so they are added whatever `on_missing`
/// says — refusing would refuse every compliant pod from that containerd. Only an empty
/// list (unmasked or privileged) is the spec's own choice, and `on_missing` decides it —
/// except for a CRI pod sandbox, whose lists containerd leaves empty.
pub fn harden(doc: &mut Value, section: &FilesystemSection) -> Vec<Injection> {
    let mut out = Vec::new();
    let inject = section.on_missing == OnMissing::Inject;
    if inject
        && section.readonly_rootfs
        && doc.pointer("/root/readonly").and_then(Value::as_bool) != Some(true)
    {
        ensure_object(doc, "/root").insert("readonly".into(), Value::Bool(true));
        out.push(Injection::new(
            "filesystem.readonly_rootfs",
            "root.readonly",
            "set true",
        ));
    }
    if inject && section.readonly_rootfs {
        out.extend(add_tmpfs(doc, &section.writable_tmpfs));
    }
    let lists = [
        (
            "filesystem.masked_paths",
            "maskedPaths",
            &section.masked_paths,
        ),
        (
            "filesystem.readonly_paths",
            "readonlyPaths",
            &section.readonly_paths,
        ),
    ];
    for (rule, field, required) in lists {
        // A pod sandbox's empty lists are containerd's doing, not a request for an
        // unmasked /proc: completed like any other.
        if !inject && unmasked(doc, field) && !super::is_pod_sandbox(doc) {
            continue;
        }
        let miss: Vec<String> = missing(doc, &format!("/linux/{field}"), required)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if miss.is_empty() {
            continue;
        }
        let linux = ensure_object(doc, "/linux");
        let list = linux
            .entry(field)
            .or_insert_with(|| Value::Array(Vec::new()));
        if !list.is_array() {
            *list = Value::Array(Vec::new());
        }
        if let Value::Array(a) = list {
            a.extend(miss.iter().cloned().map(Value::String));
        }
        out.push(Injection::new(
            rule,
            format!("linux.{field}"),
            format!("added {}", join(&miss)),
        ));
    }
    out
}

/// Mount a tmpfs at each of `dirs` the spec does not already mount something on.
fn add_tmpfs(doc: &mut Value, dirs: &[String]) -> Vec<Injection> {
    let mut out = Vec::new();
    let Some(obj) = doc.as_object_mut() else {
        return out;
    };
    let mounts = obj
        .entry("mounts")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(mounts) = mounts else {
        return out;
    };
    for dir in dirs {
        let taken = mounts
            .iter()
            .any(|m| m.get("destination").and_then(Value::as_str) == Some(dir.as_str()));
        if taken {
            continue;
        }
        mounts.push(serde_json::json!({
            "destination": dir,
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777", "size=65536k"],
        }));
        out.push(Injection::new(
            "filesystem.readonly_rootfs",
            format!("mounts[{}]", mounts.len() - 1),
            format!("added tmpfs at {dir}"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::rules::test_util::*;

    fn section(on_missing: OnMissing) -> FilesystemSection {
        FilesystemSection {
            reason: "r".into(),
            mode: None,
            on_missing,
            readonly_rootfs: true,
            writable_tmpfs: vec!["/tmp".into()],
            masked_paths: vec!["/proc/kcore".into()],
            readonly_paths: vec!["/proc/sys".into()],
            masked_reason: None,
        }
    }

    #[test]
    fn masked_path_violations_quote_their_own_reason() {
        let d = doc(r#"{"root":{"path":"r","readonly":false},"linux":{}}"#);
        let mut s = section(OnMissing::Refuse);
        s.masked_reason = Some("procMount Default".into());
        let v = check(&d, &s, meta());
        let reason = |rule: &str| v.iter().find(|x| x.rule == rule).unwrap().reason.clone();
        assert_eq!(reason("filesystem.masked_paths"), "procMount Default");
        assert_eq!(reason("filesystem.readonly_paths"), "procMount Default");
        // The read-only root keeps the section's reason.
        assert_ne!(reason("filesystem.readonly_rootfs"), "procMount Default");
    }

    #[test]
    fn table() {
        let cases: &[(&str, &[&str])] = &[
            (
                r#"{"root":{"path":"r","readonly":true},"linux":{"maskedPaths":["/proc/kcore","/x"],"readonlyPaths":["/proc/sys"]}}"#,
                &[],
            ),
            (
                r#"{"root":{"path":"r"},"linux":{"maskedPaths":["/proc/kcore"],"readonlyPaths":["/proc/sys"]}}"#,
                &["filesystem.readonly_rootfs"],
            ),
            (
                r#"{"root":{"path":"r","readonly":true},"linux":{"maskedPaths":[],"readonlyPaths":[]}}"#,
                &["filesystem.masked_paths", "filesystem.readonly_paths"],
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(
                ids(&check(&doc(spec), &section(OnMissing::Refuse), meta())),
                *want,
                "{spec}"
            );
        }
    }

    #[test]
    fn partial_lists_are_completed_even_when_refusing() {
        // containerd 1.6's masked paths lack /sys/devices/virtual/powercap (issue 7).
        let mut d = doc(
            r#"{"root":{"path":"r","readonly":true},"linux":{"maskedPaths":["/x"],"readonlyPaths":["/proc/sys"]}}"#,
        );
        let s = section(OnMissing::Refuse);
        let injected = harden(&mut d, &s);
        assert_eq!(injected.len(), 1, "{injected:?}");
        assert_eq!(injected[0].rule, "filesystem.masked_paths");
        assert_eq!(injected[0].change, "added /proc/kcore");
        assert_eq!(
            d["linux"]["maskedPaths"],
            serde_json::json!(["/x", "/proc/kcore"])
        );
        assert!(check(&d, &s, meta()).is_empty());
    }

    #[test]
    fn empty_lists_stay_a_violation_when_refusing() {
        for spec in [
            r#"{"root":{"path":"r","readonly":true},"linux":{"maskedPaths":[],"readonlyPaths":[]}}"#,
            r#"{"root":{"path":"r","readonly":true},"linux":{}}"#,
        ] {
            let mut d = doc(spec);
            let s = section(OnMissing::Refuse);
            assert!(harden(&mut d, &s).is_empty(), "{spec}");
            let v = check(&d, &s, meta());
            assert_eq!(
                ids(&v),
                ["filesystem.masked_paths", "filesystem.readonly_paths"],
                "{spec}"
            );
            assert!(v[0].actual.contains("unmasked /proc"), "{v:?}");
        }
    }

    #[test]
    fn a_pod_sandbox_gets_its_empty_lists_completed_even_when_refusing() {
        let sandbox = r#"{"root":{"path":"r","readonly":true},"linux":{},
            "annotations":{"io.kubernetes.cri.container-type":"sandbox"}}"#;
        let mut d = doc(sandbox);
        let s = section(OnMissing::Refuse);
        assert_eq!(harden(&mut d, &s).len(), 2);
        assert!(check(&d, &s, meta()).is_empty());
        // The same shape in an app container is still the spec's choice: refused.
        let mut d = doc(&sandbox.replace("\"sandbox\"", "\"container\""));
        assert!(harden(&mut d, &s).is_empty());
        assert_eq!(check(&d, &s, meta()).len(), 2);
    }

    #[test]
    fn inject_fixes_everything() {
        let mut d = doc(r#"{"root":{"path":"r"}}"#);
        let s = section(OnMissing::Inject);
        assert_eq!(harden(&mut d, &s).len(), 4);
        assert_eq!(d["mounts"][0]["destination"], "/tmp");
        assert!(check(&d, &s, meta()).is_empty());
        assert!(harden(&mut d, &s).is_empty());
    }
}
