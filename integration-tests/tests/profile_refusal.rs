//! Refusal under `restricted` (Stockade only): every Pod Security fixture in
//! `runtime/src/profile/fixtures/` is refused by a real `stockade create` with exit
//! status 1 and ONE message naming exactly its violations, the same message as the
//! log's last error line, one audit event, and nothing left on the host (no state
//! dir, cgroup, process, mount, hardened bundle or user namespace range).
//!
//! The fixtures name a pod sandbox as `/proc/42/ns/*` (the unit tests fake its
//! inodes) and the host as `/proc/1/ns/*`. Here the sandbox is a real process in its
//! own namespaces ([`PodSandbox`]), and the host is this test process: the runtime
//! it spawns shares its namespaces, which is what "host namespace" means to the
//! rule (pid 1 itself may not be inspectable in a sandboxed test VM). The CRI
//! sandbox id the fixtures carry names a real sandbox container of the same state
//! root (the compliant fixture, created first): a pod member's annotation must name
//! one (`user_namespace.sandbox`).

use serde_json::Value;
use std::collections::BTreeSet;
use stockade_integration_tests::profiles::{
    bundle_from_spec, expected_violations, fixture_on_this_host, pod_security, PodSandbox,
};
use stockade_integration_tests::runtime::CmdOutput;
use stockade_integration_tests::{
    assert_nothing_left_behind, runtime, skip_on_reference, Bundle, Runtime,
};

const HEADER: &str = "stockade: container refused by profile \"restricted\"";

type Pairs = BTreeSet<(String, String)>;

fn expected(name: &str) -> Pairs {
    expected_violations(name)
}

fn fixture_bundle(name: &str, sandbox: &PodSandbox) -> Bundle {
    bundle_from_spec(fixture_on_this_host(name, sandbox)).build()
}

/// The CRI sandbox id fixture `name` carries.
fn sandbox_id(name: &str) -> String {
    let spec = stockade_integration_tests::profiles::fixture(name);
    spec["annotations"]["io.kubernetes.cri.sandbox-id"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no sandbox id"))
        .to_string()
}

/// `(rule, path)` of each `  - [rule] path: ...` line of a refusal message.
fn violation_lines(msg: &str) -> Vec<(String, String)> {
    msg.lines()
        .skip(1)
        .map(|l| {
            let rest = l
                .strip_prefix("  - [")
                .unwrap_or_else(|| panic!("not a violation line: {l:?}\nmessage:\n{msg}"));
            let (rule, rest) = rest.split_once("] ").expect("[rule] path");
            let (path, _) = rest.split_once(": ").expect("path: detail");
            (rule.to_string(), path.to_string())
        })
        .collect()
}

fn log_lines(rt: &Runtime) -> Vec<Value> {
    rt.log_text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line not JSON ({e}): {l}")))
        .collect()
}

/// Everything a refusal must be, for fixture `name`.
fn assert_refusal(rt: &Runtime, bundle: &Bundle, out: &CmdOutput, name: &str) {
    let want = expected(name);
    assert_eq!(
        out.code,
        Some(1),
        "{name}: exit status\nstderr: {}\nlog: {}",
        out.stderr,
        rt.log_text()
    );
    let msg = out.stderr.trim_end();
    let header = msg.lines().next().unwrap_or_default();
    assert!(header.starts_with(HEADER), "{name}: stderr {msg:?}");
    let n = want.len();
    let noun = if n == 1 { "violation" } else { "violations" };
    assert!(
        header.ends_with(&format!(": {n} {noun}")),
        "{name}: header {header:?} should count {n}"
    );
    let lines = violation_lines(msg);
    let got: Pairs = lines.iter().cloned().collect();
    assert_eq!(got, want, "{name}: violations\n{msg}");
    assert_eq!(lines.len(), n, "{name}: duplicate lines\n{msg}");
    for l in msg.lines().skip(1) {
        assert!(l.contains("allowed:"), "{name}: no allowed value in {l:?}");
        assert!(
            l.contains(" — change "),
            "{name}: no field to change in {l:?}"
        );
    }

    let log = log_lines(rt);
    let last_error = log
        .iter()
        .rev()
        .find(|l| l["level"] == "error")
        .unwrap_or_else(|| panic!("{name}: no error line in the log"));
    assert_eq!(
        last_error["msg"].as_str(),
        Some(msg),
        "{name}: the log's last error is the same message"
    );
    let audits: Vec<&Value> = log
        .iter()
        .filter(|l| l["audit"]["event"] == "stockade.profile.decision")
        .filter(|l| l["audit"]["container_id"] == bundle.id.as_str())
        .collect();
    assert_eq!(audits.len(), 1, "{name}: one decision, one audit event");
    let audit = &audits[0]["audit"];
    assert_eq!(audit["outcome"], "refused", "{audit}");
    assert_eq!(audit["profile"], "restricted", "{audit}");
    assert_eq!(audit["container_id"], bundle.id.as_str(), "{audit}");
    let audited: Pairs = audit["violations"]
        .as_array()
        .expect("violations array")
        .iter()
        .map(|v| {
            (
                v["rule"].as_str().unwrap_or_default().to_string(),
                v["path"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(audited, want, "{name}: audited violations");

    assert_nothing_left_behind(rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    // Only the pod's sandbox holds a range, alone.
    let sandbox = sandbox_id(name);
    for (owner, _, members) in rt.userns_ranges() {
        assert!(
            owner == sandbox && members == [sandbox.clone()],
            "{name}: a refused container holds a range: {:?}",
            rt.userns_db()
        );
    }
    let plans = rt.state_root().join(".stockade/plans");
    let leftover: Vec<_> = std::fs::read_dir(&plans)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| *n != *sandbox)
                .collect()
        })
        .unwrap_or_default();
    assert!(leftover.is_empty(), "{name}: plans left: {leftover:?}");
}

fn refuse(name: &str) {
    if skip_on_reference("hardening profiles are Stockade's") {
        return;
    }
    let sandbox = PodSandbox::start();
    let rt = runtime!(profile = "restricted");
    // The pod's sandbox container, as the CRI plugin creates it before any member:
    // the profile's own spec, carrying the fixtures' sandbox id as its own.
    let spec = rt
        .exec_cmd(&["spec", "--profile", "restricted", "--stdout"])
        .expect_ok(&rt);
    let mut spec: Value = serde_json::from_str(&spec.stdout).expect("spec is JSON");
    spec["annotations"] = serde_json::json!({
        "io.kubernetes.cri.sandbox-id": sandbox_id("compliant"),
    });
    let pod = bundle_from_spec(spec)
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build();
    let _pod = rt
        .create_with_id(&pod, &sandbox_id("compliant"))
        .unwrap_or_else(|f| panic!("create the pod sandbox: {}", f.out.stderr));
    let bundle = fixture_bundle(name, &sandbox);
    match rt.create(&bundle) {
        Ok(c) => panic!(
            "{name} was admitted under restricted: {c:?}\nlog: {}",
            rt.log_text()
        ),
        // The failure's guard cleans up only after the checks, when it is dropped.
        Err(failed) => assert_refusal(&rt, &bundle, &failed.out, name),
    };
}

#[test]
fn privileged() {
    refuse("privileged");
}

#[test]
fn host_pid() {
    refuse("host-pid");
}

#[test]
fn host_network() {
    refuse("host-network");
}

#[test]
fn host_ipc() {
    refuse("host-ipc");
}

#[test]
fn cap_sys_admin() {
    refuse("cap-sys-admin");
}

#[test]
fn no_seccomp() {
    refuse("no-seccomp");
}

#[test]
fn no_new_privileges_false() {
    refuse("no-new-privileges-false");
}

#[test]
fn uid0_without_userns() {
    refuse("uid0-without-userns");
}

#[test]
fn sysctl_core_pattern() {
    refuse("sysctl-core-pattern");
}

#[test]
fn unmasked_proc() {
    refuse("unmasked-proc");
}

#[test]
fn docker_sock() {
    refuse("docker-sock");
}

#[test]
fn rshared_mount() {
    refuse("rshared-mount");
}

#[test]
fn all_controls_at_once_list_every_violation() {
    refuse("all");
}

/// Every fixture in the directory has an expectation here (a new fixture must be
/// added to this table), and the compliant one is what makes the rest meaningful:
/// with the same namespaces and paths, it is admitted.
#[test]
fn every_fixture_is_covered_and_the_compliant_one_is_admitted() {
    if skip_on_reference("hardening profiles are Stockade's") {
        return;
    }
    let dir = stockade_integration_tests::profiles::fixtures_dir();
    for entry in std::fs::read_dir(&dir).expect("fixtures dir").flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = file.strip_suffix(".json") else {
            continue;
        };
        assert!(
            name == "all" || name == "compliant" || pod_security().iter().any(|(n, _)| n == name),
            "fixture {file} has no expected violations in this test"
        );
    }
    let sandbox = PodSandbox::start();
    let rt = runtime!(profile = "restricted");
    let bundle = fixture_bundle("compliant", &sandbox);
    let out = rt.exec_cmd(&[
        "profile",
        "check",
        "--profile",
        "restricted",
        &bundle.path().join("config.json").to_string_lossy(),
    ]);
    assert_eq!(out.code, Some(0), "compliant spec refused: {out:?}");
}
