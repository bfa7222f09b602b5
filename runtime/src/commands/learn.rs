//! `stockade profile learn`: run a workload under a recording seccomp filter and draft
//! a profile from what it did.
//!
//! Mechanism: the workload runs (this binary's own `run`, under a profile with no
//! sections, so nothing else changes) with a filter whose default action is
//! `SECCOMP_RET_LOG`: every syscall is allowed as usual and the kernel writes an audit
//! record (`type=1326 ... syscall=N ... code=0x7ffc0000`). Nothing is weakened: the
//! recording filter allows exactly what no filter would, and the workload runs in
//! its own namespaces. Without auditd the kernel prints those records to the kernel
//! log (read from `/dev/kmsg`) under the printk rate limit (10 records per 5 s by
//! default), so one run cannot record everything. Learning therefore iterates: the
//! syscalls seen so far are allowed without logging, the workload runs again, and
//! this stops once a run logs nothing new — every syscall the run made is then on the
//! list.
//!
//! Limits (README): only the code paths the recorded runs took are learned; records
//! of other processes with a `SECCOMP_RET_LOG` filter during the runs would be counted
//! too (they can only widen the list); capabilities are taken from the spec, not
//! learned; written paths are not learned; with auditd running the records go to its
//! log instead and nothing is learned (the command says so).

use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::CommandError;

/// `SECCOMP_RET_LOG`, as the audit record prints the action.
const RET_LOG_CODE: &str = "code=0x7ffc0000";
/// The audit architecture of native syscalls (`AUDIT_ARCH_*`).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: &str = "arch=c000003e";
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: &str = "arch=c00000b7";
#[cfg(target_arch = "x86_64")]
const OCI_ARCH: &str = "SCMP_ARCH_X86_64";
#[cfg(target_arch = "aarch64")]
const OCI_ARCH: &str = "SCMP_ARCH_AARCH64";
/// printk's rate-limit interval: waiting this long between runs lets a full burst of
/// records through each time.
const PRINTK_INTERVAL: Duration = Duration::from_millis(5200);

#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {path}")]
    Spec {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("run {run} recorded nothing: the kernel's seccomp log records are not reaching /dev/kmsg (is auditd running, or is 'log' missing from /proc/sys/kernel/seccomp/actions_logged?)")]
    NothingRecorded { run: usize },
    #[error("the workload still made new syscalls after {runs} runs; raise --max-runs")]
    NotConverged { runs: usize },
}

impl From<LearnError> for CommandError {
    fn from(e: LearnError) -> Self {
        CommandError::Learn(Box::new(e))
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LearnError {
    let what = what.into();
    move |source| LearnError::Io { what, source }
}

/// The syscall numbers of `SECCOMP_RET_LOG` audit records for native syscalls in
/// kernel log text.
pub fn logged_syscalls(kmsg: &str) -> Vec<i64> {
    kmsg.lines()
        .filter(|l| l.contains("type=1326") && l.contains(RET_LOG_CODE) && l.contains(AUDIT_ARCH))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix("syscall="))
                .and_then(|n| n.parse().ok())
        })
        .collect()
}

/// What a learn run found.
pub struct Learned {
    pub syscalls: Vec<String>,
    pub runs: usize,
    pub capabilities: Vec<String>,
}

/// The draft profile and its seccomp data, as TOML texts.
pub fn draft(name: &str, source: &str, l: &Learned) -> (String, String) {
    let list = |v: &[String]| {
        v.iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let profile = format!(
        r#"# Drafted by `stockade profile learn` from {source} ({runs} recorded runs).
# Review before use: only what the recorded runs did is allowed.
schema = 1
name = "{name}"
version = "0.1.0"
description = "learned from {source}"
strictness = 0
mode = "enforce"

[seccomp]
reason = "the syscalls the workload made while it was recorded"
on_missing = "inject"
on_denied_allowed = "refuse"
default_filter = "seccomp/{name}.toml"
allowed_default_actions = ["errno", "kill_process", "kill_thread", "kill"]
deny = []

[capabilities]
reason = "the capabilities the recorded spec held (capabilities are not learned)"
on_excess = "refuse"
allowed = [{caps}]
"#,
        runs = l.runs,
        caps = list(&l.capabilities),
    );
    let mut filter = format!(
        "# The syscalls {source} made in {} recorded runs (stockade profile learn).\n\
         schema = 1\nname = \"{name}\"\ndefault_action = \"errno\"\ndefault_errno = 1\n\
         architectures = [\"{OCI_ARCH}\"]\n",
        l.runs
    );
    for s in &l.syscalls {
        filter.push_str(&format!(
            "\n[[allow]]\nname = \"{s}\"\nwhy = \"made by the workload while recorded\"\n"
        ));
    }
    (profile, filter)
}

/// Everything the kernel log holds after `fd`'s position, without blocking.
fn drain(kmsg: &mut std::fs::File) -> String {
    let mut out = String::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match kmsg.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
            // EPIPE: records were overwritten before we read them; go on reading.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    out
}

/// Options of one learn invocation.
pub struct LearnOpts<'a> {
    pub bundle: &'a Path,
    pub out: &'a Path,
    pub name: &'a str,
    pub max_runs: usize,
}

/// Record the workload of `bundle` until it makes no new syscall, then write
/// `<out>/<name>.toml` and `<out>/seccomp/<name>.toml`.
pub fn learn(o: &LearnOpts) -> Result<String, LearnError> {
    let config = o.bundle.join("config.json");
    let text = std::fs::read_to_string(&config)
        .map_err(io(format!("cannot read {}", config.display())))?;
    let mut spec: Value = serde_json::from_str(&text).map_err(|source| LearnError::Spec {
        path: config.clone(),
        source,
    })?;
    // The recording bundle lives elsewhere: make the rootfs path absolute.
    if let Some(root) = spec.pointer("/root/path").and_then(Value::as_str) {
        let abs = o.bundle.join(root);
        spec["root"]["path"] = json!(abs);
    }
    let capabilities: Vec<String> = spec
        .pointer("/process/capabilities/bounding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let work = tempfile::Builder::new()
        .prefix("stockade-learn-")
        .tempdir()
        .map_err(io("cannot create a work directory"))?;
    let learning = work.path().join("learning.toml");
    // No sections: the recording filter in the spec is used as written and nothing
    // else is changed.
    std::fs::write(
        &learning,
        "schema = 1\nname = \"learning\"\nversion = \"1\"\nstrictness = 0\nmode = \"enforce\"\n",
    )
    .map_err(io("cannot write the learning profile"))?;
    let me = std::env::current_exe().map_err(io("cannot find the stockade binary"))?;
    let mut seen: Vec<String> = Vec::new();
    let mut runs = 0;
    let mut last_start: Option<Instant> = None;
    loop {
        if runs == o.max_runs {
            return Err(LearnError::NotConverged { runs });
        }
        runs += 1;
        spec["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_LOG",
            "architectures": [OCI_ARCH],
            "syscalls": if seen.is_empty() { json!([]) } else {
                json!([{ "names": seen, "action": "SCMP_ACT_ALLOW" }])
            },
        });
        std::fs::write(
            work.path().join("config.json"),
            serde_json::to_vec(&spec).unwrap_or_default(),
        )
        .map_err(io("cannot write the recording bundle"))?;
        if let Some(t) = last_start {
            std::thread::sleep(PRINTK_INTERVAL.saturating_sub(t.elapsed()));
        }
        let mut kmsg = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .map_err(io("cannot open /dev/kmsg"))?;
        // Only records written from now on.
        // SAFETY: lseek on an fd we own; SEEK_END on /dev/kmsg moves to the newest record.
        unsafe {
            libc::lseek(std::os::fd::AsRawFd::as_raw_fd(&kmsg), 0, libc::SEEK_END);
        }
        last_start = Some(Instant::now());
        let id = format!("learn-{}-{runs}", std::process::id());
        let status = Command::new(&me)
            .arg("--root")
            .arg(work.path().join("state"))
            .arg("--default-profile")
            .arg(&learning)
            .args(["run", "--bundle"])
            .arg(work.path())
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(io("cannot run the workload"))?;
        tracing::info!(run = runs, ?status, "learn run finished");
        // The kernel queues audit records asynchronously (kauditd).
        std::thread::sleep(Duration::from_millis(300));
        let logged = logged_syscalls(&drain(&mut kmsg));
        let new: Vec<String> = logged
            .iter()
            .filter_map(|nr| crate::seccomp::syscall_name(*nr))
            .map(str::to_owned)
            .filter(|n| !seen.contains(n))
            .collect();
        if runs == 1 && logged.is_empty() {
            return Err(LearnError::NothingRecorded { run: runs });
        }
        if logged.is_empty() {
            break;
        }
        for n in new {
            if !seen.contains(&n) {
                seen.push(n);
            }
        }
    }
    seen.sort();
    let learned = Learned {
        syscalls: seen,
        runs,
        capabilities,
    };
    let (profile, filter) = draft(o.name, &o.bundle.display().to_string(), &learned);
    let seccomp_dir = o.out.join("seccomp");
    std::fs::create_dir_all(&seccomp_dir)
        .map_err(io(format!("cannot create {}", seccomp_dir.display())))?;
    let profile_path = o.out.join(format!("{}.toml", o.name));
    std::fs::write(&profile_path, profile)
        .map_err(io(format!("cannot write {}", profile_path.display())))?;
    let filter_path = seccomp_dir.join(format!("{}.toml", o.name));
    std::fs::write(&filter_path, filter)
        .map_err(io(format!("cannot write {}", filter_path.display())))?;
    Ok(format!(
        "learned {} syscalls in {} runs: {}\nwrote {} and {}",
        learned.syscalls.len(),
        runs,
        learned.syscalls.join(", "),
        profile_path.display(),
        filter_path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn reads_log_records_only() {
        let kmsg = "5,1907,3450295081,-;audit: type=1326 audit(1795790186.259:152): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=24227 comm=\"sh\" exe=\"/bin/busybox\" sig=0 arch=c000003e syscall=59 compat=0 ip=0x7f1328412ad7 code=0x7ffc0000\n\
            5,1908,1,-;audit: type=1326 audit(1.2:3): pid=1 comm=\"x\" sig=31 arch=c000003e syscall=101 compat=0 ip=0x1 code=0x80000000\n\
            5,1909,1,-;audit: type=1326 audit(1.2:3): pid=1 comm=\"x\" sig=0 arch=40000003 syscall=20 compat=1 ip=0x1 code=0x7ffc0000\n\
            6,1910,1,-;eth0: link up\n";
        assert_eq!(logged_syscalls(kmsg), [59]);
    }

    #[test]
    fn drafts_a_profile_that_loads() {
        let l = Learned {
            syscalls: vec!["execve".into(), "read".into()],
            runs: 3,
            capabilities: vec!["CAP_CHOWN".into()],
        };
        let (p, f) = draft("web", "/b", &l);
        let p = crate::profile::load::parse_profile(&p, "web.toml").unwrap();
        assert_eq!(p.capabilities.unwrap().allowed, ["CAP_CHOWN"]);
        let f = crate::profile::load::parse_seccomp_filter(&f, "f.toml").unwrap();
        assert_eq!(f.allow.len(), 2);
    }
}
