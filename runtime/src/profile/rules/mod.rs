//! One small pure function per control. Each `check` reads the spec as the JSON document
//! the runtime will act on (so violation paths are config.json paths) and returns typed
//! violations; each `harden` (for rules that can inject) edits that document and returns
//! what it changed. `plan.rs` runs every `harden` first, then every `check`.

pub mod capabilities;
pub mod cgroups;
pub mod devices;
pub mod filesystem;
pub mod landlock;
pub mod lsm;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod seccomp;
pub mod sysctls;
pub mod user_namespace;

use serde_json::Value;

/// String items of a JSON array at `pointer`, with their index.
pub(crate) fn str_items<'a>(doc: &'a Value, pointer: &str) -> Vec<(usize, &'a str)> {
    doc.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .enumerate()
                .filter_map(|(i, v)| v.as_str().map(|s| (i, s)))
                .collect()
        })
        .unwrap_or_default()
}

/// The object at `pointer`, created (with every missing parent) if absent.
pub(crate) fn ensure_object<'a>(
    doc: &'a mut Value,
    pointer: &str,
) -> &'a mut serde_json::Map<String, Value> {
    let mut cur = doc;
    for key in pointer.split('/').skip(1) {
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let Value::Object(map) = cur else {
            unreachable!("just made an object")
        };
        cur = map
            .entry(key.to_owned())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Default::default());
    }
    match cur {
        Value::Object(map) => map,
        _ => unreachable!("just made an object"),
    }
}

/// Join names for a message.
pub(crate) fn join<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let v: Vec<String> = items.into_iter().map(|s| s.as_ref().to_owned()).collect();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

/// The user namespace entry of the spec, if any, and whether it joins an existing one.
pub(crate) fn user_namespace(doc: &Value) -> Option<&Value> {
    doc.pointer("/linux/namespaces")
        .and_then(Value::as_array)?
        .iter()
        .find(|n| n.get("type").and_then(Value::as_str) == Some("user"))
}

/// Host id that container id `id` maps to through `mappings` (OCI `uidMappings`).
pub(crate) fn map_id(mappings: Option<&Value>, id: u64) -> Option<u64> {
    mappings?.as_array()?.iter().find_map(|m| {
        let c = m.get("containerID")?.as_u64()?;
        let h = m.get("hostID")?.as_u64()?;
        let s = m.get("size")?.as_u64()?;
        (c <= id && id < c.saturating_add(s)).then(|| h + (id - c))
    })
}

/// The annotation containerd's CRI puts on every container: `sandbox` for a pod's
/// pause container.
pub const CONTAINER_TYPE_ANNOTATION: &str = "io.kubernetes.cri.container-type";

/// A CRI pod sandbox (pause) container. containerd alone shapes its spec — its
/// default capability set (CAP_NET_RAW, ...), no masked or read-only paths — and no
/// kubelet setting can change that, so rules that would refuse those shapes harden
/// the sandbox instead: the result complies, and pause needs none of it. Claiming to
/// be a sandbox gains a container nothing: it only loses capabilities and /proc access.
pub fn is_pod_sandbox(doc: &Value) -> bool {
    doc.pointer("/annotations")
        .and_then(|a| a.get(CONTAINER_TYPE_ANNOTATION))
        .and_then(Value::as_str)
        == Some("sandbox")
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::profile::schema::Mode;
    use crate::profile::violation::RuleMeta;
    use serde_json::Value;

    pub fn meta() -> RuleMeta<'static> {
        RuleMeta {
            reason: "r",
            mode: Mode::Enforce,
        }
    }

    pub fn ids(v: &[crate::profile::violation::Violation]) -> Vec<&'static str> {
        v.iter().map(|v| v.rule).collect()
    }

    pub fn doc(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }
}
