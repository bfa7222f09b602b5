//! Known runtime escapes, observed for real: syscalls of other ABIs under a seccomp
//! filter (i386 `int $0x80`, x32), host fds and a host cwd leaking into the container
//! (CVE-2024-21626), the runtime binary reachable through /proc/<pid>/exe
//! (CVE-2019-5736), and a dumpable init before exec (CVE-2016-9962).

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use stockade_integration_tests::nss::{install_nss_module, module_loaders};
use stockade_integration_tests::{
    assert_nothing_left_behind, runtime, runtime::parse_report, skip_on_reference, BundleBuilder,
    Runtime,
};

/// 128 + SIGSYS: how `run` reports a workload killed by SECCOMP_RET_KILL_PROCESS.
const KILLED_BY_SIGSYS: i32 = 128 + libc::SIGSYS;

/// Allows everything, x86_64 only; denies keyctl (so the filter is not a no-op).
fn allow_all_x86_64() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}
        ]
    })
}

/// Runs `probe ARGS` with an optional seccomp section; returns run's output.
fn run_probe(rt: &Runtime, args: &[&str], seccomp: Option<Value>) -> (i32, String) {
    let mut argv = vec!["/usr/bin/probe"];
    argv.extend_from_slice(args);
    let mut b = BundleBuilder::new().args(&argv);
    if let Some(filter) = seccomp {
        b = b.seccomp(filter);
    }
    let bundle = b.build();
    let out = rt.run(&bundle);
    assert_nothing_left_behind(rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    let code = out.code.unwrap_or_else(|| panic!("run killed: {out:?}"));
    (code, out.stdout)
}

fn report(stdout: &str) -> Value {
    stockade_integration_tests::runtime::parse_report(stdout)
}

/// Control: without a filter, `int $0x80` getpid works (the kernel has IA32
/// emulation) and returns the probe's pid in its pid namespace.
#[cfg(target_arch = "x86_64")]
#[test]
fn i386_getpid_without_filter_works() {
    let rt = runtime!();
    let (code, stdout) = run_probe(&rt, &["int80", "getpid"], None);
    assert_eq!(code, 0, "{stdout}");
    let r = report(&stdout);
    assert_eq!(
        r["errno"], 0,
        "int $0x80 works on this kernel (IA32 emulation): {r}"
    );
    assert_eq!(r["ret"], 1, "getpid in the container's pid namespace: {r}");
}

/// A filter written for x86_64 must not let i386 syscalls through (their numbers
/// mean different calls): the process is killed, never allowed.
#[cfg(target_arch = "x86_64")]
#[test]
fn i386_syscall_under_a_filter_kills_the_process() {
    let rt = runtime!();
    let (code, stdout) = run_probe(&rt, &["int80", "getpid"], Some(allow_all_x86_64()));
    assert_eq!(
        code, KILLED_BY_SIGSYS,
        "int $0x80 under an x86_64 filter must die of SIGSYS; stdout: {stdout}"
    );
    assert!(stdout.trim().is_empty(), "no report was printed: {stdout}");
}

/// Stockade's documented choice: even when the spec lists SCMP_ARCH_X86 and
/// SCMP_ARCH_X32 (Docker's default profile does), foreign ABIs are killed (runc
/// translates the rules for those arches instead).
#[cfg(target_arch = "x86_64")]
#[test]
fn i386_syscall_is_killed_even_with_docker_style_arches() {
    if skip_on_reference("Stockade kills foreign ABIs even when the spec lists them") {
        return;
    }
    let rt = runtime!();
    let mut filter = allow_all_x86_64();
    filter["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    let (code, stdout) = run_probe(&rt, &["int80", "getpid"], Some(filter.clone()));
    assert_eq!(code, KILLED_BY_SIGSYS, "stdout: {stdout}");
    let (code, stdout) = run_probe(&rt, &["x32", "getpid"], Some(filter));
    assert_eq!(code, KILLED_BY_SIGSYS, "stdout: {stdout}");
}

/// x32 syscalls carry AUDIT_ARCH_X86_64, so only a check of the number bit catches
/// them. Without a filter the call returns (the pid, or ENOSYS where the kernel has
/// no x32 support, as Debian's default boot does); under a filter it kills.
#[cfg(target_arch = "x86_64")]
#[test]
fn x32_syscall_under_a_filter_kills_the_process() {
    let rt = runtime!();
    let (code, stdout) = run_probe(&rt, &["x32", "getpid"], None);
    assert_eq!(code, 0, "{stdout}");
    let r = report(&stdout);
    assert!(
        r["ret"] == 1 || r["errno"] == libc::ENOSYS,
        "x32 getpid without a filter returns the pid or ENOSYS: {r}"
    );
    let (code, stdout) = run_probe(&rt, &["x32", "getpid"], Some(allow_all_x86_64()));
    assert_eq!(
        code, KILLED_BY_SIGSYS,
        "x32 syscall under an x86_64 filter must die of SIGSYS; stdout: {stdout}"
    );
}

/// fd numbers of a probe `fds` report, without the fd of its own listing.
fn fd_numbers(r: &Value) -> BTreeSet<String> {
    let own: BTreeSet<String> = r["listing_fd"]
        .as_array()
        .unwrap_or_else(|| panic!("no listing_fd in {r}"))
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    r["fds"]
        .as_object()
        .unwrap_or_else(|| panic!("no fds in {r}"))
        .keys()
        .filter(|k| !own.contains(*k))
        .cloned()
        .collect()
}

fn stdio_only() -> BTreeSet<String> {
    ["0", "1", "2"].iter().map(|s| s.to_string()).collect()
}

/// Host view of a link under /proc/<pid>/.
fn proc_link(pid: i32, name: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/{name}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/{name}: {e}"))
}

/// (device, inode) of what `path` leads to.
fn inode(path: impl AsRef<Path>) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path.as_ref())
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.as_ref().display()));
    (m.dev(), m.ino())
}

fn wait_for_stdout(c: &stockade_integration_tests::Container<'_>) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = c.stdout();
        if out.ends_with('\n') || Instant::now() >= deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CVE-2024-21626: the init and an exec'd process hold only stdio, and their cwd
/// and root are inside the container's rootfs, seen from inside and from the host.
#[test]
fn no_host_fd_or_cwd_leaks_into_init_or_exec() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .cwd("/tmp")
        .shell("/usr/bin/probe fds; exec /usr/bin/probe sleep 600")
        .build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let init = report(&wait_for_stdout(&c));
    assert_eq!(fd_numbers(&init), stdio_only(), "init's fds: {init}");
    assert_eq!(init["cwd"], "/tmp", "{init}");
    assert_eq!(init["root"], "/", "{init}");

    // From the host: the (exec'd) init holds stdio only, and its cwd and root
    // resolve inside the bundle's rootfs. Wait until the shell has exec'd the
    // sleeping probe: between its commands the shell may hold fds of its own.
    let pid = c.pid.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proc_link(pid, "exe").ends_with("usr/bin/probe") {
        assert!(
            Instant::now() < deadline,
            "init never exec'd the sleeping probe"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let host_fds: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list init fds from the host")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(host_fds, stdio_only(), "init fds seen from the host");
    // readlink of another mount namespace's root prints "/", so compare the inodes
    // the magic links lead to (stat follows them).
    assert_eq!(
        inode(format!("/proc/{pid}/root")),
        inode(&bundle.rootfs),
        "init's root is the bundle's rootfs"
    );
    assert_eq!(
        inode(format!("/proc/{pid}/cwd")),
        inode(bundle.rootfs.join("tmp")),
        "init's cwd is the rootfs's /tmp"
    );

    for cwd in [None, Some("/etc")] {
        let mut args = vec!["exec".to_string()];
        if let Some(cwd) = cwd {
            args.extend(["--cwd".to_string(), cwd.to_string()]);
        }
        args.extend([c.id.clone(), "/usr/bin/probe".into(), "fds".into()]);
        let exec = rt.exec_cmd(&args).expect_ok(&rt).report();
        assert_eq!(fd_numbers(&exec), stdio_only(), "exec's fds: {exec}");
        assert_eq!(
            exec["cwd"],
            cwd.unwrap_or("/tmp"),
            "exec's cwd is the requested or the spec's: {exec}"
        );
        assert_eq!(exec["root"], "/", "{exec}");
        for (fd, target) in exec["fds"].as_object().unwrap() {
            let target = target.as_str().unwrap_or_default();
            assert!(
                !target.contains(rt.state_root().to_str().unwrap())
                    && !target.contains(bundle.path().to_str().unwrap()),
                "exec fd {fd} points at a host path: {target}"
            );
        }
    }
}

/// CVE-2019-5736's precondition: the binary behind `/proc/<pid>/exe` can be opened
/// for writing. Stockade runs from a read-only bind mount (or a sealed memfd), so
/// even host root gets EROFS / EPERM here.
fn exe_is_writable(pid: i32) -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"))
        .is_ok()
}

/// CVE-2019-5736 for `create`: until `start`, the container's init is runtime code.
/// Its binary must not be writable through /proc/<init>/exe, so a process in the
/// container cannot reach (and overwrite) the runtime binary on the host.
///
/// CVE-2016-9962: the init must be non-dumpable until it execs the workload.
/// /proc/<pid>/status has no dumpable field; what is observable is the owner of
/// the /proc/<pid> files (proc(5)): for a non-dumpable task the kernel reports
/// root, for a dumpable one the task's euid. With a user namespace the init runs
/// as host uid 100000, so the owner tells them apart: root before `start`, 100000
/// once the workload has exec'd (execve of a readable binary makes it dumpable).
#[test]
fn create_init_binary_is_unwritable_and_init_is_non_dumpable_until_exec() {
    use std::os::unix::fs::MetadataExt;
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .user_namespace(100_000, 65_536)
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build();
    let c = rt.create(&bundle).expect("create");
    let pid = c.pid.unwrap();
    let exe = proc_link(pid, "exe");
    if skip_on_reference("runc 1.1's created init runs from a memfd shown differently") {
        eprintln!("reference init's exe: {}", exe.display());
    } else {
        assert!(
            !exe_is_writable(pid),
            "created init's /proc/{pid}/exe ({}) opens for writing",
            exe.display()
        );
    }
    assert_ne!(exe, rt.binary(), "not the on-disk runtime");

    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap();
    let owner = std::fs::metadata(format!("/proc/{pid}/status"))
        .unwrap()
        .uid();
    eprintln!("created init: euid {uid}, /proc/{pid} owner {owner}");
    assert_eq!(
        owner, 0,
        "created init (euid {uid}) is non-dumpable: its /proc files belong to root"
    );

    c.start();
    c.wait_status("running");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proc_link(pid, "exe").ends_with("usr/bin/probe") {
        assert!(Instant::now() < deadline, "init never exec'd the workload");
        std::thread::sleep(Duration::from_millis(20));
    }
    let owner = std::fs::metadata(format!("/proc/{pid}/status"))
        .unwrap()
        .uid();
    assert_eq!(
        owner, 100_000,
        "after execve the workload is dumpable again (owner = its euid)"
    );
}

/// The read-only path under /run/stockade/bin is trusted only while it holds the
/// very binary that runs: with another file mounted read-only there (a stale or
/// planted mount), neither the entry point (`early_reexec`) nor `main` executes it.
/// The run re-executes from a sealed copy instead and still succeeds.
#[test]
fn a_foreign_file_at_the_protected_path_is_never_executed() {
    if skip_on_reference("Stockade's CVE-2019-5736 re-execution") {
        return;
    }
    let traces = tempfile::tempdir().expect("trace dir");
    let trace = traces.path().join("trace");
    let rt = runtime!().from_writable_binary(traces.path());
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    let protected = rt.protected_copy();
    let script = format!(
        "set -e; mkdir -p \"$(dirname {protected})\"; umount -l {protected} 2>/dev/null || true; \
         touch {protected}; mount --bind -o ro /bin/true {protected}; \
         strace -f -qq -e trace=execve,execveat -o {} \"$@\"",
        trace.display()
    );
    let wrapper = runtime::in_private_mount_ns(&script);
    let out = rt
        .command_via(&wrapper, &runtime::bundle_verb("run", &bundle))
        .current_dir("/")
        .output()
        .expect("spawn unshare");
    assert!(out.status.success(), "{out:?}\nlog: {}", rt.log_text());
    let text = std::fs::read_to_string(&trace).expect("read trace");
    assert!(
        !text.contains(&format!("\"{protected}\"")),
        "the foreign file at {protected} was executed:\n{text}"
    );
    // pentacle executes its sealed memfd through /proc/self/fd (or execveat).
    assert!(
        text.lines()
            .any(|l| l.contains("execve(\"/proc/self/fd/") || l.contains("execveat(")),
        "the run did not re-execute from a sealed copy:\n{text}"
    );
}

/// CVE-2019-5736 for `exec`: while a foreground `exec` waits for its process, the
/// runtime process's /proc/<pid>/exe cannot be opened for writing.
/// (runc's `exec` process stays on the host and runs from disk; only its
/// short-lived `runc init` child is cloned, so this is Stockade's own design.)
#[test]
fn foreground_exec_binary_is_unwritable() {
    if skip_on_reference("Stockade's exec process re-executes from a read-only binary") {
        return;
    }
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let mut exec = rt
        .command(&["exec", &c.id, "/bin/sleep", "600"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn exec");
    let exec_pid = exec.id() as i32;
    // Once the exec'd sleep is in the container, the runtime is waiting for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.ps().len() < 2 {
        assert!(Instant::now() < deadline, "exec'd sleep never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let exe = proc_link(exec_pid, "exe");
    let writable = exe_is_writable(exec_pid);
    assert!(c.kill("KILL").success());
    let status = exec.wait().expect("wait for exec");
    assert!(
        !writable,
        "stockade exec's /proc/{exec_pid}/exe ({}) opens for writing",
        exe.display()
    );
    assert_ne!(exe, rt.binary());
    eprintln!("exec exited with {status:?}");
}

/// With no `HOME` in the process's env, the runtime sets it from the user's entry in
/// the container's /etc/passwd (`/` without one, as runc does). It must read the file
/// itself: glibc's getpwuid_r follows the image's nsswitch.conf and loads the NSS
/// modules the image ships, which ran the image's code inside the init and an exec,
/// before Landlock and seccomp (it did, before libcontainer patch 31). The workload
/// calling glibc itself proves the module loads in this container.
#[test]
fn the_home_lookup_runs_no_nss_module_from_the_image() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .shell("/usr/bin/probe passwd-home 0 >&2; exec /usr/bin/probe sleep 600")
        .build();
    install_nss_module(&bundle.rootfs).expect("NSS module");
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c.stderr().contains("\"uid\":0") {
        assert!(Instant::now() < deadline, "no report: {}", c.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    let stderr = c.stderr();
    let init = parse_report(&stderr);
    assert_eq!(init["home"], "/root", "glibc in the workload: {stderr}");
    assert_eq!(init["HOME"], "/root", "HOME from /etc/passwd: {stderr}");
    assert_eq!(
        module_loaders(&stderr),
        ["/usr/bin/probe"],
        "only the workload's own glibc call may load the image's module: {stderr}"
    );

    let exec = rt.exec_cmd(&["exec", c.id.as_str(), "/usr/bin/probe", "passwd-home", "0"]);
    let exec = exec.expect_ok(&rt);
    assert_eq!(exec.report()["HOME"], "/root", "{exec:?}");
    assert_eq!(
        module_loaders(&exec.stderr),
        ["/usr/bin/probe"],
        "the exec's init loaded the image's module: {exec:?}"
    );
    assert!(c.kill("KILL").success());
}

/// `/bin/true` with no mount on `/dev` or below it: the image's own `/dev` is what
/// the init fills.
fn true_without_dev_mounts() -> stockade_integration_tests::Bundle {
    BundleBuilder::new()
        .args(&["/bin/true"])
        .edit(|s| {
            let mounts = s["mounts"].as_array_mut().expect("mounts");
            mounts.retain(|m| {
                !m["destination"]
                    .as_str()
                    .is_some_and(|d| d == "/dev" || d.starts_with("/dev/"))
            });
        })
        .build()
}

/// An image whose `/dev/null` is a symlink pointing out of the rootfs, run without
/// a `/dev` tmpfs so the image's `/dev` is what the init fills: the device node is
/// made inside the rootfs (the symlink resolved in it), never at the host path the
/// symlink names (both profiles; the node inside is checked under `unconfined`,
/// whose init makes nodes with mknod). The init makes nodes by name in the
/// container's `/dev`, resolved once in the rootfs (libcontainer patch 37), and
/// leaves a name the image took to the path code.
#[test]
fn a_dev_null_symlink_in_the_image_is_not_followed_out_of_the_rootfs() {
    if skip_on_reference("Stockade's init") {
        return;
    }
    for profile in ["unconfined", "default"] {
        let rt = runtime!(profile = profile);
        let bundle = true_without_dev_mounts();
        let outside = PathBuf::from(format!("/tmp/stockade-escape-{}", bundle.id));
        let dev = bundle.rootfs.join("dev");
        std::fs::create_dir_all(&dev).expect("the image's /dev");
        let link = dev.join("null");
        if link.exists() || link.is_symlink() {
            std::fs::remove_file(&link).expect("remove the image's /dev/null");
        }
        std::os::unix::fs::symlink(&outside, &link).expect("plant the symlink");
        let out = rt.run(&bundle);
        let escaped = outside.exists() || outside.is_symlink();
        let _ = std::fs::remove_file(&outside);
        assert!(
            !escaped,
            "{profile}: the init made {} on the host\n{out:?}",
            outside.display()
        );
        let out = out.expect_ok(&rt);
        // `unconfined` runs the spec as it is; under `default` the hardened spec
        // does not leave the node in the bundle's rootfs directory (observed), so
        // only the host side is checked there.
        if profile == "unconfined" {
            let inside = bundle.rootfs.join(outside.strip_prefix("/").unwrap());
            assert!(
                inside.exists(),
                "{profile}: no node at {} in the rootfs\n{out:?}",
                inside.display()
            );
        }
        assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    }
}

/// An image whose `/dev` itself is a symlink to a host directory, run without a
/// `/dev` tmpfs: the init's `/dev` symlinks (`fd`, `stdin`, `stdout`, `stderr`,
/// `kcore`, `ptmx`) are made in the rootfs (the symlink resolved in it), never in
/// the host directory the symlink names.
#[test]
fn a_dev_symlink_in_the_image_is_not_followed_out_of_the_rootfs() {
    if skip_on_reference("Stockade's init") {
        return;
    }
    let rt = runtime!(profile = "unconfined");
    let bundle = true_without_dev_mounts();
    let host_dir = tempfile::tempdir().expect("a host directory");
    let dev = bundle.rootfs.join("dev");
    if dev.is_dir() {
        std::fs::remove_dir_all(&dev).expect("remove the image's /dev");
    }
    // The same path exists inside the rootfs, where the symlink must resolve.
    let inside = bundle
        .rootfs
        .join(host_dir.path().strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inside).expect("the in-rootfs directory");
    std::os::unix::fs::symlink(host_dir.path(), &dev).expect("plant the symlink");
    let out = rt.run(&bundle);
    let on_host: Vec<_> = std::fs::read_dir(host_dir.path())
        .expect("list the host directory")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    assert!(
        on_host.is_empty(),
        "the init wrote into the host directory {}: {on_host:?}\n{out:?}",
        host_dir.path().display()
    );
    out.expect_ok(&rt);
    assert!(
        inside.join("fd").is_symlink(),
        "no /dev/fd symlink made in the rootfs"
    );
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}
