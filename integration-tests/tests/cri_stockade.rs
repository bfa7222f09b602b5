//! CRI as kubelet drives it: pods with runtime handler `stockade` through containerd's
//! CRI plugin and our shim, under the node default profile `default`. Each pod gets
//! its own network namespace from the test-only CNI plugin (a link-local dummy
//! `eth0`), so nothing runs in the node's network namespace (which the profiles
//! refuse). Root only; runtime binary as in containerd_shim.rs.

use std::{path::PathBuf, time::Duration};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::{
    runtime_service_client::RuntimeServiceClient, ContainerConfig, ContainerMetadata,
    ContainerState, ContainerStatusRequest, CreateContainerRequest, ExecSyncRequest, ImageSpec,
    LinuxContainerResources, LinuxPodSandboxConfig, PodSandboxConfig, PodSandboxMetadata,
    RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StopContainerRequest, StopPodSandboxRequest, UpdateContainerResourcesRequest,
};
use serde_json::Value;
use stockade_integration_tests::containerd::{
    cgroup_parent, remove_test_cgroups, skip_unless_stockade, test_cgroups, Containerd, IMAGE,
};
use stockade_integration_tests::profiles::{parse_id_map, status_str};
use stockade_integration_tests::runtime::parse_report;
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

fn sandbox_config(pod: &str, logs: &std::path::Path) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: pod.into(),
            uid: format!("uid-{pod}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        log_directory: logs.display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("{}/{pod}", cgroup_parent()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Network namespaces containerd pinned (`/var/run/netns/cni-*`).
fn cni_netns() -> Vec<String> {
    std::fs::read_dir("/var/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("cni-"))
        .collect()
}

/// The probe report an app container printed first thing into its CRI log
/// (`<time> stdout F <line>`).
fn logged_report(log: &std::path::Path) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let line = text
            .lines()
            .filter_map(|l| l.splitn(4, ' ').nth(3))
            .find(|l| l.contains("uid_map"));
        if let Some(line) = line {
            return parse_report(line);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no probe report in {}: {text}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `(host start, size)` the report's uid_map gives container root.
fn root_range(r: &Value) -> (u64, u64) {
    let maps = parse_id_map(r["uid_map"].as_str().expect("uid_map"));
    assert_eq!(maps.len(), 1, "{r}");
    let (inside, host, size) = maps[0];
    assert_eq!(inside, 0, "{r}");
    (host, size)
}

/// Creates and starts app container `name` in `pod_id`: it prints the probe's report
/// to its log, then sleeps. Returns its id.
async fn start_app(
    cri: &mut RuntimeServiceClient<Channel>,
    pod_id: &str,
    config: &PodSandboxConfig,
    name: &str,
) -> String {
    let cid = cri
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.into(),
            config: Some(ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: name.into(),
                    attempt: 0,
                }),
                image: Some(ImageSpec {
                    image: IMAGE.into(),
                    ..Default::default()
                }),
                command: vec!["sh".into(), "-c".into(), "probe; exec sleep 1000".into()],
                log_path: format!("{name}.log"),
                ..Default::default()
            }),
            sandbox_config: Some(config.clone()),
        })
        .await
        .unwrap_or_else(|e| panic!("CreateContainer {name}: {e}"))
        .into_inner()
        .container_id;
    cri.start_container(StartContainerRequest {
        container_id: cid.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("StartContainer {name}: {e}"));
    cid
}

async fn stop_and_remove(cri: &mut RuntimeServiceClient<Channel>, cid: &str) {
    cri.stop_container(StopContainerRequest {
        container_id: cid.into(),
        timeout: 1,
    })
    .await
    .expect("StopContainer");
    let status = cri
        .container_status(ContainerStatusRequest {
            container_id: cid.into(),
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
        container_id: cid.into(),
    })
    .await
    .expect("RemoveContainer");
}

async fn stop_and_remove_pod(cri: &mut RuntimeServiceClient<Channel>, pod_id: &str) {
    cri.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod_id.into(),
    })
    .await
    .expect("StopPodSandbox");
    cri.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod_id.into(),
    })
    .await
    .expect("RemovePodSandbox");
}

/// Fails today under every shipped profile: containerd 1.6's CRI pins the pod's
/// network namespace itself (owned by the host user namespace) and hands the pause
/// container its path; libcontainer 0.7 creates the injected user namespace first and
/// only then setns(2)s into the path namespaces ("failed to apply rest of the
/// namespaces (exclude user and pid)": EPERM, no CAP_SYS_ADMIN over the host-owned
/// netns). runc joins path namespaces before unsharing the user namespace.
#[test]
fn pods_run_confined_with_stockade_handler() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let stockade = !skip_unless_stockade("profile confinement and host id ranges are Stockade's");
    let c = Containerd::start().expect("containerd");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pod = format!("pod-{}", std::process::id());
    let pod2 = format!("pod2-{}", std::process::id());
    let logs = tempfile::tempdir().unwrap();
    let logs2 = tempfile::tempdir().unwrap();
    let netns_before = cni_netns();
    rt.block_on(async {
        let mut cri = connect(c.socket.clone()).await;
        let config = sandbox_config(&pod, logs.path());
        let pod_id = cri
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: "stockade".into(),
            })
            .await
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", c.log()))
            .into_inner()
            .pod_sandbox_id;
        let a = start_app(&mut cri, &pod_id, &config, "a").await;
        let b = start_app(&mut cri, &pod_id, &config, "b").await;

        // One shim serves the whole pod.
        assert_eq!(c.shim_pids().len(), 1, "shims: {:?}", c.shim_pids());

        let exec = cri
            .exec_sync(ExecSyncRequest {
                container_id: a.clone(),
                cmd: vec!["sh".into(), "-c".into(), "echo hi; exit 2".into()],
                timeout: 10,
            })
            .await
            .expect("ExecSync")
            .into_inner();
        assert_eq!(String::from_utf8_lossy(&exec.stdout), "hi\n");
        assert_eq!(exec.exit_code, 2);

        let status = cri
            .container_status(ContainerStatusRequest {
                container_id: a.clone(),
                verbose: false,
            })
            .await
            .expect("ContainerStatus")
            .into_inner()
            .status
            .expect("status");
        assert_eq!(status.state, ContainerState::ContainerRunning as i32);

        if stockade {
            // Confinement as the app containers' own processes see it.
            let ra = logged_report(&logs.path().join("a.log"));
            let rb = logged_report(&logs.path().join("b.log"));
            for r in [&ra, &rb] {
                assert_eq!(status_str(r, "Seccomp"), "2", "{r}");
                assert_eq!(status_str(r, "NoNewPrivs"), "1", "{r}");
                assert_eq!(r["root"]["rdonly"], true, "{r}");
            }
            let (start, size) = root_range(&ra);
            assert!(start >= 1_000_000, "container root is host uid {start}");
            assert_eq!(size, 65536);
            // Pod members share the pause container's range (they join its user
            // namespace).
            assert_eq!(root_range(&rb), (start, size), "pod members' ranges differ");

            // An exec is filtered as well.
            let exec = cri
                .exec_sync(ExecSyncRequest {
                    container_id: b.clone(),
                    cmd: vec!["probe".into()],
                    timeout: 10,
                })
                .await
                .expect("ExecSync probe")
                .into_inner();
            assert_eq!(
                exec.exit_code,
                0,
                "{}",
                String::from_utf8_lossy(&exec.stderr)
            );
            let r = parse_report(&String::from_utf8_lossy(&exec.stdout));
            assert_eq!(status_str(&r, "Seccomp"), "2", "{r}");
            assert_eq!(status_str(&r, "NoNewPrivs"), "1", "{r}");

            // Another pod, another range.
            let config2 = sandbox_config(&pod2, logs2.path());
            let pod2_id = cri
                .run_pod_sandbox(RunPodSandboxRequest {
                    config: Some(config2.clone()),
                    runtime_handler: "stockade".into(),
                })
                .await
                .unwrap_or_else(|e| panic!("RunPodSandbox 2: {e}\n{}", c.log()))
                .into_inner()
                .pod_sandbox_id;
            let other = start_app(&mut cri, &pod2_id, &config2, "other").await;
            let (start2, _) = root_range(&logged_report(&logs2.path().join("other.log")));
            assert_ne!(start2, start, "two pods share host id range {start}");
            assert!(
                start2.abs_diff(start) >= 65536,
                "{start} and {start2} overlap"
            );
            stop_and_remove(&mut cri, &other).await;
            stop_and_remove_pod(&mut cri, &pod2_id).await;
        }

        cri.update_container_resources(UpdateContainerResourcesRequest {
            container_id: a.clone(),
            linux: Some(LinuxContainerResources {
                memory_limit_in_bytes: 67108864,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("UpdateContainerResources");
        let limit = std::fs::read_to_string(format!(
            "/sys/fs/cgroup/memory{}/{pod}/{a}/memory.limit_in_bytes",
            cgroup_parent()
        ))
        .expect("container memory cgroup");
        assert_eq!(limit.trim(), "67108864");

        stop_and_remove(&mut cri, &a).await;
        stop_and_remove(&mut cri, &b).await;
        stop_and_remove_pod(&mut cri, &pod_id).await;
    });
    std::thread::sleep(Duration::from_millis(200));
    c.assert_clean();
    let netns_left: Vec<String> = cni_netns()
        .into_iter()
        .filter(|n| !netns_before.contains(n))
        .collect();
    assert!(netns_left.is_empty(), "pod netns left: {netns_left:?}");
    // The pod cgroup parents are kubelet's to remove; ours here.
    for p in [&pod, &pod2] {
        for cg in test_cgroups(p) {
            for e in std::fs::read_dir(&cg).into_iter().flatten().flatten() {
                assert!(
                    !e.path().is_dir(),
                    "container cgroup left: {}",
                    e.path().display()
                );
            }
        }
        remove_test_cgroups(p);
        assert!(test_cgroups(p).is_empty());
    }
}
