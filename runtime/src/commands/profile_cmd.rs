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
    #[error("cannot show the profile")]
    Show(#[source] profile::show::ShowError),
    #[error("container {id:?}: cannot read its plan")]
    Plan {
        id: String,
        #[source]
        source: crate::state_root::StateRootError,
    },
    #[error("container {id:?}: cannot compile its seccomp filter")]
    PlanSeccomp {
        id: String,
        #[source]
        source: crate::seccomp::SeccompError,
    },
    #[error("cannot read the Kubernetes manifests in {path}")]
    Manifest {
        path: PathBuf,
        #[source]
        source: profile::k8s::ManifestError,
    },
    #[error("cannot load the RuntimeDefault seccomp filter")]
    RuntimeDefault(#[source] profile::LoadError),
    #[error("cannot generate a spec for profile {0:?}")]
    SpecGen(String, #[source] Box<profile::spec_gen::SpecGenError>),
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

/// What a report-only profile (`mode = "report"`) decided: the spec runs unchanged,
/// and this says plainly what an enforcing profile would refuse and inject.
fn report_only_text(h: &profile::Hardened) -> String {
    let n = h.would_refuse.len();
    let mut s = if n > 0 {
        format!(
            "would refuse (report-only profile \"{}\" v{}: the container runs unchanged): {n} violation{}",
            h.profile,
            h.version,
            if n == 1 { "" } else { "s" }
        )
    } else {
        format!(
            "admitted unchanged (report-only profile \"{}\" v{}): would harden",
            h.profile, h.version
        )
    };
    for v in &h.would_refuse {
        s.push_str(&format!(
            "\n  - [{}] {}: {} (allowed: {}) — change {}: {}",
            v.rule, v.path, v.actual, v.allowed, v.k8s_field, v.reason
        ));
    }
    for i in &h.would_inject {
        s.push_str(&format!(
            "\n  ~ would inject [{}] {}: {}",
            i.rule, i.path, i.change
        ));
    }
    s
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
            Decision::Admitted(h) if !h.would_refuse.is_empty() || !h.would_inject.is_empty() => {
                report_only_text(h)
            }
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

/// Whether `path` names Kubernetes manifests (YAML) rather than a config.json.
pub fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// One container's judgement.
enum Verdict {
    Decided(Box<Decision>),
    Error(String),
}

/// `profile check` on Kubernetes manifests: every container judged as containerd's
/// CRI would hand it to the runtime. Exit 0 when all are admitted, 1 when one is
/// refused, 2 when one cannot be judged.
pub fn check_manifest(
    config: Option<&Path>,
    name: &str,
    path: &Path,
    json: bool,
    sarif: bool,
) -> Result<(String, u8), CommandError> {
    let profile = resolve(config, name)?;
    let text = std::fs::read_to_string(path)
        .map_err(CommandError::io(format!("cannot read {}", path.display())))?;
    let runtime_default =
        profile::node_config::builtin_seccomp_default().map_err(ProfileCmdError::RuntimeDefault)?;
    let (cases, skipped) =
        profile::k8s::containers(&text, Some(&runtime_default)).map_err(|source| {
            ProfileCmdError::Manifest {
                path: path.to_owned(),
                source,
            }
        })?;
    let host = HostFacts::probe().map_err(ProfileCmdError::Host)?;
    let ns = profile::k8s::ManifestNs(&host);
    let mut judged = Vec::new();
    for c in cases {
        let verdict = match &c.error {
            Some(e) => Verdict::Error(e.clone()),
            None => match serde_json::from_value::<oci_spec::runtime::Spec>(c.spec.clone()) {
                Err(e) => Verdict::Error(format!("derived spec does not parse: {e}")),
                Ok(spec) => match evaluate(&spec, &profile, &host, &ns) {
                    Ok(d) => Verdict::Decided(Box::new(d)),
                    Err(e) => Verdict::Error(crate::error_chain(&e)),
                },
            },
        };
        judged.push((c, verdict));
    }
    let code = if judged.iter().any(|(_, v)| matches!(v, Verdict::Error(_))) {
        2
    } else if judged
        .iter()
        .any(|(_, v)| matches!(v, Verdict::Decided(d) if matches!(**d, Decision::Refused(_))))
    {
        1
    } else {
        0
    };
    let file = path.display().to_string();
    let out = if sarif {
        manifest_sarif(&file, &judged)
    } else if json {
        let containers: Vec<serde_json::Value> = judged
            .iter()
            .map(|(c, v)| {
                let mut j = serde_json::to_value(c).unwrap_or_default();
                match v {
                    Verdict::Decided(d) => {
                        let rec = serde_json::to_value(d.audit_record(None)).unwrap_or_default();
                        for key in ["outcome", "violations", "warnings", "injected"] {
                            j[key] = rec[key].clone();
                        }
                    }
                    Verdict::Error(_) => j["outcome"] = "error".into(),
                }
                j
            })
            .collect();
        serde_json::to_string_pretty(&serde_json::json!({
            "profile": profile.name,
            "version": profile.version,
            "file": file,
            "containers": containers,
            "skipped": skipped,
        }))
        .unwrap_or_default()
    } else {
        let mut out = String::new();
        for (c, v) in &judged {
            let at = c
                .line
                .map(|l| format!("{file}:{l}"))
                .unwrap_or(file.clone());
            let head = format!("{at}: {} {} {:?}", c.workload, c.kind, c.container);
            let line = match v {
                Verdict::Error(e) => format!("{head}: error: {e}"),
                Verdict::Decided(d) => match &**d {
                    Decision::Refused(r) => {
                        let text = r.to_string();
                        let text = text.strip_prefix("stockade: container ").unwrap_or(&text);
                        format!("{head}: {text}")
                    }
                    Decision::Admitted(h)
                        if !h.would_refuse.is_empty() || !h.would_inject.is_empty() =>
                    {
                        format!("{head}: {}", report_only_text(h))
                    }
                    Decision::Admitted(h) => {
                        let mut s = format!(
                            "{head}: admitted by profile \"{}\" v{}",
                            h.profile, h.version
                        );
                        for w in &h.warnings {
                            s.push_str(&format!(
                                "\n  ! [{}] {}: {} (allowed: {})",
                                w.rule, w.path, w.actual, w.allowed
                            ));
                        }
                        s
                    }
                },
            };
            out.push_str(&line);
            out.push('\n');
        }
        for s in &skipped {
            out.push_str(&format!("{file}: {s}: skipped (no pod template)\n"));
        }
        if judged.is_empty() {
            out.push_str(&format!("{file}: no workload with containers\n"));
        }
        out.trim_end().to_owned()
    };
    Ok((out, code))
}

/// SARIF 2.1.0 for code scanning: one result per violation (or per container that
/// cannot be judged), at the container's line in the manifest.
fn manifest_sarif(file: &str, judged: &[(profile::k8s::ContainerCase, Verdict)]) -> String {
    use serde_json::json;
    let mut rules = std::collections::BTreeMap::new();
    let mut results = Vec::new();
    let location = |c: &profile::k8s::ContainerCase| {
        let mut loc = json!({"physicalLocation": {"artifactLocation": {"uri": file}}});
        if let Some(l) = c.line {
            loc["physicalLocation"]["region"] = json!({"startLine": l});
        }
        loc
    };
    for (c, v) in judged {
        let who = format!("{} {} {:?}", c.workload, c.kind, c.container);
        match v {
            Verdict::Error(e) => {
                rules.insert("stockade.error".to_owned(), "cannot be judged".to_owned());
                results.push(json!({
                    "ruleId": "stockade.error",
                    "level": "error",
                    "message": {"text": format!("{who}: {e}")},
                    "locations": [location(c)],
                }));
            }
            Verdict::Decided(d) => {
                let rec = d.audit_record(None);
                let all = rec
                    .violations
                    .iter()
                    .map(|v| (v, "error"))
                    .chain(rec.warnings.iter().map(|v| (v, "warning")));
                for (v, level) in all {
                    rules.insert(v.rule.to_owned(), v.reason.clone());
                    results.push(json!({
                        "ruleId": v.rule,
                        "level": level,
                        "message": {"text": format!(
                            "{who}: {}: {} (allowed: {}) — change {}: {}",
                            v.path, v.actual, v.allowed, v.k8s_field, v.reason
                        )},
                        "locations": [location(c)],
                    }));
                }
            }
        }
    }
    let rules: Vec<serde_json::Value> = rules
        .into_iter()
        .map(|(id, text)| json!({"id": id, "shortDescription": {"text": text}}))
        .collect();
    serde_json::to_string_pretty(&json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {"name": "stockade", "version": env!("CARGO_PKG_VERSION"), "rules": rules}},
            "results": results,
        }],
    }))
    .unwrap_or_default()
}

/// `profile lint`: every problem at once, one per line as `FILE:LINE:COLUMN: error: ...`
/// (or `FILE: warning: ...` for the profile as a whole), after a summary line.
/// Errors fail the command (exit 1); a file that cannot be read is exit 2.
pub fn lint_cmd(config: Option<&Path>, name: &str) -> Result<(String, bool), CommandError> {
    let source = locate(config, name)?;
    let (label, text, dir) = match &source {
        ProfileText::File(path) => (
            path.display().to_string(),
            crate::bounded_read::read_to_string(path, crate::bounded_read::CONFIG_CAP)
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
    // The node's directories, for the bind source prefixes' variables (the standard
    // ones without a node config).
    let config_path = config.unwrap_or(Path::new(profile::node_config::DEFAULT_CONFIG_PATH));
    match profile::node_config::NodeConfig::read(config_path) {
        Ok(Some(cfg)) => parsed.node_paths = cfg.paths,
        Ok(None) => {}
        Err(e) => errors.push(format!("{label}: error: {}", crate::error_chain(&e))),
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

/// `profile diff A B`: the differences, and whether there are none (exit 0).
pub fn diff(
    config: Option<&Path>,
    a: &str,
    b: &str,
    json: bool,
) -> Result<(String, bool), CommandError> {
    let (pa, pb) = (resolve(config, a)?, resolve(config, b)?);
    let d = profile::diff::diff(&pa, &pb);
    let same = d.is_empty();
    let out = if json {
        serde_json::to_string_pretty(&serde_json::json!({
            "a": format!("{} v{}", pa.name, pa.version),
            "b": format!("{} v{}", pb.name, pb.version),
            "differences": d,
        }))
        .unwrap_or_default()
    } else {
        let mut out = format!(
            "A = profile \"{}\" v{} ({a}), B = profile \"{}\" v{} ({b}): {}",
            pa.name,
            pa.version,
            pb.name,
            pb.version,
            if same {
                "they allow the same".to_owned()
            } else {
                format!(
                    "{} rule{} differ{}",
                    d.len(),
                    if d.len() == 1 { "" } else { "s" },
                    if d.len() == 1 { "s" } else { "" }
                )
            }
        );
        for x in &d {
            out.push_str(&format!("\n{x}"));
        }
        out
    };
    Ok((out, same))
}

/// `profile show`: a profile's effective seccomp filter, or a container's plan.
pub fn show(
    config: Option<&Path>,
    root: &crate::state_root::StateRoot,
    name: Option<&str>,
    container: Option<&str>,
    json: bool,
) -> Result<String, CommandError> {
    if let Some(id) = container {
        return show_container(root, id, json);
    }
    let p = resolve(config, name.unwrap_or_default())?;
    let sc = profile::show::seccomp(&p).map_err(ProfileCmdError::Show)?;
    Ok(if json {
        serde_json::to_string_pretty(&serde_json::json!({
            "profile": p.name,
            "version": p.version,
            "seccomp": sc,
        }))
        .unwrap_or_default()
    } else {
        match sc {
            Some(sc) => format!("profile \"{}\" v{}\n{sc}", p.name, p.version),
            None => format!(
                "profile \"{}\" v{}\nno [seccomp] section: containers get no default filter",
                p.name, p.version
            ),
        }
    })
}

/// A container's plan: the hardened spec `create` wrote to
/// `<root>/.stockade/plans/<id>/config.json` (what libcontainer runs and `exec`
/// reads back) and the record beside it (`plan.json`: profile, Landlock domains,
/// user namespace range).
fn show_container(
    root: &crate::state_root::StateRoot,
    id: &str,
    json: bool,
) -> Result<String, CommandError> {
    let plan_err = |source| ProfileCmdError::Plan {
        id: id.to_owned(),
        source,
    };
    let record = root.read_plan(id).map_err(plan_err)?;
    let dir = root.plan_dir(id);
    let spec_path = dir.join("config.json");
    let bytes = std::fs::read(&spec_path).map_err(CommandError::io(format!(
        "cannot read {}",
        spec_path.display()
    )))?;
    let spec: oci_spec::runtime::Spec =
        crate::bundle::parse_json(&bytes).map_err(|(field, source)| {
            crate::bundle::BundleError::ParseConfig {
                path: spec_path.clone(),
                field,
                source,
            }
        })?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    let bpf = match &seccomp {
        Some(s) => Some(
            crate::seccomp::compile(s)
                .map_err(|source| ProfileCmdError::PlanSeccomp {
                    id: id.to_owned(),
                    source,
                })?
                .len(),
        ),
        None => None,
    };
    let spec_json = crate::default_spec::to_stable_json(&spec).unwrap_or_default();
    if json {
        return Ok(serde_json::to_string_pretty(&serde_json::json!({
            "id": id,
            "plan_dir": dir,
            "profile": record.profile,
            "seccomp_bpf_instructions": bpf,
            "landlock": record.landlock,
            "userns": record.userns,
            "spec": spec_json,
        }))
        .unwrap_or_default());
    }
    let caps = |set: &str| -> String {
        spec_json
            .pointer(&format!("/process/capabilities/{set}"))
            .and_then(serde_json::Value::as_array)
            .map(|v| {
                let names: Vec<&str> = v.iter().filter_map(serde_json::Value::as_str).collect();
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            })
            .unwrap_or_else(|| "none".to_owned())
    };
    let mut out = format!(
        "container {id:?}: plan in {}\n  profile: {}\n  seccomp: {}\n  capabilities (bounding): {}\n  no_new_privileges: {}\n  user: uid {} gid {}\n  read-only root: {}",
        dir.display(),
        record.profile.as_deref().unwrap_or("none"),
        match (&seccomp, bpf) {
            (Some(s), Some(n)) => format!(
                "{} rules, default {:?}, BPF program of {n} instructions",
                s.syscalls().as_ref().map_or(0, Vec::len),
                s.default_action()
            ),
            _ => "no filter".to_owned(),
        },
        caps("bounding"),
        spec_json
            .pointer("/process/noNewPrivileges")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
        spec_json
            .pointer("/process/user/uid")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        spec_json
            .pointer("/process/user/gid")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        spec_json
            .pointer("/root/readonly")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
    );
    for (i, l) in record.landlock.iter().enumerate() {
        out.push_str(&format!(
            "\n  landlock domain {}: ABI {}, {} path rule{}{}{}",
            i + 1,
            l.min_abi,
            l.fs_rules.len(),
            if l.fs_rules.len() == 1 { "" } else { "s" },
            match &l.tcp_bind {
                Some(p) => format!(", TCP bind {p:?}"),
                None => String::new(),
            },
            match &l.tcp_connect {
                Some(p) => format!(", TCP connect {p:?}"),
                None => String::new(),
            }
        ));
        for r in &l.fs_rules {
            let access: Vec<String> = r
                .access
                .iter()
                .map(|a| {
                    serde_json::to_value(a)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .collect();
            out.push_str(&format!(
                "\n    {}: {}",
                r.path.display(),
                access.join(", ")
            ));
        }
    }
    if record.landlock.is_empty() {
        out.push_str("\n  landlock: none");
    }
    Ok(out)
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
            .map_err(|e| ProfileCmdError::SpecGen(name.to_string(), Box::new(e)))?;
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
    let json = crate::bounded_read::read_to_string(file, crate::bounded_read::SPEC_CAP)
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
