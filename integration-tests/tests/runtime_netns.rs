//! A pod's network namespace as containerd pins it (issue 7, defect 5): created in
//! the host's user namespace and bind-mounted on a file, either under
//! `/var/run/netns` or (containerd 1.7+/2.x `netns_mounts_under_state_dir`) under
//! containerd's 0700 state directory. A container under the shipped `default`
//! profile (its own user namespace) joins it by path, binds :80 when its profile
//! admits CAP_NET_BIND_SERVICE, and gets the sandbox sysctls containerd 2.x writes
//! (`net.ipv4.ip_unprivileged_port_start`, `net.ipv4.ping_group_range`).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use stockade_integration_tests::{
    assert_nothing_left_behind, runtime, runtime::parse_report, skip_on_reference, Bundle,
    BundleBuilder, Runtime,
};

/// A network namespace pinned on a file (unshare --net=FILE), loopback up; unpinned
/// on drop.
struct PinnedNetns {
    file: PathBuf,
    _dir: Option<tempfile::TempDir>,
    ip_netns_name: Option<String>,
}

impl PinnedNetns {
    /// Pinned under a 0700 directory, as containerd's state dir.
    fn under_private_dir() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stockade-netns-")
            .tempdir()
            .unwrap();
        let private = dir.path().join("state");
        fs::create_dir(&private).unwrap();
        fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
        let file = private.join("netns");
        fs::write(&file, "").unwrap();
        let st = Command::new("unshare")
            .arg(format!("--net={}", file.display()))
            .arg("true")
            .status()
            .unwrap();
        assert!(st.success(), "unshare --net={}", file.display());
        let me = Self {
            file,
            _dir: Some(dir),
            ip_netns_name: None,
        };
        me.loopback_up();
        me
    }

    /// Pinned by `ip netns add` under /var/run/netns.
    fn under_var_run_netns() -> Self {
        let name = format!("stockade-rootfs-{}-{}", std::process::id(), unique());
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name}");
        let me = Self {
            file: Path::new("/var/run/netns").join(&name),
            _dir: None,
            ip_netns_name: Some(name),
        };
        me.loopback_up();
        me
    }

    fn loopback_up(&self) {
        let st = Command::new("nsenter")
            .arg(format!("--net={}", self.file.display()))
            .args(["ip", "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(st.success(), "lo up in {}", self.file.display());
    }

    fn inode(&self) -> u64 {
        fs::metadata(&self.file).unwrap().ino()
    }

    /// A sysctl of this namespace as the host reads it.
    fn sysctl(&self, key: &str) -> String {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.file.display()))
            .arg("cat")
            .arg(Path::new("/proc/sys").join(key.replace('.', "/")))
            .output()
            .unwrap();
        assert!(out.status.success(), "read {key}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for PinnedNetns {
    fn drop(&mut self) {
        if let Some(name) = &self.ip_netns_name {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        } else {
            let _ = Command::new("umount").arg("-l").arg(&self.file).status();
        }
    }
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The default spec joining `netns` by path instead of a new network namespace.
fn joining(netns: &PinnedNetns, args: &[&str]) -> BundleBuilder {
    let path = netns.file.display().to_string();
    BundleBuilder::new().args(args).edit(move |s| {
        let nss = s["linux"]["namespaces"].as_array_mut().unwrap();
        nss.retain(|n| n["type"] != "network");
        nss.push(json!({"type": "network", "path": path}));
    })
}

fn run(rt: &Runtime, bundle: &Bundle) -> String {
    let out = rt.run(bundle).expect_ok(rt);
    assert_nothing_left_behind(rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    out.stdout
}

/// Joins the pinned namespace (same inode inside), and binds :80 on loopback.
fn joins_and_binds_80(netns: &PinnedNetns) {
    let rt = runtime!(profile = "default");
    let bundle = joining(
        netns,
        &[
            "/bin/sh",
            "-c",
            "readlink /proc/self/ns/net; cat /proc/self/uid_map; /usr/bin/probe tcp-bind 80",
        ],
    )
    .build();
    let stdout = run(&rt, &bundle);
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some(format!("net:[{}]", netns.inode()).as_str()),
        "{stdout}"
    );
    let uid_map = lines.next().unwrap_or_default();
    let host: u64 = uid_map
        .split_whitespace()
        .nth(1)
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("uid_map: {stdout}"));
    assert!(host >= 1_000_000, "not in a user namespace: {stdout}");
    let report = parse_report(&stdout);
    assert_eq!(report["ok"], true, "bind :80: {report}");
}

#[test]
fn netns_pinned_under_a_0700_dir_is_joined_and_binds_80() {
    if skip_on_reference("the default profile's user namespace is Stockade's") {
        return;
    }
    joins_and_binds_80(&PinnedNetns::under_private_dir());
}

/// The runtime opens namespace files before the user namespace exists and its
/// children setns through them: none of those descriptors reaches the container's
/// process (only stdio and the listing's own fd are open).
#[test]
fn no_namespace_descriptor_reaches_the_container() {
    if skip_on_reference("the default profile's user namespace is Stockade's") {
        return;
    }
    let netns = PinnedNetns::under_private_dir();
    let rt = runtime!(profile = "default");
    let bundle = joining(&netns, &["/usr/bin/probe", "fds"]).build();
    let report = parse_report(&run(&rt, &bundle));
    let fds = report["fds"].as_object().expect("fds");
    let own = report["listing_fd"].as_array().expect("listing_fd");
    for (fd, target) in fds {
        let stdio = ["0", "1", "2"].contains(&fd.as_str());
        let listing = own.iter().any(|o| o == fd);
        assert!(stdio || listing, "fd {fd} -> {target} leaked: {report}");
    }
}

#[test]
fn netns_under_var_run_netns_is_joined_and_binds_80() {
    if skip_on_reference("the default profile's user namespace is Stockade's") {
        return;
    }
    joins_and_binds_80(&PinnedNetns::under_var_run_netns());
}

/// Without CAP_NET_BIND_SERVICE the container gets no low port, and the namespace's
/// port floor is left as it was.
#[test]
fn without_net_bind_service_no_low_port() {
    if skip_on_reference("the default profile's user namespace is Stockade's") {
        return;
    }
    let netns = PinnedNetns::under_private_dir();
    let before = netns.sysctl("net.ipv4.ip_unprivileged_port_start");
    let rt = runtime!(profile = "default");
    let bundle = joining(&netns, &["/usr/bin/probe", "tcp-bind", "80"])
        .capabilities(&["CAP_KILL"])
        .build();
    let report = parse_report(&run(&rt, &bundle));
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["errno"], libc::EACCES, "{report}");
    assert_eq!(netns.sysctl("net.ipv4.ip_unprivileged_port_start"), before);
}

/// containerd 2.x's default sandbox sysctls apply to the pinned namespace: the port
/// floor reads back from inside, and an ICMP echo ("ping") socket opens, which
/// `ping_group_range` allows for the host gids it names (the namespace owner's id
/// space: from inside they show as the overflow gid).
#[test]
fn sandbox_net_sysctls_apply_in_a_joined_netns() {
    if skip_on_reference("the default profile's user namespace is Stockade's") {
        return;
    }
    let netns = PinnedNetns::under_private_dir();
    let rt = runtime!(profile = "default");
    let bundle = joining(
        &netns,
        &[
            "/bin/sh",
            "-c",
            "cat /proc/sys/net/ipv4/ip_unprivileged_port_start; \
             /usr/bin/probe syscall socket 2 2 1",
        ],
    )
    .edit(|s| {
        s["linux"]["sysctl"] = json!({
            "net.ipv4.ip_unprivileged_port_start": "443",
            "net.ipv4.ping_group_range": "0 2147483647",
        })
    })
    .build();
    let stdout = run(&rt, &bundle);
    assert_eq!(
        stdout.lines().next().map(str::trim),
        Some("443"),
        "{stdout}"
    );
    let report = parse_report(&stdout);
    assert_eq!(report["errno"], 0, "ping socket: {report}");
    assert!(report["ret"].as_i64().is_some_and(|fd| fd >= 0), "{report}");
    assert_eq!(netns.sysctl("net.ipv4.ip_unprivileged_port_start"), "443");
    let range: Vec<String> = netns
        .sysctl("net.ipv4.ping_group_range")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(range, ["0", "2147483647"]);
}
