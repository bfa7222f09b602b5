//! Reading a bundle's `config.json` into a validated spec, before any side effect.
//!
//! Every error names the spec field at fault so that a refused bundle tells its owner
//! what to fix; nothing on the host is touched until this module has said yes.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Spec;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle {path}: cannot read config.json")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("bundle {path}: config.json is not a valid OCI runtime spec{}", at_field(.field))]
    ParseConfig {
        path: PathBuf,
        /// JSON path of the offending value (`linux.uidMappings[0].size`); `.` when
        /// the document itself is at fault.
        field: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("ociVersion: unsupported version {0:?} (expected 1.x)")]
    Version(String),
    #[error("root: missing (the spec must name the container's root filesystem)")]
    MissingRoot,
    #[error("root.path: empty")]
    EmptyRoot,
    #[error("root.path: {path} does not exist or is not a directory")]
    RootfsMissing {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("root.path: {0} is not a directory")]
    RootfsNotDir(PathBuf),
    #[error("process: missing (a container needs a process to run)")]
    MissingProcess,
    #[error("process.args: empty (a container needs a program to run)")]
    EmptyArgs,
    #[error("process.cwd: {0:?} must be an absolute path")]
    RelativeCwd(PathBuf),
    #[error("mounts[{index}].destination: {destination:?} must be an absolute path")]
    RelativeMountDestination { index: usize, destination: PathBuf },
    #[error("mounts[{index}].destination: {destination:?} escapes the container root with '..'")]
    EscapingMountDestination { index: usize, destination: PathBuf },
    #[error("linux.{kind}[{index}]: size must be positive")]
    EmptyIdMapping { kind: &'static str, index: usize },
    #[error("linux.{kind}[{index}]: mapping overflows the 32-bit id space")]
    OverflowingIdMapping { kind: &'static str, index: usize },
    #[error("linux.{kind}[{index}] overlaps linux.{kind}[{other}] in the container id range")]
    OverlappingIdMapping {
        kind: &'static str,
        index: usize,
        other: usize,
    },
    #[error("linux.{0}: id mappings given without a user namespace in linux.namespaces")]
    MappingWithoutUserns(&'static str),
    #[error("linux.rootfsPropagation: {0:?} is not one of {ROOTFS_PROPAGATION:?}")]
    RootfsPropagation(String),
}

/// The `linux.rootfsPropagation` values runc accepts.
pub const ROOTFS_PROPAGATION: &[&str] = &[
    "shared",
    "rshared",
    "slave",
    "rslave",
    "private",
    "rprivate",
    "unbindable",
    "runbindable",
];

/// A spec read from a bundle, with its root filesystem resolved to an absolute path.
#[derive(Debug, Clone)]
pub struct LoadedBundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

/// Read and validate `<bundle>/config.json`. Pure apart from reading the file and
/// resolving the rootfs path.
pub fn load(bundle: &Path) -> Result<LoadedBundle, BundleError> {
    let dir = bundle.to_path_buf();
    let config_path = bundle.join("config.json");
    let bytes = crate::bounded_read::read(&config_path, crate::bounded_read::SPEC_CAP).map_err(
        |source| BundleError::ReadConfig {
            path: dir.clone(),
            source,
        },
    )?;
    let spec = parse(bundle, &bytes)?;
    let root = spec.root().as_ref().ok_or(BundleError::MissingRoot)?;
    // The OCI spec resolves a relative root.path against the bundle directory.
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let rootfs = fs::canonicalize(&rootfs).map_err(|source| BundleError::RootfsMissing {
        path: rootfs.clone(),
        source,
    })?;
    if !rootfs.is_dir() {
        return Err(BundleError::RootfsNotDir(rootfs));
    }
    Ok(LoadedBundle { dir, spec, rootfs })
}

/// Parse `config.json`'s bytes into a spec and validate it (no host access; `bundle`
/// only names the bundle in errors). Every error names the field at fault.
pub fn parse(bundle: &Path, bytes: &[u8]) -> Result<Spec, BundleError> {
    let spec: Spec = parse_json(bytes).map_err(|(field, source)| BundleError::ParseConfig {
        path: bundle.to_path_buf(),
        field,
        source,
    })?;
    validate(&spec)?;
    Ok(spec)
}

/// Parse a JSON document; on error also the JSON path of the value at fault (e.g.
/// `linux.uidMappings[0].size`), `.` for the document itself. containerd writes
/// specs on one line, so serde's "line 1 column 1234" alone names nothing.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, (String, serde_json::Error)> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| (e.path().to_string(), e.into_inner()))?;
    de.end().map_err(|e| (".".to_string(), e))?;
    Ok(value)
}

/// ` at FIELD` for a field path, nothing for the whole document.
pub fn at_field(field: &str) -> String {
    if field.is_empty() || field == "." {
        String::new()
    } else {
        format!(" at {field}")
    }
}

/// Structural checks that need no host access.
/// A bind mount: type `bind`, or a `bind`/`rbind` option (runc's reading: the type
/// of a bind mount may be anything, even absent).
pub fn is_bind_mount(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

pub fn validate(spec: &Spec) -> Result<(), BundleError> {
    if !spec.version().starts_with("1.") {
        return Err(BundleError::Version(spec.version().clone()));
    }
    let root = spec.root().as_ref().ok_or(BundleError::MissingRoot)?;
    if root.path().as_os_str().is_empty() {
        return Err(BundleError::EmptyRoot);
    }
    let process = spec.process().as_ref().ok_or(BundleError::MissingProcess)?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(BundleError::EmptyArgs);
    }
    if !process.cwd().is_absolute() {
        return Err(BundleError::RelativeCwd(process.cwd().clone()));
    }
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        check_destination(index, m.destination())?;
    }
    if let Some(linux) = spec.linux() {
        if let Some(p) = linux.rootfs_propagation() {
            if !p.is_empty() && !ROOTFS_PROPAGATION.contains(&p.as_str()) {
                return Err(BundleError::RootfsPropagation(p.clone()));
            }
        }
        let has_userns = linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User);
        for (kind, maps) in [
            ("uidMappings", linux.uid_mappings()),
            ("gidMappings", linux.gid_mappings()),
        ] {
            let Some(maps) = maps else { continue };
            if !maps.is_empty() && !has_userns {
                return Err(BundleError::MappingWithoutUserns(kind));
            }
            let ranges: Vec<(u64, u64)> = maps
                .iter()
                .map(|m| (u64::from(m.container_id()), u64::from(m.size())))
                .collect();
            check_id_ranges(kind, &ranges)?;
            for (index, m) in maps.iter().enumerate() {
                if u64::from(m.host_id()) + u64::from(m.size()) > 1 << 32 {
                    return Err(BundleError::OverflowingIdMapping { kind, index });
                }
            }
        }
    }
    Ok(())
}

fn check_destination(index: usize, destination: &Path) -> Result<(), BundleError> {
    if !destination.is_absolute() {
        return Err(BundleError::RelativeMountDestination {
            index,
            destination: destination.to_path_buf(),
        });
    }
    // A lexical '..' could climb out of the rootfs before libcontainer's in-root
    // resolution sees it; refuse it outright rather than normalise it away.
    if destination.components().any(|c| c == Component::ParentDir) {
        return Err(BundleError::EscapingMountDestination {
            index,
            destination: destination.to_path_buf(),
        });
    }
    Ok(())
}

fn check_id_ranges(kind: &'static str, ranges: &[(u64, u64)]) -> Result<(), BundleError> {
    for (index, &(start, size)) in ranges.iter().enumerate() {
        if size == 0 {
            return Err(BundleError::EmptyIdMapping { kind, index });
        }
        if start + size > 1 << 32 {
            return Err(BundleError::OverflowingIdMapping { kind, index });
        }
        for (other, &(s2, n2)) in ranges.iter().enumerate().take(index) {
            if start < s2 + n2 && s2 < start + size {
                return Err(BundleError::OverlappingIdMapping { kind, index, other });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_from(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).expect("test spec parses")
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        })
    }

    #[test]
    fn accepts_minimal_spec() {
        validate(&spec_from(base())).unwrap();
    }

    #[test]
    fn table_of_refusals() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            (
                "version",
                serde_json::json!({"ociVersion": "0.9"}),
                "ociVersion",
            ),
            (
                "no args",
                serde_json::json!({"process": {"args": [], "cwd": "/", "user": {"uid": 0, "gid": 0}}}),
                "process.args",
            ),
            (
                "relative cwd",
                serde_json::json!({"process": {"args": ["x"], "cwd": "tmp", "user": {"uid": 0, "gid": 0}}}),
                "process.cwd",
            ),
            (
                "escaping mount",
                serde_json::json!({"mounts": [{"destination": "/../../etc", "type": "bind", "source": "/tmp"}]}),
                "mounts[0].destination",
            ),
            (
                "relative mount",
                serde_json::json!({"mounts": [{"destination": "etc", "type": "bind", "source": "/tmp"}]}),
                "mounts[0].destination",
            ),
            (
                "mapping without userns",
                serde_json::json!({"linux": {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 10}]}}),
                "linux.uidMappings",
            ),
            (
                "empty mapping",
                serde_json::json!({"linux": {"namespaces": [{"type": "user"}], "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 0}]}}),
                "linux.uidMappings[0]",
            ),
            (
                "rootfs propagation",
                serde_json::json!({"linux": {"rootfsPropagation": "rshard"}}),
                "linux.rootfsPropagation",
            ),
            (
                "overlap",
                serde_json::json!({"linux": {"namespaces": [{"type": "user"}], "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 10}, {"containerID": 5, "hostID": 200000, "size": 10}]}}),
                "linux.gidMappings[1]",
            ),
        ];
        for (name, patch, field) in cases {
            let mut json = base();
            for (k, v) in patch.as_object().unwrap() {
                json[k] = v.clone();
            }
            let err = validate(&spec_from(json)).expect_err(name).to_string();
            assert!(err.contains(field), "{name}: {err:?} should name {field}");
        }
    }

    #[test]
    fn missing_rootfs_is_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("config.json"),
            serde_json::to_vec(&base()).unwrap(),
        )
        .unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("root.path"), "{err}");
    }

    #[test]
    fn malformed_json_is_reported_with_position() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("config.json"), b"{\"ociVersion\": ").unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(matches!(err, BundleError::ParseConfig { .. }));
    }
}
