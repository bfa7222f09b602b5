//! `stockade profile diff A B`: what one profile allows that the other does not, rule
//! by rule. Pure: two loaded profiles in, a list of differences out.
//!
//! An absent section allows everything for its control (see schema.rs), so against a
//! present section it "allows" whatever that section forbids; the difference is then
//! reported once, as the whole section.

use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;

use super::rules::landlock::needed_abi;
use super::schema::{IdRange, Mode, Profile, RootPolicy};

/// One rule on which the profiles differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The profile key (`capabilities.allowed`).
    pub rule: String,
    /// What A allows and B does not.
    pub only_a: Vec<String>,
    /// What B allows and A does not.
    pub only_b: Vec<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.rule)?;
        if !self.only_a.is_empty() {
            write!(f, "\n  only A allows: {}", self.only_a.join(", "))?;
        }
        if !self.only_b.is_empty() {
            write!(f, "\n  only B allows: {}", self.only_b.join(", "))?;
        }
        Ok(())
    }
}

fn set<'a, I: IntoIterator<Item = &'a String>>(v: I) -> BTreeSet<String> {
    v.into_iter().cloned().collect()
}

struct Diff(Vec<Difference>);

impl Diff {
    fn push(&mut self, rule: &str, only_a: Vec<String>, only_b: Vec<String>) {
        if !only_a.is_empty() || !only_b.is_empty() {
            self.0.push(Difference {
                rule: rule.to_owned(),
                only_a,
                only_b,
            });
        }
    }

    /// An allow-list: entries one has and the other lacks.
    fn allowed(&mut self, rule: &str, a: &BTreeSet<String>, b: &BTreeSet<String>) {
        self.push(
            rule,
            a.difference(b).cloned().collect(),
            b.difference(a).cloned().collect(),
        );
    }

    /// A deny-list: what the other denies is what this one allows.
    fn denied(&mut self, rule: &str, a: &BTreeSet<String>, b: &BTreeSet<String>) {
        self.push(
            rule,
            b.difference(a).cloned().collect(),
            a.difference(b).cloned().collect(),
        );
    }

    /// A yes/no restriction: the side without it allows `what`.
    fn restricts(&mut self, rule: &str, a: bool, b: bool, what: &str) {
        let w = || vec![what.to_owned()];
        match (a, b) {
            (false, true) => self.push(rule, w(), vec![]),
            (true, false) => self.push(rule, vec![], w()),
            _ => {}
        }
    }

    /// An upper bound: the larger one allows up to it.
    fn max(&mut self, rule: &str, a: u64, b: u64, unit: &str) {
        let w = |v: u64| vec![format!("up to {v}{unit}")];
        match a.cmp(&b) {
            std::cmp::Ordering::Greater => self.push(rule, w(a), vec![]),
            std::cmp::Ordering::Less => self.push(rule, vec![], w(b)),
            std::cmp::Ordering::Equal => {}
        }
    }

    /// A section one profile has and the other lacks.
    fn section<T>(&mut self, key: &str, a: &Option<T>, b: &Option<T>, consequence: &str) -> bool {
        let w = || vec![format!("no [{key}] section: {consequence}")];
        match (a.is_some(), b.is_some()) {
            (false, true) => self.push(key, w(), vec![]),
            (true, false) => self.push(key, vec![], w()),
            _ => return a.is_some(),
        }
        false
    }
}

/// The ids `a` allows that no range of `b` covers, as `uid 0` / `uids 5-9`.
fn ids_not_in(what: &str, a: &[IdRange], b: &[IdRange]) -> Vec<String> {
    let mut left: Vec<(u64, u64)> = a
        .iter()
        .map(|r| (u64::from(r.min), u64::from(r.max)))
        .collect();
    for r in b {
        let (lo, hi) = (u64::from(r.min), u64::from(r.max));
        left = left
            .into_iter()
            .flat_map(|(x, y)| {
                let mut parts = Vec::new();
                if x < lo {
                    parts.push((x, y.min(lo - 1)));
                }
                if y > hi {
                    parts.push((x.max(hi + 1), y));
                }
                if y < lo || x > hi {
                    parts = vec![(x, y)];
                }
                parts
            })
            .collect();
    }
    left.into_iter()
        .map(|(x, y)| {
            if x == y {
                format!("{what} {x}")
            } else {
                format!("{what}s {x}-{y}")
            }
        })
        .collect()
}

fn mode_text(m: Mode) -> &'static str {
    match m {
        Mode::Enforce => "enforce",
        Mode::Audit => "audit",
        Mode::Warn => "warn",
        Mode::Report => "report",
    }
}

/// Every rule on which `a` and `b` differ, in the order of the profile format.
pub fn diff(a: &Profile, b: &Profile) -> Vec<Difference> {
    let mut d = Diff(Vec::new());
    if a.mode != b.mode {
        // Audit and warn start a violating container: they allow what enforce refuses.
        let lax = |m: Mode| m != Mode::Enforce;
        let w = |m: Mode| vec![format!("violations start anyway ({} mode)", mode_text(m))];
        match (lax(a.mode), lax(b.mode)) {
            (true, false) => d.push("mode", w(a.mode), vec![]),
            (false, true) => d.push("mode", vec![], w(b.mode)),
            _ => d.push(
                "mode",
                vec![format!("{} mode", mode_text(a.mode))],
                vec![format!("{} mode", mode_text(b.mode))],
            ),
        }
    }

    if d.section(
        "seccomp",
        &a.seccomp,
        &b.seccomp,
        "no syscall filter required",
    ) {
        let (sa, sb) = (a.seccomp.as_ref(), b.seccomp.as_ref());
        if let (Some(sa), Some(sb)) = (sa, sb) {
            d.denied(
                "seccomp.deny",
                &set(sa.deny.iter().map(|x| &x.name)),
                &set(sb.deny.iter().map(|x| &x.name)),
            );
            let actions = |s: &super::schema::SeccompSection| -> BTreeSet<String> {
                s.allowed_default_actions
                    .iter()
                    .map(|x| format!("{x:?}").to_lowercase())
                    .collect()
            };
            d.allowed(
                "seccomp.allowed_default_actions",
                &actions(sa),
                &actions(sb),
            );
            // Allowing a seccomp agent is the looser setting.
            let agent = |s: &super::schema::SeccompSection| -> BTreeSet<String> {
                (s.user_notification == super::schema::UserNotification::Allow)
                    .then(|| "SCMP_ACT_NOTIFY (a seccomp agent)".to_owned())
                    .into_iter()
                    .collect()
            };
            d.allowed("seccomp.user_notification", &agent(sa), &agent(sb));
        }
        let names = |p: &Profile| -> BTreeSet<String> {
            p.seccomp_filter
                .iter()
                .flat_map(|f| f.allowed_names().map(str::to_owned))
                .collect()
        };
        d.allowed("seccomp.default_filter", &names(a), &names(b));
    }

    if d.section(
        "capabilities",
        &a.capabilities,
        &b.capabilities,
        "every capability the spec asks for",
    ) {
        if let (Some(ca), Some(cb)) = (&a.capabilities, &b.capabilities) {
            d.allowed("capabilities.allowed", &set(&ca.allowed), &set(&cb.allowed));
        }
    }

    if d.section(
        "process",
        &a.process,
        &b.process,
        "root, and privilege escalation",
    ) {
        if let (Some(pa), Some(pb)) = (&a.process, &b.process) {
            d.restricts(
                "process.root",
                pa.root == RootPolicy::Never,
                pb.root == RootPolicy::Never,
                "root inside a user namespace",
            );
            d.denied(
                "process.forbidden_cwd",
                &set(&pa.forbidden_cwd),
                &set(&pb.forbidden_cwd),
            );
            d.push(
                "process.uid_ranges",
                ids_not_in("uid", &pa.uid_ranges, &pb.uid_ranges),
                ids_not_in("uid", &pb.uid_ranges, &pa.uid_ranges),
            );
            d.push(
                "process.gid_ranges",
                ids_not_in("gid", &pa.gid_ranges, &pb.gid_ranges),
                ids_not_in("gid", &pb.gid_ranges, &pa.gid_ranges),
            );
        }
    }

    if d.section(
        "user_namespace",
        &a.user_namespace,
        &b.user_namespace,
        "container root may be host root",
    ) {
        if let (Some(ua), Some(ub)) = (&a.user_namespace, &b.user_namespace) {
            d.restricts(
                "user_namespace.required",
                ua.required,
                ub.required,
                "no user namespace (container root is host root)",
            );
        }
    }

    if d.section(
        "filesystem",
        &a.filesystem,
        &b.filesystem,
        "writable rootfs, unmasked /proc and /sys",
    ) {
        if let (Some(fa), Some(fb)) = (&a.filesystem, &b.filesystem) {
            d.restricts(
                "filesystem.readonly_rootfs",
                fa.readonly_rootfs,
                fb.readonly_rootfs,
                "a writable root filesystem",
            );
            d.denied(
                "filesystem.masked_paths",
                &set(&fa.masked_paths),
                &set(&fb.masked_paths),
            );
            d.denied(
                "filesystem.readonly_paths",
                &set(&fa.readonly_paths),
                &set(&fb.readonly_paths),
            );
        }
    }

    if d.section(
        "mounts",
        &a.mounts,
        &b.mounts,
        "any mount, host paths included",
    ) {
        if let (Some(ma), Some(mb)) = (&a.mounts, &b.mounts) {
            d.allowed(
                "mounts.allowed_types",
                &set(&ma.allowed_types),
                &set(&mb.allowed_types),
            );
            d.allowed(
                "mounts.bind_source_prefixes",
                &set(&ma.bind_source_prefixes),
                &set(&mb.bind_source_prefixes),
            );
            d.denied(
                "mounts.forbidden_sources",
                &set(ma.forbidden_sources.iter().map(|f| &f.path)),
                &set(mb.forbidden_sources.iter().map(|f| &f.path)),
            );
            d.restricts(
                "mounts.forbid_shared_propagation",
                ma.forbid_shared_propagation,
                mb.forbid_shared_propagation,
                "shared mount propagation",
            );
            d.denied(
                "mounts.bind_required_options",
                &set(&ma.bind_required_options),
                &set(&mb.bind_required_options),
            );
        }
    }

    if d.section(
        "namespaces",
        &a.namespaces,
        &b.namespaces,
        "host namespaces",
    ) {
        if let (Some(na), Some(nb)) = (&a.namespaces, &b.namespaces) {
            let names = |v: &[super::schema::NsType]| -> BTreeSet<String> {
                v.iter().map(|n| format!("host {}", n.oci_name())).collect()
            };
            d.denied(
                "namespaces.host_forbidden",
                &names(&na.host_forbidden),
                &names(&nb.host_forbidden),
            );
            let own = |v: &[super::schema::NsType]| -> BTreeSet<String> {
                v.iter()
                    .map(|n| format!("no own {}", n.oci_name()))
                    .collect()
            };
            d.denied(
                "namespaces.required",
                &own(&na.required),
                &own(&nb.required),
            );
        }
    }

    if d.section("cgroups", &a.cgroups, &b.cgroups, "no resource limits") {
        if let (Some(ga), Some(gb)) = (&a.cgroups, &b.cgroups) {
            d.max(
                "cgroups.memory_bytes.max",
                ga.memory_bytes.max,
                gb.memory_bytes.max,
                " bytes",
            );
            d.max(
                "cgroups.cpu_millicores.max",
                ga.cpu_millicores.max,
                gb.cpu_millicores.max,
                " millicores",
            );
            d.max("cgroups.pids.max", ga.pids.max, gb.pids.max, " processes");
        }
    }

    if d.section("sysctls", &a.sysctls, &b.sysctls, "any sysctl") {
        if let (Some(ya), Some(yb)) = (&a.sysctls, &b.sysctls) {
            d.allowed("sysctls.allowed", &set(&ya.allowed), &set(&yb.allowed));
        }
    }

    fn landlock_on(p: &Profile) -> Option<&super::schema::LandlockSection> {
        p.landlock.as_ref().filter(|l| l.enabled)
    }
    match (landlock_on(a), landlock_on(b)) {
        (None, Some(_)) => d.push("landlock", vec!["no Landlock rules".into()], vec![]),
        (Some(_), None) => d.push("landlock", vec![], vec!["no Landlock rules".into()]),
        (None, None) => {}
        (Some(la), Some(lb)) => {
            let ports = |p: &Option<Vec<u16>>| -> Option<BTreeSet<String>> {
                p.as_ref()
                    .map(|v| v.iter().map(|p| format!("port {p}")).collect())
            };
            for (rule, pa, pb) in [
                ("landlock.tcp_bind", &la.tcp_bind, &lb.tcp_bind),
                ("landlock.tcp_connect", &la.tcp_connect, &lb.tcp_connect),
            ] {
                match (ports(pa), ports(pb)) {
                    (None, Some(_)) => d.push(rule, vec!["any port".into()], vec![]),
                    (Some(_), None) => d.push(rule, vec![], vec!["any port".into()]),
                    (Some(x), Some(y)) => d.allowed(rule, &x, &y),
                    (None, None) => {}
                }
            }
            d.restricts(
                "landlock.scope_abstract_unix",
                la.scope_abstract_unix,
                lb.scope_abstract_unix,
                "abstract unix sockets outside the container",
            );
            d.restricts(
                "landlock.scope_signal",
                la.scope_signal,
                lb.scope_signal,
                "signals to processes outside the container",
            );
            let fs = |l: &super::schema::LandlockSection| -> BTreeSet<String> {
                l.fs.iter()
                    .flat_map(|r| {
                        r.access
                            .iter()
                            .map(move |x| format!("{x:?} under {}", r.path).to_lowercase())
                    })
                    .collect()
            };
            d.allowed("landlock.fs", &fs(la), &fs(lb));
            if needed_abi(la) != needed_abi(lb) {
                d.push(
                    "landlock.min_abi",
                    vec![format!("needs ABI {}", needed_abi(la))],
                    vec![format!("needs ABI {}", needed_abi(lb))],
                );
            }
        }
    }

    if d.section(
        "lsm",
        &a.lsm,
        &b.lsm,
        "any AppArmor profile or SELinux label",
    ) {
        if let (Some(za), Some(zb)) = (&a.lsm, &b.lsm) {
            d.allowed(
                "lsm.apparmor_profiles",
                &set(&za.apparmor_profiles),
                &set(&zb.apparmor_profiles),
            );
            d.allowed(
                "lsm.selinux_types",
                &set(&za.selinux_types),
                &set(&zb.selinux_types),
            );
        }
    }
    d.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::tests::shipped;

    #[test]
    fn a_profile_does_not_differ_from_itself() {
        for name in ["restricted", "baseline", "default", "unconfined"] {
            assert_eq!(diff(&shipped(name), &shipped(name)), vec![], "{name}");
        }
    }

    #[test]
    fn differences_are_rule_by_rule_and_symmetric() {
        let (r, b) = (shipped("restricted"), shipped("baseline"));
        let d = diff(&b, &r);
        let caps = d
            .iter()
            .find(|x| x.rule == "capabilities.allowed")
            .expect("capabilities differ");
        assert!(caps.only_a.contains(&"CAP_CHOWN".to_owned()), "{caps:?}");
        assert!(caps.only_b.is_empty(), "{caps:?}");
        let back = diff(&r, &b);
        assert_eq!(back.len(), d.len());
        for (x, y) in d.iter().zip(&back) {
            assert_eq!(
                (&x.rule, &x.only_a, &x.only_b),
                (&y.rule, &y.only_b, &y.only_a)
            );
        }
    }

    #[test]
    fn id_ranges_differ_by_the_ids_only_one_covers() {
        let r = |min, max| IdRange { min, max };
        assert_eq!(ids_not_in("uid", &[r(0, 65535)], &[r(1, 65535)]), ["uid 0"]);
        assert_eq!(
            ids_not_in("uid", &[r(0, 100)], &[r(10, 20), r(50, 60)]),
            ["uids 0-9", "uids 21-49", "uids 61-100"]
        );
        assert!(ids_not_in("gid", &[r(5, 9)], &[r(0, 100)]).is_empty());
        assert_eq!(ids_not_in("gid", &[r(5, 9)], &[]), ["gids 5-9"]);
    }

    #[test]
    fn allowing_a_seccomp_agent_is_a_difference() {
        let strict = shipped("default");
        let mut loose = strict.clone();
        loose
            .seccomp
            .as_mut()
            .expect("a seccomp section")
            .user_notification = crate::profile::schema::UserNotification::Allow;
        let d = diff(&loose, &strict);
        let agent = d
            .iter()
            .find(|x| x.rule == "seccomp.user_notification")
            .expect("user_notification differs");
        assert_eq!(
            agent.only_a,
            ["SCMP_ACT_NOTIFY (a seccomp agent)"],
            "{agent:?}"
        );
        assert!(agent.only_b.is_empty(), "{agent:?}");
    }

    #[test]
    fn an_absent_section_allows_the_whole_control() {
        let d = diff(&shipped("unconfined"), &shipped("restricted"));
        let rules: Vec<&str> = d.iter().map(|x| x.rule.as_str()).collect();
        assert!(
            rules.contains(&"seccomp") && rules.contains(&"landlock"),
            "{rules:?}"
        );
        assert!(d.iter().all(|x| x.only_b.is_empty()), "{d:#?}");
    }
}
