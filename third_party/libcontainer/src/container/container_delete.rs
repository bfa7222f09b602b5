use std::fs;

use libcgroups::common::CgroupManager;
use libcgroups::{self};
use nix::sys::signal;

use super::{Container, ContainerStatus};
use crate::config::YoukiConfig;
use crate::error::LibcontainerError;
use crate::hooks;
use crate::process::intel_rdt::cleanup_intel_rdt;

impl Container {
    /// Deletes the container
    ///
    /// # Example
    ///
    /// ```no_run
    /// use libcontainer::container::builder::ContainerBuilder;
    /// use libcontainer::syscall::syscall::SyscallType;
    ///
    /// # fn main() -> anyhow::Result<()> {
    /// let mut container = ContainerBuilder::new(
    ///     "74f1a4cb3801".to_owned(),
    ///     SyscallType::default(),
    /// )
    /// .as_init("/var/run/docker/bundle")
    /// .build()?;
    ///
    /// container.delete(true)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn delete(&mut self, force: bool) -> Result<(), LibcontainerError> {
        self.delete_with_host_mountinfo(force, None)
    }

    /// [stockade patch] [`Container::delete`], given the cgroup v1 mount table
    /// (the text of this process's `/proc/self/mountinfo`, or at least its cgroup
    /// lines) when the caller already has it: the cgroup v1 manager takes the
    /// hierarchies' mount points from it instead of reading the whole table
    /// (every mount of the host rendered by the kernel) again. Ignored on v2.
    pub fn delete_with_host_mountinfo(
        &mut self,
        force: bool,
        mountinfo: Option<&str>,
    ) -> Result<(), LibcontainerError> {
        self.refresh_status()?;

        tracing::debug!("container status: {:?}", self.status());

        // Check if container is allowed to be deleted based on container status.
        match self.status() {
            ContainerStatus::Stopped => {}
            ContainerStatus::Created => {
                // Here, we differ from the OCI spec, but matches the same
                // behavior as `runc` and `crun`. The OCI spec does not allow
                // deletion of status `created` without `force` flag. But both
                // `runc` and `crun` allows deleting `created`. Therefore we
                // decided to follow `runc` and `crun`.
                self.do_kill(signal::Signal::SIGKILL, true)?;
                self.set_status(ContainerStatus::Stopped).save()?;
            }
            ContainerStatus::Creating | ContainerStatus::Running | ContainerStatus::Paused => {
                // Containers can't be deleted while in these status, unless
                // force flag is set. In the force case, we need to clean up any
                // processes associated with containers.
                if force {
                    self.do_kill(signal::Signal::SIGKILL, true)?;
                    self.set_status(ContainerStatus::Stopped).save()?;
                } else {
                    tracing::error!(
                        id = ?self.id(),
                        status = ?self.status(),
                        "delete requires the container state to be stopped or created",
                    );
                    return Err(LibcontainerError::IncorrectStatus(self.status()));
                }
            }
        }

        // Once reached here, the container is verified that it can be deleted.
        debug_assert!(self.status().can_delete());

        if let Err(err) = cleanup_intel_rdt(
            self.intel_rdt_dir().map(|p| p.as_path()),
            self.intel_rdt_monitoring_dir().map(|p| p.as_path()),
            self.clean_up_intel_rdt_subdirectory(),
            self.id(),
        ) {
            tracing::warn!("failed to cleanup intel rdt due to: {err:?}, continue to delete");
        }

        if self.root.exists() {
            match YoukiConfig::load(&self.root) {
                Ok(config) => {
                    tracing::debug!("config: {:?}", config);

                    // remove the cgroup created for the container
                    // check https://man7.org/linux/man-pages/man7/cgroups.7.html
                    // creating and removing cgroups section for more information on cgroups
                    let cmanager = libcgroups::common::create_cgroup_manager_with_mountinfo(
                        libcgroups::common::CgroupConfig {
                            cgroup_path: config.cgroup_path.to_owned(),
                            systemd_cgroup: self.systemd(),
                            container_name: self.id().to_string(),
                        },
                        mountinfo,
                    )?;
                    // [stockade patch] SIGKILLed processes take a while to exit under
                    // load (a pid namespace's teardown above all), and remove()'s own
                    // retries (4 x 100 ms) then give up with EBUSY: wait for the
                    // cgroup to empty first, bounded.
                    wait_for_empty_cgroup(&cmanager);
                    cmanager.remove().map_err(|err| {
                        tracing::error!(cgroup_path = ?config.cgroup_path, "failed to remove cgroup due to: {err:?}");
                        err
                    })?;

                    // [stockade patch] The OCI runtime spec: "If any poststop hook
                    // fails, the runtime MUST log a warning, but the remaining hooks
                    // and lifecycle continue as if the hook had succeeded." A failing
                    // hook made every delete fail, forever.
                    let poststop = config.hooks.as_ref().and_then(|h| h.poststop().as_ref());
                    for hook in poststop.into_iter().flatten() {
                        let one = vec![hook.clone()];
                        if let Err(err) =
                            hooks::run_hooks(Some(&one), Some(&self.state), None, None, None)
                        {
                            tracing::warn!(
                                hook = ?hook.path(),
                                err = %err,
                                "poststop hook failed; deleting the container anyway"
                            );
                        }
                    }
                }
                Err(err) => {
                    // There is a brief window where the container state is
                    // created, but the container config is not yet generated
                    // from the OCI spec. In this case, we assume as if we
                    // successfully deleted the config and moving on.
                    tracing::warn!(
                        "skipping loading youki config due to: {err:?}, continue to delete"
                    );
                }
            }

            // remove the directory storing container state
            tracing::debug!("remove dir {:?}", self.root);
            fs::remove_dir_all(&self.root).map_err(|err| {
                tracing::error!(?err, path = ?self.root, "failed to remove container dir");
                LibcontainerError::OtherIO(err)
            })?;
        }

        Ok(())
    }
}

/// [stockade patch] Wait (at most 5 s) until no process is left in the cgroup.
pub fn wait_for_empty_cgroup<C: CgroupManager>(cmanager: &C) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        match cmanager.get_all_pids() {
            Ok(pids) if !pids.is_empty() => {
                for pid in pids {
                    let _ = signal::kill(pid, signal::Signal::SIGKILL);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            _ => return,
        }
    }
}
