//! The security team's tools, run as the binary (Stockade only): `profile check`
//! (exit 0/1, text and `--json`), `profile lint`, `profile explain`, and
//! `spec --profile P`, whose output P admits. `--profile` takes a name from the node
//! config's profiles dir or a path to a `.toml`.

use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use stockade_integration_tests::profiles::{
    expected_violations, fixture_on_this_host, fixtures_dir, PodSandbox,
};
use stockade_integration_tests::runtime::{profiles_dir, CmdOutput};
use stockade_integration_tests::{runtime, skip_on_reference, Runtime};

type Pairs = BTreeSet<(String, String)>;

/// `spec` written to a file in `dir`.
fn write_spec(dir: &Path, name: &str, spec: &Value) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    fs::write(&path, serde_json::to_string_pretty(spec).expect("spec")).expect("write spec");
    path
}

fn check(rt: &Runtime, profile: &str, config: &Path, json: bool) -> CmdOutput {
    let mut args = vec!["profile", "check", "--profile", profile];
    if json {
        args.push("--json");
    }
    let config = config.to_string_lossy().into_owned();
    args.push(&config);
    rt.exec_cmd(&args)
}

fn pairs_of_json(j: &Value) -> Pairs {
    j["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| {
            (
                v["rule"].as_str().unwrap_or_default().to_string(),
                v["path"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pairs_of_text(text: &str) -> Pairs {
    text.lines()
        .filter_map(|l| l.strip_prefix("  - ["))
        .map(|rest| {
            let (rule, rest) = rest.split_once("] ").expect("[rule] path");
            let (path, _) = rest.split_once(": ").expect("path: detail");
            (rule.to_string(), path.to_string())
        })
        .collect()
}

#[test]
fn check_refuses_every_fixture_with_its_violations_in_text_and_json() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "restricted");
    let sandbox = PodSandbox::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut names: Vec<String> = fs::read_dir(fixtures_dir())
        .expect("fixtures")
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".json")
                .map(str::to_string)
        })
        .filter(|n| n != "compliant")
        .collect();
    names.sort();
    assert!(names.len() >= 13, "{names:?}");
    for name in &names {
        let want = expected_violations(name);
        let path = write_spec(dir.path(), name, &fixture_on_this_host(name, &sandbox));

        let out = check(&rt, "restricted", &path, false);
        assert_eq!(out.code, Some(1), "{name}: {out:?}");
        assert!(
            out.stdout
                .starts_with("stockade: container refused by profile \"restricted\""),
            "{name}: {}",
            out.stdout
        );
        assert_eq!(pairs_of_text(&out.stdout), want, "{name}:\n{}", out.stdout);

        let out = check(&rt, "restricted", &path, true);
        assert_eq!(out.code, Some(1), "{name}: {out:?}");
        let j: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{name}: --json output is not JSON ({e}): {}", out.stdout));
        assert_eq!(j["outcome"], "refused", "{name}: {j}");
        assert_eq!(j["profile"], "restricted", "{name}: {j}");
        assert_eq!(pairs_of_json(&j), want, "{name}: {j}");
    }
}

#[test]
fn check_admits_a_compliant_spec() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "restricted");
    let sandbox = PodSandbox::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_spec(
        dir.path(),
        "compliant",
        &fixture_on_this_host("compliant", &sandbox),
    );
    let out = check(&rt, "restricted", &path, false);
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = check(&rt, "restricted", &path, true);
    assert_eq!(out.code, Some(0), "{out:?}");
    let j: Value = serde_json::from_str(&out.stdout).expect("--json");
    assert_ne!(j["outcome"], "refused", "{j}");
    assert_eq!(j["violations"], Value::Array(vec![]), "{j}");
}

#[test]
fn profile_given_as_a_path_works_like_a_name() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = PodSandbox::start();
    let path = write_spec(
        dir.path(),
        "docker-sock",
        &fixture_on_this_host("docker-sock", &sandbox),
    );
    let by_path = profiles_dir().join("restricted.toml");
    let out = check(&rt, &by_path.to_string_lossy(), &path, true);
    assert_eq!(out.code, Some(1), "{out:?}");
    let j: Value = serde_json::from_str(&out.stdout).expect("--json");
    assert_eq!(pairs_of_json(&j), expected_violations("docker-sock"));
}

#[test]
fn lint_accepts_the_shipped_profiles() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    for p in ["restricted", "baseline", "default"] {
        let path = profiles_dir().join(format!("{p}.toml"));
        for arg in [path.to_string_lossy().into_owned(), p.to_string()] {
            let out = rt.exec_cmd(&["profile", "lint", &arg]);
            assert_eq!(out.code, Some(0), "lint {arg}: {out:?}");
        }
    }
}

/// A copy of restricted.toml with `from` replaced by `to`, in `dir`.
fn edited_restricted(dir: &Path, from: &str, to: &str) -> PathBuf {
    let text = fs::read_to_string(profiles_dir().join("restricted.toml")).expect("read");
    assert!(text.contains(from));
    let path = dir.join("restricted-edited.toml");
    fs::write(&path, text.replacen(from, to, 1)).expect("write");
    // The filter file is relative to the profile's directory.
    let seccomp = dir.join("seccomp");
    if !seccomp.exists() {
        fs::create_dir(&seccomp).expect("mkdir seccomp");
        fs::copy(
            profiles_dir().join("seccomp/default.toml"),
            seccomp.join("default.toml"),
        )
        .expect("copy seccomp data");
    }
    path
}

#[test]
fn lint_reports_a_contradiction() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let dir = tempfile::tempdir().expect("tempdir");
    // `read` is on the default filter's allow-list: denying it contradicts the filter.
    let path = edited_restricted(
        dir.path(),
        "deny = [\n",
        "deny = [\n    { name = \"read\", reason = \"contradiction under test\" },\n",
    );
    let out = rt.exec_cmd(&["profile", "lint", &path.to_string_lossy()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("read is both allowed by the default filter and denied"),
        "{all}"
    );
}

#[test]
fn lint_reports_an_unknown_syscall() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = edited_restricted(
        dir.path(),
        "{ name = \"bpf\"",
        "{ name = \"no_such_syscall\"",
    );
    let out = rt.exec_cmd(&["profile", "lint", &path.to_string_lossy()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("no_such_syscall"), "{all}");
    // The shipped prefixes' variables resolve (standard directories here): no
    // warning that they miss the pod directories.
    assert!(!all.contains("nothing covers"), "{all}");
    assert!(
        all.contains(&*path.to_string_lossy()),
        "names the file: {all}"
    );
}

#[test]
fn explain_describes_seccomp_and_the_user_namespace() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let out = rt
        .exec_cmd(&["profile", "explain", "default"])
        .expect_ok(&rt);
    let text = out.stdout.to_lowercase();
    for needle in ["seccomp", "user namespace", "\"default\""] {
        assert!(
            text.contains(needle),
            "explain lacks {needle:?}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn spec_for_a_profile_passes_its_check() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let dir = tempfile::tempdir().expect("tempdir");
    for p in ["restricted", "baseline", "default"] {
        let out = rt
            .exec_cmd(&["spec", "--profile", p, "--stdout"])
            .expect_ok(&rt);
        let spec: Value = serde_json::from_str(&out.stdout).expect("spec JSON");
        let path = write_spec(dir.path(), p, &spec);
        let out = check(&rt, p, &path, true);
        assert_eq!(out.code, Some(0), "{p}: {out:?}");
        // Also without --stdout: written into the bundle directory.
        let bundle = dir.path().join(format!("bundle-{p}"));
        fs::create_dir(&bundle).expect("mkdir bundle");
        rt.exec_cmd(&[
            "spec",
            "--profile",
            p,
            "--bundle",
            &bundle.to_string_lossy(),
        ])
        .expect_ok(&rt);
        let out = check(&rt, p, &bundle.join("config.json"), false);
        assert_eq!(out.code, Some(0), "{p}: {out:?}");
    }
}

/// `profile import-seccomp` turns a Docker seccomp JSON into profile seccomp data
/// that the profile loader accepts, and names on stderr what it could not carry
/// over (foreign-architecture names, capability-conditional rules).
#[test]
fn import_seccomp_converts_docker_json_and_reports_drops() {
    if skip_on_reference("profile tools are Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("docker.json");
    fs::write(
        &json,
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
            "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],
            "syscalls":[
              {"names":["read","write","exit_group","_llseek"],"action":"SCMP_ACT_ALLOW"},
              {"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
              {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]}"#,
    )
    .unwrap();
    let out = rt.exec_cmd(&[
        "profile",
        "import-seccomp",
        json.to_str().unwrap(),
        "--name",
        "docker",
    ]);
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stderr.contains("_llseek"), "{}", out.stderr);
    assert!(out.stderr.contains("mount"), "{}", out.stderr);
    let filter = stockade::profile::load::parse_seccomp_filter(&out.stdout, "imported.toml")
        .unwrap_or_else(|e| panic!("imported TOML loads: {e}\n{}", out.stdout));
    let allowed: Vec<&str> = filter.allow.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(allowed, ["read", "write", "exit_group"]);
    assert_eq!(filter.errno[0].errno, 38);
}

/// Issue 7: a node whose containerd keeps its state somewhere else says so in its node
/// config's `[paths]`, and the shipped `restricted` profile, unedited, admits a pod
/// whose sandbox `/dev/shm` comes from there and refuses the standard path this node
/// does not use. `explain` shows the prefix as written and as resolved here.
#[test]
fn node_config_paths_move_the_shipped_bind_source_prefixes() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "restricted");
    rt.set_node_config(&format!(
        "schema = 1\nprofiles_dir = {:?}\ndefault_profile = \"restricted\"\n\
         [paths]\ncontainerd_state = \"/srv/ctd-state\"\n",
        profiles_dir()
    ));
    let sandbox = PodSandbox::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let standard = fixture_on_this_host("compliant", &sandbox);
    let moved: Value = serde_json::from_str(&standard.to_string().replace(
        "/run/containerd/io.containerd.grpc.v1.cri/sandboxes",
        "/srv/ctd-state/io.containerd.grpc.v1.cri/sandboxes",
    ))
    .expect("spec");
    assert_ne!(
        moved, standard,
        "the fixture binds a sandbox file from containerd's state"
    );
    let out = check(
        &rt,
        "restricted",
        &write_spec(dir.path(), "moved", &moved),
        false,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = check(
        &rt,
        "restricted",
        &write_spec(dir.path(), "std", &standard),
        false,
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    let refused: Vec<_> = pairs_of_text(&out.stdout).into_iter().collect();
    assert_eq!(refused.len(), 1, "{out:?}");
    assert_eq!(refused[0].0, "mounts.bind_source", "{out:?}");
    assert!(
        out.stdout
            .contains("/srv/ctd-state/io.containerd.grpc.v1.cri/sandboxes"),
        "the refusal names this node's directory: {out:?}"
    );
    let out = rt
        .exec_cmd(&["profile", "explain", "restricted"])
        .expect_ok(&rt);
    assert!(
        out.stdout.contains(
            "${containerd_state}/io.containerd.grpc.v1.cri/sandboxes \
             (here /srv/ctd-state/io.containerd.grpc.v1.cri/sandboxes)"
        ),
        "{}",
        out.stdout
    );
}
