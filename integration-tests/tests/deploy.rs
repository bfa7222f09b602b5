//! `deploy/`: the Kubernetes manifests validate against the Kubernetes API schema, the
//! profiles ConfigMap is generated from `profiles/`, and the node installer
//! (`deploy/installer/stockade-node-install.sh`) installs onto a scratch node root,
//! re-installs idempotently and uninstalls leaving the root exactly as it was. The
//! containerd config it writes is loaded by the real containerd (`config dump`).
//!
//! Needs `kubernetes-validate` (PyPI; scripts/install-deps.sh puts it in
//! /opt/stockade-test-venv, or name it with STOCKADE_KUBERNETES_VALIDATE) and Debian's
//! containerd. No root needed.

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
};
use stockade_integration_tests::installer::{repo_root, stage_artifacts};

fn kubernetes_validate() -> String {
    std::env::var("STOCKADE_KUBERNETES_VALIDATE")
        .unwrap_or_else(|_| "/opt/stockade-test-venv/bin/kubernetes-validate".into())
}

const MANIFESTS: &[&str] = &[
    "deploy/runtimeclasses.yaml",
    "deploy/stockade-deploy.yaml",
    "deploy/profiles-configmap.yaml",
];

#[test]
fn manifests_validate_against_the_kubernetes_api_schema() {
    // The oldest Kubernetes still supported upstream and the newest the validator knows.
    for version in ["1.31.0", "1.37.0"] {
        let out = Command::new(kubernetes_validate())
            .args(["--strict", "-k", version])
            .args(MANIFESTS.iter().map(|m| repo_root().join(m)))
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "run {} (scripts/install-deps.sh installs it): {e}",
                    kubernetes_validate()
                )
            });
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "Kubernetes {version}: {text}");
        for resource in [
            "runtimeclass/stockade ",
            "runtimeclass/stockade-baseline",
            "runtimeclass/stockade-restricted",
            "daemonset/stockade-deploy",
            "configmap/stockade-profiles",
            "clusterrole/stockade-deploy",
        ] {
            assert!(
                text.contains(&format!("passed for resource {resource}")),
                "{resource} not validated against {version}: {text}"
            );
        }
    }
}

#[test]
fn strict_validation_catches_a_misspelt_field() {
    // Proves the validator above is strict: a typo in a manifest is an error.
    let dir = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(repo_root().join("deploy/stockade-deploy.yaml")).unwrap();
    let bad = dir.path().join("bad.yaml");
    fs::write(&bad, text.replace("hostPID: true", "hostPid: true")).unwrap();
    let out = Command::new(kubernetes_validate())
        .args(["--strict", "-k", "1.31.0"])
        .arg(&bad)
        .output()
        .expect("run kubernetes-validate");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("hostPid"));
}

#[test]
fn profiles_configmap_is_generated_from_profiles_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cm.yaml");
    let st = Command::new(repo_root().join("scripts/gen-profiles-configmap.sh"))
        .arg(&out)
        .status()
        .expect("run gen-profiles-configmap.sh");
    assert!(st.success());
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        fs::read_to_string(repo_root().join("deploy/profiles-configmap.yaml")).unwrap(),
        "deploy/profiles-configmap.yaml is stale: run scripts/gen-profiles-configmap.sh"
    );
}

/// Every path under `root` with its type, mode, owner and content hash.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let md = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let what = if md.is_dir() {
                walk(root, &p, out);
                "dir".to_string()
            } else {
                format!("{:x}", md5ish(&fs::read(&p).unwrap()))
            };
            out.insert(
                rel,
                format!("{what} {:o} {}:{}", md.mode(), md.uid(), md.gid()),
            );
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// FNV-1a: enough to tell file contents apart in a snapshot.
fn md5ish(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

struct Node {
    _dir: tempfile::TempDir,
    root: PathBuf,
    artifacts: PathBuf,
    calls: PathBuf,
    bin: PathBuf,
}

impl Node {
    /// A scratch node root with the given containerd config, and the installer's
    /// artifacts dir holding this workspace's binaries and the repository's profiles.
    fn new(containerd_config: Option<&str>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("host");
        for d in ["etc/containerd", "usr/local/bin", "var/lib"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        if let Some(text) = containerd_config {
            fs::write(root.join("etc/containerd/config.toml"), text).unwrap();
        }
        let artifacts = stage_artifacts(dir.path());
        // A kubectl that records its arguments: the installer labels the node with it.
        let bin = dir.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        let calls = dir.path().join("calls");
        let kubectl = bin.join("kubectl");
        fs::write(
            &kubectl,
            format!("#!/bin/sh\necho \"kubectl $*\" >> {}\n", calls.display()),
        )
        .unwrap();
        fs::set_permissions(&kubectl, fs::Permissions::from_mode(0o755)).unwrap();
        Node {
            _dir: dir,
            root,
            artifacts,
            calls,
            bin,
        }
    }

    fn installer(&self, verb: &str) -> std::process::Output {
        let out = Command::new(repo_root().join("deploy/installer/stockade-node-install.sh"))
            .arg(verb)
            .env("HOST_ROOT", &self.root)
            .env("ARTIFACTS", &self.artifacts)
            .env("NODE_NAME", "node-1")
            .env("KUBECTL", self.bin.join("kubectl"))
            .env(
                "RESTART_CONTAINERD",
                format!("echo restart-containerd >> {}", self.calls.display()),
            )
            .output()
            .expect("run the installer");
        assert!(
            out.status.success(),
            "installer {verb}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(&self.calls)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// containerd's own view of the installed config (`containerd config dump`
    /// loads the file as containerd would at start, and fails on a bad one).
    fn containerd_dump(&self) -> toml::Table {
        let out = Command::new("containerd")
            .arg("--config")
            .arg(self.root.join("etc/containerd/config.toml"))
            .args(["config", "dump"])
            .output()
            .expect("run containerd config dump");
        assert!(
            out.status.success(),
            "containerd refuses the installed config: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .parse()
            .expect("containerd's dump is TOML")
    }
}

/// An operator's containerd 1.6 config, with CRI settings the installer must keep.
const OPERATOR_CONFIG_V2: &str = r#"version = 2
root = "/var/lib/containerd"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = true
"#;

fn cri_v2(dump: &toml::Table) -> &toml::Table {
    dump["plugins"]["io.containerd.grpc.v1.cri"]
        .as_table()
        .expect("the CRI plugin is configured")
}

fn assert_handlers(containerd: &toml::Value) {
    let runtimes = containerd["runtimes"].as_table().unwrap();
    for (handler, profile) in [
        ("stockade", "default"),
        ("stockade-baseline", "baseline"),
        ("stockade-restricted", "restricted"),
        ("stockade-unconfined", "unconfined"),
    ] {
        let h = &runtimes[handler];
        assert_eq!(
            h["runtime_type"].as_str(),
            Some("io.containerd.stockade.v2")
        );
        assert_eq!(
            h["pod_annotations"].as_array().unwrap(),
            &vec![toml::Value::from("org.stockade.*")],
            "{handler}: the profile and Landlock annotations must reach the runtime"
        );
        assert_eq!(
            h["options"]["ConfigPath"].as_str().unwrap(),
            format!("/etc/containerd/stockade-{profile}.toml")
        );
    }
    assert_eq!(containerd["default_runtime_name"].as_str(), Some("runc"));
    assert_eq!(
        runtimes["runc"]["runtime_type"].as_str(),
        Some("io.containerd.runc.v2")
    );
}

#[test]
fn installer_installs_reinstalls_and_uninstalls_without_a_trace() {
    let node = Node::new(Some(OPERATOR_CONFIG_V2));
    let before = snapshot(&node.root);

    node.installer("install");
    let installed = snapshot(&node.root);
    let bin = node.root.join("usr/local/bin/stockade");
    assert_eq!(
        fs::read(&bin).unwrap(),
        fs::read(node.artifacts.join("bin/stockade")).unwrap()
    );
    assert_eq!(fs::metadata(&bin).unwrap().mode() & 0o7777, 0o755);
    assert!(node
        .root
        .join("usr/local/bin/containerd-shim-stockade-v2")
        .exists());
    for p in ["default", "baseline", "restricted", "unconfined"] {
        assert_eq!(
            fs::read_to_string(node.root.join(format!("etc/stockade/profiles/{p}.toml"))).unwrap(),
            fs::read_to_string(repo_root().join(format!("profiles/{p}.toml"))).unwrap()
        );
        let opts = fs::read_to_string(node.root.join(format!("etc/containerd/stockade-{p}.toml")))
            .unwrap();
        assert!(opts.contains(&format!("profile = \"{p}\"")), "{opts}");
        let handler = if p == "default" {
            "stockade".to_string()
        } else {
            format!("stockade-{p}")
        };
        assert!(opts.contains(&format!("handler = \"{handler}\"")), "{opts}");
    }
    assert!(node
        .root
        .join("etc/stockade/profiles/seccomp/default.toml")
        .exists());

    // containerd loads it: the operator's CRI settings stay, runc stays the default,
    // and every handler is there.
    let dump = node.containerd_dump();
    let cri = cri_v2(&dump);
    assert_eq!(
        cri["sandbox_image"].as_str(),
        Some("registry.k8s.io/pause:3.9")
    );
    assert_eq!(
        cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"].as_bool(),
        Some(true)
    );
    assert_handlers(&cri["containerd"]);
    assert_eq!(
        node.calls(),
        [
            "restart-containerd",
            "kubectl label node node-1 org.stockade/runtime=installed --overwrite"
        ]
    );

    // Re-installing (a DaemonSet pod restart) changes nothing.
    node.installer("install");
    assert_eq!(snapshot(&node.root), installed);

    node.installer("uninstall");
    assert_eq!(snapshot(&node.root), before);
    assert_eq!(
        node.calls().last().map(String::as_str),
        Some("kubectl label node node-1 org.stockade/runtime- --overwrite")
    );
}

#[test]
fn installer_on_a_node_without_containerd_config_keeps_cri_and_runc() {
    let node = Node::new(None);
    let before = snapshot(&node.root);
    node.installer("install");
    let dump = node.containerd_dump();
    let cri = cri_v2(&dump);
    let disabled = dump
        .get("disabled_plugins")
        .and_then(toml::Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert!(
        !disabled
            .iter()
            .any(|p| matches!(p.as_str(), Some("cri" | "io.containerd.grpc.v1.cri"))),
        "{disabled:?}"
    );
    assert_handlers(&cri["containerd"]);
    node.installer("uninstall");
    assert_eq!(snapshot(&node.root), before);
}

#[test]
fn installer_keeps_an_operators_node_config_and_restores_replaced_files() {
    let node = Node::new(Some(OPERATOR_CONFIG_V2));
    fs::create_dir_all(node.root.join("etc/stockade")).unwrap();
    let mine = "schema = 1\nprofiles_dir = \"/srv/profiles\"\ndefault_profile = \"baseline\"\n";
    fs::write(node.root.join("etc/stockade/config.toml"), mine).unwrap();
    // An older Stockade installed by hand: replaced, and put back on uninstall.
    fs::write(node.root.join("usr/local/bin/stockade"), "old binary").unwrap();
    let before = snapshot(&node.root);
    node.installer("install");
    assert_eq!(
        fs::read_to_string(node.root.join("etc/stockade/config.toml")).unwrap(),
        mine
    );
    assert_ne!(
        fs::read(node.root.join("usr/local/bin/stockade")).unwrap(),
        b"old binary"
    );
    node.installer("uninstall");
    assert_eq!(snapshot(&node.root), before);
}

#[test]
fn installer_writes_containerd_2_syntax_for_a_version_3_config() {
    let v3 =
        "version = 3\n\n[plugins.\"io.containerd.cri.v1.images\"]\n  snapshotter = \"overlayfs\"\n";
    let node = Node::new(Some(v3));
    node.installer("install");
    // containerd 1.6 cannot load version 3; check the file as TOML.
    let text = fs::read_to_string(node.root.join("etc/containerd/config.toml")).unwrap();
    let cfg: toml::Table = text.parse().expect("installed v3 config is TOML");
    assert_eq!(
        cfg["plugins"]["io.containerd.cri.v1.images"]["snapshotter"].as_str(),
        Some("overlayfs")
    );
    let runtimes = cfg["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]
        .as_table()
        .unwrap();
    assert_eq!(runtimes.len(), 4, "{text}");
    assert_eq!(
        runtimes["stockade-restricted"]["options"]["ConfigPath"].as_str(),
        Some("/etc/containerd/stockade-restricted.toml")
    );
    assert!(!text.contains("io.containerd.grpc.v1.cri"), "{text}");
}

#[test]
fn installer_refuses_a_config_that_already_has_a_stockade_handler() {
    let cfg = format!(
        "{OPERATOR_CONFIG_V2}\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.stockade]\n  runtime_type = \"io.containerd.stockade.v2\"\n"
    );
    let node = Node::new(Some(&cfg));
    let before = snapshot(&node.root);
    let out = Command::new(repo_root().join("deploy/installer/stockade-node-install.sh"))
        .arg("install")
        .env("HOST_ROOT", &node.root)
        .env("ARTIFACTS", &node.artifacts)
        .env("RESTART_CONTAINERD", "")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already defines a stockade runtime handler"),
        "{err}"
    );
    // Refused before anything was changed.
    assert_eq!(snapshot(&node.root), before);
}

#[test]
fn installer_refuses_a_version_1_config_with_the_fix() {
    let node = Node::new(Some("[plugins.cri]\n  sandbox_image = \"pause:3.9\"\n"));
    let before = snapshot(&node.root);
    let out = Command::new(repo_root().join("deploy/installer/stockade-node-install.sh"))
        .arg("install")
        .env("HOST_ROOT", &node.root)
        .env("ARTIFACTS", &node.artifacts)
        .env("RESTART_CONTAINERD", "")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config version 1") && err.contains("containerd config migrate"),
        "{err}"
    );
    assert_eq!(snapshot(&node.root), before);
}

#[test]
fn shipped_containerd_configs_are_complete_and_up_to_date() {
    // Generated from the installer: regenerate and compare every file.
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new(repo_root().join("scripts/gen-containerd-configs.sh"))
        .arg(dir.path())
        .status()
        .expect("run gen-containerd-configs.sh");
    assert!(st.success());
    let shipped = repo_root().join("deploy/containerd");
    let names = |d: &Path| {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(dir.path()), names(&shipped));
    for n in names(&shipped) {
        assert_eq!(
            fs::read_to_string(dir.path().join(&n)).unwrap(),
            fs::read_to_string(shipped.join(&n)).unwrap(),
            "deploy/containerd/{n} is stale: run scripts/gen-containerd-configs.sh"
        );
    }

    // Version 2, used as the whole config: containerd loads it with the CRI plugin,
    // runc as the default runtime and every handler.
    let out = Command::new("containerd")
        .arg("--config")
        .arg(shipped.join("config-v2.toml"))
        .args(["config", "dump"])
        .output()
        .expect("containerd config dump");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump: toml::Table = String::from_utf8_lossy(&out.stdout).parse().unwrap();
    assert_handlers(&cri_v2(&dump)["containerd"]);

    // Version 3 (containerd 2.x, not installed here): the same handlers under the
    // CRI runtime plugin, runc kept.
    let v3: toml::Table = fs::read_to_string(shipped.join("config-v3.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(v3["version"].as_integer(), Some(3));
    assert_handlers(&v3["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]);

    // Each handler's options name its handler and profile, and load in the shim's
    // option format (every key known).
    for (h, p) in [
        ("stockade", "default"),
        ("stockade-restricted", "restricted"),
    ] {
        let opts: toml::Table = fs::read_to_string(shipped.join(format!("stockade-{p}.toml")))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(opts["handler"].as_str(), Some(h));
        assert_eq!(opts["profile"].as_str(), Some(p));
        for k in opts.keys() {
            assert!(
                ["binary_name", "root", "config", "handler", "profile"].contains(&k.as_str()),
                "unknown shim option {k}"
            );
        }
    }
}

/// Issue 7: a node whose containerd keeps its root and state elsewhere gets a node
/// config whose `[paths]` say so (and the kubelet's root from KUBELET_ROOT_DIR), so
/// the shipped profiles, installed unchanged, allow that node's sandbox binds; the
/// installed runtime reads it and explains the resolved prefixes.
#[test]
fn installer_names_the_nodes_containerd_and_kubelet_dirs_in_the_node_config() {
    let node = Node::new(Some(&OPERATOR_CONFIG_V2.replacen(
        "root = \"/var/lib/containerd\"\n",
        "root = \"/data/containerd\"\nstate = \"/run/k8s-containerd\"\n",
        1,
    )));
    let out = Command::new(repo_root().join("deploy/installer/stockade-node-install.sh"))
        .arg("install")
        .env("HOST_ROOT", &node.root)
        .env("ARTIFACTS", &node.artifacts)
        .env("KUBECTL", node.bin.join("kubectl"))
        .env("KUBELET_ROOT_DIR", "/data/kubelet")
        .env("RESTART_CONTAINERD", "")
        .output()
        .expect("run the installer");
    assert!(out.status.success(), "{out:?}");
    let config = fs::read_to_string(node.root.join("etc/stockade/config.toml")).unwrap();
    for line in [
        "containerd_root = \"/data/containerd\"",
        "containerd_state = \"/run/k8s-containerd\"",
        "kubelet_root = \"/data/kubelet\"",
    ] {
        assert!(config.lines().any(|l| l == line), "{line} in:\n{config}");
    }
    // The installed config, with its profiles dir moved into the scratch root.
    let moved = node.root.join("etc/stockade/test-config.toml");
    fs::write(
        &moved,
        config.replace(
            "/etc/stockade/profiles",
            &node.root.join("etc/stockade/profiles").to_string_lossy(),
        ),
    )
    .unwrap();
    let out = Command::new(node.root.join("usr/local/bin/stockade"))
        .args(["profile", "explain", "restricted"])
        .env("STOCKADE_CONFIG", &moved)
        .output()
        .expect("stockade profile explain");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for resolved in [
        "(here /data/kubelet/pods)",
        "(here /data/containerd/io.containerd.grpc.v1.cri/sandboxes)",
        "(here /run/k8s-containerd/io.containerd.grpc.v1.cri/sandboxes)",
    ] {
        assert!(text.contains(resolved), "{resolved} in:\n{text}");
    }
    fs::remove_file(&moved).unwrap();
    node.installer("uninstall");
}
