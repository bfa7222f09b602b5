//! `stockade spec --profile P`: a config.json that passes P, built by hardening a minimal
//! spec with P itself and checking the result, so the generator cannot drift from the
//! rules.

use oci_spec::runtime::Spec;
use serde_json::json;

use super::host::{HostFacts, NsInodeLookup};
use super::lint::{K8S_MASKED_PATHS, K8S_READONLY_PATHS};
use super::plan::{evaluate, Decision, EvaluateError, Hardened, Refusal};
use super::schema::{NsType, Profile, RootPolicy};

/// Capabilities `runc spec` gives a container, used when the profile has no
/// `[capabilities]` section.
const RUNC_CAPABILITIES: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
/// Namespaces `runc spec` gives a container, used when the profile has no `[namespaces]`
/// section.
const RUNC_NAMESPACES: [NsType; 5] = [
    NsType::Pid,
    NsType::Network,
    NsType::Ipc,
    NsType::Uts,
    NsType::Mount,
];

#[derive(Debug, thiserror::Error)]
pub enum SpecGenError {
    #[error("cannot build the base spec")]
    BuildBase(#[source] serde_json::Error),
    #[error("cannot evaluate the generated spec")]
    Evaluate(#[source] EvaluateError),
    #[error("the profile refuses every spec on this host:\n{0}")]
    Unsatisfiable(Refusal),
}

/// A spec running `args` that `profile` admits on `host`, with the profile's injections
/// applied. User namespace mappings are left to the runtime (see `Hardened::userns`).
pub fn compliant_spec(
    profile: &Profile,
    host: &HostFacts,
    ns: &dyn NsInodeLookup,
    args: &[String],
) -> Result<Box<Hardened>, SpecGenError> {
    // A section the profile lacks constrains nothing; the generator then falls back to
    // the shape of `runc spec` (root, runtime namespaces, Kubernetes' masked paths), kept
    // as safe as an ordinary image allows.
    let (uid, gid) = match &profile.process {
        Some(pr) if pr.root == RootPolicy::Never => (
            pr.uid_ranges.first().map_or(1000, |r| r.min.max(1)),
            pr.gid_ranges.first().map_or(1000, |r| r.min.max(1)),
        ),
        _ => (0, 0),
    };
    let caps: Vec<&str> = match &profile.capabilities {
        Some(c) => c.allowed.iter().map(String::as_str).collect(),
        None => RUNC_CAPABILITIES.to_vec(),
    };
    let mut namespaces: Vec<serde_json::Value> = match &profile.namespaces {
        Some(n) => {
            let mut kinds = n.required.clone();
            kinds.extend(n.inject.iter().map(|i| i.kind));
            kinds.sort();
            kinds.dedup();
            kinds
                .iter()
                .map(|n| json!({ "type": n.oci_name() }))
                .collect()
        }
        None => RUNC_NAMESPACES
            .iter()
            .map(|n| json!({ "type": n.oci_name() }))
            .collect(),
    };
    if namespaces.is_empty() {
        namespaces.push(json!({ "type": "mount" }));
    }
    let (readonly_rootfs, masked, readonly_paths) = match &profile.filesystem {
        Some(f) => (
            f.readonly_rootfs,
            f.masked_paths.clone(),
            f.readonly_paths.clone(),
        ),
        None => (
            false,
            K8S_MASKED_PATHS.map(str::to_owned).to_vec(),
            K8S_READONLY_PATHS.map(str::to_owned).to_vec(),
        ),
    };
    let resources = match &profile.cgroups {
        Some(g) => json!({
            "memory": { "limit": g.memory_bytes.default },
            "cpu": {
                "quota": g.cpu_millicores.default * 100,
                "period": 100_000,
            },
            "pids": { "limit": g.pids.default },
        }),
        None => json!({}),
    };
    let mut base = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": uid, "gid": gid },
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "noNewPrivileges": true,
            "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
        },
        "root": { "path": "rootfs", "readonly": readonly_rootfs },
        "hostname": "stockade",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
        ],
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": masked,
            "readonlyPaths": readonly_paths,
            "resources": resources,
        },
    });
    if let Some(filter) = &profile.seccomp_filter {
        base["linux"]["seccomp"] = filter.to_oci_json();
    }
    let spec: Spec = serde_json::from_value(base).map_err(SpecGenError::BuildBase)?;
    match evaluate(&spec, profile, host, ns).map_err(SpecGenError::Evaluate)? {
        Decision::Admitted(h) => Ok(h),
        Decision::Refused(r) => Err(SpecGenError::Unsatisfiable(r)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::host::fake::{host, FakeNs};
    use crate::profile::tests::shipped;

    #[test]
    fn every_shipped_profile_has_a_compliant_spec() {
        let h = host();
        for name in ["restricted", "baseline", "default"] {
            let p = shipped(name);
            let out = compliant_spec(&p, &h, &FakeNs::new(&h), &["sh".into()]);
            let hardened = out.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(hardened.userns.is_some(), "{name}");
        }
    }

    #[test]
    fn a_profile_without_sections_gets_runc_shaped_spec() {
        let h = host();
        let out =
            compliant_spec(&shipped("unconfined"), &h, &FakeNs::new(&h), &["sh".into()]).unwrap();
        assert!(out.injected.is_empty() && out.userns.is_none() && out.landlock.is_none());
        let spec = serde_json::to_value(&out.spec).unwrap();
        assert!(spec["linux"]["seccomp"].is_null());
        assert_eq!(spec["linux"]["namespaces"].as_array().unwrap().len(), 5);
        assert_eq!(spec["process"]["noNewPrivileges"], true);
        assert_eq!(
            spec["linux"]["maskedPaths"].as_array().unwrap().len(),
            crate::profile::lint::K8S_MASKED_PATHS.len()
        );
    }
}
