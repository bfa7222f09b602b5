//! The security team's tools as a CI pipeline uses them (Stockade only): exit codes
//! (0 admitted / clean, 1 refused / findings, 2 error) and a JSON document on stdout
//! even on errors; `explain` on a machine without a node config; `import-seccomp`
//! summaries, errors and `--exclude`; `spec` determinism and overwrite refusal;
//! `list --format`; the shim's help; `lint` reporting every problem at once with
//! `file:line:column`. Outputs are compared with golden files under
//! `integration-tests/golden/` (`STOCKADE_UPDATE_GOLDEN=1` rewrites them).

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use stockade_integration_tests::golden::assert_golden;
use stockade_integration_tests::runtime::{profiles_dir, CmdOutput};
use stockade_integration_tests::{runtime, skip_on_reference, Runtime};

/// `rt` with `args`, without any node config: the default path is used, as on a fresh
/// machine.
fn without_node_config(rt: &Runtime, args: &[&str]) -> CmdOutput {
    assert!(
        !Path::new("/etc/stockade/config.toml").exists(),
        "this test describes a machine without /etc/stockade/config.toml"
    );
    let out = rt
        .command(args)
        .env_remove("STOCKADE_CONFIG")
        .output()
        .expect("spawn stockade");
    CmdOutput {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The spec `spec --profile restricted` writes, which restricted admits.
fn restricted_spec(rt: &Runtime) -> Value {
    let out = rt
        .exec_cmd(&["spec", "--profile", "restricted", "--stdout"])
        .expect_ok(rt);
    serde_json::from_str(&out.stdout).expect("spec JSON")
}

fn write_json(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, serde_json::to_string_pretty(v).expect("json")).expect("write");
    path
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn check_exits_0_admitted_1_refused_2_error_and_json_on_errors() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = restricted_spec(&rt);
    let ok = write_json(dir.path(), "ok.json", &spec);
    spec["process"]["user"]["uid"] = 0.into();
    let root = write_json(dir.path(), "root.json", &spec);
    let garbage = dir.path().join("garbage.json");
    fs::write(&garbage, "{ not json").expect("write");
    let missing = dir.path().join("missing.json");

    let check = |profile: &str, path: &Path, json: bool| {
        let path = s(path);
        let mut args = vec!["profile", "check", "--profile", profile, path.as_str()];
        if json {
            args.push("--json");
        }
        rt.exec_cmd(&args)
    };
    for json in [false, true] {
        assert_eq!(check("restricted", &ok, json).code, Some(0));
        let out = check("restricted", &root, json);
        assert_eq!(out.code, Some(1), "{out:?}");
        for bad in [&garbage, &missing] {
            let out = check("restricted", bad, json);
            assert_eq!(out.code, Some(2), "{out:?}");
            assert!(out.stderr.contains(&s(bad)), "names the file: {out:?}");
        }
        let out = check("no-such-profile", &ok, json);
        assert_eq!(out.code, Some(2), "{out:?}");
        assert!(out.stderr.contains("no-such-profile"), "{out:?}");
    }
    // --json: stdout is one JSON document on every outcome.
    let out = check("restricted", &missing, true);
    let j: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("--json error output is not JSON ({e}): {out:?}"));
    assert_eq!(j["outcome"], "error", "{j}");
    let golden = serde_json::to_string_pretty(&j).expect("json") + "\n";
    assert_golden("check-error.json", &golden.replace(&s(dir.path()), "$DIR"));
    let out = check("restricted", &root, true);
    let j: Value = serde_json::from_str(&out.stdout).expect("refusal JSON");
    assert_eq!(j["outcome"], "refused", "{j}");
    assert_golden(
        "check-refused-root.json",
        &(serde_json::to_string_pretty(&j["violations"]).expect("json") + "\n"),
    );
    let out = check("restricted", &root, false);
    assert_golden("check-refused-root.txt", &out.stdout);
}

#[test]
fn explain_works_without_a_node_config_and_prints_no_debug_text() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!();
    // The README's example, on a machine that has no node config yet.
    for name in ["restricted", "baseline", "default", "unconfined"] {
        let out = without_node_config(&rt, &["profile", "explain", name]);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(
            !out.stdout.contains("Some(") && !out.stdout.contains("\"seccomp/"),
            "debug text in:\n{}",
            out.stdout
        );
        assert_golden(&format!("explain-{name}.txt"), &out.stdout);
    }
    // A name that is neither in a profiles dir nor shipped is still an error (exit 2).
    let out = without_node_config(&rt, &["profile", "explain", "my-team"]);
    assert_eq!(out.code, Some(2), "{out:?}");
}

#[test]
fn explain_names_the_landlock_abi_the_plan_needs() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = fs::read_to_string(profiles_dir().join("restricted.toml")).expect("read");
    // min_abi 1, but TCP port rules need ABI 4 and the signal scope ABI 6.
    let text = text.replace(
        "auto_rules = true\n",
        "auto_rules = true\ntcp_bind = [8080]\ntcp_connect = [80, 443]\nscope_signal = true\n",
    );
    let path = dir.path().join("web.toml");
    fs::write(&path, text).expect("write");
    fs::create_dir(dir.path().join("seccomp")).expect("mkdir");
    fs::copy(
        profiles_dir().join("seccomp/default.toml"),
        dir.path().join("seccomp/default.toml"),
    )
    .expect("copy");
    let out = rt
        .exec_cmd(&["profile", "explain", &s(&path)])
        .expect_ok(&rt);
    let landlock = out
        .stdout
        .lines()
        .find(|l| l.starts_with("* Landlock"))
        .expect("Landlock line");
    assert_eq!(
        landlock,
        "* Landlock: the container may read and execute the image, and write only to its \
         writable mounts; TCP bind only on port 8080; TCP connect only on ports 80, 443; \
         needs Landlock ABI 6 (containers are refused on kernels without it)."
    );
}

/// Docker-style JSON with names of every kind the importer must tell apart.
const IMPORT_SOURCE: &str = r#"{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
  "syscalls": [
    {"names": ["read", "write", "exit_group", "chown32", "_llseek", "socketcall", "fstat64"], "action": "SCMP_ACT_ALLOW"},
    {"names": ["io_uring_setup", "io_uring_enter"], "action": "SCMP_ACT_ALLOW"},
    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
    {"names": ["ptrace"], "action": "SCMP_ACT_LOG"},
    {"names": ["openat3"], "action": "SCMP_ACT_ALLOW"}
  ]
}"#;

#[test]
fn import_seccomp_summarises_other_abis_fails_on_unknown_names_and_excludes() {
    if skip_on_reference("profile tools are Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("source.json");
    fs::write(&json, IMPORT_SOURCE).expect("write");
    let json = s(&json);

    // `openat3` is no syscall anywhere: an error (exit 1), named on stderr.
    let out = rt.exec_cmd(&["profile", "import-seccomp", &json, "--name", "web"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("openat3"), "{}", out.stderr);
    assert!(!out.stderr.contains("UnknownSyscall"), "{}", out.stderr);

    let out = rt.exec_cmd(&[
        "profile",
        "import-seccomp",
        &json,
        "--name",
        "web",
        "--exclude",
        "openat3",
        "io_uring_setup",
        "--exclude=io_uring_enter",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let stderr = out.stderr.replace(&json, "$SOURCE");
    // The other-ABI names are one line, not one line each.
    assert_eq!(stderr.matches("only on other ABIs").count(), 1, "{stderr}");
    assert_golden("import-seccomp.stderr", &stderr);
    assert_golden("import-seccomp.toml", &out.stdout.replace(&json, "$SOURCE"));
    let filter = stockade::profile::load::parse_seccomp_filter(&out.stdout, "web.toml")
        .unwrap_or_else(|e| panic!("imported TOML loads: {e}\n{}", out.stdout));
    let allowed: Vec<&str> = filter.allow.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(allowed, ["read", "write", "exit_group"]);
    assert_eq!(
        filter.errno[0].why,
        format!("fails with errno 38 in {json}"),
        "an errno rule is not labelled as allowed"
    );
}

#[test]
fn spec_is_deterministic_never_overwrites_and_is_not_named_youki() {
    if skip_on_reference("Stockade's spec differs from runc's") {
        return;
    }
    let rt = runtime!(profile = "default");
    // `unconfined` has no [capabilities] section: runc's 14 capabilities.
    let runs: Vec<String> = (0..4)
        .map(|_| {
            rt.exec_cmd(&["spec", "--profile", "unconfined", "--stdout"])
                .expect_ok(&rt)
                .stdout
        })
        .collect();
    assert!(runs.windows(2).all(|w| w[0] == w[1]), "{runs:#?}");
    let spec: Value = serde_json::from_str(&runs[0]).expect("spec");
    let bounding: Vec<&str> = spec["process"]["capabilities"]["bounding"]
        .as_array()
        .expect("bounding")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut sorted = bounding.clone();
    sorted.sort_unstable();
    assert!(bounding.len() > 1 && bounding == sorted, "{bounding:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = s(dir.path());
    let out = rt.exec_cmd(&["spec", "--bundle", &bundle]).expect_ok(&rt);
    assert!(!out.stdout.contains("youki"));
    let config = dir.path().join("config.json");
    let written = fs::read_to_string(&config).expect("config.json");
    let spec: Value = serde_json::from_str(&written).expect("spec");
    assert_eq!(spec["hostname"], "stockade");
    assert!(!written.contains("youki"), "{written}");
    // Like runc: a second `spec` refuses to overwrite, and leaves the file alone.
    fs::write(&config, "{\"reviewed\": true}").expect("write");
    let out = rt.exec_cmd(&["spec", "--bundle", &bundle]);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    assert!(
        !out.stderr.to_lowercase().contains("youki"),
        "{}",
        out.stderr
    );
    assert_eq!(
        fs::read_to_string(&config).expect("config.json"),
        "{\"reviewed\": true}"
    );
}

#[test]
fn list_rejects_unknown_formats() {
    let rt = runtime!();
    for ok in ["table", "json"] {
        rt.exec_cmd(&["list", "--format", ok]).expect_ok(&rt);
    }
    let out = rt.exec_cmd(&["list", "--format", "yaml"]);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("yaml"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn help_texts_have_no_known_typos() {
    if skip_on_reference("Stockade's help") {
        return;
    }
    let rt = runtime!();
    for verb in ["create", "run", "exec", "list"] {
        let out = rt.exec_cmd(&[verb, "--help"]).expect_ok(&rt);
        for typo in ["pivot rool", "path ,", "(default or table)"] {
            assert!(!out.stdout.contains(typo), "{verb} --help: {typo:?}");
        }
    }
}

#[test]
fn shim_prints_its_help() {
    if skip_on_reference("the shim is Stockade's") {
        return;
    }
    let shim =
        stockade_integration_tests::containerd::shim_dir().join("containerd-shim-stockade-v2");
    for flag in ["-h", "-help", "--help"] {
        let out = Command::new(&shim).arg(flag).output().expect("run shim");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{flag}: {out:?}");
        assert!(
            stdout.starts_with("Usage: containerd-shim-stockade-v2"),
            "{stdout}"
        );
        assert!(stdout.contains("-namespace"), "{stdout}");
    }
}

/// A copy of restricted.toml (and its seccomp data) in `dir` as `name`.toml, with each
/// `(from, to)` replaced once.
fn edited_restricted(dir: &Path, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = fs::read_to_string(profiles_dir().join("restricted.toml")).expect("read");
    for (from, to) in edits {
        assert!(text.contains(from), "{from:?}");
        text = text.replacen(from, to, 1);
    }
    let path = dir.join(format!("{name}.toml"));
    fs::write(&path, text).expect("write");
    let seccomp = dir.join("seccomp");
    if !seccomp.exists() {
        fs::create_dir(&seccomp).expect("mkdir");
        fs::copy(
            profiles_dir().join("seccomp/default.toml"),
            seccomp.join("default.toml"),
        )
        .expect("copy");
    }
    path
}

#[test]
fn lint_reports_every_problem_at_once_with_file_line_and_column() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let dir = tempfile::tempdir().expect("tempdir");
    // A security team's `web` profile with the mistakes people make.
    let path = edited_restricted(
        dir.path(),
        "web",
        &[
            ("name = \"restricted\"", "name = \"web\""),
            ("\"CAP_NET_BIND_SERVICE\"", "\"NET_BIND_SERVICE\""),
            ("name = \"bpf\"", "name = \"bfp\""),
            (
                "writable_tmpfs = []",
                "writable_tmpfs = [\"tmp\", \"/x/../../etc\", \"/run/\"]",
            ),
            ("\"/proc/sys\"", "\"proc/sys\""),
            (
                "auto_rules = true\n",
                "auto_rules = true\ntcp_connect = []\n",
            ),
        ],
    );
    let out = rt.exec_cmd(&["profile", "lint", &s(&path)]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let text = out.stdout.replace(&s(dir.path()), "$DIR");
    assert_golden("lint-web.txt", &text);
    for line in text.lines().skip(1) {
        assert!(
            line.starts_with("$DIR/web.toml:"),
            "every finding names the file: {line}"
        );
    }

    // A missing filter file says what its path is relative to.
    let path = edited_restricted(
        dir.path(),
        "nofilter",
        &[("\"seccomp/default.toml\"", "\"seccomp/web.toml\"")],
    );
    let out = rt.exec_cmd(&["profile", "lint", &s(&path)]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "cannot read {} (seccomp.default_filter \"seccomp/web.toml\" is relative to the \
             profile's directory)",
            dir.path().join("seccomp/web.toml").display()
        )),
        "{}",
        out.stdout
    );
    // An unreadable profile is not a finding but an error: exit 2.
    let out = rt.exec_cmd(&["profile", "lint", &s(&dir.path().join("missing.toml"))]);
    assert_eq!(out.code, Some(2), "{out:?}");
}

#[test]
fn lint_of_a_syntax_error_points_at_it() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = edited_restricted(
        dir.path(),
        "typo",
        &[("[capabilities]\n", "[capabilities]\nallowd = []\n")],
    );
    let out = rt.exec_cmd(&["profile", "lint", &s(&path)]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let text = out.stdout.replace(&s(dir.path()), "$DIR");
    assert_golden("lint-typo.txt", &text);
}

#[test]
fn diff_lists_what_each_profile_allows_that_the_other_does_not() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let out = rt.exec_cmd(&["profile", "diff", "baseline", "restricted"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_golden("diff-baseline-restricted.txt", &out.stdout);
    let out = rt.exec_cmd(&["profile", "diff", "baseline", "restricted", "--json"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let j: Value = serde_json::from_str(&out.stdout).expect("diff JSON");
    assert_golden(
        "diff-baseline-restricted.json",
        &(serde_json::to_string_pretty(&j).expect("json") + "\n"),
    );
    // Swapped, the same rules with the sides swapped.
    let back: Value = serde_json::from_str(
        &rt.exec_cmd(&["profile", "diff", "restricted", "baseline", "--json"])
            .stdout,
    )
    .expect("diff JSON");
    let rules = |j: &Value, a: &str, b: &str| -> Vec<(String, Value, Value)> {
        j["differences"]
            .as_array()
            .expect("differences")
            .iter()
            .map(|d| (d["rule"].to_string(), d[a].clone(), d[b].clone()))
            .collect()
    };
    assert_eq!(
        rules(&j, "only_a", "only_b"),
        rules(&back, "only_b", "only_a")
    );
    let out = rt.exec_cmd(&["profile", "diff", "restricted", "restricted"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.ends_with("they allow the same\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn show_prints_the_filter_and_a_containers_plan() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let out = rt.exec_cmd(&["profile", "show", "default"]).expect_ok(&rt);
    assert_golden("show-default.txt", &out.stdout);
    let j: Value = serde_json::from_str(
        &rt.exec_cmd(&["profile", "show", "default", "--json"])
            .expect_ok(&rt)
            .stdout,
    )
    .expect("show JSON");
    let bpf = j["seccomp"]["bpf_instructions"]
        .as_u64()
        .expect("bpf length");
    let allow = j["seccomp"]["allow"].as_array().expect("allow");
    assert!(allow.iter().any(|n| n == "read") && !allow.iter().any(|n| n == "bpf"));

    // A bare spec created under `default`: its plan carries the injected filter, whose
    // program is the one `show default` measured.
    let bundle = stockade_integration_tests::BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "30"])
        .build();
    let container = rt.create(&bundle).expect("create under default");
    let out = rt
        .exec_cmd(&["profile", "show", "--container", &bundle.id])
        .expect_ok(&rt);
    assert!(
        out.stdout.contains("profile: default v1.0.0"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("BPF program of {bpf} instructions")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("no_new_privileges: true"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("landlock domain 1:"), "{}", out.stdout);
    let j: Value = serde_json::from_str(
        &rt.exec_cmd(&["profile", "show", "--container", &bundle.id, "--json"])
            .expect_ok(&rt)
            .stdout,
    )
    .expect("plan JSON");
    assert_eq!(j["seccomp_bpf_instructions"], bpf);
    assert_eq!(
        Path::new(j["plan_dir"].as_str().expect("plan_dir")),
        rt.plan_dir(&bundle.id)
    );
    drop(container);
    let out = rt.exec_cmd(&["profile", "show", "--container", &bundle.id]);
    assert_eq!(out.code, Some(2), "{out:?}");
}

/// Manifests written by hand after the Kubernetes documentation's examples.
fn manifest(name: &str) -> String {
    s(&Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("manifests")
        .join(name))
}

#[test]
fn check_judges_every_container_of_kubernetes_manifests() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let file = manifest("workloads.yaml");
    let dir = s(Path::new(&file).parent().expect("dir"));
    let norm = |t: &str| t.replace(&dir, "$MANIFESTS");
    let check = |extra: &[&str]| {
        let mut args = vec!["profile", "check", "--profile", "restricted", file.as_str()];
        args.extend_from_slice(extra);
        rt.exec_cmd(&args)
    };

    let out = check(&[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_golden("k8s-workloads.txt", &norm(&out.stdout));
    // One verdict per container of every workload kind; the Service is skipped.
    for who in [
        "Deployment/nginx-deployment container \"nginx\"",
        "StatefulSet/web container \"nginx\"",
        "DaemonSet/fluentd-elasticsearch container \"fluentd-elasticsearch\"",
        "Job/pi container \"pi\"",
        "CronJob/hello container \"hello\"",
        "Pod/security-context-demo container \"sec-ctx-demo\"",
    ] {
        assert!(out.stdout.contains(who), "{who}: {}", out.stdout);
    }
    assert!(
        out.stdout.contains("Service/nginx: skipped"),
        "{}",
        out.stdout
    );
    // hostNetwork and a hostPath volume are what the DaemonSet adds.
    assert!(out
        .stdout
        .contains("/proc/1/ns/net is the host network namespace"));
    assert!(out.stdout.contains("mounts[11].source: /var/log"));

    let out = check(&["--json"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let j: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(j["containers"].as_array().map(Vec::len), Some(6), "{j}");
    assert!(j["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|c| c["outcome"] == "refused"));
    assert_golden(
        "k8s-workloads.json",
        &norm(&(serde_json::to_string_pretty(&j).expect("json") + "\n")),
    );

    let out = check(&["--sarif"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let sarif: Value = serde_json::from_str(&out.stdout).expect("SARIF");
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), 48, "one result per violation");
    let rules: Vec<&str> = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    for r in results {
        assert!(
            rules.contains(&r["ruleId"].as_str().expect("ruleId")),
            "{r}"
        );
        assert!(r["locations"][0]["physicalLocation"]["region"]["startLine"].is_u64());
    }
    assert_golden(
        "k8s-workloads.sarif",
        &norm(&(serde_json::to_string_pretty(&sarif).expect("json") + "\n"))
            .replace(env!("CARGO_PKG_VERSION"), "$VERSION"),
    );
}

#[test]
fn check_admits_a_restricted_deployment_and_cannot_judge_a_localhost_filter() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let file = manifest("restricted-web.yaml");
    for profile in ["restricted", "baseline"] {
        let out = rt.exec_cmd(&["profile", "check", "--profile", profile, &file]);
        assert_eq!(out.code, Some(0), "{profile}: {out:?}");
        assert_eq!(
            out.stdout.matches(": admitted by profile").count(),
            2,
            "{}",
            out.stdout
        );
    }
    let file = manifest("localhost-seccomp.yaml");
    let out = rt.exec_cmd(&[
        "profile",
        "check",
        "--profile",
        "restricted",
        &file,
        "--json",
    ]);
    assert_eq!(out.code, Some(2), "{out:?}");
    let j: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(j["containers"][0]["outcome"], "error", "{j}");
    assert!(
        j["containers"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("Localhost")),
        "{j}"
    );
}

/// `profile learn` records a busybox workload (SECCOMP_RET_LOG, iterated until a run
/// logs nothing new), drafts a profile that then admits and runs the same workload in
/// a real container, and whose filter denies a syscall the workload never made.
#[test]
fn learn_drafts_a_profile_that_runs_the_workload_and_denies_the_rest() {
    if skip_on_reference("profile learn is Stockade's") {
        return;
    }
    let rt = runtime!();
    // Two commands, so the shell forks for the first (a last command is exec'd).
    let script = "echo learned > /tmp/out; cat /tmp/out; cat /tmp/out > /dev/null";
    let bundle = stockade_integration_tests::BundleBuilder::new()
        .args(&["/bin/sh", "-c", script])
        .build();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = rt.exec_cmd(&[
        "profile",
        "learn",
        "--bundle",
        &s(bundle.path()),
        "--out",
        &s(dir.path()),
        "--name",
        "busybox-learned",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("learned "), "{}", out.stdout);
    let filter = fs::read_to_string(dir.path().join("seccomp/busybox-learned.toml"))
        .expect("learned seccomp data");
    for used in ["execve", "write", "openat", "exit_group"] {
        assert!(
            filter.contains(&format!("name = \"{used}\"")),
            "{used} not learned:\n{filter}"
        );
    }
    assert!(!filter.contains("name = \"mkdir\""), "{filter}");
    // The draft is a valid profile without lint errors.
    let profile = s(&dir.path().join("busybox-learned.toml"));
    let lint = rt.exec_cmd(&["profile", "lint", &profile]);
    assert_eq!(lint.code, Some(0), "{lint:?}");

    // Under the learned profile, the same workload runs, with the learned filter.
    rt.set_node_config(&format!(
        "schema = 1\nprofiles_dir = {:?}\ndefault_profile = \"busybox-learned\"\n",
        dir.path()
    ));
    let run = rt.run(&bundle);
    assert_eq!(run.code, Some(0), "{run:?}\n{}", rt.log_text());
    assert_eq!(run.stdout.trim(), "learned", "{run:?}");
    // mkdir was never used: EPERM from the injected default-deny filter.
    let other = stockade_integration_tests::BundleBuilder::new()
        .args(&["/bin/sh", "-c", "mkdir /tmp/made; echo mkdir=$?"])
        .build();
    let run = rt.run(&other);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout.trim(), "mkdir=1", "{run:?}");
    assert!(run.stderr.contains("Operation not permitted"), "{run:?}");
    assert!(!other.rootfs.join("tmp/made").exists());
}

/// Stockade is not youki: the created init is named for Stockade (ps, seccomp audit
/// records), and libcontainer's console errors do not name youki.
#[test]
fn processes_and_errors_do_not_say_youki() {
    if skip_on_reference("runc names its own processes") {
        return;
    }
    let rt = runtime!();
    let bundle = stockade_integration_tests::BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "30"])
        .build();
    let container = rt.create(&bundle).expect("create");
    let pid = container.state()["pid"].as_i64().expect("pid");
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).expect("comm");
    assert_eq!(comm.trim(), "stockade-init");
    drop(container);

    let tty = stockade_integration_tests::BundleBuilder::new()
        .terminal(true)
        .args(&["/bin/true"])
        .build();
    match rt.create(&tty) {
        Ok(c) => panic!("{c:?} created with a terminal and no console socket"),
        Err(failed) => {
            let out = failed.disarm();
            assert!(out.stderr.contains("without a console socket"), "{out:?}");
            assert!(!out.stderr.to_lowercase().contains("youki"), "{out:?}");
        }
    };
}

/// Without `--log`, log lines go to stderr: an error is still printed once there.
#[test]
fn an_error_is_printed_once_without_a_log_file() {
    if skip_on_reference("Stockade's error rendering") {
        return;
    }
    let rt = runtime!(profile = "default");
    let out = Command::new(rt.binary())
        .args([
            "profile",
            "check",
            "--profile",
            "restricted",
            "/nonexistent/config.json",
        ])
        .env("STOCKADE_CONFIG", rt.node_config_path())
        .output()
        .expect("run stockade");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("/nonexistent/config.json"))
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.starts_with("stockade: cannot read /nonexistent/config.json"),
        "{stderr}"
    );
}

/// A report-only profile (`mode = "report"`): `profile check` says plainly that an
/// enforcing profile would refuse (exit 0: the container would run unchanged), and
/// the JSON outcome is `would_refuse`, never `refused`.
#[test]
fn check_says_would_refuse_for_a_report_only_profile() {
    if skip_on_reference("stockade profile is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    let dir = tempfile::tempdir().expect("tempdir");
    let report = edited_restricted(
        dir.path(),
        "report",
        &[("mode = \"enforce\"", "mode = \"report\"")],
    );
    let mut spec = restricted_spec(&rt);
    spec["process"]["user"]["uid"] = 0.into();
    let root = write_json(dir.path(), "root.json", &spec);
    let out = rt.exec_cmd(&["profile", "check", "--profile", &s(&report), &s(&root)]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("would refuse (report-only profile \"restricted\"")
            && first.contains("the container runs unchanged"),
        "{out:?}"
    );
    assert!(out.stdout.contains("  - [process."), "{out:?}");
    let json = rt.exec_cmd(&[
        "profile",
        "check",
        "--json",
        "--profile",
        &s(&report),
        &s(&root),
    ]);
    let v: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(v["outcome"], "would_refuse", "{v}");
    assert!(
        !v["would_refuse"]
            .as_array()
            .expect("would_refuse")
            .is_empty(),
        "{v}"
    );
}
