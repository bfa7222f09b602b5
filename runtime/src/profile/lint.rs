//! `stockade profile lint`: problems in a profile that loading alone does not catch —
//! contradictions, unknown syscalls, rules this kernel cannot enforce, and lists that fall
//! short of the Kubernetes defaults.

use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;

use super::host::HostFacts;
use super::rules::landlock::abi_of;
use super::schema::{
    LandlockSection, OnMissing, Profile, RootPolicy, SeccompAction, SeccompSection,
};
use crate::landlock_plan::Compat;

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
        }
    }
}

/// What a container gets when the profile has no section for a control, per section in
/// file order. Absence is a warning, not an error: a profile may deliberately leave a
/// control to the spec (see `unconfined.toml`), but a reviewer must see it.
fn absent_sections(p: &Profile) -> Vec<LintFinding> {
    let sections: [(&'static str, bool, &'static str); 11] = [
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
        for p in &m.bind_source_prefixes {
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
    out.sort_by_key(LintFinding::severity);
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
