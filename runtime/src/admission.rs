//! Admission: which profile applies to a container, and what it decides.
//!
//! The only impure steps are reading the node config and profiles and probing the
//! host once; the decision itself is `profile::evaluate`, a pure function. Every
//! decision is logged as one structured audit event (`stockade.profile.decision`).

use std::path::Path;

use oci_spec::runtime::Spec;

use crate::landlock_plan::LandlockPlan;
use crate::profile::node_config::{self, ContainerContext, NodeConfigError};
use crate::profile::plan::EvaluateError;
use crate::profile::{evaluate, Decision, HostFacts, Refusal, StatNsLookup, UsernsRequest};

#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// Fail closed: without a valid profile no container runs.
    #[error("no valid hardening profile, refusing every container")]
    Profile(#[source] NodeConfigError),
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
}

/// What the profile admitted.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub spec: Spec,
    pub landlock: Option<LandlockPlan>,
    pub userns: Option<UsernsRequest>,
    /// `name vVERSION`, for the plan record.
    pub profile: String,
}

/// Where the profile comes from.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub config: Option<&'a Path>,
    pub handler: Option<&'a str>,
    pub state_root: &'a Path,
}

/// Select the container's profile and evaluate its spec. `Err(Refused)` carries the
/// violation list; it has already been logged as an audit event.
pub fn admit(src: Source<'_>, spec: &Spec, container_id: &str) -> Result<Admitted, AdmissionError> {
    let _s = tracing::debug_span!("admission").entered();
    let ctx = ContainerContext {
        handler: src.handler,
        state_root: src.state_root,
        annotations: spec.annotations().as_ref(),
    };
    let selected =
        node_config::profile_for_container(src.config, &ctx).map_err(AdmissionError::Profile)?;
    let host = HostFacts::probe().map_err(AdmissionError::Host)?;
    let profile = &selected.profile;
    let decision = evaluate(spec, profile, &host, &StatNsLookup).map_err(|source| {
        AdmissionError::Evaluate {
            profile: profile.name.clone(),
            source,
        }
    })?;
    let record = decision.audit_record(Some(container_id));
    let event = serde_json::to_string(&record).unwrap_or_default();
    match decision {
        Decision::Refused(r) => {
            tracing::warn!(target: "stockade::audit", audit = %event, "container refused by profile");
            Err(AdmissionError::Refused(Box::new(r)))
        }
        Decision::Admitted(h) => {
            tracing::info!(target: "stockade::audit", audit = %event, "container admitted by profile");
            for w in &h.warnings {
                tracing::warn!(rule = w.rule, path = %w.path, "profile {} ({:?} mode): {} — {}", h.profile, w.mode, w.actual, w.reason);
            }
            let label = format!("{} v{}", h.profile, h.version);
            Ok(Admitted {
                spec: h.spec,
                landlock: h.landlock,
                userns: h.userns,
                profile: label,
            })
        }
    }
}
