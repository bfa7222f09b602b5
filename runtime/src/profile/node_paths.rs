//! The node's own directories, named in the node config (`[paths]`) and referred to
//! symbolically by profiles, so one reviewed profile fits every node layout.
//!
//! A profile path list that supports it (`mounts.bind_source_prefixes`) may start an
//! entry with one variable: `${containerd_state}/io.containerd.grpc.v1.cri/sandboxes`.
//! The variable must be the whole first component (`${name}` alone, or followed by
//! `/`); a `$` anywhere else, an unknown name or a result that is not an absolute path
//! without `..` is an error when the profile is loaded. Each node config names its
//! directories (default: the standard paths), so a node whose containerd keeps its
//! state elsewhere states that once and every shipped profile follows.

use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// The directories a profile may name by variable. Defaults are the standard paths of
/// containerd, the kubelet and Stockade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodePaths {
    /// containerd's `root` (its persistent data: CRI sandbox files such as
    /// `/etc/hosts` and `/etc/resolv.conf` for a pod).
    #[serde(default = "default_containerd_root")]
    pub containerd_root: PathBuf,
    /// containerd's `state` (runtime data: a sandbox's `/dev/shm`).
    #[serde(default = "default_containerd_state")]
    pub containerd_state: PathBuf,
    /// The kubelet's `--root-dir` (pod volumes under `pods/`).
    #[serde(default = "default_kubelet_root")]
    pub kubelet_root: PathBuf,
    /// Host directories an administrator offers as volumes.
    #[serde(default = "default_stockade_volumes")]
    pub stockade_volumes: PathBuf,
}

fn default_containerd_root() -> PathBuf {
    PathBuf::from("/var/lib/containerd")
}
fn default_containerd_state() -> PathBuf {
    PathBuf::from("/run/containerd")
}
fn default_kubelet_root() -> PathBuf {
    PathBuf::from("/var/lib/kubelet")
}
fn default_stockade_volumes() -> PathBuf {
    PathBuf::from("/var/lib/stockade/volumes")
}

impl Default for NodePaths {
    fn default() -> Self {
        NodePaths {
            containerd_root: default_containerd_root(),
            containerd_state: default_containerd_state(),
            kubelet_root: default_kubelet_root(),
            stockade_volumes: default_stockade_volumes(),
        }
    }
}

/// Why a path template or a node directory is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathTemplateError {
    #[error("unknown variable ${{{name}}} (known: {})", VARIABLES.join(", "))]
    UnknownVariable { name: String },
    #[error("'$' may only start the path as ${{name}} followed by '/' or nothing")]
    Malformed,
    #[error("{0:?} is not an absolute path without '..'")]
    NotAbsolute(String),
}

/// Variable names, as written inside `${...}`.
pub const VARIABLES: [&str; 4] = [
    "containerd_root",
    "containerd_state",
    "kubelet_root",
    "stockade_volumes",
];

fn clean_absolute(path: &str) -> Result<(), PathTemplateError> {
    let p = Path::new(path);
    if p.is_absolute() && !p.components().any(|c| c == Component::ParentDir) {
        Ok(())
    } else {
        Err(PathTemplateError::NotAbsolute(path.to_owned()))
    }
}

impl NodePaths {
    fn get(&self, name: &str) -> Option<&Path> {
        Some(match name {
            "containerd_root" => &self.containerd_root,
            "containerd_state" => &self.containerd_state,
            "kubelet_root" => &self.kubelet_root,
            "stockade_volumes" => &self.stockade_volumes,
            _ => return None,
        })
    }

    /// Every directory must be absolute and free of `..`; `Err` names the key.
    pub fn validate(&self) -> Result<(), (&'static str, PathTemplateError)> {
        for name in VARIABLES {
            let dir = self.get(name).unwrap_or(Path::new(""));
            clean_absolute(&dir.to_string_lossy()).map_err(|e| (name, e))?;
        }
        Ok(())
    }

    /// `template` with its variable replaced by this node's directory.
    pub fn resolve(&self, template: &str) -> Result<String, PathTemplateError> {
        let resolved = match template.strip_prefix("${") {
            Some(rest) => {
                let (name, tail) = rest.split_once('}').ok_or(PathTemplateError::Malformed)?;
                if !(tail.is_empty() || tail.starts_with('/')) || tail.contains('$') {
                    return Err(PathTemplateError::Malformed);
                }
                let dir = self
                    .get(name)
                    .ok_or_else(|| PathTemplateError::UnknownVariable {
                        name: name.to_owned(),
                    })?;
                format!("{}{tail}", dir.to_string_lossy().trim_end_matches('/'))
            }
            None if template.contains('$') => return Err(PathTemplateError::Malformed),
            None => template.to_owned(),
        };
        clean_absolute(&resolved)?;
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom() -> NodePaths {
        NodePaths {
            containerd_root: "/data/containerd/".into(),
            containerd_state: "/run/k8s/containerd".into(),
            kubelet_root: "/data/kubelet".into(),
            stockade_volumes: "/srv/volumes".into(),
        }
    }

    #[test]
    fn variables_resolve_to_the_nodes_directories() {
        let cases = [
            (
                "${containerd_state}/io.containerd.grpc.v1.cri/sandboxes",
                "/run/containerd/io.containerd.grpc.v1.cri/sandboxes",
                "/run/k8s/containerd/io.containerd.grpc.v1.cri/sandboxes",
            ),
            (
                "${containerd_root}/io.containerd.grpc.v1.cri/sandboxes",
                "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes",
                "/data/containerd/io.containerd.grpc.v1.cri/sandboxes",
            ),
            (
                "${kubelet_root}/pods",
                "/var/lib/kubelet/pods",
                "/data/kubelet/pods",
            ),
            (
                "${stockade_volumes}",
                "/var/lib/stockade/volumes",
                "/srv/volumes",
            ),
            ("/opt/plain", "/opt/plain", "/opt/plain"),
        ];
        for (template, standard, other) in cases {
            assert_eq!(NodePaths::default().resolve(template).unwrap(), standard);
            assert_eq!(custom().resolve(template).unwrap(), other);
        }
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        let cases = [
            (
                "${containerd_stat}/x",
                "unknown variable ${containerd_stat} (known: containerd_root, \
                 containerd_state, kubelet_root, stockade_volumes)",
            ),
            (
                "${containerd_state",
                "'$' may only start the path as ${name} followed by '/' or nothing",
            ),
            (
                "${containerd_state}x",
                "'$' may only start the path as ${name} followed by '/' or nothing",
            ),
            (
                "/x/${kubelet_root}",
                "'$' may only start the path as ${name} followed by '/' or nothing",
            ),
            (
                "${kubelet_root}/${kubelet_root}",
                "'$' may only start the path as ${name} followed by '/' or nothing",
            ),
            (
                "$kubelet_root/pods",
                "'$' may only start the path as ${name} followed by '/' or nothing",
            ),
            (
                "${kubelet_root}/../etc",
                "\"/var/lib/kubelet/../etc\" is not an absolute path without '..'",
            ),
            ("pods", "\"pods\" is not an absolute path without '..'"),
        ];
        for (template, want) in cases {
            let err = NodePaths::default().resolve(template).unwrap_err();
            assert_eq!(err.to_string(), want, "{template}");
        }
    }

    #[test]
    fn node_directories_must_be_absolute() {
        let mut p = custom();
        assert!(p.validate().is_ok());
        p.kubelet_root = "var/lib/kubelet".into();
        let (key, err) = p.validate().unwrap_err();
        assert_eq!(key, "kubelet_root");
        assert!(matches!(err, PathTemplateError::NotAbsolute(_)));
    }
}
