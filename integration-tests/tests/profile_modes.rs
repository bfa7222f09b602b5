//! Profile modes and profile selection with real containers (Stockade only):
//! `audit` and `warn` start a violating container and log the report; a broken
//! profile or node config refuses every container with an error naming the file and
//! leaves nothing behind (fail closed); the `org.stockade.profile` annotation can
//! make a container stricter, never weaker.

use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use stockade_integration_tests::profiles::{bundle_from_spec, status_hex, status_str};
use stockade_integration_tests::runtime::{profiles_dir, CmdOutput};
use stockade_integration_tests::{
    assert_nothing_left_behind, runtime, skip_on_reference, Bundle, BundleBuilder, Runtime,
};

const PROFILE_ANNOTATION: &str = "org.stockade.profile";

/// A private, editable copy of the repository's `profiles/`.
struct ProfilesCopy {
    dir: tempfile::TempDir,
}

impl ProfilesCopy {
    fn new() -> Self {
        Self {
            dir: stockade_integration_tests::runtime::profiles_copy(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Replaces the first occurrence of `from` in `rel` (which must contain it).
    fn edit(&self, rel: &str, from: &str, to: &str) {
        let path = self.file(rel);
        let text = fs::read_to_string(&path).expect("read profile");
        assert!(text.contains(from), "{rel} has no {from:?}");
        fs::write(&path, text.replacen(from, to, 1)).expect("write profile");
    }

    /// A node config using this directory with `default` as the node default.
    fn node_config(&self, default: &str) -> String {
        format!(
            "schema = 1\nprofiles_dir = {:?}\ndefault_profile = {default:?}\nannotation_allowed = [\"restricted\", \"baseline\", \"default\"]\n",
            self.path()
        )
    }
}

fn log_lines(rt: &Runtime) -> Vec<Value> {
    rt.log_text()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The one decision event of the log.
fn audit_event(rt: &Runtime) -> Value {
    let events: Vec<Value> = log_lines(rt)
        .into_iter()
        .filter(|l| l["audit"]["event"] == "stockade.profile.decision")
        .map(|l| l["audit"].clone())
        .collect();
    assert_eq!(events.len(), 1, "one decision event: {events:#?}");
    events.into_iter().next().expect("one event")
}

fn rules_of(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|v| v["rule"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A spec that breaks `restricted` in several ways and still runs on this host:
/// the harness default (runc-like: no seccomp, uid 0, writable root, incomplete
/// masked paths) plus CAP_SYS_ADMIN.
fn violating() -> BundleBuilder {
    BundleBuilder::new()
        .capabilities(&["CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE"])
        .args(&["/usr/bin/probe"])
}

/// The violations `restricted` (enforcing) finds in `bundle`, from `profile check`.
fn enforced_rules(rt: &Runtime, profile: &Path, bundle: &Bundle) -> BTreeSet<String> {
    let out = rt.exec_cmd(&[
        "profile".as_ref(),
        "check".as_ref(),
        "--json".as_ref(),
        "--profile".as_ref(),
        profile.as_os_str(),
        bundle.path().join("config.json").as_os_str(),
    ]);
    assert_eq!(out.code, Some(1), "check must refuse: {out:?}");
    let j: Value = serde_json::from_str(&out.stdout).expect("check --json");
    rules_of(&j["violations"])
}

fn mode_starts_and_logs(mode: &str) {
    if skip_on_reference("hardening profiles are Stockade's") {
        return;
    }
    let profiles = ProfilesCopy::new();
    let rt = runtime!();
    rt.set_node_config(&profiles.node_config("restricted"));
    let bundle = violating().build();
    let want = enforced_rules(&rt, &profiles.file("restricted.toml"), &bundle);
    assert!(
        want.contains("capabilities.allowed") && want.contains("seccomp.required"),
        "{want:?}"
    );

    profiles.edit(
        "restricted.toml",
        "mode = \"enforce\"",
        &format!("mode = {mode:?}"),
    );
    let r = rt.run_report(&bundle);
    // It ran, with what it asked for (audit/warn do not refuse) ...
    assert_ne!(
        status_hex(&r, "CapBnd") & (1 << 21),
        0,
        "CAP_SYS_ADMIN kept: {r}"
    );
    // ... and with everything the profile injects regardless of mode.
    assert_eq!(status_str(&r, "NoNewPrivs"), "1", "{r}");
    let event = audit_event(&rt);
    assert_ne!(event["outcome"], "refused", "{event}");
    assert_eq!(event["profile"], "restricted", "{event}");
    assert_eq!(event["violations"], Value::Array(vec![]), "{event}");
    assert_eq!(rules_of(&event["warnings"]), want, "{event}");
    for w in event["warnings"].as_array().expect("warnings") {
        assert_eq!(w["mode"], mode, "{w}");
    }
    // One warn-level log line per violation, naming its rule.
    let warns: Vec<String> = log_lines(&rt)
        .into_iter()
        .filter(|l| l["level"] == "warning" && l.get("audit").is_none())
        .map(|l| l.to_string())
        .collect();
    for rule in &want {
        assert!(
            warns.iter().any(|w| w.contains(rule.as_str())),
            "no warning for {rule}: {warns:#?}"
        );
    }
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

#[test]
fn audit_mode_starts_a_violating_container_and_logs_the_report() {
    mode_starts_and_logs("audit");
}

#[test]
fn warn_mode_starts_a_violating_container_and_logs_the_report() {
    mode_starts_and_logs("warn");
}

/// Fail closed: `create` exits 1 with an error naming `needle` (a file or a
/// profile) and leaves nothing behind, for a compliant and a violating container.
fn assert_every_container_refused(rt: &Runtime, needles: &[&str]) {
    let compliant = {
        // Generated by a runtime with a working configuration.
        let good = runtime!(profile = "restricted");
        let out = good
            .exec_cmd(&["spec", "--profile", "restricted", "--stdout"])
            .expect_ok(&good);
        let spec: Value = serde_json::from_str(&out.stdout).expect("spec JSON");
        bundle_from_spec(spec).args(&["/usr/bin/probe"]).build()
    };
    let bare = violating().build();
    for bundle in [&compliant, &bare] {
        match rt.create(bundle) {
            Ok(c) => panic!("{c:?} created under a broken configuration"),
            Err(failed) => {
                let out: &CmdOutput = &failed.out;
                assert_eq!(out.code, Some(1), "{out:?}");
                for needle in needles {
                    assert!(
                        out.stderr.contains(needle),
                        "error does not name {needle:?}: {}",
                        out.stderr
                    );
                }
                assert!(
                    !log_lines(rt)
                        .iter()
                        .any(|l| l["audit"]["container_id"] == bundle.id.as_str()),
                    "no decision without a profile"
                );
                assert_nothing_left_behind(
                    rt,
                    &bundle.id,
                    &bundle.cgroup_relative(),
                    &bundle.rootfs,
                );
                assert!(rt.userns_ranges().is_empty(), "{:?}", rt.userns_db());
            }
        }
    }
}

fn broken(edit: impl FnOnce(&ProfilesCopy), needles: impl FnOnce(&ProfilesCopy) -> Vec<String>) {
    if skip_on_reference("hardening profiles are Stockade's") {
        return;
    }
    let profiles = ProfilesCopy::new();
    edit(&profiles);
    let rt = runtime!();
    rt.set_node_config(&profiles.node_config("restricted"));
    let needles = needles(&profiles);
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    assert_every_container_refused(&rt, &needles);
}

#[test]
fn profile_with_a_syntax_error_refuses_every_container() {
    broken(
        |p| p.edit("restricted.toml", "[capabilities]", "[capabilities"),
        |p| {
            vec![
                "restricted".into(),
                p.file("restricted.toml").display().to_string(),
            ]
        },
    );
}

#[test]
fn profile_with_an_unknown_key_refuses_every_container() {
    broken(
        |p| {
            p.edit(
                "restricted.toml",
                "[capabilities]\n",
                "[capabilities]\nallow_everything = true\n",
            )
        },
        |p| {
            vec![
                p.file("restricted.toml").display().to_string(),
                "allow_everything".into(),
            ]
        },
    );
}

#[test]
fn profile_whose_seccomp_data_is_missing_refuses_every_container() {
    broken(
        |p| fs::remove_file(p.file("seccomp/default.toml")).expect("remove seccomp data"),
        |p| vec![p.file("seccomp/default.toml").display().to_string()],
    );
}

/// `writable_tmpfs = ["tmp", "/x/../../etc"]` used to load and mount a tmpfs over
/// whatever the path resolved to; every path list is checked at load.
#[test]
fn profile_with_a_dot_dot_path_refuses_every_container() {
    if skip_on_reference("hardening profiles are Stockade's") {
        return;
    }
    let profiles = ProfilesCopy::new();
    profiles.edit(
        "default.toml",
        "writable_tmpfs = [\"/tmp\",",
        "writable_tmpfs = [\"/x/../../etc\", \"/tmp\",",
    );
    let rt = runtime!();
    rt.set_node_config(&profiles.node_config("default"));
    let file = profiles.file("default.toml").display().to_string();
    assert_every_container_refused(
        &rt,
        &[
            &file,
            "filesystem.writable_tmpfs",
            "\"/x/../../etc\" must not contain '..'",
        ],
    );
}

#[test]
fn node_config_naming_a_missing_profile_refuses_every_container() {
    if skip_on_reference("hardening profiles are Stockade's") {
        return;
    }
    let profiles = ProfilesCopy::new();
    let rt = runtime!();
    rt.set_node_config(&profiles.node_config("no-such-profile"));
    let missing = profiles.file("no-such-profile.toml").display().to_string();
    assert_every_container_refused(&rt, &["no-such-profile", &missing]);
}

#[test]
fn missing_node_config_given_explicitly_refuses_every_container() {
    if skip_on_reference("hardening profiles are Stockade's") {
        return;
    }
    let rt = runtime!();
    fs::remove_file(rt.node_config_path()).expect("remove node config");
    let path = rt.node_config_path().display().to_string();
    assert_every_container_refused(&rt, &[&path]);
}

#[test]
fn annotation_cannot_weaken_the_profile() {
    if skip_on_reference("hardening profiles are Stockade's") {
        return;
    }
    let rt = runtime!(profile = "restricted");
    let bundle = violating()
        .annotation(PROFILE_ANNOTATION, "baseline")
        .build();
    match rt.create(&bundle) {
        Ok(c) => panic!("{c:?}: annotation weakened restricted to baseline"),
        Err(failed) => {
            let err = &failed.out.stderr;
            assert_eq!(failed.out.code, Some(1), "{err}");
            assert!(
                err.contains(PROFILE_ANNOTATION)
                    && err.contains("\"baseline\"")
                    && err.contains("weaker than \"restricted\""),
                "{err}"
            );
            assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
        }
    };
}

#[test]
fn annotation_not_on_the_allow_list_is_refused() {
    if skip_on_reference("hardening profiles are Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let bundle = violating()
        .annotation(PROFILE_ANNOTATION, "unconfined")
        .build();
    match rt.create(&bundle) {
        Ok(c) => panic!("{c:?}: annotation selected unconfined"),
        Err(failed) => {
            let err = &failed.out.stderr;
            assert_eq!(failed.out.code, Some(1), "{err}");
            assert!(err.contains("\"unconfined\""), "{err}");
            assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
        }
    };
}

#[test]
fn annotation_can_make_a_container_stricter() {
    if skip_on_reference("hardening profiles are Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    // Under the node default this spec is hardened and runs (see profile_injection);
    // asking for restricted gets it refused by restricted.
    let bundle = violating()
        .annotation(PROFILE_ANNOTATION, "restricted")
        .build();
    match rt.create(&bundle) {
        Ok(c) => panic!("{c:?}: annotation to restricted was not applied"),
        Err(failed) => {
            let err = &failed.out.stderr;
            assert_eq!(failed.out.code, Some(1), "{err}");
            assert!(
                err.starts_with("stockade: container refused by profile \"restricted\""),
                "{err}"
            );
            assert!(err.contains("[capabilities.allowed]"), "{err}");
            assert_eq!(audit_event(&rt)["profile"], "restricted");
            assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
        }
    }

    // And a spec restricted admits runs under it, as non-root.
    let out = rt
        .exec_cmd(&["spec", "--profile", "restricted", "--stdout"])
        .expect_ok(&rt);
    let spec: Value = serde_json::from_str(&out.stdout).expect("spec JSON");
    let rt = runtime!(profile = "default");
    let bundle = bundle_from_spec(spec)
        .annotation(PROFILE_ANNOTATION, "restricted")
        .args(&["/usr/bin/probe"])
        .build();
    let r = rt.run_report(&bundle);
    assert_eq!(status_str(&r, "Uid").split_whitespace().next(), Some("1"));
    let event = audit_event(&rt);
    assert_eq!(event["profile"], "restricted", "{event}");
    assert_ne!(event["outcome"], "refused", "{event}");
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

/// A profile, its seccomp data or a spec naming a FIFO or a device is refused at
/// once, naming the file: reading one used to hang forever (FIFO) or fill memory
/// (`/dev/zero`).
#[test]
fn profile_and_spec_files_must_be_regular_files() {
    if skip_on_reference("profiles are Stockade's") {
        return;
    }
    let rt = runtime!();
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = |name: &str| {
        let path = dir.path().join(name);
        mkfifo(&path);
        path
    };
    let spec = dir.path().join("config.json");
    std::fs::write(
        &spec,
        serde_json::to_string(&stockade_integration_tests::bundle::default_spec("x")).unwrap(),
    )
    .expect("spec");
    let timeout = std::time::Duration::from_secs(10);
    let check = |profile: &Path, spec: &Path| {
        rt.exec_cmd_timeout(
            &[
                "profile".as_ref(),
                "check".as_ref(),
                "--profile".as_ref(),
                profile.as_os_str(),
                spec.as_os_str(),
            ],
            timeout,
        )
    };
    // --profile naming a FIFO.
    let out = check(&fifo("team.toml"), &spec);
    assert_eq!(out.code, Some(2), "the tool could not do its job: {out:?}");
    assert!(out.stderr.contains("FIFO"), "{out:?}");
    // A profile whose seccomp default_filter is a FIFO.
    let profiles = dir.path().join("profiles");
    std::fs::create_dir_all(profiles.join("seccomp")).expect("profiles dir");
    std::fs::copy(
        profiles_dir().join("default.toml"),
        profiles.join("default.toml"),
    )
    .expect("copy profile");
    mkfifo(&profiles.join("seccomp/default.toml"));
    let out = check(&profiles.join("default.toml"), &spec);
    assert_eq!(out.code, Some(2), "the tool could not do its job: {out:?}");
    assert!(
        out.stderr.contains("seccomp/default.toml") && out.stderr.contains("FIFO"),
        "{out:?}"
    );
    // The spec itself a device.
    let out = check(
        &profiles_dir().join("unconfined.toml"),
        Path::new("/dev/zero"),
    );
    assert_eq!(out.code, Some(2), "the tool could not do its job: {out:?}");
    assert!(out.stderr.contains("device"), "{out:?}");
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(
        rc,
        0,
        "mkfifo {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}
