//! Admission: which profile applies to a container, and what it decides.
//!
//! The only impure steps are reading the node config and profiles and probing the
//! host once; the decision itself is `profile::evaluate`, a pure function. Every
//! decision is logged as one structured audit event (`stockade.profile.decision`).

use std::path::Path;

use oci_spec::runtime::Spec;

use crate::bind_source::CheckedSources;
use crate::cgroup_placement::{self, CgroupDriver, Placement, PlacementError};
use crate::file_cache::FileCache;
use crate::host_probe::TmpfsIdmapProbe;
use crate::landlock::plan::LandlockPlan;
use crate::profile::gate::{self, RuntimeOpts, SandboxFacts, Verb, Verdict};
use crate::profile::load::{NoCache, ParseCache};
use crate::profile::node_config::{self, ContainerContext, NodeConfig, NodeConfigError};
use crate::profile::plan::EvaluateError;
use crate::profile::{
    Decision, HostFacts, NsInodeLookup, Profile, Refusal, StatNsLookup, UsernsRequest,
};

#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// Fail closed: without a valid profile no container runs.
    #[error("no valid hardening profile, refusing every container")]
    Profile(#[source] NodeConfigError),
    #[error("no valid hardening profile, refusing every container")]
    Override(#[source] ResolveError),
    /// `linux.cgroupsPath` or the cgroup driver cannot place the container exactly.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    #[error("cannot probe host facts")]
    Host(#[source] crate::profile::host::HostProbeError),
    #[error("cannot evaluate the spec against profile {profile:?}")]
    Evaluate {
        profile: String,
        #[source]
        source: EvaluateError,
    },
    /// The one message that names every violated rule.
    #[error("{0}")]
    Refused(Box<Refusal>),
    /// An `exec` or `update` refused: the verb and every violated rule.
    #[error("{0}")]
    GateRefused(Box<gate::GateRefusal>),
    /// Fail closed: a container without a recorded profile is not judged by another.
    #[error(
        "container {0:?} has no recorded profile; refusing to judge it by the node's current one"
    )]
    NoRecordedProfile(String),
}

/// What the profile admitted.
#[derive(Debug)]
pub struct Admitted {
    pub spec: Spec,
    /// The bind sources as opened and judged: what userns setup idmaps and the
    /// init must find again (`bind_source`), held open until the container exists.
    pub bind_sources: CheckedSources,
    pub landlock: Option<LandlockPlan>,
    /// The host's Landlock ABI the decision was made for (what the plan resolves to).
    pub landlock_abi: Option<u8>,
    pub userns: Option<UsernsRequest>,
    /// `name vVERSION`, for the plan record.
    pub profile: String,
    /// The profile itself, recorded at create so `exec` and `update` are judged by
    /// the very rules that admitted the container, whatever the node config says later.
    pub policy: Profile,
    /// Where the container's cgroup goes; `spec` already names it.
    pub placement: Placement,
    /// The node config's audit settings, read with the profile, for the create-time metric.
    pub audit: crate::audit_log::AuditConfig,
}

/// Where the profile comes from.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub config: Option<&'a Path>,
    /// Overrides the node config's default (the runtime's caller chose it).
    pub default_profile: Option<&'a str>,
    pub handler: Option<&'a str>,
    pub state_root: &'a Path,
    /// The cgroup driver the caller asked for (`--systemd-cgroup`).
    pub cgroup_driver: CgroupDriver,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot read the node config")]
    Config(#[source] NodeConfigError),
    #[error("cannot load profile {0:?}")]
    Load(String, #[source] Box<crate::profile::LoadError>),
    #[error("profile {name:?}: no node config at {config} names a profiles dir; give a path to a .toml file")]
    NoProfilesDir { name: String, config: String },
}

/// A profile named by an operator: a path to a `.toml` file (its seccomp data
/// resolved beside it), or a name in the node config's profiles dir (the compiled-in
/// node default when no node config exists and the name is `default`).
pub fn resolve_named(config: Option<&Path>, name: &str) -> Result<Profile, ResolveError> {
    let cfg_path = config.unwrap_or(Path::new(node_config::DEFAULT_CONFIG_PATH));
    let cfg = NodeConfig::read(cfg_path).map_err(ResolveError::Config)?;
    resolve_named_in(cfg.as_ref(), cfg_path, name, &NoCache)
}

/// [`resolve_named`] under the node config already read from `cfg_path` (`None`:
/// there is none).
fn resolve_named_in(
    cfg: Option<&NodeConfig>,
    cfg_path: &Path,
    name: &str,
    cache: &dyn ParseCache,
) -> Result<Profile, ResolveError> {
    let load = |dir: &Path, stem: &str| {
        crate::profile::load::load_profile_with(dir, stem, cache)
            .map_err(|e| ResolveError::Load(name.to_string(), Box::new(e)))
    };
    if name.contains('/') || name.ends_with(".toml") {
        let path = Path::new(name);
        let dir = path.parent().unwrap_or(Path::new("."));
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or(name);
        let profile = load(dir, stem)?;
        // A profile file is read with this node's directories, as the node would.
        return match cfg {
            Some(cfg) => cfg.localize(profile).map_err(ResolveError::Config),
            None => Ok(profile),
        };
    }
    match cfg {
        Some(cfg) => cfg
            .localize(load(&cfg.profiles_dir, name)?)
            .map_err(ResolveError::Config),
        None if name == "default" => node_config::builtin_default().map_err(ResolveError::Config),
        None => Err(ResolveError::NoProfilesDir {
            name: name.to_string(),
            config: cfg_path.display().to_string(),
        }),
    }
}

/// Select the container's profile and evaluate its spec. `Err(Refused)` carries the
/// violation list; it has already been logged as an audit event.
pub fn admit(
    src: Source<'_>,
    spec: &Spec,
    opts: RuntimeOpts,
    container_id: &str,
) -> Result<Admitted, AdmissionError> {
    let checked = CheckedSources::open(spec);
    let opts = RuntimeOpts {
        sandbox: sandbox_facts(src.state_root, spec, container_id),
        bind_sources: checked.for_gate(),
        ..opts
    };
    let _s = tracing::debug_span!("admission").entered();
    // Parses of the profile files are kept under the state root, keyed by content.
    let file_cache = FileCache::for_state_root(src.state_root);
    let parse_cache: &dyn ParseCache = match &file_cache {
        Some(c) => c,
        None => &NoCache,
    };
    let ctx = ContainerContext {
        handler: src.handler,
        state_root: src.state_root,
        annotations: spec.annotations().as_ref(),
        parse_cache,
    };
    // The node config is read once: the profile and the audit settings come from
    // the same text.
    let cfg_path = src
        .config
        .unwrap_or(Path::new(node_config::DEFAULT_CONFIG_PATH));
    let node = match (NodeConfig::read(cfg_path), src.default_profile) {
        (Ok(node), _) => node,
        (Err(e), Some(_)) => return Err(AdmissionError::Override(ResolveError::Config(e))),
        (Err(e), None) => return Err(AdmissionError::Profile(e)),
    };
    let profile = match src.default_profile {
        // The annotation may still only tighten: it is checked against this profile
        // as the base, exactly as against a node config default.
        Some(name) => {
            let base = resolve_named_in(node.as_ref(), cfg_path, name, parse_cache)
                .map_err(AdmissionError::Override)?;
            node_config::tighten_by_annotation_in(node.as_ref(), base, &ctx)
                .map_err(AdmissionError::Profile)?
        }
        None => {
            node_config::profile_for_container_in(node.as_ref(), &ctx)
                .map_err(AdmissionError::Profile)?
                .profile
        }
    };
    let audit = node.map(|n| n.audit).unwrap_or_default();
    // The tmpfs idmap probe mounts and forks: only for a spec with a tmpfs volume.
    let tmpfs = match has_tmpfs_bind_source(spec, &StatNsLookup) {
        true => TmpfsIdmapProbe::Run,
        false => TmpfsIdmapProbe::Skip,
    };
    let host = HostFacts::probe_with(tmpfs).map_err(AdmissionError::Host)?;
    // The cgroup placement is the caller's choice, not the profile's: checked first,
    // and the profile sees the path the container will really get.
    let placement = place(spec, src.cgroup_driver, container_id)?;
    let mut spec = spec.clone();
    if let Some(linux) = spec.linux_mut() {
        linux.set_cgroups_path(Some(placement.spec_path.clone().into()));
    }
    let spec = &spec;
    let profile = &profile;
    let decision = gate::create(spec, &opts, profile, &host, &StatNsLookup).map_err(|source| {
        AdmissionError::Evaluate {
            profile: profile.name.clone(),
            source,
        }
    })?;
    let record = decision.audit_record(Some(container_id));
    let recorded = crate::audit_log::record_in(&audit, &record);
    let audit_id = &recorded.id;
    let event = serde_json::to_string(&record).unwrap_or_default();
    match decision {
        Decision::Refused(mut r) => {
            tracing::warn!(target: "stockade::audit", audit = %event, audit_id = %audit_id, "container refused by profile");
            // The message that reaches the pod's events: short, pointing at the record.
            r.audit = Some(recorded.to_string());
            Err(AdmissionError::Refused(Box::new(r)))
        }
        Decision::Admitted(h) if !h.would_refuse.is_empty() => {
            // Report-only: say plainly that an enforcing profile would have refused.
            tracing::warn!(target: "stockade::audit", audit = %event, audit_id = %audit_id, cgroup_driver = %placement.driver, cgroup = %placement.cgroup.display(), "container would be refused by profile (report-only: it runs unchanged)");
            admitted(*h, profile, placement, checked, host.landlock_abi, audit)
        }
        Decision::Admitted(h) => {
            tracing::info!(target: "stockade::audit", audit = %event, audit_id = %audit_id, cgroup_driver = %placement.driver, cgroup = %placement.cgroup.display(), "container admitted by profile");
            admitted(*h, profile, placement, checked, host.landlock_abi, audit)
        }
    }
}

/// The admitted decision as what `create` applies, after logging its notes.
fn admitted(
    h: crate::profile::Hardened,
    profile: &Profile,
    placement: Placement,
    bind_sources: CheckedSources,
    landlock_abi: Option<u8>,
    audit: crate::audit_log::AuditConfig,
) -> Result<Admitted, AdmissionError> {
    // The filter got stricter than the spec asked: say so outside the audit
    // record too, for whoever wonders why a syscall is now denied.
    for i in h.injected.iter().filter(|i| {
        i.rule == crate::profile::rules::seccomp::UNKNOWN_SYSCALL_RULE
            || i.rule == crate::profile::rules::cgroups::NOT_ENFORCED_RULE
            || i.rule == crate::profile::rules::process::OOM_SCORE_ADJ_RULE
            || i.rule == crate::profile::rules::seccomp::USER_NOTIFICATION_RULE
    }) {
        tracing::warn!(path = %i.path, "{}: {}", i.rule, i.change);
    }
    for v in &h.would_refuse {
        tracing::warn!(rule = v.rule, path = %v.path, "profile {} (report only): would refuse: {} (allowed: {})", h.profile, v.actual, v.allowed);
    }
    for w in &h.warnings {
        tracing::warn!(rule = w.rule, path = %w.path, "profile {} ({:?} mode): {} — {}", h.profile, w.mode, w.actual, w.reason);
    }
    let label = format!("{} v{}", h.profile, h.version);
    Ok(Admitted {
        spec: h.spec,
        bind_sources,
        landlock: h.landlock,
        landlock_abi,
        userns: h.userns,
        profile: label,
        policy: profile.clone(),
        placement,
        audit,
    })
}

/// Judge a later verb on a running container (see `profile::gate`) and log its one
/// audit event; `Ok` carries the warnings already logged.
pub fn judge(
    config: Option<&Path>,
    verb: Verb,
    profile: &Profile,
    container_id: &str,
    decide: impl FnOnce(&HostFacts) -> Result<Verdict, crate::profile::plan::EvaluateError>,
) -> Result<(), AdmissionError> {
    let _s = tracing::debug_span!("policy gate", verb = verb.name()).entered();
    // exec and update are judged only on the process and resources they change,
    // never on mounts: the tmpfs idmap fact is not needed.
    let host = HostFacts::probe_with(TmpfsIdmapProbe::Skip).map_err(AdmissionError::Host)?;
    let verdict = decide(&host).map_err(|source| AdmissionError::Evaluate {
        profile: profile.name.clone(),
        source,
    })?;
    let record = verdict.audit_record(verb, profile, container_id);
    let recorded = crate::audit_log::record(config, &record);
    let audit_id = &recorded.id;
    let event = serde_json::to_string(&record).unwrap_or_default();
    match verdict {
        Verdict::Refused(mut r) => {
            tracing::warn!(target: "stockade::audit", audit = %event, audit_id = %audit_id, "{} refused by profile", verb.name());
            r.refusal.audit = Some(recorded.to_string());
            Err(AdmissionError::GateRefused(Box::new(r)))
        }
        Verdict::Allowed { warnings } => {
            tracing::info!(target: "stockade::audit", audit = %event, audit_id = %audit_id, "{} admitted by profile", verb.name());
            for w in &warnings {
                tracing::warn!(rule = w.rule, path = %w.path, "profile {} ({:?} mode): {} — {}", profile.name, w.mode, w.actual, w.reason);
            }
            Ok(())
        }
    }
}

/// The pod sandbox the spec's CRI annotation names, when that is another container,
/// as found in `state_root`. Read-only: a probe of host facts for the gate.
fn sandbox_facts(state_root: &Path, spec: &Spec, id: &str) -> Option<(String, SandboxFacts)> {
    use crate::profile::rules::user_namespace::SANDBOX_ID_ANNOTATION;
    use libcontainer::container::{Container, ContainerStatus};
    let name = spec.annotations().as_ref()?.get(SANDBOX_ID_ANNOTATION)?;
    if name == id {
        return None;
    }
    // Only a plain id can name a container of this state root.
    let plain = !name.is_empty() && !name.contains('/') && !name.starts_with('.');
    let dir = state_root.join(name);
    let facts = match plain && dir.join("state.json").is_file() {
        false => SandboxFacts::Missing,
        true => match Container::load(dir) {
            Err(_) => SandboxFacts::Missing,
            Ok(c) => {
                let own = c
                    .state
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(SANDBOX_ID_ANNOTATION));
                match (own == Some(name), c.status(), c.pid()) {
                    (false, _, _) => SandboxFacts::NotASandbox,
                    (true, ContainerStatus::Stopped, _) | (true, _, None) => {
                        SandboxFacts::NotRunning
                    }
                    (true, _, Some(pid)) => SandboxFacts::Running { pid: pid.as_raw() },
                }
            }
        },
    };
    Some((name.clone(), facts))
}

/// Whether a bind mount of `spec` has an absolute source on tmpfs: exactly the
/// mounts for which `rules::user_namespace::idmap_volumes` reads
/// `HostFacts::tmpfs_idmap` (a source that cannot be inspected it skips too).
fn has_tmpfs_bind_source(spec: &Spec, lookup: &dyn NsInodeLookup) -> bool {
    spec.mounts().iter().flatten().any(|m| {
        crate::bundle::is_bind_mount(m)
            && m.source()
                .as_ref()
                .is_some_and(|s| s.is_absolute() && lookup.on_tmpfs(s).unwrap_or(false))
    })
}

/// Check the spec's `linux.cgroupsPath` under the caller's cgroup driver on this host.
fn place(
    spec: &Spec,
    driver: CgroupDriver,
    container_id: &str,
) -> Result<Placement, PlacementError> {
    // The field first: a malformed path is named whatever the host offers.
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_deref());
    let placement = cgroup_placement::resolve(path, driver, container_id)?;
    cgroup_placement::check_host(driver, cgroup_placement::systemd_booted())?;
    Ok(placement)
}
