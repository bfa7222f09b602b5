//! Read-mostly verbs: `ps`, `list`, `events`, `update`, `features`, `spec`.

use std::io::Write;

use libcgroups::common::{CgroupConfig, CgroupManager, ControllerOpt};
use libcontainer::oci_spec::runtime::{LinuxResources, Spec};

use super::{load, CommandError, Global};
use crate::admission::{self, AdmissionError};
use crate::profile::gate::{self, Verb};
use crate::profile::StatNsLookup;

mod oom;
mod runc_stats;

fn cgroup_manager(
    g: &Global,
    id: &str,
) -> Result<libcgroups::common::AnyCgroupManager, CommandError> {
    let c = load(g, id)?;
    let cfg = c
        .spec()
        .map_err(CommandError::container(id, "read config"))?;
    libcgroups::common::create_cgroup_manager(CgroupConfig {
        cgroup_path: cfg.cgroup_path,
        // The driver the container was created with, recorded in its state.
        systemd_cgroup: c.systemd(),
        container_name: id.to_string(),
    })
    .map_err(|e| CommandError::Cgroup {
        id: id.to_string(),
        op: "open",
        source: Box::new(e),
    })
}

/// `ps --format json` prints the pids; `table` is runc's: the host's `ps` with the
/// caller's options (default `-ef`), its header, and the lines whose PID column is
/// one of the container's processes.
pub fn ps(g: &Global, a: &liboci_cli::Ps) -> Result<String, CommandError> {
    let id = a.container_id.as_str();
    let pids = cgroup_manager(g, id)?
        .get_all_pids()
        .map_err(|e| CommandError::Cgroup {
            id: id.to_string(),
            op: "list pids",
            source: Box::new(e),
        })?;
    let pids: Vec<i32> = pids.iter().map(|p| p.as_raw()).collect();
    match a.format.as_str() {
        "json" => Ok(serde_json::to_string(&pids).unwrap_or_else(|_| "[]".into())),
        "table" => {
            let args: Vec<String> = if a.ps_options.is_empty() {
                vec!["-ef".into()]
            } else {
                a.ps_options.clone()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .map_err(CommandError::io("failed to run ps"))?;
            if !out.status.success() {
                return Err(CommandError::Io {
                    what: format!(
                        "ps {} failed: {}",
                        args.join(" "),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                    source: std::io::Error::other(format!("exit status {}", out.status)),
                });
            }
            ps_table(&String::from_utf8_lossy(&out.stdout), &pids)
        }
        other => Err(CommandError::Unsupported {
            what: "ps format",
            value: other.to_string(),
        }),
    }
}

/// The header of `ps` output and the lines of `pids`, found by the PID column (as
/// runc filters: the caller's options decide the columns).
fn ps_table(ps_output: &str, pids: &[i32]) -> Result<String, CommandError> {
    let mut lines = ps_output.lines();
    let header = lines.next().unwrap_or_default();
    let pid_column = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| CommandError::Unsupported {
            what: "ps options (the output needs a PID column)",
            value: header.to_string(),
        })?;
    let mut out = vec![header];
    out.extend(lines.filter(|l| {
        l.split_whitespace()
            .nth(pid_column)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p))
    }));
    Ok(out.join("\n"))
}

/// Go's `text/tabwriter` as runc's `list` sets it up (minimum cell width 12,
/// padding 3, spaces): every cell but a line's last is padded to its column's
/// widest cell plus 3.
fn tabwriter(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns.saturating_sub(1))
        .map(|c| {
            let widest = rows
                .iter()
                .filter(|r| c + 1 < r.len())
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0);
            (widest + 3).max(12)
        })
        .collect();
    rows.iter()
        .map(|r| {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                if c + 1 < r.len() {
                    line.push_str(&format!("{cell:<width$}", width = widths[c]));
                } else {
                    line.push_str(cell);
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The name of the user owning the container's state directory, as runc's `list`
/// reports it (`#UID` when that uid has no name).
fn state_dir_owner(g: &Global, id: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(g.root.path().join(id)) else {
        return String::new();
    };
    let uid = meta.uid();
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => format!("#{uid}"),
    }
}

pub fn list(g: &Global, a: &liboci_cli::List) -> Result<String, CommandError> {
    // liboci-cli takes any string; an unknown format must not silently print a table.
    if !matches!(a.format.as_str(), "table" | "json") {
        return Err(CommandError::Unsupported {
            what: "list format (table or json)",
            value: a.format.clone(),
        });
    }
    let ids = g
        .root
        .list()
        .map_err(CommandError::io("failed to read the state root"))?;
    if a.quiet {
        return Ok(ids.join("\n"));
    }
    let mut states = Vec::new();
    for id in &ids {
        if let Ok(mut s) = super::lifecycle::state(g, id) {
            s.owner = state_dir_owner(g, id);
            states.push(s);
        }
    }
    match a.format.as_str() {
        "json" => Ok(serde_json::to_string(&states).unwrap_or_else(|_| "[]".into())),
        _ => {
            // runc's columns and layout, then the profile (last, so column-position
            // readers of runc's table keep working).
            let mut rows = vec![[
                "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER", "PROFILE",
            ]
            .map(String::from)
            .to_vec()];
            for s in states {
                rows.push(vec![
                    s.id,
                    s.pid.to_string(),
                    s.status.to_string(),
                    s.bundle.display().to_string(),
                    s.created,
                    s.owner,
                    s.profile.unwrap_or_else(|| "-".into()),
                ]);
            }
            Ok(tabwriter(&rows))
        }
    }
}

/// `events`: runc's event stream for one container. `--stats` prints one `stats`
/// event and exits; otherwise one every `--interval` (a Go duration) until the container
/// stops, and an `oom` event (`{"type":"oom","id":ID}`) whenever the kernel OOM-kills
/// a process of the container (checked every [`OOM_TICK`]). Each event is one line,
/// `{"type":"stats","id":ID,"data":STATS}` with STATS in runc's `types.Stats` shape
/// (see [`runc_stats`]), what go-runc decodes.
pub fn events(g: &Global, a: &crate::cli::EventsArgs) -> Result<(), CommandError> {
    let id = a.container_id.as_str();
    if !a.stats && a.interval.is_zero() {
        return Err(CommandError::Unsupported {
            what: "events interval (must be > 0)",
            value: format!("{:?}", a.interval),
        });
    }
    let manager = cgroup_manager(g, id)?;
    let unit = match manager {
        libcgroups::common::AnyCgroupManager::V1(_)
        | libcgroups::common::AnyCgroupManager::SystemdLegacy(_) => {
            runc_stats::CpuTimeUnit::v1_host()
        }
        _ => runc_stats::CpuTimeUnit::V2,
    };
    let container = load(g, id)?;
    if container.status() == libcontainer::container::ContainerStatus::Stopped {
        return Err(CommandError::container(id, "events")(
            libcontainer::error::LibcontainerError::IncorrectStatus(container.status()),
        ));
    }
    let mut oom = if a.stats {
        None
    } else {
        container
            .pid()
            .and_then(|pid| oom::OomCounter::from_process(pid.as_raw()))
    };
    let mut next_stats = std::time::Instant::now();
    loop {
        // The counter first: a kill that ended the container is still reported.
        if oom.as_mut().is_some_and(oom::OomCounter::increased) {
            let event = Event::<()> {
                kind: "oom",
                id,
                data: None,
            };
            if !emit(&event)? {
                return Ok(());
            }
        }
        if load(g, id)?.status() == libcontainer::container::ContainerStatus::Stopped {
            return Ok(());
        }
        if std::time::Instant::now() >= next_stats {
            let stats = manager.stats().map_err(|e| CommandError::Cgroup {
                id: id.to_string(),
                op: "read stats",
                source: Box::new(e),
            })?;
            let event = Event {
                kind: "stats",
                id,
                data: Some(runc_stats::Stats::from_cgroup(&stats, unit)),
            };
            if !emit(&event)? || a.stats {
                return Ok(());
            }
            next_stats += a.interval;
        }
        let until_stats = next_stats.saturating_duration_since(std::time::Instant::now());
        std::thread::sleep(until_stats.min(OOM_TICK));
    }
}

/// How often a streaming `events` looks for OOM kills.
const OOM_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// One event as one JSON line on stdout. `false` when the reader went away
/// (containerd stopped listening): nothing more to do.
fn emit<T: serde::Serialize>(event: &Event<T>) -> Result<bool, CommandError> {
    // runc's key order (`type`, `id`, `data`): a json! map would sort them.
    let line = serde_json::to_string(event).map_err(|e| CommandError::Io {
        what: format!("cannot serialize the {} event", event.kind),
        source: std::io::Error::other(e),
    })?;
    let mut out = std::io::stdout().lock();
    Ok(writeln!(out, "{line}").and_then(|()| out.flush()).is_ok())
}

/// One line of `events`, runc's `types.Event`.
#[derive(serde::Serialize)]
struct Event<'a, T> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

/// `update --resources FILE|-` applies a LinuxResources document; the flag forms
/// override its fields.
pub fn update(g: &Global, a: &crate::cli::UpdateArgs) -> Result<(), CommandError> {
    let id = a.container_id.as_str();
    let _s = tracing::info_span!("update", id).entered();
    let mut resources: LinuxResources = match &a.resources {
        Some(path) => {
            use crate::bounded_read::{read, read_capped, CONFIG_CAP};
            let buf = if path.as_os_str() == "-" {
                read_capped(std::io::stdin(), CONFIG_CAP)
                    .map_err(CommandError::io("failed to read resources from stdin"))?
            } else {
                read(path, CONFIG_CAP).map_err(CommandError::io(format!(
                    "failed to read resources from {}",
                    path.display()
                )))?
            };
            serde_json::from_slice(&buf).map_err(CommandError::Resources)?
        }
        None => LinuxResources::default(),
    };
    if a.memory.is_some() || a.memory_swap.is_some() || a.memory_reservation.is_some() {
        let mut mem = resources.memory().unwrap_or_default();
        if let Some(m) = a.memory {
            mem.set_limit(Some(m as i64));
        }
        if let Some(s) = a.memory_swap {
            mem.set_swap(Some(s));
        }
        if let Some(r) = a.memory_reservation {
            mem.set_reservation(Some(r as i64));
        }
        resources.set_memory(Some(mem));
    }
    if let Some(p) = a.pids_limit {
        let mut pids = resources.pids().unwrap_or_default();
        pids.set_limit(p);
        resources.set_pids(Some(pids));
    }
    let cpu_flags = [a.cpu_period, a.cpu_share, a.cpu_rt_period, a.cpu_rt_runtime];
    if a.cpu_quota.is_some()
        || cpu_flags.iter().any(Option::is_some)
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some()
    {
        let mut cpu = resources.cpu().clone().unwrap_or_default();
        if let Some(p) = a.cpu_rt_period {
            cpu.set_realtime_period(Some(p));
        }
        if let Some(r) = a.cpu_rt_runtime {
            let r = i64::try_from(r).map_err(|_| CommandError::Unsupported {
                what: "--cpu-rt-runtime",
                value: r.to_string(),
            })?;
            cpu.set_realtime_runtime(Some(r));
        }
        if let Some(cpus) = &a.cpuset_cpus {
            cpu.set_cpus(Some(cpus.clone()));
        }
        if let Some(mems) = &a.cpuset_mems {
            cpu.set_mems(Some(mems.clone()));
        }
        if let Some(q) = a.cpu_quota {
            cpu.set_quota(Some(q));
        }
        if let Some(p) = a.cpu_period {
            cpu.set_period(Some(p));
        }
        if let Some(s) = a.cpu_share {
            cpu.set_shares(Some(s));
        }
        resources.set_cpu(Some(cpu));
    }
    if let Some(w) = a.blkio_weight {
        // runc's --blkio-weight is a uint16 (the kernel takes 10..=1000).
        let w = u16::try_from(w).map_err(|_| CommandError::Unsupported {
            what: "--blkio-weight",
            value: w.to_string(),
        })?;
        let mut blkio = resources.block_io().clone().unwrap_or_default();
        blkio.set_weight(Some(w));
        resources.set_block_io(Some(blkio));
    }
    // Intel RDT is not supported (`features` says so): refuse rather than ignore.
    if let Some(v) = a.l3_cache_schema.as_ref().or(a.mem_bw_schema.as_ref()) {
        return Err(CommandError::Unsupported {
            what: "Intel RDT schema (--l3-cache-schema, --mem-bw-schema)",
            value: v.clone(),
        });
    }
    // Judged like create, by the profile recorded at create, against the resources
    // the container would have afterwards; nothing reaches the cgroup before.
    let container = load(g, id)?;
    let spec_path = container.bundle().join("config.json");
    let spec = Spec::load(&spec_path).map_err(|e| CommandError::Io {
        what: format!("cannot read the hardened spec of container {id:?}"),
        source: std::io::Error::other(e),
    })?;
    let record = g.root.read_plan(id)?;
    let profile = record
        .policy
        .as_ref()
        .ok_or_else(|| AdmissionError::NoRecordedProfile(id.to_string()))?;
    let mut updated = None;
    admission::judge(g.config.as_deref(), Verb::Update, profile, id, |host| {
        let (verdict, spec) = gate::update(&spec, &resources, profile, host, &StatNsLookup)?;
        updated = Some(spec);
        Ok(verdict)
    })?;
    // As runc, `update` keeps the oom killer setting the container was created with:
    // libcgroups writes memory.oom_control whenever memory is updated, so passing
    // `false` here would re-enable the killer behind `disableOOMKiller`.
    let disable_oom_killer = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.disable_oom_killer())
        .unwrap_or(false);
    cgroup_manager(g, id)?
        .apply(&ControllerOpt {
            resources: &resources,
            disable_oom_killer,
            oom_score_adj: None,
            freezer_state: None,
        })
        .map_err(|e| CommandError::Cgroup {
            id: id.to_string(),
            op: "update",
            source: Box::new(e),
        })?;
    // The next update (and `exec`) is judged against what the cgroup now holds.
    if let Some(spec) = updated {
        g.root.rewrite_spec(id, &spec)?;
    }
    Ok(())
}

/// The OCI `features` document (runtime-spec features.md) for what Stockade enforces.
pub fn features() -> serde_json::Value {
    let landlock_abi = crate::profile::host::probe_landlock_abi();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "bind", "rbind", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable", "relatime", "norelatime", "strictatime", "nostrictatime", "noatime", "atime", "nodiratime", "diratime", "sync", "async", "mand", "nomand", "dirsync", "remount", "tmpcopyup", "idmap", "ridmap"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": caps::all().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            // systemd: transient scopes over D-Bus, on cgroup v2 and v1 (legacy, hybrid) hosts.
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": crate::seccomp::SUPPORTED_ACTIONS,
                "operators": ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"],
                "archs": crate::seccomp::SUPPORTED_ARCHES,
                "knownFlags": crate::seccomp::SUPPORTED_FLAGS,
                "supportedFlags": crate::seccomp::SUPPORTED_FLAGS,
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}},
        },
        "annotations": {
            "org.stockade.landlock.abi": landlock_abi.map(|v| v.to_string()).unwrap_or_else(|| "0".into()),
            "org.stockade.version": env!("CARGO_PKG_VERSION"),
            "io.github.seccomp.libseccomp.version": "none (seccompiler)",
        },
    })
}
