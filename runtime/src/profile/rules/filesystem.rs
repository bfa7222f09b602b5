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
    for (rule, field, required) in lists {
        let miss = missing(doc, &format!("/linux/{field}"), required);
        if !miss.is_empty() {
            out.push(meta.violation(
                rule,
                format!("linux.{field}"),
                format!("missing {}", join(&miss)),
                format!("at least {}", join(required)),
                "securityContext.procMount / securityContext.privileged",
            ));
        }
    }
    out
}

/// With `on_missing = "inject"`, make the rootfs read-only and add the missing paths.
pub fn harden(doc: &mut Value, section: &FilesystemSection) -> Vec<Injection> {
    let mut out = Vec::new();
    if section.on_missing != OnMissing::Inject {
        return out;
    }
    if section.readonly_rootfs
        && doc.pointer("/root/readonly").and_then(Value::as_bool) != Some(true)
    {
        ensure_object(doc, "/root").insert("readonly".into(), Value::Bool(true));
        out.push(Injection::new(
            "filesystem.readonly_rootfs",
            "root.readonly",
            "set true",
        ));
    }
    if section.readonly_rootfs {
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
        }
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
    fn inject_fixes_everything() {
        let mut d = doc(r#"{"root":{"path":"r"}}"#);
        let s = section(OnMissing::Inject);
        assert_eq!(harden(&mut d, &s).len(), 4);
        assert_eq!(d["mounts"][0]["destination"], "/tmp");
        assert!(check(&d, &s, meta()).is_empty());
        assert!(harden(&mut d, &s).is_empty());
    }
}
