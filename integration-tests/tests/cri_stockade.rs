//! CRI as kubelet drives it: a pod with runtime handler `stockade` through containerd's
//! CRI plugin and our shim. Root only; runtime binary as in containerd_shim.rs.

use std::{path::PathBuf, time::Duration};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::{
    runtime_service_client::RuntimeServiceClient, ContainerConfig, ContainerMetadata,
    ContainerState, ContainerStatusRequest, CreateContainerRequest, ExecSyncRequest, ImageSpec,
    LinuxContainerResources, LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode,
    NamespaceOption, PodSandboxConfig, PodSandboxMetadata, RemoveContainerRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopContainerRequest,
    StopPodSandboxRequest, UpdateContainerResourcesRequest,
};
use stockade_integration_tests::containerd::{
    remove_test_cgroups, test_cgroups, Containerd, CGROUP_PARENT, IMAGE,
};
use tonic::transport::{Channel, Endpoint, Uri};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

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

#[test]
fn pod_lifecycle_with_stockade_handler() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let c = Containerd::start().expect("containerd");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pod = format!("pod-{}", std::process::id());
    let logs = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let mut cri = connect(c.socket.clone()).await;
        let sandbox_config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: pod.clone(),
                uid: format!("uid-{pod}"),
                namespace: "default".into(),
                attempt: 0,
            }),
            log_directory: logs.path().display().to_string(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: format!("{CGROUP_PARENT}/{pod}"),
                // containerd 1.6's CRI wants an eth0 from CNI; a loopback-only CNI
                // config has none, so the pod uses the node's network namespace.
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: NamespaceMode::Node as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pod_id = cri
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(sandbox_config.clone()),
                runtime_handler: "stockade".into(),
            })
            .await
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", c.log()))
            .into_inner()
            .pod_sandbox_id;

        let cid = cri
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod_id.clone(),
                config: Some(ContainerConfig {
                    metadata: Some(ContainerMetadata {
                        name: "main".into(),
                        attempt: 0,
                    }),
                    image: Some(ImageSpec {
                        image: IMAGE.into(),
                        ..Default::default()
                    }),
                    command: vec!["sleep".into(), "1000".into()],
                    log_path: "main.log".into(),
                    ..Default::default()
                }),
                sandbox_config: Some(sandbox_config),
            })
            .await
            .expect("CreateContainer")
            .into_inner()
            .container_id;
        cri.start_container(StartContainerRequest {
            container_id: cid.clone(),
        })
        .await
        .expect("StartContainer");

        // One shim serves the whole pod.
        assert_eq!(c.shim_pids().len(), 1, "shims: {:?}", c.shim_pids());

        let exec = cri
            .exec_sync(ExecSyncRequest {
                container_id: cid.clone(),
                cmd: vec!["sh".into(), "-c".into(), "echo hi; id -u; exit 2".into()],
                timeout: 10,
            })
            .await
            .expect("ExecSync")
            .into_inner();
        assert_eq!(String::from_utf8_lossy(&exec.stdout), "hi\n0\n");
        assert_eq!(exec.exit_code, 2);

        let status = cri
            .container_status(ContainerStatusRequest {
                container_id: cid.clone(),
                verbose: false,
            })
            .await
            .expect("ContainerStatus")
            .into_inner()
            .status
            .expect("status");
        assert_eq!(status.state, ContainerState::ContainerRunning as i32);

        cri.update_container_resources(UpdateContainerResourcesRequest {
            container_id: cid.clone(),
            linux: Some(LinuxContainerResources {
                memory_limit_in_bytes: 67108864,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("UpdateContainerResources");
        let limit = std::fs::read_to_string(format!(
            "/sys/fs/cgroup/memory{CGROUP_PARENT}/{pod}/{cid}/memory.limit_in_bytes"
        ))
        .expect("container memory cgroup");
        assert_eq!(limit.trim(), "67108864");

        cri.stop_container(StopContainerRequest {
            container_id: cid.clone(),
            timeout: 1,
        })
        .await
        .expect("StopContainer");
        let status = cri
            .container_status(ContainerStatusRequest {
                container_id: cid.clone(),
                verbose: false,
            })
            .await
            .expect("ContainerStatus")
            .into_inner()
            .status
            .expect("status");
        assert_eq!(status.state, ContainerState::ContainerExited as i32);
        // SIGTERM (143), or SIGKILL (137) after the grace period.
        assert!(
            matches!(status.exit_code, 137 | 143),
            "exit {}",
            status.exit_code
        );

        cri.remove_container(RemoveContainerRequest {
            container_id: cid.clone(),
        })
        .await
        .expect("RemoveContainer");
        cri.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .expect("StopPodSandbox");
        cri.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .expect("RemovePodSandbox");
    });
    std::thread::sleep(Duration::from_millis(200));
    c.assert_clean();
    // The pod cgroup parent is kubelet's to remove; ours here.
    for p in test_cgroups(&pod) {
        for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
            assert!(
                !e.path().is_dir(),
                "container cgroup left: {}",
                e.path().display()
            );
        }
    }
    remove_test_cgroups(&pod);
    assert!(test_cgroups(&pod).is_empty());
}
