//! Without `STOCKADE_CONFIG` (containerd's runc shim with `BinaryName = stockade`
//! passes no Stockade setting at all), the runtime reads the node config at its
//! default path, `/etc/stockade/config.toml`. The test gives its own runtime process a
//! private `/etc` (an overlay over the host's, in a private mount namespace) holding
//! that file, so the host's `/etc` is never touched. Root only.

use std::{fs, process::Command};

use stockade_integration_tests::runtime::profiles_dir;
use stockade_integration_tests::{assert_nothing_left_behind, runtime, skip_on_reference};

#[test]
fn node_config_at_the_default_path_applies_without_stockade_config() {
    if skip_on_reference("the node config is Stockade's") {
        return;
    }
    let rt = runtime!();
    let dir = tempfile::tempdir().unwrap();
    let upper = dir.path().join("upper");
    let work = dir.path().join("work");
    fs::create_dir_all(upper.join("stockade")).unwrap();
    fs::create_dir_all(&work).unwrap();
    // `restricted` refuses the bundle's root user; the compiled-in default (used
    // when no node config exists) and the harness's own config would admit it.
    fs::write(
        upper.join("stockade/config.toml"),
        format!(
            "schema = 1\nprofiles_dir = {:?}\ndefault_profile = \"restricted\"\n",
            profiles_dir()
        ),
    )
    .unwrap();
    let bundle = stockade_integration_tests::BundleBuilder::new()
        .args(&["true"])
        .build();
    let log = dir.path().join("log.json");
    let script = format!(
        "mount -t overlay stockade-test-etc -o lowerdir=/etc,upperdir={},workdir={} /etc && exec \"$@\"",
        upper.display(),
        work.display()
    );
    let out = Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .arg(rt.binary())
        .arg("--root")
        .arg(rt.state_root())
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "create", "--bundle"])
        .arg(bundle.path())
        .arg(&bundle.id)
        .env_remove("STOCKADE_CONFIG")
        .env_remove("STOCKADE_PROFILE")
        .env("STOCKADE_USERNS_DB", rt.userns_db_path())
        .output()
        .expect("run stockade in a private mount namespace");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("container refused by profile \"restricted\""),
        "the default-path node config did not apply: {err}"
    );
    assert!(fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("refused by profile"));
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}
