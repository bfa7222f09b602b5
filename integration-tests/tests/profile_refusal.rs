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

/// `(rule, path)` of each `  - [rule] path: ...` line of a refusal message (the
/// closing `full record` line and a `… and N more` line are not violations).
fn violation_lines(msg: &str) -> Vec<(String, String)> {
    msg.lines()
        .skip(1)
        .filter(|l| !l.starts_with("  full record: ") && !l.starts_with("  - … and "))
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
    // Short enough for a Kubernetes event (1 KiB), pointing at the full record; every
    // violation listed unless the rest are counted in a `… and N more` line.
    assert!(msg.len() <= 900, "{name}: {} bytes\n{msg}", msg.len());
    assert!(
        msg.lines()
            .last()
            .is_some_and(|l| l.starts_with("  full record: audit id ")),
        "{name}: {msg}"
    );
    let lines = violation_lines(msg);
    let got: Pairs = lines.iter().cloned().collect();
    let more: usize = msg
        .lines()
        .find_map(|l| l.strip_prefix("  - … and ")?.strip_suffix(" more"))
        .map(|m| m.parse().expect("count"))
        .unwrap_or(0);
    if more == 0 {
        assert_eq!(got, want, "{name}: violations\n{msg}");
    } else {
        assert!(got.is_subset(&want), "{name}: violations\n{msg}");
    }
    assert_eq!(lines.len() + more, n, "{name}: lines and count\n{msg}");
    for l in msg.lines().skip(1).filter(|l| l.starts_with("  - [")) {
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

// ---------------------------------------------------------------------------
// Host devices (issue 7): decided at admission, never admitted-then-broken
// ---------------------------------------------------------------------------

/// Every device node under this host's `/dev` (less `/dev/pts`, a devpts of its
/// own), as containerd lists them for a privileged pod: entries for `linux.devices`
/// and one device cgroup allow rule per node.
fn host_devices() -> (Vec<Value>, Vec<Value>) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut nodes = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from("/dev")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            let Ok(m) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let ft = m.file_type();
            if ft.is_dir() && path != std::path::Path::new("/dev/pts") {
                dirs.push(path);
            } else if ft.is_char_device() || ft.is_block_device() {
                let rdev = m.rdev();
                nodes.push(serde_json::json!({
                    "path": path.to_string_lossy(),
                    "type": if ft.is_char_device() { "c" } else { "b" },
                    "major": libc::major(rdev), "minor": libc::minor(rdev),
                    "fileMode": m.mode() & 0o777, "uid": 0, "gid": 0
                }));
            }
        }
    }
    nodes.sort_by_key(|n| n["path"].as_str().unwrap_or_default().to_string());
    let rules = nodes
        .iter()
        .map(|n| {
            serde_json::json!({"allow": true, "type": n["type"], "major": n["major"],
                               "minor": n["minor"], "access": "rwm"})
        })
        .collect();
    (nodes, rules)
}

/// A privileged-shaped spec's ~100 host device nodes: `default` (which used to
/// admit them and then fail at rootfs preparation), `baseline` and `restricted`
/// refuse it at admission, naming `devices.node` and `devices.cgroup_rule`, and
/// nothing is left behind.
#[test]
fn host_device_nodes_are_refused_at_admission() {
    if skip_on_reference("hardening profiles are Stockade's") {
        return;
    }
    let (nodes, rules) = host_devices();
    assert!(nodes.len() >= 20, "this host has few devices: {nodes:?}");
    for profile in ["default", "baseline", "restricted"] {
        let rt = runtime!(profile = profile);
        let bundle = stockade_integration_tests::BundleBuilder::new()
            .edit(|s| {
                s["linux"]["devices"] = Value::Array(nodes.clone());
                s["linux"]["resources"]["devices"]
                    .as_array_mut()
                    .expect("device rules")
                    .extend(rules.iter().cloned());
            })
            .build();
        let failed = match rt.create(&bundle) {
            Ok(c) => panic!("{profile} admitted {} host devices: {c:?}", nodes.len()),
            Err(failed) => failed,
        };
        assert_eq!(failed.out.code, Some(1), "{profile}: {:?}", failed.out);
        let msg = &failed.out.stderr;
        assert!(msg.len() <= 900, "{profile}: {} bytes: {msg}", msg.len());
        // The full decision is the audit record (the message may count the device
        // rules among "… and N more" when other controls fail too).
        let audit = rt
            .log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["audit"]["event"] == "stockade.profile.decision")
            .unwrap_or_else(|| panic!("{profile}: no audit event"));
        let violations = audit["audit"]["violations"].as_array().expect("violations");
        for want in [
            ("devices.node", "linux.devices"),
            ("devices.cgroup_rule", "linux.resources.devices"),
        ] {
            assert!(
                violations
                    .iter()
                    .any(|v| v["rule"] == want.0 && v["path"] == want.1),
                "{profile}: {want:?} not recorded: {audit}"
            );
        }
        assert!(
            violations.iter().any(|v| v["actual"]
                .as_str()
                .is_some_and(|a| a.contains("device nodes outside the allow-list: /dev/"))),
            "{profile}: {audit}"
        );
        drop(failed);
        assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
        assert!(rt.userns_ranges().is_empty(), "{profile}: range left");
    }
}

/// A profile that strips (`on_excess = "strip"`) runs the same spec without the host
/// devices: inside, a host disk node is absent while /dev/null is there, and the audit
/// record says what was removed.
#[test]
fn host_device_nodes_are_stripped_when_the_profile_says_so() {
    if skip_on_reference("hardening profiles are Stockade's") {
        return;
    }
    let (nodes, rules) = host_devices();
    let dir = tempfile::tempdir().expect("tempdir");
    let shipped = std::fs::read_to_string(
        stockade_integration_tests::runtime::profiles_dir().join("default.toml"),
    )
    .expect("default.toml");
    // Only the shipped allow-list, under a profile of this test's own.
    let devices = &shipped[shipped.find("[devices]").expect("[devices]")..];
    let devices = &devices[..devices.find("\n[cgroups]").expect("next section")];
    let devices = devices.replace("on_excess = \"refuse\"", "on_excess = \"strip\"");
    std::fs::write(
        dir.path().join("strip-devices.toml"),
        format!(
            "schema = 1\nname = \"strip-devices\"\nversion = \"1\"\nstrictness = 0\n\
             mode = \"enforce\"\n\n{devices}\n"
        ),
    )
    .expect("write profile");
    let rt = runtime!();
    rt.set_node_config(&format!(
        "schema = 1\nprofiles_dir = {:?}\ndefault_profile = \"strip-devices\"\n",
        dir.path()
    ));
    let victim = nodes
        .iter()
        .find(|n| n["type"] == "b")
        .or_else(|| nodes.iter().find(|n| n["path"] == "/dev/kmsg"))
        .expect("a host device outside the default set")["path"]
        .as_str()
        .expect("path")
        .to_string();
    let bundle = stockade_integration_tests::BundleBuilder::new()
        .shell(&format!("probe stat {victim}; probe stat /dev/null"))
        .edit(|s| {
            s["linux"]["devices"] = Value::Array(nodes.clone());
            s["linux"]["resources"]["devices"]
                .as_array_mut()
                .expect("device rules")
                .extend(rules.iter().cloned());
        })
        .build();
    let out = rt.run(&bundle).expect_ok(&rt);
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert_eq!(
        lines[0]["ok"], false,
        "{victim} is not in the container: {}",
        lines[0]
    );
    assert_eq!(lines[1]["type"], "c", "/dev/null is: {}", lines[1]);
    let audit = log_lines(&rt)
        .into_iter()
        .find(|l| l["audit"]["event"] == "stockade.profile.decision")
        .expect("decision event");
    let injected = audit["audit"]["injected"].to_string();
    let kept = nodes
        .iter()
        .filter(|n| {
            matches!(
                n["path"].as_str(),
                Some("/dev/null" | "/dev/zero" | "/dev/full" | "/dev/random" | "/dev/urandom")
                    | Some("/dev/tty" | "/dev/console" | "/dev/ptmx" | "/dev/net/tun")
            )
        })
        .count();
    assert!(
        injected.contains("devices.node")
            && injected.contains(&format!("removed {} device nodes", nodes.len() - kept)),
        "{audit}"
    );
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}
