//! `landlock.*`: build the container's `LandlockPlan` from the profile's rules plus rules
//! derived from the spec (rootfs read+execute, writable mounts read-write), and refuse it
//! when the kernel cannot enforce it and the profile's compat level is `hard`.

use serde_json::Value;

use super::mounts::is_bind;
use crate::landlock::plan::{Compat, FsAccess, FsRule, LandlockPlan};
use crate::profile::host::HostFacts;
use crate::profile::schema::LandlockSection;
use crate::profile::violation::{Injection, RuleMeta, Violation};

use FsAccess::*;

/// First ABI that knows each filesystem right (landlock(7)).
pub fn abi_of(a: FsAccess) -> u8 {
    match a {
        Refer => 2,
        Truncate => 3,
        IoctlDev => 5,
        _ => 1,
    }
}

const ALL_FS: [FsAccess; 16] = [
    Execute, WriteFile, ReadFile, ReadDir, RemoveDir, RemoveFile, MakeChar, MakeDir, MakeReg,
    MakeSock, MakeFifo, MakeBlock, MakeSym, Refer, Truncate, IoctlDev,
];
const READ_EXEC: [FsAccess; 3] = [Execute, ReadFile, ReadDir];
/// What a writable mount needs: everything but creating device nodes and executing.
/// IoctlDev is included because terminals under /dev/pts need ioctls.
const READ_WRITE: [FsAccess; 13] = [
    ReadFile, ReadDir, WriteFile, RemoveDir, RemoveFile, MakeDir, MakeReg, MakeSock, MakeFifo,
    MakeSym, Refer, Truncate, IoctlDev,
];

/// Rights the plan handles (denies unless granted) for a target ABI.
pub fn handled_for(abi: u8) -> Vec<FsAccess> {
    ALL_FS.into_iter().filter(|a| abi_of(*a) <= abi).collect()
}

/// Mount types whose writes stay inside the container (kernel filesystems such as proc,
/// sysfs or cgroup get no write rule).
const WRITABLE_TYPES: [&str; 4] = ["tmpfs", "devpts", "mqueue", "bind"];

fn auto_rules(doc: &Value, handled: &[FsAccess]) -> Vec<FsRule> {
    let keep = |set: &[FsAccess]| -> Vec<FsAccess> {
        set.iter()
            .copied()
            .filter(|a| handled.contains(a))
            .collect()
    };
    let mut rules = vec![FsRule {
        path: "/".into(),
        access: keep(&READ_EXEC),
    }];
    for m in doc
        .pointer("/mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ty = if is_bind(m) {
            "bind"
        } else {
            m.get("type").and_then(Value::as_str).unwrap_or_default()
        };
        let ro = m
            .get("options")
            .and_then(Value::as_array)
            .is_some_and(|o| o.iter().any(|o| o.as_str() == Some("ro")));
        let Some(dest) = m.get("destination").and_then(Value::as_str) else {
            continue;
        };
        if WRITABLE_TYPES.contains(&ty) && !ro {
            rules.push(FsRule {
                path: dest.into(),
                access: keep(&READ_WRITE),
            });
        }
    }
    rules
}

/// Needed ABI of the plan: the profile's, raised for network rules and scopes.
pub fn needed_abi(section: &LandlockSection) -> u8 {
    let mut abi = section.min_abi;
    if section.tcp_bind.is_some() || section.tcp_connect.is_some() {
        abi = abi.max(4);
    }
    if section.scope_abstract_unix || section.scope_signal {
        abi = abi.max(6);
    }
    abi
}

/// The ABI a whole plan needs: its `min_abi`, its filesystem rights, TCP port rules
/// (ABI 4) and scopes (ABI 6).
pub fn plan_abi(plan: &LandlockPlan) -> u8 {
    let fs = plan
        .handled_fs
        .iter()
        .chain(plan.fs_rules.iter().flat_map(|r| r.access.iter()))
        .map(|a| abi_of(*a))
        .max()
        .unwrap_or(1);
    let mut abi = plan.min_abi.max(fs);
    if plan.tcp_bind.is_some() || plan.tcp_connect.is_some() {
        abi = abi.max(4);
    }
    if plan.scope_abstract_unix || plan.scope_signal {
        abi = abi.max(6);
    }
    abi
}

/// Every right of `plan` a kernel with Landlock ABI `host_abi` does not enforce:
/// filesystem rights, TCP bind/connect rules (ABI 4), scopes (ABI 6).
pub fn not_enforced(plan: &LandlockPlan, host_abi: u8) -> Vec<String> {
    let mut out: Vec<String> = plan
        .handled_fs
        .iter()
        .filter(|a| abi_of(**a) > host_abi)
        .map(|a| format!("{a:?}"))
        .collect();
    if host_abi < 4 {
        if plan.tcp_bind.is_some() {
            out.push("TCP bind ports".into());
        }
        if plan.tcp_connect.is_some() {
            out.push("TCP connect ports".into());
        }
    }
    if host_abi < 6 {
        if plan.scope_abstract_unix {
            out.push("abstract unix socket scope".into());
        }
        if plan.scope_signal {
            out.push("signal scope".into());
        }
    }
    out
}

/// What Landlock will enforce, or why it cannot: `(plan, violations, notes)`.
pub fn plan(
    doc: &Value,
    section: &LandlockSection,
    host: &HostFacts,
    meta: RuleMeta,
) -> (Option<LandlockPlan>, Vec<Violation>, Vec<Injection>) {
    if !section.enabled {
        return (None, Vec::new(), Vec::new());
    }
    let abi = needed_abi(section);
    let handled = handled_for(abi);
    let mut fs_rules = if section.auto_rules {
        auto_rules(doc, &handled)
    } else {
        Vec::new()
    };
    fs_rules.extend(section.fs.iter().map(|r| FsRule {
        path: r.path.as_str().into(),
        access: r.access.clone(),
    }));
    let plan = LandlockPlan {
        min_abi: abi,
        compat: section.compat,
        handled_fs: handled,
        fs_rules,
        tcp_bind: section.tcp_bind.clone(),
        tcp_connect: section.tcp_connect.clone(),
        scope_abstract_unix: section.scope_abstract_unix,
        scope_signal: section.scope_signal,
    };
    let host_abi = host.landlock_abi.unwrap_or(0);
    let mut violations = Vec::new();
    let mut notes = Vec::new();
    if host_abi < abi {
        let actual = match host.landlock_abi {
            Some(a) => format!("kernel Landlock ABI {a}"),
            None => "Landlock unavailable on this kernel".to_owned(),
        };
        match section.compat {
            Compat::Hard => violations.push(meta.violation(
                "landlock.abi",
                "(node kernel)",
                actual,
                format!("ABI >= {abi}"),
                "none (node kernel; schedule on another node)",
            )),
            Compat::BestEffort => {
                let dropped = not_enforced(&plan, host_abi);
                notes.push(Injection::new(
                    "landlock.abi",
                    "(node kernel)",
                    format!(
                        "best effort: {actual} < {abi}; not enforced: {}",
                        super::join(dropped)
                    ),
                ));
            }
        }
    }
    (Some(plan), violations, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::host::fake::host;
    use crate::profile::rules::test_util::*;

    fn section(min_abi: u8, compat: Compat) -> LandlockSection {
        LandlockSection {
            reason: "r".into(),
            mode: None,
            enabled: true,
            min_abi,
            compat,
            auto_rules: true,
            fs: vec![],
            tcp_bind: None,
            tcp_connect: None,
            scope_abstract_unix: false,
            scope_signal: false,
        }
    }

    #[test]
    fn auto_rules_from_mounts() {
        let d = doc(
            r#"{"mounts":[{"destination":"/proc","type":"proc","source":"proc"},
            {"destination":"/tmp","type":"tmpfs","source":"tmpfs"},
            {"destination":"/etc/x","type":"bind","source":"/a","options":["rbind","ro"]},
            {"destination":"/data","type":"bind","source":"/b","options":["rbind"]}]}"#,
        );
        let (p, v, n) = plan(&d, &section(3, Compat::Hard), &host(), meta());
        let p = p.unwrap();
        assert!(v.is_empty() && n.is_empty());
        let paths: Vec<_> = p
            .fs_rules
            .iter()
            .map(|r| r.path.to_str().unwrap())
            .collect();
        assert_eq!(paths, ["/", "/tmp", "/data"]);
        assert_eq!(p.fs_rules[0].access, vec![Execute, ReadFile, ReadDir]);
        assert!(
            !p.fs_rules[1].access.contains(&IoctlDev),
            "not handled at ABI 3"
        );
        assert!(p.handled_fs.contains(&Truncate) && !p.handled_fs.contains(&IoctlDev));
    }

    #[test]
    fn abi_table() {
        /// (host ABI, profile min_abi, compat, expected violations, expected notes)
        type Case = (Option<u8>, u8, Compat, &'static [&'static str], usize);
        let cases: &[Case] = &[
            (Some(6), 3, Compat::Hard, &[], 0),
            (Some(2), 3, Compat::Hard, &["landlock.abi"], 0),
            (None, 1, Compat::Hard, &["landlock.abi"], 0),
            (Some(2), 3, Compat::BestEffort, &[], 1),
        ];
        for (abi, min, compat, want, notes) in cases {
            let mut h = host();
            h.landlock_abi = *abi;
            let (_, v, n) = plan(&doc("{}"), &section(*min, *compat), &h, meta());
            assert_eq!(ids(&v), *want, "{abi:?} {min}");
            assert_eq!(n.len(), *notes);
        }
    }

    #[test]
    fn best_effort_names_every_right_not_enforced() {
        let mut s = section(1, Compat::BestEffort);
        s.tcp_bind = Some(vec![80]);
        s.scope_signal = true;
        let mut h = host();
        h.landlock_abi = Some(3);
        let (_, v, notes) = plan(&doc("{}"), &s, &h, meta());
        assert!(v.is_empty());
        let note = &notes[0].change;
        assert!(
            note.contains("TCP bind ports") && note.contains("signal scope"),
            "{note}"
        );
    }

    #[test]
    fn network_rules_raise_the_abi() {
        let mut s = section(1, Compat::Hard);
        s.tcp_bind = Some(vec![8080]);
        let mut h = host();
        h.landlock_abi = Some(3);
        let (p, v, _) = plan(&doc("{}"), &s, &h, meta());
        assert_eq!(p.unwrap().min_abi, 4);
        assert_eq!(ids(&v), vec!["landlock.abi"]);
    }

    #[test]
    fn disabled_means_no_plan() {
        let mut s = section(1, Compat::Hard);
        s.enabled = false;
        assert!(plan(&doc("{}"), &s, &host(), meta()).0.is_none());
    }
}
