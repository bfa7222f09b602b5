//! The work a container start costs, counted under strace (syscalls, files read,
//! processes), never timed (Stockade only; under the node `default` profile, which
//! gives every container its own user namespace and an idmapped rootfs).
//!
//! - The runtime as containerd runs it: from the bundle directory, which containerd
//!   makes 0711, so a container root in a user namespace may search it but not read
//!   it. The init mounts the rootfs through pathrs, which decides once per process
//!   whether openat2(2) works by opening its cwd read-only; from an unreadable cwd
//!   that probe failed and pathrs fell back, for the whole init, to its emulated
//!   resolver (re-verifying procfs on every path component): three times the
//!   syscalls of the same run from `/`.
//! - Admission reads the node config once, and runs the tmpfs idmap probe (a tmpfs
//!   mount and a forked namespace holder) only for a spec with a bind volume on tmpfs.
//! - The cgroup v1 manager reads mountinfo once, not once per controller; every
//!   process reads it whole, and once where its mount table cannot have changed;
//!   after the first `run`, none reads it until a cgroup mount changes (the state
//!   root's snapshot of the cgroup lines, checked by unique mount ids).
//! - `run` reads the bundle once and resolves its rootfs path once.
//! - Device rules are written through one open `devices.allow` (cgroup v1).
//! - The init makes its mount points without re-opening each through procfs.
//! - Delete finds sub-cgroups without a stat of every control file.
//! - The rootfs idmapping's user namespace holder is cloned straight into it.
//! - The container joins its cgroup v1 hierarchies without the kernel's global
//!   threadgroup lock (an RCU grace period per create).
//! - A profile's TOML is parsed once per content (the parse cache): counted in
//!   instructions under callgrind, since a cached parse saves CPU, not syscalls.

use std::path::Path;
use std::process::Stdio;

use stockade_integration_tests::runtime::{bundle_verb, in_private_mount_ns, require_root};
use stockade_integration_tests::{runtime, skip_on_reference, Bundle, BundleBuilder, Runtime};

const STRACE: &str = "/usr/bin/strace";

/// `run` of `bundle` under `strace -f` from `cwd`, with `filter` (`-e trace=...`) and
/// the trace written to `out`; returns whether the run succeeded.
fn traced(rt: &Runtime, bundle: &Bundle, cwd: &Path, filter: &str, out: &Path) -> bool {
    assert!(
        Path::new(STRACE).exists(),
        "{STRACE} is missing: run scripts/install-deps.sh"
    );
    let wrapper = [
        STRACE,
        "-f",
        "-qq",
        "-e",
        filter,
        "-o",
        out.to_str().expect("utf-8 trace path"),
    ];
    rt.command_via(&wrapper, &bundle_verb("run", bundle))
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn strace")
        .success()
}

/// [`traced`], which must succeed.
fn traced_run(rt: &Runtime, bundle: &Bundle, cwd: &Path, filter: &str, out: &Path) {
    assert!(
        traced(rt, bundle, cwd, filter, out),
        "run from {} failed\nlog: {}",
        cwd.display(),
        rt.log_text()
    );
}

/// The lines of a trace written by the runtime's own process (the first pid in
/// it), not by the container's processes.
fn main_process_lines(out: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(out).expect("read trace");
    let main = text
        .split_whitespace()
        .next()
        .expect("an empty trace")
        .to_string();
    text.lines()
        .filter(|l| l.split_whitespace().next() == Some(main.as_str()))
        .map(str::to_string)
        .collect()
}

/// The syscalls of one traced `run` of `/bin/true` (all processes), from the bundle
/// directory or from `/`.
fn syscalls(rt: &Runtime, from_bundle_dir: bool, out: &Path) -> usize {
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    let cwd = match from_bundle_dir {
        true => bundle.path().to_path_buf(),
        false => "/".into(),
    };
    traced_run(rt, &bundle, &cwd, "trace=all", out);
    let text = std::fs::read_to_string(out).expect("read trace");
    text.lines().filter(|l| l.contains('(')).count()
}

/// From containerd's 0711 bundle directory, the init keeps openat2(2): pathrs's
/// probe of the cwd never fails with EACCES, and the whole run makes about as many
/// syscalls as the same run from `/` (before: ~3x).
#[test]
fn run_from_an_unreadable_bundle_dir_keeps_openat2() {
    require_root();
    if skip_on_reference("pathrs is Stockade's resolver") {
        return;
    }
    let rt = runtime!(profile = "default");
    let traces = tempfile::tempdir().expect("trace dir");

    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    let probe_trace = traces.path().join("openat2");
    traced_run(&rt, &bundle, bundle.path(), "trace=openat2", &probe_trace);
    let text = std::fs::read_to_string(&probe_trace).expect("read trace");
    let failed_probes: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("openat2(AT_FDCWD, \".\"") && l.contains("EACCES"))
        .collect();
    assert!(
        failed_probes.is_empty(),
        "pathrs's openat2 probe failed on the bundle dir: {failed_probes:?}"
    );

    let from_root = syscalls(&rt, false, &traces.path().join("root"));
    let from_bundle_dir = syscalls(&rt, true, &traces.path().join("bundle"));
    assert!(
        from_bundle_dir * 4 <= from_root * 5,
        "run from the bundle dir made {from_bundle_dir} syscalls, from / {from_root}"
    );
}

/// The init leaves the caller's cwd only while it mounts the rootfs: a
/// createContainer hook (which runs in the init, before pivot_root) still runs in
/// the directory the runtime was started from.
#[test]
fn create_container_hook_runs_in_the_runtime_cwd() {
    require_root();
    if skip_on_reference("Stockade's init") {
        return;
    }
    let rt = runtime!(profile = "default");
    // Writable by the container's mapped root (a host id of its range).
    let out_dir = tempfile::tempdir().expect("hook output dir");
    std::fs::set_permissions(
        out_dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod hook output dir");
    let cwd_file = out_dir.path().join("cwd");
    let script = format!("pwd > {}", cwd_file.display());
    let bundle = BundleBuilder::new()
        .args(&["/bin/true"])
        .edit(|s| {
            s["hooks"] = serde_json::json!({
                "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", script]}],
            });
        })
        .build();
    let traces = tempfile::tempdir().expect("trace dir");
    traced_run(
        &rt,
        &bundle,
        bundle.path(),
        "trace=none",
        &traces.path().join("none"),
    );
    let cwd = std::fs::read_to_string(&cwd_file).expect("the hook wrote its cwd");
    assert_eq!(cwd.trim(), bundle.path().to_str().unwrap());
}

/// One `run` reads the node config once (it was read for the profile, for the audit
/// record and again for the create-time metric), and the runtime's own process
/// makes no tmpfs (the idmap probe's) when no bind volume is on tmpfs.
#[test]
fn run_reads_the_node_config_once_and_probes_tmpfs_idmap_only_for_tmpfs_volumes() {
    require_root();
    if skip_on_reference("Stockade's admission") {
        return;
    }
    let rt = runtime!(profile = "default");
    let traces = tempfile::tempdir().expect("trace dir");
    let out = traces.path().join("plain");
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    traced_run(&rt, &bundle, Path::new("/"), "trace=openat,fsopen", &out);
    let main = main_process_lines(&out);
    let config = rt.node_config_path().to_str().unwrap().to_string();
    let config_reads: Vec<&String> = main
        .iter()
        .filter(|l| l.contains(&format!("\"{config}\"")))
        .collect();
    assert_eq!(config_reads.len(), 1, "node config reads: {config_reads:?}");
    let tmpfs: Vec<&String> = main
        .iter()
        .filter(|l| l.contains("fsopen(\"tmpfs\""))
        .collect();
    assert!(
        tmpfs.is_empty(),
        "tmpfs made without a tmpfs volume: {tmpfs:?}"
    );

    // A bind volume on tmpfs (as a Secret is): the probe decides admission again.
    let volume = tempfile::tempdir_in("/dev/shm").expect("a dir on tmpfs");
    let bundle = BundleBuilder::new()
        .args(&["/bin/true"])
        .mount(serde_json::json!({
            "destination": "/secret", "type": "bind",
            "source": volume.path(), "options": ["rbind", "ro"],
        }))
        .build();
    let out = traces.path().join("tmpfs-volume");
    // Admitted or refused by the bind source rules: the probe runs first either way.
    traced(&rt, &bundle, Path::new("/"), "trace=openat,fsopen", &out);
    let probes = main_process_lines(&out)
        .into_iter()
        .filter(|l| l.contains("fsopen(\"tmpfs\""))
        .count();
    assert!(probes >= 1, "no tmpfs idmap probe for a tmpfs volume");
}

/// The cgroup v1 manager reads `/proc/self/mountinfo` once per manager, not once
/// per controller (12 reads in the runtime's own process for one `run`); the v2
/// manager needs no more.
#[test]
fn run_reads_mountinfo_once_per_cgroup_manager() {
    require_root();
    if skip_on_reference("Stockade's cgroup manager") {
        return;
    }
    let rt = runtime!(profile = "default");
    let traces = tempfile::tempdir().expect("trace dir");
    let out = traces.path().join("mountinfo");
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    traced_run(&rt, &bundle, Path::new("/"), "trace=openat,openat2", &out);
    let reads: Vec<String> = main_process_lines(&out)
        .into_iter()
        .filter(|l| l.contains("\"mountinfo\"") || l.contains("/mountinfo\""))
        .collect();
    assert!(
        reads.len() <= 2,
        "{} mountinfo reads in the runtime's process: {reads:?}",
        reads.len()
    );
}

/// The lines of a `strace -f` trace as `PID call(...)` (strace pads a pid to five
/// columns), with each call another process interrupted (`PID read(3,
/// <unfinished ...>` ... `PID <... read resumed>"...", 4096) = 9`) joined into one
/// line, where it began.
fn resumed_calls_merged(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut pending: std::collections::HashMap<String, usize> = Default::default();
    for line in text.lines() {
        let (pid, call) = line.split_once(' ').unwrap_or((line, ""));
        let pid = pid.to_string();
        let line = format!("{pid} {}", call.trim_start());
        if let Some(head) = line.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, lines.len());
            lines.push(head.to_string());
        } else if let Some((_, rest)) = line.split_once(" resumed>") {
            match pending.remove(&pid) {
                Some(i) => lines[i].push_str(rest),
                None => lines.push(line),
            }
        } else {
            lines.push(line);
        }
    }
    lines
}

/// One traced `run` of `/bin/true` (every process), from the bundle directory or
/// from `/`: the trace with resumed calls merged (`resumed_calls_merged`), the
/// runtime's pid (the trace's first) and the init's (the pid that executed
/// `/bin/true`). `filter` must trace `execve`.
struct TrueRun {
    text: String,
    merged: Vec<String>,
    main: String,
    init: String,
}

fn traced_true_run(rt: &Runtime, from_bundle_dir: bool, filter: &str) -> TrueRun {
    let traces = tempfile::tempdir().expect("trace dir");
    let out = traces.path().join("trace");
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    let cwd = match from_bundle_dir {
        true => bundle.path().to_path_buf(),
        false => "/".into(),
    };
    traced_run(rt, &bundle, &cwd, filter, &out);
    let text = std::fs::read_to_string(&out).expect("read trace");
    let merged = resumed_calls_merged(&text);
    let main = merged[0]
        .split_whitespace()
        .next()
        .expect("an empty trace")
        .to_string();
    let init = merged
        .iter()
        .find(|l| l.contains("execve(\"/bin/true\""))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no process executed /bin/true:\n{text}"))
        .to_string();
    TrueRun {
        text,
        merged,
        main,
        init,
    }
}

/// Each `open` of `path_suffix` (the last component of a path) in a trace (`pid`, line index, fd) and the byte
/// counts its `read`s returned until the fd was closed.
fn reads_per_open(text: &str, path_suffix: &str) -> Vec<(String, Vec<usize>)> {
    let merged = resumed_calls_merged(text);
    let lines: Vec<&str> = merged.iter().map(String::as_str).collect();
    let mut opens = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut words = line.split_whitespace();
        let (Some(pid), Some(call)) = (words.next(), words.next()) else {
            continue;
        };
        // Through a procfs handle (`openat2(N, "mountinfo", ...)`) or by path.
        let named = line.contains(&format!("\"{path_suffix}\""))
            || line.contains(&format!("/{path_suffix}\""));
        if !(call.starts_with("openat(") || call.starts_with("openat2(")) || !named {
            continue;
        }
        let Some(fd) = line
            .rsplit("= ")
            .next()
            .and_then(|f| f.trim().parse::<i32>().ok())
        else {
            continue;
        };
        let read = format!("{pid} read({fd}, ");
        let close = format!("{pid} close({fd})");
        let sizes = lines[i + 1..]
            .iter()
            .take_while(|l| !l.starts_with(&close))
            .filter(|l| l.starts_with(&read))
            .filter_map(|l| l.rsplit("= ").next()?.trim().parse().ok())
            .collect();
        opens.push((pid.to_string(), sizes));
    }
    opens
}

/// `/proc/self/mountinfo` is read once per process where its mount table cannot
/// have changed in between, and whole at a time. The intermediate process read it
/// three times (the cgroup manager, then twice more to find the cpuset hierarchy
/// while joining it); the runtime reads it twice (the freezer check before create,
/// the cgroup manager at delete: a `run` may last days) and the init twice (before
/// and after it mounts); since, create's forks read it no more at all
/// (`create_reads_mountinfo_once_for_all_its_processes`). Each read started with 32
/// bytes and doubled (ten read(2)s for a 4.7 KiB table, the kernel rendering the
/// table again from its start for each); now it is one read per kernel page of text
/// (libcgroups patch 13).
#[test]
fn run_reads_mountinfo_whole_and_once_per_mount_table() {
    require_root();
    if skip_on_reference("Stockade's cgroup manager and init") {
        return;
    }
    let rt = runtime!(profile = "default");
    let traces = tempfile::tempdir().expect("trace dir");
    let out = traces.path().join("mountinfo");
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    traced_run(
        &rt,
        &bundle,
        Path::new("/"),
        "trace=openat,openat2,read,close,execve",
        &out,
    );
    let text = std::fs::read_to_string(&out).expect("read trace");
    let main = text.split_whitespace().next().expect("an empty trace");
    let init = text
        .lines()
        .find(|l| l.contains("execve(\"/bin/true\""))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no process executed /bin/true:\n{text}"));
    let opens = reads_per_open(&text, "mountinfo");
    let count = |pid: &str| opens.iter().filter(|(p, _)| p == pid).count();
    let others: Vec<&String> = opens
        .iter()
        .map(|(p, _)| p)
        .filter(|p| *p != main && *p != init)
        .collect();
    assert!(
        count(main) <= 2,
        "the runtime read mountinfo {} times: {opens:?}",
        count(main)
    );
    assert!(
        count(init) <= 2,
        "the init read mountinfo {} times: {opens:?}",
        count(init)
    );
    for pid in &others {
        assert!(
            count(pid) <= 1,
            "process {pid} (the intermediate) read mountinfo {} times: {opens:?}",
            count(pid)
        );
    }
    // On a cgroup v1 host the runtime reads it for the freezer check; on v2 no
    // process of a `run` needs it.
    assert!(
        !cgroup_v1_controllers() || !opens.is_empty(),
        "no process read mountinfo: the trace was misread"
    );
    // Whole at a time: a read returns less than a page of text only at the end of
    // the table (the rest, then 0). Before: 32, 32, 64, ... 2048 bytes.
    for (pid, sizes) in &opens {
        let short = sizes.iter().filter(|n| **n > 0 && **n < 1024).count();
        assert!(
            short <= 1 && sizes.last() == Some(&0),
            "process {pid} read mountinfo in pieces: {sizes:?}"
        );
    }
}

/// One `create` reads the host's mount table once, in the runtime's own process (the
/// freezer check finds the freezer hierarchy in it): its forks, the intermediate and
/// the init, take the cgroup v1 mount points from that text, a moment old, for the
/// cgroup manager and the container's `/sys/fs/cgroup`. The init no longer reads
/// its table before the rootfs bind either: after the recursive slave of `/` (the
/// default `rootfsPropagation`) no mount is shared, so the parent mount of the
/// rootfs needs no `MS_PRIVATE` (libcontainer patch 35). Before: the runtime 2 (one
/// at delete: a `run` may last days, delete reads its own), the intermediate 1,
/// the init 2; each read ~90 us of kernel time rendering ~45 mounts.
#[test]
fn create_reads_mountinfo_once_for_all_its_processes() {
    require_root();
    if skip_on_reference("Stockade's create") {
        return;
    }
    let rt = runtime!(profile = "default");
    let TrueRun {
        merged, main, init, ..
    } = traced_true_run(&rt, false, "trace=openat,openat2,execve");
    let reads: Vec<&String> = merged
        .iter()
        .filter(|l| l.contains("\"mountinfo\"") || l.contains("/mountinfo\""))
        .collect();
    let of = |pid: &str| -> Vec<&String> {
        reads
            .iter()
            .filter(|l| l.split_whitespace().next() == Some(pid))
            .copied()
            .collect()
    };
    let in_main = of(&main);
    let in_init = of(&init);
    let elsewhere: Vec<&String> = reads
        .iter()
        .filter(|l| {
            let pid = l.split_whitespace().next();
            pid != Some(main.as_str()) && pid != Some(init.as_str())
        })
        .copied()
        .collect();
    assert!(
        in_init.is_empty(),
        "the init read mountinfo {} times: {in_init:#?}",
        in_init.len()
    );
    assert!(
        elsewhere.is_empty(),
        "the intermediate (or another fork) read mountinfo: {elsewhere:#?}"
    );
    // On a v1 host: create reads it for the freezer check, the cgroup manager and
    // the init's cgroup mounts, and twice where it takes the state root's snapshot
    // of the cgroup mounts (the second read checks that none changed while their
    // ids were taken); delete then reads nothing. On a kernel without unique mount
    // ids (no snapshot) create and delete read it once each.
    assert!(
        in_main.len() <= 2,
        "mountinfo read {} times in the runtime's process: {in_main:#?}",
        in_main.len()
    );
}

/// On cgroup v1 the hierarchies' mount points come from the state root's snapshot
/// of the mount table's cgroup lines once a `run` has taken it (`cgroup_mounts`):
/// a second `run` in the same state root and mount namespace reads no mountinfo in
/// any process (on a kernel with unique mount ids, 6.8 and later; on an older one
/// it reads as the first). The snapshot is dropped as soon as one of its mounts is
/// no longer where it was: here the first cgroup hierarchy is mounted again over
/// its own mount point (in a private mount namespace), and the next `run` reads the
/// table again. On cgroup v2 no `run` reads it at all.
#[test]
fn a_run_reads_the_mount_table_only_when_its_cgroup_mounts_changed() {
    require_root();
    if skip_on_reference("Stockade's cgroup mount snapshot") {
        return;
    }
    let rt = runtime!(profile = "default");
    let traces = tempfile::tempdir().expect("trace dir");
    let t = traces.path();
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    let v1_mount = first_cgroup_v1_mount_point();
    let traced = |name: &str| {
        format!(
            "{STRACE} -f -qq -e trace=openat,openat2 -o {}/{name} \"$@\"",
            t.display()
        )
    };
    let remount = match &v1_mount {
        Some(m) => format!("mount --bind {m} {m}"),
        None => "true".to_string(),
    };
    let script = format!(
        "set -e; {}; {}; {remount}; {}",
        traced("first"),
        traced("second"),
        traced("third")
    );
    let wrapper = in_private_mount_ns(&script);
    let out = rt
        .command_via(&wrapper, &bundle_verb("run", &bundle))
        .current_dir("/")
        .output()
        .expect("spawn unshare");
    assert!(out.status.success(), "{out:?}\nlog: {}", rt.log_text());
    let reads = |name: &str| -> Vec<String> {
        std::fs::read_to_string(t.join(name))
            .expect("read trace")
            .lines()
            .filter(|l| l.contains("\"mountinfo\"") || l.contains("/mountinfo\""))
            .map(str::to_string)
            .collect()
    };
    let (first, second, third) = (reads("first"), reads("second"), reads("third"));
    let Some(mount) = v1_mount else {
        assert!(
            first.is_empty() && second.is_empty() && third.is_empty(),
            "a run on cgroup v2 read the mount table: {first:?} {second:?} {third:?}"
        );
        return;
    };
    assert!(
        !first.is_empty(),
        "the first run on cgroup v1 read no mount table: the trace was misread"
    );
    if kernel_at_least(6, 8) {
        assert!(
            second.is_empty(),
            "the second run read the mount table again: {second:?}"
        );
    } else {
        assert_eq!(
            second.len(),
            first.len(),
            "without unique mount ids every run reads the table: {second:?}"
        );
    }
    assert!(
        !third.is_empty(),
        "after {mount} was mounted over, the run trusted the old snapshot"
    );
}

/// No process of a `run` makes a private procfs to read `/proc/self/cgroup`: the
/// cgroup manager (the runtime's at delete, the init's at create) and the init's
/// cgroup v1 mounts read it by path when handed the mount table, where each made
/// one for that read (pathrs's `ProcfsHandle`: `fsopen`, `fsmount`, a dozen
/// checks, ~40 syscalls; libcgroups patch 21, libcontainer patch 42). They run in
/// the host's mount namespace or the init's fresh copy of it, where no container
/// can have mounted over `/proc`. The second `run` of a state root is traced (the
/// first takes the snapshot of the cgroup mounts that delete hands over).
#[test]
fn run_reads_proc_self_cgroup_without_a_private_procfs() {
    require_root();
    if skip_on_reference("Stockade's cgroup manager") {
        return;
    }
    let rt = runtime!(profile = "default");
    let traces = tempfile::tempdir().expect("trace dir");
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    traced_run(
        &rt,
        &bundle,
        Path::new("/"),
        "trace=execve",
        &traces.path().join("first"),
    );
    let TrueRun {
        merged, main, init, ..
    } = traced_true_run(&rt, false, "trace=fsopen,execve");
    // A ProcfsHandle's instance is made with FSOPEN_CLOEXEC; the init's mount of
    // the container's /proc is an fsopen without it.
    let handles: Vec<&String> = merged
        .iter()
        .filter(|l| l.contains("fsopen(\"proc\", FSOPEN_CLOEXEC"))
        .collect();
    let of = |pid: &str| {
        handles
            .iter()
            .filter(|l| l.split_whitespace().next() == Some(pid))
            .count()
    };
    assert_eq!(
        of(&main),
        0,
        "the runtime made a private procfs: {handles:#?}"
    );
    assert_eq!(of(&init), 0, "the init made a private procfs: {handles:#?}");
    assert!(
        handles.is_empty(),
        "another process of the run (the intermediate) made a private procfs: {handles:#?}"
    );
    assert!(
        merged.iter().any(|l| l.contains("fsopen(")),
        "no process of the run called fsopen: the trace was misread"
    );
}

/// The mount point of the first cgroup v1 hierarchy in this process's mount table.
fn first_cgroup_v1_mount_point() -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    mountinfo
        .lines()
        .find(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|fs| fs.starts_with("cgroup "))
        })
        .and_then(|l| l.split(' ').nth(4))
        .map(str::to_string)
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("read the kernel release");
    let mut parts = release.trim().split(['.', '-']);
    let mut next = || -> u32 { parts.next().and_then(|p| p.parse().ok()).unwrap_or(0) };
    (next(), next()) >= (major, minor)
}

/// The init makes its device nodes (the 6 defaults) by name in the container's
/// `/dev`, resolved once in the rootfs: each node resolved the rootfs path and its
/// own path again (`safe_path::scoped_join` canonicalizes its root, a readlink per
/// component; libcontainer patch 37). The init made 33 readlinks under
/// `unconfined` (mknod) and 54 under `default` (a user namespace: each node a bind
/// of the host's), now 2 and 5; the bound leaves room over those.
#[test]
fn init_makes_device_nodes_without_resolving_the_rootfs_per_node() {
    const READLINKS_BOUND: usize = 12;
    require_root();
    if skip_on_reference("Stockade's init") {
        return;
    }
    for profile in ["unconfined", "default"] {
        let rt = runtime!(profile = profile);
        let TrueRun { merged, init, .. } =
            traced_true_run(&rt, false, "trace=readlink,readlinkat,execve");
        let links: Vec<&String> = merged
            .iter()
            .filter(|l| {
                let mut words = l.split_whitespace();
                words.next() == Some(init.as_str())
                    && words.next().is_some_and(|c| c.starts_with("readlink"))
            })
            .collect();
        assert!(
            links.len() <= READLINKS_BOUND,
            "{profile}: the init made {} readlinks (bound {READLINKS_BOUND}): {links:#?}",
            links.len()
        );
    }
}

/// The runtime's process of one `run` reads the bundle's config.json once and
/// resolves its rootfs path once: `run` read and parsed the bundle for
/// `process.terminal`, then `create` read it again; the state-root check resolved
/// the already resolved rootfs again, and libcontainer resolved the rootfs of the
/// plan it had just resolved once more (glibc's realpath: a readlink per path
/// component each time). libcontainer's user namespace check read the runtime's
/// own `/proc/self/uid_map` twice in a row (libcontainer patch 34): four reads
/// remain under `default` (whose spec has a user namespace: the check, then the
/// user namespace config's own checks), from five.
#[test]
fn run_reads_the_bundle_and_resolves_its_rootfs_once() {
    require_root();
    if skip_on_reference("Stockade's create") {
        return;
    }
    let rt = runtime!(profile = "default");
    let traces = tempfile::tempdir().expect("trace dir");
    let out = traces.path().join("bundle");
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    traced_run(
        &rt,
        &bundle,
        Path::new("/"),
        "trace=openat,openat2,readlink,readlinkat",
        &out,
    );
    let main = main_process_lines(&out);
    let named = |path: &Path, call: &str| -> Vec<&String> {
        let quoted = format!("\"{}\"", path.display());
        main.iter()
            .filter(|l| {
                l.contains(&quoted)
                    && l.split_whitespace()
                        .nth(1)
                        .is_some_and(|c| c.starts_with(call))
            })
            .collect()
    };
    let config = named(&bundle.path().join("config.json"), "open");
    assert_eq!(
        config.len(),
        1,
        "the bundle's config.json opened: {config:#?}"
    );
    let rootfs_links = named(&bundle.rootfs, "readlink");
    assert!(
        rootfs_links.len() <= 1,
        "the rootfs path resolved {} times: {rootfs_links:#?}",
        rootfs_links.len()
    );
    let uid_map = named(Path::new("/proc/self/uid_map"), "open");
    assert!(
        uid_map.len() <= 4,
        "/proc/self/uid_map opened {} times: {uid_map:#?}",
        uid_map.len()
    );
}

/// The user namespace that carries the rootfs idmapping is made by clone(2) itself
/// (`CLONE_NEWUSER`): the runtime writes the holder's maps at once, instead of
/// waiting until the holder was scheduled, unshared and reported over a pipe.
#[test]
fn idmap_holder_is_cloned_into_its_user_namespace() {
    require_root();
    if skip_on_reference("Stockade's idmapped rootfs") {
        return;
    }
    let rt = runtime!(profile = "default");
    let traces = tempfile::tempdir().expect("trace dir");
    let out = traces.path().join("holder");
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    traced_run(
        &rt,
        &bundle,
        Path::new("/"),
        "trace=clone,clone3,unshare,write,pipe2",
        &out,
    );
    let main = main_process_lines(&out);
    let clones: Vec<&String> = main
        .iter()
        .filter(|l| l.contains("clone") && l.contains("CLONE_NEWUSER"))
        .collect();
    assert_eq!(
        clones.len(),
        1,
        "the runtime's process cloned no (or more than one) user namespace holder: {main:#?}"
    );
    let holder = clones[0]
        .rsplit("= ")
        .next()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no pid in {}", clones[0]));
    let text = std::fs::read_to_string(&out).expect("read trace");
    let holder_calls: Vec<&str> = text
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(holder.to_string().as_str()))
        .filter(|l| l.contains('(') && !l.contains("killed by"))
        .collect();
    assert!(
        holder_calls.is_empty(),
        "the holder unshared or reported itself: {holder_calls:#?}"
    );
}

/// The container's init makes its mount points without pathrs's procfs round trip:
/// `Root::mkdir_all` re-opened every destination through `/proc/thread-self/fd/N`
/// (openat2 refuses that magic link, pathrs's emulated resolver then opens it),
/// after validating its procfs handle again: ~45 syscalls per existing mount
/// point and ~85 per missing one, half of all the init made. A destination is now
/// resolved in the rootfs, checked a directory and mounted on by its fd, missing
/// ones made under their existing ancestor (libcontainer patch 30); the bound on
/// the init's syscalls below leaves ~40 % over what it makes now (under 1000 in a
/// debug build), and is under what it made before (~1850 in a release build,
/// ~2200 in a debug one).
#[test]
fn init_makes_mount_points_without_a_procfs_reopen() {
    require_root();
    if skip_on_reference("pathrs is Stockade's resolver") {
        return;
    }
    let rt = runtime!(profile = "default");
    // strace pads a pid shorter than five digits: match on the normalised
    // "PID call" lines, or a short pid would find no re-open at all.
    let TrueRun { merged, init, .. } = traced_true_run(&rt, true, "trace=all");
    let calls: Vec<&str> = merged
        .iter()
        .map(String::as_str)
        .filter(|l| l.split_whitespace().next() == Some(init.as_str()) && l.contains('('))
        .collect();
    assert!(
        calls.iter().any(|l| l.contains("RESOLVE_IN_ROOT")),
        "no in-root resolution found among the init's {} calls: the trace was misread",
        calls.len()
    );
    // Each re-open with the last in-root resolution before it (the mount point).
    let reopens: Vec<(&str, &str)> = calls
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with(&format!("{init} openat2(")) && l.contains(", \"fd/"))
        .map(|(i, l)| {
            let resolved = calls[..i]
                .iter()
                .rev()
                .find(|c| c.contains("RESOLVE_IN_ROOT"))
                .copied()
                .unwrap_or("");
            (resolved, *l)
        })
        .collect();
    assert!(
        reopens.is_empty(),
        "the init re-opened {} fds through procfs: {reopens:#?}",
        reopens.len()
    );
    assert!(
        calls.len() <= 1400,
        "the init made {} syscalls (bound 1400)",
        calls.len()
    );
}

/// Collecting the container's processes at delete lists each cgroup directory and
/// descends into sub-cgroups by the listing's entry types: before, it stat'ed every
/// control file to find them (~150 statx per hardened `run` on a v1 host: ~180 stats
/// of cgroupfs paths in all, now ~30; libcgroups patch 12).
#[test]
fn delete_stats_no_cgroup_control_file() {
    require_root();
    if skip_on_reference("Stockade's cgroup manager") {
        return;
    }
    let rt = runtime!(profile = "default");
    let traces = tempfile::tempdir().expect("trace dir");
    let out = traces.path().join("stat");
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    traced_run(
        &rt,
        &bundle,
        Path::new("/"),
        "trace=statx,newfstatat,stat,lstat",
        &out,
    );
    let text = std::fs::read_to_string(&out).expect("read trace");
    let stats: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"/sys/fs/cgroup/"))
        .collect();
    // What remains (~30 on a v1 host, 12 hierarchies): each cgroup directory and
    // its cgroup.procs checked to exist, the cgroup layout probed.
    assert!(
        stats.len() <= 50,
        "{} stats of paths in cgroupfs (bound 50): {stats:#?}",
        stats.len()
    );
}

/// Whether the host's cgroup controllers are v1 hierarchies (legacy or hybrid).
/// The process that created `child` in a merged trace, and the line of that fork.
fn creator_of(merged: &[String], child: &str) -> Option<(String, String)> {
    merged.iter().find_map(|l| {
        let mut words = l.split_whitespace();
        let pid = words.next()?;
        let call = words.next()?;
        let forks = ["clone(", "clone3(", "fork(", "vfork("]
            .iter()
            .any(|c| call.starts_with(c));
        (forks && l.rsplit("= ").next()?.trim() == child).then(|| (pid.to_string(), l.clone()))
    })
}

/// A container without a user namespace is forked by the runtime itself, straight
/// into its new pid namespace: libcontainer's intermediate process, which only
/// joined the cgroup and forked again, is gone there (libcontainer patch 40; the
/// init joins its cgroup itself, which every cgroup test checks from inside). With
/// a user namespace the intermediate stays: the pid namespace must be made inside
/// the user namespace (the container's procfs), which takes a fork after entering
/// it. Before: the runtime forked the intermediate, which forked the init, in both.
#[test]
fn only_a_container_with_a_user_namespace_takes_an_intermediate_process() {
    require_root();
    if skip_on_reference("Stockade's process layout") {
        return;
    }
    for (profile, direct) in [("unconfined", true), ("default", false)] {
        let rt = runtime!(profile = profile);
        let TrueRun {
            text,
            merged,
            main,
            init,
            ..
        } = traced_true_run(&rt, false, "trace=clone,clone3,fork,vfork,execve");
        let (parent, fork) = creator_of(&merged, &init)
            .unwrap_or_else(|| panic!("{profile}: no fork made the init {init}:\n{text}"));
        assert!(
            fork.contains("CLONE_NEWPID") == direct,
            "{profile}: the init's fork {} its pid namespace: {fork}",
            if direct { "does not make" } else { "makes" }
        );
        if direct {
            assert_eq!(
                parent, main,
                "{profile}: the init was not forked by the runtime:\n{text}"
            );
        } else {
            let (grandparent, _) = creator_of(&merged, &parent)
                .unwrap_or_else(|| panic!("{profile}: no fork made {parent}:\n{text}"));
            assert!(
                parent != main && grandparent == main,
                "{profile}: the init's parent {parent} is not an intermediate forked by the runtime {main}:\n{text}"
            );
        }
    }
}

fn cgroup_v1_controllers() -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    mountinfo.lines().any(|l| {
        l.split(" - ")
            .nth(1)
            .is_some_and(|fs| fs.starts_with("cgroup "))
    })
}

/// The container's processes join their cgroup without the kernel's global
/// threadgroup lock: on cgroup v1 the intermediate process (one thread) moves
/// itself as `0` in each hierarchy's `tasks`. A pid or a whole process written to
/// `cgroup.procs` takes that lock for writing, which waits for an RCU grace period
/// (5-15 ms on this machine, the longest wait of a create). Whether it joined is
/// what every limit test checks; here, how.
#[test]
fn run_joins_cgroup_v1_without_the_threadgroup_lock() {
    require_root();
    if skip_on_reference("Stockade's cgroup manager") {
        return;
    }
    let rt = runtime!(profile = "default");
    let traces = tempfile::tempdir().expect("trace dir");
    let out = traces.path().join("join");
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    traced_run(&rt, &bundle, Path::new("/"), "trace=openat", &out);
    let text = std::fs::read_to_string(&out).expect("read trace");
    let leaf = format!("/{}/", bundle.id);
    let written = |file: &str| -> Vec<&str> {
        text.lines()
            .filter(|l| l.contains(&leaf) && l.contains(file) && l.contains("O_WRONLY"))
            .collect()
    };
    let procs = written("/cgroup.procs\"");
    let tasks = written("/tasks\"");
    if cgroup_v1_controllers() {
        assert!(procs.is_empty(), "joined through cgroup.procs: {procs:#?}");
        for hierarchy in ["/memory/", "/pids/", "/cpu", "/devices/", "/freezer/"] {
            assert!(
                tasks.iter().any(|l| l.contains(hierarchy)),
                "no join of the {hierarchy} hierarchy through tasks: {tasks:#?}"
            );
        }
    } else {
        // cgroup v2 has no per-thread move for a process; it is unchanged.
        assert!(tasks.is_empty(), "{tasks:#?}");
        assert!(!procs.is_empty(), "the container never joined its cgroup");
    }
}

/// Delete removes the cgroup of a container whose processes have exited with one
/// rmdir per hierarchy, as crun does (libcgroups patch 20): the kernel removes a
/// cgroup only when no process and no sub-cgroup is left, all that killing and
/// walking the tree would achieve. Before, every v1 hierarchy's directory was
/// listed and its `cgroup.procs` read (~90 syscalls per `run`), and before patch 19
/// each was listed twice. What is still listed is the one hierarchy the wait for
/// an empty cgroup counts processes in (libcontainer's `wait_for_empty_cgroup`: a
/// pid namespace's teardown can take a while). That a tree with sub-cgroups and
/// processes in them still goes is `runc_parity`'s `delete_force_removes_sub_cgroups`.
#[test]
fn delete_of_an_exited_container_removes_each_cgroup_with_one_rmdir() {
    require_root();
    if skip_on_reference("Stockade's cgroup manager") {
        return;
    }
    let rt = runtime!(profile = "default");
    let traces = tempfile::tempdir().expect("trace dir");
    let out = traces.path().join("delete");
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    traced_run(&rt, &bundle, Path::new("/"), "trace=openat,rmdir", &out);
    let leaf = format!("/{}\"", bundle.id);
    let of_the_container: Vec<String> = main_process_lines(&out)
        .into_iter()
        .filter(|l| l.contains("/sys/fs/cgroup/") && l.contains(&leaf))
        .collect();
    let rmdirs: Vec<&String> = of_the_container
        .iter()
        .filter(|l| l.contains("rmdir("))
        .collect();
    assert!(
        !rmdirs.is_empty(),
        "delete removed no cgroup of the container: the trace was misread"
    );
    // Each directory goes at its first rmdir. A hierarchy that carries two
    // controllers (systemd's `cpu,cpuacct`) is named by both: its second rmdir
    // finds it gone (ENOENT), which is no error.
    let mut removed: Vec<&str> = Vec::new();
    for l in &rmdirs {
        let dir = l.split('"').nth(1).unwrap_or_default();
        if removed.contains(&dir) {
            assert!(l.contains("ENOENT"), "a cgroup removed twice: {rmdirs:#?}");
        } else {
            assert!(
                l.ends_with("= 0"),
                "a cgroup of the exited container was not removed at the first rmdir: {rmdirs:#?}"
            );
            removed.push(dir);
        }
    }
    let listed: Vec<&String> = of_the_container
        .iter()
        .filter(|l| l.contains("O_DIRECTORY"))
        .collect();
    assert!(
        listed.len() <= 1,
        "delete listed {} cgroup directories of an exited container: {listed:#?}",
        listed.len()
    );
}

/// On cgroup v1 the container's device rules (a dozen: deny all, then each default
/// device) are written to `devices.allow` through one open file, a write(2) per
/// rule (the kernel parses one rule per write): each rule had its own open and
/// close (libcgroups patch 14). Whether the rules hold is what
/// `runtime_spec_honoured`'s device tests check; here, how they are written.
#[test]
fn run_writes_device_rules_through_one_open() {
    require_root();
    if skip_on_reference("Stockade's cgroup manager") {
        return;
    }
    let rt = runtime!(profile = "default");
    let traces = tempfile::tempdir().expect("trace dir");
    let out = traces.path().join("devices");
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    traced_run(&rt, &bundle, Path::new("/"), "trace=openat,write", &out);
    let text = std::fs::read_to_string(&out).expect("read trace");
    let leaf = format!("/{}/devices.allow\"", bundle.id);
    let opens: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("openat(") && l.contains(&leaf))
        .collect();
    if cgroup_v1_controllers() {
        assert_eq!(opens.len(), 1, "devices.allow opened: {opens:#?}");
        let fd = opens[0].rsplit("= ").next().unwrap().trim();
        let pid = opens[0].split_whitespace().next().unwrap();
        let rules = resumed_calls_merged(&text)
            .into_iter()
            .filter(|l| l.starts_with(&format!("{pid} write({fd}, ")))
            .count();
        assert!(rules >= 10, "{rules} device rules written: {text}");
    } else {
        // cgroup v2 enforces device rules with an eBPF program.
        assert!(opens.is_empty(), "{opens:#?}");
    }
}

const VALGRIND: &str = "/usr/bin/valgrind";
/// Where Debian's valgrind keeps its tools (the program the kernel really runs).
const VALGRIND_TOOLS: &str = "/usr/libexec/valgrind";

/// Instructions the runtime's own process executes for `create` of `bundle`
/// (callgrind's `I refs`). Under valgrind `/proc/self/exe` is valgrind's tool, so
/// the runtime would re-execute itself from a read-only copy (CVE-2019-5736) and
/// leave valgrind; in a private mount namespace the tools directory is bound
/// read-only, so the runtime sees that it already runs from a read-only binary.
fn create_instructions(rt: &Runtime, bundle: &Bundle) -> u64 {
    assert!(
        Path::new(VALGRIND).exists() && Path::new(VALGRIND_TOOLS).is_dir(),
        "{VALGRIND} is missing: run scripts/install-deps.sh"
    );
    let script = format!(
        "mount --bind {VALGRIND_TOOLS} {VALGRIND_TOOLS} && \
         mount -o remount,bind,ro {VALGRIND_TOOLS} && \
         exec {VALGRIND} --tool=callgrind --callgrind-out-file=/dev/null \"$@\""
    );
    let wrapper = in_private_mount_ns(&script);
    let out = rt
        .command_via(&wrapper, &bundle_verb("create", bundle))
        .output()
        .expect("spawn valgrind");
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .find_map(|l| l.split_once("I   refs:"))
        .map(|(_, n)| n.trim().replace(',', "").parse().expect("a count"))
        .unwrap_or_else(|| panic!("no instruction count from callgrind:\n{stderr}"))
}

/// The second `create` under one profile skips its TOML parse: the profile and its
/// seccomp data parsed at the first are taken from the state root's parse cache
/// (decoded and validated again), so admission costs a fraction of the
/// instructions. Counted on a create the profile refuses (a bind of `/etc`), which
/// runs all of admission and stops before the container is made.
#[test]
fn a_second_create_parses_no_profile_toml() {
    require_root();
    if skip_on_reference("Stockade's parse cache") {
        return;
    }
    let rt = runtime!(profile = "default");
    // A node's state root exists once it has run a container; the cache never makes
    // one for a refused create (file_cache).
    std::fs::create_dir_all(rt.state_root()).expect("state root");
    let refused = || {
        BundleBuilder::new()
            .args(&["/bin/true"])
            .mount(serde_json::json!({
                "destination": "/host", "type": "bind",
                "source": "/etc", "options": ["rbind", "ro"],
            }))
            .build()
    };
    let first = create_instructions(&rt, &refused());
    let second = create_instructions(&rt, &refused());
    let third = create_instructions(&rt, &refused());
    // Without the cache all three cost the same (the TOML parse is ~2/3 of them).
    assert!(
        second * 2 < first && third * 2 < first,
        "instructions: first {first}, second {second}, third {third}"
    );
}

/// The calls of the runtime's first image: its process's lines from the trace's
/// first `execve` up to the next one, which must re-execute from `protected`.
fn calls_before_reexec(trace: &Path, protected: &str) -> Vec<String> {
    let lines = main_process_lines(trace);
    let calls: Vec<String> = lines
        .iter()
        .map(|l| {
            let call = l.split_once(' ').map_or("", |(_, c)| c.trim_start());
            call.split('(').next().unwrap_or_default().to_string()
        })
        .collect();
    let second = calls
        .iter()
        .skip(1)
        .position(|c| c == "execve")
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("the run never re-executed:\n{}", lines.join("\n")));
    assert!(
        lines[second].contains(&format!("execve(\"{protected}\"")),
        "the run re-executed from elsewhere than {protected}: {}",
        lines[second]
    );
    calls[1..second].to_vec()
}

/// An entering verb re-executes from the read-only copy of the binary before Rust's
/// runtime and `main` start (x86-64: the binary's entry point, `early_reexec`); in
/// the static binary as shipped, also before the C library and the relocation.
/// The first image makes no call but the four that find and check the copy, where
/// it set up everything only to re-execute from `main` (~1 ms of a ~8 ms `run`).
/// Without the copy mounted (a private mount namespace with it unmounted), the
/// first run starts normally, and `main` mounts the copy and re-executes from it.
#[cfg(target_arch = "x86_64")]
#[test]
fn an_entering_verb_re_executes_from_the_protected_copy_before_main() {
    require_root();
    if skip_on_reference("Stockade's CVE-2019-5736 re-execution") {
        return;
    }
    let traces = tempfile::tempdir().expect("trace dir");
    let t = traces.path();
    let rt = runtime!().from_writable_binary(t);
    let bundle = BundleBuilder::new().args(&["/bin/true"]).build();
    let protected = rt.protected_copy();
    let script = format!(
        "umount -l {protected} 2>/dev/null; \
         for n in first second; do {STRACE} -f -qq -o {}/$n \"$@\" || exit 1; done",
        t.display()
    );
    let out = rt
        .command_via(&in_private_mount_ns(&script), &bundle_verb("run", &bundle))
        .current_dir("/")
        .output()
        .expect("spawn unshare");
    assert!(out.status.success(), "{out:?}\nlog: {}", rt.log_text());

    // Calls of Rust's runtime set-up (stack guard, SIGPIPE, stdio check) and of
    // `main`'s mount of the copy; none is the dynamic loader's (a debug build).
    let after_entry = ["sigaltstack", "rt_sigaction", "poll", "mount"];
    let first = calls_before_reexec(&t.join("first"), &protected);
    assert!(
        first.iter().any(|c| c == "sigaltstack") && first.iter().any(|c| c == "mount"),
        "without the copy the first image starts normally and mounts it: {first:?}"
    );
    let second = calls_before_reexec(&t.join("second"), &protected);
    let (loader, checks) = second.split_at(second.len().saturating_sub(4));
    assert_eq!(
        checks,
        ["statfs", "stat", "stat", "statfs"],
        "with the copy mounted, the first image only checks it and re-executes: {second:?}"
    );
    assert!(
        loader.iter().all(|c| !after_entry.contains(&c.as_str())),
        "the first image ran Rust's runtime or main before re-executing: {second:?}"
    );
}
