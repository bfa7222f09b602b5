//! Read-mostly verbs: `ps`, `list`, `events`, `update`, `features`, `spec`.

use std::io::Write;

use libcgroups::common::{CgroupConfig, CgroupManager, ControllerOpt};
use libcontainer::oci_spec::runtime::{LinuxResources, Spec};

use super::{load, CommandError, Global};
use crate::admission::{self, AdmissionError};
use crate::profile::gate::{self, Verb};
use crate::profile::StatNsLookup;

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

/// `ps --format json` prints the pids; `table` asks the host's `ps` for details.
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
            if pids.is_empty() {
                return Ok("PID USER TIME CMD".into());
            }
            // The caller's ps options (runc passes them through), else our columns.
            let mut args: Vec<String> = if a.ps_options.is_empty() {
                vec!["-o".into(), "pid,user,time,cmd".into()]
            } else {
                a.ps_options.clone()
            };
            let list: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
            args.extend(["-p".into(), list.join(",")]);
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .map_err(CommandError::io("failed to run ps"))?;
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        }
        other => Err(CommandError::Unsupported {
            what: "ps format",
            value: other.to_string(),
        }),
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
        if let Ok(s) = super::lifecycle::state(g, id) {
            states.push(s);
        }
    }
    match a.format.as_str() {
        "json" => Ok(serde_json::to_string(&states).unwrap_or_else(|_| "[]".into())),
        _ => {
            // runc's columns, then the profile (last, so column-position readers of
            // runc's table keep working).
            let mut out = String::from("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\tPROFILE");
            for s in states {
                out.push_str(&format!(
                    "\n{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    s.id,
                    s.pid,
                    s.status,
                    s.bundle.display(),
                    s.created,
                    s.owner,
                    s.profile.as_deref().unwrap_or("-")
                ));
            }
            Ok(out)
        }
    }
}

/// `events`: runc's event stream for one container. `--stats` prints one `stats`
/// event and exits; otherwise one every `--interval` (a Go duration) until the container
/// stops. Each event is one line, `{"type":"stats","id":ID,"data":STATS}` with
/// STATS in runc's `types.Stats` shape (see [`runc_stats`]), what go-runc decodes.
/// OOM notifications (runc's `oom` events) are not reported.
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
        libcgroups::common::AnyCgroupManager::V1(_) => runc_stats::CpuTimeUnit::v1_host(),
        _ => runc_stats::CpuTimeUnit::V2,
    };
    let mut first = true;
    loop {
        let status = load(g, id)?.status();
        if status == libcontainer::container::ContainerStatus::Stopped {
            if first {
                return Err(CommandError::container(id, "events")(
                    libcontainer::error::LibcontainerError::IncorrectStatus(status),
                ));
            }
            return Ok(());
        }
        first = false;
        let stats = manager.stats().map_err(|e| CommandError::Cgroup {
            id: id.to_string(),
            op: "read stats",
            source: Box::new(e),
        })?;
        let data = runc_stats::Stats::from_cgroup(&stats, unit);
        let event = serde_json::json!({"type": "stats", "id": id, "data": data});
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{event}").and_then(|()| out.flush()).is_err() {
            // The reader went away (containerd stopped listening): nothing to do.
            return Ok(());
        }
        if a.stats {
            return Ok(());
        }
        std::thread::sleep(a.interval);
    }
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
            // systemd: transient scopes over D-Bus on cgroup v2 hosts (refused on v1).
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
