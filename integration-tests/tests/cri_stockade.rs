//! CRI as a kubelet drives it, with the shapes real clients send: pods through
//! containerd's CRI plugin under every Stockade runtime handler — our shim
//! (`io.containerd.stockade.v2`) and containerd's runc shim with `BinaryName` =
//! stockade — each under the shipped `default`, `baseline` and `restricted` profiles
//! as shipped. The pause image is one static `/pause` without `Env`; the workload
//! image has no `/tmp`, `/run` or `PATH`. Pods ask for what Pod Security
//! `restricted` asks (non-root, drop ALL + NET_BIND_SERVICE, RuntimeDefault seccomp,
//! no privilege escalation, read-only root). Each pod gets its own network namespace
//! from the test-only CNI plugin; containerd pins it under `/var/run/netns` or, with
//! `netns_mounts_under_state_dir`, under its 0700 state dir. Root only.
//!
//! One containerd serves each test; handlers × profiles run as loops inside.

mod cri_common;

use std::{
    ops::{Deref, DerefMut},
    path::{Path, PathBuf},
    time::Duration,
};

use cri_common::{
    assert_confined, is_root, logged_report, logged_until, pod_config, root_range, unique,
    CriClient, PodShape, APP_GID, APP_UID,
};
use k8s_cri::v1::{
    security_profile::ProfileType, ContainerConfig, Mount, MountPropagation, PodSandboxConfig,
    SecurityProfile,
};
use serde_json::Value;
use stockade_integration_tests::containerd::{
    cgroup_parent, skip_unless_stockade, Containerd, CriOptions, CRI_HANDLERS, WORKLOAD_IMAGE,
};
use stockade_integration_tests::image;
use stockade_integration_tests::nss::{install_nss_module, module_loaders};
use stockade_integration_tests::profiles::{cap_mask, status_hex, status_str};
use stockade_integration_tests::runtime::parse_report;

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// `require_root!()`, then skipped (saying why) unless the shims drive Stockade.
macro_rules! require_stockade {
    ($reason:expr) => {
        require_root!();
        if skip_unless_stockade($reason) {
            return;
        }
    };
}

/// A private containerd and a CRI client on it.
struct Cri {
    c: Containerd,
    cri: CriClient,
}

impl Cri {
    fn start(opts: CriOptions) -> Self {
        let c = Containerd::start_with(&opts).expect("containerd");
        let cri = CriClient::connect(&c.socket);
        Self { c, cri }
    }

    /// After every pod was removed: no shim, mount, task dir, runtime state, host id
    /// range or rootfs mount of this containerd, no netns file or container cgroup
    /// of our pods.
    fn assert_nothing_left(&self) {
        self.c.assert_clean();
        self.cri.assert_pods_gone();
    }
}

impl Cri {
    /// RunPodSandbox of a compliant pod `name` under `handler` whose containers log
    /// into a directory of its own under `logs`: (pod id, pod config, that dir).
    fn run_logged_pod(
        &mut self,
        what: &str,
        handler: &str,
        logs: &Path,
        name: &str,
    ) -> (String, PodSandboxConfig, PathBuf) {
        let dir = logs.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let config = pod_config(name, &dir, PodShape::default());
        let pod = self
            .run_pod(handler, &config)
            .unwrap_or_else(|e| panic!("{what}: RunPodSandbox: {e}"));
        (pod, config, dir)
    }

    /// A container its profile should refuse, as a kubelet meets the refusal:
    /// CreateContainer, then StartContainer (containerd calls the runtime for a
    /// container at StartContainer). `Ok` is the CRI error, which must say
    /// `container refused by profile "PROFILE"`, the container removed again; `Err`
    /// is the id of a container that started, still there for the caller to judge.
    fn refusal(
        &self,
        what: &str,
        pod: &str,
        config: &PodSandboxConfig,
        cc: ContainerConfig,
        profile: &str,
    ) -> Result<String, String> {
        let err = match self.create(pod, config, cc) {
            Err(e) => e,
            Ok(cid) => match self.start_container(&cid) {
                Ok(()) => return Err(cid),
                Err(e) => {
                    self.stop_and_remove(&cid);
                    e
                }
            },
        };
        assert_refused_by(what, &err, profile);
        Ok(err)
    }
}

/// `err` is a refusal by `profile`.
fn assert_refused_by(what: &str, err: &str, profile: &str) {
    assert!(
        err.contains(&format!("container refused by profile \"{profile}\"")),
        "{what}: {err}"
    );
}

/// The profile the harness gives `handler` (see [`CRI_HANDLERS`]).
fn profile_of(handler: &str) -> &'static str {
    let entry = CRI_HANDLERS.iter().find(|(h, _, _)| *h == handler);
    entry.expect("a handler the harness configures").2
}

impl Deref for Cri {
    type Target = CriClient;
    fn deref(&self) -> &CriClient {
        &self.cri
    }
}

impl DerefMut for Cri {
    fn deref_mut(&mut self) -> &mut CriClient {
        &mut self.cri
    }
}

/// A restricted-compliant container of the workload image (no PATH: absolute paths).
fn container_config(name: &str, cmd: &[&str], shape: PodShape) -> ContainerConfig {
    cri_common::container_config(name, WORKLOAD_IMAGE, cmd, shape)
}

/// A compliant pod starts confined under every handler and profile, with the pod
/// netns under `/var/run/netns` and under containerd's 0700 state dir: the app's
/// own report (uid_map, Seccomp, caps, uid), an exec into the running pod (same
/// confinement), a bind of :80 with NET_BIND_SERVICE; pod members share one host id
/// range; nothing is left after RemovePodSandbox.
#[test]
fn compliant_pods_run_confined_under_every_handler_and_profile() {
    require_stockade!("profile confinement and host id ranges are Stockade's");
    for under_state_dir in [false, true] {
        let mut cri = Cri::start(CriOptions {
            netns_mounts_under_state_dir: under_state_dir,
        });
        let logs = tempfile::tempdir().unwrap();
        for (n, (handler, _, profile)) in CRI_HANDLERS.iter().enumerate() {
            let what = format!("{handler} ({profile}, netns under state dir: {under_state_dir})");
            eprintln!("--- {what}");
            let name = unique("pod", n + if under_state_dir { 100 } else { 0 });
            let (pod, config, dir) = cri.run_logged_pod(&what, handler, logs.path(), &name);
            let shape = PodShape::default();
            if under_state_dir {
                let ns = cri.pod_netns(&pod).expect("pod netns");
                assert!(
                    ns.starts_with(cri.c.state()),
                    "{what}: netns {} not under the state dir",
                    ns.display()
                );
            }
            let cmd = ["/bin/sh", "-c", "/usr/bin/probe; exec /bin/sleep 1000"];
            let a = cri.create_started(&what, &pod, &config, container_config("a", &cmd, shape));
            let b = cri.create_started(&what, &pod, &config, container_config("b", &cmd, shape));
            let ra = logged_report(&dir.join("a.log"));
            let rb = logged_report(&dir.join("b.log"));
            assert_confined(&what, &ra);
            assert_confined(&what, &rb);
            assert_eq!(
                root_range(&ra),
                root_range(&rb),
                "{what}: pod members' ranges differ"
            );

            // Exec into the running pod: confined the same way.
            let (code, out, err) = cri.exec_sync(&a, &["/usr/bin/probe"]);
            assert_eq!(code, 0, "{what}: exec probe: {err}");
            assert_confined(&format!("{what}: exec"), &parse_report(&out));

            // NET_BIND_SERVICE: the pod may serve on :80.
            let (code, out, err) = cri.exec_sync(&a, &["/usr/bin/probe", "tcp-bind", "80"]);
            assert_eq!(code, 0, "{what}: exec tcp-bind: {err}");
            let r = parse_report(&out);
            assert_eq!(r["ok"], true, "{what}: bind :80: {r}");

            cri.stop_and_remove(&a);
            cri.stop_and_remove(&b);
            cri.stop_and_remove_pod(&pod, Duration::from_secs(30));
        }
        cri.assert_nothing_left();
    }
}

/// The NSS test's image: the workload image with an NSS module named first for
/// `passwd` in its nsswitch.conf (see `stockade_integration_tests::nss`) and an
/// `/etc/passwd` entry for the pods' user, whose home is [`APP_HOME`].
const NSS_IMAGE: &str = "docker.io/library/stockade-nss-workload:test";
const APP_HOME: &str = "/home/app";

/// Builds [`NSS_IMAGE`] and imports it into `c`.
fn import_nss_image(c: &Containerd) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    image::workload_rootfs(&root).expect("workload rootfs");
    install_nss_module(&root).expect("NSS module");
    let passwd = root.join("etc/passwd");
    let mut text = std::fs::read_to_string(&passwd).unwrap();
    text.push_str(&format!(
        "app:x:{APP_UID}:{APP_GID}:app:{APP_HOME}:/bin/sh\n"
    ));
    std::fs::write(&passwd, text).unwrap();
    let archive = dir.path().join("nss-workload.tar");
    image::workload_archive(&root, NSS_IMAGE, &archive).expect("pack the NSS image");
    c.import_image(&archive).expect("import the NSS image");
}

/// The fix of libcontainer patch 31 through the CRI, under every handler: with no
/// `HOME` in the image's or the pod's env, the runtime sets it from the pod user's
/// entry in the image's /etc/passwd, which it must read itself: glibc's getpwuid_r
/// would follow the image's nsswitch.conf and load the image's NSS module in the
/// container's init and in an ExecSync's init, before Landlock and seccomp. The
/// workload calling glibc itself proves the module loads in this pod; the module's
/// line on stderr (the CRI log; ExecSync's stderr) names every binary that loaded it.
#[test]
fn the_home_lookup_runs_no_nss_module_from_the_image_through_the_cri() {
    require_stockade!("the HOME lookup is libcontainer patch 31's");
    let mut cri = Cri::start(CriOptions::default());
    import_nss_image(&cri.c);
    let logs = tempfile::tempdir().unwrap();
    let uid = APP_UID.to_string();
    let only_workload = ["/usr/bin/probe".to_string()];
    for (n, (handler, _, profile)) in CRI_HANDLERS.iter().enumerate() {
        let what = format!("NSS module in the image under {handler} ({profile})");
        eprintln!("--- {what}");
        let name = unique("nss", n);
        let (pod, config, dir) = cri.run_logged_pod(&what, handler, logs.path(), &name);
        let script = format!("/usr/bin/probe passwd-home {uid} >&2; exec /bin/sleep 1000");
        let cmd = ["/bin/sh", "-c", script.as_str()];
        let cc = cri_common::container_config("app", NSS_IMAGE, &cmd, PodShape::default());
        let cid = cri.create_started(&what, &pod, &config, cc);

        let stderr = logged_until(&dir.join("app.log"), &format!("\"uid\":{uid}"));
        let init = parse_report(&stderr);
        assert_eq!(
            init["home"], APP_HOME,
            "{what}: glibc in the workload: {stderr}"
        );
        assert_eq!(
            init["HOME"], APP_HOME,
            "{what}: HOME from /etc/passwd: {stderr}"
        );
        assert_eq!(
            module_loaders(&stderr),
            only_workload,
            "{what}: only the workload's own glibc call may load the image's module: {stderr}"
        );

        let (code, out, err) = cri.exec_sync(&cid, &["/usr/bin/probe", "passwd-home", &uid]);
        assert_eq!(code, 0, "{what}: exec passwd-home: {err}");
        let exec = parse_report(&out);
        assert_eq!(exec["home"], APP_HOME, "{what}: exec: {out}");
        assert_eq!(exec["HOME"], APP_HOME, "{what}: exec: {out}");
        assert_eq!(
            module_loaders(&err),
            only_workload,
            "{what}: the exec's init loaded the image's module: {err}"
        );

        cri.stop_and_remove(&cid);
        cri.stop_and_remove_pod(&pod, Duration::from_secs(30));
    }
    cri.assert_nothing_left();
}

/// Privileged and hostNetwork pods are refused under every handler with the
/// `baseline` and `restricted` profiles, with the rules they break named in the CRI
/// error; `default` either refuses them the same way or hardens them into a
/// container that runs without the host's privileges.
#[test]
fn privileged_and_host_network_pods_are_refused_with_their_rules() {
    require_stockade!("refusals are Stockade's");
    let mut cri = Cri::start(CriOptions::default());
    let logs = tempfile::tempdir().unwrap();
    let cases = [
        (
            "hostnet",
            PodShape {
                host_network: true,
                ..Default::default()
            },
            // All of these: the namespace rule, about the network namespace.
            (["[namespaces.", "network"].as_slice(), true),
        ),
        (
            "privileged",
            PodShape {
                privileged: true,
                ..Default::default()
            },
            // Any of these: host devices or every capability (a privileged
            // container), or no seccomp filter (a privileged pause under
            // `restricted`: its capabilities are dropped, not refused, but PSS
            // restricted requires a filter, which privileged pods do not get).
            (
                [
                    "[devices.node]",
                    "[capabilities.allowed]",
                    "[seccomp.required]",
                ]
                .as_slice(),
                false,
            ),
        ),
    ];
    for (case, shape, rules) in &cases {
        for (n, (handler, _, profile)) in CRI_HANDLERS.iter().enumerate() {
            let what = format!("{case} pod under {handler} ({profile})");
            let config = pod_config(&unique(case, n), logs.path(), *shape);
            // The sandbox, or else the pod's container with the same shape, is
            // refused (containerd gives a privileged pause no host devices).
            let err = match cri.run_pod(handler, &config) {
                Err(e) => {
                    assert_refused_by(&what, &e, profile);
                    e
                }
                Ok(pod) => {
                    let cc = container_config("app", &["/bin/sleep", "1000"], *shape);
                    let refused = cri.refusal(&what, &pod, &config, cc, profile);
                    if let Err(cid) = &refused {
                        // `default` may harden instead of refusing: the container
                        // then runs (never admitted-then-broken) without the host's
                        // privileges. The other profiles must refuse.
                        assert_eq!(*profile, "default", "{what}: admitted");
                        let (code, out, err) = cri.exec_sync(cid, &["/usr/bin/probe"]);
                        assert_eq!(code, 0, "{what}: {err}");
                        let r = parse_report(&out);
                        assert_eq!(status_str(&r, "Seccomp"), "2", "{what}: {r}");
                        let admin = cap_mask(&["CAP_SYS_ADMIN"]);
                        assert_eq!(status_hex(&r, "CapBnd") & admin, 0, "{what}: {r}");
                        eprintln!("{what}: admitted, hardened");
                        cri.stop_and_remove(cid);
                    }
                    cri.stop_and_remove_pod(&pod, Duration::from_secs(30));
                    match refused {
                        Ok(e) => e,
                        Err(_) => continue,
                    }
                }
            };
            eprintln!("{what}: {err}");
            let (rules, all) = rules;
            let named = |r: &&str| err.contains(*r);
            let ok = if *all {
                rules.iter().all(named)
            } else {
                rules.iter().any(named)
            };
            assert!(ok, "{what}: rules {rules:?} not named: {err}");
        }
    }
    cri.assert_nothing_left();
}

/// Issue 7 item 9: a `shareProcessNamespace` pod whose main process exits while a
/// child it started (holding the container's stdout) lives on: the container is
/// reported exited, nothing of it keeps running, StopPodSandbox returns promptly,
/// and a kill of the exited task answers NotFound (through `ctr` on the same
/// containerd), for our shim and for the runc shim driving stockade.
#[test]
fn shared_pid_pod_whose_main_process_exits_leaves_nothing_running() {
    require_root!();
    let mut cri = Cri::start(CriOptions::default());
    let logs = tempfile::tempdir().unwrap();
    for (n, handler) in ["stockade", "stockade-runc"].into_iter().enumerate() {
        let what = format!("shareProcessNamespace pod under {handler}");
        let name = unique("sharepid", n);
        let shape = PodShape {
            share_pid: true,
            ..Default::default()
        };
        let config = pod_config(&name, logs.path(), shape);
        let pod = cri
            .run_pod(handler, &config)
            .unwrap_or_else(|e| panic!("{what}: RunPodSandbox: {e}"));
        let cmd = ["/bin/sh", "-c", "/bin/sleep 1000 & echo started; exit 3"];
        let cid = cri.create_started(&what, &pod, &config, container_config("main", &cmd, shape));
        assert_eq!(cri.wait_exited(&cid), 3, "{what}");
        let cgroup = format!("{}/{name}/{cid}", cgroup_parent());
        assert!(
            cgroup_procs(&cgroup).is_empty(),
            "{what}: still running in {cgroup}: {:?}",
            cgroup_procs(&cgroup)
        );

        let kill = std::process::Command::new("ctr")
            .arg("-a")
            .arg(&cri.c.socket)
            .args(["-n", "k8s.io", "task", "kill", "-s", "SIGKILL", &cid])
            .output()
            .expect("ctr task kill");
        assert!(
            !kill.status.success(),
            "{what}: kill of an exited task succeeded"
        );
        let err = String::from_utf8_lossy(&kill.stderr);
        assert!(
            err.contains("not found"),
            "{what}: NotFound expected: {err}"
        );

        cri.stop_and_remove(&cid);
        cri.stop_and_remove_pod(&pod, Duration::from_secs(15));
    }
    cri.assert_nothing_left();
}

/// Host pids in the container cgroup `rel` (cgroup v1 pids hierarchy, or v2).
fn cgroup_procs(rel: &str) -> Vec<String> {
    let rel = rel.trim_start_matches('/');
    for base in ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"] {
        let p = Path::new(base).join(rel).join("cgroup.procs");
        if let Ok(text) = std::fs::read_to_string(&p) {
            return text.lines().map(str::to_string).collect();
        }
    }
    Vec::new()
}

/// Issue 7 item 8: a container whose volume disappeared between CreateContainer and
/// StartContainer (containerd creates missing host paths at create; the runtime
/// runs at start) fails in rootfs preparation, and the CRI error names the volume's
/// path and the errno exactly once, through both shims.
#[test]
fn rootfs_failure_reaches_the_cri_error_with_path_and_errno_once() {
    require_root!();
    let mut cri = Cri::start(CriOptions::default());
    let logs = tempfile::tempdir().unwrap();
    let pod_dir = PathBuf::from(format!(
        "/var/lib/kubelet/pods/stockade-gone-{}",
        std::process::id()
    ));
    let _guard = VolumeGuard(pod_dir.join("volumes/data"));
    for (n, handler) in ["stockade", "stockade-runc"].into_iter().enumerate() {
        let what = format!("vanished volume under {handler}");
        let vol = pod_dir.join(format!("volumes/data/v{n}"));
        std::fs::create_dir_all(&vol).unwrap();
        let shape = PodShape::default();
        let config = pod_config(&unique("gone", n), logs.path(), shape);
        let pod = cri
            .run_pod(handler, &config)
            .unwrap_or_else(|e| panic!("{what}: RunPodSandbox: {e}"));
        let mut cc = container_config("app", &["/bin/sleep", "1000"], shape);
        cc.mounts = vec![Mount {
            container_path: "/data".into(),
            host_path: vol.display().to_string(),
            ..Default::default()
        }];
        let cid = cri
            .create(&pod, &config, cc)
            .unwrap_or_else(|e| panic!("{what}: CreateContainer: {e}"));
        std::fs::remove_dir(&vol).unwrap();
        let err = cri
            .start_container(&cid)
            .err()
            .unwrap_or_else(|| panic!("{what}: started without its volume"));
        eprintln!("{what}: {err}");
        let path = vol.display().to_string();
        assert_eq!(err.matches(&path).count(), 1, "{what}: path once: {err}");
        assert_eq!(
            err.matches("No such file or directory").count(),
            1,
            "{what}: errno once: {err}"
        );
        assert!(err.contains("/data"), "{what}: destination named: {err}");
        cri.stop_and_remove(&cid);
        cri.stop_and_remove_pod(&pod, Duration::from_secs(30));
    }
    cri.assert_nothing_left();
}

/// Issue 7 item 3: a volume with HostToContainer propagation (containerd sends
/// `rootfsPropagation: rslave` and an `rslave` bind) starts, and a mount made on the
/// host under the volume after the start appears inside; a Bidirectional one
/// (`rshared`) is refused by the profile's `mounts.propagation` rule, not broken.
#[test]
fn host_to_container_propagation_reaches_the_pod() {
    require_root!();
    let mut cri = Cri::start(CriOptions::default());
    let logs = tempfile::tempdir().unwrap();
    // A volume under the kubelet's pods dir, as the profiles allow; a shared mount,
    // as containerd requires for propagation.
    let vol = PathBuf::from(format!(
        "/var/lib/kubelet/pods/stockade-prop-{}/volumes/shared",
        std::process::id()
    ));
    std::fs::create_dir_all(&vol).unwrap();
    let guard = VolumeGuard(vol.clone());
    mount_cmd(&["--bind", path_str(&vol), path_str(&vol)]);
    mount_cmd(&["--make-rshared", path_str(&vol)]);
    for (n, handler) in ["stockade", "stockade-runc"].into_iter().enumerate() {
        let what = format!("rslave volume under {handler}");
        let shape = PodShape::default();
        let config = pod_config(&unique("prop", n), logs.path(), shape);
        let pod = cri
            .run_pod(handler, &config)
            .unwrap_or_else(|e| panic!("{what}: RunPodSandbox: {e}"));
        let mut cc = container_config("app", &["/bin/sleep", "1000"], shape);
        cc.mounts = vec![Mount {
            container_path: "/data".into(),
            host_path: vol.display().to_string(),
            propagation: MountPropagation::PropagationHostToContainer as i32,
            ..Default::default()
        }];
        let cid = cri.create_started(&what, &pod, &config, cc);
        let sub = vol.join(format!("sub{n}"));
        std::fs::create_dir_all(&sub).unwrap();
        mount_cmd(&[
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "stockade-prop",
            path_str(&sub),
        ]);
        std::fs::write(sub.join("marker"), "from-host").unwrap();
        let (code, out, err) = cri.exec_sync(&cid, &["/bin/cat", &format!("/data/sub{n}/marker")]);
        umount(&sub);
        assert_eq!(code, 0, "{what}: host mount not seen inside: {err}");
        assert_eq!(out, "from-host", "{what}");
        cri.stop_and_remove(&cid);

        // Bidirectional (containerd: `rootfsPropagation: rshared`, an `rshared`
        // bind) would let the pod mount into the host: the profile refuses it by
        // name, and the pod stays usable.
        let mut cc = container_config("bidi", &["/bin/sleep", "1000"], shape);
        cc.mounts = vec![Mount {
            container_path: "/data".into(),
            host_path: vol.display().to_string(),
            propagation: MountPropagation::PropagationBidirectional as i32,
            ..Default::default()
        }];
        let err = cri
            .refusal(&what, &pod, &config, cc, profile_of(handler))
            .unwrap_or_else(|cid| {
                cri.stop_and_remove(&cid);
                panic!("{what}: a Bidirectional volume was admitted")
            });
        assert!(
            err.contains("[mounts.propagation]") && err.contains("rshared"),
            "{what}: Bidirectional refused by rule: {err}"
        );
        cri.stop_and_remove_pod(&pod, Duration::from_secs(30));
    }
    drop(guard);
    cri.assert_nothing_left();
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn mount_cmd(args: &[&str]) {
    let st = std::process::Command::new("mount")
        .args(args)
        .status()
        .expect("mount");
    assert!(st.success(), "mount {args:?}");
}

fn umount(p: &Path) {
    let _ = std::process::Command::new("umount")
        .arg("-l")
        .arg(p)
        .stderr(std::process::Stdio::null())
        .status();
}

/// Unmounts and removes the test's volume directory.
struct VolumeGuard(PathBuf);

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        umount(&self.0);
        // .../stockade-prop-<pid>/volumes/shared: remove up to the pod dir.
        if let Some(pod_dir) = self.0.parent().and_then(Path::parent) {
            let _ = std::fs::remove_dir_all(pod_dir);
        }
    }
}

/// Issue 7 item 6: a pod whose seccomp profile (Localhost, the shape of containerd
/// 2.3's RuntimeDefault) allows `uretprobe`, newer than the syscall table, runs:
/// the unknown name only allowed something, so it is dropped.
#[test]
fn seccomp_profile_with_a_newer_syscall_name_runs() {
    require_root!();
    let mut cri = Cri::start(CriOptions::default());
    let logs = tempfile::tempdir().unwrap();
    let profile_dir = tempfile::tempdir().unwrap();
    let profile = profile_dir.path().join("runtime-default-2.3.json");
    std::fs::write(&profile, runtime_default_like_profile().to_string()).unwrap();
    for (n, handler) in ["stockade", "stockade-runc"].into_iter().enumerate() {
        let what = format!("uretprobe seccomp under {handler}");
        let shape = PodShape::default();
        let config = pod_config(&unique("seccomp", n), logs.path(), shape);
        let pod = cri
            .run_pod(handler, &config)
            .unwrap_or_else(|e| panic!("{what}: RunPodSandbox: {e}"));
        let mut cc = container_config("app", &["/bin/sleep", "1000"], shape);
        use_localhost_seccomp(&mut cc, &profile);
        let cid = cri.create_started(&what, &pod, &config, cc);
        let (code, out, err) = cri.exec_sync(&cid, &["/usr/bin/probe"]);
        assert_eq!(code, 0, "{what}: {err}");
        assert_eq!(status_str(&parse_report(&out), "Seccomp"), "2", "{what}");
        cri.stop_and_remove(&cid);
        cri.stop_and_remove_pod(&pod, Duration::from_secs(30));
    }
    cri.assert_nothing_left();
}

/// The container's seccomp profile is the Localhost one at `profile` (kubelet's
/// `seccompProfile: {type: Localhost}`, resolved to a path).
fn use_localhost_seccomp(cc: &mut ContainerConfig, profile: &Path) {
    if let Some(sc) = cc.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.seccomp = Some(SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: profile.display().to_string(),
        });
    }
}

/// A deny-by-default profile in the shape of containerd's RuntimeDefault: the
/// syscalls a shell and the probe need, plus `uretprobe` (Linux 6.11), which
/// containerd 2.3 allows.
fn runtime_default_like_profile() -> Value {
    let allowed = [
        "accept4",
        "access",
        "arch_prctl",
        "bind",
        "brk",
        "capget",
        "chdir",
        "clock_gettime",
        "clock_nanosleep",
        "clone",
        "clone3",
        "close",
        "connect",
        "dup",
        "dup2",
        "dup3",
        "epoll_create1",
        "epoll_ctl",
        "epoll_pwait",
        "epoll_wait",
        "execve",
        "exit",
        "exit_group",
        "faccessat",
        "faccessat2",
        "fchdir",
        "fcntl",
        "fstat",
        "fstatfs",
        "futex",
        "getcwd",
        "getdents64",
        "getegid",
        "geteuid",
        "getgid",
        "getpgrp",
        "getpid",
        "getppid",
        "getrandom",
        "getrlimit",
        "getsockname",
        "getsockopt",
        "gettid",
        "getuid",
        "ioctl",
        "kill",
        "listen",
        "lseek",
        "madvise",
        "mmap",
        "mprotect",
        "munmap",
        "nanosleep",
        "newfstatat",
        "open",
        "openat",
        "pipe",
        "pipe2",
        "poll",
        "ppoll",
        "prctl",
        "pread64",
        "prlimit64",
        "read",
        "readlink",
        "readlinkat",
        "rseq",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "sched_getaffinity",
        "sched_yield",
        "set_robust_list",
        "set_tid_address",
        "setsockopt",
        "sigaltstack",
        "socket",
        "stat",
        "statfs",
        "statx",
        "sysinfo",
        "tgkill",
        "uname",
        "uretprobe",
        "wait4",
        "write",
        "writev",
    ];
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{ "names": allowed.as_slice(), "action": "SCMP_ACT_ALLOW" }],
    })
}

/// Issue 12: the filter containerd's CRI really sends for `RuntimeDefault` (taken from
/// a running container's bundle), imported with `stockade profile import-seccomp`,
/// lints clean as the default filter of the shipped profiles once the syscalls they
/// deny by name (io_uring, which containerd 1.6 still allows) are excluded.
#[test]
fn containerds_runtime_default_filter_imports_and_lints_clean() {
    require_stockade!("profile tools are Stockade's");
    let mut cri = Cri::start(CriOptions::default());
    let logs = tempfile::tempdir().unwrap();
    let name = unique("rtdefault", 0);
    let config = pod_config(&name, logs.path(), PodShape::default());
    let pod = cri.run_pod("stockade", &config).expect("RunPodSandbox");
    let cmd = ["/bin/sleep", "1000"];
    let cid = cri.create_started(
        "runtime default",
        &pod,
        &config,
        container_config("a", &cmd, PodShape::default()),
    );
    let bundle_spec = cri
        .c
        .state()
        .join("io.containerd.runtime.v2.task/k8s.io")
        .join(&cid)
        .join("config.json");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(&bundle_spec).unwrap())
        .expect("containerd's spec");
    cri.stop_and_remove(&cid);
    cri.stop_and_remove_pod(&pod, Duration::from_secs(30));
    cri.assert_nothing_left();
    let filter = &spec["linux"]["seccomp"];
    assert_eq!(filter["defaultAction"], "SCMP_ACT_ERRNO", "{filter}");

    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("containerd-default.json");
    std::fs::write(&json, filter.to_string()).unwrap();
    let profiles = dir.path().join("profiles");
    let st = std::process::Command::new("cp")
        .arg("-r")
        .arg(stockade_integration_tests::runtime::profiles_dir())
        .arg(&profiles)
        .status()
        .unwrap();
    assert!(st.success());
    let stockade = stockade_integration_tests::containerd::runtime_binary();
    let out = std::process::Command::new(&stockade)
        .args(["profile", "import-seccomp"])
        .arg(&json)
        .args(["--name", "containerd", "--exclude"])
        .args(["io_uring_setup", "io_uring_enter", "io_uring_register"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(profiles.join("seccomp/containerd.toml"), &out.stdout).unwrap();
    for profile in ["default", "baseline", "restricted"] {
        let path = profiles.join(format!("{profile}.toml"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("default_filter = \"seccomp/default.toml\""),
            "{profile}"
        );
        std::fs::write(
            &path,
            text.replace(
                "default_filter = \"seccomp/default.toml\"",
                "default_filter = \"seccomp/containerd.toml\"",
            ),
        )
        .unwrap();
        let lint = std::process::Command::new(&stockade)
            .args(["profile", "lint"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&lint.stdout).to_string()
            + &String::from_utf8_lossy(&lint.stderr);
        assert!(lint.status.success(), "{profile}: {text}");
        assert!(text.contains(": 0 errors"), "{profile}: {text}");
    }
}

/// A pod's Localhost seccomp profile that hands syscalls to a userspace agent
/// (`SCMP_ACT_NOTIFY` with `listenerPath`, which containerd copies into the spec) is
/// refused under every shipped handler (`seccomp.user_notification = "forbid"`),
/// naming the rule; the pod stays usable and nothing is left behind.
#[test]
fn a_seccomp_agent_in_a_localhost_profile_is_refused() {
    require_root!();
    let mut cri = Cri::start(CriOptions::default());
    let logs = tempfile::tempdir().unwrap();
    let profile_dir = tempfile::tempdir().unwrap();
    let profile = profile_dir.path().join("notify-agent.json");
    let mut filter = runtime_default_like_profile();
    filter["listenerPath"] = "/run/stockade-test-agent-never-used.sock".into();
    filter["syscalls"]
        .as_array_mut()
        .expect("syscalls")
        .push(serde_json::json!({"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}));
    std::fs::write(&profile, filter.to_string()).unwrap();
    for (n, (handler, _, profile_name)) in CRI_HANDLERS.iter().enumerate() {
        let what = format!("seccomp agent under {handler} ({profile_name})");
        let shape = PodShape::default();
        let config = pod_config(&unique("agent", n), logs.path(), shape);
        let pod = cri
            .run_pod(handler, &config)
            .unwrap_or_else(|e| panic!("{what}: RunPodSandbox: {e}"));
        let mut cc = container_config("app", &["/bin/sleep", "1000"], shape);
        use_localhost_seccomp(&mut cc, &profile);
        let err = cri
            .refusal(&what, &pod, &config, cc, profile_name)
            .unwrap_or_else(|cid| {
                cri.stop_and_remove(&cid);
                panic!("{what}: a seccomp agent was admitted")
            });
        assert!(
            err.contains("seccomp.user_notification") && err.contains("linux.seccomp.listenerPath"),
            "{what}: {err}"
        );
        // The pod still runs a container without the agent.
        let cc = container_config("ok", &["/bin/sleep", "1000"], shape);
        let cid = cri.create_started(&what, &pod, &config, cc);
        cri.stop_and_remove(&cid);
        cri.stop_and_remove_pod(&pod, Duration::from_secs(30));
    }
    cri.assert_nothing_left();
}
