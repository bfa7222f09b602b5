//! `stockade profile check|lint|explain` and `stockade spec --profile`: the tools a
//! security team uses on profiles, built on the same code `create` runs.

use std::path::{Path, PathBuf};

use super::CommandError;
use crate::profile::{self, evaluate, lint, Decision, HostFacts, Profile, StatNsLookup};

#[derive(Debug, thiserror::Error)]
pub enum ProfileCmdError {
    #[error(transparent)]
    Load(crate::admission::ResolveError),
    #[error("cannot load the compiled-in profile")]
    Builtin(#[source] profile::node_config::NodeConfigError),
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
/// Without a node config, a shipped profile's name means its compiled-in copy, so the
/// tools work on a machine that runs no containers yet (`profile explain restricted`).
pub fn resolve(config: Option<&Path>, name: &str) -> Result<Profile, ProfileCmdError> {
    match crate::admission::resolve_named(config, name) {
        Err(e @ crate::admission::ResolveError::NoProfilesDir { .. }) => {
            match profile::node_config::builtin(name) {
                Some(builtin) => builtin.map_err(ProfileCmdError::Builtin),
                None => Err(ProfileCmdError::Load(e)),
            }
        }
        other => other.map_err(ProfileCmdError::Load),
    }
}

/// `profile check`: the decision, and whether it admits (exit 0) or refuses (exit 1).
/// Errors (unreadable spec, missing profile) are exit 2, in main.rs.
pub fn check(
    config: Option<&Path>,
    name: &str,
    spec_path: &Path,
    json: bool,
) -> Result<(String, bool), CommandError> {
    let profile = resolve(config, name)?;
    let bytes = std::fs::read(spec_path).map_err(CommandError::io(format!(
        "cannot read {}",
        spec_path.display()
    )))?;
    let spec: oci_spec::runtime::Spec = serde_json::from_slice(&bytes).map_err(|source| {
        crate::bundle::BundleError::ParseConfig {
            path: spec_path.to_path_buf(),
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

/// Where a profile named on the command line is: a file, or a compiled-in text.
enum ProfileText {
    File(PathBuf),
    Builtin(&'static str),
}

/// The file `name` resolves to, the way [`resolve`] loads it.
fn locate(config: Option<&Path>, name: &str) -> Result<ProfileText, ProfileCmdError> {
    use crate::admission::ResolveError;
    if name.contains('/') || name.ends_with(".toml") {
        return Ok(ProfileText::File(name.into()));
    }
    let cfg_path = config.unwrap_or(Path::new(profile::node_config::DEFAULT_CONFIG_PATH));
    match profile::node_config::NodeConfig::read(cfg_path) {
        Ok(Some(cfg)) => Ok(ProfileText::File(
            cfg.profiles_dir.join(format!("{name}.toml")),
        )),
        Ok(None) => profile::node_config::builtin_text(name)
            .map(ProfileText::Builtin)
            .ok_or_else(|| {
                ProfileCmdError::Load(ResolveError::NoProfilesDir {
                    name: name.to_owned(),
                    config: cfg_path.display().to_string(),
                })
            }),
        Err(e) => Err(ProfileCmdError::Load(ResolveError::Config(e))),
    }
}

/// `profile lint`: every problem at once, one per line as `FILE:LINE:COLUMN: error: ...`
/// (or `FILE: warning: ...` for the profile as a whole), after a summary line.
/// Errors fail the command (exit 1); a file that cannot be read is exit 2.
pub fn lint_cmd(config: Option<&Path>, name: &str) -> Result<(String, bool), CommandError> {
    let source = locate(config, name)?;
    let (label, text, dir) = match &source {
        ProfileText::File(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path)
                .map_err(CommandError::io(format!("cannot read {}", path.display())))?,
            path.parent().unwrap_or(Path::new(".")).to_owned(),
        ),
        ProfileText::Builtin(text) => (format!("<builtin>/{name}.toml"), text.to_string(), {
            PathBuf::new()
        }),
    };
    let loc = profile::locate::Locator::new(&text);
    let at = |pos: Option<profile::locate::Position>| match pos {
        Some(p) => format!("{label}:{}:{}", p.line, p.column),
        None => label.clone(),
    };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut parsed: Profile = match toml::from_str(&text) {
        Ok(p) => p,
        Err(e) => {
            // Syntax and schema errors stop the parser: there is only one to show.
            let pos = e.span().map(|r| loc.position(r.start));
            let msg = format!("{}: error: {}", at(pos), e.message().trim());
            return Ok((format!("{label}: 1 error\n{msg}"), false));
        }
    };
    for inv in profile::load::problems(&parsed) {
        let pos = loc.find(&inv.key, inv.value.as_deref());
        errors.push(format!("{}: error: {}: {}", at(pos), inv.key, inv.problem));
    }
    if let Some(sc) = &parsed.seccomp {
        let filter = match &source {
            ProfileText::File(_) => {
                profile::load::load_filter(&dir, sc).map_err(|e| crate::error_chain(&e))
            }
            ProfileText::Builtin(_) => profile::node_config::builtin(name)
                .and_then(Result::ok)
                .and_then(|p| p.seccomp_filter)
                .ok_or_else(|| "the compiled-in seccomp filter does not load".to_owned()),
        };
        match filter {
            Ok(f) => parsed.seccomp_filter = Some(f),
            Err(e) => {
                let pos = loc.find("seccomp.default_filter", None);
                errors.push(format!("{}: error: {e}", at(pos)));
            }
        }
    }
    let host = HostFacts::probe().map_err(ProfileCmdError::Host)?;
    for f in lint::lint(&parsed, &host) {
        // Loading already reported unknown names in the profile itself, with a suggestion.
        if matches!(&f, lint::LintFinding::UnknownSyscall { list, .. } if *list == "seccomp.deny") {
            continue;
        }
        // Without its filter the profile's other problems are already listed.
        if f == lint::LintFinding::SeccompFilterNotLoaded && !errors.is_empty() {
            continue;
        }
        let pos = f
            .location()
            .and_then(|(key, value)| loc.find(key, value.as_deref()));
        match f.severity() {
            lint::Severity::Error => errors.push(format!("{}: error: {f}", at(pos))),
            lint::Severity::Warning => warnings.push(format!("{}: warning: {f}", at(pos))),
        }
    }
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut out = format!(
        "profile \"{}\" v{} ({label}): {}, {}",
        parsed.name,
        parsed.version,
        plural(errors.len(), "error"),
        plural(warnings.len(), "warning")
    );
    let clean = errors.is_empty();
    for line in errors.into_iter().chain(warnings) {
        out.push('\n');
        out.push_str(&line);
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

/// What `profile import-seccomp` produced.
pub struct ImportOutcome {
    /// The seccomp data TOML to review and commit.
    pub toml: String,
    /// What was not carried over, one line each.
    pub dropped: Vec<String>,
    /// Names that are no syscall on any architecture: the import is incomplete.
    pub unknown: Vec<String>,
}

/// `profile import-seccomp`: the TOML to review and commit, what was dropped, and the
/// names nobody knows (which fail the command).
pub fn import_seccomp(
    file: &Path,
    name: &str,
    exclude: &[String],
) -> Result<ImportOutcome, CommandError> {
    let json = std::fs::read_to_string(file)
        .map_err(CommandError::io(format!("cannot read {}", file.display())))?;
    let source = file.display().to_string();
    let imported = profile::seccomp_import::import(&json, name, &source, exclude)
        .map_err(|e| ProfileCmdError::Import(source.clone(), e))?;
    let toml =
        profile::seccomp_import::to_toml(&imported.filter).map_err(ProfileCmdError::ImportToml)?;
    Ok(ImportOutcome {
        toml,
        dropped: imported.dropped.iter().map(ToString::to_string).collect(),
        unknown: imported.unknown,
    })
}
