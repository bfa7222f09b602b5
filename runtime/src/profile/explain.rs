//! `stockade profile explain`: what a profile does, in plain language, section by section.

use std::fmt::Write;

use super::schema::{Mode, OnExcess, OnMissing, Profile, RootPolicy};
use crate::landlock_plan::Compat;

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
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
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
        }
    );
    let mut section = |title: &str, m: Option<Mode>, reason: &str, body: String| {
        let _ = writeln!(s, "* {title}{}: {body}\n  Why: {reason}", mode(p, m));
    };

    let sc = &p.seccomp;
    section(
        "System calls",
        sc.mode,
        &sc.reason,
        format!(
            "a seccomp filter is required; {}. A container's own filter must deny by default \
             and may never allow: {}{}.",
            on_missing(
                sc.on_missing,
                &format!("the default-deny filter {:?}", sc.default_filter)
            ),
            list(&sc.deny.iter().map(|d| d.name.clone()).collect::<Vec<_>>()),
            match sc.on_denied_allowed {
                OnExcess::Strip => " (they are removed from its filter)",
                OnExcess::Refuse => " (or it is refused)",
            }
        ),
    );
    let c = &p.capabilities;
    section(
        "Capabilities",
        c.mode,
        &c.reason,
        format!(
            "only {} may be held; inheritable and ambient sets stay empty; others are {}.",
            list(&c.allowed),
            match c.on_excess {
                OnExcess::Strip => "dropped",
                OnExcess::Refuse => "refused",
            }
        ),
    );
    let pr = &p.process;
    section(
        "Process",
        pr.mode,
        &pr.reason,
        format!(
            "no_new_privileges is required ({}); {}; the working directory may not be under {}.",
            on_missing(pr.no_new_privileges, "it"),
            match pr.root {
                RootPolicy::Never => "the container may never run as root",
                RootPolicy::IfUserns => "root is allowed only inside a user namespace",
            },
            list(&pr.forbidden_cwd)
        ),
    );
    let u = &p.user_namespace;
    section(
        "User namespace",
        u.mode,
        &u.reason,
        if u.required {
            format!(
                "required; {}, with {} ids taken from host ids {}..{}; container root is never host root.",
                on_missing(u.on_missing, "one"),
                u.container_size,
                u.host_range.start,
                u.host_range.start as u64 + u.host_range.size as u64
            )
        } else {
            "not required.".to_owned()
        },
    );
    let f = &p.filesystem;
    section(
        "Filesystem",
        f.mode,
        &f.reason,
        format!(
            "{}; /proc and /sys entries masked ({} paths) and read-only ({} paths); {}.",
            if f.readonly_rootfs {
                format!(
                    "the root filesystem is read-only (scratch tmpfs at {})",
                    list(&f.writable_tmpfs)
                )
            } else {
                "the root filesystem may be writable".to_owned()
            },
            f.masked_paths.len(),
            f.readonly_paths.len(),
            on_missing(f.on_missing, "what is missing")
        ),
    );
    let m = &p.mounts;
    section(
        "Mounts",
        m.mode,
        &m.reason,
        format!(
            "allowed types: {}; host directories may only come from {}; never {}; {}; binds get {} ({}).",
            list(&m.allowed_types),
            list(&m.bind_source_prefixes),
            list(&m.forbidden_sources.iter().map(|f| f.path.clone()).collect::<Vec<_>>()),
            if m.forbid_shared_propagation {
                "mount propagation back to the host is refused"
            } else {
                "shared propagation is allowed"
            },
            list(&m.bind_required_options),
            on_missing(m.on_missing, "them")
        ),
    );
    let n = &p.namespaces;
    let names = |v: &[super::schema::NsType]| {
        v.iter()
            .map(|n| n.oci_name().to_owned())
            .collect::<Vec<_>>()
    };
    section(
        "Namespaces",
        n.mode,
        &n.reason,
        format!(
            "the container must have its own {}; sharing the host's {} is refused.",
            list(&names(&n.required)),
            list(&names(&n.host_forbidden))
        ),
    );
    let g = &p.cgroups;
    section(
        "Resource limits",
        g.mode,
        &g.reason,
        format!(
            "memory at most {} MiB (default {} MiB), CPU at most {} millicores (default {}), \
             at most {} processes (default {}); {}; no rule may allow every device.",
            g.memory_bytes.max >> 20,
            g.memory_bytes.default >> 20,
            g.cpu_millicores.max,
            g.cpu_millicores.default,
            g.pids.max,
            g.pids.default,
            on_missing(g.on_missing, "the default")
        ),
    );
    let y = &p.sysctls;
    section(
        "Sysctls",
        y.mode,
        &y.reason,
        format!("only {} may be set.", list(&y.allowed)),
    );
    let l = &p.landlock;
    section(
        "Landlock",
        l.mode,
        &l.reason,
        if l.enabled {
            format!(
                "the container may read and execute the image, and write only to its writable \
                 mounts{}{}; needs Landlock ABI {} ({}).",
                if l.fs.is_empty() {
                    ""
                } else {
                    " and the profile's extra paths"
                },
                match (&l.tcp_bind, &l.tcp_connect) {
                    (None, None) => String::new(),
                    (b, c) => format!("; TCP bind {:?}, connect {:?}", b, c),
                },
                l.min_abi,
                match l.compat {
                    Compat::Hard => "containers are refused on kernels without it",
                    Compat::BestEffort => "enforced as far as the kernel allows, gaps are logged",
                }
            )
        } else {
            "not used.".to_owned()
        },
    );
    let z = &p.lsm;
    section(
        "AppArmor / SELinux",
        z.mode,
        &z.reason,
        format!(
            "AppArmor profiles allowed: {} (never unconfined); SELinux types allowed: {}.",
            list(&z.apparmor_profiles),
            list(&z.selinux_types)
        ),
    );
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
    }
}
