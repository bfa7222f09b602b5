//! The exec process parser: `exec --process` JSON -> the process to start
//! (`exec_policy::parse_process`, then `clamp_process` against the init).
//!
//! Invariants: never panics; a content error names a field path present in the
//! document; a process that parses has a program (`args[0]`: the vendored
//! libcontainer indexes it); once clamped it holds no capability the init lacks in
//! any set, keeps the init's no_new_privs, and the document written for libcontainer
//! reads back as the same process.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::{Capabilities, Process};
use stockade::exec_policy::{self, ProcessError};

/// An init as `default` hardens one: a few capabilities, no_new_privs, AppArmor.
fn init() -> Process {
    serde_json::from_value(serde_json::json!({
        "user": {"uid": 0, "gid": 0},
        "args": ["/bin/sh"],
        "cwd": "/",
        "noNewPrivileges": true,
        "apparmorProfile": "stockade-default",
        "capabilities": {
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL"],
        }
    }))
    .expect("the init parses")
}

fn subset(got: &Option<Capabilities>, have: &Option<Capabilities>, set: &str) {
    let empty = Capabilities::new();
    let have = have.as_ref().unwrap_or(&empty);
    for c in got.iter().flatten() {
        assert!(have.contains(c), "{set}: {c:?} is not the init's");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut init_user = oci_spec::runtime::User::default();
    init_user.set_uid(1000);
    let json = serde_json::from_slice::<serde_json::Value>(data);
    let names_user = matches!(json, Ok(serde_json::Value::Object(ref d)) if d.contains_key("user"));
    let parsed = exec_policy::parse_process(data, &init_user);
    // A document that is not JSON throughout is refused, never half-read.
    assert!(json.is_ok() || parsed.is_err(), "not JSON, yet parsed");
    match parsed {
        Ok(mut p) => {
            assert!(p.args().as_ref().is_some_and(|a| !a.is_empty()));
            if !names_user {
                assert_eq!(
                    p.user(),
                    &init_user,
                    "a process without user runs as the container's"
                );
            }
            let init = init();
            exec_policy::clamp_process(&mut p, &init);
            let (got, have) = (
                p.capabilities().clone().unwrap_or_default(),
                init.capabilities().clone().unwrap_or_default(),
            );
            subset(got.bounding(), have.bounding(), "bounding");
            subset(got.effective(), have.effective(), "effective");
            subset(got.permitted(), have.permitted(), "permitted");
            subset(got.inheritable(), have.inheritable(), "inheritable");
            subset(got.ambient(), have.ambient(), "ambient");
            assert_eq!(p.no_new_privileges(), Some(true));
            let written = serde_json::to_vec(&p).expect("the process serialises");
            let read: Process = serde_json::from_slice(&written).expect("libcontainer reads it");
            assert_eq!(read, p, "the process changed on its way to libcontainer");
        }
        Err(ProcessError::Parse { field, source }) => {
            stockade_fuzz::assert_names_field(data, &field, &source);
        }
        Err(ProcessError::EmptyArgs) => {}
    }
});
