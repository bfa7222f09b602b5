//! Where a container's cgroup goes: `linux.cgroupsPath` read under the cgroup driver
//! the caller chose (runc's `--systemd-cgroup`), checked and resolved before anything
//! on the host changes. Pure.
//!
//! - **cgroupfs** (default): a path in the hierarchy. runc's shape; a relative path
//!   is taken from the hierarchy root (libcgroups does so), and is written back
//!   absolute. A path holding `:` is refused: it is the systemd form
//!   `slice:prefix:name` given without the systemd driver, and read as a path it would
//!   become one directory with colons at the root, outside the pod and QoS cgroups it
//!   names (kubelet with `cgroupDriver: systemd` and a runtime without it).
//! - **systemd**: `slice:prefix:name` (runc's specconv), e.g. kubelet's
//!   `kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>`. The container runs in
//!   the transient scope unit `<prefix>-<name>.scope` inside `slice`, which systemd
//!   creates; the slice expands by its `-` separated prefixes (systemd.slice(5), runc's
//!   `ExpandSlice`). An absolute path is refused, as runc refuses it.
//!
//! A spec without `cgroupsPath` gets `/<id>` (cgroupfs) or
//! `system.slice:stockade:<id>` (systemd, runc's default with our prefix).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Which cgroup manager places and limits the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupDriver {
    /// Directories written directly in the cgroup filesystem.
    Cgroupfs,
    /// A transient scope unit created by systemd over D-Bus.
    Systemd,
}

impl fmt::Display for CgroupDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupDriver::Cgroupfs => "cgroupfs",
            CgroupDriver::Systemd => "systemd",
        })
    }
}

/// Scope prefix for a systemd-driven container whose spec names no cgroupsPath.
pub const DEFAULT_SCOPE_PREFIX: &str = "stockade";
/// Slice of a systemd-driven container whose cgroupsPath leaves it empty (runc's).
pub const DEFAULT_SLICE: &str = "system.slice";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error(
        "linux.cgroupsPath {path:?} has the systemd form slice:prefix:name, but the \
         cgroupfs driver is in use: pass --systemd-cgroup (Stockade's shim: \
         systemd_cgroup = true in its options file; runc's shim: SystemdCgroup = true) \
         or give a cgroup path such as /kubepods/besteffort/pod<uid>/<id>"
    )]
    SystemdFormWithoutDriver { path: String },
    #[error(
        "linux.cgroupsPath {path:?}: the systemd cgroup driver (--systemd-cgroup) expects \
         slice:prefix:name, e.g. kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>"
    )]
    NotSystemdForm { path: String },
    #[error(
        "linux.cgroupsPath {path:?}: invalid slice {slice:?}: a slice name ends in \
         \".slice\", has no \"/\" and no empty \"-\" separated component"
    )]
    InvalidSlice { path: String, slice: String },
    #[error(
        "linux.cgroupsPath {path:?}: {part} {value:?} is not supported: it must be \
         non-empty ASCII letters, digits, \"-\", \"_\" and \".\"{extra}"
    )]
    InvalidUnitPart {
        path: String,
        part: &'static str,
        value: String,
        extra: &'static str,
    },
    #[error(
        "the systemd cgroup driver (--systemd-cgroup) needs systemd as this host's init \
         and service manager: {marker} does not exist"
    )]
    NoSystemd { marker: &'static str },
    #[error("linux.cgroupsPath {path:?} is not valid UTF-8")]
    NotUtf8 { path: String },
    #[error("linux.cgroupsPath {path:?} must not contain \"..\"")]
    DotDot { path: String },
}

/// A checked placement: what the hardened spec's `linux.cgroupsPath` becomes, and the
/// cgroup directory (relative to each hierarchy's root) the container ends up in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub driver: CgroupDriver,
    /// Value for `linux.cgroupsPath` in the hardened spec.
    pub spec_path: String,
    /// Directory under the cgroup mount, e.g.
    /// `/kubepods.slice/kubepods-besteffort.slice/.../cri-containerd-<id>.scope`
    /// (systemd: where systemd puts the unit when it is the root of the hierarchy).
    pub cgroup: PathBuf,
    /// The transient unit (systemd only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// Directory that exists only when systemd is PID 1 (sd_booted(3)).
pub const SYSTEMD_MARKER: &str = "/run/systemd/system";

/// Whether this host runs systemd as its service manager (sd_booted(3)).
pub fn systemd_booted() -> bool {
    Path::new(SYSTEMD_MARKER).is_dir()
}

/// Whether `driver` can work on this host: the systemd driver needs systemd. On
/// cgroup v2 systemd manages the unit's whole cgroup; on v1 (legacy, hybrid) it creates
/// the unit's cgroup in the controllers it manages and the runtime joins the same path
/// in the others (cpuset, freezer, ...), as runc does (libcgroups'
/// `systemd::legacy`, a Stockade patch).
pub fn check_host(driver: CgroupDriver, systemd_booted: bool) -> Result<(), PlacementError> {
    if driver == CgroupDriver::Systemd && !systemd_booted {
        return Err(PlacementError::NoSystemd {
            marker: SYSTEMD_MARKER,
        });
    }
    Ok(())
}

/// Check `cgroups_path` under `driver` and resolve where the container's cgroup goes.
pub fn resolve(
    cgroups_path: Option<&Path>,
    driver: CgroupDriver,
    container_id: &str,
) -> Result<Placement, PlacementError> {
    let raw = match cgroups_path {
        None => None,
        Some(p) => Some(p.to_str().ok_or_else(|| PlacementError::NotUtf8 {
            path: p.display().to_string(),
        })?),
    }
    .filter(|s| !s.is_empty());
    match driver {
        CgroupDriver::Cgroupfs => cgroupfs(raw, container_id),
        CgroupDriver::Systemd => {
            let owned;
            let path = match raw {
                Some(p) => p,
                None => {
                    owned = format!("{DEFAULT_SLICE}:{DEFAULT_SCOPE_PREFIX}:{container_id}");
                    &owned
                }
            };
            systemd(path)
        }
    }
}

fn cgroupfs(raw: Option<&str>, container_id: &str) -> Result<Placement, PlacementError> {
    let path = raw.map_or_else(|| format!("/{container_id}"), str::to_owned);
    if path.contains(':') {
        return Err(PlacementError::SystemdFormWithoutDriver { path });
    }
    if Path::new(&path)
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(PlacementError::DotDot { path });
    }
    // libcgroups joins a relative path to the hierarchy root; say so in the spec, so
    // no later reader (libcontainer treats a relative path under a user namespace as
    // a systemd path) takes it for anything else.
    let spec_path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    Ok(Placement {
        driver: CgroupDriver::Cgroupfs,
        cgroup: PathBuf::from(&spec_path),
        spec_path,
        unit: None,
    })
}

fn systemd(path: &str) -> Result<Placement, PlacementError> {
    let parts: Vec<&str> = path.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(PlacementError::NotSystemdForm { path: path.into() });
    };
    let slice = if slice.is_empty() {
        DEFAULT_SLICE
    } else {
        slice
    };
    let slice_dir = expand_slice(slice).ok_or_else(|| PlacementError::InvalidSlice {
        path: path.into(),
        slice: slice.into(),
    })?;
    check_unit_part(path, "prefix", prefix)?;
    // runc makes a slice unit for a name ending in ".slice" (a pod-level cgroup); a
    // container always gets a scope here, so that form is refused, not misread.
    check_unit_part(path, "name", name)?;
    if name.ends_with(".slice") {
        return Err(PlacementError::InvalidUnitPart {
            path: path.into(),
            part: "name",
            value: name.into(),
            extra: ", and a container name ending in \".slice\" (a slice unit) is not supported",
        });
    }
    let unit = format!("{prefix}-{name}.scope");
    Ok(Placement {
        driver: CgroupDriver::Systemd,
        spec_path: format!("{slice}:{prefix}:{name}"),
        cgroup: slice_dir.join(&unit),
        unit: Some(unit),
    })
}

/// Unit name characters systemd accepts (systemd.unit(5): ASCII letters, digits, ":",
/// "-", "_", ".", "\\"); ":" separates our fields and "\\" escapes, so both are out.
fn check_unit_part(path: &str, part: &'static str, value: &str) -> Result<(), PlacementError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(PlacementError::InvalidUnitPart {
            path: path.into(),
            part,
            value: value.into(),
            extra: "",
        })
    }
}

/// The cgroup directory of a slice unit: `a-b-c.slice` lives in
/// `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root (systemd.slice(5)).
pub fn expand_slice(slice: &str) -> Option<PathBuf> {
    const SUFFIX: &str = ".slice";
    let stem = slice.strip_suffix(SUFFIX)?;
    if stem.is_empty() || slice.contains('/') {
        return None;
    }
    if stem == "-" {
        return Some(PathBuf::from("/"));
    }
    let mut path = PathBuf::from("/");
    let mut prefix = String::new();
    for component in stem.split('-') {
        if component.is_empty()
            || !component
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'))
        {
            return None;
        }
        path.push(format!("{prefix}{component}{SUFFIX}"));
        prefix.push_str(component);
        prefix.push('-');
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sd(path: &str) -> Result<Placement, PlacementError> {
        resolve(Some(Path::new(path)), CgroupDriver::Systemd, "c1")
    }

    fn fs(path: Option<&str>) -> Result<Placement, PlacementError> {
        resolve(path.map(Path::new), CgroupDriver::Cgroupfs, "c1")
    }

    #[test]
    fn slices_expand_by_dash_prefixes() {
        let cases = [
            ("system.slice", Some("/system.slice")),
            (
                "test-a-b.slice",
                Some("/test.slice/test-a.slice/test-a-b.slice"),
            ),
            (
                "kubepods-besteffort-pod0e1f.slice",
                Some("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0e1f.slice"),
            ),
            // kubelet escapes the pod uid's dashes as underscores.
            (
                "kubepods-pod12_34.slice",
                Some("/kubepods.slice/kubepods-pod12_34.slice"),
            ),
            ("-.slice", Some("/")),
            (".slice", None),
            ("slice", None),
            ("system", None),
            ("test--a.slice", None),
            ("-test.slice", None),
            ("test-.slice", None),
            ("a/b.slice", None),
            ("a:b.slice", None),
        ];
        for (slice, want) in cases {
            assert_eq!(expand_slice(slice), want.map(PathBuf::from), "{slice}");
        }
    }

    #[test]
    fn kubelet_path_becomes_a_scope_in_the_pod_slice() {
        let p = sd("kubepods-besteffort-pod0e1f.slice:cri-containerd:abc123").unwrap();
        assert_eq!(p.driver, CgroupDriver::Systemd);
        assert_eq!(p.unit.as_deref(), Some("cri-containerd-abc123.scope"));
        assert_eq!(
            p.cgroup,
            PathBuf::from(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0e1f.slice/cri-containerd-abc123.scope"
            )
        );
        assert_eq!(
            p.spec_path,
            "kubepods-besteffort-pod0e1f.slice:cri-containerd:abc123"
        );
    }

    #[test]
    fn systemd_defaults_slice_and_path_like_runc() {
        let p = sd(":docker:c1").unwrap();
        assert_eq!(p.spec_path, "system.slice:docker:c1");
        assert_eq!(p.cgroup, PathBuf::from("/system.slice/docker-c1.scope"));
        let p = resolve(None, CgroupDriver::Systemd, "c1").unwrap();
        assert_eq!(p.spec_path, "system.slice:stockade:c1");
        assert_eq!(p.cgroup, PathBuf::from("/system.slice/stockade-c1.scope"));
        let p = resolve(Some(Path::new("")), CgroupDriver::Systemd, "c1").unwrap();
        assert_eq!(p.unit.as_deref(), Some("stockade-c1.scope"));
    }

    #[test]
    fn systemd_refuses_what_it_cannot_place_exactly() {
        for (path, field) in [
            ("/kubepods/besteffort/pod1/c1", "expects slice:prefix:name"),
            ("system.slice:c1", "expects slice:prefix:name"),
            ("a.slice:b:c:d", "expects slice:prefix:name"),
            ("kubepods.slice/x:p:n", "invalid slice"),
            ("kubepods:p:n", "invalid slice"),
            ("a--b.slice:p:n", "invalid slice"),
            ("system.slice::c1", "prefix \"\""),
            ("system.slice:p/q:c1", "prefix \"p/q\""),
            ("system.slice:p:", "name \"\""),
            ("system.slice:p:../x", "name \"../x\""),
            ("system.slice:p:pod.slice", "slice unit"),
        ] {
            let err = sd(path).unwrap_err().to_string();
            assert!(err.contains("linux.cgroupsPath"), "{path}: {err}");
            assert!(err.contains(field), "{path}: {err}");
        }
    }

    #[test]
    fn systemd_driver_needs_systemd() {
        assert!(check_host(CgroupDriver::Cgroupfs, false).is_ok());
        assert!(check_host(CgroupDriver::Systemd, true).is_ok());
        let e = check_host(CgroupDriver::Systemd, false).unwrap_err();
        assert!(e.to_string().contains("/run/systemd/system"), "{e}");
    }

    #[test]
    fn cgroupfs_refuses_the_systemd_form() {
        let err = fs(Some("kubepods-besteffort-pod1.slice:cri-containerd:c1")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("linux.cgroupsPath"), "{text}");
        assert!(text.contains("--systemd-cgroup"), "{text}");
        assert!(fs(Some("a:b")).is_err());
    }

    #[test]
    fn cgroupfs_paths_are_absolute_in_the_hierarchy() {
        assert_eq!(fs(Some("/k8s/pod1/c1")).unwrap().spec_path, "/k8s/pod1/c1");
        assert_eq!(fs(Some("k8s/c1")).unwrap().spec_path, "/k8s/c1");
        assert_eq!(fs(None).unwrap().spec_path, "/c1");
        assert_eq!(fs(Some("")).unwrap().cgroup, PathBuf::from("/c1"));
        assert!(matches!(
            fs(Some("/k8s/../../etc")),
            Err(PlacementError::DotDot { .. })
        ));
    }
}
