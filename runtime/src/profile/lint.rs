//! `stockade profile lint`: problems in a profile that loading alone does not catch —
//! contradictions, unknown syscalls, rules this kernel cannot enforce, and lists that fall
//! short of the Kubernetes defaults.

use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use super::host::HostFacts;
use super::node_paths::{NodePaths, VARIABLES};
use super::rules::landlock::abi_of;
use super::schema::{
    LandlockSection, OnMissing, Profile, RootPolicy, SeccompAction, SeccompSection,
};
use crate::landlock::plan::Compat;

/// Kubernetes' default masked paths (`/proc` and `/sys` entries hidden from containers).
pub const K8S_MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// Kubernetes' default read-only paths.
pub const K8S_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
/// Kubernetes' safe sysctl set (pod-security-admission `sysctls` check).
pub const K8S_SAFE_SYSCTLS: [&str; 10] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
/// Capabilities that amount to host root or a kernel attack path.
const DANGEROUS_CAPS: [&str; 8] = [
    "CAP_SYS_ADMIN",
    "CAP_SYS_MODULE",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_NET_ADMIN",
    "CAP_BPF",
    "CAP_DAC_READ_SEARCH",
    "CAP_SYS_BOOT",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum LintFinding {
    /// The profile has no section for this control, so it enforces nothing there.
    SectionAbsent {
        section: &'static str,
        consequence: &'static str,
    },
    SeccompFilterNotLoaded,
    UnknownSyscall {
        list: &'static str,
        name: String,
    },
    AllowedAndDenied {
        name: String,
    },
    DuplicateSyscall {
        name: String,
    },
    PermissiveDefaultAction {
        action: SeccompAction,
    },
    DangerousCapability {
        name: String,
    },
    RootWithoutUserns,
    MissingKubernetesDefault {
        key: &'static str,
        path: &'static str,
    },
    UnsafeSysctl {
        name: String,
    },
    HostNamespaceAllowed {
        ns: &'static str,
    },
    AnyBindSource {
        prefix: String,
    },
    LandlockUnenforceable {
        needed: u8,
        host: Option<u8>,
    },
    LandlockDegraded {
        needed: u8,
        host: Option<u8>,
    },
    LandlockRightAboveAbi {
        path: String,
        right: String,
        abi: u8,
        min_abi: u8,
    },
    /// `tcp_connect = []`: no outbound TCP at all (DNS over TCP, HTTPS, databases).
    NoOutboundTcp,
    /// A bind source prefix spells out a standard node directory instead of its
    /// variable: it breaks on nodes whose directories differ.
    HardcodedNodePath {
        prefix: String,
        variable: &'static str,
    },
    /// No spec a supported containerd (1.6, 1.7, 2.x) sends through the CRI can satisfy
    /// this rule: every pod, or every pod of a kind, would be refused.
    NeverSatisfied {
        key: &'static str,
        why: String,
    },
}

impl LintFinding {
    pub fn severity(&self) -> Severity {
        use LintFinding::*;
        match self {
            SeccompFilterNotLoaded
            | UnknownSyscall { .. }
            | AllowedAndDenied { .. }
            | RootWithoutUserns
            | MissingKubernetesDefault { .. }
            | LandlockUnenforceable { .. } => Severity::Error,
            _ => Severity::Warning,
        }
    }
}

impl LintFinding {
    /// The profile key the finding is about and the list entry within it, so the
    /// command line can point at `file:line:column`. `None` for findings about the
    /// profile as a whole (an absent section).
    pub fn location(&self) -> Option<(&'static str, Option<String>)> {
        use LintFinding::*;
        Some(match self {
            SectionAbsent { .. } => return None,
            SeccompFilterNotLoaded => ("seccomp.default_filter", None),
            UnknownSyscall { list, name } if *list == "seccomp.deny" => {
                ("seccomp.deny", Some(name.clone()))
            }
            UnknownSyscall { .. } => ("seccomp.default_filter", None),
            AllowedAndDenied { name } => ("seccomp.deny", Some(name.clone())),
            DuplicateSyscall { .. } => ("seccomp.default_filter", None),
            PermissiveDefaultAction { .. } => ("seccomp.allowed_default_actions", None),
            DangerousCapability { name } => ("capabilities.allowed", Some(name.clone())),
            RootWithoutUserns => ("process.root", None),
            MissingKubernetesDefault { key, .. } => (*key, None),
            UnsafeSysctl { name } => ("sysctls.allowed", Some(name.clone())),
            HostNamespaceAllowed { .. } => ("namespaces.host_forbidden", None),
            AnyBindSource { prefix } => ("mounts.bind_source_prefixes", Some(prefix.clone())),
            LandlockUnenforceable { .. } | LandlockDegraded { .. } => ("landlock.min_abi", None),
            LandlockRightAboveAbi { path, .. } => ("landlock.fs", Some(path.clone())),
            NoOutboundTcp => ("landlock.tcp_connect", None),
            HardcodedNodePath { prefix, .. } => {
                ("mounts.bind_source_prefixes", Some(prefix.clone()))
            }
            NeverSatisfied { key, .. } => (*key, None),
        })
    }
}

fn abi(a: &Option<u8>) -> String {
    a.map_or("none".to_owned(), |a| a.to_string())
}

impl fmt::Display for LintFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use LintFinding::*;
        match self {
            SectionAbsent { section, consequence } => write!(f, "{section}: section absent — {consequence}"),
            SeccompFilterNotLoaded => write!(f, "seccomp: the default filter is not loaded but the profile injects it"),
            UnknownSyscall { list, name } => write!(f, "seccomp: {list}: unknown syscall {name:?}{}", crate::seccomp::closest_syscall(name).map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default()),
            AllowedAndDenied { name } => write!(f, "seccomp: {name} is both allowed by the default filter and denied"),
            DuplicateSyscall { name } => write!(f, "seccomp: {name} is allowed unconditionally more than once"),
            PermissiveDefaultAction { action } => write!(f, "seccomp.allowed_default_actions: {action:?} lets unlisted syscalls run"),
            DangerousCapability { name } => write!(f, "capabilities.allowed: {name} amounts to host privileges"),
            RootWithoutUserns => write!(f, "process.root = \"if_userns\" but user_namespace.required is false"),
            MissingKubernetesDefault { key, path } => write!(f, "{key}: missing Kubernetes default {path}"),
            UnsafeSysctl { name } => write!(f, "sysctls.allowed: {name} is not in Kubernetes' safe set"),
            HostNamespaceAllowed { ns } => write!(f, "namespaces.host_forbidden: joining the host {ns} namespace is allowed"),
            AnyBindSource { prefix } => write!(f, "mounts.bind_source_prefixes: {prefix:?} allows binding most of the host"),
            LandlockUnenforceable { needed, host } => write!(f, "landlock: needs ABI {needed}, kernel has {} and compat is hard: every container will be refused", abi(host)),
            LandlockDegraded { needed, host } => write!(f, "landlock: needs ABI {needed}, kernel has {}: enforced best effort", abi(host)),
            LandlockRightAboveAbi { path, right, abi, min_abi } => write!(f, "landlock.fs {path}: {right} needs ABI {abi} > min_abi {min_abi}"),
            NoOutboundTcp => write!(f, "landlock.tcp_connect = []: containers may not open any TCP connection (no DNS over TCP, HTTPS or databases); omit the key to leave outbound TCP unrestricted"),
            HardcodedNodePath { prefix, variable } => write!(f, "mounts.bind_source_prefixes: {prefix:?} hard-codes the standard {variable} directory: write ${{{variable}}}{} so nodes that name their own directories keep working", prefix.strip_prefix(&NodePaths::default().resolve(&format!("${{{variable}}}")).unwrap_or_default()).unwrap_or("")),
            NeverSatisfied { key, why } => write!(f, "{key}: no spec from containerd 1.6, 1.7 or 2.x can satisfy it: {why}"),
        }
    }
}

/// What a container gets when the profile has no section for a control, per section in
/// file order. Absence is a warning, not an error: a profile may deliberately leave a
/// control to the spec (see `unconfined.toml`), but a reviewer must see it.
fn absent_sections(p: &Profile) -> Vec<LintFinding> {
    let sections: [(&'static str, bool, &'static str); 12] = [
        (
            "seccomp",
            p.seccomp.is_none(),
            "containers get no syscall filter",
        ),
        (
            "capabilities",
            p.capabilities.is_none(),
            "containers keep every capability their spec asks for",
        ),
        (
            "process",
            p.process.is_none(),
            "containers may run as root and gain privileges (no_new_privileges is not enforced)",
        ),
        (
            "user_namespace",
            p.user_namespace.is_none(),
            "container root is host root unless the spec maps it",
        ),
        (
            "filesystem",
            p.filesystem.is_none(),
            "the rootfs may be writable and /proc and /sys stay unmasked",
        ),
        (
            "mounts",
            p.mounts.is_none(),
            "any mount is allowed, including host paths and runtime sockets",
        ),
        (
            "namespaces",
            p.namespaces.is_none(),
            "containers may share the host's namespaces",
        ),
        (
            "devices",
            p.devices.is_none(),
            "containers get every host device node their spec lists",
        ),
        (
            "cgroups",
            p.cgroups.is_none(),
            "no resource limits are injected or enforced",
        ),
        (
            "sysctls",
            p.sysctls.is_none(),
            "containers may set any sysctl",
        ),
        (
            "landlock",
            p.landlock.is_none(),
            "no Landlock rules are applied",
        ),
        (
            "lsm",
            p.lsm.is_none(),
            "any AppArmor profile or SELinux label is passed through, unconfined included",
        ),
    ];
    sections
        .into_iter()
        .filter(|(_, absent, _)| *absent)
        .map(|(section, _, consequence)| LintFinding::SectionAbsent {
            section,
            consequence,
        })
        .collect()
}

/// Every finding for `profile` on `host`, errors first.
pub fn lint(profile: &Profile, host: &HostFacts) -> Vec<LintFinding> {
    let mut out = absent_sections(profile);
    if let Some(s) = &profile.seccomp {
        seccomp(profile, s, &mut out);
    }
    if let Some(c) = &profile.capabilities {
        for cap in &c.allowed {
            if DANGEROUS_CAPS.contains(&cap.as_str()) {
                out.push(LintFinding::DangerousCapability { name: cap.clone() });
            }
        }
    }
    let userns_required = profile.user_namespace.as_ref().is_some_and(|u| u.required);
    if profile
        .process
        .as_ref()
        .is_some_and(|p| p.root == RootPolicy::IfUserns)
        && !userns_required
    {
        out.push(LintFinding::RootWithoutUserns);
    }
    if let Some(fs) = &profile.filesystem {
        let lists = [
            (
                "filesystem.masked_paths",
                &fs.masked_paths,
                &K8S_MASKED_PATHS[..],
            ),
            (
                "filesystem.readonly_paths",
                &fs.readonly_paths,
                &K8S_READONLY_PATHS[..],
            ),
        ];
        for (key, have, defaults) in lists {
            for path in defaults {
                if !have.iter().any(|h| h == path) {
                    out.push(LintFinding::MissingKubernetesDefault { key, path });
                }
            }
        }
    }
    if let Some(y) = &profile.sysctls {
        for s in &y.allowed {
            if !K8S_SAFE_SYSCTLS.contains(&s.as_str()) {
                out.push(LintFinding::UnsafeSysctl { name: s.clone() });
            }
        }
    }
    if let Some(n) = &profile.namespaces {
        for ns in [
            super::schema::NsType::Pid,
            super::schema::NsType::Network,
            super::schema::NsType::Ipc,
        ] {
            if !n.host_forbidden.contains(&ns) {
                out.push(LintFinding::HostNamespaceAllowed { ns: ns.oci_name() });
            }
        }
    }
    if let Some(m) = &profile.mounts {
        let standard = NodePaths::default();
        for prefix in &m.bind_source_prefixes {
            let hard_coded = VARIABLES.into_iter().find(|v| {
                let dir = standard.resolve(&format!("${{{v}}}")).unwrap_or_default();
                prefix == &dir || prefix.starts_with(&format!("{dir}/"))
            });
            if let Some(variable) = hard_coded {
                out.push(LintFinding::HardcodedNodePath {
                    prefix: prefix.clone(),
                    variable,
                });
            }
        }
        for p in &bind_prefixes(profile, m) {
            if matches!(
                p.trim_end_matches('/'),
                "" | "/var" | "/etc" | "/usr" | "/home" | "/root"
            ) {
                out.push(LintFinding::AnyBindSource { prefix: p.clone() });
            }
        }
    }
    if let Some(l) = &profile.landlock {
        landlock(l, host, &mut out);
    }
    out.extend(never_satisfied(profile));
    out.sort_by_key(LintFinding::severity);
    out
}

/// Mount types containerd's CRI puts in every container's spec (runtime defaults
/// /proc, /dev, /dev/pts, /dev/mqueue, /sys, /sys/fs/cgroup, and binds for /dev/shm,
/// /etc/hosts, /etc/resolv.conf, /etc/hostname).
const CONTAINERD_MOUNT_TYPES: [&str; 7] = [
    "bind", "proc", "tmpfs", "devpts", "mqueue", "sysfs", "cgroup",
];
/// Options containerd's CRI gives its bind mounts (volumes, /etc/hosts, ...).
const CONTAINERD_BIND_OPTIONS: [&str; 4] = ["rbind", "rprivate", "rw", "ro"];
/// Single-device allow rules containerd's CRI puts in every container's device cgroup
/// (char major:minor): null, zero, full, random, urandom, tty, console, ptmx, tun.
const CONTAINERD_DEVICE_RULES: [(i64, i64); 9] = [
    (1, 3),
    (1, 5),
    (1, 7),
    (1, 8),
    (1, 9),
    (5, 0),
    (5, 1),
    (5, 2),
    (10, 200),
];
/// Namespaces containerd's CRI always creates or joins for a pod container.
const CONTAINERD_NAMESPACES: [super::schema::NsType; 5] = [
    super::schema::NsType::Pid,
    super::schema::NsType::Network,
    super::schema::NsType::Ipc,
    super::schema::NsType::Uts,
    super::schema::NsType::Mount,
];

/// The profile's bind source prefixes on the node its templates were resolved for
/// (`Profile::node_paths`; the standard directories for a profile only parsed, as
/// `profile lint` does). Templates that do not resolve are load problems, not here.
fn bind_prefixes(p: &Profile, m: &super::schema::MountsSection) -> Vec<String> {
    m.bind_source_prefixes
        .iter()
        .filter_map(|t| p.node_paths.resolve(t).ok())
        .collect()
}

/// Rules that refuse what every spec from a supported containerd looks like. The
/// shapes are containerd's CRI defaults (1.6 to 2.x); where a rule can *inject*, the
/// runtime fixes the spec and nothing is reported.
fn never_satisfied(p: &Profile) -> Vec<LintFinding> {
    let mut out = Vec::new();
    let mut finding = |key, why: String| out.push(LintFinding::NeverSatisfied { key, why });
    if let Some(s) = &p.seccomp {
        if !s.allowed_default_actions.contains(&SeccompAction::Errno) {
            finding(
                "seccomp.allowed_default_actions",
                "containerd's RuntimeDefault filter has defaultAction SCMP_ACT_ERRNO, so every \
                 RuntimeDefault pod is refused; add \"errno\""
                    .into(),
            );
        }
    }
    if let Some(m) = &p.mounts {
        let missing: Vec<&str> = CONTAINERD_MOUNT_TYPES
            .into_iter()
            .filter(|t| !m.allowed_types.iter().any(|a| a == t))
            .collect();
        if !missing.is_empty() {
            finding(
                "mounts.allowed_types",
                format!(
                    "containerd mounts {} in every container",
                    missing.join(", ")
                ),
            );
        }
        // Where containerd's CRI and the kubelet keep what every pod binds: volumes and
        // /etc/hosts (kubelet), /etc/hosts, /etc/resolv.conf, /etc/hostname (containerd
        // root) and /dev/shm (containerd state).
        for dir in [
            "${kubelet_root}/pods",
            "${containerd_root}/io.containerd.grpc.v1.cri/sandboxes",
            "${containerd_state}/io.containerd.grpc.v1.cri/sandboxes",
        ] {
            let Ok(here) = p.node_paths.resolve(dir) else {
                continue;
            };
            let covered = bind_prefixes(p, m)
                .iter()
                .any(|prefix| Path::new(&here).starts_with(prefix));
            if !covered {
                finding(
                    "mounts.bind_source_prefixes",
                    format!(
                        "nothing covers {dir} ({here} on this node), where every pod's \
                         volumes or sandbox files are bound from"
                    ),
                );
            }
        }
        if m.on_missing == OnMissing::Refuse {
            let missing: Vec<&str> = m
                .bind_required_options
                .iter()
                .map(String::as_str)
                .filter(|o| !CONTAINERD_BIND_OPTIONS.contains(o))
                .collect();
            if !missing.is_empty() {
                finding(
                    "mounts.bind_required_options",
                    format!(
                        "containerd binds volumes, /etc/hosts and /etc/resolv.conf with {} only \
                         and on_missing = \"refuse\" will not add {}",
                        CONTAINERD_BIND_OPTIONS.join(","),
                        missing.join(",")
                    ),
                );
            }
        }
    }
    if let Some(n) = &p.namespaces {
        for ns in &n.required {
            let why = match ns {
                _ if CONTAINERD_NAMESPACES.contains(ns) => continue,
                super::schema::NsType::User => {
                    "containerd 1.6 and 1.7 never send a user namespace (2.x only for \
                     hostUsers: false); user_namespace.on_missing = \"inject\" adds one instead"
                }
                super::schema::NsType::Cgroup => {
                    "containerd sends a cgroup namespace only on cgroup v2 hosts"
                }
                _ => "containerd never sends this namespace",
            };
            finding("namespaces.required", format!("{}: {why}", ns.oci_name()));
        }
    }
    if let Some(l) = &p.lsm {
        // containerd's RuntimeDefault AppArmor profile, on every AppArmor host.
        let runtime_default = "cri-containerd.apparmor.d";
        if !l
            .apparmor_profiles
            .iter()
            .any(|a| super::rules::lsm::matches(a, runtime_default))
        {
            finding(
                "lsm.apparmor_profiles",
                format!(
                    "containerd gives every pod on an AppArmor host the profile \
                     {runtime_default:?} unless it asks for another"
                ),
            );
        }
    }
    if let Some(u) = &p.user_namespace {
        if u.required && u.on_missing == OnMissing::Refuse {
            finding(
                "user_namespace.on_missing",
                "containerd 1.6 and 1.7 never send a user namespace (2.x only for hostUsers: \
                 false), so those pods are refused; \"inject\" allocates one"
                    .into(),
            );
        }
    }
    if let Some(d) = &p.devices {
        if d.on_excess == super::schema::OnExcess::Refuse {
            let missing: Vec<String> = CONTAINERD_DEVICE_RULES
                .iter()
                .filter(|(major, minor)| {
                    !d.allowed.iter().any(|a| {
                        a.kind == super::schema::DeviceType::Char
                            && a.major == *major
                            && a.minor == *minor
                    })
                })
                .map(|(major, minor)| format!("c {major}:{minor}"))
                .collect();
            if !missing.is_empty() {
                finding(
                    "devices.allowed",
                    format!(
                        "containerd allows {} in every pod's device cgroup and on_excess = \
                         \"refuse\"",
                        missing.join(", ")
                    ),
                );
            }
        }
    }
    if let Some(c) = &p.cgroups {
        if c.on_missing == OnMissing::Refuse {
            finding(
                "cgroups.on_missing",
                "containerd sets no per-container pids limit (the kubelet limits the pod \
                 cgroup), so every container is refused; \"inject\" sets the default"
                    .into(),
            );
        }
    }
    out
}

fn seccomp(profile: &Profile, s: &SeccompSection, out: &mut Vec<LintFinding>) {
    for d in &s.deny {
        if !crate::seccomp::is_known_syscall(&d.name) {
            out.push(LintFinding::UnknownSyscall {
                list: "seccomp.deny",
                name: d.name.clone(),
            });
        }
    }
    for a in &s.allowed_default_actions {
        if matches!(
            a,
            SeccompAction::Allow
                | SeccompAction::Log
                | SeccompAction::Trace
                | SeccompAction::Notify
        ) {
            out.push(LintFinding::PermissiveDefaultAction { action: *a });
        }
    }
    let Some(filter) = &profile.seccomp_filter else {
        if s.on_missing == OnMissing::Inject {
            out.push(LintFinding::SeccompFilterNotLoaded);
        }
        return;
    };
    for name in filter.all_names() {
        if !crate::seccomp::is_known_syscall(name) {
            out.push(LintFinding::UnknownSyscall {
                list: "default filter",
                name: name.to_owned(),
            });
        }
    }
    let denied: BTreeSet<&str> = s
        .deny
        .iter()
        .map(|d| d.name.as_str())
        .chain(filter.deny.iter().map(|d| d.name.as_str()))
        .chain(filter.errno.iter().map(|d| d.name.as_str()))
        .collect();
    let allowed: BTreeSet<&str> = filter.allowed_names().collect();
    for name in allowed.intersection(&denied) {
        out.push(LintFinding::AllowedAndDenied {
            name: (*name).to_owned(),
        });
    }
    let mut seen = BTreeSet::new();
    for a in &filter.allow {
        if !seen.insert(a.name.as_str()) {
            out.push(LintFinding::DuplicateSyscall {
                name: a.name.clone(),
            });
        }
    }
}

fn landlock(l: &LandlockSection, host: &HostFacts, out: &mut Vec<LintFinding>) {
    if !l.enabled {
        return;
    }
    if l.tcp_connect.as_ref().is_some_and(Vec::is_empty) {
        out.push(LintFinding::NoOutboundTcp);
    }
    let needed = super::rules::landlock::needed_abi(l);
    if host.landlock_abi.unwrap_or(0) < needed {
        out.push(match l.compat {
            Compat::Hard => LintFinding::LandlockUnenforceable {
                needed,
                host: host.landlock_abi,
            },
            Compat::BestEffort => LintFinding::LandlockDegraded {
                needed,
                host: host.landlock_abi,
            },
        });
    }
    for r in &l.fs {
        for right in &r.access {
            if abi_of(*right) > l.min_abi {
                out.push(LintFinding::LandlockRightAboveAbi {
                    path: r.path.clone(),
                    right: format!("{right:?}"),
                    abi: abi_of(*right),
                    min_abi: l.min_abi,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::host::fake::host;
    use crate::profile::schema::DeniedSyscall;
    use crate::profile::tests::shipped;

    #[test]
    fn shipped_profiles_lint_clean() {
        for name in ["restricted", "baseline", "default"] {
            let findings = lint(&shipped(name), &host());
            assert!(findings.is_empty(), "{name}: {findings:#?}");
        }
    }

    #[test]
    fn finds_contradictions_and_unenforceable_rules() {
        let mut p = shipped("restricted");
        p.seccomp.as_mut().unwrap().deny.push(DeniedSyscall {
            name: "read".into(),
            reason: "r".into(),
        });
        p.capabilities
            .as_mut()
            .unwrap()
            .allowed
            .push("CAP_SYS_ADMIN".into());
        p.filesystem
            .as_mut()
            .unwrap()
            .masked_paths
            .retain(|m| m != "/proc/kcore");
        p.landlock.as_mut().unwrap().min_abi = 7;
        let mut h = host();
        h.landlock_abi = Some(3);
        let f = lint(&p, &h);
        assert!(f.contains(&LintFinding::AllowedAndDenied {
            name: "read".into()
        }));
        assert!(f.contains(&LintFinding::DangerousCapability {
            name: "CAP_SYS_ADMIN".into()
        }));
        assert!(f.contains(&LintFinding::MissingKubernetesDefault {
            key: "filesystem.masked_paths",
            path: "/proc/kcore"
        }));
        assert!(f.contains(&LintFinding::LandlockUnenforceable {
            needed: 7,
            host: Some(3)
        }));
        assert_eq!(f[0].severity(), Severity::Error);
        assert_eq!(f.last().unwrap().severity(), Severity::Warning);
    }

    #[test]
    fn unconfined_lists_every_absent_section_as_a_warning() {
        let f = lint(&shipped("unconfined"), &host());
        let sections: Vec<_> = f
            .iter()
            .map(|f| match f {
                LintFinding::SectionAbsent { section, .. } => *section,
                other => panic!("unexpected finding {other}"),
            })
            .collect();
        assert_eq!(
            sections,
            [
                "seccomp",
                "capabilities",
                "process",
                "user_namespace",
                "filesystem",
                "mounts",
                "namespaces",
                "devices",
                "cgroups",
                "sysctls",
                "landlock",
                "lsm"
            ]
        );
        assert!(f.iter().all(|f| f.severity() == Severity::Warning));
        assert_eq!(
            f[0].to_string(),
            "seccomp: section absent — containers get no syscall filter"
        );
    }

    #[test]
    fn one_absent_section_is_one_warning_and_rules_needing_it_still_fire() {
        let mut p = shipped("default");
        p.user_namespace = None;
        p.seccomp = None;
        p.seccomp_filter = None;
        let f = lint(&p, &host());
        // process.root = "if_userns" without a user namespace section: root is host root.
        assert_eq!(f[0], LintFinding::RootWithoutUserns);
        assert_eq!(f[0].severity(), Severity::Error);
        let absent: Vec<_> = f[1..].iter().map(ToString::to_string).collect();
        assert_eq!(
            absent,
            [
                "seccomp: section absent — containers get no syscall filter",
                "user_namespace: section absent — container root is host root unless the spec maps it",
            ]
        );
    }

    #[test]
    fn rules_no_containerd_spec_can_satisfy_are_warned_about() {
        let mut p = shipped("default");
        p.seccomp
            .as_mut()
            .unwrap()
            .allowed_default_actions
            .retain(|a| *a != SeccompAction::Errno);
        let m = p.mounts.as_mut().unwrap();
        m.allowed_types.retain(|t| t != "mqueue");
        m.bind_source_prefixes
            .retain(|d| !d.starts_with("${containerd_state}"));
        m.on_missing = OnMissing::Refuse;
        p.namespaces
            .as_mut()
            .unwrap()
            .required
            .extend([super::super::schema::NsType::Time]);
        p.user_namespace.as_mut().unwrap().on_missing = OnMissing::Refuse;
        p.cgroups.as_mut().unwrap().on_missing = OnMissing::Refuse;
        p.devices
            .as_mut()
            .unwrap()
            .allowed
            .retain(|d| d.path != "/dev/net/tun");
        p.lsm
            .as_mut()
            .unwrap()
            .apparmor_profiles
            .retain(|a| a != "cri-containerd.apparmor.d");
        let keys: Vec<&str> = lint(&p, &host())
            .into_iter()
            .map(|f| match f {
                LintFinding::NeverSatisfied { key, .. } => {
                    assert_eq!(f.severity(), Severity::Warning);
                    key
                }
                other => panic!("unexpected finding {other}"),
            })
            .collect();
        assert_eq!(
            keys,
            [
                "seccomp.allowed_default_actions",
                "mounts.allowed_types",
                "mounts.bind_source_prefixes",
                "mounts.bind_required_options",
                "namespaces.required",
                "lsm.apparmor_profiles",
                "user_namespace.on_missing",
                "devices.allowed",
                "cgroups.on_missing",
            ]
        );
        // Refusing a silent spec is satisfiable where the pod author can comply
        // (readOnlyRootFilesystem, RuntimeDefault), and masked paths are completed.
        let mut p = shipped("restricted");
        p.filesystem.as_mut().unwrap().on_missing = OnMissing::Refuse;
        assert!(lint(&p, &host()).is_empty());
    }

    #[test]
    fn hard_coded_node_directories_are_warned_about() {
        let mut p = shipped("default");
        let m = p.mounts.as_mut().unwrap();
        m.bind_source_prefixes = vec![
            "/var/lib/kubelet/pods".into(),
            "/run/containerd/io.containerd.grpc.v1.cri/sandboxes".into(),
            "${containerd_root}/io.containerd.grpc.v1.cri/sandboxes".into(),
            "/var/lib/kubeletx".into(),
        ];
        p.resolve_node_paths(&NodePaths::default()).unwrap();
        let f: Vec<String> = lint(&p, &host()).iter().map(ToString::to_string).collect();
        assert_eq!(
            f,
            [
                "mounts.bind_source_prefixes: \"/var/lib/kubelet/pods\" hard-codes the standard \
                 kubelet_root directory: write ${kubelet_root}/pods so nodes that name their own \
                 directories keep working",
                "mounts.bind_source_prefixes: \"/run/containerd/io.containerd.grpc.v1.cri/sandboxes\" \
                 hard-codes the standard containerd_state directory: write \
                 ${containerd_state}/io.containerd.grpc.v1.cri/sandboxes so nodes that name their \
                 own directories keep working",
            ]
        );
    }

    #[test]
    fn unloaded_filter_is_an_error_when_injecting() {
        let mut p = shipped("default");
        p.seccomp_filter = None;
        assert_eq!(lint(&p, &host()), vec![LintFinding::SeccompFilterNotLoaded]);
    }

    #[test]
    fn empty_tcp_connect_is_a_warning() {
        let mut p = shipped("restricted");
        p.landlock.as_mut().unwrap().tcp_connect = Some(vec![]);
        let mut h = host();
        h.landlock_abi = Some(6);
        let f = lint(&p, &h);
        assert_eq!(f, vec![LintFinding::NoOutboundTcp]);
        assert_eq!(f[0].severity(), Severity::Warning);
    }
}
