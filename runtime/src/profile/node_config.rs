//! Node configuration (`/etc/stockade/config.toml`): which profile applies to a container.
//!
//! Precedence: runtime handler mapping, then state-root mapping, then `default_profile`.
//! The `org.stockade.profile` annotation may then switch to another profile, but only one
//! named in `annotation_allowed` and only one at least as strict (by `strictness` rank):
//! an annotation can never weaken. Anything that cannot be read, parsed or loaded is an
//! error, and the runtime refuses the container (fail closed).
//!
//! With no config file at the default path, the node default profile compiled into the
//! binary applies (the shipped `profiles/default.toml`): that is the hardening default,
//! not a permissive fallback. A config path given explicitly must exist.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::load::{self, LoadError};
use super::node_paths::{NodePaths, PathTemplateError};
use super::schema::{Profile, SCHEMA_VERSION};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/stockade/config.toml";
/// Annotation with which a workload asks for a (stricter) profile.
pub const PROFILE_ANNOTATION: &str = "org.stockade.profile";

const BUILTIN_DEFAULT: &str = include_str!("../../../profiles/default.toml");
const BUILTIN_SECCOMP: &str = include_str!("../../../profiles/seccomp/default.toml");
/// The shipped profiles, compiled in so the tools (`profile explain restricted`, `spec
/// --profile baseline`) work on a machine without a node config. `create` only ever
/// falls back to `default` (see [`builtin_default`]).
const BUILTIN_PROFILES: [(&str, &str); 4] = [
    ("default", BUILTIN_DEFAULT),
    (
        "restricted",
        include_str!("../../../profiles/restricted.toml"),
    ),
    ("baseline", include_str!("../../../profiles/baseline.toml")),
    (
        "unconfined",
        include_str!("../../../profiles/unconfined.toml"),
    ),
];
/// The seccomp data the shipped profiles name, by their `default_filter` path.
const BUILTIN_FILTERS: [(&str, &str); 1] = [("seccomp/default.toml", BUILTIN_SECCOMP)];

#[derive(Debug, thiserror::Error)]
pub enum NodeConfigError {
    #[error("cannot read node config {path}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse node config {path}")]
    ParseConfig {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error(
        "node config {path}: unsupported schema {found} (this runtime reads {SCHEMA_VERSION})"
    )]
    UnsupportedSchema { path: PathBuf, found: u32 },
    #[error("node config {path}: paths.{key}: {problem}")]
    InvalidPath {
        path: PathBuf,
        key: &'static str,
        problem: PathTemplateError,
    },
    #[error("profile {name:?}: {key} with this node config's paths: {problem}")]
    ResolvePath {
        name: String,
        key: String,
        problem: PathTemplateError,
    },
    #[error("invalid profile name {name:?} from {origin}: use letters, digits, '-' and '_'")]
    InvalidProfileName { name: String, origin: &'static str },
    #[error("cannot load profile {name:?}")]
    LoadProfile {
        name: String,
        #[source]
        source: Box<LoadError>,
    },
    #[error("annotation {PROFILE_ANNOTATION} asks for profile {requested:?}, which this node does not allow (allowed: {allowed})")]
    AnnotationNotAllowed { requested: String, allowed: String },
    #[error("annotation {PROFILE_ANNOTATION} asks for profile {requested:?} (strictness {requested_strictness}), weaker than {base:?} (strictness {base_strictness})")]
    AnnotationWeakens {
        requested: String,
        requested_strictness: u32,
        base: String,
        base_strictness: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub schema: u32,
    pub profiles_dir: PathBuf,
    pub default_profile: String,
    /// Profiles the annotation may select.
    #[serde(default)]
    pub annotation_allowed: Vec<String>,
    #[serde(default)]
    pub handler: Vec<HandlerProfile>,
    #[serde(default)]
    pub state_root: Vec<StateRootProfile>,
    /// This node's containerd, kubelet and volume directories, which profiles name
    /// as `${containerd_root}` etc. (default: the standard paths).
    #[serde(default)]
    pub paths: NodePaths,
    /// Where decisions are recorded beyond the container's own log (`audit_log`).
    #[serde(default)]
    pub audit: AuditConfig,
}

pub const DEFAULT_AUDIT_LOG: &str = "/var/log/stockade/audit.jsonl";

/// `[audit]`: the node-wide audit log and metrics file (written by `audit_log`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The JSON-lines audit log; an empty string turns it off.
    #[serde(default = "default_audit_log")]
    pub log: PathBuf,
    /// Rotate when the log would grow past this many bytes.
    #[serde(default = "default_audit_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept (`audit.jsonl.1` .. `.N`).
    #[serde(default = "default_audit_keep")]
    pub keep: u32,
    /// Prometheus text file (node_exporter textfile collector); unset: no metrics.
    #[serde(default)]
    pub metrics: Option<PathBuf>,
}

fn default_audit_log() -> PathBuf {
    DEFAULT_AUDIT_LOG.into()
}
fn default_audit_max_bytes() -> u64 {
    10 * 1024 * 1024
}
fn default_audit_keep() -> u32 {
    5
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            log: default_audit_log(),
            max_bytes: default_audit_max_bytes(),
            keep: default_audit_keep(),
            metrics: None,
        }
    }
}

/// The audit settings of the node config at `path` (default path when `None`); the
/// defaults when there is no node config, or it cannot be read (that failure refuses
/// the container elsewhere, and its decision is still recorded).
pub fn audit_config(path: Option<&Path>) -> AuditConfig {
    let path = path.unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
    NodeConfig::read(path)
        .ok()
        .flatten()
        .map(|c| c.audit)
        .unwrap_or_default()
}

/// Containers started for this runtime handler (Kubernetes RuntimeClass) get `profile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerProfile {
    pub name: String,
    pub profile: String,
}

/// Containers whose state lives under this `--root` get `profile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateRootProfile {
    pub path: PathBuf,
    pub profile: String,
}

/// What the runtime knows about a container when choosing its profile.
#[derive(Debug, Clone, Copy)]
pub struct ContainerContext<'a> {
    /// Runtime handler, when the caller knows it (the Stockade shim does).
    pub handler: Option<&'a str>,
    /// The runtime's `--root`.
    pub state_root: &'a Path,
    pub annotations: Option<&'a HashMap<String, String>>,
    /// Where parses of profile files may come from (`load::NoCache`: parse them all).
    pub parse_cache: &'a dyn load::ParseCache,
}

/// Why this profile applies, for the audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectedBy {
    /// No node config exists: the compiled-in node default.
    Builtin,
    Default,
    Handler,
    StateRoot,
    Annotation,
}

#[derive(Debug, Clone)]
pub struct Selected {
    pub profile: Profile,
    pub selected_by: SelectedBy,
}

fn valid_name(name: &str, origin: &'static str) -> Result<(), NodeConfigError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(NodeConfigError::InvalidProfileName {
            name: name.to_owned(),
            origin,
        })
    }
}

impl NodeConfig {
    /// Parse and validate config text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, NodeConfigError> {
        let cfg: NodeConfig =
            toml::from_str(text).map_err(|source| NodeConfigError::ParseConfig {
                path: path.to_owned(),
                source,
            })?;
        if cfg.schema != SCHEMA_VERSION {
            return Err(NodeConfigError::UnsupportedSchema {
                path: path.to_owned(),
                found: cfg.schema,
            });
        }
        cfg.paths
            .validate()
            .map_err(|(key, problem)| NodeConfigError::InvalidPath {
                path: path.to_owned(),
                key,
                problem,
            })?;
        valid_name(&cfg.default_profile, "default_profile")?;
        for n in &cfg.annotation_allowed {
            valid_name(n, "annotation_allowed")?;
        }
        for h in &cfg.handler {
            valid_name(&h.profile, "handler")?;
        }
        for s in &cfg.state_root {
            valid_name(&s.profile, "state_root")?;
        }
        Ok(cfg)
    }

    /// Read the config at `path`. `Ok(None)` only when `path` is the default path and
    /// does not exist.
    pub fn read(path: &Path) -> Result<Option<Self>, NodeConfigError> {
        match crate::bounded_read::read_to_string(path, crate::bounded_read::CONFIG_CAP) {
            Ok(text) => Self::parse(&text, path).map(Some),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && path == Path::new(DEFAULT_CONFIG_PATH) =>
            {
                Ok(None)
            }
            Err(source) => Err(NodeConfigError::ReadConfig {
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn load(&self, name: &str, cache: &dyn load::ParseCache) -> Result<Profile, NodeConfigError> {
        let profile =
            load::load_profile_with(&self.profiles_dir, name, cache).map_err(|source| {
                NodeConfigError::LoadProfile {
                    name: name.to_owned(),
                    source: Box::new(source),
                }
            })?;
        self.localize(profile)
    }

    /// `profile` with this node's directories substituted for its path variables.
    pub fn localize(&self, mut profile: Profile) -> Result<Profile, NodeConfigError> {
        profile
            .resolve_node_paths(&self.paths)
            .map_err(|(key, problem)| NodeConfigError::ResolvePath {
                name: profile.name.clone(),
                key,
                problem,
            })?;
        Ok(profile)
    }

    /// The profile for one container.
    pub fn select(&self, ctx: &ContainerContext) -> Result<Selected, NodeConfigError> {
        let (base_name, by) = if let Some(h) = ctx
            .handler
            .and_then(|h| self.handler.iter().find(|m| m.name == h))
        {
            (h.profile.as_str(), SelectedBy::Handler)
        } else if let Some(s) = self.state_root.iter().find(|m| m.path == ctx.state_root) {
            (s.profile.as_str(), SelectedBy::StateRoot)
        } else {
            (self.default_profile.as_str(), SelectedBy::Default)
        };
        let base = self.load(base_name, ctx.parse_cache)?;
        self.apply_annotation(base, by, ctx)
    }

    /// The annotation may replace `base` only by an allowed profile at least as strict.
    fn apply_annotation(
        &self,
        base: Profile,
        by: SelectedBy,
        ctx: &ContainerContext,
    ) -> Result<Selected, NodeConfigError> {
        let Some(requested) = ctx.annotations.and_then(|a| a.get(PROFILE_ANNOTATION)) else {
            return Ok(Selected {
                profile: base,
                selected_by: by,
            });
        };
        if *requested == base.name {
            return Ok(Selected {
                profile: base,
                selected_by: by,
            });
        }
        // Checked before the name reaches the filesystem: the annotation is untrusted.
        if !self.annotation_allowed.iter().any(|a| a == requested) {
            return Err(NodeConfigError::AnnotationNotAllowed {
                requested: requested.clone(),
                allowed: self.annotation_allowed.join(", "),
            });
        }
        let chosen = self.load(requested, ctx.parse_cache)?;
        if chosen.strictness < base.strictness {
            return Err(NodeConfigError::AnnotationWeakens {
                requested: requested.clone(),
                requested_strictness: chosen.strictness,
                base: base.name,
                base_strictness: base.strictness,
            });
        }
        Ok(Selected {
            profile: chosen,
            selected_by: SelectedBy::Annotation,
        })
    }
}

/// `base` chosen by the runtime's caller, after the container's annotation had its
/// say: it may only move to an allowed profile at least as strict. Without a node
/// config no annotation is allowed (except naming `base` itself).
pub fn tighten_by_annotation(
    config_path: Option<&Path>,
    base: Profile,
    ctx: &ContainerContext,
) -> Result<Profile, NodeConfigError> {
    let path = config_path.unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
    tighten_by_annotation_in(NodeConfig::read(path)?.as_ref(), base, ctx)
}

/// [`tighten_by_annotation`] under a node config already read (`None`: there is none).
pub fn tighten_by_annotation_in(
    config: Option<&NodeConfig>,
    base: Profile,
    ctx: &ContainerContext,
) -> Result<Profile, NodeConfigError> {
    match config {
        Some(cfg) => Ok(cfg
            .apply_annotation(base, SelectedBy::Default, ctx)?
            .profile),
        None => match ctx.annotations.and_then(|a| a.get(PROFILE_ANNOTATION)) {
            Some(requested) if *requested != base.name => {
                Err(NodeConfigError::AnnotationNotAllowed {
                    requested: requested.clone(),
                    allowed: String::new(),
                })
            }
            _ => Ok(base),
        },
    }
}

/// The node default profile compiled into the binary, with its seccomp filter.
pub fn builtin_default() -> Result<Profile, NodeConfigError> {
    builtin("default").unwrap_or_else(|| unreachable!("default is compiled in"))
}

/// The shipped default-deny seccomp data (`profiles/seccomp/default.toml`).
pub fn builtin_seccomp_default() -> Result<super::seccomp_data::SeccompFilter, LoadError> {
    load::parse_seccomp_filter(BUILTIN_SECCOMP, "<builtin>/seccomp/default.toml")
}

/// The text of the shipped profile `name`, if there is one.
pub fn builtin_text(name: &str) -> Option<&'static str> {
    BUILTIN_PROFILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// The shipped profile `name` compiled into the binary, with its seccomp filter, or
/// `None` when no shipped profile has that name.
pub fn builtin(name: &str) -> Option<Result<Profile, NodeConfigError>> {
    let (_, text) = BUILTIN_PROFILES.iter().find(|(n, _)| *n == name)?;
    let wrap = |source| NodeConfigError::LoadProfile {
        name: name.to_owned(),
        source: Box::new(source),
    };
    let load = || {
        let mut p = load::parse_profile(text, &format!("<builtin>/{name}.toml")).map_err(wrap)?;
        if let Some(sc) = &p.seccomp {
            let filter = BUILTIN_FILTERS
                .iter()
                .find(|(path, _)| *path == sc.default_filter)
                .map(|(_, text)| *text)
                .unwrap_or_default();
            let file = format!("<builtin>/{}", sc.default_filter);
            p.seccomp_filter = Some(load::parse_seccomp_filter(filter, &file).map_err(wrap)?);
        }
        Ok(p)
    };
    Some(load())
}

/// The profile for one container, from the config at `config_path` (the default path
/// when `None`). Every error means: refuse the container.
pub fn profile_for_container(
    config_path: Option<&Path>,
    ctx: &ContainerContext,
) -> Result<Selected, NodeConfigError> {
    let path = config_path.unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
    profile_for_container_in(NodeConfig::read(path)?.as_ref(), ctx)
}

/// [`profile_for_container`] under a node config already read (`None`: there is none).
pub fn profile_for_container_in(
    config: Option<&NodeConfig>,
    ctx: &ContainerContext,
) -> Result<Selected, NodeConfigError> {
    match config {
        Some(cfg) => cfg.select(ctx),
        None => {
            // No node config: the annotation may still only tighten, and only to a
            // shipped profile it could name; without a config nothing is allowed.
            if let Some(requested) = ctx.annotations.and_then(|a| a.get(PROFILE_ANNOTATION)) {
                if requested != "default" {
                    return Err(NodeConfigError::AnnotationNotAllowed {
                        requested: requested.clone(),
                        allowed: String::new(),
                    });
                }
            }
            Ok(Selected {
                profile: builtin_default()?,
                selected_by: SelectedBy::Builtin,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::tests::profiles_dir;

    fn config(extra: &str) -> NodeConfig {
        let text = format!(
            "schema = 1\nprofiles_dir = {:?}\ndefault_profile = \"default\"\nannotation_allowed = [\"restricted\", \"baseline\"]\n{extra}",
            profiles_dir()
        );
        NodeConfig::parse(&text, Path::new("config.toml")).unwrap()
    }

    fn ctx<'a>(
        ann: Option<&'a HashMap<String, String>>,
        handler: Option<&'a str>,
    ) -> ContainerContext<'a> {
        ContainerContext {
            handler,
            state_root: Path::new("/run/stockade"),
            annotations: ann,
            parse_cache: &load::NoCache,
        }
    }

    fn ann(v: &str) -> HashMap<String, String> {
        [(PROFILE_ANNOTATION.to_owned(), v.to_owned())].into()
    }

    #[test]
    fn precedence_handler_then_state_root_then_default() {
        let c = config(
            "[[handler]]\nname = \"strict\"\nprofile = \"restricted\"\n[[state_root]]\npath = \"/run/stockade\"\nprofile = \"baseline\"\n",
        );
        let s = c.select(&ctx(None, Some("strict"))).unwrap();
        assert_eq!(
            (s.profile.name.as_str(), s.selected_by),
            ("restricted", SelectedBy::Handler)
        );
        let s = c.select(&ctx(None, Some("other"))).unwrap();
        assert_eq!(
            (s.profile.name.as_str(), s.selected_by),
            ("baseline", SelectedBy::StateRoot)
        );
        let s = config("").select(&ctx(None, None)).unwrap();
        assert_eq!(
            (s.profile.name.as_str(), s.selected_by),
            ("default", SelectedBy::Default)
        );
        assert!(s.profile.seccomp_filter.is_some());
    }

    #[test]
    fn annotation_may_only_tighten() {
        let c = config("");
        let a = ann("restricted");
        let s = c.select(&ctx(Some(&a), None)).unwrap();
        assert_eq!(
            (s.profile.name.as_str(), s.selected_by),
            ("restricted", SelectedBy::Annotation)
        );
        let a = ann("baseline");
        assert!(matches!(
            c.select(&ctx(Some(&a), None)),
            Err(NodeConfigError::AnnotationWeakens { .. })
        ));
        let a = ann("../../etc/passwd");
        assert!(matches!(
            c.select(&ctx(Some(&a), None)),
            Err(NodeConfigError::AnnotationNotAllowed { .. })
        ));
    }

    #[test]
    fn fails_closed() {
        let d = tempfile::tempdir().unwrap();
        let c = NodeConfig {
            profiles_dir: d.path().to_owned(),
            ..config("")
        };
        assert!(matches!(
            c.select(&ctx(None, None)),
            Err(NodeConfigError::LoadProfile { .. })
        ));
        let missing = d.path().join("config.toml");
        assert!(matches!(
            profile_for_container(Some(&missing), &ctx(None, None)),
            Err(NodeConfigError::ReadConfig { .. })
        ));
        std::fs::write(&missing, "schema = 1\nprofiles_dir = \"/x\"\n").unwrap();
        assert!(matches!(
            profile_for_container(Some(&missing), &ctx(None, None)),
            Err(NodeConfigError::ParseConfig { .. })
        ));
        std::fs::write(
            d.path().join("broken.toml"),
            "schema = 1\nname = \"broken\"\n",
        )
        .unwrap();
        let c = NodeConfig {
            default_profile: "broken".into(),
            profiles_dir: d.path().to_owned(),
            ..config("")
        };
        assert!(matches!(
            c.select(&ctx(None, None)),
            Err(NodeConfigError::LoadProfile { .. })
        ));
    }

    #[test]
    fn unconfined_is_selected_only_by_node_config() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("config.toml");
        std::fs::write(
            &path,
            format!(
                "schema = 1\nprofiles_dir = {:?}\ndefault_profile = \"unconfined\"\n",
                profiles_dir()
            ),
        )
        .unwrap();
        let s = profile_for_container(Some(&path), &ctx(None, None)).unwrap();
        assert_eq!(
            (s.profile.name.as_str(), s.selected_by),
            ("unconfined", SelectedBy::Default)
        );
        assert!(s.profile.seccomp.is_none() && s.profile.seccomp_filter.is_none());
        // From unconfined (strictness 0) an allowed annotation may only tighten.
        let c = NodeConfig::read(&path).unwrap().unwrap();
        let c = NodeConfig {
            annotation_allowed: vec!["restricted".into()],
            ..c
        };
        let a = ann("restricted");
        assert_eq!(
            c.select(&ctx(Some(&a), None)).unwrap().profile.name,
            "restricted"
        );

        let c = config("[[handler]]\nname = \"conformance\"\nprofile = \"unconfined\"\n");
        let s = c.select(&ctx(None, Some("conformance"))).unwrap();
        assert_eq!(
            (s.profile.name.as_str(), s.selected_by),
            ("unconfined", SelectedBy::Handler)
        );
        // Not in annotation_allowed: refused by name.
        let a = ann("unconfined");
        assert!(matches!(
            c.select(&ctx(Some(&a), None)),
            Err(NodeConfigError::AnnotationNotAllowed { .. })
        ));
        // Even when an admin lists it, the strictness rule refuses the move from default.
        let c = NodeConfig {
            annotation_allowed: vec!["unconfined".into()],
            ..c
        };
        assert!(matches!(
            c.select(&ctx(Some(&a), None)),
            Err(NodeConfigError::AnnotationWeakens {
                requested_strictness: 0,
                base_strictness: 20,
                ..
            })
        ));
    }

    #[test]
    fn builtin_default_is_the_shipped_default() {
        assert_eq!(
            builtin_default().unwrap(),
            crate::profile::tests::shipped("default")
        );
    }
}
