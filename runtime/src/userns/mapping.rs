//! From an allocated host range to the spec's user namespace: pure, so the profile
//! check can run it before any side effect and unit tests need no root.

use oci_spec::runtime::{
    LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType, Spec,
};

use super::{HostRange, UsernsError};

/// What [`inject`] changed, for the audit event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Injection {
    /// The spec had no `user` entry in `linux.namespaces`.
    pub added_namespace: bool,
    /// The spec's own (non-root) uid and gid mappings, replaced by the range's.
    pub replaced: Option<(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>)>,
}

/// The host ids a spec's own uid/gid mappings (a new user namespace, not one joined
/// by path) take from `pool`, as `(field, range)`: they must be reserved in the
/// range database like an allocation, or two containers could share host ids.
pub fn explicit_in_pool(spec: &Spec, pool: HostRange) -> Vec<(String, HostRange)> {
    let Some(linux) = spec.linux().as_ref() else {
        return Vec::new();
    };
    let new_userns = linux.namespaces().as_ref().is_some_and(|nss| {
        nss.iter()
            .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none())
    });
    if !new_userns {
        return Vec::new();
    }
    let fields = [
        ("uidMappings", linux.uid_mappings()),
        ("gidMappings", linux.gid_mappings()),
    ];
    let mut out = Vec::new();
    for (name, maps) in fields {
        for (i, m) in maps.iter().flatten().enumerate() {
            let range = HostRange {
                start: m.host_id(),
                size: m.size(),
            };
            if range.size > 0 && range.overlaps(&pool) {
                out.push((format!("linux.{name}[{i}]"), range));
            }
        }
    }
    out
}

/// One uid and one gid mapping: container ids `0 .. size` onto `range.start ..`.
/// `size` is clamped to the range, so the mapping never reaches outside it.
pub fn mappings_for(range: HostRange, size: u32) -> (Vec<LinuxIdMapping>, Vec<LinuxIdMapping>) {
    let mapping = LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(range.start)
        .size(size.min(range.size))
        .build()
        .expect("every LinuxIdMapping field has a value");
    (vec![mapping], vec![mapping])
}

/// Gives the spec a new user namespace mapping container ids `0 .. range.size` onto
/// `range`, for uids and gids alike.
///
/// Refused: a spec whose own mappings put any container id on host id 0 (container
/// root would be host root; a mapped host root anywhere lets that container user own
/// host root's files), a spec that joins an existing user namespace (its mappings are
/// not ours to choose), and a spec without a `linux` section.
pub fn inject(spec: &mut Spec, range: HostRange) -> Result<Injection, UsernsError> {
    if range.size == 0 {
        return Err(UsernsError::EmptyRange {
            start: range.start,
            size: range.size,
        });
    }
    check_no_host_root(spec)?;
    let linux = spec
        .linux_mut()
        .as_mut()
        .ok_or(UsernsError::NoLinuxSection)?;

    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    let mut added_namespace = false;
    match namespaces
        .iter()
        .find(|ns| ns.typ() == LinuxNamespaceType::User)
    {
        Some(ns) => {
            if let Some(path) = ns.path() {
                return Err(UsernsError::JoinsUserNamespace {
                    path: path.display().to_string(),
                });
            }
        }
        None => {
            let mut user = LinuxNamespace::default();
            user.set_typ(LinuxNamespaceType::User);
            user.set_path(None);
            namespaces.push(user);
            added_namespace = true;
        }
    }
    linux.set_namespaces(Some(namespaces));

    let old_uid = linux.uid_mappings().clone().unwrap_or_default();
    let old_gid = linux.gid_mappings().clone().unwrap_or_default();
    let (uid, gid) = mappings_for(range, range.size);
    let replaced =
        if (old_uid.is_empty() && old_gid.is_empty()) || (old_uid == uid && old_gid == gid) {
            None
        } else {
            Some((old_uid, old_gid))
        };
    linux.set_uid_mappings(Some(uid));
    linux.set_gid_mappings(Some(gid));
    Ok(Injection {
        added_namespace,
        replaced,
    })
}

/// The first uid or gid mapping of the spec that covers host id 0.
pub fn check_no_host_root(spec: &Spec) -> Result<(), UsernsError> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    for (field, mappings) in [
        ("uidMappings", linux.uid_mappings()),
        ("gidMappings", linux.gid_mappings()),
    ] {
        for (index, m) in mappings.iter().flatten().enumerate() {
            // host_id 0 with size 0 maps nothing; the kernel refuses it anyway.
            if m.host_id() == 0 && m.size() > 0 {
                return Err(UsernsError::MapsHostRoot {
                    field,
                    index,
                    container_id: m.container_id(),
                    size: m.size(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RANGE: HostRange = HostRange {
        start: 200_000,
        size: 65536,
    };

    fn spec(linux: serde_json::Value) -> Spec {
        let mut v = json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
        });
        if !linux.is_null() {
            v["linux"] = linux;
        }
        serde_json::from_value(v).unwrap()
    }

    fn map(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(s)
            .build()
            .unwrap()
    }

    fn user_namespaces(spec: &Spec) -> usize {
        spec.linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .iter()
            .flatten()
            .filter(|n| n.typ() == LinuxNamespaceType::User)
            .count()
    }

    #[test]
    fn mappings_for_maps_root_to_range_start_and_clamps() {
        let table = [
            (RANGE, 65536, map(0, 200_000, 65536)),
            (RANGE, 1000, map(0, 200_000, 1000)),
            (RANGE, 1 << 20, map(0, 200_000, 65536)),
            (HostRange { start: 1, size: 1 }, 5, map(0, 1, 1)),
        ];
        for (range, size, want) in table {
            let (uid, gid) = mappings_for(range, size);
            assert_eq!(uid, vec![want], "{range:?} size {size}");
            assert_eq!(gid, vec![want], "{range:?} size {size}");
        }
    }

    #[test]
    fn inject_adds_namespace_and_mappings_to_a_bare_spec() {
        let mut s = spec(json!({"namespaces": [{"type": "pid"}, {"type": "mount"}]}));
        let inj = inject(&mut s, RANGE).unwrap();
        assert_eq!(
            inj,
            Injection {
                added_namespace: true,
                replaced: None
            }
        );
        assert_eq!(user_namespaces(&s), 1);
        let linux = s.linux().as_ref().unwrap();
        assert_eq!(
            linux.uid_mappings().as_deref(),
            Some(&[map(0, 200_000, 65536)][..])
        );
        assert_eq!(
            linux.gid_mappings().as_deref(),
            Some(&[map(0, 200_000, 65536)][..])
        );
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 3);
    }

    #[test]
    fn inject_keeps_an_existing_user_namespace_entry_and_is_idempotent() {
        let mut s = spec(json!({"namespaces": [{"type": "user"}]}));
        let first = inject(&mut s, RANGE).unwrap();
        assert!(!first.added_namespace);
        let again = inject(&mut s, RANGE).unwrap();
        assert_eq!(again, Injection::default());
        assert_eq!(user_namespaces(&s), 1);
    }

    #[test]
    fn inject_replaces_unprivileged_mappings_and_reports_them() {
        let mut s = spec(json!({
            "namespaces": [{"type": "user"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 1000}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 1000}]
        }));
        let inj = inject(&mut s, RANGE).unwrap();
        assert_eq!(
            inj.replaced,
            Some((vec![map(0, 100_000, 1000)], vec![map(0, 100_000, 1000)]))
        );
        let linux = s.linux().as_ref().unwrap();
        assert_eq!(
            linux.uid_mappings().as_deref(),
            Some(&[map(0, 200_000, 65536)][..])
        );
    }

    #[test]
    fn inject_refuses_mappings_onto_host_root() {
        let table = [
            // container root is host root
            (
                json!({"uidMappings": [{"containerID": 0, "hostID": 0, "size": 65536}]}),
                "uidMappings",
                0,
            ),
            // gid only
            (
                json!({"gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1},
                                        {"containerID": 1, "hostID": 0, "size": 1}]}),
                "gidMappings",
                1,
            ),
            // some container user is host root
            (
                json!({"uidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}]}),
                "uidMappings",
                0,
            ),
        ];
        for (mut linux, field, index) in table {
            linux["namespaces"] = json!([{"type": "user"}]);
            let mut s = spec(linux.clone());
            let before = s.clone();
            let err = inject(&mut s, RANGE).unwrap_err();
            assert!(
                matches!(err, UsernsError::MapsHostRoot { field: f, index: i, .. }
                    if f == field && i == index),
                "{linux}: {err:?}"
            );
            assert!(err.to_string().contains("host root"), "{err}");
            assert_eq!(s, before, "a refused spec is left untouched");
        }
    }

    #[test]
    fn inject_refuses_joining_an_existing_user_namespace() {
        let mut s = spec(json!({"namespaces": [{"type": "user", "path": "/proc/1/ns/user"}]}));
        let err = inject(&mut s, RANGE).unwrap_err();
        assert!(
            matches!(err, UsernsError::JoinsUserNamespace { ref path } if path == "/proc/1/ns/user"),
            "{err:?}"
        );
    }

    #[test]
    fn inject_refuses_a_spec_without_linux_and_an_empty_range() {
        let mut s = spec(serde_json::Value::Null);
        assert!(matches!(
            inject(&mut s, RANGE).unwrap_err(),
            UsernsError::NoLinuxSection
        ));
        let mut s = spec(json!({}));
        assert!(matches!(
            inject(&mut s, HostRange { start: 5, size: 0 }).unwrap_err(),
            UsernsError::EmptyRange { .. }
        ));
    }
}
