//! `devices.*`: the host devices a container gets are decided at admission. A
//! privileged pod's spec lists every host device node in `linux.devices` (about a
//! hundred) and allows them in the device cgroup; admitting it would only fail later,
//! at rootfs preparation, or hand the container the host's disks. Each device node and
//! each device-cgroup allow rule for one device must be on the profile's allow-list
//! (path, type, major and minor all matching for a node), else it is stripped or
//! refused per `on_excess`.
//!
//! Allow rules for *every* device, or a whole type or major (`c *:* m`, `c 136:*`),
//! are `cgroups.devices`'s to judge; this rule looks only at rules naming one device.

use serde_json::Value;

use crate::profile::schema::{AllowedDevice, DeviceType, DevicesSection, OnExcess};
use crate::profile::violation::{Injection, RuleMeta, Violation};

/// How many offending entries a message spells out before summarising.
const SHOWN: usize = 8;

fn kind(t: &str) -> Option<DeviceType> {
    match t {
        "c" | "u" => Some(DeviceType::Char),
        "b" => Some(DeviceType::Block),
        _ => None,
    }
}

fn num(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `linux.devices[i]` as `path (t major:minor)`.
fn describe_node(d: &Value) -> String {
    format!(
        "{} ({} {}:{})",
        str_of(d, "path"),
        str_of(d, "type"),
        num(d, "major").map_or("?".into(), |n| n.to_string()),
        num(d, "minor").map_or("?".into(), |n| n.to_string()),
    )
}

fn node_allowed(section: &DevicesSection, d: &Value) -> bool {
    let (Some(t), Some(major), Some(minor)) =
        (kind(str_of(d, "type")), num(d, "major"), num(d, "minor"))
    else {
        return false;
    };
    section
        .allowed
        .iter()
        .any(|a| a.path == str_of(d, "path") && a.kind == t && a.major == major && a.minor == minor)
}

/// An allow rule naming exactly one device (type, major and minor all set).
fn single_device_allow(rule: &Value) -> Option<(DeviceType, i64, i64)> {
    if rule.get("allow").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    Some((
        kind(rule.get("type").and_then(Value::as_str)?)?,
        num(rule, "major")?,
        num(rule, "minor")?,
    ))
}

fn rule_allowed(section: &DevicesSection, rule: &Value) -> bool {
    match single_device_allow(rule) {
        Some((t, major, minor)) => section
            .allowed
            .iter()
            .any(|a: &AllowedDevice| a.kind == t && a.major == major && a.minor == minor),
        // Deny rules, and allow rules for many devices (cgroups.devices).
        None => true,
    }
}

fn describe_rule(rule: &Value) -> String {
    format!(
        "{} {}:{} {}",
        str_of(rule, "type"),
        num(rule, "major").map_or("*".into(), |n| n.to_string()),
        num(rule, "minor").map_or("*".into(), |n| n.to_string()),
        str_of(rule, "access"),
    )
}

/// `n items: a, b, ... (and k more)`.
fn summary(what: &str, items: &[String]) -> String {
    let shown = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let more = items.len().saturating_sub(SHOWN);
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    format!("{} {what}: {shown}{tail}", items.len())
}

fn allowed_list(section: &DevicesSection) -> String {
    let list: Vec<String> = section
        .allowed
        .iter()
        .map(|a| format!("{} ({} {}:{})", a.path, a.kind.letter(), a.major, a.minor))
        .collect();
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(", ")
    }
}

fn excess_nodes(doc: &Value, section: &DevicesSection) -> Vec<String> {
    doc.pointer("/linux/devices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|d| !node_allowed(section, d))
        .map(describe_node)
        .collect()
}

fn excess_rules(doc: &Value, section: &DevicesSection) -> Vec<String> {
    doc.pointer("/linux/resources/devices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| !rule_allowed(section, r))
        .map(describe_rule)
        .collect()
}

pub fn check(doc: &Value, section: &DevicesSection, meta: RuleMeta) -> Vec<Violation> {
    let mut out = Vec::new();
    let nodes = excess_nodes(doc, section);
    if !nodes.is_empty() {
        out.push(meta.violation(
            "devices.node",
            "linux.devices",
            summary("device nodes outside the allow-list", &nodes),
            allowed_list(section),
            "securityContext.privileged / device plugin resources",
        ));
    }
    let rules = excess_rules(doc, section);
    if !rules.is_empty() {
        out.push(meta.violation(
            "devices.cgroup_rule",
            "linux.resources.devices",
            summary("device cgroup allow rules outside the allow-list", &rules),
            allowed_list(section),
            "securityContext.privileged / device plugin resources",
        ));
    }
    out
}

/// With `on_excess = "strip"`, remove every device node and device-cgroup allow rule
/// outside the allow-list (the container runs without those host devices).
pub fn harden(doc: &mut Value, section: &DevicesSection) -> Vec<Injection> {
    let mut out = Vec::new();
    if section.on_excess != OnExcess::Strip {
        return out;
    }
    let nodes = excess_nodes(doc, section);
    if let Some(list) = doc
        .pointer_mut("/linux/devices")
        .and_then(Value::as_array_mut)
    {
        list.retain(|d| node_allowed(section, d));
    }
    if !nodes.is_empty() {
        out.push(Injection::new(
            "devices.node",
            "linux.devices",
            format!("removed {}", summary("device nodes", &nodes)),
        ));
    }
    let rules = excess_rules(doc, section);
    if let Some(list) = doc
        .pointer_mut("/linux/resources/devices")
        .and_then(Value::as_array_mut)
    {
        list.retain(|r| rule_allowed(section, r));
    }
    if !rules.is_empty() {
        out.push(Injection::new(
            "devices.cgroup_rule",
            "linux.resources.devices",
            format!("removed {}", summary("device cgroup allow rules", &rules)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::rules::test_util::*;

    fn dev(path: &str, major: i64, minor: i64) -> AllowedDevice {
        AllowedDevice {
            path: path.into(),
            kind: DeviceType::Char,
            major,
            minor,
            reason: "r".into(),
        }
    }

    fn section(on_excess: OnExcess) -> DevicesSection {
        DevicesSection {
            reason: "r".into(),
            mode: None,
            on_excess,
            allowed: vec![
                dev("/dev/null", 1, 3),
                dev("/dev/zero", 1, 5),
                dev("/dev/net/tun", 10, 200),
            ],
        }
    }

    #[test]
    fn table() {
        let cases: &[(&str, &[&str])] = &[
            ("{}", &[]),
            (
                r#"{"linux":{"devices":[{"path":"/dev/null","type":"c","major":1,"minor":3}]}}"#,
                &[],
            ),
            // "u" is the same character node.
            (
                r#"{"linux":{"devices":[{"path":"/dev/zero","type":"u","major":1,"minor":5}]}}"#,
                &[],
            ),
            // A harmless name on another device is not the allowed device.
            (
                r#"{"linux":{"devices":[{"path":"/dev/null","type":"b","major":8,"minor":0}]}}"#,
                &["devices.node"],
            ),
            (
                r#"{"linux":{"devices":[{"path":"/dev/sda","type":"b","major":8,"minor":0}]}}"#,
                &["devices.node"],
            ),
            (
                r#"{"linux":{"devices":[{"path":"/dev/null","type":"c"}]}}"#,
                &["devices.node"],
            ),
            (
                r#"{"linux":{"resources":{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":200,"access":"rwm"}]}}}"#,
                &[],
            ),
            (
                r#"{"linux":{"resources":{"devices":[{"allow":true,"type":"b","major":8,"minor":0,"access":"rw"}]}}}"#,
                &["devices.cgroup_rule"],
            ),
            // Wildcards are cgroups.devices's; deny rules are always fine.
            (
                r#"{"linux":{"resources":{"devices":[{"allow":true,"access":"rwm"},{"allow":true,"type":"c","major":136,"access":"rwm"},{"allow":false,"type":"b","major":8,"minor":0,"access":"rwm"}]}}}"#,
                &[],
            ),
        ];
        for (spec, want) in cases {
            let got = check(&doc(spec), &section(OnExcess::Refuse), meta());
            assert_eq!(ids(&got), *want, "{spec}");
        }
    }

    #[test]
    fn a_privileged_device_list_is_one_violation_per_field_naming_a_few() {
        let nodes: Vec<Value> = (0..100)
            .map(|i| serde_json::json!({"path": format!("/dev/d{i}"), "type": "b", "major": 8, "minor": i}))
            .chain([serde_json::json!({"path":"/dev/null","type":"c","major":1,"minor":3})])
            .collect();
        let d = serde_json::json!({"linux": {"devices": nodes}});
        let v = check(&d, &section(OnExcess::Refuse), meta());
        assert_eq!(ids(&v), ["devices.node"]);
        assert_eq!(v[0].path, "linux.devices");
        assert!(
            v[0].actual.starts_with(
                "100 device nodes outside the allow-list: /dev/d0 (b 8:0), /dev/d1 (b 8:1)"
            ),
            "{}",
            v[0].actual
        );
        assert!(v[0].actual.ends_with("(and 92 more)"), "{}", v[0].actual);
    }

    #[test]
    fn strip_keeps_only_allowed_devices_and_rules() {
        let mut d = doc(
            r#"{"linux":{"devices":[{"path":"/dev/sda","type":"b","major":8,"minor":0},{"path":"/dev/null","type":"c","major":1,"minor":3}],
                "resources":{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"b","major":8,"minor":0,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}}}"#,
        );
        let s = section(OnExcess::Strip);
        let inj = harden(&mut d, &s);
        assert_eq!(
            inj.iter().map(|i| i.rule).collect::<Vec<_>>(),
            ["devices.node", "devices.cgroup_rule"]
        );
        assert_eq!(inj[0].change, "removed 1 device nodes: /dev/sda (b 8:0)");
        assert_eq!(
            d["linux"]["devices"],
            serde_json::json!([{"path":"/dev/null","type":"c","major":1,"minor":3}])
        );
        assert_eq!(
            d["linux"]["resources"]["devices"].as_array().map(Vec::len),
            Some(2)
        );
        assert!(check(&d, &s, meta()).is_empty());
        assert!(harden(&mut d, &s).is_empty());
        // Refuse never edits.
        let mut r =
            doc(r#"{"linux":{"devices":[{"path":"/dev/sda","type":"b","major":8,"minor":0}]}}"#);
        assert!(harden(&mut r, &section(OnExcess::Refuse)).is_empty());
        assert_eq!(r["linux"]["devices"].as_array().map(Vec::len), Some(1));
    }
}
