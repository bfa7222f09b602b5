//! Kubernetes manifests for `stockade profile check`: from Pod, Deployment, StatefulSet,
//! DaemonSet, ReplicaSet, Job and CronJob YAML (multi-document), derive for each
//! container the OCI spec containerd's CRI plugin (1.6) would hand the runtime, so the
//! same rules judge it. Pure: text in, specs out.
//!
//! What is derived (see SECURITY-REFERENCE.md, "What the runtime actually receives"):
//! - capabilities: containerd's default set, plus `add`, minus `drop` (`ALL` drops all);
//!   privileged: all of them; inheritable and ambient stay empty;
//! - `allowPrivilegeEscalation: false` → `noNewPrivileges: true` (unset → false);
//! - user: `runAsUser`/`runAsGroup` (container over pod); unset → 0, the image's user
//!   being unknown here, except that `runAsNonRoot: true` makes kubelet refuse a root
//!   image, so a non-root id stands in for it;
//! - every volume is a bind mount: emptyDir, configMap, secret, projected, downwardAPI
//!   and PVCs from `/var/lib/kubelet/pods/<uid>/volumes/...`, hostPath from its path;
//!   `/etc/hosts` and the termination log from the kubelet's pod dir, `/etc/hostname`
//!   and `/etc/resolv.conf` from containerd's sandbox dir; `mountPropagation`
//!   Bidirectional → `rshared`, HostToContainer → `rslave`;
//! - hostNetwork/hostPID/hostIPC: the namespace is joined by path and is the host's;
//!   otherwise the pause container's;
//! - seccompProfile RuntimeDefault → a default-deny filter (Stockade's shipped
//!   `seccomp/default.toml` stands in for containerd's, which additionally allows
//!   io_uring); Unconfined or unset → none; Localhost → the file is on the node, so the
//!   container cannot be judged here (an error);
//! - masked and read-only `/proc` paths: Kubernetes' defaults, none when privileged or
//!   `procMount: Unmasked`; privileged also gets a read-write `/sys` and every device;
//! - sysctls, AppArmor (field or annotation), SELinux options, CPU and memory limits.

use serde::Serialize;
use serde_json::{json, Map, Value};
use std::io;
use std::path::Path;

use super::host::{HostFacts, NsInodeLookup};
use super::lint::{K8S_MASKED_PATHS, K8S_READONLY_PATHS};
use super::schema::NsType;
use super::seccomp_data::SeccompFilter;

/// Where kubelet keeps a pod's files (volumes, /etc/hosts, termination logs).
pub const KUBELET_POD_DIR: &str = "/var/lib/kubelet/pods/POD_UID";
/// Where containerd's CRI plugin keeps a sandbox's files (hostname, resolv.conf).
pub const SANDBOX_DIR: &str = "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/SANDBOX_ID";
/// Namespaces of the pod's pause container; the host's are `/proc/1/ns/*`.
const SANDBOX_NS: &str = "/proc/SANDBOX_PID/ns";

/// containerd's default capability set (pkg/cri/opts `defaultCaps`, as Docker's).
pub const CONTAINERD_DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("not valid YAML")]
    Yaml(#[source] yaml_rust2::ScanError),
    #[error("document {doc}: {what}")]
    Invalid { doc: usize, what: String },
}

/// One container of one workload, with the spec the runtime would receive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerCase {
    /// `Deployment/web`.
    pub workload: String,
    /// 1-based document number in the file.
    pub document: usize,
    pub container: String,
    /// `initContainers` / `ephemeralContainers` entry rather than `containers`.
    pub kind: &'static str,
    /// 1-based line of the container's `name:` in the file, when found.
    pub line: Option<usize>,
    /// Why the spec could not be derived (then `spec` is null).
    pub error: Option<String>,
    #[serde(skip)]
    pub spec: Value,
}

/// The workloads' containers, in file order, and the kinds that hold no pod (skipped).
pub fn containers(
    text: &str,
    runtime_default: Option<&SeccompFilter>,
) -> Result<(Vec<ContainerCase>, Vec<String>), ManifestError> {
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(ManifestError::Yaml)?;
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut search_from = 0;
    for (i, doc) in docs.iter().enumerate() {
        let doc_no = i + 1;
        let v = to_json(doc);
        if v.is_null() {
            continue;
        }
        let invalid = |what: String| ManifestError::Invalid { doc: doc_no, what };
        let kind = v["kind"]
            .as_str()
            .ok_or_else(|| invalid("no kind".into()))?;
        let name = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let template = match kind {
            "Pod" => Some(&v),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                v.pointer("/spec/template")
            }
            "CronJob" => v.pointer("/spec/jobTemplate/spec/template"),
            other => {
                skipped.push(format!("{other}/{name}"));
                continue;
            }
        };
        let template =
            template.ok_or_else(|| invalid(format!("{kind}/{name}: no pod template")))?;
        let mut pod = template
            .get("spec")
            .filter(|s| s.is_object())
            .cloned()
            .ok_or_else(|| invalid(format!("{kind}/{name}: no pod spec")))?;
        // A StatefulSet's claim templates become PVC volumes of the same name.
        for t in v
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(claim), Some(vols)) = (
                t.pointer("/metadata/name").cloned(),
                pod.as_object_mut().map(|p| {
                    p.entry("volumes")
                        .or_insert_with(|| Value::Array(Vec::new()))
                }),
            ) {
                if let Some(vols) = vols.as_array_mut() {
                    vols.push(json!({"name": claim, "persistentVolumeClaim": {}}));
                }
            }
        }
        let pod = &pod;
        let annotations = template
            .pointer("/metadata/annotations")
            .cloned()
            .unwrap_or(Value::Null);
        for (list, label) in [
            ("initContainers", "init container"),
            ("containers", "container"),
            ("ephemeralContainers", "ephemeral container"),
        ] {
            for c in pod[list].as_array().into_iter().flatten() {
                let cname = c["name"].as_str().unwrap_or("").to_owned();
                let line = find_line(text, &cname, &mut search_from);
                let (spec, error) = match cri_spec(pod, &annotations, c, runtime_default) {
                    Ok(s) => (s, None),
                    Err(e) => (Value::Null, Some(e)),
                };
                out.push(ContainerCase {
                    workload: format!("{kind}/{name}"),
                    document: doc_no,
                    container: cname,
                    kind: label,
                    line,
                    error,
                    spec,
                });
            }
        }
    }
    Ok((out, skipped))
}

/// The line of the next `name: <container>` at or after byte `from`.
fn find_line(text: &str, name: &str, from: &mut usize) -> Option<usize> {
    let rest = &text[(*from).min(text.len())..];
    let at = rest.lines().scan(0usize, |off, l| {
        let start = *off;
        *off += l.len() + 1;
        Some((start, l))
    });
    for (off, l) in at {
        let t = l.trim_start().trim_start_matches("- ").trim();
        let value = t
            .strip_prefix("name:")
            .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\''));
        if value == Some(name) {
            let abs = *from + off;
            *from = abs + l.len();
            return Some(text[..abs].matches('\n').count() + 1);
        }
    }
    None
}

fn to_json(y: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::String(s.clone()), Value::Number),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect::<Map<String, Value>>(),
        ),
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}

/// A security context field: the container's, else the pod's.
fn field<'a>(c: &'a Value, pod: &'a Value, key: &str) -> Option<&'a Value> {
    c.pointer(&format!("/securityContext/{key}"))
        .filter(|v| !v.is_null())
        .or_else(|| {
            pod.pointer(&format!("/securityContext/{key}"))
                .filter(|v| !v.is_null())
        })
}

/// Every capability the OCI spec knows: what a privileged container gets.
fn all_caps() -> Vec<String> {
    super::load::ALL_CAPABILITIES
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

fn capabilities(c: &Value, privileged: bool) -> Vec<String> {
    if privileged {
        return all_caps();
    }
    let names = |key: &str| -> Vec<String> {
        c.pointer(&format!("/securityContext/capabilities/{key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|n| {
                let n = n.to_ascii_uppercase();
                if n == "ALL" || n.starts_with("CAP_") {
                    n
                } else {
                    format!("CAP_{n}")
                }
            })
            .collect()
    };
    let (add, drop) = (names("add"), names("drop"));
    let mut caps: Vec<String> = if add.iter().any(|a| a == "ALL") {
        all_caps()
    } else {
        CONTAINERD_DEFAULT_CAPS
            .iter()
            .map(|s| (*s).to_owned())
            .chain(add)
            .collect()
    };
    if drop.iter().any(|d| d == "ALL") {
        // containerd drops all, then adds back what `add` names.
        caps = names("add");
    } else {
        caps.retain(|c| !drop.contains(c));
    }
    caps.sort();
    caps.dedup();
    caps
}

/// Kubernetes quantities: `128Mi`, `1G`, `500m` CPU.
fn bytes(q: &Value) -> Option<u64> {
    let s = match q {
        Value::Number(n) => return n.as_u64(),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    let units: [(&str, u64); 12] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000),
    ];
    for (suffix, mult) in units {
        if let Some(n) = s.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|n| (n * mult as f64) as u64);
        }
    }
    s.parse::<f64>().ok().map(|n| n as u64)
}

fn millicores(q: &Value) -> Option<u64> {
    match q {
        Value::Number(n) => n.as_f64().map(|n| (n * 1000.0) as u64),
        Value::String(s) => match s.strip_suffix('m') {
            Some(m) => m.parse().ok(),
            None => s.parse::<f64>().ok().map(|n| (n * 1000.0) as u64),
        },
        _ => None,
    }
}

/// The OCI spec containerd's CRI plugin would create for container `c` of `pod`.
fn cri_spec(
    pod: &Value,
    annotations: &Value,
    c: &Value,
    runtime_default: Option<&SeccompFilter>,
) -> Result<Value, String> {
    let privileged = c
        .pointer("/securityContext/privileged")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let caps = capabilities(c, privileged);
    let non_root = field(c, pod, "runAsNonRoot").and_then(Value::as_bool) == Some(true);
    let uid = field(c, pod, "runAsUser")
        .and_then(Value::as_u64)
        .unwrap_or(if non_root { 65534 } else { 0 });
    let gid = field(c, pod, "runAsGroup")
        .and_then(Value::as_u64)
        .unwrap_or(if non_root { 65534 } else { 0 });
    let no_new_privs = !privileged
        && c.pointer("/securityContext/allowPrivilegeEscalation")
            .and_then(Value::as_bool)
            == Some(false);
    let mut args: Vec<Value> = Vec::new();
    for key in ["command", "args"] {
        args.extend(c[key].as_array().cloned().unwrap_or_default());
    }
    if args.is_empty() {
        args.push(json!("IMAGE_ENTRYPOINT"));
    }

    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if privileged { "rw" } else { "ro" }]}),
    ];
    let bind = |dest: &str, src: String, ro: bool| {
        json!({"destination": dest, "type": "bind", "source": src,
               "options": ["rbind", "rprivate", if ro { "ro" } else { "rw" }]})
    };
    mounts.push(bind(
        "/etc/hosts",
        format!("{KUBELET_POD_DIR}/etc-hosts"),
        false,
    ));
    mounts.push(bind(
        "/dev/termination-log",
        format!("{KUBELET_POD_DIR}/containers/CONTAINER/TERMINATION_ID"),
        false,
    ));
    mounts.push(bind(
        "/etc/hostname",
        format!("{SANDBOX_DIR}/hostname"),
        false,
    ));
    mounts.push(bind(
        "/etc/resolv.conf",
        format!("{SANDBOX_DIR}/resolv.conf"),
        false,
    ));
    mounts.push(bind("/dev/shm", format!("{SANDBOX_DIR}/shm"), false));
    let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
    for vm in c["volumeMounts"].as_array().into_iter().flatten() {
        let vname = vm["name"].as_str().unwrap_or_default();
        let dest = vm["mountPath"].as_str().unwrap_or_default();
        let ro = vm["readOnly"].as_bool().unwrap_or(false);
        let vol = volumes
            .iter()
            .find(|v| v["name"].as_str() == Some(vname))
            .ok_or_else(|| format!("volumeMounts {vname:?}: no such volume"))?;
        let source = if let Some(p) = vol.pointer("/hostPath/path").and_then(Value::as_str) {
            p.to_owned()
        } else {
            let plugin = [
                ("emptyDir", "empty-dir"),
                ("configMap", "configmap"),
                ("secret", "secret"),
                ("projected", "projected"),
                ("downwardAPI", "downward-api"),
                ("persistentVolumeClaim", "csi"),
                ("ephemeral", "csi"),
                ("csi", "csi"),
            ]
            .iter()
            .find(|(k, _)| vol.get(*k).is_some())
            .map_or("unknown", |(_, p)| p);
            format!("{KUBELET_POD_DIR}/volumes/kubernetes.io~{plugin}/{vname}")
        };
        let source = match vm["subPath"].as_str() {
            Some(sub) if !sub.is_empty() => format!("{source}/{sub}"),
            _ => source,
        };
        let mut m = bind(dest, source, ro);
        let propagation = match vm["mountPropagation"].as_str() {
            Some("Bidirectional") => "rshared",
            Some("HostToContainer") => "rslave",
            _ => "rprivate",
        };
        m["options"] = json!(["rbind", propagation, if ro { "ro" } else { "rw" }]);
        mounts.push(m);
    }

    let host = |key: &str| pod[key].as_bool().unwrap_or(false);
    let ns_path = |host_ns: bool, proc: &str| {
        if host_ns {
            format!("/proc/1/ns/{proc}")
        } else {
            format!("{SANDBOX_NS}/{proc}")
        }
    };
    let mut namespaces = vec![
        json!({"type": "mount"}),
        json!({"type": "network", "path": ns_path(host("hostNetwork"), "net")}),
        json!({"type": "ipc", "path": ns_path(host("hostIPC"), "ipc")}),
        json!({"type": "uts", "path": ns_path(host("hostNetwork"), "uts")}),
    ];
    if host("hostPID") {
        namespaces.push(json!({"type": "pid", "path": "/proc/1/ns/pid"}));
    } else if host("shareProcessNamespace") {
        namespaces.push(json!({"type": "pid", "path": format!("{SANDBOX_NS}/pid")}));
    } else {
        namespaces.push(json!({"type": "pid"}));
    }

    let unmasked = field(c, pod, "procMount").and_then(Value::as_str) == Some("Unmasked");
    let (masked, readonly): (Vec<&str>, Vec<&str>) = if privileged || unmasked {
        (vec![], vec![])
    } else {
        (K8S_MASKED_PATHS.to_vec(), K8S_READONLY_PATHS.to_vec())
    };

    let mut linux = json!({
        "namespaces": namespaces,
        "maskedPaths": masked,
        "readonlyPaths": readonly,
        "cgroupsPath": "/kubepods/POD/CONTAINER",
    });
    let seccomp_type = field(c, pod, "seccompProfile")
        .and_then(|s| s["type"].as_str())
        .unwrap_or("Unconfined");
    match (privileged, seccomp_type) {
        (true, _) | (_, "Unconfined") => {}
        (false, "RuntimeDefault") => match runtime_default {
            Some(f) => linux["seccomp"] = f.to_oci_json(),
            None => return Err("no RuntimeDefault filter to derive from".into()),
        },
        (false, "Localhost") => {
            return Err(
                "seccompProfile Localhost names a file on the node: it cannot be judged here"
                    .into(),
            )
        }
        (false, other) => return Err(format!("unknown seccompProfile type {other:?}")),
    }
    let sysctls: Map<String, Value> = pod
        .pointer("/securityContext/sysctls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some((
                s["name"].as_str()?.to_owned(),
                Value::String(match &s["value"] {
                    Value::String(v) => v.clone(),
                    other => other.to_string(),
                }),
            ))
        })
        .collect();
    if !sysctls.is_empty() {
        linux["sysctl"] = Value::Object(sysctls);
    }
    let mut resources = json!({});
    if privileged {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    if let Some(m) = c.pointer("/resources/limits/memory").and_then(bytes) {
        resources["memory"] = json!({ "limit": m });
    }
    if let Some(cpu) = c.pointer("/resources/limits/cpu").and_then(millicores) {
        resources["cpu"] = json!({ "quota": cpu * 100, "period": 100_000 });
    }
    linux["resources"] = resources;

    let cname = c["name"].as_str().unwrap_or_default();
    let apparmor = c
        .pointer("/securityContext/appArmorProfile")
        .or_else(|| pod.pointer("/securityContext/appArmorProfile"))
        .and_then(|a| match a["type"].as_str()? {
            "RuntimeDefault" => Some("cri-containerd.apparmor.d".to_owned()),
            "Unconfined" => Some("unconfined".to_owned()),
            "Localhost" => a["localhostProfile"].as_str().map(str::to_owned),
            _ => None,
        })
        .or_else(|| {
            annotations
                .get(format!(
                    "container.apparmor.security.beta.kubernetes.io/{cname}"
                ))
                .and_then(Value::as_str)
                .map(|v| match v {
                    "runtime/default" => "cri-containerd.apparmor.d".to_owned(),
                    v => v.strip_prefix("localhost/").unwrap_or(v).to_owned(),
                })
        });
    let mut process = json!({
        "terminal": false,
        "user": { "uid": uid, "gid": gid },
        "args": args,
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "cwd": c["workingDir"].as_str().unwrap_or("/"),
        "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
        "noNewPrivileges": no_new_privs,
    });
    if let Some(a) = apparmor {
        process["apparmorProfile"] = json!(a);
    }
    if let Some(se) = field(c, pod, "seLinuxOptions") {
        let part = |k: &str| se[k].as_str().unwrap_or("").to_owned();
        process["selinuxLabel"] =
            json!([part("user"), part("role"), part("type"), part("level")].join(":"));
    }
    Ok(json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {
            "path": "rootfs",
            "readonly": c.pointer("/securityContext/readOnlyRootFilesystem").and_then(Value::as_bool).unwrap_or(false),
        },
        "hostname": pod["hostname"].as_str().unwrap_or("POD_NAME"),
        "mounts": mounts,
        "linux": linux,
    }))
}

/// Namespace paths of derived specs: `/proc/1/ns/*` is the host's (the runtime's own
/// namespace), anything else the pod's pause container's.
pub struct ManifestNs<'a>(pub &'a HostFacts);

impl NsInodeLookup for ManifestNs<'_> {
    fn inode(&self, path: &Path) -> io::Result<u64> {
        let host = path
            .strip_prefix("/proc/1/ns")
            .ok()
            .and_then(|p| p.to_str())
            .and_then(|name| NsType::ALL.into_iter().find(|t| t.proc_name() == name))
            .and_then(|t| self.0.own_namespaces.get(&t).copied());
        // Any inode other than the host's stands for the pause container's namespace.
        Ok(host.unwrap_or(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_follow_containerd() {
        let c: Value = serde_json::from_str(
            r#"{"securityContext":{"capabilities":{"drop":["ALL"],"add":["NET_BIND_SERVICE"]}}}"#,
        )
        .unwrap();
        assert_eq!(capabilities(&c, false), ["CAP_NET_BIND_SERVICE"]);
        let c: Value = serde_json::from_str(
            r#"{"securityContext":{"capabilities":{"add":["SYS_ADMIN"],"drop":["NET_RAW"]}}}"#,
        )
        .unwrap();
        let caps = capabilities(&c, false);
        assert!(caps.contains(&"CAP_SYS_ADMIN".to_owned()));
        assert!(!caps.contains(&"CAP_NET_RAW".to_owned()));
        assert_eq!(caps.len(), 14);
    }

    #[test]
    fn quantities() {
        assert_eq!(bytes(&json!("128Mi")), Some(128 << 20));
        assert_eq!(bytes(&json!("1G")), Some(1_000_000_000));
        assert_eq!(millicores(&json!("500m")), Some(500));
        assert_eq!(millicores(&json!(2)), Some(2000));
        assert_eq!(millicores(&json!("0.5")), Some(500));
    }

    #[test]
    fn every_workload_kind_yields_its_containers() {
        let text = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: backup}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: backup
            image: busybox
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      initContainers:
      - name: init
        image: busybox
      containers:
      - name: nginx
        image: nginx
"#;
        let (cases, skipped) = containers(text, None).unwrap();
        assert_eq!(skipped, ["Service/web"]);
        let got: Vec<_> = cases
            .iter()
            .map(|c| (c.workload.as_str(), c.container.as_str(), c.line))
            .collect();
        assert_eq!(
            got,
            [
                ("CronJob/backup", "backup", Some(17)),
                ("Deployment/web", "init", Some(27)),
                ("Deployment/web", "nginx", Some(30)),
            ]
        );
    }
}
