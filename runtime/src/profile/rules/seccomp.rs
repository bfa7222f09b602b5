//! `seccomp.*`: a filter is present (or the default-deny filter is injected), its
//! default action is one the profile allows, and it never allows a denied syscall.

use serde_json::Value;

use super::join;
use crate::profile::schema::{
    OnExcess, OnMissing, SeccompAction, SeccompSection, UserNotification,
};
use crate::profile::seccomp_data::SeccompFilter;
use crate::profile::violation::{Injection, RuleMeta, Violation, UNSET};

fn action(name: &str) -> Option<SeccompAction> {
    Some(match name {
        "SCMP_ACT_KILL_PROCESS" => SeccompAction::KillProcess,
        "SCMP_ACT_KILL_THREAD" => SeccompAction::KillThread,
        "SCMP_ACT_KILL" => SeccompAction::Kill,
        "SCMP_ACT_TRAP" => SeccompAction::Trap,
        "SCMP_ACT_ERRNO" => SeccompAction::Errno,
        "SCMP_ACT_NOTIFY" => SeccompAction::Notify,
        "SCMP_ACT_TRACE" => SeccompAction::Trace,
        "SCMP_ACT_LOG" => SeccompAction::Log,
        "SCMP_ACT_ALLOW" => SeccompAction::Allow,
        _ => return None,
    })
}

/// Actions that let the syscall run (a tracer or a notify supervisor can let it through).
fn lets_through(a: &str) -> bool {
    matches!(
        action(a),
        Some(
            SeccompAction::Allow
                | SeccompAction::Log
                | SeccompAction::Trace
                | SeccompAction::Notify
        )
    )
}

fn action_name(a: SeccompAction) -> &'static str {
    match a {
        SeccompAction::KillProcess => "SCMP_ACT_KILL_PROCESS",
        SeccompAction::KillThread => "SCMP_ACT_KILL_THREAD",
        SeccompAction::Kill => "SCMP_ACT_KILL",
        SeccompAction::Trap => "SCMP_ACT_TRAP",
        SeccompAction::Errno => "SCMP_ACT_ERRNO",
        SeccompAction::Notify => "SCMP_ACT_NOTIFY",
        SeccompAction::Trace => "SCMP_ACT_TRACE",
        SeccompAction::Log => "SCMP_ACT_LOG",
        SeccompAction::Allow => "SCMP_ACT_ALLOW",
    }
}

pub fn check(doc: &Value, section: &SeccompSection, meta: RuleMeta) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(filter) = doc.pointer("/linux/seccomp").filter(|v| !v.is_null()) else {
        out.push(meta.violation(
            "seccomp.required",
            "linux.seccomp",
            UNSET,
            "a default-deny filter",
            "securityContext.seccompProfile",
        ));
        return out;
    };
    let default = filter
        .get("defaultAction")
        .and_then(Value::as_str)
        .unwrap_or(UNSET);
    if !action(default).is_some_and(|a| section.allowed_default_actions.contains(&a)) {
        out.push(
            meta.violation(
                "seccomp.default_action",
                "linux.seccomp.defaultAction",
                default,
                join(
                    section
                        .allowed_default_actions
                        .iter()
                        .map(|a| action_name(*a)),
                ),
                "securityContext.seccompProfile",
            ),
        );
    }
    if section.user_notification == UserNotification::Forbid {
        out.extend(user_notification(filter, &meta));
    }
    let rules = filter.get("syscalls").and_then(Value::as_array);
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        if !lets_through(
            rule.get("action")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ) {
            continue;
        }
        let names = rule.get("names").and_then(Value::as_array);
        for (j, name) in names.into_iter().flatten().enumerate() {
            let name = name.as_str().unwrap_or_default();
            if let Some(d) = section.deny.iter().find(|d| d.name == name) {
                let mut v = meta.violation(
                    "seccomp.denied_syscall",
                    format!("linux.seccomp.syscalls[{i}].names[{j}]"),
                    name,
                    "not allowed by any rule",
                    "securityContext.seccompProfile",
                );
                v.reason = d.reason.clone();
                out.push(v);
            }
        }
    }
    out
}

/// `seccomp.user_notification = "forbid"`: one violation for a filter that hands
/// syscalls to a userspace agent, naming `listenerPath` (or the first notify rule, or
/// `listenerMetadata`, when the spec lacks the path).
fn user_notification(filter: &Value, meta: &RuleMeta) -> Option<Violation> {
    let field = |key: &str| filter.get(key).filter(|v| !v.is_null());
    let notify_rule = filter
        .get("syscalls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .position(|r| r.get("action").and_then(Value::as_str) == Some("SCMP_ACT_NOTIFY"));
    let (path, actual) = if let Some(path) = field("listenerPath") {
        (
            "linux.seccomp.listenerPath".to_owned(),
            path.as_str()
                .map_or_else(|| path.to_string(), str::to_owned),
        )
    } else if let Some(i) = notify_rule {
        (
            format!("linux.seccomp.syscalls[{i}].action"),
            "SCMP_ACT_NOTIFY".to_owned(),
        )
    } else if let Some(metadata) = field("listenerMetadata") {
        (
            "linux.seccomp.listenerMetadata".to_owned(),
            metadata
                .as_str()
                .map_or_else(|| metadata.to_string(), str::to_owned),
        )
    } else {
        return None;
    };
    let mut v = meta.violation(
        USER_NOTIFICATION_RULE,
        path,
        actual,
        "no seccomp agent (user_notification = \"forbid\")",
        "securityContext.seccompProfile",
    );
    v.reason = "a userspace seccomp agent would decide the notified syscalls; it checks \
                pointer arguments the container can still change (seccomp_unotify(2): not a \
                security boundary), and the runtime would connect to listenerPath as root"
        .to_owned();
    Some(v)
}

/// Rule id of the admission note on a filter that notifies a seccomp agent.
pub const USER_NOTIFICATION_RULE: &str = "seccomp.user_notification";

/// The admission note for a filter with `SCMP_ACT_NOTIFY` rules that a profile lets
/// run: the kernel does not decide those syscalls, the agent at `listenerPath` does
/// (and it is not a security boundary), so the record and the log say so.
pub fn user_notification_note(doc: &Value) -> Option<Injection> {
    let filter = doc.pointer("/linux/seccomp").filter(|v| !v.is_null())?;
    let mut names: Vec<&str> = filter
        .get("syscalls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.get("action").and_then(Value::as_str) == Some("SCMP_ACT_NOTIFY"))
        .flat_map(|r| {
            r.get("names")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(Value::as_str)
        .collect();
    if names.is_empty() {
        return None;
    }
    names.sort_unstable();
    names.dedup();
    let agent = filter
        .get("listenerPath")
        .and_then(Value::as_str)
        .unwrap_or(UNSET);
    Some(Injection::new(
        USER_NOTIFICATION_RULE,
        "linux.seccomp.listenerPath",
        format!(
            "not enforced by the kernel: the seccomp agent at {agent} decides {} \
             (SCMP_ACT_NOTIFY; it checks pointer arguments the container can still change, \
             seccomp_unotify(2))",
            names.join(", ")
        ),
    ))
}

/// Inject the default-deny filter when the spec has none (`on_missing = "inject"`), and
/// strip denied syscalls from a spec filter's allow rules (`on_denied_allowed = "strip"`).
pub fn harden(
    doc: &mut Value,
    section: &SeccompSection,
    filter: Option<&SeccompFilter>,
) -> Vec<Injection> {
    let mut out = Vec::new();
    let present = doc.pointer("/linux/seccomp").is_some_and(|v| !v.is_null());
    if !present {
        if let (OnMissing::Inject, Some(f)) = (section.on_missing, filter) {
            super::ensure_object(doc, "/linux").insert("seccomp".into(), f.to_oci_json());
            out.push(Injection::new(
                "seccomp.required",
                "linux.seccomp",
                format!("injected default-deny filter {:?}", f.name),
            ));
        }
        return out;
    }
    out.extend(merge_deny_args(doc, section));
    if section.on_denied_allowed != OnExcess::Strip {
        return out;
    }
    let Some(rules) = doc
        .pointer_mut("/linux/seccomp/syscalls")
        .and_then(Value::as_array_mut)
    else {
        return out;
    };
    let mut stripped = Vec::new();
    for rule in rules.iter_mut() {
        if !lets_through(
            rule.get("action")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ) {
            continue;
        }
        if let Some(names) = rule.get_mut("names").and_then(Value::as_array_mut) {
            names.retain(|n| {
                let n = n.as_str().unwrap_or_default();
                let denied = section.deny.iter().any(|d| d.name == n);
                if denied {
                    stripped.push(n.to_owned());
                }
                !denied
            });
        }
    }
    // A rule left with no names would be rejected by the seccomp translator.
    rules.retain(|r| {
        r.get("names")
            .and_then(Value::as_array)
            .is_none_or(|n| !n.is_empty())
    });
    if !stripped.is_empty() {
        stripped.sort();
        stripped.dedup();
        out.push(Injection::new(
            "seccomp.denied_syscall",
            "linux.seccomp.syscalls",
            format!("removed {} from the allow rules", join(&stripped)),
        ));
    }
    out
}

/// Add the profile's argument-level denials to the spec's own filter as EPERM rules.
/// The seccomp compiler puts the most restrictive action first, so they win over any
/// allow rule for the same syscall (containerd's default allows every `socket`).
/// The injected default filter needs none: its allow-list already leaves them out.
fn merge_deny_args(doc: &mut Value, section: &SeccompSection) -> Vec<Injection> {
    if section.deny_args.is_empty() {
        return Vec::new();
    }
    let seccomp = super::ensure_object(doc, "/linux/seccomp");
    let rules = seccomp
        .entry("syscalls")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(rules) = rules else {
        return Vec::new();
    };
    let mut names: Vec<&str> = Vec::new();
    for d in &section.deny_args {
        let args: Vec<Value> = d.args.iter().map(|a| a.to_oci_json()).collect();
        let rule = serde_json::json!({
            "names": [d.name],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": libc::EPERM,
            "args": args,
        });
        // Idempotent: a spec hardened once (`stockade spec --profile`) keeps one copy.
        if !rules.contains(&rule) {
            rules.push(rule);
            names.push(&d.name);
        }
    }
    if names.is_empty() {
        return Vec::new();
    }
    names.dedup();
    vec![Injection::new(
        "seccomp.deny_args",
        "linux.seccomp.syscalls",
        format!("added argument-level denials of {}", join(&names)),
    )]
}

/// Rule id under which syscall names unknown to the runtime's table are reported.
pub const UNKNOWN_SYSCALL_RULE: &str = "seccomp.unknown_syscall";

/// Drop from the spec's filter every syscall name the runtime's table does not know
/// (newer than the table, or made up) whose rule is no more restrictive than the
/// default action: the filter only gets stricter (`seccomp::droppable_unknown_names`).
///
/// Runs for every profile, sections or not: it is the runtime's reading of the spec,
/// not a profile control, and without it every pod from a newer containerd would be
/// refused. A name whose drop would weaken the filter is left in place, and the
/// seccomp translator refuses the container naming its rule.
pub fn drop_unknown_names(doc: &mut Value) -> Vec<Injection> {
    let Some(seccomp) = doc
        .pointer("/linux/seccomp")
        .filter(|v| !v.is_null())
        .and_then(|v| serde_json::from_value(v.clone()).ok())
    else {
        return Vec::new();
    };
    let Ok(unknown) = crate::seccomp::droppable_unknown_names(&seccomp) else {
        return Vec::new();
    };
    let Some(rules) = doc
        .pointer_mut("/linux/seccomp/syscalls")
        .and_then(Value::as_array_mut)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut emptied = Vec::new();
    // Back to front, so the indices still to visit stay valid.
    for u in unknown.iter().rev() {
        if let Some(names) = rules[u.entry]
            .get_mut("names")
            .and_then(Value::as_array_mut)
        {
            names.remove(u.index);
            if names.is_empty() {
                emptied.push(u.entry);
            }
        }
    }
    // A rule left with no names would be refused by the translator; `emptied` is in
    // descending order already.
    for entry in emptied {
        rules.remove(entry);
    }
    for u in unknown {
        out.push(Injection::new(
            UNKNOWN_SYSCALL_RULE,
            u.path(),
            format!(
                "dropped {:?}: not a syscall this runtime knows (table of {}); its rule is \
                 no more restrictive than the default action, which now applies to it",
                u.name,
                crate::seccomp::TABLE_KERNEL
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::rules::test_util::*;
    use crate::profile::schema::DeniedSyscall;

    fn section(on_missing: OnMissing, on_denied: OnExcess) -> SeccompSection {
        SeccompSection {
            reason: "r".into(),
            mode: None,
            on_missing,
            on_denied_allowed: on_denied,
            default_filter: "seccomp/default.toml".into(),
            allowed_default_actions: vec![SeccompAction::Errno, SeccompAction::KillProcess],
            deny: vec![DeniedSyscall {
                name: "io_uring_setup".into(),
                reason: "io_uring".into(),
            }],
            deny_args: Vec::new(),
            user_notification: UserNotification::Forbid,
        }
    }

    #[test]
    fn user_notification_is_forbidden_unless_allowed() {
        let cases: &[(&str, &str, &str)] = &[
            (
                r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","listenerPath":"/run/agent.sock","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}}}"#,
                "linux.seccomp.listenerPath",
                "/run/agent.sock",
            ),
            (
                r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}}}"#,
                "linux.seccomp.syscalls[1].action",
                "SCMP_ACT_NOTIFY",
            ),
            (
                r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","listenerMetadata":"m"}}}"#,
                "linux.seccomp.listenerMetadata",
                "m",
            ),
        ];
        for (spec, path, actual) in cases {
            let mut s = section(OnMissing::Refuse, OnExcess::Refuse);
            let got = check(&doc(spec), &s, meta());
            assert_eq!(ids(&got), ["seccomp.user_notification"], "{spec}");
            assert_eq!(got[0].path, *path);
            assert_eq!(got[0].actual, *actual);
            assert!(got[0].reason.contains("seccomp agent"), "{}", got[0].reason);
            s.user_notification = UserNotification::Allow;
            assert!(check(&doc(spec), &s, meta()).is_empty(), "{spec}");
        }
    }

    #[test]
    fn a_notifying_filter_gets_an_admission_note() {
        let d = doc(
            r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/a.sock","syscalls":[{"names":["mkdirat","mkdir"],"action":"SCMP_ACT_NOTIFY"},{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}}}"#,
        );
        let note = user_notification_note(&d).expect("a note");
        assert_eq!(note.rule, USER_NOTIFICATION_RULE);
        assert_eq!(note.path, "linux.seccomp.listenerPath");
        assert!(
            note.change
                .starts_with("not enforced by the kernel: the seccomp agent at /run/a.sock decides mkdir, mkdirat"),
            "{}",
            note.change
        );
        let plain =
            doc(r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a"}}}"#);
        assert_eq!(user_notification_note(&plain), None);
    }

    #[test]
    fn user_notification_defaults_to_forbid_and_refuses_unknown_values() {
        let base = r#"reason = "r"
on_missing = "refuse"
on_denied_allowed = "refuse"
default_filter = "f"
allowed_default_actions = ["errno"]
deny = []
"#;
        let parsed: SeccompSection = toml::from_str(base).expect("parses");
        assert_eq!(parsed.user_notification, UserNotification::Forbid);
        let allowed: SeccompSection =
            toml::from_str(&format!("{base}user_notification = \"allow\"\n")).expect("parses");
        assert_eq!(allowed.user_notification, UserNotification::Allow);
        let err =
            toml::from_str::<SeccompSection>(&format!("{base}user_notification = \"maybe\"\n"))
                .unwrap_err()
                .to_string();
        assert!(err.contains("maybe") && err.contains("forbid"), "{err}");
    }

    #[test]
    fn argument_denials_are_merged_into_a_spec_filter() {
        let mut s = section(OnMissing::Inject, OnExcess::Strip);
        s.deny_args = vec![crate::profile::schema::DeniedArgs {
            name: "socket".into(),
            args: vec![crate::profile::seccomp_data::ArgCondition {
                index: 0,
                op: crate::profile::seccomp_data::ArgOp::Eq,
                value: 40,
                mask: None,
            }],
            reason: "AF_VSOCK".into(),
        }];
        let mut d = doc(
            r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["socket"],"action":"SCMP_ACT_ALLOW"}]}}}"#,
        );
        let inj = harden(&mut d, &s, None);
        assert!(inj.iter().any(|i| i.rule == "seccomp.deny_args"), "{inj:?}");
        let rules = d["linux"]["seccomp"]["syscalls"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(rules[1]["errnoRet"], libc::EPERM);
        assert_eq!(rules[1]["args"][0]["value"], 40);
        assert_eq!(rules[1]["args"][0]["op"], "SCMP_CMP_EQ");
        // The compiled filter denies socket(AF_VSOCK) and still allows socket(AF_INET).
        let seccomp: oci_spec::runtime::LinuxSeccomp =
            serde_json::from_value(d["linux"]["seccomp"].clone()).unwrap();
        crate::seccomp::compile(&seccomp).expect("compiles");
        assert!(harden(&mut d, &s, None)
            .iter()
            .all(|i| i.rule != "seccomp.deny_args"));
        assert_eq!(
            d["linux"]["seccomp"]["syscalls"].as_array().unwrap().len(),
            2,
            "idempotent"
        );
    }

    #[test]
    fn table() {
        let cases: &[(&str, &[&str])] = &[
            ("{}", &["seccomp.required"]),
            (
                r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}}}"#,
                &[],
            ),
            (
                r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"}}}"#,
                &["seccomp.default_action"],
            ),
            (
                r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","io_uring_setup"],"action":"SCMP_ACT_ALLOW"}]}}}"#,
                &["seccomp.denied_syscall"],
            ),
            (
                r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["io_uring_setup"],"action":"SCMP_ACT_ERRNO"}]}}}"#,
                &[],
            ),
        ];
        for (spec, want) in cases {
            let got = check(
                &doc(spec),
                &section(OnMissing::Refuse, OnExcess::Refuse),
                meta(),
            );
            assert_eq!(ids(&got), *want, "{spec}");
        }
    }

    #[test]
    fn denied_syscall_path_and_reason() {
        let v = check(
            &doc(
                r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","io_uring_setup"],"action":"SCMP_ACT_ALLOW"}]}}}"#,
            ),
            &section(OnMissing::Refuse, OnExcess::Refuse),
            meta(),
        );
        assert_eq!(v[0].path, "linux.seccomp.syscalls[0].names[1]");
        assert_eq!(v[0].reason, "io_uring");
    }

    #[test]
    fn strip_removes_denied_and_empty_rules() {
        let mut d = doc(
            r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["io_uring_setup"],"action":"SCMP_ACT_ALLOW"},{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}}}"#,
        );
        let s = section(OnMissing::Refuse, OnExcess::Strip);
        assert_eq!(harden(&mut d, &s, None).len(), 1);
        assert!(check(&d, &s, meta()).is_empty());
        assert_eq!(
            d["linux"]["seccomp"]["syscalls"].as_array().unwrap().len(),
            1
        );
    }

    #[test]
    fn unknown_names_in_allow_rules_are_dropped_and_recorded() {
        let mut d = doc(
            r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["read","future_syscall_2099","write"],"action":"SCMP_ACT_ALLOW"},
                {"names":["made_up_a","made_up_b"],"action":"SCMP_ACT_ALLOW"},
                {"names":["uretprobe"],"action":"SCMP_ACT_ALLOW"}]}}}"#,
        );
        let got = drop_unknown_names(&mut d);
        let paths: Vec<_> = got.iter().map(|i| (i.rule, i.path.as_str())).collect();
        assert_eq!(
            paths,
            [
                (UNKNOWN_SYSCALL_RULE, "linux.seccomp.syscalls[0].names[1]"),
                (UNKNOWN_SYSCALL_RULE, "linux.seccomp.syscalls[1].names[0]"),
                (UNKNOWN_SYSCALL_RULE, "linux.seccomp.syscalls[1].names[1]"),
            ]
        );
        assert!(got[0].change.contains("\"future_syscall_2099\""), "{got:?}");
        // The emptied rule is gone; uretprobe (Linux 6.11) is in the table and stays.
        assert_eq!(
            d["linux"]["seccomp"]["syscalls"],
            serde_json::json!([
                {"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                {"names":["uretprobe"],"action":"SCMP_ACT_ALLOW"}
            ])
        );
        assert!(crate::seccomp::compile(
            &serde_json::from_value(d["linux"]["seccomp"].clone()).unwrap()
        )
        .unwrap()
        .dropped_unknown()
        .is_empty());
    }

    #[test]
    fn unknown_names_whose_drop_would_weaken_are_left_for_the_translator() {
        let spec = r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["made_up_a"],"action":"SCMP_ACT_ERRNO"}]}}}"#;
        let mut d = doc(spec);
        assert!(drop_unknown_names(&mut d).is_empty());
        assert_eq!(d, doc(spec));
        assert!(
            doc("{}") == {
                let mut e = doc("{}");
                drop_unknown_names(&mut e);
                e
            }
        );
    }

    #[test]
    fn inject_needs_a_filter() {
        let s = section(OnMissing::Inject, OnExcess::Refuse);
        let mut d = doc("{}");
        assert!(harden(&mut d, &s, None).is_empty());
        let f: SeccompFilter = toml::from_str(
            "schema = 1\nname = \"f\"\ndefault_action = \"errno\"\ndefault_errno = 1\narchitectures = []\nallow = [{ name = \"read\", why = \"r\" }]",
        )
        .unwrap();
        assert_eq!(harden(&mut d, &s, Some(&f)).len(), 1);
        assert!(check(&d, &s, meta()).is_empty());
    }
}
