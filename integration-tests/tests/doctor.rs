//! `stockade doctor` on this machine: what it reports matches what the kernel says,
//! every shipped profile loads, and each node defect (a broken profile, a containerd
//! config without handlers or annotations) is a failure or warning with its fix and
//! the right exit status. Root (the idmapped mount check needs it).

use std::{
    fs,
    path::Path,
    process::{Command, Output},
};
use stockade_integration_tests::installer::repo_root;

use serde_json::Value;
use stockade_integration_tests::runtime::{on_read_only_mount, runtime_binary};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A node: a node config over `profiles`, and a containerd config.
struct Node {
    dir: tempfile::TempDir,
}

const HANDLERS: &str = r#"version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.stockade]
  runtime_type = "io.containerd.stockade.v2"
  pod_annotations = ["org.stockade.*"]
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.stockade.options]
    ConfigPath = "/etc/containerd/stockade-default.toml"
"#;

impl Node {
    fn new(profiles: &Path, containerd: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("config.toml"),
            format!(
                "schema = 1\nprofiles_dir = \"{}\"\ndefault_profile = \"default\"\nannotation_allowed = [\"restricted\"]\n",
                profiles.display()
            ),
        )
        .unwrap();
        fs::write(dir.path().join("containerd.toml"), containerd).unwrap();
        fs::create_dir(dir.path().join("ext")).unwrap();
        Node { dir }
    }

    fn doctor(&self, extra: &[&str]) -> Output {
        self.doctor_under(&[], extra)
    }

    /// `stockade doctor` run by `wrapper` (a command that runs its arguments), if any.
    fn doctor_under(&self, wrapper: &[&str], extra: &[&str]) -> Output {
        // The shim is installed next to the runtime, on containerd's PATH.
        let bin = runtime_binary();
        let path = format!(
            "{}:{}",
            bin.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .arg("doctor")
            .arg("--containerd-config")
            .arg(self.dir.path().join("containerd.toml"))
            .arg("--idmap-dir")
            .arg(self.dir.path().join("ext"))
            .args(extra)
            .env("PATH", path)
            .output()
            .expect("run stockade doctor")
    }

    fn json(&self) -> (Value, i32) {
        self.json_under(&[])
    }

    fn json_under(&self, wrapper: &[&str]) -> (Value, i32) {
        let out = self.doctor_under(wrapper, &["--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "doctor --json: {e}: {} {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (v, out.status.code().unwrap())
    }
}

fn findings(v: &Value, check: &str) -> Vec<(String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check)
        .map(|f| {
            (
                f["status"].as_str().unwrap().to_string(),
                f["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn doctor_reports_this_machine_and_passes_with_shipped_profiles() {
    if !is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let node = Node::new(&repo_root().join("profiles"), HANDLERS);
    let (v, code) = node.json();
    assert_eq!(code, 0, "{v:#}");
    assert_ne!(v["status"], "fail");

    // What it says matches the kernel's own files.
    let max: u64 = fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(v["facts"]["max_user_namespaces"], max);
    let layout = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "v2"
    } else if Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists() {
        "hybrid"
    } else {
        "v1"
    };
    assert_eq!(v["facts"]["cgroup"], layout);
    let abi = stockade::profile::host::probe_landlock_abi();
    assert_eq!(v["facts"]["landlock_abi"], serde_json::json!(abi));
    // Containers are entered from a read-only mount of the runtime binary: its bind
    // mount under /run/stockade/bin here (made by the doctor if no create made it),
    // or the binary itself where it is on a read-only mount (the VM lane's share).
    let protected = findings(&v, "runtime binary");
    assert_eq!(protected.len(), 1, "{v:#}");
    assert_eq!(protected[0].0, "ok", "{protected:?}");
    let path = v["facts"]["protected_binary"]["Ok"].as_str().unwrap();
    assert!(protected[0].1.contains(path), "{protected:?}");
    assert!(
        on_read_only_mount(Path::new(path)),
        "{path} is not on a read-only mount"
    );
    // Without CAP_SYS_RESOURCE (this machine's bounding set lacks it) the runtime
    // cannot lower oom_score_adj below its own: a warning, with the value.
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    // CAP_SYS_RESOURCE is capability 24 (linux/capability.h).
    let oom = findings(&v, "oom_score_adj");
    if eff & (1 << 24) != 0 {
        assert_eq!(v["facts"]["oom_score_adj_floor"], Value::Null);
        assert_eq!(oom[0].0, "ok", "{oom:?}");
    } else {
        let own: i64 = fs::read_to_string("/proc/self/oom_score_adj")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(v["facts"]["oom_score_adj_floor"], own);
        assert_eq!(oom[0].0, "warn", "{oom:?}");
        assert!(oom[0].1.contains(&format!("raised to {own}")), "{oom:?}");
    }
    for p in ["baseline", "default", "restricted", "unconfined"] {
        assert!(
            findings(&v, "profile").contains(&("ok".into(), p.into())),
            "{p}: {v:#}"
        );
    }
    assert_eq!(
        findings(&v, "containerd handler"),
        vec![("ok".to_string(), "stockade".to_string())]
    );

    // The text form says the same, with a closing count.
    let out = node.doctor(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("ok    profile             restricted"),
        "{text}"
    );
    assert!(
        text.lines().last().unwrap().starts_with("doctor: 0 failed"),
        "{text}"
    );
}

#[test]
fn doctor_fails_a_broken_profile_and_names_it() {
    if !is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let profiles = tempfile::tempdir().unwrap();
    let st = Command::new("cp")
        .arg("-r")
        .arg(repo_root().join("profiles/."))
        .arg(profiles.path())
        .status()
        .unwrap();
    assert!(st.success());
    let restricted = profiles.path().join("restricted.toml");
    let text = fs::read_to_string(&restricted).unwrap();
    fs::write(
        &restricted,
        text.replacen("[seccomp]", "[seccomp]\nbogus_key = 1", 1),
    )
    .unwrap();

    let node = Node::new(profiles.path(), HANDLERS);
    let (v, code) = node.json();
    assert_eq!(code, 1);
    assert_eq!(v["status"], "fail");
    let bad = findings(&v, "profile");
    assert!(
        bad.iter()
            .any(|(s, d)| s == "fail" && d.starts_with("restricted:") && d.contains("bogus_key")),
        "{bad:?}"
    );
    let out = node.doctor(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("fix: run `stockade profile lint`"), "{text}");
}

#[test]
fn doctor_checks_containerd_handlers_and_annotations() {
    if !is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    // No Stockade handler at all: a failure, with the fix.
    let node = Node::new(
        &repo_root().join("profiles"),
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"runc\"\n",
    );
    let (v, code) = node.json();
    assert_eq!(code, 1, "{v:#}");
    assert!(findings(&v, "containerd")
        .iter()
        .any(|(s, d)| s == "fail" && d.contains("no Stockade runtime handler")));

    // A handler whose pod annotations do not reach the runtime: a warning only.
    let node = Node::new(
        &repo_root().join("profiles"),
        &HANDLERS.replace("  pod_annotations = [\"org.stockade.*\"]\n", ""),
    );
    let (v, code) = node.json();
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["status"], "warn");
    assert!(findings(&v, "containerd handler")
        .iter()
        .any(|(s, d)| s == "warn" && d.contains("org.stockade.*")));

    // Handlers that replaced containerd's runtimes table without runc: CRI won't start.
    let node = Node::new(
        &repo_root().join("profiles"),
        &HANDLERS.replace(
            "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n",
            "",
        ),
    );
    let (v, code) = node.json();
    assert_eq!(code, 1);
    assert!(findings(&v, "containerd")
        .iter()
        .any(|(s, d)| s == "fail" && d.contains("\"runc\" has no runtime table")));
}

#[test]
fn doctor_tries_an_idmapped_mount_on_tmpfs_and_says_what_the_kernel_allows() {
    if !is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let node = Node::new(&repo_root().join("profiles"), HANDLERS);
    let tmpfs = node.dir.path().join("ext");
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "doctor-test"])
        .arg(&tmpfs)
        .status()
        .unwrap();
    assert!(st.success());
    let (v, _) = node.json();
    let _ = Command::new("umount").arg(&tmpfs).status();
    let probe = &v["facts"]["idmap"][0];
    assert_eq!(probe["fs_type"], "tmpfs", "{v:#}");
    // tmpfs gained idmapped mounts in Linux 6.3.
    let release = nix_release();
    if release >= (6, 3) {
        assert!(probe["error"].is_null(), "{v:#}");
    } else {
        assert!(
            probe["error"].as_str().unwrap().contains("mount_setattr"),
            "{v:#}"
        );
        assert!(findings(&v, "idmapped mounts")
            .iter()
            .any(|(s, _)| s == "warn"));
    }
}

fn nix_release() -> (u32, u32) {
    let r = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut it = r.trim().split(['.', '-']).map(|x| x.parse().unwrap_or(0));
    (it.next().unwrap(), it.next().unwrap())
}

/// Where the runtime cannot bind its binary read-only (here: a read-only
/// /run/stockade/bin in a private mount namespace), the doctor says that every
/// start copies the binary into a sealed memfd instead, with the reason and a fix,
/// and warns without failing.
#[test]
fn doctor_warns_when_the_runtime_binary_cannot_be_bound_read_only() {
    if !is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let node = Node::new(&repo_root().join("profiles"), HANDLERS);
    let (v, code) = node.json_under(&stockade_integration_tests::runtime::in_private_mount_ns(
        "mkdir -p /run/stockade/bin && mount -t tmpfs -o ro stockade-test /run/stockade/bin && exec \"$@\"",
    ));
    let bin = runtime_binary();
    let protected = findings(&v, "runtime binary");
    if on_read_only_mount(&bin) {
        // A binary on a read-only mount (the VM lane's share) needs no bind mount.
        assert_eq!(protected[0].0, "ok", "{protected:?}");
        return;
    }
    assert_eq!(protected.len(), 1, "{v:#}");
    assert_eq!(protected[0].0, "warn", "{protected:?}");
    assert!(protected[0].1.contains("sealed memfd"), "{protected:?}");
    assert!(
        protected[0].1.contains("Read-only file system"),
        "{protected:?}"
    );
    let finding = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "runtime binary")
        .unwrap();
    assert!(finding["fix"]
        .as_str()
        .unwrap()
        .contains("/run/stockade/bin"));
    assert_eq!(code, 0, "a warning is not a failure: {v:#}");
}
