//! The one policy gate: every verb that shapes a container's confinement — `create`,
//! `exec` and `update` — is judged here, by the same rule functions, against the
//! profile recorded when the container was created.
//!
//! `create` judges the whole spec (and injects the profile's defaults, see
//! [`super::plan`]). `exec` judges the init's hardened spec with its `process`
//! replaced by the one the caller wants to start; `update` judges it with
//! `linux.resources` merged with the caller's document. Only the violations in the
//! part the verb changes count (`process.*`, `linux.resources*`): the rest was judged
//! at create. The caller's runtime options that the spec does not carry
//! (`--preserve-fds`) are judged too. Pure: the host facts and namespace lookups are
//! passed in.

use std::fmt;
use std::path::Path;

use oci_spec::runtime::{LinuxResources, Process, Spec};
use serde_json::Value;

use super::host::{HostFacts, NsInodeLookup};
use super::plan::{self, Decision, EvaluateError, Refusal};
use super::schema::{Mode, NsType, Profile};
use super::violation::Violation;

/// What the caller asks of the runtime beyond the spec, and what the state root says
/// about the containers the spec refers to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeOpts {
    /// `--preserve-fds N`: host fds handed to the container beyond stdio.
    pub preserve_fds: i32,
    /// The pod sandbox named by the CRI sandbox-id annotation, when it names another
    /// container: its id and what the state root holds under it.
    pub sandbox: Option<(String, SandboxFacts)>,
    /// What each bind mount source (`mounts[i]`) really is: the path of the object
    /// opened when following it as mount(2) would (see `admission`).
    pub bind_sources: Vec<(usize, String)>,
}

/// The container a spec names as its pod sandbox, as found in the state root. The
/// annotation decides which host id range (and user namespace) the container shares,
/// so it must name a live sandbox of this state root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxFacts {
    /// No container of that id in this state root.
    Missing,
    /// A container that is not a pod sandbox (its own sandbox id is not its id).
    NotASandbox,
    /// A sandbox without a live init.
    NotRunning,
    /// A running sandbox whose init is `pid`.
    Running { pid: i32 },
}

/// The verb being judged, for messages and the audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    Create,
    Exec,
    Update,
}

impl Verb {
    pub fn name(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Exec => "exec",
            Verb::Update => "update",
        }
    }
}

/// The decision on an `exec` or `update` of a running container.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Go ahead; violations in `audit`/`warn` mode are reported alongside.
    Allowed {
        warnings: Vec<Violation>,
    },
    Refused(GateRefusal),
}

/// A refused `exec` or `update`: the verb and every violated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct GateRefusal {
    pub verb: Verb,
    pub refusal: Refusal,
}

impl fmt::Display for GateRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        plan::fmt_refusal(f, self.verb.name(), &self.refusal)
    }
}

impl std::error::Error for GateRefusal {}

impl Verdict {
    /// One structured audit record (`stockade.profile.decision`) for this verdict.
    pub fn audit_record(
        &self,
        verb: Verb,
        profile: &Profile,
        container_id: &str,
    ) -> plan::AuditRecord {
        let (outcome, violations, warnings) = match self {
            Verdict::Allowed { warnings } => (plan::Outcome::Admitted, Vec::new(), warnings),
            Verdict::Refused(r) => (
                plan::Outcome::Refused,
                r.refusal.violations.clone(),
                &r.refusal.warnings,
            ),
        };
        plan::AuditRecord {
            event: plan::AUDIT_EVENT,
            verb,
            outcome,
            container_id: Some(container_id.to_owned()),
            profile: profile.name.clone(),
            version: profile.version.clone(),
            violations,
            warnings: warnings.clone(),
            injected: Vec::new(),
            landlock: None,
            userns: None,
            would_refuse: Vec::new(),
            would_inject: Vec::new(),
        }
    }
}

/// `create`: the spec and the caller's options, against `profile` on `host`.
pub fn create(
    spec: &Spec,
    opts: &RuntimeOpts,
    profile: &Profile,
    host: &HostFacts,
    ns: &dyn NsInodeLookup,
) -> Result<Decision, EvaluateError> {
    let mut extra = runtime_checks(opts, profile);
    extra.extend(sandbox_checks(spec, opts, profile, host, ns)?);
    extra.extend(owner_landlock_checks(spec, profile, host));
    extra.extend(bind_source_checks(spec, opts, profile)?);
    plan::evaluate_with(spec, profile, host, ns, extra)
}

/// `exec`: `process` (already built and clamped to the init's privileges) started in
/// the container whose hardened spec is `init`.
pub fn exec(
    init: &Spec,
    process: &Process,
    opts: &RuntimeOpts,
    profile: &Profile,
    host: &HostFacts,
    ns: &dyn NsInodeLookup,
) -> Result<Verdict, EvaluateError> {
    let mut doc = serde_json::to_value(init).map_err(EvaluateError::SerializeSpec)?;
    let process = serde_json::to_value(process).map_err(EvaluateError::SerializeSpec)?;
    set_key(&mut doc, "process", process);
    let mut violations = changed(&doc, profile, host, ns, "process.");
    violations.extend(runtime_checks(opts, profile));
    Ok(verdict(Verb::Exec, profile, violations))
}

/// `update`: `requested` merged into the resources of the hardened spec `init`.
/// Returns the verdict and, to record once applied, the spec with the merged
/// resources (so the next update is judged against what the cgroup now holds).
pub fn update(
    init: &Spec,
    requested: &LinuxResources,
    profile: &Profile,
    host: &HostFacts,
    ns: &dyn NsInodeLookup,
) -> Result<(Verdict, Spec), EvaluateError> {
    let mut doc = serde_json::to_value(init).map_err(EvaluateError::SerializeSpec)?;
    let requested = serde_json::to_value(requested).map_err(EvaluateError::SerializeSpec)?;
    let linux = super::rules::ensure_object(&mut doc, "/linux");
    let resources = linux
        .entry("resources")
        .or_insert_with(|| Value::Object(Default::default()));
    merge(resources, &requested);
    let violations = changed(&doc, profile, host, ns, "linux.resources");
    let spec = serde_json::from_value(doc).map_err(EvaluateError::HardenedSpecInvalid)?;
    Ok((verdict(Verb::Update, profile, violations), spec))
}

/// Violations of every rule of `profile` whose config.json path starts with `prefix`.
fn changed(
    doc: &Value,
    profile: &Profile,
    host: &HostFacts,
    ns: &dyn NsInodeLookup,
    prefix: &str,
) -> Vec<Violation> {
    // The spec is the hardened one: a user namespace it needs is already in it.
    plan::check(doc, profile, host, ns, false)
        .into_iter()
        .filter(|v| v.path.starts_with(prefix))
        .collect()
}

/// Rules on the caller's options.
fn runtime_checks(opts: &RuntimeOpts, profile: &Profile) -> Vec<Violation> {
    let Some(s) = &profile.process else {
        return Vec::new();
    };
    let n = opts.preserve_fds;
    if n <= 0 || u32::try_from(n).is_ok_and(|n| n <= s.max_preserve_fds) {
        return Vec::new();
    }
    vec![plan::meta(profile, &s.reason, s.mode).violation(
        "process.preserve_fds",
        "--preserve-fds",
        n.to_string(),
        format!("<= {}", s.max_preserve_fds),
        "none (the runtime caller's option)",
    )]
}

/// `mounts.*` on what a bind source really is: a symlink under an allowed prefix that
/// leads to a forbidden object (a runtime socket, a host system path) is judged by
/// where it leads, as the mount would follow it.
fn bind_source_checks(
    spec: &Spec,
    opts: &RuntimeOpts,
    profile: &Profile,
) -> Result<Vec<Violation>, EvaluateError> {
    let Some(section) = &profile.mounts else {
        return Ok(Vec::new());
    };
    let mut doc = serde_json::to_value(spec).map_err(EvaluateError::SerializeSpec)?;
    let mut changed = Vec::new();
    for (i, real) in &opts.bind_sources {
        let Some(m) = doc.pointer_mut(&format!("/mounts/{i}")) else {
            continue;
        };
        let written = m.get("source").and_then(Value::as_str).unwrap_or_default();
        if written != real {
            changed.push((format!("mounts[{i}]."), written.to_owned(), real.clone()));
            m["source"] = Value::String(real.clone());
        }
    }
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    let meta = plan::meta(profile, &section.reason, section.mode);
    let mut out = Vec::new();
    for mut v in super::rules::mounts::check(&doc, section, meta) {
        if !matches!(v.rule, "mounts.forbidden_source" | "mounts.bind_source") {
            continue;
        }
        if let Some((_, written, real)) = changed
            .iter()
            .find(|(p, _, _)| v.path.starts_with(p.as_str()))
        {
            v.actual = format!("{written} resolves to {real}; {}", v.actual);
            out.push(v);
        }
    }
    Ok(out)
}

/// `landlock.owner_abi`: the container owner's own Landlock rules
/// (`org.stockade.landlock`) under `hard` compat (their default) need a kernel that
/// enforces every right they name; checked here, before anything exists, instead of
/// the init dying on it after admission. A malformed annotation is the hardening
/// step's to refuse, naming the key.
fn owner_landlock_checks(spec: &Spec, profile: &Profile, host: &HostFacts) -> Vec<Violation> {
    use crate::landlock::plan::Compat;
    use crate::landlock::plan::{from_annotation, ANNOTATION};
    let Some(value) = spec.annotations().as_ref().and_then(|a| a.get(ANNOTATION)) else {
        return Vec::new();
    };
    let Ok(owner) = from_annotation(value) else {
        return Vec::new();
    };
    let needed = super::rules::landlock::plan_abi(&owner);
    let have = host.landlock_abi.unwrap_or(0);
    if owner.compat != Compat::Hard || have >= needed {
        return Vec::new();
    }
    let actual = match host.landlock_abi {
        Some(a) => format!("kernel Landlock ABI {a}"),
        None => "Landlock unavailable on this kernel".to_owned(),
    };
    let reason = "the container owner's Landlock rules must be enforced in full (compat hard)";
    let mut missing = super::rules::landlock::not_enforced(&owner, have);
    if missing.is_empty() {
        missing.push(format!("the rights of ABI {}..={needed}", have + 1));
    }
    vec![plan::meta(profile, reason, None).violation(
        "landlock.owner_abi",
        format!("annotations[{ANNOTATION}]"),
        format!("{actual}; not enforced: {}", super::rules::join(missing)),
        format!("ABI >= {needed}"),
        "none (node kernel; schedule on another node, or compat best_effort)",
    )]
}

/// `user_namespace.sandbox`: a spec that the runtime gives a user namespace shares
/// the host range (and joins the user namespace) of the pod sandbox it names; that
/// sandbox must be a running sandbox container of this state root, and every
/// `/proc/<pid>/ns/*` the spec joins must be that sandbox's init.
fn sandbox_checks(
    spec: &Spec,
    opts: &RuntimeOpts,
    profile: &Profile,
    host: &HostFacts,
    ns: &dyn NsInodeLookup,
) -> Result<Vec<Violation>, EvaluateError> {
    let (Some(section), Some((name, facts))) = (&profile.user_namespace, &opts.sandbox) else {
        return Ok(Vec::new());
    };
    let doc = serde_json::to_value(spec).map_err(EvaluateError::SerializeSpec)?;
    if super::rules::user_namespace::request(&doc, section).is_none() {
        // The spec brings its own user namespace: the annotation decides nothing.
        return Ok(Vec::new());
    }
    let meta = plan::meta(profile, &section.reason, section.mode);
    const RULE: &str = "user_namespace.sandbox";
    const K8S: &str = "none (set by the CRI plugin for the pod)";
    let path = format!(
        "annotations[{}]",
        super::rules::user_namespace::SANDBOX_ID_ANNOTATION
    );
    let allowed = "the id of a running pod sandbox in this state root";
    let found = match facts {
        SandboxFacts::Missing => Some(format!("{name}: no such container in this state root")),
        SandboxFacts::NotASandbox => Some(format!("{name}: not a pod sandbox")),
        SandboxFacts::NotRunning => Some(format!("{name}: not running")),
        SandboxFacts::Running { .. } => None,
    };
    if let Some(actual) = found {
        return Ok(vec![meta.violation(RULE, path, actual, allowed, K8S)]);
    }
    let SandboxFacts::Running { pid } = facts else {
        return Ok(Vec::new());
    };
    let own = format!("/proc/{pid}/ns/");
    let mut out = Vec::new();
    let namespaces = doc.pointer("/linux/namespaces").and_then(Value::as_array);
    for (i, entry) in namespaces.into_iter().flatten().enumerate() {
        let Some(p) = entry.get("path").and_then(Value::as_str) else {
            continue;
        };
        let per_process = p
            .strip_prefix("/proc/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(pid, rest)| {
                !pid.is_empty()
                    && pid.bytes().all(|b| b.is_ascii_digit())
                    && rest.starts_with("ns/")
            });
        // Only a process outside the host's user namespace matters: that is the
        // user namespace the runtime would join. Host namespaces are
        // `namespaces.host`'s to refuse, unresolvable ones `namespaces.unresolvable`'s.
        let foreign_userns = Path::new(p)
            .parent()
            .map(|ns_dir| ns_dir.join("user"))
            .and_then(|user| ns.inode(&user).ok())
            .is_some_and(|ino| host.own_namespaces.get(&NsType::User) != Some(&ino));
        if per_process && foreign_userns && !p.starts_with(&own) {
            out.push(meta.violation(
                RULE,
                format!("linux.namespaces[{i}].path"),
                p,
                format!("{own}* (the init of sandbox {name})"),
                K8S,
            ));
        }
    }
    Ok(out)
}

fn verdict(verb: Verb, profile: &Profile, violations: Vec<Violation>) -> Verdict {
    let (enforced, warnings): (Vec<_>, Vec<_>) = violations
        .into_iter()
        .partition(|v| v.mode == Mode::Enforce);
    if enforced.is_empty() {
        return Verdict::Allowed { warnings };
    }
    Verdict::Refused(GateRefusal {
        verb,
        refusal: Refusal {
            profile: profile.name.clone(),
            version: profile.version.clone(),
            violations: enforced,
            warnings,
            audit: None,
        },
    })
}

fn set_key(doc: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = doc {
        map.insert(key.to_owned(), value);
    }
}

/// `over` merged into `base`: objects key by key, anything else replaced; `null`
/// (an absent field) leaves `base` as it is.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    continue;
                }
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) if !o.is_null() => *b = o.clone(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::host::fake::{host, FakeNs};
    use crate::profile::tests::shipped;

    fn init_spec() -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs", "readonly": true},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 1000, "gid": 1000},
                        "noNewPrivileges": true,
                        "capabilities": {"bounding": [], "effective": [], "permitted": []}},
            "linux": {
                "namespaces": [{"type": "user"}, {"type": "pid"}],
                "uidMappings": [{"containerID": 0, "hostID": 1000000, "size": 65536}],
                "gidMappings": [{"containerID": 0, "hostID": 1000000, "size": 65536}],
                "resources": {"memory": {"limit": 1073741824}, "pids": {"limit": 1024},
                              "cpu": {"quota": 200000, "period": 100000}}
            }
        }))
        .unwrap()
    }

    fn process(edit: impl FnOnce(&mut Value)) -> Process {
        let mut p = serde_json::to_value(init_spec().process().clone().unwrap()).unwrap();
        edit(&mut p);
        serde_json::from_value(p).unwrap()
    }

    fn refused_rules(v: &Verdict) -> Vec<&'static str> {
        match v {
            Verdict::Allowed { .. } => Vec::new(),
            Verdict::Refused(r) => r.refusal.violations.iter().map(|v| v.rule).collect(),
        }
    }

    fn exec_rules(profile: &str, p: Process, fds: i32) -> Vec<&'static str> {
        let h = host();
        let v = exec(
            &init_spec(),
            &p,
            &RuntimeOpts {
                preserve_fds: fds,
                ..Default::default()
            },
            &shipped(profile),
            &h,
            &FakeNs::new(&h),
        )
        .unwrap();
        refused_rules(&v)
    }

    #[test]
    fn exec_is_judged_by_the_process_rules() {
        let root = || process(|p| p["user"]["uid"] = 0.into());
        assert_eq!(
            exec_rules("restricted", root(), 0),
            ["process.run_as_non_root"]
        );
        // `default` accepts root: the init's spec maps it into a user namespace.
        assert!(exec_rules("default", root(), 0).is_empty());
        let far = process(|p| p["user"]["uid"] = 70000.into());
        assert_eq!(exec_rules("default", far, 0), ["process.uid_range"]);
        for profile in ["default", "restricted"] {
            let aa = process(|p| p["apparmorProfile"] = "unconfined".into());
            assert_eq!(exec_rules(profile, aa, 0), ["lsm.apparmor"], "{profile}");
            let label = process(|p| p["selinuxLabel"] = "system_u:system_r:spc_t:s0".into());
            assert_eq!(exec_rules(profile, label, 0), ["lsm.selinux"], "{profile}");
            let ok = process(|_| {});
            assert!(exec_rules(profile, ok.clone(), 0).is_empty(), "{profile}");
            assert_eq!(exec_rules(profile, ok, 3), ["process.preserve_fds"]);
        }
        assert!(exec_rules("unconfined", root(), 3).is_empty());
    }

    #[test]
    fn a_named_sandbox_must_be_a_live_sandbox_of_the_state_root() {
        let h = host();
        // A bare spec: `default` gives it a user namespace in the sandbox's range.
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/proc/42/ns/net"}]}
        }))
        .unwrap();
        let rules = |facts: Option<SandboxFacts>| -> Vec<(&'static str, String)> {
            let opts = RuntimeOpts {
                sandbox: facts.map(|f| ("sb".to_string(), f)),
                ..Default::default()
            };
            let d = create(&spec, &opts, &shipped("default"), &h, &FakeNs::new(&h)).unwrap();
            match d {
                Decision::Refused(r) => r
                    .violations
                    .into_iter()
                    .filter(|v| v.rule == "user_namespace.sandbox")
                    .map(|v| (v.rule, v.path))
                    .collect(),
                Decision::Admitted(_) => Vec::new(),
            }
        };
        let annotation = "annotations[io.kubernetes.cri.sandbox-id]".to_string();
        for facts in [
            SandboxFacts::Missing,
            SandboxFacts::NotASandbox,
            SandboxFacts::NotRunning,
        ] {
            assert_eq!(
                rules(Some(facts.clone())),
                [("user_namespace.sandbox", annotation.clone())],
                "{facts:?}"
            );
        }
        assert!(rules(Some(SandboxFacts::Running { pid: 42 })).is_empty());
        assert_eq!(
            rules(Some(SandboxFacts::Running { pid: 7 })),
            [(
                "user_namespace.sandbox",
                "linux.namespaces[1].path".to_string()
            )]
        );
        assert!(rules(None).is_empty());
    }

    #[test]
    fn host_namespace_paths_are_not_the_sandbox_rules_business() {
        let h = host();
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}]}
        }))
        .unwrap();
        let opts = RuntimeOpts {
            sandbox: Some(("sb".into(), SandboxFacts::Running { pid: 42 })),
            ..Default::default()
        };
        let Decision::Refused(r) =
            create(&spec, &opts, &shipped("default"), &h, &FakeNs::new(&h)).unwrap()
        else {
            panic!("host pid namespace admitted");
        };
        let rules: Vec<_> = r.violations.iter().map(|v| v.rule).collect();
        assert!(rules.contains(&"namespaces.host"), "{rules:?}");
        assert!(!rules.contains(&"user_namespace.sandbox"), "{rules:?}");
    }

    #[test]
    fn owner_landlock_rules_are_checked_against_the_host_abi_at_admission() {
        let mut h = host();
        h.landlock_abi = Some(3);
        let spec = |compat: &str| -> Spec {
            serde_json::from_value(serde_json::json!({
                "ociVersion": "1.0.2", "root": {"path": "rootfs"},
                "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
                "annotations": {"org.stockade.landlock": format!(
                    r#"{{"compat":"{compat}","tcp_bind":[80],"fs_rules":[{{"path":"/tmp","access":["read_file"]}}]}}"#
                )}
            }))
            .unwrap()
        };
        let rules = |s: &Spec, h: &HostFacts| match create(
            s,
            &RuntimeOpts::default(),
            &shipped("unconfined"),
            h,
            &FakeNs::new(h),
        )
        .unwrap()
        {
            Decision::Refused(r) => r
                .violations
                .iter()
                .map(|v| (v.rule, v.actual.clone()))
                .collect(),
            Decision::Admitted(_) => Vec::new(),
        };
        let hard = rules(&spec("hard"), &h);
        assert_eq!(hard.len(), 1, "{hard:?}");
        assert_eq!(hard[0].0, "landlock.owner_abi");
        assert!(hard[0].1.contains("TCP bind ports"), "{hard:?}");
        assert!(rules(&spec("best_effort"), &h).is_empty());
        h.landlock_abi = Some(6);
        assert!(rules(&spec("hard"), &h).is_empty());
    }

    #[test]
    fn report_only_admits_the_spec_unchanged_and_lists_what_it_would_do() {
        let h = host();
        let mut p = shipped("restricted");
        p.mode = Mode::Report;
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}]}
        }))
        .unwrap();
        let d = create(&spec, &RuntimeOpts::default(), &p, &h, &FakeNs::new(&h)).unwrap();
        assert_eq!(d.audit_record(None).outcome, plan::Outcome::WouldRefuse);
        let Decision::Admitted(a) = d else {
            panic!("report-only refused");
        };
        assert_eq!(a.spec, spec, "unchanged");
        assert!(a.userns.is_none() && a.landlock.is_none());
        let rules: Vec<_> = a.would_refuse.iter().map(|v| v.rule).collect();
        assert!(rules.contains(&"process.run_as_non_root"), "{rules:?}");
    }

    #[test]
    fn a_bind_source_is_judged_by_what_it_resolves_to() {
        let h = host();
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 1000, "gid": 1000}},
            "mounts": [{"destination": "/s", "type": "bind",
                        "source": "/var/lib/kubelet/pods/u/volumes/s", "options": ["rbind", "nosuid", "nodev"]}]
        }))
        .unwrap();
        let rules = |real: &str| -> Vec<(&'static str, String)> {
            let opts = RuntimeOpts {
                bind_sources: vec![(0, real.to_string())],
                ..Default::default()
            };
            match create(&spec, &opts, &shipped("default"), &h, &FakeNs::new(&h)).unwrap() {
                Decision::Refused(r) => r
                    .violations
                    .into_iter()
                    .filter(|v| v.rule.starts_with("mounts."))
                    .map(|v| (v.rule, v.actual))
                    .collect(),
                Decision::Admitted(_) => Vec::new(),
            }
        };
        let sock = rules("/run/containerd/containerd.sock");
        assert_eq!(sock.len(), 1, "{sock:?}");
        assert_eq!(sock[0].0, "mounts.forbidden_source");
        assert!(
            sock[0]
                .1
                .contains("resolves to /run/containerd/containerd.sock"),
            "{sock:?}"
        );
        assert_eq!(rules("/tmp/x.sock")[0].0, "mounts.bind_source");
        assert!(rules("/var/lib/kubelet/pods/u/volumes/s").is_empty());
    }

    fn update_rules(profile: &str, resources: Value) -> (Vec<&'static str>, Spec) {
        let h = host();
        let r: LinuxResources = serde_json::from_value(resources).unwrap();
        let (v, spec) = update(&init_spec(), &r, &shipped(profile), &h, &FakeNs::new(&h)).unwrap();
        (refused_rules(&v), spec)
    }

    #[test]
    fn update_is_judged_against_the_merged_resources() {
        for profile in ["default", "restricted"] {
            let (rules, _) = update_rules(
                profile,
                serde_json::json!({"memory": {"limit": 137438953472_i64}}),
            );
            assert_eq!(rules, ["cgroups.memory"], "{profile}");
            let (rules, _) = update_rules(profile, serde_json::json!({"pids": {"limit": 100000}}));
            assert_eq!(rules, ["cgroups.pids"], "{profile}");
            let (rules, _) = update_rules(profile, serde_json::json!({"pids": {"limit": -1}}));
            assert_eq!(rules, ["cgroups.pids"], "{profile}");
            // The period alone changes the ratio with the quota already set.
            let (rules, _) = update_rules(profile, serde_json::json!({"cpu": {"period": 1000}}));
            assert_eq!(rules, ["cgroups.cpu"], "{profile}");
            let (rules, _) = update_rules(
                profile,
                serde_json::json!({"devices": [{"allow": true, "access": "rwm"}]}),
            );
            assert_eq!(rules, ["cgroups.devices"], "{profile}");
            let (rules, spec) = update_rules(
                profile,
                serde_json::json!({"memory": {"limit": 2147483648_i64}}),
            );
            assert!(rules.is_empty(), "{profile}: {rules:?}");
            let r = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
            assert_eq!(r.memory().unwrap().limit(), Some(2147483648));
            assert_eq!(r.pids().unwrap().limit(), 1024, "untouched limits stay");
        }
    }
}
