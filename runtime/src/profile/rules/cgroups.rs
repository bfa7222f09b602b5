//! `cgroups.*`: memory, CPU and pids limits present and below the profile's maxima;
//! defaults injected when the spec sets none (containerd sets no per-container pids limit).
//! Also `cgroups.devices`: no device-cgroup rule may allow every device (the privileged
//! shape); the runtime adds its own allow-list of safe devices (null, zero, tty, ...).

use serde_json::{json, Value};

use super::ensure_object;
use crate::profile::schema::{CgroupsSection, Limit, OnMissing};
use crate::profile::violation::{Injection, RuleMeta, Violation, UNSET};

/// CFS period injected with a default quota (the kernel's default, 100ms).
const DEFAULT_PERIOD_US: u64 = 100_000;

/// The spec's value for each limit, `None` when unset. A negative value is an explicit
/// "unlimited" and reads as `u64::MAX`.
fn memory(doc: &Value) -> Option<u64> {
    doc.pointer("/linux/resources/memory/limit")
        .and_then(Value::as_i64)
        .map(|v| u64::try_from(v).unwrap_or(u64::MAX))
}

fn pids(doc: &Value) -> Option<u64> {
    doc.pointer("/linux/resources/pids/limit")
        .and_then(Value::as_i64)
        .map(|v| if v <= 0 { u64::MAX } else { v as u64 })
}

fn cpu_millicores(doc: &Value) -> Option<u64> {
    let quota = doc
        .pointer("/linux/resources/cpu/quota")
        .and_then(Value::as_i64)?;
    if quota <= 0 {
        return Some(u64::MAX);
    }
    let period = doc
        .pointer("/linux/resources/cpu/period")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_PERIOD_US);
    Some((quota as u64).saturating_mul(1000) / period)
}

struct Control {
    rule: &'static str,
    path: &'static str,
    k8s: &'static str,
    read: fn(&Value) -> Option<u64>,
}

const CONTROLS: [Control; 3] = [
    Control {
        rule: "cgroups.memory",
        path: "linux.resources.memory.limit",
        k8s: "resources.limits.memory",
        read: memory,
    },
    Control {
        rule: "cgroups.cpu",
        path: "linux.resources.cpu.quota",
        k8s: "resources.limits.cpu",
        read: cpu_millicores,
    },
    Control {
        rule: "cgroups.pids",
        path: "linux.resources.pids.limit",
        k8s: "kubelet podPidsLimit",
        read: pids,
    },
];

fn limits(section: &CgroupsSection) -> [Limit; 3] {
    [section.memory_bytes, section.cpu_millicores, section.pids]
}

fn show(v: u64) -> String {
    if v == u64::MAX {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// A device-cgroup rule that allows every device, or every device of a type.
fn allows_all_devices(rule: &Value) -> bool {
    rule.get("allow").and_then(Value::as_bool) == Some(true)
        && (rule.get("major").is_none_or(Value::is_null)
            || rule.get("minor").is_none_or(Value::is_null))
}

pub fn check(doc: &Value, section: &CgroupsSection, meta: RuleMeta) -> Vec<Violation> {
    let mut out = Vec::new();
    let devices = doc
        .pointer("/linux/resources/devices")
        .and_then(Value::as_array);
    for (i, d) in devices.into_iter().flatten().enumerate() {
        if allows_all_devices(d) {
            out.push(meta.violation(
                "cgroups.devices",
                format!("linux.resources.devices[{i}]"),
                d.to_string(),
                "allow rules for single devices only",
                "securityContext.privileged",
            ));
        }
    }
    for (c, limit) in CONTROLS.iter().zip(limits(section)) {
        match (c.read)(doc) {
            None => {
                out.push(meta.violation(c.rule, c.path, UNSET, format!("<= {}", limit.max), c.k8s))
            }
            Some(v) if v > limit.max => out.push(meta.violation(
                c.rule,
                c.path,
                show(v),
                format!("<= {}", limit.max),
                c.k8s,
            )),
            Some(_) => {}
        }
    }
    out
}

/// With `on_missing = "inject"`, set each unset limit to the profile's default.
pub fn harden(doc: &mut Value, section: &CgroupsSection) -> Vec<Injection> {
    let mut out = Vec::new();
    if section.on_missing != OnMissing::Inject {
        return out;
    }
    if let Some(devices) = doc
        .pointer_mut("/linux/resources/devices")
        .and_then(Value::as_array_mut)
    {
        let before = devices.len();
        devices.retain(|d| !allows_all_devices(d));
        if devices.len() != before {
            out.push(Injection::new(
                "cgroups.devices",
                "linux.resources.devices",
                "removed allow-all device rules",
            ));
        }
    }
    if memory(doc).is_none() {
        let v = section.memory_bytes.default;
        ensure_object(doc, "/linux/resources/memory").insert("limit".into(), json!(v));
        out.push(Injection::new(
            CONTROLS[0].rule,
            CONTROLS[0].path,
            format!("set {v}"),
        ));
    }
    if cpu_millicores(doc).is_none() {
        let quota = section.cpu_millicores.default * DEFAULT_PERIOD_US / 1000;
        let cpu = ensure_object(doc, "/linux/resources/cpu");
        cpu.insert("quota".into(), json!(quota));
        cpu.insert("period".into(), json!(DEFAULT_PERIOD_US));
        out.push(Injection::new(
            CONTROLS[1].rule,
            CONTROLS[1].path,
            format!("set quota {quota} period {DEFAULT_PERIOD_US}"),
        ));
    }
    if pids(doc).is_none() {
        let v = section.pids.default;
        ensure_object(doc, "/linux/resources/pids").insert("limit".into(), json!(v));
        out.push(Injection::new(
            CONTROLS[2].rule,
            CONTROLS[2].path,
            format!("set {v}"),
        ));
    }
    out
}

/// Rule id of the note for a resource this host's cgroups cannot enforce.
pub const NOT_ENFORCED_RULE: &str = "cgroups.not_enforced";

/// What the spec asks of the cgroup that this host cannot enforce, said at admission
/// whatever the profile (nothing degrades silently): `disableOOMKiller` has no
/// cgroup v2 equivalent (v2 has no `oom_kill_disable`; runc ignores it there too).
pub fn host_notes(doc: &Value, host: &crate::profile::HostFacts) -> Vec<Injection> {
    let asks = doc
        .pointer("/linux/resources/memory/disableOOMKiller")
        .and_then(Value::as_bool)
        == Some(true);
    if asks && host.cgroup == crate::profile::CgroupVersion::V2 {
        vec![Injection::new(
            NOT_ENFORCED_RULE,
            "linux.resources.memory.disableOOMKiller",
            "not enforced: cgroup v2 has no oom_kill_disable (the OOM killer stays on, as under runc)",
        )]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disable_oom_killer_is_reported_not_enforced_on_cgroup_v2() {
        let d = serde_json::json!({"linux":{"resources":{"memory":{"disableOOMKiller":true}}}});
        let mut host = crate::profile::host::fake::host();
        host.cgroup = crate::profile::CgroupVersion::V2;
        let notes = host_notes(&d, &host);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].rule, NOT_ENFORCED_RULE);
        assert!(notes[0].change.starts_with("not enforced"), "{notes:?}");
        host.cgroup = crate::profile::CgroupVersion::V1;
        assert!(host_notes(&d, &host).is_empty());
        host.cgroup = crate::profile::CgroupVersion::V2;
        let off = serde_json::json!({"linux":{"resources":{"memory":{"disableOOMKiller":false}}}});
        assert!(host_notes(&off, &host).is_empty());
    }
    use crate::profile::rules::test_util::*;

    fn section(on_missing: OnMissing) -> CgroupsSection {
        CgroupsSection {
            reason: "r".into(),
            mode: None,
            on_missing,
            memory_bytes: Limit {
                default: 512,
                max: 1024,
            },
            cpu_millicores: Limit {
                default: 1000,
                max: 2000,
            },
            pids: Limit {
                default: 100,
                max: 1000,
            },
        }
    }

    #[test]
    fn table() {
        let r = |m: i64, q: i64, p: i64| {
            format!(
                r#"{{"linux":{{"resources":{{"memory":{{"limit":{m}}},"cpu":{{"quota":{q},"period":100000}},"pids":{{"limit":{p}}}}}}}}}"#
            )
        };
        let cases: Vec<(String, Vec<&str>)> = vec![
            (r(1024, 200_000, 1000), vec![]),
            (r(2048, 200_000, 1000), vec!["cgroups.memory"]),
            (r(-1, 200_000, 1000), vec!["cgroups.memory"]),
            (r(1024, 300_000, 1000), vec!["cgroups.cpu"]),
            (r(1024, -1, 1000), vec!["cgroups.cpu"]),
            (r(1024, 200_000, 0), vec!["cgroups.pids"]),
            (
                "{}".into(),
                vec!["cgroups.memory", "cgroups.cpu", "cgroups.pids"],
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
    fn inject_defaults_only_when_unset() {
        let s = section(OnMissing::Inject);
        let mut d = doc(r#"{"linux":{"resources":{"memory":{"limit":4096}}}}"#);
        assert_eq!(harden(&mut d, &s).len(), 2);
        assert_eq!(ids(&check(&d, &s, meta())), vec!["cgroups.memory"]);
        assert_eq!(d["linux"]["resources"]["pids"]["limit"], 100);
        assert_eq!(d["linux"]["resources"]["cpu"]["quota"], 100_000);
    }
}
