//! `stockade profile explain`: what a profile does, in plain language, section by section.

use std::fmt::Write;

use super::rules::landlock::needed_abi;
use super::schema::{LandlockSection, Mode, OnExcess, OnMissing, Profile, RootPolicy};
use crate::landlock::plan::Compat;

fn on_missing(o: OnMissing, injected: &str) -> String {
    match o {
        OnMissing::Inject => {
            format!("if the container does not ask for it, Stockade adds {injected}")
        }
        OnMissing::Refuse => "if the container does not ask for it, it is refused".to_owned(),
    }
}

fn mode(p: &Profile, m: Option<Mode>) -> &'static str {
    match m.unwrap_or(p.mode) {
        Mode::Enforce => "",
        Mode::Audit => " [audit only: violations are logged, the container still starts]",
        Mode::Warn => " [warn only: violations are reported, the container still starts]",
        Mode::Report => " [report only: violations are logged, the container still starts]",
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

/// One section's line: its rule in plain words and the author's reason, or "not enforced"
/// when the profile has no `[key]` section.
fn section(
    s: &mut String,
    p: &Profile,
    title: &str,
    key: &str,
    rule: Option<(Option<Mode>, &str, String)>,
) {
    // Writing to a String cannot fail; the results are ignored for that reason only.
    let _ = match rule {
        Some((m, reason, body)) => {
            writeln!(s, "* {title}{}: {body}\n  Why: {reason}", mode(p, m))
        }
        None => writeln!(
            s,
            "* {title}: not enforced (the profile has no [{key}] section); the container's \
             spec is used as it is."
        ),
    };
}

/// The TCP port rules in words (empty when neither is restricted).
fn tcp_rules(l: &LandlockSection) -> String {
    let ports = |what: &str, p: &Option<Vec<u16>>| match p {
        None => None,
        Some(p) if p.is_empty() => Some(format!("no TCP {what} at all")),
        Some(p) => Some(format!(
            "TCP {what} only on port{} {}",
            if p.len() == 1 { "" } else { "s" },
            p.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        )),
    };
    [ports("bind", &l.tcp_bind), ports("connect", &l.tcp_connect)]
        .into_iter()
        .flatten()
        .map(|s| format!("; {s}"))
        .collect()
}

/// A plain-language summary of `p`.
pub fn explain(p: &Profile) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail; the results are ignored for that reason only.
    let _ = writeln!(
        s,
        "Profile \"{}\" v{} (strictness {})",
        p.name, p.version, p.strictness
    );
    if !p.description.is_empty() {
        let _ = writeln!(s, "{}", p.description);
    }
    let _ = writeln!(
        s,
        "Mode: {}.\n",
        match p.mode {
            Mode::Enforce => "containers that break a rule are refused",
            Mode::Audit => "violations are logged, containers still start",
            Mode::Warn => "violations are reported as warnings, containers still start",
            Mode::Report => "report only: every spec runs unchanged (nothing injected); what enforcing would refuse or inject is logged",
        }
    );

    let rule = p.seccomp.as_ref().map(|sc| {
        (
            sc.mode,
            sc.reason.as_str(),
            format!(
                "a seccomp filter is required; {}. A container's own filter must deny by \
                 default and may never allow: {}{}. {}",
                on_missing(
                    sc.on_missing,
                    &format!(
                        "the default-deny filter {} (relative to the profile's directory)",
                        sc.default_filter
                    )
                ),
                list(&sc.deny.iter().map(|d| d.name.clone()).collect::<Vec<_>>()),
                match sc.on_denied_allowed {
                    OnExcess::Strip => " (they are removed from its filter)",
                    OnExcess::Refuse => " (or it is refused)",
                },
                match sc.user_notification {
                    super::schema::UserNotification::Forbid => {
                        "It may not hand system calls to a userspace seccomp agent \
                         (SCMP_ACT_NOTIFY, listenerPath), or it is refused."
                    }
                    super::schema::UserNotification::Allow => {
                        "It may hand system calls to a userspace seccomp agent \
                         (SCMP_ACT_NOTIFY, listenerPath), which then decides them."
                    }
                }
            ),
        )
    });
    section(&mut s, p, "System calls", "seccomp", rule);

    let rule = p.capabilities.as_ref().map(|c| {
        (
            c.mode,
            c.reason.as_str(),
            format!(
                "only {} may be held; inheritable and ambient sets stay empty; others are {}.",
                list(&c.allowed),
                match c.on_excess {
                    OnExcess::Strip => "dropped",
                    OnExcess::Refuse => "refused",
                }
            ),
        )
    });
    section(&mut s, p, "Capabilities", "capabilities", rule);

    let rule = p.process.as_ref().map(|pr| {
        (
            pr.mode,
            pr.reason.as_str(),
            format!(
                "no_new_privileges is required ({}); {}; the working directory may not be \
                 under {}.",
                on_missing(pr.no_new_privileges, "it"),
                match pr.root {
                    RootPolicy::Never => "the container may never run as root",
                    RootPolicy::IfUserns => "root is allowed only inside a user namespace",
                },
                list(&pr.forbidden_cwd)
            ),
        )
    });
    section(&mut s, p, "Process", "process", rule);

    let rule = p.user_namespace.as_ref().map(|u| {
        (
            u.mode,
            u.reason.as_str(),
            if u.required {
                format!(
                    "required; {}, with {} ids taken from host ids {}..{}; container root is \
                     never host root. Volumes are idmapped; one the kernel cannot idmap \
                     (tmpfs before Linux 6.3) {}.",
                    on_missing(u.on_missing, "one"),
                    u.container_size,
                    u.host_range.start,
                    u.host_range.start as u64 + u.host_range.size as u64,
                    match u.idmap_compat {
                        crate::landlock::plan::Compat::Hard => "refuses the container",
                        crate::landlock::plan::Compat::BestEffort =>
                            "is bound as is (files shown as 65534) and noted",
                    }
                )
            } else {
                "not required.".to_owned()
            },
        )
    });
    section(&mut s, p, "User namespace", "user_namespace", rule);

    let rule = p.filesystem.as_ref().map(|f| {
        (
            f.mode,
            f.reason.as_str(),
            format!(
                "{}; /proc and /sys entries masked ({} paths) and read-only ({} paths){}; {}.",
                if f.readonly_rootfs && f.writable_tmpfs.is_empty() {
                    "the root filesystem is read-only (no scratch tmpfs is added)".to_owned()
                } else if f.readonly_rootfs {
                    format!(
                        "the root filesystem is read-only (scratch tmpfs at {})",
                        list(&f.writable_tmpfs)
                    )
                } else {
                    "the root filesystem may be writable".to_owned()
                },
                f.masked_paths.len(),
                f.readonly_paths.len(),
                f.masked_reason
                    .as_deref()
                    .map(|r| format!(" (why: {r})"))
                    .unwrap_or_default(),
                on_missing(f.on_missing, "what is missing")
            ),
        )
    });
    section(&mut s, p, "Filesystem", "filesystem", rule);

    let rule = p.mounts.as_ref().map(|m| {
        (
            m.mode,
            m.reason.as_str(),
            format!(
                "allowed types: {}; host directories may only come from {}; never {}; {}; \
                 binds get {} ({}).",
                list(&m.allowed_types),
                list(
                    &m.bind_source_prefixes
                        .iter()
                        .zip(&m.resolved_bind_source_prefixes)
                        .map(|(t, r)| if t == r {
                            t.clone()
                        } else {
                            format!("{t} (here {r})")
                        })
                        .collect::<Vec<_>>()
                ),
                list(
                    &m.forbidden_sources
                        .iter()
                        .map(|f| f.path.clone())
                        .collect::<Vec<_>>()
                ),
                if m.forbid_shared_propagation {
                    "mount propagation back to the host is refused"
                } else {
                    "shared propagation is allowed"
                },
                list(&m.bind_required_options),
                on_missing(m.on_missing, "them")
            ),
        )
    });
    section(&mut s, p, "Mounts", "mounts", rule);

    let names = |v: &[super::schema::NsType]| {
        v.iter()
            .map(|n| n.oci_name().to_owned())
            .collect::<Vec<_>>()
    };
    let rule = p.namespaces.as_ref().map(|n| {
        (n.mode, n.reason.as_str(), {
            let mut text = format!(
                "the container must have its own {}; sharing the host's {} is refused.",
                list(&names(&n.required)),
                list(&names(&n.host_forbidden))
            );
            for i in &n.inject {
                text.push_str(&format!(
                    " A spec without a {} namespace gets a new one ({}).",
                    i.kind.oci_name(),
                    i.reason
                ));
            }
            text
        })
    });
    section(&mut s, p, "Namespaces", "namespaces", rule);

    let rule = p.devices.as_ref().map(|d| {
        (
            d.mode,
            d.reason.as_str(),
            format!(
                "host devices only {}; other device nodes and device cgroup allow rules are {}.",
                list(
                    &d.allowed
                        .iter()
                        .map(|a| format!(
                            "{} ({} {}:{})",
                            a.path,
                            a.kind.letter(),
                            a.major,
                            a.minor
                        ))
                        .collect::<Vec<_>>()
                ),
                match d.on_excess {
                    OnExcess::Strip => "removed",
                    OnExcess::Refuse => "refused",
                }
            ),
        )
    });
    section(&mut s, p, "Devices", "devices", rule);

    let rule = p.cgroups.as_ref().map(|g| {
        (
            g.mode,
            g.reason.as_str(),
            format!(
                "memory at most {} MiB (default {} MiB), CPU at most {} millicores (default \
                 {}), at most {} processes (default {}); {}; no rule may allow every device.",
                g.memory_bytes.max >> 20,
                g.memory_bytes.default >> 20,
                g.cpu_millicores.max,
                g.cpu_millicores.default,
                g.pids.max,
                g.pids.default,
                on_missing(g.on_missing, "the default")
            ),
        )
    });
    section(&mut s, p, "Resource limits", "cgroups", rule);

    let rule = p.sysctls.as_ref().map(|y| {
        (
            y.mode,
            y.reason.as_str(),
            format!("only {} may be set.", list(&y.allowed)),
        )
    });
    section(&mut s, p, "Sysctls", "sysctls", rule);

    let rule = p.landlock.as_ref().map(|l| {
        (
            l.mode,
            l.reason.as_str(),
            if l.enabled {
                format!(
                    "the container may read and execute the image, and write only to its \
                     writable mounts{}{}; needs Landlock ABI {} ({}).",
                    if l.fs.is_empty() {
                        ""
                    } else {
                        " and the profile's extra paths"
                    },
                    tcp_rules(l),
                    needed_abi(l),
                    match l.compat {
                        Compat::Hard => "containers are refused on kernels without it",
                        Compat::BestEffort =>
                            "enforced as far as the kernel allows, gaps are logged",
                    }
                )
            } else {
                "not used.".to_owned()
            },
        )
    });
    section(&mut s, p, "Landlock", "landlock", rule);

    let rule = p.lsm.as_ref().map(|z| {
        (
            z.mode,
            z.reason.as_str(),
            format!(
                "AppArmor profiles allowed: {} (never unconfined); SELinux types allowed: {}.",
                list(&z.apparmor_profiles),
                list(&z.selinux_types)
            ),
        )
    });
    section(&mut s, p, "AppArmor / SELinux", "lsm", rule);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::tests::shipped;

    #[test]
    fn explains_every_section() {
        let text = explain(&shipped("restricted"));
        assert!(text.starts_with("Profile \"restricted\" v1.0.0"));
        for title in [
            "System calls",
            "Capabilities",
            "Process",
            "User namespace",
            "Filesystem",
            "Mounts",
            "Namespaces",
            "Resource limits",
            "Sysctls",
            "Landlock",
            "AppArmor",
        ] {
            assert!(text.contains(&format!("* {title}")), "{title}");
        }
        assert!(text.contains("may never run as root"));
        assert!(!text.contains("not enforced"));
    }

    #[test]
    fn absent_sections_are_not_enforced() {
        let text = explain(&shipped("unconfined"));
        assert!(text.starts_with("Profile \"unconfined\" v1.0.0 (strictness 0)"));
        for (title, key) in [
            ("System calls", "seccomp"),
            ("Capabilities", "capabilities"),
            ("Process", "process"),
            ("User namespace", "user_namespace"),
            ("Filesystem", "filesystem"),
            ("Mounts", "mounts"),
            ("Namespaces", "namespaces"),
            ("Resource limits", "cgroups"),
            ("Sysctls", "sysctls"),
            ("Landlock", "landlock"),
            ("AppArmor / SELinux", "lsm"),
        ] {
            assert!(
                text.contains(&format!(
                    "* {title}: not enforced (the profile has no [{key}] section)"
                )),
                "{title}"
            );
        }
        assert!(!text.contains("Why:"));
    }
}
