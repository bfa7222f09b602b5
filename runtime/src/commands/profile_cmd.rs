//! `stockade profile check|lint|explain` and `stockade spec --profile`: the tools a
//! security team uses on profiles, built on the same code `create` runs.

use std::path::Path;

use super::CommandError;
use crate::profile::{self, evaluate, lint, Decision, HostFacts, Profile, StatNsLookup};

#[derive(Debug, thiserror::Error)]
pub enum ProfileCmdError {
    #[error(transparent)]
    Load(crate::admission::ResolveError),
    #[error("cannot probe host facts")]
    Host(#[source] profile::host::HostProbeError),
    #[error("cannot evaluate the spec")]
    Evaluate(#[source] profile::plan::EvaluateError),
    #[error("cannot import {0}")]
    Import(String, #[source] profile::seccomp_import::ImportError),
    #[error("cannot write the imported filter as TOML")]
    ImportToml(#[source] toml::ser::Error),
    #[error("cannot generate a spec for profile {0:?}")]
    SpecGen(String, #[source] profile::spec_gen::SpecGenError),
}

impl From<ProfileCmdError> for CommandError {
    fn from(e: ProfileCmdError) -> Self {
        CommandError::Profile(Box::new(e))
    }
}

/// A profile named on the command line (see [`crate::admission::resolve_named`]).
pub fn resolve(config: Option<&Path>, name: &str) -> Result<Profile, ProfileCmdError> {
    crate::admission::resolve_named(config, name).map_err(ProfileCmdError::Load)
}

/// `profile check`: exit status 0 when admitted, 1 when refused.
pub fn check(
    config: Option<&Path>,
    name: &str,
    spec_path: &Path,
    json: bool,
) -> Result<(String, bool), CommandError> {
    let profile = resolve(config, name)?;
    let bytes = crate::bounded_read::read(spec_path, crate::bounded_read::SPEC_CAP).map_err(
        CommandError::io(format!("cannot read {}", spec_path.display())),
    )?;
    let spec: oci_spec::runtime::Spec =
        crate::bundle::parse_json(&bytes).map_err(|(field, source)| {
            crate::bundle::BundleError::ParseConfig {
                path: spec_path.to_path_buf(),
                field,
                source,
            }
        })?;
    let host = HostFacts::probe().map_err(ProfileCmdError::Host)?;
    let decision =
        evaluate(&spec, &profile, &host, &StatNsLookup).map_err(ProfileCmdError::Evaluate)?;
    let admitted = matches!(decision, Decision::Admitted(_));
    let out = if json {
        serde_json::to_string_pretty(&decision.audit_record(None)).unwrap_or_default()
    } else {
        match &decision {
            Decision::Refused(r) => r.to_string(),
            Decision::Admitted(h) => {
                let mut s = format!("admitted by profile \"{}\" v{}", h.profile, h.version);
                for i in &h.injected {
                    s.push_str(&format!("\n  + [{}] {}: {}", i.rule, i.path, i.change));
                }
                if h.userns.is_some() {
                    s.push_str("\n  + [user_namespace.required] linux.namespaces: a user namespace with a host range allocated at create");
                }
                for w in &h.warnings {
                    s.push_str(&format!(
                        "\n  ! [{}] {}: {} (allowed: {}) — {:?} mode",
                        w.rule, w.path, w.actual, w.allowed, w.mode
                    ));
                }
                s
            }
        }
    };
    Ok((out, admitted))
}

/// `profile lint`: findings one per line; `Err`-severity findings fail the command.
pub fn lint_cmd(config: Option<&Path>, name: &str) -> Result<(String, bool), CommandError> {
    let profile = resolve(config, name)?;
    let host = HostFacts::probe().map_err(ProfileCmdError::Host)?;
    let findings = lint::lint(&profile, &host);
    let clean = !findings
        .iter()
        .any(|f| f.severity() == lint::Severity::Error);
    let mut out = format!(
        "profile \"{}\" v{}: {} finding{}",
        profile.name,
        profile.version,
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    );
    for f in findings {
        out.push_str(&format!("\n  {:?}: {f}", f.severity()));
    }
    Ok((out, clean))
}

pub fn explain(config: Option<&Path>, name: &str) -> Result<String, CommandError> {
    Ok(profile::explain::explain(&resolve(config, name)?))
}

/// `spec --profile P`: a config.json that P admits as written.
pub fn compliant_spec(
    config: Option<&Path>,
    name: &str,
) -> Result<oci_spec::runtime::Spec, CommandError> {
    let profile = resolve(config, name)?;
    let host = HostFacts::probe().map_err(ProfileCmdError::Host)?;
    let hardened =
        profile::spec_gen::compliant_spec(&profile, &host, &StatNsLookup, &["sh".to_string()])
            .map_err(|e| ProfileCmdError::SpecGen(name.to_string(), e))?;
    Ok(hardened.spec)
}

/// `profile import-seccomp`: the TOML to review and commit, and what was dropped.
pub fn import_seccomp(file: &Path, name: &str) -> Result<(String, Vec<String>), CommandError> {
    let json = crate::bounded_read::read_to_string(file, crate::bounded_read::SPEC_CAP)
        .map_err(CommandError::io(format!("cannot read {}", file.display())))?;
    let source = file.display().to_string();
    let imported = profile::seccomp_import::import(&json, name, &source)
        .map_err(|e| ProfileCmdError::Import(source.clone(), e))?;
    let toml =
        profile::seccomp_import::to_toml(&imported.filter).map_err(ProfileCmdError::ImportToml)?;
    let dropped = imported.dropped.iter().map(|d| format!("{d:?}")).collect();
    Ok((toml, dropped))
}
