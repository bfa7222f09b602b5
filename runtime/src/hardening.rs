//! From a validated bundle to everything the container's init needs, as plain data:
//! the hardened spec libcontainer runs, the compiled seccomp program, and the Landlock
//! domains resolved against the host's ABI into exact access masks. Runs before any
//! side effect, so a refusal leaves nothing behind.

use std::sync::Arc;

use oci_spec::runtime::Spec;

use crate::bundle::LoadedBundle;
use crate::landlock::plan::{self as landlock_plan, LandlockPlan, ResolveError, ResolvedDomain};
use crate::seccomp::{self, CompiledFilter, SeccompError};

#[derive(Debug, thiserror::Error)]
pub enum HardeningError {
    #[error("linux.seccomp: cannot be enforced exactly")]
    Seccomp(#[source] SeccompError),
    #[error("annotations[{key:?}]: not a valid Landlock rule set")]
    LandlockAnnotation {
        key: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("root.path: cannot be set to the resolved rootfs")]
    RootPath,
    #[error("landlock: the plan cannot be enforced on this host")]
    Landlock(#[source] ResolveError),
}

/// Everything decided before the container exists.
#[derive(Clone)]
pub struct Plan {
    /// The spec libcontainer runs: root.path absolute, profile defaults injected.
    pub spec: Spec,
    pub seccomp: Option<Arc<CompiledFilter>>,
    /// The Landlock requests (profile first, then the owner's), recorded in the plan.
    pub landlock: Vec<LandlockPlan>,
    /// The same, resolved for the host's ABI: the exact masks the init enforces.
    pub landlock_domains: Vec<ResolvedDomain>,
}

/// Compile what the spec asks for. Profiles (see `profile`) run before this and hand
/// in an already-hardened spec plus the profile's own Landlock domain; `landlock_abi`
/// is the host's, as admission probed it.
pub fn plan(
    bundle: &LoadedBundle,
    spec: Spec,
    profile_landlock: Option<LandlockPlan>,
    landlock_abi: Option<u8>,
) -> Result<Plan, HardeningError> {
    let mut spec = spec;
    let mut root = spec.root().clone().ok_or(HardeningError::RootPath)?;
    root.set_path(bundle.rootfs.clone());
    spec.set_root(Some(root));
    let seccomp = compile_seccomp(&spec)?;
    let mut landlock: Vec<LandlockPlan> = profile_landlock.into_iter().collect();
    if let Some(owner) = owner_landlock(&spec)? {
        landlock.push(owner);
    }
    let landlock_domains = resolve_landlock(&landlock, landlock_abi)?;
    Ok(Plan {
        spec,
        seccomp,
        landlock,
        landlock_domains,
    })
}

/// Resolve each Landlock request for a host of Landlock ABI `abi` (`None`: no
/// Landlock). Used by `create` and again by `exec`, from the recorded requests.
pub fn resolve_landlock(
    plans: &[LandlockPlan],
    abi: Option<u8>,
) -> Result<Vec<ResolvedDomain>, HardeningError> {
    plans
        .iter()
        .map(|p| landlock_plan::resolve(p, abi.unwrap_or(0)))
        .collect::<Result<_, _>>()
        .map_err(HardeningError::Landlock)
}

/// Compile `linux.seccomp` if present. Used by `create` and again by `exec`, which
/// reads the hardened spec back from the state root.
pub fn compile_seccomp(spec: &Spec) -> Result<Option<Arc<CompiledFilter>>, HardeningError> {
    match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => {
            let filter = seccomp::compile(s).map_err(HardeningError::Seccomp)?;
            if !filter.skipped().is_empty() {
                // Names of other architectures' syscalls: not invocable here, so
                // skipping them changes nothing; recorded for whoever debugs a profile.
                tracing::debug!(skipped = ?filter.skipped(), "seccomp names without a native syscall");
            }
            if !filter.dropped_unknown().is_empty() {
                // Admission strips these from the spec first (and reports them), so
                // only a spec that bypassed it gets here.
                tracing::warn!(dropped = ?filter.dropped_unknown(), "seccomp names unknown to the syscall table dropped from rules no more restrictive than the default");
            }
            Ok(Some(Arc::new(filter)))
        }
        None => Ok(None),
    }
}

fn owner_landlock(spec: &Spec) -> Result<Option<LandlockPlan>, HardeningError> {
    let Some(value) = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(landlock_plan::ANNOTATION))
    else {
        return Ok(None);
    };
    landlock_plan::from_annotation(value)
        .map(Some)
        .map_err(|source| HardeningError::LandlockAnnotation {
            key: landlock_plan::ANNOTATION,
            source,
        })
}
