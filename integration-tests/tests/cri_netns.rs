//! The pod network namespace through the CRI (issue 7, defect 5): containerd 1.6's
//! CRI plugin pins each pod's network namespace in the host's user namespace, under
//! `/var/run/netns` or, with `netns_mounts_under_state_dir = true`, under its state
//! dir (here inside the harness's 0700 temp dir). Under the shipped `default`
//! profile (user namespace per pod) the pod starts, an app container binds :80 with
//! the CAP_NET_BIND_SERVICE containerd gives it, and a pod sysctl
//! (`net.ipv4.ping_group_range`, as containerd 2.x sets by default) applies: an
//! ICMP echo socket opens. Root only.

use std::time::Duration;

use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ImageSpec, LinuxPodSandboxConfig, PodSandboxConfig,
    PodSandboxMetadata,
};
use stockade_integration_tests::containerd::{
    cgroup_parent, remove_test_cgroups, skip_unless_stockade, Containerd, IMAGE,
};
use stockade_integration_tests::runtime::parse_report;

mod cri_common;
use cri_common::CriClient;

/// Mount points of network namespace files (nsfs) under `dir`.
fn pinned_netns_under(dir: &std::path::Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" - nsfs "))
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

fn pod_binds_80_and_gets_its_sysctls(under_state_dir: bool) {
    if skip_unless_stockade("the default profile's user namespace is Stockade's") {
        return;
    }
    let c = Containerd::start_with_cri_options(&format!(
        "  netns_mounts_under_state_dir = {under_state_dir}"
    ))
    .expect("containerd");
    let pod = format!("netns-{under_state_dir}-{}", std::process::id());
    let logs = tempfile::tempdir().unwrap();
    let mut cri = CriClient::connect(&c.socket);
    let config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: pod.clone(),
            uid: format!("uid-{pod}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        log_directory: logs.path().display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("{}/{pod}", cgroup_parent()),
            sysctls: [(
                "net.ipv4.ping_group_range".to_string(),
                "0 2147483647".to_string(),
            )]
            .into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod_id = cri
        .run_pod("stockade", &config)
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", c.log()));
    let pinned = pinned_netns_under(c.dir());
    assert_eq!(
        pinned.len(),
        usize::from(under_state_dir),
        "netns pinned under the state dir: {pinned:?}"
    );
    let app = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "web".into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: IMAGE.into(),
            ..Default::default()
        }),
        command: vec!["sleep".into(), "1000".into()],
        log_path: "web.log".into(),
        ..Default::default()
    };
    let cid = cri.create_started("web", &pod_id, &config, app);

    let (_, out, _) = cri.exec_sync(&cid, &["probe", "tcp-bind", "80"]);
    let bind = parse_report(&out);
    assert_eq!(bind["ok"], true, "bind :80 in the pod netns: {bind}");
    let (_, out, _) = cri.exec_sync(&cid, &["probe", "syscall", "socket", "2", "2", "1"]);
    let ping = parse_report(&out);
    assert_eq!(ping["errno"], 0, "ICMP echo socket: {ping}");

    cri.stop_and_remove(&cid);
    cri.stop_and_remove_pod(&pod_id, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(200));
    c.assert_clean();
    assert!(pinned_netns_under(c.dir()).is_empty(), "pod netns left");
    cri.assert_pods_gone();
    remove_test_cgroups(&pod);
}

#[test]
fn pod_netns_under_state_dir_binds_80_and_gets_its_sysctls() {
    pod_binds_80_and_gets_its_sysctls(true);
}

#[test]
fn pod_netns_under_var_run_netns_binds_80_and_gets_its_sysctls() {
    pod_binds_80_and_gets_its_sysctls(false);
}
