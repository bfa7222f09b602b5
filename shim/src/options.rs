//! Runtime options from containerd's runtime `options` table.
//!
//! containerd hands them over as a protobuf `Any`. Two shapes reach us:
//! - `containerd.runc.v1.Options` (fields `BinaryName`, `Root`, `SystemdCgroup`), when the
//!   runtime is configured like runc's;
//! - `runtimeoptions.v1.Options` (`TypeUrl`, `ConfigPath`), which is what containerd's CRI
//!   plugin and `ctr --runtime-config-path` send for any runtime type that is not runc's.
//!   `ConfigPath` then names a TOML file holding our [`RuntimeOptions`].
//!
//! The chosen options are stored in the bundle so `delete` (run without any request) and
//! later calls use the same binary and state root.

use std::path::{Path, PathBuf};

use containerd_shim::protos::{
    protobuf::{well_known_types::any::Any, CodedInputStream, Message},
    shim::oci::Options as RuncOptions,
};
use serde::{Deserialize, Serialize};

/// Default runtime binary, looked up on PATH.
pub const DEFAULT_BINARY: &str = "stockade";
/// Default state root of the runtime; one sub-directory per containerd namespace.
pub const DEFAULT_ROOT: &str = "/run/containerd/stockade";
/// File in the bundle that remembers the options of this container.
pub const OPTIONS_FILE: &str = "stockade-shim-options.json";

const RUNC_OPTIONS_URL: &str = "containerd.runc.v1.Options";
const RUNTIME_OPTIONS_URL: &str = "runtimeoptions.v1.Options";

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("decode runtime options of type {type_url}")]
    Decode {
        type_url: String,
        #[source]
        source: containerd_shim::protos::protobuf::Error,
    },
    #[error("unsupported runtime options type {0}")]
    UnsupportedType(String),
    #[error("read runtime config file {path}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse runtime config file {path}")]
    ParseConfig {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{op} {path}")]
    Stored {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse stored options {path}")]
    StoredJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// What the shim needs to drive the runtime binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RuntimeOptions {
    /// Runtime binary (path or name on PATH), runc-CLI compatible.
    #[serde(default = "default_binary")]
    pub binary_name: String,
    /// Runtime state root; the containerd namespace is appended.
    #[serde(default = "default_root")]
    pub root: String,
    /// Stockade hardening profile for this handler; `None` lets the runtime's node
    /// config decide.
    #[serde(default)]
    pub profile: Option<String>,
    /// Stockade node config file (profiles dir, default profile).
    #[serde(default)]
    pub config: Option<String>,
    /// The runtime handler (Kubernetes RuntimeClass handler) these options belong to,
    /// so the node config's `[[handler]]` mapping applies to its containers.
    #[serde(default)]
    pub handler: Option<String>,
    #[serde(default)]
    pub systemd_cgroup: bool,
}

fn default_binary() -> String {
    DEFAULT_BINARY.into()
}

fn default_root() -> String {
    DEFAULT_ROOT.into()
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            binary_name: default_binary(),
            root: default_root(),
            profile: None,
            config: None,
            handler: None,
            systemd_cgroup: false,
        }
    }
}

impl RuntimeOptions {
    /// Options from the `Any` containerd attached to the task, if any.
    pub fn from_any(any: Option<&Any>) -> Result<Self, OptionsError> {
        let Some(any) = any.filter(|a| !a.type_url.is_empty()) else {
            return Ok(Self::default());
        };
        let type_url = any.type_url.rsplit('/').next().unwrap_or_default();
        match type_url {
            RUNC_OPTIONS_URL => {
                let runc = RuncOptions::parse_from_bytes(&any.value).map_err(|source| {
                    OptionsError::Decode {
                        type_url: any.type_url.clone(),
                        source,
                    }
                })?;
                let mut opts = Self::default();
                if !runc.binary_name.is_empty() {
                    opts.binary_name = runc.binary_name;
                }
                if !runc.root.is_empty() {
                    opts.root = runc.root;
                }
                opts.systemd_cgroup = runc.systemd_cgroup;
                Ok(opts)
            }
            RUNTIME_OPTIONS_URL => {
                let config_path = runtimeoptions_config_path(&any.value).map_err(|source| {
                    OptionsError::Decode {
                        type_url: any.type_url.clone(),
                        source,
                    }
                })?;
                match config_path {
                    Some(path) => Self::from_config_file(Path::new(&path)),
                    None => Ok(Self::default()),
                }
            }
            other => Err(OptionsError::UnsupportedType(other.to_string())),
        }
    }

    /// Options from a TOML file (the `ConfigPath` of the runtime options).
    pub fn from_config_file(path: &Path) -> Result<Self, OptionsError> {
        let text = std::fs::read_to_string(path).map_err(|source| OptionsError::ReadConfig {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| OptionsError::ParseConfig {
            path: path.into(),
            source,
        })
    }

    /// State root for a containerd namespace, as runc's shim does it.
    pub fn root_for(&self, namespace: &str) -> PathBuf {
        Path::new(&self.root).join(namespace)
    }

    pub fn store(&self, bundle: &Path) -> Result<(), OptionsError> {
        let path = bundle.join(OPTIONS_FILE);
        let json = serde_json::to_vec(self).map_err(|source| OptionsError::StoredJson {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, json).map_err(|source| OptionsError::Stored {
            op: "write",
            path,
            source,
        })
    }

    /// Stored options, or the defaults when the bundle has none (task never created).
    pub fn load(bundle: &Path) -> Result<Self, OptionsError> {
        let path = bundle.join(OPTIONS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| OptionsError::StoredJson { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(OptionsError::Stored {
                op: "read",
                path,
                source,
            }),
        }
    }
}

/// Decodes `runtimeoptions.v1.Options { string type_url = 1; string config_path = 2; }`
/// by hand: the message is two strings and not part of the vendored protos.
fn runtimeoptions_config_path(
    value: &[u8],
) -> Result<Option<String>, containerd_shim::protos::protobuf::Error> {
    let mut input = CodedInputStream::from_bytes(value);
    let mut config_path = None;
    while let Some(tag) = input.read_raw_tag_or_eof()? {
        match tag {
            // field 2, wire type 2 (length-delimited)
            18 => config_path = Some(input.read_string()?),
            _ => containerd_shim::protos::protobuf::rt::skip_field_for_tag(tag, &mut input)?,
        }
    }
    Ok(config_path.filter(|p| !p.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtimeoptions_any(config_path: &str) -> Any {
        let mut value = vec![10, 3, b'a', b'b', b'c', 18, config_path.len() as u8];
        value.extend_from_slice(config_path.as_bytes());
        Any {
            type_url: RUNTIME_OPTIONS_URL.into(),
            value,
            ..Default::default()
        }
    }

    #[test]
    fn no_options_gives_defaults() {
        assert_eq!(
            RuntimeOptions::from_any(None).unwrap(),
            RuntimeOptions::default()
        );
    }

    #[test]
    fn runc_options_pick_binary_and_root() {
        let runc = RuncOptions {
            binary_name: "/usr/sbin/runc".into(),
            root: "/run/x".into(),
            ..Default::default()
        };
        let any = Any {
            type_url: format!("type.googleapis.com/{RUNC_OPTIONS_URL}"),
            value: runc.write_to_bytes().unwrap(),
            ..Default::default()
        };
        let opts = RuntimeOptions::from_any(Some(&any)).unwrap();
        assert_eq!(opts.binary_name, "/usr/sbin/runc");
        assert_eq!(opts.root, "/run/x");
        assert_eq!(opts.root_for("k8s.io"), Path::new("/run/x/k8s.io"));
    }

    #[test]
    fn systemd_cgroup_comes_from_either_options_shape() {
        let runc = RuncOptions {
            systemd_cgroup: true,
            ..Default::default()
        };
        let any = Any {
            type_url: format!("type.googleapis.com/{RUNC_OPTIONS_URL}"),
            value: runc.write_to_bytes().unwrap(),
            ..Default::default()
        };
        assert!(RuntimeOptions::from_any(Some(&any)).unwrap().systemd_cgroup);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.toml");
        std::fs::write(&path, "systemd_cgroup = true\n").unwrap();
        let opts = RuntimeOptions::from_any(Some(&runtimeoptions_any(path.to_str().unwrap())));
        assert!(opts.unwrap().systemd_cgroup);
    }

    #[test]
    fn runtimeoptions_config_path_reads_toml() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stockade.toml");
        std::fs::write(
            &path,
            "binary_name = \"/usr/sbin/runc\"\nprofile = \"restricted\"\nhandler = \"stockade-restricted\"\n",
        )
        .unwrap();
        let any = runtimeoptions_any(path.to_str().unwrap());
        let opts = RuntimeOptions::from_any(Some(&any)).unwrap();
        assert_eq!(opts.binary_name, "/usr/sbin/runc");
        assert_eq!(opts.root, DEFAULT_ROOT);
        assert_eq!(opts.profile.as_deref(), Some("restricted"));
        assert_eq!(opts.handler.as_deref(), Some("stockade-restricted"));
    }

    #[test]
    fn unknown_key_in_config_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stockade.toml");
        std::fs::write(&path, "binary = \"x\"\n").unwrap();
        assert!(matches!(
            RuntimeOptions::from_config_file(&path),
            Err(OptionsError::ParseConfig { .. })
        ));
    }

    #[test]
    fn unknown_type_is_refused() {
        let any = Any {
            type_url: "foo.Bar".into(),
            ..Default::default()
        };
        assert!(matches!(
            RuntimeOptions::from_any(Some(&any)),
            Err(OptionsError::UnsupportedType(_))
        ));
    }

    #[test]
    fn store_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            RuntimeOptions::load(dir.path()).unwrap(),
            RuntimeOptions::default()
        );
        let opts = RuntimeOptions {
            profile: Some("p".into()),
            ..Default::default()
        };
        opts.store(dir.path()).unwrap();
        assert_eq!(RuntimeOptions::load(dir.path()).unwrap(), opts);
    }
}
