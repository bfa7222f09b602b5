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
    spec
}
