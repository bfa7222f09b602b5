//! One policy gate for every verb (Stockade only): `update`, `exec` and the caller's
//! `--preserve-fds` are judged by the profile recorded at create, under `default`
//! and `restricted`. Each refusal names the rule, and nothing changed: limits are
//! read back from the container's cgroup, the refused process never printed a
//! report from inside, the container's process list is the same.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use serde_json::{json, Value};
use stockade_integration_tests::profiles::{bundle_from_spec, reports};
use stockade_integration_tests::runtime::{cleanup_container, CmdOutput};
use stockade_integration_tests::{
    assert_nothing_left_behind, assert_refused, runtime, skip_on_reference, Bundle, BundleBuilder,
    Container, Runtime,
};

const PROFILES: [&str; 2] = ["default", "restricted"];

/// A long-running container under `profile`.
fn sleeper(rt: &Runtime, profile: &str) -> Bundle {
    bundle_for(rt, profile, &["/usr/bin/probe", "sleep", "600"])
}

/// `args` under `profile`: a bare spec under `default` (the profile hardens it), the
/// profile's own compliant spec under `restricted`.
fn bundle_for(rt: &Runtime, profile: &str, args: &[&str]) -> Bundle {
    builder_for(rt, profile).args(args).build()
}

fn builder_for(rt: &Runtime, profile: &str) -> BundleBuilder {
    match profile {
        "restricted" => {
            let out = rt
                .exec_cmd(&["spec", "--profile", "restricted", "--stdout"])
                .expect_ok(rt);
            bundle_from_spec(serde_json::from_str(&out.stdout).expect("spec is JSON"))
        }
        _ => BundleBuilder::new(),
    }
}

/// `<controller>/<cgroup>/<file>` on the host, trimmed.
fn cgroup_file(c: &Container<'_>, controller: &str, file: &str) -> String {
    let path = PathBuf::from("/sys/fs/cgroup")
        .join(controller)
        .join(&c.cgroup)
        .join(file);
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// What the container's cgroup holds now: memory, pids, CPU quota and period, devices.
fn limits(c: &Container<'_>) -> [String; 5] {
    [
        cgroup_file(c, "memory", "memory.limit_in_bytes"),
        cgroup_file(c, "pids", "pids.max"),
        cgroup_file(c, "cpu", "cpu.cfs_quota_us"),
        cgroup_file(c, "cpu", "cpu.cfs_period_us"),
        cgroup_file(c, "devices", "devices.list"),
    ]
}

fn update(rt: &Runtime, id: &str, resources: Value) -> CmdOutput {
    rt.exec_cmd_stdin(
        &["update", "--resources", "-", id],
        resources.to_string().as_bytes(),
    )
}

/// The refusal names the verb's gate, the profile and `rule`.
fn assert_gate_refused(rt: &Runtime, out: &CmdOutput, verb: &str, profile: &str, rule: &str) {
    assert_refused(rt, out, &[rule]);
    let want = format!("{verb} refused by profile \"{profile}\"");
    assert!(
        out.stderr.contains(&want) && out.stderr.contains(&format!("[{rule}]")),
        "stderr does not say {want:?} with [{rule}]: {}",
        out.stderr
    );
}

#[test]
fn update_beyond_the_profile_is_refused_and_the_cgroup_is_unchanged() {
    if skip_on_reference("profiles are Stockade's") {
        return;
    }
    for profile in PROFILES {
        let rt = runtime!(profile = profile);
        let bundle = sleeper(&rt, profile);
        let c = rt.create_started(&bundle);
        let before = limits(&c);
        let attempts = [
            // 128 GiB: both profiles cap memory at 64 GiB.
            (
                json!({"memory": {"limit": 137438953472_i64}}),
                "cgroups.memory",
            ),
            (json!({"pids": {"limit": 100000}}), "cgroups.pids"),
            (json!({"pids": {"limit": -1}}), "cgroups.pids"),
            (json!({"cpu": {"quota": -1}}), "cgroups.cpu"),
            // A shorter period alone raises the quota's share past the maximum.
            (json!({"cpu": {"period": 1000}}), "cgroups.cpu"),
            (
                json!({"devices": [{"allow": true, "access": "rwm"}]}),
                "cgroups.devices",
            ),
        ];
        for (resources, rule) in attempts {
            let out = update(&rt, &c.id, resources.clone());
            assert_gate_refused(&rt, &out, "update", profile, rule);
            assert_eq!(
                limits(&c),
                before,
                "{profile}: {resources} changed the cgroup"
            );
        }
        // The flag form goes through the same gate.
        let out = rt.exec_cmd(&["update", "--pids-limit", "100000", &c.id]);
        assert_gate_refused(&rt, &out, "update", profile, "cgroups.pids");
        assert_eq!(limits(&c), before, "{profile}");

        // Control: within the profile, update still works.
        update(&rt, &c.id, json!({"pids": {"limit": 2000}})).expect_ok(&rt);
        assert_eq!(cgroup_file(&c, "pids", "pids.max"), "2000", "{profile}");
        let audits: Vec<Value> = rt
            .log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|l| l.get("audit").cloned())
            .filter(|a| a["verb"] == "update")
            .collect();
        assert!(
            audits
                .iter()
                .any(|a| a["outcome"] == "refused" && a["profile"] == profile)
                && audits.iter().any(|a| a["outcome"] == "admitted"),
            "{profile}: one audit event per update decision: {audits:#?}"
        );
    }
}

/// `exec ARGS` of the probe with `flags` before the id.
fn exec_probe(rt: &Runtime, id: &str, flags: &[&str]) -> CmdOutput {
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[id, "/usr/bin/probe"]);
    rt.exec_cmd(&args)
}

/// A process.json for `exec --process`, written into the bundle dir.
fn process_file(bundle: &Bundle, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let spec: Value =
        serde_json::from_str(&fs::read_to_string(bundle.path().join("config.json")).unwrap())
            .unwrap();
    let mut process = spec["process"].clone();
    process["args"] = json!(["/usr/bin/probe"]);
    process["terminal"] = json!(false);
    edit(&mut process);
    let path = bundle.path().join(name);
    fs::write(&path, process.to_string()).unwrap();
    path
}

#[test]
fn exec_is_judged_by_the_profile_recorded_at_create() {
    if skip_on_reference("profiles are Stockade's") {
        return;
    }
    for profile in PROFILES {
        let rt = runtime!(profile = profile);
        let bundle = sleeper(&rt, profile);
        let c = rt.create_started(&bundle);
        let procs = c.ps();

        // Control: a plain exec runs, as the init's user.
        let ok = exec_probe(&rt, &c.id, &[]).expect_ok(&rt);
        let uid = ok.report()["status"]["Uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();

        let uid0 = process_file(&bundle, "uid0.json", |p| p["user"]["uid"] = json!(0));
        let unconfined = process_file(&bundle, "aa.json", |p| {
            p["apparmorProfile"] = json!("unconfined")
        });
        let uid0_path = uid0.to_str().unwrap();
        let aa_path = unconfined.to_str().unwrap();
        let mut attempts: Vec<(Vec<&str>, &str)> = vec![
            (vec!["--apparmor", "unconfined"], "lsm.apparmor"),
            (
                vec!["--process-label", "system_u:system_r:spc_t:s0"],
                "lsm.selinux",
            ),
            (vec!["--process", aa_path], "lsm.apparmor"),
            (vec!["--user", "70000"], "process.uid_range"),
            (vec!["--cwd", "/proc/self"], "process.cwd"),
        ];
        if profile == "restricted" {
            // `restricted` forbids root outright; `default` maps it into the range.
            attempts.push((vec!["--user", "0"], "process.run_as_non_root"));
            attempts.push((vec!["--user", "0:0"], "process.run_as_non_root"));
            attempts.push((vec!["--process", uid0_path], "process.run_as_non_root"));
        }
        for (flags, rule) in attempts {
            let out = exec_probe(&rt, &c.id, &flags);
            assert_gate_refused(&rt, &out, "exec", profile, rule);
            assert!(
                reports(&out.stdout).is_empty(),
                "{profile} {flags:?}: the process ran: {}",
                out.stdout
            );
            assert_eq!(c.ps(), procs, "{profile} {flags:?}: processes changed");
        }
        // The node config now names another profile: the container keeps its own.
        rt.set_node_config(&format!(
            "schema = 1\nprofiles_dir = {:?}\ndefault_profile = \"unconfined\"\n",
            stockade_integration_tests::runtime::profiles_dir()
        ));
        let out = exec_probe(&rt, &c.id, &["--apparmor", "unconfined"]);
        assert_gate_refused(&rt, &out, "exec", profile, "lsm.apparmor");
        let again = exec_probe(&rt, &c.id, &[]).expect_ok(&rt);
        assert_eq!(again.report()["status"]["Uid"], json!(uid), "{profile}");
    }
}

/// `ARGS` of the runtime with host fds 3 and 4 open on `/etc/hostname`, as a caller
/// would pass them with `--preserve-fds 2`. Output goes to files: a container
/// wrongly created would hold a pipe open for as long as it lives.
fn with_two_fds(rt: &Runtime, args: &[&str]) -> CmdOutput {
    let file = fs::File::open("/etc/hostname").expect("open /etc/hostname");
    let raw = file.as_raw_fd();
    let dir = tempfile::tempdir().expect("tempdir for output");
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut cmd = rt.command(args);
    cmd.stdout(fs::File::create(&out_path).expect("stdout file"))
        .stderr(fs::File::create(&err_path).expect("stderr file"));
    // SAFETY: only async-signal-safe calls (fcntl, dup2, close) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let tmp = libc::fcntl(raw, libc::F_DUPFD, 10);
            if tmp < 0 || libc::dup2(tmp, 3) < 0 || libc::dup2(tmp, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(tmp);
            Ok(())
        });
    }
    let status = cmd.status().expect("spawn runtime");
    drop(file);
    CmdOutput {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: status.code(),
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// Removes whatever a wrongly admitted container left, after the assertions ran.
struct Cleanup<'a>(&'a Runtime, &'a Bundle);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        cleanup_container(self.0, &self.1.id, &self.1.cgroup_relative(), None);
    }
}

/// The fds (beyond stdio) the probe found open, pointing at the host's file.
fn preserved(report: &Value) -> Vec<String> {
    report["fds"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, t)| t.as_str() == Some("/etc/hostname"))
        .map(|(k, _)| k.clone())
        .collect()
}

#[test]
fn preserve_fds_is_refused_unless_the_profile_allows_it() {
    if skip_on_reference("profiles are Stockade's") {
        return;
    }
    // Control: under `unconfined` the caller's fds do reach the container.
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "fds"])
        .build();
    let path = bundle.path().to_str().unwrap().to_string();
    let out = with_two_fds(
        &rt,
        &["run", "--preserve-fds", "2", "--bundle", &path, &bundle.id],
    );
    let _cleanup = Cleanup(&rt, &bundle);
    let out = out.expect_ok(&rt);
    assert_eq!(preserved(&out.report()), ["3", "4"], "{}", out.stdout);

    for profile in PROFILES {
        let rt = runtime!(profile = profile);
        let lister = bundle_for(&rt, profile, &["/usr/bin/probe", "fds"]);
        let path = lister.path().to_str().unwrap().to_string();
        for verb in ["run", "create"] {
            let bundle = &lister;
            let _cleanup = Cleanup(&rt, bundle);
            let out = with_two_fds(
                &rt,
                &[verb, "--preserve-fds", "2", "--bundle", &path, &bundle.id],
            );
            assert_refused(&rt, &out, &["process.preserve_fds"]);
            assert!(
                out.stderr
                    .contains("[process.preserve_fds] --preserve-fds: 2"),
                "{}",
                out.stderr
            );
            assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
        }
        // exec into a running container: refused, no process started.
        let bundle = sleeper(&rt, profile);
        let c = rt.create_started(&bundle);
        let procs = c.ps();
        let out = with_two_fds(
            &rt,
            &[
                "exec",
                "--preserve-fds",
                "2",
                &c.id,
                "/usr/bin/probe",
                "fds",
            ],
        );
        assert_gate_refused(&rt, &out, "exec", profile, "process.preserve_fds");
        assert!(reports(&out.stdout).is_empty(), "{}", out.stdout);
        assert_eq!(c.ps(), procs);
        // Without the fds, the same exec lists none of the host's.
        let out = exec_probe(&rt, &c.id, &[]).expect_ok(&rt);
        assert!(out.report().get("status").is_some());
        let fds = rt
            .exec_cmd(&["exec", &c.id, "/usr/bin/probe", "fds"])
            .expect_ok(&rt);
        assert!(preserved(&fds.report()).is_empty(), "{}", fds.stdout);
    }
}

const SANDBOX_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

/// A pod member naming `sandbox`, joining the network namespace of `pid` (as the CRI
/// plugin writes it for the pod's sandbox), running the probe.
fn member(rt: &Runtime, profile: &str, sandbox: &str, pid: Option<i32>) -> Bundle {
    builder_for(rt, profile)
        .annotation(SANDBOX_ANNOTATION, sandbox)
        .edit(|s| {
            if let Some(pid) = pid {
                for ns in s["linux"]["namespaces"].as_array_mut().expect("namespaces") {
                    if ns["type"] == "network" {
                        ns["path"] = json!(format!("/proc/{pid}/ns/net"));
                    }
                }
            }
        })
        .args(&["/usr/bin/probe"])
        .build()
}

/// A pod sandbox's bundle (its sandbox id is its own id).
fn sandbox(rt: &Runtime, profile: &str) -> Bundle {
    let b = builder_for(rt, profile);
    let id = b.id().to_string();
    b.annotation(SANDBOX_ANNOTATION, &id)
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build()
}

fn uid_map(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/uid_map")).expect("read uid_map")
}

#[test]
fn a_sandbox_id_names_a_running_sandbox_of_the_same_state_root() {
    if skip_on_reference("user namespace ranges are Stockade's") {
        return;
    }
    for profile in PROFILES {
        let rt = runtime!(profile = profile);
        let (vb, ob) = (sandbox(&rt, profile), sandbox(&rt, profile));
        let (victim, other) = (rt.create_started(&vb), rt.create_started(&ob));
        let vpid = victim.pid.expect("victim pid");
        let victim_map = uid_map(vpid);
        let ranges = rt.userns_ranges();
        // A pod's app container (a member of the victim's pod), not a sandbox.
        let app = member(&rt, profile, &victim.id, Some(vpid));
        let app = rt
            .create(&app)
            .unwrap_or_else(|f| panic!("{}", f.out.stderr));
        let ranges_with_app = rt.userns_ranges();
        assert_eq!(
            uid_map(app.pid.unwrap()),
            victim_map,
            "control: a member shares its pod's ids"
        );

        // Another state root holds a sandbox of its own.
        let elsewhere = runtime!(profile = profile);
        let eb = sandbox(&elsewhere, profile);
        let foreign = elsewhere.create_started(&eb);

        let attempts: Vec<(String, Option<i32>, &str)> = vec![
            // Joins the victim's namespaces while naming another pod's sandbox.
            (other.id.clone(), Some(vpid), "linux.namespaces"),
            // Names no container at all.
            ("ghost-sandbox".into(), None, "no such container"),
            // Names a container that is not a sandbox.
            (app.id.clone(), Some(vpid), "not a pod sandbox"),
            // Names a sandbox of another state root.
            (foreign.id.clone(), foreign.pid, "no such container"),
        ];
        for (named, pid, why) in attempts {
            let b = member(&rt, profile, &named, pid);
            let out = rt.create(&b).map(|_| ()).expect_err("must be refused").out;
            assert_refused(&rt, &out, &["user_namespace.sandbox"]);
            assert!(
                out.stderr.contains(why),
                "{profile} {named}: {}",
                out.stderr
            );
            assert_nothing_left_behind(&rt, &b.id, &b.cgroup_relative(), &b.rootfs);
            assert_eq!(
                rt.userns_ranges(),
                ranges_with_app,
                "{profile} {named}: ranges changed"
            );
            assert_eq!(uid_map(vpid), victim_map);
        }
        drop(app);
        assert_ne!(ranges, Vec::new());
    }
}

/// `profile`'s own compliant spec whose filter, like containerd's default, allows
/// every `socket` family, running `script`.
fn with_permissive_socket_rule(rt: &Runtime, profile: &str, script: &str) -> Bundle {
    let out = rt
        .exec_cmd(&["spec", "--profile", profile, "--stdout"])
        .expect_ok(rt);
    let mut spec: Value = serde_json::from_str(&out.stdout).expect("spec is JSON");
    let rules = spec["linux"]["seccomp"]["syscalls"]
        .as_array_mut()
        .expect("the profile's spec has a filter");
    // The filter as a caller would bring it: no denial rules of the profile's own.
    rules.retain(|r| {
        r["action"] == "SCMP_ACT_ALLOW"
            || !(r["names"] == json!(["socket"]) || r["names"] == json!(["clone"]))
    });
    rules.push(json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW"}));
    bundle_from_spec(spec).shell(script).build()
}

#[test]
fn argument_denials_apply_to_the_specs_own_filter() {
    if skip_on_reference("profiles are Stockade's") {
        return;
    }
    let script =
        "probe syscall socket 40 1 0; probe syscall socket 38 5 0; probe syscall socket 2 1 0";
    let family = |lines: &[Value], i: usize| lines[i].clone();
    // Control: without a profile, the spec's filter lets AF_VSOCK and AF_ALG through
    // (the kernel answers, not the filter).
    let rt = runtime!();
    let bundle = with_permissive_socket_rule(&rt, "default", script);
    let lines = reports(&rt.run(&bundle).expect_ok(&rt).stdout);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for i in 0..2 {
        assert_ne!(family(&lines, i)["errno"], json!(libc::EPERM), "{lines:?}");
    }
    for profile in PROFILES {
        let rt = runtime!(profile = profile);
        let bundle = with_permissive_socket_rule(&rt, profile, script);
        let lines = reports(&rt.run(&bundle).expect_ok(&rt).stdout);
        assert_eq!(lines.len(), 3, "{profile}: {lines:?}");
        for i in 0..2 {
            assert_eq!(
                family(&lines, i)["errno"],
                json!(libc::EPERM),
                "{profile}: {:?}",
                lines[i]
            );
        }
        assert!(
            lines[2]["ret"].as_i64() >= Some(0),
            "{profile}: AF_INET still works: {:?}",
            lines[2]
        );
        assert!(
            rt.log_text().contains("seccomp.deny_args"),
            "{profile}: the merge is in the audit record"
        );
    }
}

/// `builder` with its own user namespace mapping container ids 0..65536 onto
/// `host..host+65536` (its rootfs owned by that range's root).
fn mapped(builder: BundleBuilder, host: u64) -> BundleBuilder {
    builder.user_namespace(u32::try_from(host).expect("host id"), 65536)
}

/// `(host start, size)` of container root, read on the host.
fn host_root(c: &Container<'_>) -> (u64, u64) {
    let map = uid_map(c.pid.expect("init pid"));
    let f: Vec<u64> = map
        .split_whitespace()
        .map(|n| n.parse().expect("uid_map number"))
        .collect();
    assert_eq!(f[0], 0, "{map}");
    (f[1], f[2])
}

#[test]
fn explicit_mappings_in_the_pool_are_reserved_or_refused() {
    if skip_on_reference("user namespace ranges are Stockade's") {
        return;
    }
    for profile in PROFILES {
        let rt = runtime!(profile = profile);
        // An allocated container holds the pool's first block.
        let a_bundle = sleeper(&rt, profile);
        let a = rt.create_started(&a_bundle);
        let (a_start, a_size) = host_root(&a);
        let ranges = rt.userns_ranges();

        // A spec mapping onto A's host ids is refused, naming the mapping and A.
        let b = mapped(builder_for(&rt, profile), a_start)
            .args(&["/usr/bin/probe", "sleep", "600"])
            .build();
        let out = rt.create(&b).map(|_| ()).expect_err("overlap admitted").out;
        assert_refused(&rt, &out, &["linux.uidMappings[0]"]);
        assert!(out.stderr.contains(&a.id), "{}", out.stderr);
        assert_nothing_left_behind(&rt, &b.id, &b.cgroup_relative(), &b.rootfs);
        assert_eq!(rt.userns_ranges(), ranges, "{profile}");
        assert_eq!(host_root(&a), (a_start, a_size));

        // A free part of the pool is reserved for the spec that maps it...
        let free = a_start + a_size;
        let c = mapped(builder_for(&rt, profile), free)
            .args(&["/usr/bin/probe", "sleep", "600"])
            .build();
        let c = rt.create(&c).unwrap_or_else(|f| panic!("{}", f.out.stderr));
        assert_eq!(host_root(&c).0, free);
        assert!(
            rt.userns_ranges()
                .iter()
                .any(|(owner, start, _)| *owner == c.id && *start == free),
            "{:?}",
            rt.userns_db()
        );
        // ...so the next allocation does not hand those ids out again.
        let d_bundle = sleeper(&rt, profile);
        let d = rt.create_started(&d_bundle);
        let (d_start, d_size) = host_root(&d);
        assert!(
            d_start + d_size <= free || d_start >= free + 65536,
            "{profile}: allocated {d_start}+{d_size} overlaps the reserved {free}+65536"
        );
        let c_id = c.id.clone();
        c.delete_force().expect_ok(&rt);
        assert!(
            !rt.userns_ranges()
                .iter()
                .any(|(owner, _, _)| *owner == c_id),
            "released on delete: {:?}",
            rt.userns_db()
        );
    }
}

/// The Landlock ABI this kernel has, as `stockade features` reports it.
fn host_landlock_abi(rt: &Runtime) -> u8 {
    let out = rt.exec_cmd(&["features"]).expect_ok(rt);
    let f: Value = serde_json::from_str(&out.stdout).expect("features JSON");
    f["annotations"]["org.stockade.landlock.abi"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("landlock ABI annotation")
}

#[test]
fn owner_landlock_rules_the_kernel_cannot_enforce_are_refused_at_admission() {
    if skip_on_reference("Landlock is Stockade's") {
        return;
    }
    for profile in ["unconfined", "default", "restricted"] {
        let rt = runtime!(profile = profile);
        // One ABI beyond this kernel's, whatever kernel the test finds.
        let beyond = host_landlock_abi(&rt) + 1;
        let rules = json!({
            "min_abi": beyond, "compat": "hard",
            "fs_rules": [{"path": "/tmp", "access": ["read_file"]}],
        });
        let bundle = builder_for(&rt, profile)
            .annotation("org.stockade.landlock", &rules.to_string())
            .args(&["/usr/bin/probe"])
            .build();
        let out = rt.create(&bundle).map(|_| ()).expect_err("admitted").out;
        assert_refused(&rt, &out, &["landlock.owner_abi"]);
        assert!(
            out.stderr.contains(&format!("ABI >= {beyond}")),
            "{profile}: {}",
            out.stderr
        );
        assert!(
            !rt.log_text().contains("container admitted by profile"),
            "{profile}: refused before anything was admitted"
        );
        assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    }
}

/// A copy of the shipped profiles with `name` switched to `mode = "report"`, and a
/// node config naming it as the default.
fn report_only(rt: &Runtime, name: &str) -> tempfile::TempDir {
    let dir = stockade_integration_tests::runtime::profiles_copy();
    let path = dir.path().join(format!("{name}.toml"));
    let text = fs::read_to_string(&path).expect("read profile");
    assert!(text.contains("mode = \"enforce\""), "{name}");
    fs::write(
        &path,
        text.replacen("mode = \"enforce\"", "mode = \"report\"", 1),
    )
    .unwrap();
    rt.set_node_config(&format!(
        "schema = 1\nprofiles_dir = {:?}\ndefault_profile = {name:?}\n",
        dir.path()
    ));
    dir
}

#[test]
fn report_only_runs_the_spec_unchanged_and_records_what_it_would_do() {
    if skip_on_reference("profiles are Stockade's") {
        return;
    }
    for (profile, would) in [("restricted", "would_refuse"), ("default", "would_inject")] {
        let rt = runtime!();
        let _profiles = report_only(&rt, profile);
        // Every capability, no filter, no user namespace, writable root.
        let caps = stockade_integration_tests::profiles::all_host_caps();
        let bundle = BundleBuilder::new()
            .readonly_root(false)
            .no_new_privileges(false)
            .edit(|s| {
                s["process"]["capabilities"] =
                    json!({"bounding": caps, "effective": caps, "permitted": caps});
            })
            .args(&["/usr/bin/probe"])
            .build();
        let r = rt.run(&bundle).expect_ok(&rt).report();
        // Observed from inside: the spec ran as written.
        assert_eq!(r["status"]["Seccomp"], "0", "{profile}: {r}");
        assert_eq!(r["status"]["NoNewPrivs"], "0", "{profile}: {r}");
        let sys_admin = 1u64 << 21;
        let eff = u64::from_str_radix(r["status"]["CapEff"].as_str().unwrap(), 16).unwrap();
        assert_ne!(eff & sys_admin, 0, "{profile}: {r}");
        assert_eq!(r["root"]["rdonly"], false, "{profile}: {r}");
        let uid_map = r["uid_map"].as_str().unwrap_or_default();
        assert!(
            uid_map.split_whitespace().eq(["0", "0", "4294967295"]),
            "{profile}: {uid_map}"
        );
        // And the audit record says what enforcing would have done.
        let audit: Value = rt
            .log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|l| l.get("audit").cloned())
            .expect("audit event");
        let rules: Vec<&str> = audit[would]
            .as_array()
            .unwrap_or_else(|| panic!("{profile}: no {would} in {audit}"))
            .iter()
            .filter_map(|v| v["rule"].as_str())
            .collect();
        assert!(rules.contains(&"seccomp.required"), "{profile}: {audit}");
        if profile == "restricted" {
            assert_eq!(audit["outcome"], "would_refuse", "{audit}");
            assert!(rules.contains(&"capabilities.allowed"), "{audit}");
            // The log line says it plainly, not "admitted".
            assert!(
                rt.log_text().contains(
                    "container would be refused by profile (report-only: it runs unchanged)"
                ),
                "{}",
                rt.log_text()
            );
        }
        assert!(
            audit["injected"].as_array().is_none_or(|a| a.is_empty()),
            "{audit}"
        );
        assert!(
            audit["userns"].is_null() && audit["landlock"].is_null(),
            "{audit}"
        );
        assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    }
}

/// Removes a directory this test made, on drop.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_symlinked_bind_source_is_judged_by_the_socket_it_leads_to() {
    if skip_on_reference("profiles are Stockade's") {
        return;
    }
    // A real unix socket outside every allowed prefix...
    let sockets = tempfile::tempdir().expect("tempdir");
    let socket = sockets.path().join("runtime.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind socket");
    // ...and a real symlink to it under the kubelet's pod directory, which both
    // profiles allow as a bind source.
    let volume = PathBuf::from("/var/lib/kubelet/pods")
        .join(format!("stockade-gate-{}", std::process::id()))
        .join("volumes");
    fs::create_dir_all(&volume).expect("make the volume dir");
    let _cleanup = RemoveDir(volume.parent().unwrap().to_path_buf());
    let link = volume.join("sock");
    std::os::unix::fs::symlink(&socket, &link).expect("symlink");
    for profile in PROFILES {
        let rt = runtime!(profile = profile);
        let bundle = builder_for(&rt, profile)
            .mount(json!({
                "destination": "/run/host.sock", "type": "bind",
                "source": link, "options": ["rbind", "nosuid", "nodev"],
            }))
            .args(&["/usr/bin/probe", "stat", "/run/host.sock"])
            .build();
        let out = rt.create(&bundle).map(|_| ()).expect_err("admitted").out;
        assert_refused(&rt, &out, &["mounts.bind_source"]);
        let want = format!("resolves to {}", socket.display());
        assert!(out.stderr.contains(&want), "{profile}: {}", out.stderr);
        assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    }
}

/// Flips `link` between `allowed` (most of the time) and `forbidden` until dropped,
/// each flip an atomic rename, so the link always exists and leads to one of them.
struct Flipper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Flipper {
    fn start(link: PathBuf, allowed: PathBuf, forbidden: PathBuf) -> Self {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let tmp = link.with_extension("next");
            let mut flips = 0;
            while !flag.load(Ordering::Relaxed) {
                for (target, dwell) in [(&forbidden, 1), (&allowed, 2)] {
                    let _ = fs::remove_file(&tmp);
                    std::os::unix::fs::symlink(target, &tmp).expect("symlink");
                    fs::rename(&tmp, &link).expect("swap the symlink");
                    flips += 1;
                    std::thread::sleep(std::time::Duration::from_millis(dwell));
                }
            }
            flips
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Flipper {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_bind_source_swapped_after_admission_is_never_what_the_container_sees() {
    if skip_on_reference("profiles are Stockade's") {
        return;
    }
    // A real unix socket outside every allowed prefix, a real volume directory under
    // the kubelet's pod directory, and a real symlink beside it that keeps flipping
    // between the two while containers are created: the check sees one object, the
    // mount may come when the link leads to the other. With the profile's user
    // namespace the runtime idmaps the source before the init runs; a spec that
    // brings its own mapping has the init mount the source itself. Both must mount
    // the object admitted.
    let sockets = tempfile::tempdir().expect("tempdir");
    // Reachable by a container's mapped root, so only the check can keep it out.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(sockets.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket = sockets.path().join("runtime.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind socket");
    let volume = PathBuf::from("/var/lib/kubelet/pods")
        .join(format!("stockade-race-{}", std::process::id()))
        .join("volumes");
    let data = volume.join("data");
    fs::create_dir_all(&data).expect("make the volume dir");
    let _cleanup = RemoveDir(volume.parent().unwrap().to_path_buf());
    let link = volume.join("vol");
    std::os::unix::fs::symlink(&data, &link).expect("symlink");
    let flipper = Flipper::start(link.clone(), data.clone(), socket.clone());
    // The last block of `default`'s pool, for the spec that maps its own ids.
    let own_mapping = 1_000_000 + 1_073_741_824 - 65_536;
    let cases = [
        ("default", None),
        ("restricted", None),
        ("default", Some(own_mapping)),
    ];
    for (profile, mapping) in cases {
        let rt = runtime!(profile = profile);
        let (mut ran, mut refused_at_admission, mut refused_at_mount) = (0, 0, 0);
        for _ in 0..24 {
            let builder = match mapping {
                Some(host) => mapped(builder_for(&rt, profile), host),
                None => builder_for(&rt, profile),
            };
            let bundle = builder
                .mount(json!({
                    "destination": "/vol", "type": "bind",
                    "source": link, "options": ["rbind", "nosuid", "nodev"],
                }))
                .args(&["/usr/bin/probe", "stat", "/vol"])
                .build();
            let out = rt.run(&bundle);
            if out.success() {
                // Inside, the volume is the directory, never the socket.
                let report = out.report();
                assert_eq!(report["type"], "d", "{profile}: the container saw {report}");
                ran += 1;
            } else if out.stderr.contains("[mounts.bind_source]") {
                // The check itself saw the socket.
                assert!(
                    out.stderr
                        .contains(&format!("resolves to {}", socket.display())),
                    "{profile}: {}",
                    out.stderr
                );
                refused_at_admission += 1;
            } else {
                // Admitted as the directory, swapped before the mount: the init
                // found another object behind the path and mounted nothing.
                assert!(
                    out.stderr.contains("changed since admission"),
                    "{profile}: neither ran nor refused for the swap: {}",
                    out.stderr
                );
                refused_at_mount += 1;
            }
            assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
        }
        eprintln!("{profile} (own mapping {mapping:?}): ran {ran}, refused at admission {refused_at_admission}, at the mount {refused_at_mount}");
        // The link did flip under the creates, and the directory still runs.
        assert!(ran > 0, "{profile}: no container ever ran");
        assert!(
            refused_at_admission + refused_at_mount > 0,
            "{profile}: the swap never hit a create"
        );
    }
    drop(flipper);
}
