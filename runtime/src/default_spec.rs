//! The spec `stockade spec` writes: runc's default shape, hardened.

use oci_spec::runtime::Spec;

/// runc's default spec with a read-only root, no_new_privileges and no capabilities
/// beyond NET_BIND_SERVICE.
pub fn hardened_default() -> Spec {
    let mut spec = Spec::default();
    if let Some(mut root) = spec.root().clone() {
        root.set_readonly(Some(true));
        spec.set_root(Some(root));
    }
    if let Some(mut process) = spec.process().clone() {
        process.set_no_new_privileges(Some(true));
        process.set_args(Some(vec!["sh".into()]));
        if let Some(mut caps) = process.capabilities().clone() {
            use oci_spec::runtime::Capability;
            let set: oci_spec::runtime::Capabilities =
                [Capability::NetBindService].into_iter().collect();
            caps.set_bounding(Some(set.clone()));
            caps.set_effective(Some(set.clone()));
            caps.set_permitted(Some(set));
            caps.set_inheritable(None);
            caps.set_ambient(None);
            process.set_capabilities(Some(caps));
        }
        spec.set_process(Some(process));
    }
    // oci-spec's default names the host "youki" (the library's origin); ours is ours.
    spec.set_hostname(Some("stockade".into()));
    spec
}

/// `spec` as JSON with a stable order: oci-spec keeps capability sets in hash sets,
/// whose order changes from run to run, and a generated spec is reviewed and diffed.
pub fn to_stable_json(spec: &Spec) -> Result<serde_json::Value, serde_json::Error> {
    let mut doc = serde_json::to_value(spec)?;
    if let Some(caps) = doc
        .pointer_mut("/process/capabilities")
        .and_then(serde_json::Value::as_object_mut)
    {
        for set in caps.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    Ok(doc)
}
