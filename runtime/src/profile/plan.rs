//! The pure check-and-harden step: `spec × profile × host facts → Decision`.
//!
//! Order: every injecting rule first edits a copy of the spec (so a silent spec gets the
//! profile's defaults), then every rule checks the result. A violation in `enforce` mode
//! refuses the container; in `audit`/`warn` mode it is carried as a warning. Injection
//! happens whatever the mode: modes decide what a *violation* does, never whether the
//! container is hardened. A section the profile does not have is skipped entirely: it
//! neither injects nor checks, so a profile without sections admits every spec unchanged.

use oci_spec::runtime::Spec;
use serde::Serialize;
use serde_json::Value;
use std::fmt;

use super::host::{HostFacts, NsInodeLookup};
use super::rules::{self, user_namespace::UsernsRequest};
use super::schema::{Mode, OnMissing, Profile};
use super::violation::{Injection, RuleMeta, Violation};
use crate::landlock::plan::LandlockPlan;

#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("cannot serialize the spec")]
    SerializeSpec(#[source] serde_json::Error),
    #[error("hardened spec is not a valid OCI spec")]
    HardenedSpecInvalid(#[source] serde_json::Error),
    #[error("profile {0:?} injects seccomp but its default filter was not loaded")]
    SeccompFilterNotLoaded(String),
}

/// The container may not run under this profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub profile: String,
    pub version: String,
    /// Every violation in `enforce` mode, in rule order.
    pub violations: Vec<Violation>,
    /// Violations in `audit`/`warn` mode, reported alongside.
    pub warnings: Vec<Violation>,
    /// Where the full decision is recorded (`audit id ID in LOG`), once it is: the
    /// message then becomes the short form a Kubernetes event can carry.
    #[serde(skip)]
    pub audit: Option<String>,
}

/// The container may run, with this spec and these plans.
#[derive(Debug, Clone, PartialEq)]
pub struct Hardened {
    pub profile: String,
    pub version: String,
    /// The spec with the profile's defaults injected.
    pub spec: Spec,
    pub landlock: Option<LandlockPlan>,
    /// The runtime must create a user namespace and write its mappings into `spec`.
    pub userns: Option<UsernsRequest>,
    /// What was changed, for the audit record.
    pub injected: Vec<Injection>,
    /// Violations in `audit`/`warn` mode.
    pub warnings: Vec<Violation>,
    /// Report-only profile: what enforcing it would have refused ...
    pub would_refuse: Vec<Violation>,
    /// ... and injected; none of it was applied.
    pub would_inject: Vec<Injection>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Refused(Refusal),
    Admitted(Box<Hardened>),
}

/// Check `spec` against `profile` on `host` and harden it. Pure apart from `ns`, which
/// resolves namespace paths named by the spec.
pub fn evaluate(
    spec: &Spec,
    profile: &Profile,
    host: &HostFacts,
    ns: &dyn NsInodeLookup,
) -> Result<Decision, EvaluateError> {
    evaluate_with(spec, profile, host, ns, Vec::new())
}

/// [`evaluate`], with violations of the caller's runtime options (found by the gate,
/// see `gate::create`) judged together with the spec's.
pub(super) fn evaluate_with(
    spec: &Spec,
    profile: &Profile,
    host: &HostFacts,
    ns: &dyn NsInodeLookup,
    runtime_violations: Vec<Violation>,
) -> Result<Decision, EvaluateError> {
    if profile
        .seccomp
        .as_ref()
        .is_some_and(|s| s.on_missing == OnMissing::Inject)
        && profile.seccomp_filter.is_none()
    {
        return Err(EvaluateError::SeccompFilterNotLoaded(profile.name.clone()));
    }
    let mut doc = serde_json::to_value(spec).map_err(EvaluateError::SerializeSpec)?;
    // Before any profile rule, whatever the profile: the runtime's reading of the
    // spec's filter (issue 7: names newer than our syscall table).
    let mut injected = rules::seccomp::drop_unknown_names(&mut doc);
    injected.extend(rules::cgroups::host_notes(&doc, host));
    injected.extend(rules::process::oom_score_adj_host_note(&mut doc, host));
    // What the filter leaves to a userspace agent, where the profile lets it run.
    if profile
        .seccomp
        .as_ref()
        .is_none_or(|s| s.user_notification == crate::profile::schema::UserNotification::Allow)
    {
        injected.extend(rules::seccomp::user_notification_note(&doc));
    }
    // What a report-only profile runs: the spec as read, nothing of the profile's.
    let as_read = (profile.mode == Mode::Report).then(|| (doc.clone(), injected.len()));
    injected.extend(harden(&mut doc, profile));
    let userns = profile
        .user_namespace
        .as_ref()
        .and_then(|u| rules::user_namespace::request(&doc, u));
    let (landlock, mut violations) = match &profile.landlock {
        Some(l) => {
            let (plan, violations, notes) =
                rules::landlock::plan(&doc, l, host, meta(profile, &l.reason, l.mode));
            injected.extend(notes);
            (plan, violations)
        }
        None => (None, Vec::new()),
    };
    violations.splice(0..0, check(&doc, profile, host, ns, userns.is_some()));
    // Volumes are idmapped only in a user namespace the runtime allocates.
    if let (Some(u), Some(_)) = (&profile.user_namespace, &userns) {
        let (v, notes) = rules::user_namespace::idmap_volumes(
            &doc,
            u,
            host,
            ns,
            meta(profile, &u.reason, u.mode),
        );
        violations.extend(v);
        injected.extend(notes);
    }
    violations.extend(runtime_violations);

    if let Some((as_read, read_notes)) = as_read {
        // Pod Security Admission's audit/warn: admit the spec unchanged and record
        // what enforcing would have refused and injected.
        let (would_refuse, warnings): (Vec<_>, Vec<_>) = violations
            .into_iter()
            .partition(|v| matches!(v.mode, Mode::Enforce | Mode::Report));
        let would_inject = injected.split_off(read_notes);
        let spec = serde_json::from_value(as_read).map_err(EvaluateError::HardenedSpecInvalid)?;
        return Ok(Decision::Admitted(Box::new(Hardened {
            profile: profile.name.clone(),
            version: profile.version.clone(),
            spec,
            landlock: None,
            userns: None,
            injected,
            warnings,
            would_refuse,
            would_inject,
        })));
    }
    let (enforced, warnings): (Vec<_>, Vec<_>) = violations
        .into_iter()
        .partition(|v| v.mode == Mode::Enforce);
    if !enforced.is_empty() {
        return Ok(Decision::Refused(Refusal {
            profile: profile.name.clone(),
            version: profile.version.clone(),
            violations: enforced,
            warnings,
            audit: None,
        }));
    }
    let spec = serde_json::from_value(doc).map_err(EvaluateError::HardenedSpecInvalid)?;
    Ok(Decision::Admitted(Box::new(Hardened {
        profile: profile.name.clone(),
        version: profile.version.clone(),
        spec,
        landlock,
        userns,
        injected,
        warnings,
        would_refuse: Vec::new(),
        would_inject: Vec::new(),
    })))
}

pub(super) fn meta<'a>(profile: &Profile, reason: &'a str, mode: Option<Mode>) -> RuleMeta<'a> {
    RuleMeta {
        reason,
        mode: mode.unwrap_or(profile.mode),
    }
}

/// Every present section's `harden`, in a fixed order. Absent sections inject nothing.
fn harden(doc: &mut Value, p: &Profile) -> Vec<Injection> {
    let mut out = Vec::new();
    if let Some(s) = &p.seccomp {
        out.extend(rules::seccomp::harden(doc, s, p.seccomp_filter.as_ref()));
    }
    if let Some(s) = &p.capabilities {
        out.extend(rules::capabilities::harden(doc, s));
    }
    if let Some(s) = &p.process {
        out.extend(rules::process::harden(doc, s));
    }
    if let Some(s) = &p.filesystem {
        out.extend(rules::filesystem::harden(doc, s));
    }
    if let Some(s) = &p.mounts {
        out.extend(rules::mounts::harden(doc, s));
    }
    if let Some(s) = &p.namespaces {
        out.extend(rules::namespaces::harden(doc, s));
    }
    if let Some(s) = &p.cgroups {
        out.extend(rules::cgroups::harden(doc, s));
    }
    if let Some(s) = &p.devices {
        out.extend(rules::devices::harden(doc, s));
    }
    out
}

/// Every present section's `check`, in rule order. Absent sections check nothing.
pub(super) fn check(
    doc: &Value,
    p: &Profile,
    host: &HostFacts,
    ns: &dyn NsInodeLookup,
    userns_requested: bool,
) -> Vec<Violation> {
    let m = |reason, mode| meta(p, reason, mode);
    let mut out = Vec::new();
    if let Some(s) = &p.seccomp {
        out.extend(rules::seccomp::check(doc, s, m(&s.reason, s.mode)));
    }
    if let Some(s) = &p.capabilities {
        out.extend(rules::capabilities::check(doc, s, m(&s.reason, s.mode)));
    }
    if let Some(s) = &p.process {
        out.extend(rules::process::check(
            doc,
            s,
            userns_requested,
            m(&s.reason, s.mode),
        ));
    }
    if let Some(s) = &p.user_namespace {
        out.extend(rules::user_namespace::check(
            doc,
            s,
            userns_requested,
            m(&s.reason, s.mode),
        ));
    }
    if let Some(s) = &p.filesystem {
        out.extend(rules::filesystem::check(doc, s, m(&s.reason, s.mode)));
    }
    if let Some(s) = &p.mounts {
        out.extend(rules::mounts::check(doc, s, m(&s.reason, s.mode)));
    }
    if let Some(s) = &p.namespaces {
        out.extend(rules::namespaces::check(
            doc,
            s,
            host,
            ns,
            m(&s.reason, s.mode),
        ));
    }
    if let Some(s) = &p.devices {
        out.extend(rules::devices::check(doc, s, m(&s.reason, s.mode)));
    }
    if let Some(s) = &p.cgroups {
        out.extend(rules::cgroups::check(doc, s, m(&s.reason, s.mode)));
    }
    if let Some(s) = &p.sysctls {
        out.extend(rules::sysctls::check(doc, s, m(&s.reason, s.mode)));
    }
    if let Some(s) = &p.lsm {
        out.extend(rules::lsm::check(doc, s, m(&s.reason, s.mode)));
    }
    out
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_refusal(f, "container", self)
    }
}

/// Longest refusal message once the decision is recorded: kubelet caps an event's
/// message at 1 KiB, and the runtime's error reaches a pod's events through the CRI
/// (with a little room for what containerd prepends).
pub const SHORT_REFUSAL_BYTES: usize = 900;
/// Longest value (found, allowed) quoted in the short form (a privileged pod lists
/// ~100 devices).
const SHORT_VALUE_CHARS: usize = 120;

fn clip(value: &str) -> String {
    if value.chars().count() > SHORT_VALUE_CHARS {
        let cut: String = value.chars().take(SHORT_VALUE_CHARS).collect();
        format!("{cut}…")
    } else {
        value.to_owned()
    }
}

/// `stockade: WHAT refused by profile "P" vV: N violations`, then one line per
/// violation naming its rule. Before the decision is recorded (profile check, tests)
/// every line carries the value found, what is allowed, the field to change and the
/// reason; once it is recorded the message is the short form: rule, path, value found
/// and allowed (clipped) and the field to change, within [`SHORT_REFUSAL_BYTES`], and
/// the audit record holding the rest (the reasons, and violations past the limit).
pub(super) fn fmt_refusal(f: &mut fmt::Formatter<'_>, what: &str, r: &Refusal) -> fmt::Result {
    let n = r.violations.len();
    let mut out = format!(
        "stockade: {what} refused by profile \"{}\" v{}: {n} violation{}",
        r.profile,
        r.version,
        if n == 1 { "" } else { "s" }
    );
    let Some(audit) = &r.audit else {
        for v in &r.violations {
            out.push_str(&format!(
                "\n  - [{}] {}: {} (allowed: {}) — change {}: {}",
                v.rule, v.path, v.actual, v.allowed, v.k8s_field, v.reason
            ));
        }
        return f.write_str(&out);
    };
    let tail = format!("\n  full record: {audit}");
    for (i, v) in r.violations.iter().enumerate() {
        let line = format!(
            "\n  - [{}] {}: {} (allowed: {}) — change {}",
            v.rule,
            v.path,
            clip(&v.actual),
            clip(&v.allowed),
            v.k8s_field
        );
        let left = n - i - 1;
        // Room for "  - … and N more" when lines remain after this one.
        let reserve = if left > 0 { 40 } else { 0 };
        if out.len() + line.len() + tail.len() + reserve > SHORT_REFUSAL_BYTES {
            out.push_str(&format!("\n  - … and {} more", n - i));
            break;
        }
        out.push_str(&line);
    }
    out.push_str(&tail);
    f.write_str(&out)
}

impl Refusal {
    /// The refusal as one JSON log event.
    pub fn to_json(&self) -> Value {
        // Plain structs with string keys: serialization to a `Value` cannot fail.
        serde_json::to_value(self.audit_record(None)).unwrap_or(Value::Null)
    }

    pub fn audit_record(&self, container_id: Option<&str>) -> AuditRecord {
        AuditRecord {
            event: AUDIT_EVENT,
            verb: super::gate::Verb::Create,
            outcome: Outcome::Refused,
            container_id: container_id.map(str::to_owned),
            profile: self.profile.clone(),
            version: self.version.clone(),
            violations: self.violations.clone(),
            warnings: self.warnings.clone(),
            injected: Vec::new(),
            landlock: None,
            userns: None,
            would_refuse: Vec::new(),
            would_inject: Vec::new(),
        }
    }
}

/// Name of the structured audit event, one per decision.
pub const AUDIT_EVENT: &str = "stockade.profile.decision";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Admitted unchanged.
    Admitted,
    /// Admitted after injecting defaults (or with a user namespace / Landlock plan).
    Hardened,
    Refused,
    /// Report-only profile: admitted unchanged, though enforcing would have refused.
    WouldRefuse,
}

/// One structured record per decision, for the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub event: &'static str,
    /// The verb judged: `create`, `exec` or `update` (see `gate`).
    pub verb: super::gate::Verb,
    pub outcome: Outcome,
    pub container_id: Option<String>,
    pub profile: String,
    pub version: String,
    pub violations: Vec<Violation>,
    pub warnings: Vec<Violation>,
    pub injected: Vec<Injection>,
    pub landlock: Option<LandlockPlan>,
    pub userns: Option<UsernsRequest>,
    /// Report-only profile (`mode = "report"`): what it would have refused and
    /// injected; the container ran its spec unchanged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_refuse: Vec<Violation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_inject: Vec<Injection>,
}

impl Decision {
    pub fn audit_record(&self, container_id: Option<&str>) -> AuditRecord {
        match self {
            Decision::Refused(r) => r.audit_record(container_id),
            Decision::Admitted(h) => AuditRecord {
                event: AUDIT_EVENT,
                verb: super::gate::Verb::Create,
                outcome: if !h.would_refuse.is_empty() {
                    Outcome::WouldRefuse
                } else if h.injected.is_empty() && h.landlock.is_none() && h.userns.is_none() {
                    Outcome::Admitted
                } else {
                    Outcome::Hardened
                },
                container_id: container_id.map(str::to_owned),
                profile: h.profile.clone(),
                version: h.version.clone(),
                violations: Vec::new(),
                warnings: h.warnings.clone(),
                injected: h.injected.clone(),
                landlock: h.landlock.clone(),
                userns: h.userns.clone(),
                would_refuse: h.would_refuse.clone(),
                would_inject: h.would_inject.clone(),
            },
        }
    }
}
