//! The pod network namespace through the CRI (issue 7, defect 5): containerd 1.6's
//! CRI plugin pins each pod's network namespace in the host's user namespace, under
//! `/var/run/netns` or, with `netns_mounts_under_state_dir = true`, under its state
//! dir (here inside the harness's 0700 temp dir). Under the shipped `default`
//! profile (user namespace per pod) the pod starts, an app container binds :80 with
//! the CAP_NET_BIND_SERVICE containerd gives it, and a pod sysctl
//! (`net.ipv4.ping_group_range`, as containerd 2.x sets by default) applies: an
//! ICMP echo socket opens. Root only.

use std::{path::PathBuf, time::Duration};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::{
    runtime_service_client::RuntimeServiceClient, ContainerConfig, ContainerMetadata,
    CreateContainerRequest, ExecSyncRequest, ImageSpec, LinuxPodSandboxConfig, PodSandboxConfig,
    PodSandboxMetadata, RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest,
    StartContainerRequest, StopContainerRequest, StopPodSandboxRequest,
};
use serde_json::Value;
use stockade_integration_tests::containerd::{
    cgroup_parent, remove_test_cgroups, skip_unless_stockade, Containerd, IMAGE,
};
use stockade_integration_tests::runtime::parse_report;
use tonic::transport::{Channel, Endpoint, Uri};

async fn connect(socket: PathBuf) -> RuntimeServiceClient<Channel> {
    let channel = Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = socket.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .expect("connect to CRI");
    RuntimeServiceClient::new(channel)
}

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

async fn exec_report(cri: &mut RuntimeServiceClient<Channel>, cid: &str, cmd: &[&str]) -> Value {
    let out = cri
        .exec_sync(ExecSyncRequest {
            container_id: cid.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 10,
        })
        .await
        .unwrap_or_else(|e| panic!("ExecSync {cmd:?}: {e}"))
        .into_inner();
    parse_report(&String::from_utf8_lossy(&out.stdout))
}

fn pod_binds_80_and_gets_its_sysctls(under_state_dir: bool) {
    if skip_unless_stockade("the default profile's user namespace is Stockade's") {
        return;
    }
    let c = Containerd::start_with_cri_options(&format!(
        "  netns_mounts_under_state_dir = {under_state_dir}"
    ))
    .expect("containerd");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pod = format!("netns-{under_state_dir}-{}", std::process::id());
    let logs = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let mut cri = connect(c.socket.clone()).await;
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
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: "stockade".into(),
            })
            .await
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", c.log()))
            .into_inner()
            .pod_sandbox_id;
        let pinned = pinned_netns_under(c.dir());
        assert_eq!(
            pinned.len(),
            usize::from(under_state_dir),
            "netns pinned under the state dir: {pinned:?}"
        );
        let cid = cri
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod_id.clone(),
                config: Some(ContainerConfig {
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
                }),
                sandbox_config: Some(config.clone()),
            })
            .await
            .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", c.log()))
            .into_inner()
            .container_id;
        cri.start_container(StartContainerRequest {
            container_id: cid.clone(),
        })
        .await
        .expect("StartContainer");

        let bind = exec_report(&mut cri, &cid, &["probe", "tcp-bind", "80"]).await;
        assert_eq!(bind["ok"], true, "bind :80 in the pod netns: {bind}");
        let ping = exec_report(
            &mut cri,
            &cid,
            &["probe", "syscall", "socket", "2", "2", "1"],
        )
        .await;
        assert_eq!(ping["errno"], 0, "ICMP echo socket: {ping}");

        cri.stop_container(StopContainerRequest {
            container_id: cid.clone(),
            timeout: 1,
        })
        .await
        .expect("StopContainer");
        cri.remove_container(RemoveContainerRequest { container_id: cid })
            .await
            .expect("RemoveContainer");
        cri.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .expect("StopPodSandbox");
        cri.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod_id,
        })
        .await
        .expect("RemovePodSandbox");
    });
    std::thread::sleep(Duration::from_millis(200));
    c.assert_clean();
    assert!(pinned_netns_under(c.dir()).is_empty(), "pod netns left");
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
