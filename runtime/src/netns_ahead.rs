//! The container's new network namespace, made on another thread while `create`
//! does the rest of its work, instead of by the init afterwards.
//!
//! Making a network namespace is the slowest step of an unconfined start: ~0.6 ms of
//! kernel work (a loopback device, the per-namespace sysctls and netfilter tables),
//! against ~0.05 ms for the uts and ipc namespaces. The runtime's process knows
//! from the plan that one is needed; a thread of it makes the namespace meanwhile
//! (the state root, the journal, the container's state and cgroup configuration),
//! on the other CPU, and the init joins it (libcontainer's `PreparedNetwork`,
//! patch 43).
//!
//! Only for a container without a user namespace: a namespace belongs to the user
//! namespace of its maker, the host's here, which is what it gets anyway when a
//! root init with no user namespace makes it; a container with a user namespace
//! must own its network namespace, and its init still makes it. A namespace given
//! by path (a CRI pod's) is joined as before.
//!
//! [`wanted`] is the pure decision; [`start`] the thin privileged step. A failure to
//! start only costs the time saved: the init then makes the namespace itself.

use libcontainer::namespaces::PreparedNetwork;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Whether `spec` asks for a new network namespace that the runtime may make: one
/// without `path`, and no user namespace in the spec or to be added by the profile
/// (`userns_requested`: admission's request, which `create` adds to the spec
/// later).
pub fn wanted(spec: &Spec, userns_requested: bool) -> bool {
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default();
    let new_network = namespaces
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::Network && ns.path().is_none());
    let user = namespaces
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::User);
    new_network && !user && !userns_requested
}

/// Start making the network namespace, if [`wanted`].
pub fn start(spec: &Spec, userns_requested: bool) -> Option<PreparedNetwork> {
    if !wanted(spec, userns_requested) {
        return None;
    }
    match PreparedNetwork::spawn() {
        Ok(prepared) => Some(prepared),
        Err(e) => {
            tracing::debug!(error = %e, "no thread for the network namespace; the init makes it");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, LinuxNamespaceBuilder, SpecBuilder};

    fn spec(namespaces: &[(LinuxNamespaceType, Option<&str>)]) -> Spec {
        let namespaces = namespaces
            .iter()
            .map(|(typ, path)| {
                let b = LinuxNamespaceBuilder::default().typ(*typ);
                match path {
                    Some(p) => b.path(*p),
                    None => b,
                }
                .build()
                .unwrap()
            })
            .collect::<Vec<_>>();
        SpecBuilder::default()
            .linux(
                LinuxBuilder::default()
                    .namespaces(namespaces)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn a_new_network_namespace_without_a_user_namespace_is_made_ahead() {
        let s = spec(&[
            (LinuxNamespaceType::Pid, None),
            (LinuxNamespaceType::Network, None),
            (LinuxNamespaceType::Mount, None),
        ]);
        assert!(wanted(&s, false));
    }

    #[test]
    fn a_user_namespace_in_the_spec_or_from_the_profile_keeps_it_in_the_init() {
        let s = spec(&[
            (LinuxNamespaceType::User, None),
            (LinuxNamespaceType::Network, None),
        ]);
        assert!(!wanted(&s, false));
        let s = spec(&[(LinuxNamespaceType::Network, None)]);
        assert!(!wanted(&s, true));
    }

    #[test]
    fn a_joined_or_the_hosts_network_namespace_is_not_made() {
        let s = spec(&[(LinuxNamespaceType::Network, Some("/var/run/netns/pod"))]);
        assert!(!wanted(&s, false));
        let s = spec(&[(LinuxNamespaceType::Pid, None)]);
        assert!(!wanted(&s, false));
        assert!(!wanted(&spec(&[]), false));
    }
}
