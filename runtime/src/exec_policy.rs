//! What a process started by `exec` may hold: never more than the container's init.
//!
//! containerd's shims hand `exec` a process.json of their own making (its default
//! capability set, whatever noNewPrivileges the caller chose), which knows nothing of
//! the profile that hardened the init. Every capability set is therefore cut to the
//! init's, and no_new_privs is kept if the init has it. Pure: unit-tested.

use std::collections::HashSet;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Process};

/// Cut `requested` down to what `init` holds.
pub fn clamp_process(requested: &mut Process, init: &Process) {
    let init_caps = init.capabilities().clone().unwrap_or_default();
    let empty = Capabilities::new();
    let cut = |want: &Option<Capabilities>, have: &Option<Capabilities>| -> Option<Capabilities> {
        let have = have.as_ref().unwrap_or(&empty);
        Some(
            want.as_ref()
                .unwrap_or(&empty)
                .intersection(have)
                .copied()
                .collect(),
        )
    };
    let want = requested.capabilities().clone().unwrap_or_default();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(cut(want.bounding(), init_caps.bounding()));
    caps.set_effective(cut(want.effective(), init_caps.effective()));
    caps.set_permitted(cut(want.permitted(), init_caps.permitted()));
    caps.set_inheritable(cut(want.inheritable(), init_caps.inheritable()));
    caps.set_ambient(cut(want.ambient(), init_caps.ambient()));
    requested.set_capabilities(Some(caps));
    if init.no_new_privileges() == Some(true) {
        requested.set_no_new_privileges(Some(true));
    }
}

/// `exec --cap NAME` additions the init's bounding set allows; others are dropped.
pub fn allowed_extra_caps(requested: &[String], init: &Process) -> Vec<String> {
    let bounding: HashSet<Capability> = init
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    requested
        .iter()
        .filter(|name| {
            // oci-spec parses the bare name (`KILL`); accept runc's `CAP_KILL` too.
            name.strip_prefix("CAP_")
                .unwrap_or(name)
                .parse::<Capability>()
                .map(|c| bounding.contains(&c))
                .unwrap_or(false)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(json: serde_json::Value) -> Process {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn caps_are_cut_to_the_inits_and_nnp_kept() {
        let init = process(serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0}, "noNewPrivileges": true,
            "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_KILL"],
                             "permitted": ["CAP_KILL"]}
        }));
        let mut req = process(serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0}, "noNewPrivileges": false,
            "capabilities": {"bounding": ["CAP_CHOWN", "CAP_SYS_ADMIN"],
                             "effective": ["CAP_KILL", "CAP_SYS_ADMIN"],
                             "permitted": ["CAP_KILL", "CAP_NET_RAW"],
                             "ambient": ["CAP_KILL"], "inheritable": ["CAP_KILL"]}
        }));
        clamp_process(&mut req, &init);
        let caps = req.capabilities().clone().unwrap();
        let set = |c: &[Capability]| c.iter().copied().collect::<Capabilities>();
        assert_eq!(caps.bounding().clone().unwrap(), set(&[Capability::Chown]));
        assert_eq!(caps.effective().clone().unwrap(), set(&[Capability::Kill]));
        assert_eq!(caps.permitted().clone().unwrap(), set(&[Capability::Kill]));
        assert!(caps.ambient().clone().unwrap().is_empty());
        assert!(caps.inheritable().clone().unwrap().is_empty());
        assert_eq!(req.no_new_privileges(), Some(true));
    }

    #[test]
    fn init_without_caps_gives_exec_none() {
        let init = process(serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}}));
        let mut req = process(serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": ["CAP_SYS_ADMIN"], "effective": ["CAP_SYS_ADMIN"]}
        }));
        clamp_process(&mut req, &init);
        assert!(req
            .capabilities()
            .clone()
            .unwrap()
            .bounding()
            .clone()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn extra_caps_outside_the_bounding_set_are_dropped() {
        let init = process(serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": ["CAP_KILL"]}
        }));
        let got = allowed_extra_caps(
            &["CAP_KILL".into(), "SYS_ADMIN".into(), "KILL".into()],
            &init,
        );
        assert_eq!(got, vec!["CAP_KILL".to_string(), "KILL".to_string()]);
    }
}
