//! The real [`Instance`]: a container driven by the runc-compatible runtime binary.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use containerd_shim::protos::protobuf::well_known_types::any::Any;
use log::{info, warn};
use nix::{sys::signal::kill, unistd::Pid};

use crate::{
    error::{Error, Result},
    instance::{CreateConfig, ExecConfig, Instance, OomNotify},
    options::RuntimeOptions,
    rootfs,
    runtime_cli::{Reaping, RuntimeCli},
    stdio::{container_root_owner, PendingIo, ProcessIo},
};

/// How long Delete waits for a process's output to drain (as runc's shim).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

pub struct CliFactory {
    pub namespace: String,
}

pub struct CliInstance {
    id: String,
    bundle: PathBuf,
    cli: RuntimeCli,
    rootfs_mounted: bool,
    init_io: ProcessIo,
    execs: Mutex<HashMap<String, ProcessIo>>,
    /// The container shares a pid namespace: kill the rest when the init exits.
    kill_all_on_exit: bool,
}

/// containerd's `ShouldKillAllOnExit`: false only when the spec asks for a new pid
/// namespace (the kernel then kills everything with its init); true when it joins
/// one by path (a pod's shared namespace) or has none (the host's), and when the
/// spec cannot be read (the safe side).
pub fn kill_all_on_exit(config_json: &[u8]) -> bool {
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(config_json) else {
        return true;
    };
    let own_pid_ns = spec
        .pointer("/linux/namespaces")
        .and_then(|n| n.as_array())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n["type"] == "pid"
                    && n.get("path")
                        .and_then(|p| p.as_str())
                        .is_none_or(str::is_empty)
            })
        });
    !own_pid_ns
}

fn runtime(op: &'static str) -> impl FnOnce(crate::runtime_cli::RuntimeError) -> Error {
    move |source| Error::Runtime { op, source }
}

fn read_pid(path: &Path) -> Result<u32> {
    let text =
        std::fs::read_to_string(path).map_err(Error::io(format!("read {}", path.display())))?;
    text.trim()
        .parse()
        .map_err(|_| Error::InvalidRequest(format!("bad pid file {}: {text:?}", path.display())))
}

/// Cleans up after a container whose shim is gone or whose create failed: forced
/// runtime delete and rootfs unmount. Used by the `delete` shim action too.
pub fn cleanup(cli: &RuntimeCli, id: &str, bundle: &Path) -> Result<()> {
    match cli.delete(id, true) {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => warn!("{id}: forced delete: {}", crate::error::chain(&e)),
    }
    rootfs::unmount_all(&bundle.join("rootfs"))
}

impl Instance for CliInstance {
    type Factory = CliFactory;

    fn create(factory: &CliFactory, cfg: &CreateConfig) -> Result<(Self, u32)> {
        let opts = RuntimeOptions::from_any(cfg.options.as_ref())
            .map_err(|e| Error::InvalidRequest(crate::error::chain(&e)))?;
        opts.store(&cfg.bundle)
            .map_err(|e| Error::InvalidRequest(crate::error::chain(&e)))?;
        let cli = RuntimeCli::new(
            &opts,
            &factory.namespace,
            Some(&cfg.bundle),
            Reaping::Monitor,
        );
        let rootfs_dir = cfg.bundle.join("rootfs");
        let rootfs_mounted = !cfg.rootfs.is_empty();
        if rootfs_mounted {
            std::fs::create_dir_all(&rootfs_dir)
                .map_err(Error::io(format!("create {}", rootfs_dir.display())))?;
            rootfs::mount_all(&cfg.rootfs, &rootfs_dir)?;
        }
        let created = (|| {
            let (pending, stdio) =
                PendingIo::prepare(&cfg.stdio, container_root_owner(&cfg.bundle))?;
            let pid_file = cfg.bundle.join("init.pid");
            cli.create(
                &cfg.id,
                &cfg.bundle,
                &pid_file,
                pending.console_socket().as_deref(),
                stdio,
            )
            .map_err(runtime("create"))?;
            let io = pending.finish()?;
            Ok((io, read_pid(&pid_file)?))
        })();
        // One line per decision in containerd's own log, admitted or refused.
        if let Some(summary) = cli.decision_summary(&cfg.id) {
            info!("{summary}");
        }
        match created {
            Ok((init_io, pid)) => Ok((
                Self {
                    id: cfg.id.clone(),
                    bundle: cfg.bundle.clone(),
                    cli,
                    rootfs_mounted,
                    init_io,
                    execs: Mutex::new(HashMap::new()),
                    kill_all_on_exit: kill_all_on_exit(
                        &std::fs::read(cfg.bundle.join("config.json")).unwrap_or_default(),
                    ),
                },
                pid,
            )),
            Err(e) => {
                // A refused container leaves nothing behind.
                if let Err(c) = cleanup(&cli, &cfg.id, &cfg.bundle) {
                    warn!(
                        "{}: cleanup after failed create: {}",
                        cfg.id,
                        crate::error::chain(&c)
                    );
                }
                Err(e)
            }
        }
    }

    fn start(&self) -> Result<()> {
        self.cli.start(&self.id).map_err(runtime("start"))
    }

    fn kill(&self, signal: u32, all: bool) -> Result<()> {
        self.cli
            .kill(&self.id, signal, all)
            .map_err(runtime("kill"))
    }

    fn delete(&self) -> Result<()> {
        self.init_io.drain.wait(DRAIN_TIMEOUT);
        match self.cli.delete(&self.id, false) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(runtime("delete")(e)),
        }
        if self.rootfs_mounted {
            rootfs::unmount_all(&self.bundle.join("rootfs"))?;
        }
        Ok(())
    }

    fn pause(&self) -> Result<()> {
        self.cli.pause(&self.id).map_err(runtime("pause"))
    }

    fn resume(&self) -> Result<()> {
        self.cli.resume(&self.id).map_err(runtime("resume"))
    }

    fn pids(&self) -> Result<Vec<u32>> {
        self.cli.ps(&self.id).map_err(runtime("ps"))
    }

    fn update(&self, resources: &[u8]) -> Result<()> {
        self.cli
            .update(&self.id, resources.to_vec())
            .map_err(runtime("update"))
    }

    fn stats(&self, pid: u32) -> Result<Any> {
        crate::stats::collect(pid)
    }

    fn exec(&self, cfg: &ExecConfig) -> Result<u32> {
        let process_file = self.bundle.join(format!("{}-process.json", cfg.exec_id));
        let pid_file = self.bundle.join(format!("{}.pid", cfg.exec_id));
        std::fs::write(&process_file, &cfg.process_json)
            .map_err(Error::io(format!("write {}", process_file.display())))?;
        let result = (|| {
            let (pending, stdio) =
                PendingIo::prepare(&cfg.stdio, container_root_owner(&self.bundle))?;
            self.cli
                .exec(
                    &self.id,
                    &process_file,
                    &pid_file,
                    pending.console_socket().as_deref(),
                    stdio,
                )
                .map_err(runtime("exec"))?;
            let io = pending.finish()?;
            let pid = read_pid(&pid_file)?;
            Ok((io, pid))
        })();
        let _ = std::fs::remove_file(&process_file);
        let _ = std::fs::remove_file(&pid_file);
        let (io, pid) = result?;
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cfg.exec_id.clone(), io);
        Ok(pid)
    }

    fn kill_exec(&self, pid: u32, signal: u32) -> Result<()> {
        let sig = nix::sys::signal::Signal::try_from(signal as i32)
            .map_err(|_| Error::InvalidRequest(format!("invalid signal {signal}")))?;
        kill(Pid::from_raw(pid as i32), sig).map_err(Error::sys(format!("kill pid {pid}")))
    }

    fn delete_exec(&self, exec_id: &str) -> Result<()> {
        let io = self
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(exec_id);
        if let Some(io) = io {
            io.drain.wait(DRAIN_TIMEOUT);
        }
        Ok(())
    }

    fn resize_pty(&self, exec_id: Option<&str>, width: u32, height: u32) -> Result<()> {
        match exec_id {
            None => self.init_io.resize(width, height),
            Some(e) => match self.execs.lock().unwrap_or_else(|p| p.into_inner()).get(e) {
                Some(io) => io.resize(width, height),
                None => Ok(()),
            },
        }
    }

    fn close_stdin(&self, exec_id: Option<&str>) -> Result<()> {
        match exec_id {
            None => self.init_io.close_stdin(),
            Some(e) => {
                if let Some(io) = self.execs.lock().unwrap_or_else(|p| p.into_inner()).get(e) {
                    io.close_stdin();
                }
            }
        }
        Ok(())
    }

    fn watch_oom(&self, pid: u32, notify: OomNotify) -> Result<()> {
        crate::oom::watch(pid, notify)
    }

    fn init_exited(&self) -> Result<()> {
        if !self.kill_all_on_exit {
            return Ok(());
        }
        match self.cli.kill(&self.id, libc::SIGKILL as u32, true) {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(runtime("kill --all")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::kill_all_on_exit;

    #[test]
    fn kill_all_on_exit_unless_own_pid_namespace() {
        let own = br#"{"linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}"#;
        let pod = br#"{"linux":{"namespaces":[{"type":"pid","path":"/proc/42/ns/pid"}]}}"#;
        let host = br#"{"linux":{"namespaces":[{"type":"mount"}]}}"#;
        let empty_path = br#"{"linux":{"namespaces":[{"type":"pid","path":""}]}}"#;
        assert!(!kill_all_on_exit(own));
        assert!(!kill_all_on_exit(empty_path));
        assert!(kill_all_on_exit(pod));
        assert!(kill_all_on_exit(host));
        assert!(kill_all_on_exit(b"not json"));
    }
}
