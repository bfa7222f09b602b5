//! `user_namespace.*`: container root is never host root, and container ids map into the
//! profile's host range. When the spec has no user namespace the runtime is asked to
//! allocate one (`UsernsRequest`); the range itself is chosen by the runtime, which alone
//! knows what other containers hold.

use serde::Serialize;
use serde_json::Value;

use super::user_namespace as find_userns;
use crate::landlock::plan::Compat;
use crate::profile::host::{HostFacts, NsInodeLookup};
use crate::profile::schema::{HostIdRange, OnMissing, UserNamespaceSection};
use crate::profile::violation::{Injection, RuleMeta, Violation};

/// Annotation containerd's CRI puts on every container of a pod.
pub const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

/// Ask the runtime to create a user namespace with `size` ids, taken from `host_range`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsernsRequest {
    pub size: u32,
    pub host_range: HostIdRange,
    /// Containers of one pod share a sandbox id and should share one allocation.
    pub sandbox_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UsernsApplyError {
    #[error("allocated host ids {start}+{size} fall outside the profile's range {range_start}+{range_size}")]
    OutsideRange {
        start: u32,
        size: u32,
        range_start: u32,
        range_size: u32,
    },
    #[error("cannot rebuild the spec with user namespace mappings")]
    Rebuild(#[source] serde_json::Error),
}

impl UsernsRequest {
    /// `spec` with a new user namespace mapping container ids `0..size` to host ids
    /// `host_start..host_start+size`, once the runtime has allocated that range.
    pub fn apply(
        &self,
        spec: &oci_spec::runtime::Spec,
        host_start: u32,
    ) -> Result<oci_spec::runtime::Spec, UsernsApplyError> {
        let end = u64::from(host_start) + u64::from(self.size);
        let range_end = u64::from(self.host_range.start) + u64::from(self.host_range.size);
        if host_start < self.host_range.start || end > range_end || host_start == 0 {
            return Err(UsernsApplyError::OutsideRange {
                start: host_start,
                size: self.size,
                range_start: self.host_range.start,
                range_size: self.host_range.size,
            });
        }
        let mut doc = serde_json::to_value(spec).map_err(UsernsApplyError::Rebuild)?;
        let mapping =
            serde_json::json!([{ "containerID": 0, "hostID": host_start, "size": self.size }]);
        let linux = super::ensure_object(&mut doc, "/linux");
        linux.insert("uidMappings".into(), mapping.clone());
        linux.insert("gidMappings".into(), mapping);
        let ns = linux
            .entry("namespaces")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = ns {
            list.push(serde_json::json!({ "type": "user" }));
        }
        serde_json::from_value(doc).map_err(UsernsApplyError::Rebuild)
    }
}

/// Whether the runtime must allocate a user namespace for this spec.
pub fn request(doc: &Value, section: &UserNamespaceSection) -> Option<UsernsRequest> {
    if !section.required || section.on_missing != OnMissing::Inject || find_userns(doc).is_some() {
        return None;
    }
    Some(UsernsRequest {
        size: section.container_size,
        host_range: section.host_range,
        sandbox_id: doc
            .pointer("/annotations")
            .and_then(|a| a.get(SANDBOX_ID_ANNOTATION))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

pub fn check(
    doc: &Value,
    section: &UserNamespaceSection,
    requested: bool,
    meta: RuleMeta,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(ns) = find_userns(doc) else {
        if section.required && !requested {
            out.push(meta.violation(
                "user_namespace.required",
                "linux.namespaces",
                "no user namespace",
                "a user namespace",
                "spec.hostUsers",
            ));
        }
        return out;
    };
    if ns.get("path").is_some() {
        return out;
    }
    let lo = u64::from(section.host_range.start);
    let hi = lo + u64::from(section.host_range.size);
    for field in ["uidMappings", "gidMappings"] {
        let maps = doc
            .pointer(&format!("/linux/{field}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if maps.is_empty() && section.required {
            out.push(meta.violation(
                "user_namespace.required",
                format!("linux.{field}"),
                "no mapping",
                format!("ids in {lo}-{}", hi - 1),
                "spec.hostUsers",
            ));
        }
        for (i, m) in maps.iter().enumerate() {
            let host = m.get("hostID").and_then(Value::as_u64).unwrap_or(0);
            let size = m.get("size").and_then(Value::as_u64).unwrap_or(0);
            let path = format!("linux.{field}[{i}]");
            let shown = format!("hostID {host} size {size}");
            if host == 0 {
                out.push(meta.violation(
                    "user_namespace.host_root",
                    path,
                    shown,
                    "no mapping to host id 0",
                    "spec.hostUsers",
                ));
            } else if host < lo || host.saturating_add(size) > hi {
                out.push(meta.violation(
                    "user_namespace.host_range",
                    path,
                    shown,
                    format!("host ids {lo}-{}", hi - 1),
                    "spec.hostUsers",
                ));
            }
        }
    }
    out
}

/// Bind volumes of a container whose user namespace the runtime allocates: the
/// runtime idmaps each bind source so host-root-owned files look root-owned inside.
/// tmpfs can be idmapped only from Linux 6.3; before that such a volume (a Secret,
/// ConfigMap, memory-backed emptyDir, /dev/shm) would be bound plainly and show
/// every file as the overflow id. `idmap_compat = hard` refuses it, naming the
/// requirement; `best_effort` admits the plain bind and says so in a note.
pub fn idmap_volumes(
    doc: &Value,
    section: &UserNamespaceSection,
    host: &HostFacts,
    lookup: &dyn NsInodeLookup,
    meta: RuleMeta,
) -> (Vec<Violation>, Vec<Injection>) {
    let (mut violations, mut notes) = (Vec::new(), Vec::new());
    if host.tmpfs_idmap {
        return (violations, notes);
    }
    let mounts = doc
        .pointer("/mounts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, m) in mounts.iter().enumerate() {
        let opts: Vec<&str> = m
            .get("options")
            .and_then(Value::as_array)
            .map(|o| o.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let is_bind = m.get("type").and_then(Value::as_str) == Some("bind")
            || opts.iter().any(|o| *o == "bind" || *o == "rbind");
        let Some(source) = m.get("source").and_then(Value::as_str) else {
            continue;
        };
        if !is_bind || !source.starts_with('/') {
            continue;
        }
        // A source that cannot be inspected is not ours to judge: create fails on it.
        if !lookup
            .on_tmpfs(std::path::Path::new(source))
            .unwrap_or(false)
        {
            continue;
        }
        let path = format!("mounts[{i}].source");
        let kernel = &host.kernel_release;
        match section.idmap_compat {
            Compat::Hard => violations.push(meta.violation(
                "user_namespace.idmap",
                path,
                format!("{source} is on tmpfs, which Linux {kernel} cannot idmap"),
                "a volume the kernel can idmap (tmpfs: Linux >= 6.3; or a disk filesystem such as ext4, xfs, btrfs)",
                "spec.hostUsers",
            )),
            Compat::BestEffort => notes.push(Injection::new(
                "user_namespace.idmap",
                path,
                format!(
                    "not enforced: {source} is on tmpfs, which Linux {kernel} cannot idmap \
                     (needs >= 6.3); bound without idmapping, its files keep their host \
                     owners (shown as 65534 inside)"
                ),
            )),
        }
    }
    (violations, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::rules::test_util::*;

    fn section(on_missing: OnMissing) -> UserNamespaceSection {
        UserNamespaceSection {
            reason: "r".into(),
            mode: None,
            required: true,
            on_missing,
            host_range: HostIdRange {
                start: 100_000,
                size: 65536 * 10,
            },
            container_size: 65536,
            idmap_compat: Compat::Hard,
        }
    }

    /// Sources under /tmpfs are on tmpfs.
    struct Tmpfs;
    impl NsInodeLookup for Tmpfs {
        fn inode(&self, _: &std::path::Path) -> std::io::Result<u64> {
            Err(std::io::ErrorKind::NotFound.into())
        }
        fn on_tmpfs(&self, p: &std::path::Path) -> std::io::Result<bool> {
            Ok(p.starts_with("/tmpfs"))
        }
    }

    #[test]
    fn tmpfs_volumes_need_a_kernel_that_idmaps_tmpfs() {
        let doc: Value = serde_json::from_str(
            r#"{"mounts":[
                {"destination":"/proc","type":"proc","source":"proc"},
                {"destination":"/a","type":"bind","source":"/data/a","options":["rbind"]},
                {"destination":"/s","type":"bind","source":"/tmpfs/secret","options":["rbind","ro"]},
                {"destination":"/t","type":"tmpfs","source":"tmpfs"},
                {"destination":"/m","source":"/tmpfs/shm","options":["bind"]}]}"#,
        )
        .unwrap();
        let meta = RuleMeta {
            reason: "r",
            mode: crate::profile::schema::Mode::Enforce,
        };
        let mut host = crate::profile::host::fake::host();
        let hard = section(OnMissing::Inject);
        let (v, n) = idmap_volumes(&doc, &hard, &host, &Tmpfs, meta);
        assert!(
            v.is_empty() && n.is_empty(),
            "6.3+: every volume is idmapped"
        );

        host.tmpfs_idmap = false;
        host.kernel_release = "6.1.0-27-amd64".into();
        let (v, n) = idmap_volumes(&doc, &hard, &host, &Tmpfs, meta);
        assert!(n.is_empty());
        let paths: Vec<&str> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["mounts[2].source", "mounts[4].source"]);
        assert!(v[0].actual.contains("6.1.0-27-amd64"), "{:?}", v[0]);
        assert!(v[0].allowed.contains("Linux >= 6.3"), "{:?}", v[0]);

        let best = UserNamespaceSection {
            idmap_compat: Compat::BestEffort,
            ..hard
        };
        let (v, n) = idmap_volumes(&doc, &best, &host, &Tmpfs, meta);
        assert!(v.is_empty());
        assert_eq!(n.len(), 2);
        assert!(
            n[0].change.starts_with("not enforced: /tmpfs/secret"),
            "{n:?}"
        );
    }

    #[test]
    fn table() {
        let mapped = |h: u64| {
            format!(
                r#"{{"linux":{{"namespaces":[{{"type":"user"}}],
                "uidMappings":[{{"containerID":0,"hostID":{h},"size":65536}}],
                "gidMappings":[{{"containerID":0,"hostID":{h},"size":65536}}]}}}}"#
            )
        };
        let cases: Vec<(String, bool, Vec<&str>)> = vec![
            ("{}".into(), false, vec!["user_namespace.required"]),
            ("{}".into(), true, vec![]),
            (mapped(100_000), false, vec![]),
            (
                mapped(0),
                false,
                vec!["user_namespace.host_root", "user_namespace.host_root"],
            ),
            (
                mapped(50_000),
                false,
                vec!["user_namespace.host_range", "user_namespace.host_range"],
            ),
            (
                r#"{"linux":{"namespaces":[{"type":"user","path":"/proc/42/ns/user"}]}}"#.into(),
                false,
                vec![],
            ),
            (
                r#"{"linux":{"namespaces":[{"type":"user"}]}}"#.into(),
                false,
                vec!["user_namespace.required", "user_namespace.required"],
            ),
        ];
        for (spec, requested, want) in cases {
            let got = check(&doc(&spec), &section(OnMissing::Refuse), requested, meta());
            assert_eq!(ids(&got), want, "{spec}");
        }
    }

    #[test]
    fn apply_writes_mappings_inside_the_range() {
        let r = request(&doc("{}"), &section(OnMissing::Inject)).unwrap();
        let spec: oci_spec::runtime::Spec =
            serde_json::from_str(r#"{"ociVersion":"1.0.2","root":{"path":"r"}}"#).unwrap();
        let out = serde_json::to_value(r.apply(&spec, 165_536).unwrap()).unwrap();
        assert_eq!(out["linux"]["uidMappings"][0]["hostID"], 165_536);
        assert_eq!(out["linux"]["namespaces"][0]["type"], "user");
        assert!(check(&out, &section(OnMissing::Refuse), false, meta()).is_empty());
        assert!(r.apply(&spec, 0).is_err());
        assert!(r.apply(&spec, 100_000 + 65536 * 10).is_err());
    }

    #[test]
    fn request_only_when_silent_and_injecting() {
        let s = section(OnMissing::Inject);
        let r = request(
            &doc(r#"{"annotations":{"io.kubernetes.cri.sandbox-id":"abc"}}"#),
            &s,
        )
        .unwrap();
        assert_eq!(r.size, 65536);
        assert_eq!(r.sandbox_id.as_deref(), Some("abc"));
        assert!(request(&doc(r#"{"linux":{"namespaces":[{"type":"user"}]}}"#), &s).is_none());
        assert!(request(&doc("{}"), &section(OnMissing::Refuse)).is_none());
    }
}
