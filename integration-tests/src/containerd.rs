//! A private containerd for end-to-end tests of `containerd-shim-stockade-v2`.
//!
//! Debian's `/usr/bin/containerd` runs with its own config (version 2), root, state
//! and socket under a temp dir. The config is the harness's base plus the snippets
//! shipped in `shim/examples/` (`containerd-v2.toml`, `containerd-v2-per-handler.toml`)
//! with their `/etc/...`, `/run/...` and `/usr/local/bin/stockade` paths moved into
//! the temp dir, so the documented configuration is the tested one. containerd knows
//! `io.containerd.stockade.v2` (our shim, found through PATH: the shim's directory
//! comes first) and `io.containerd.runc.v2`; its CRI plugin has the runtime handlers
//! of [`CRI_HANDLERS`]: `stockade`, `stockade-baseline`, `stockade-restricted` (our
//! shim) and `stockade-runc`, `stockade-runc-baseline`, `stockade-runc-restricted`
//! (the runc shim with `BinaryName` = stockade; the node config picks the profile by
//! state root), the locally built images of [`crate::image`] (the pause image is one
//! static `/pause`) and a test-only CNI plugin
//! (`integration-tests/cni/stockade-test-eth0`) that gives every pod a link-local
//! dummy `eth0`. [`CriOptions`] sets `netns_mounts_under_state_dir`.
//!
//! The runtime binary is the workspace's `stockade` (as for the runtime tests) unless
//! `STOCKADE_RUNTIME_BINARY` names another (runc as the reference). Its node config
//! (`STOCKADE_CONFIG`: the repository's profiles, default profile `default`) and host
//! id range database (`STOCKADE_USERNS_DB`) are private to the harness and set in
//! containerd's environment, which every shim and runtime invocation inherits.
//! Dropping the harness stops containerd by PID and unmounts everything under its
//! root.

use std::{
    fs, io,
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use crate::{bounded, image};

pub const NAMESPACE: &str = "stockade-test";
pub const IMAGE: &str = "docker.io/library/stockade-busybox:test";
pub const PAUSE_IMAGE: &str = "docker.io/library/stockade-pause:test";
/// A distroless-style workload: busybox + probe, no `/tmp`, `/run`, no `PATH`.
pub const WORKLOAD_IMAGE: &str = "docker.io/library/stockade-workload:test";
pub const RUNTIME: &str = "io.containerd.stockade.v2";
/// The longest any one `ctr` call may take, even in the VM lane (TCG runs a
/// container start ~25x slower than the host): a hang fails the test instead.
pub const CTR_LIMIT: std::time::Duration = std::time::Duration::from_secs(180);
/// Parent of every test cgroup (absolute cgroupsPath), e.g. `/stockade-test`.
pub fn cgroup_parent() -> String {
    format!("/{}", crate::bundle::cgroup_parent())
}

/// The directory holding the built `containerd-shim-stockade-v2`.
pub fn shim_dir() -> PathBuf {
    if let Ok(p) = std::env::var("STOCKADE_SHIM") {
        return Path::new(&p)
            .parent()
            .expect("shim path has a parent")
            .into();
    }
    // target/<profile>/deps/<test> -> target/<profile>
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf();
    if !dir.join("containerd-shim-stockade-v2").exists() {
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let st = Command::new(cargo)
            .args(["build", "-p", "containerd-shim-stockade-v2"])
            .status()
            .expect("run cargo build for the shim");
        assert!(st.success(), "building the shim failed");
    }
    dir
}

/// Env var: the runtime binary the shims drive (default: the workspace's stockade).
pub const RUNTIME_BINARY_ENV: &str = "STOCKADE_RUNTIME_BINARY";

/// Which runtime binary the shims drive: `$STOCKADE_RUNTIME_BINARY`, else the
/// workspace's built `stockade` (the lookup of [`crate::runtime::runtime_binary`]).
pub fn runtime_binary() -> String {
    std::env::var(RUNTIME_BINARY_ENV)
        .unwrap_or_else(|_| crate::runtime::runtime_binary().display().to_string())
}

/// True when the shims drive Stockade (not a reference runtime such as runc).
pub fn runtime_is_stockade() -> bool {
    !crate::runtime::is_reference()
        && Path::new(&runtime_binary())
            .file_name()
            .is_some_and(|n| n == "stockade")
}

/// Call at the top of a Stockade-specific test: true (after saying why) when the
/// shims drive a reference runtime and the test must be skipped.
pub fn skip_unless_stockade(reason: &str) -> bool {
    if runtime_is_stockade() {
        return false;
    }
    eprintln!(
        "SKIPPED: runtime binary {} is not stockade: {reason}",
        runtime_binary()
    );
    true
}

/// The repository's `shim/examples/` (documented containerd and shim configs).
pub fn examples_dir() -> PathBuf {
    crate::installer::repo_root().join("shim/examples")
}

/// The test-only CNI plugin's source (`integration-tests/cni/`).
pub fn cni_plugin_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cni/stockade-test-eth0")
}

/// Where the documented paths land in the harness's temp dir `d`. The node config's
/// `[paths]` values are matched quoted, so they move only where they stand alone: this
/// containerd's root and state are under `d`, which its node config says, as a node
/// with non-default directories does (the shipped profiles stay as shipped).
fn moved_paths(d: &Path) -> [(&'static str, String); 8] {
    [
        (
            "\"/var/lib/containerd\"",
            format!("{:?}", d.join("root").display().to_string()),
        ),
        (
            "\"/run/containerd\"",
            format!("{:?}", d.join("state").display().to_string()),
        ),
        (
            "/etc/containerd/",
            format!("{}/etc/containerd/", d.display()),
        ),
        (
            "/etc/stockade/config.toml",
            d.join("node-config.toml").display().to_string(),
        ),
        (
            "/etc/stockade/profiles",
            d.join("profiles").display().to_string(),
        ),
        ("/usr/local/bin/stockade", runtime_binary()),
        (
            "/run/containerd/stockade-runc",
            d.join("runc-stockade-root").display().to_string(),
        ),
        (
            "/run/containerd/stockade",
            d.join("runtime-root").display().to_string(),
        ),
    ]
}

/// An example file with its documented paths moved into `d`; `version = N` lines
/// dropped (the harness's base config has its own).
pub fn templated_example(name: &str, d: &Path) -> io::Result<String> {
    let text = fs::read_to_string(examples_dir().join(name))?;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("version =") {
            continue;
        }
        let mut line = line.to_string();
        for (from, to) in moved_paths(d) {
            line = line.replace(from, &to);
        }
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

pub struct Containerd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub socket: PathBuf,
}

impl Containerd {
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The shim runtime config file (`ConfigPath` of the `stockade` handler's
    /// options): `shim/examples/stockade-shim.toml`.
    pub fn runtime_config(&self) -> PathBuf {
        self.handler_options("stockade-shim.toml")
    }

    /// Runtime state root the shim passes to the runtime binary.
    pub fn runtime_root(&self) -> PathBuf {
        self.dir.path().join("runtime-root")
    }

    /// The Stockade node config every runtime invocation reads (`STOCKADE_CONFIG`):
    /// `shim/examples/stockade-config.toml` with the repository's profiles.
    pub fn node_config(&self) -> PathBuf {
        self.dir.path().join("node-config.toml")
    }

    /// The host id range database of this containerd's containers (`STOCKADE_USERNS_DB`).
    pub fn userns_db(&self) -> PathBuf {
        self.dir.path().join("userns-ranges.json")
    }

    /// State root of `io.containerd.runc.v2` driving the runtime binary (ctr's
    /// `--runc-root`, the `stockade-runc` handler's `Root`).
    pub fn runc_shim_root(&self) -> PathBuf {
        self.dir.path().join("runc-stockade-root")
    }

    /// An options file of the documented ones, by name (e.g. `stockade-restricted.toml`).
    pub fn handler_options(&self, name: &str) -> PathBuf {
        self.dir.path().join("etc/containerd").join(name)
    }

    /// Owners of the host id ranges currently allocated.
    pub fn userns_range_owners(&self) -> Vec<String> {
        let Ok(text) = fs::read_to_string(self.userns_db()) else {
            return Vec::new();
        };
        let db: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        db["ranges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["owner"].as_str().map(str::to_string))
            .collect()
    }

    pub fn start() -> io::Result<Self> {
        Self::start_with_cri_options("")
    }

    /// A containerd whose CRI plugin is configured by `opts`.
    pub fn start_with(opts: &CriOptions) -> io::Result<Self> {
        Self::start_with_cri_options(&opts.cri_toml())
    }

    /// Like [`Self::start`], with `cri_options` (TOML `key = value` lines) added to
    /// the CRI plugin's section, e.g. `netns_mounts_under_state_dir = true`.
    pub fn start_with_cri_options(cri_options: &str) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("stockade-ctrd").tempdir()?;
        let d = dir.path();
        let socket = d.join("containerd.sock");
        install_cni(d)?;
        install_profiles(d)?;
        fs::create_dir_all(d.join("etc/containerd"))?;
        for name in [
            "stockade-shim.toml",
            "stockade-restricted.toml",
            "stockade-baseline.toml",
        ] {
            fs::write(
                d.join("etc/containerd").join(name),
                templated_example(name, d)?,
            )?;
        }
        fs::write(
            d.join("node-config.toml"),
            templated_example("stockade-config.toml", d)?,
        )?;
        let mut config = config_toml(d, &socket, cri_options);
        for snippet in [
            "containerd-v2.toml",
            "containerd-v2-per-handler.toml",
            "containerd-v2-runc-per-handler.toml",
        ] {
            config.push_str(&format!("\n# from shim/examples/{snippet}\n"));
            config.push_str(&templated_example(snippet, d)?);
        }
        fs::write(d.join("config.toml"), config)?;
        let path = format!(
            "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            shim_dir().display()
        );
        let log = fs::File::create(d.join("containerd.log"))?;
        let child = Command::new("/usr/bin/containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .env_clear()
            .env("PATH", path)
            // Inherited by every shim and so by every runtime invocation, including
            // containerd's runc shim, which has no option for them.
            .env("STOCKADE_CONFIG", d.join("node-config.toml"))
            .env("STOCKADE_USERNS_DB", d.join("userns-ranges.json"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut me = Self {
            dir,
            child: Some(child),
            socket,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while UnixStream::connect(&me.socket).is_err() || !me.ctr(&["version"]).status.success() {
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "containerd did not come up: {}",
                    me.log()
                )));
            }
            sleep(Duration::from_millis(100));
        }
        me.import_images()?;
        Ok(me)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// `ctr -a <socket> -n <namespace> <args>` as a Command.
    pub fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("-a")
            .arg(&self.socket)
            .args(["-n", NAMESPACE])
            .args(args);
        cmd
    }

    /// Runs `ctr <args>` to completion; fails the test, with containerd's log,
    /// when it is still running after [`CTR_LIMIT`].
    pub fn ctr(&self, args: &[&str]) -> Output {
        match bounded::output_within(self.ctr_cmd(args), CTR_LIMIT).expect("run ctr") {
            Ok(out) => out,
            Err(t) => panic!(
                "ctr {args:?} still running after {:?} (killed)\nstdout: {}\nstderr: {}\ncontainerd log:\n{}",
                t.limit,
                t.stdout,
                t.stderr,
                self.log()
            ),
        }
    }

    fn import_images(&mut self) -> io::Result<()> {
        let work = self.dir.path().join("images");
        fs::create_dir_all(&work)?;
        let images = image::build_test_images(&work, IMAGE, PAUSE_IMAGE, WORKLOAD_IMAGE)?;
        for archive in [images.image, images.pause, images.workload] {
            self.import_image(&archive)?;
        }
        Ok(())
    }

    /// Imports the OCI image archive `archive` (see [`image::oci_archive`]) into the
    /// `ctr` tests' namespace and the CRI's (`k8s.io`).
    pub fn import_image(&self, archive: &Path) -> io::Result<()> {
        for ns in [NAMESPACE, "k8s.io"] {
            let out = Command::new("ctr")
                .arg("-a")
                .arg(&self.socket)
                .args(["-n", ns, "images", "import"])
                .arg(archive)
                .output()?;
            if !out.status.success() {
                return Err(io::Error::other(format!(
                    "import {}: {}",
                    archive.display(),
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
        }
        Ok(())
    }

    /// PIDs of shim processes serving this containerd (matched by its address).
    pub fn shim_pids(&self) -> Vec<u32> {
        let needle = self.socket.to_string_lossy().to_string();
        let mut pids = Vec::new();
        for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let is_shim = args.first().is_some_and(|a| a.contains("containerd-shim"));
            if is_shim && args.iter().any(|a| a == &needle) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Zombie children of this containerd's shims (a shim must reap every child).
    pub fn shim_zombies(&self) -> Vec<u32> {
        let shims = self.shim_pids();
        let mut zombies = Vec::new();
        for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: comm may contain spaces, split after ')'.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let mut f = rest.split_whitespace();
            let (state, ppid) = (f.next(), f.next().and_then(|p| p.parse::<u32>().ok()));
            if state == Some("Z") && ppid.is_some_and(|p| shims.contains(&p)) {
                zombies.push(pid);
            }
        }
        zombies
    }

    /// Mount points under this containerd's temp dir.
    pub fn mounts(&self) -> Vec<String> {
        mounts_under(self.dir.path())
    }

    /// Asserts nothing of a finished test is left: no shim, no rootfs mount, no task
    /// state dir. Waits briefly: containerd reaps shims asynchronously.
    pub fn assert_clean(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let shims = self.shim_pids();
            let mounts: Vec<String> = self
                .mounts()
                .into_iter()
                .filter(|m| m.contains("/rootfs") || m.contains("io.containerd.runtime"))
                .collect();
            let tasks = task_dirs(&self.state());
            let runtime_state = self.runtime_state();
            let ranges = self.userns_range_owners();
            let rootfs_mounts = self.runtime_rootfs_mounts();
            if shims.is_empty()
                && mounts.is_empty()
                && tasks.is_empty()
                && runtime_state.is_empty()
                && ranges.is_empty()
                && rootfs_mounts.is_empty()
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "left behind: shims {shims:?}, mounts {mounts:?}, task dirs {tasks:?}, \
                     runtime state {runtime_state:?}, host id ranges of {ranges:?}, \
                     runtime rootfs mounts {rootfs_mounts:?}"
                );
            }
            sleep(Duration::from_millis(100));
        }
    }
}

impl Containerd {
    /// The runtime state roots in use: our shim's and the runc shim's (one per
    /// runc handler), per namespace.
    fn runtime_state_roots(&self) -> Vec<PathBuf> {
        let mut roots = Vec::new();
        let runc = self.runc_shim_root().display().to_string();
        let runc_per_profile =
            ["baseline", "restricted"].map(|p| PathBuf::from(format!("{runc}-{p}")));
        for base in [self.runtime_root(), self.runc_shim_root()]
            .into_iter()
            .chain(runc_per_profile)
        {
            for ns in [NAMESPACE, "k8s.io"] {
                roots.push(base.join(ns));
            }
        }
        roots
    }

    /// Container state dirs and Stockade plans left in any runtime state root.
    pub fn runtime_state(&self) -> Vec<String> {
        let mut left = Vec::new();
        for root in self.runtime_state_roots() {
            let plans = root.join(".stockade/plans");
            for dir in [root.as_path(), plans.as_path()] {
                for e in fs::read_dir(dir).into_iter().flatten().flatten() {
                    if e.file_name() != ".stockade" {
                        left.push(e.path().display().to_string());
                    }
                }
            }
        }
        left
    }

    /// Mounts under Stockade's node-wide rootfs dirs of this harness's state roots
    /// (`/run/stockade/rootfs/<hash of the state root>/<id>`).
    pub fn runtime_rootfs_mounts(&self) -> Vec<String> {
        self.runtime_state_roots()
            .iter()
            .flat_map(|r| mounts_under(&stockade_rootfs_dir(r)))
            .collect()
    }

    /// Removes the node-wide rootfs dirs Stockade made for our state roots (and
    /// mount points a failed test left in them, once unmounted).
    fn remove_runtime_rootfs_dirs(&self) {
        for root in self.runtime_state_roots() {
            let dir = stockade_rootfs_dir(&root);
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let _ = fs::remove_dir(e.path());
            }
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Stockade's `StateRoot::rootfs_dir`: `/run/stockade/rootfs/<SipHash of the root>`.
fn stockade_rootfs_dir(state_root: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    state_root.to_path_buf().hash(&mut h);
    Path::new("/run/stockade/rootfs").join(format!("{:016x}", h.finish()))
}

fn task_dirs(state: &Path) -> Vec<String> {
    let base = state.join("io.containerd.runtime.v2.task");
    let mut out = Vec::new();
    for ns in fs::read_dir(base).into_iter().flatten().flatten() {
        for t in fs::read_dir(ns.path()).into_iter().flatten().flatten() {
            out.push(t.path().display().to_string());
        }
    }
    out
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// The repository's profiles, installed unchanged at `<d>/profiles` (the node config's
/// `profiles_dir`), as a node installs them.
fn install_profiles(d: &Path) -> io::Result<()> {
    let dest = d.join("profiles");
    let st = Command::new("cp")
        .arg("-a")
        .arg(crate::runtime::profiles_dir())
        .arg(&dest)
        .status()?;
    if !st.success() {
        return Err(io::Error::other("copy profiles"));
    }
    Ok(())
}

/// Name of the test-only CNI plugin (and of its network).
pub const CNI_PLUGIN: &str = "stockade-test-eth0";

/// A CNI bin dir with `loopback` (containerd's CRI always sets up `lo`) and our
/// test plugin, and a conflist that gives each pod a link-local dummy `eth0`.
fn install_cni(d: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bin = d.join("cni-bin");
    fs::create_dir_all(&bin)?;
    fs::create_dir_all(d.join("cni"))?;
    std::os::unix::fs::symlink("/usr/lib/cni/loopback", bin.join("loopback"))?;
    fs::copy(cni_plugin_source(), bin.join(CNI_PLUGIN))?;
    fs::set_permissions(bin.join(CNI_PLUGIN), fs::Permissions::from_mode(0o755))?;
    fs::write(
        d.join("cni/10-stockade-test.conflist"),
        format!(
            r#"{{"cniVersion":"1.0.0","name":"{CNI_PLUGIN}","plugins":[{{"type":"{CNI_PLUGIN}"}}]}}"#
        ),
    )?;
    Ok(())
}

/// Settings of the CRI plugin a test varies.
#[derive(Debug, Clone, Default)]
pub struct CriOptions {
    /// containerd's `netns_mounts_under_state_dir`: pod network namespaces pinned
    /// under its (0700) state dir instead of `/var/run/netns`.
    pub netns_mounts_under_state_dir: bool,
}

/// The CRI runtime handlers the harness configures from `shim/examples/`: (handler,
/// runtime type, profile it runs under).
pub const CRI_HANDLERS: &[(&str, &str, &str)] = &[
    ("stockade", "io.containerd.stockade.v2", "default"),
    ("stockade-baseline", "io.containerd.stockade.v2", "baseline"),
    (
        "stockade-restricted",
        "io.containerd.stockade.v2",
        "restricted",
    ),
    ("stockade-runc", "io.containerd.runc.v2", "default"),
    (
        "stockade-runc-baseline",
        "io.containerd.runc.v2",
        "baseline",
    ),
    (
        "stockade-runc-restricted",
        "io.containerd.runc.v2",
        "restricted",
    ),
];

impl CriOptions {
    /// The CRI plugin's `key = value` lines for these options.
    pub fn cri_toml(&self) -> String {
        format!(
            "  netns_mounts_under_state_dir = {}",
            self.netns_mounts_under_state_dir
        )
    }
}

fn config_toml(d: &Path, socket: &Path, cri_options: &str) -> String {
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{socket}"

[debug]
  level = "debug"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  enable_selinux = false
{cri_options}
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "{d}/runc-root"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni-bin"
    conf_dir = "{d}/cni"
"#,
        root = d.join("root").display(),
        state = d.join("state").display(),
        socket = socket.display(),
        d = d.display(),
        pause = PAUSE_IMAGE,
    )
}

impl Containerd {
    /// Kills and removes every task and container left by a failed test, so no shim
    /// or container outlives the harness.
    fn remove_leftovers(&self) {
        remove_leftover_tasks(&self.socket, &[NAMESPACE, "k8s.io"]);
    }
}

/// Kills and removes every task and container of the containerd at `socket` in
/// `namespaces` (a failed test's leftovers).
pub fn remove_leftover_tasks(socket: &Path, namespaces: &[&str]) {
    for ns in namespaces {
        // Best effort: a call that hangs is given up, not waited on forever.
        let ctr = |args: &[&str]| {
            let mut cmd = Command::new("ctr");
            cmd.arg("-a").arg(socket).args(["-n", ns]).args(args);
            bounded::output_within(cmd, CTR_LIMIT)
                .ok()
                .and_then(Result::ok)
        };
        let ids = |args: &[&str]| -> Vec<String> {
            ctr(args)
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let tasks = ids(&["task", "ls", "-q"]);
        for id in &tasks {
            let _ = ctr(&["task", "kill", "-s", "SIGKILL", id]);
        }
        for id in &tasks {
            let _ = ctr(&["task", "rm", "-f", id]);
        }
        for id in ids(&["container", "ls", "-q"]) {
            let _ = ctr(&["container", "rm", &id]);
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.remove_leftovers();
        let shims = self.shim_pids();
        if let Some(mut child) = self.child.take() {
            // Our own child, by PID.
            let _ = nix_kill(child.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(50)),
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        for pid in shims {
            // A shim of our containerd that outlived its tasks (failed test).
            let _ = nix_kill(pid, libc::SIGKILL);
        }
        let mut mounts = mounts_under(self.dir.path());
        mounts.extend(self.runtime_rootfs_mounts());
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            if let Ok(c) = std::ffi::CString::new(m) {
                // SAFETY: umount2 reads a NUL-terminated path that outlives the call.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        self.remove_runtime_rootfs_dirs();
    }
}

fn nix_kill(pid: u32, sig: i32) -> io::Result<()> {
    // SAFETY: kill(2) with a pid we spawned and a valid signal number.
    let rc = unsafe { libc::kill(pid as i32, sig) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Removes a test cgroup `/stockade-test/<name>` in every v1 hierarchy (and v2).
pub fn remove_test_cgroups(name: &str) {
    for e in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let p = e.path().join(crate::bundle::cgroup_parent()).join(name);
        let _ = fs::remove_dir(&p);
    }
}

/// Test cgroups still present for `name`.
pub fn test_cgroups(name: &str) -> Vec<PathBuf> {
    fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join(crate::bundle::cgroup_parent()).join(name))
        .filter(|p| p.exists())
        .collect()
}
