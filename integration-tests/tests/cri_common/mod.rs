//! CRI as a kubelet drives it, shared by the `cri_*` test files (`mod cri_common;`):
//! a client on a containerd's socket that remembers the pods it ran, and the pod and
//! container configs a kubelet sends for a Pod-Security-restricted pod (non-root,
//! drop ALL + NET_BIND_SERVICE, RuntimeDefault seccomp, no privilege escalation,
//! read-only root), with the checks of what such a pod's process sees.

// Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::{
    future::Future,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::{
    runtime_service_client::RuntimeServiceClient, security_profile::ProfileType, Capability,
    ContainerConfig, ContainerMetadata, ContainerState, ContainerStatusRequest,
    CreateContainerRequest, ExecSyncRequest, ImageSpec, Int64Value, LinuxContainerConfig,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata, PodSandboxStatusRequest,
    RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest, SecurityProfile,
    StartContainerRequest, StopContainerRequest, StopPodSandboxRequest,
};
use serde_json::Value;
use stockade_integration_tests::containerd::{cgroup_parent, remove_test_cgroups, test_cgroups};
use stockade_integration_tests::profiles::{cap_mask, parse_id_map, status_hex, status_str};
use stockade_integration_tests::runtime::parse_report;
use tonic::transport::{Channel, Endpoint, Uri};

pub type Client = RuntimeServiceClient<Channel>;

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The pod's `securityContext.runAsUser` / `runAsGroup`: a kubelet sends them for
/// the sandbox (pause) and every container.
pub const APP_UID: i64 = 1000;
pub const APP_GID: i64 = 1000;

/// A CRI client on one containerd, and what the test made through it.
pub struct CriClient {
    rt: tokio::runtime::Runtime,
    client: Client,
    /// Network namespace files of the pods this test made (to check they go away;
    /// other containerds on the machine pin theirs in `/var/run/netns` too).
    pub netns: Vec<PathBuf>,
    /// Pod names (their cgroup parents are ours to remove, as a kubelet's).
    pub pods: Vec<String>,
}

impl CriClient {
    /// Connects to the CRI service on containerd's gRPC socket.
    pub fn connect(socket: &Path) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(connect(socket.to_path_buf()));
        Self {
            rt,
            client,
            netns: Vec::new(),
            pods: Vec::new(),
        }
    }

    pub fn block<F: Future>(&self, f: impl FnOnce(Client) -> F) -> F::Output {
        self.rt.block_on(f(self.client.clone()))
    }

    /// RunPodSandbox; on success remembers the pod's netns file.
    pub fn run_pod(&mut self, handler: &str, config: &PodSandboxConfig) -> Result<String, String> {
        let name = config.metadata.as_ref().expect("metadata").name.clone();
        self.pods.push(name);
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        };
        let id = self
            .block(|mut c| async move { c.run_pod_sandbox(req).await })
            .map_err(|s| s.message().to_string())?
            .into_inner()
            .pod_sandbox_id;
        if let Some(ns) = self.pod_netns(&id) {
            self.netns.push(ns);
        }
        Ok(id)
    }

    /// The pod's network namespace path, from the sandbox's verbose status.
    pub fn pod_netns(&self, pod: &str) -> Option<PathBuf> {
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: pod.into(),
            verbose: true,
        };
        let info = self
            .block(|mut c| async move { c.pod_sandbox_status(req).await })
            .expect("PodSandboxStatus")
            .into_inner()
            .info;
        let info: Value = serde_json::from_str(info.get("info")?).ok()?;
        info.pointer("/runtimeSpec/linux/namespaces")?
            .as_array()?
            .iter()
            .find(|n| n["type"] == "network")?["path"]
            .as_str()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    }

    pub fn create(
        &self,
        pod: &str,
        pod_config: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> Result<String, String> {
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(config),
            sandbox_config: Some(pod_config.clone()),
        };
        self.block(|mut c| async move { c.create_container(req).await })
            .map(|r| r.into_inner().container_id)
            .map_err(|s| s.message().to_string())
    }

    pub fn start_container(&self, cid: &str) -> Result<(), String> {
        let req = StartContainerRequest {
            container_id: cid.into(),
        };
        self.block(|mut c| async move { c.start_container(req).await })
            .map(drop)
            .map_err(|s| s.message().to_string())
    }

    /// CreateContainer + StartContainer; panics naming `what` on failure.
    pub fn create_started(
        &self,
        what: &str,
        pod: &str,
        pod_config: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> String {
        let cid = self
            .create(pod, pod_config, config)
            .unwrap_or_else(|e| panic!("{what}: CreateContainer: {e}"));
        self.start_container(&cid)
            .unwrap_or_else(|e| panic!("{what}: StartContainer: {e}"));
        cid
    }

    pub fn exec_sync(&self, cid: &str, cmd: &[&str]) -> (i32, String, String) {
        let req = ExecSyncRequest {
            container_id: cid.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 20,
        };
        let r = self
            .block(|mut c| async move { c.exec_sync(req).await })
            .unwrap_or_else(|e| panic!("ExecSync {cmd:?}: {}", e.message()))
            .into_inner();
        (
            r.exit_code,
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    }

    pub fn container_state(&self, cid: &str) -> (i32, i32) {
        let req = ContainerStatusRequest {
            container_id: cid.into(),
            verbose: false,
        };
        let s = self
            .block(|mut c| async move { c.container_status(req).await })
            .expect("ContainerStatus")
            .into_inner()
            .status
            .expect("status");
        (s.state, s.exit_code)
    }

    pub fn wait_exited(&self, cid: &str) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (state, code) = self.container_state(cid);
            if state == ContainerState::ContainerExited as i32 {
                return code;
            }
            assert!(Instant::now() < deadline, "{cid} never exited");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn stop_and_remove(&self, cid: &str) {
        let req = StopContainerRequest {
            container_id: cid.into(),
            timeout: 2,
        };
        self.block(|mut c| async move { c.stop_container(req).await })
            .unwrap_or_else(|e| panic!("StopContainer {cid}: {}", e.message()));
        let req = RemoveContainerRequest {
            container_id: cid.into(),
        };
        self.block(|mut c| async move { c.remove_container(req).await })
            .unwrap_or_else(|e| panic!("RemoveContainer {cid}: {}", e.message()));
    }

    /// StopPodSandbox (which must return within `limit`) and RemovePodSandbox.
    pub fn stop_and_remove_pod(&self, pod: &str, limit: Duration) {
        let req = StopPodSandboxRequest {
            pod_sandbox_id: pod.into(),
        };
        let stopped = self.block(|mut c| async move {
            tokio::time::timeout(limit, c.stop_pod_sandbox(req)).await
        });
        match stopped {
            Err(_) => panic!("StopPodSandbox {pod} still running after {limit:?}"),
            Ok(r) => {
                r.unwrap_or_else(|e| panic!("StopPodSandbox {pod}: {}", e.message()));
            }
        }
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: pod.into(),
        };
        self.block(|mut c| async move { c.remove_pod_sandbox(req).await })
            .unwrap_or_else(|e| panic!("RemovePodSandbox {pod}: {}", e.message()));
    }

    /// After every pod was removed: no netns file of our pods, no container cgroup
    /// under our pods' parents (which we then remove, as a kubelet would).
    pub fn assert_pods_gone(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.netns.iter().any(|n| n.exists()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let left: Vec<&PathBuf> = self.netns.iter().filter(|n| n.exists()).collect();
        assert!(left.is_empty(), "pod netns left: {left:?}");
        for pod in &self.pods {
            for cg in test_cgroups(pod) {
                for e in std::fs::read_dir(&cg).into_iter().flatten().flatten() {
                    assert!(
                        !e.path().is_dir(),
                        "container cgroup left: {}",
                        e.path().display()
                    );
                }
            }
            remove_test_cgroups(pod);
            assert!(test_cgroups(pod).is_empty(), "pod cgroup {pod} left");
        }
    }

    /// Removes the pods' cgroup parents (a failed test's cleanup; best effort).
    pub fn remove_pod_cgroups(&self) {
        for pod in &self.pods {
            remove_test_cgroups(pod);
        }
    }
}

async fn connect(socket: PathBuf) -> Client {
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

pub fn runtime_default() -> Option<SecurityProfile> {
    Some(SecurityProfile {
        profile_type: ProfileType::RuntimeDefault as i32,
        localhost_ref: String::new(),
    })
}

/// How a pod differs from the compliant shape.
#[derive(Default, Clone, Copy)]
pub struct PodShape {
    pub share_pid: bool,
    pub host_network: bool,
    pub privileged: bool,
}

impl PodShape {
    fn namespaces(self) -> Option<NamespaceOption> {
        Some(NamespaceOption {
            network: if self.host_network {
                NamespaceMode::Node
            } else {
                NamespaceMode::Pod
            } as i32,
            pid: if self.share_pid {
                NamespaceMode::Pod
            } else {
                NamespaceMode::Container
            } as i32,
            ipc: NamespaceMode::Pod as i32,
            ..Default::default()
        })
    }
}

/// What a kubelet sends for a Pod-Security-restricted pod (plus `shape`), its
/// cgroup parent under the tests' cgroup parent.
pub fn pod_config(name: &str, logs: &Path, shape: PodShape) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        log_directory: logs.display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("{}/{name}", cgroup_parent()),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: shape.namespaces(),
                run_as_user: Some(Int64Value { value: APP_UID }),
                run_as_group: Some(Int64Value { value: APP_GID }),
                privileged: shape.privileged,
                seccomp: runtime_default(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What a kubelet sends for `procMount: Default` (its list before Kubernetes added
/// /sys/devices/virtual/powercap: the profiles add that one).
pub const KUBELET_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
pub const KUBELET_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A restricted-compliant container of `image` running `cmd` (absolute paths: the
/// workload image has no PATH).
pub fn container_config(name: &str, image: &str, cmd: &[&str], shape: PodShape) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                capabilities: Some(Capability {
                    add_capabilities: vec!["NET_BIND_SERVICE".into()],
                    drop_capabilities: vec!["ALL".into()],
                    ..Default::default()
                }),
                privileged: shape.privileged,
                namespace_options: shape.namespaces(),
                run_as_user: Some(Int64Value { value: APP_UID }),
                run_as_group: Some(Int64Value { value: APP_GID }),
                readonly_rootfs: true,
                no_new_privs: true,
                seccomp: runtime_default(),
                masked_paths: KUBELET_MASKED_PATHS.iter().map(|p| p.to_string()).collect(),
                readonly_paths: KUBELET_READONLY_PATHS
                    .iter()
                    .map(|p| p.to_string())
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The probe report an app container printed first thing into its CRI log.
pub fn logged_report(log: &Path) -> Value {
    let text = logged_until(log, "uid_map");
    let line = text.lines().find(|l| l.contains("uid_map"));
    parse_report(line.expect("a line with uid_map"))
}

/// The lines a container wrote to its CRI log (`<time> stdout|stderr F <line>`),
/// both streams in the order containerd logged them, once one of them contains
/// `needle`.
pub fn logged_until(log: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter_map(|l| l.splitn(4, ' ').nth(3))
            .collect();
        if lines.iter().any(|l| l.contains(needle)) {
            return lines.join("\n");
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in {}: {text}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `(host start, size)` the report's uid_map gives container root.
pub fn root_range(r: &Value) -> (u64, u64) {
    let maps = parse_id_map(r["uid_map"].as_str().expect("uid_map"));
    assert_eq!(maps.len(), 1, "{r}");
    let (inside, host, size) = maps[0];
    assert_eq!(inside, 0, "{r}");
    (host, size)
}

/// Confinement as a restricted pod's own process sees it.
pub fn assert_confined(what: &str, r: &Value) {
    assert_eq!(status_str(r, "Seccomp"), "2", "{what}: {r}");
    assert_eq!(status_str(r, "NoNewPrivs"), "1", "{what}: {r}");
    assert_eq!(
        status_hex(r, "CapBnd"),
        cap_mask(&["CAP_NET_BIND_SERVICE"]),
        "{what}: bounding set: {r}"
    );
    assert_eq!(
        status_hex(r, "CapEff"),
        0,
        "{what}: uid {APP_UID} holds no caps: {r}"
    );
    let uid = status_str(r, "Uid");
    assert!(
        uid.split_whitespace().all(|u| u == APP_UID.to_string()),
        "{what}: runs as {APP_UID}: {uid}"
    );
    let (start, size) = root_range(r);
    assert!(
        start >= 1_000_000,
        "{what}: container root is host uid {start}"
    );
    assert_eq!(size, 65536, "{what}: {r}");
}

/// A name unique to this test process.
pub fn unique(name: &str, n: usize) -> String {
    format!("{name}-{n}-{}", std::process::id())
}
