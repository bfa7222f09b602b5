//! `stockade create`: validate, harden, then hand the hardened bundle to libcontainer.
//!
//! Order (no side effect before step 4):
//!   1. read and validate config.json;
//!   2. evaluate the hardening profile (refuse, or inject defaults);
//!   3. compile seccomp and Landlock plans;
//!   4. write the hardened bundle under the state root;
//!   5. libcontainer creates namespaces, cgroups, mounts and the init process, whose
//!      last step is `StockadeExecutor`.
//!
//! Any failure from step 4 on removes what was made.

use std::path::Path;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;

use super::{CommandError, Global};
use crate::bundle;
use crate::executor::StockadeExecutor;
use crate::hardening;
use crate::state_root::PlanRecord;

/// Options of `create` and `run` that shape the new container.
#[derive(Debug, Clone)]
pub struct CreateOpts<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    /// `run` in the foreground keeps the init as our child to wait for it.
    pub detach: bool,
}

pub fn create(g: &Global, opts: &CreateOpts<'_>) -> Result<(), CommandError> {
    let span = tracing::info_span!("create", id = opts.id);
    let _enter = span.enter();

    // Reject a bad id before anything, with libcontainer's own rules.
    let builder = ContainerBuilder::new(opts.id.to_string(), SyscallType::default())
        .validate_id()
        .map_err(CommandError::container(opts.id, "validate id"))?;

    let loaded = bundle::load(opts.bundle)?;
    let plan = hardening::plan(&loaded, loaded.spec.clone(), None)?;

    g.root.ensure()?;
    if g.root.exists(opts.id) {
        return Err(crate::state_root::StateRootError::Exists(opts.id.to_string()).into());
    }
    let record = PlanRecord {
        bundle: std::fs::canonicalize(opts.bundle).unwrap_or_else(|_| opts.bundle.to_path_buf()),
        landlock: plan.landlock.clone(),
        profile: None,
    };
    let plan_dir = g.root.write_plan(opts.id, &plan.spec, &record)?;

    let executor = StockadeExecutor {
        seccomp: plan.seccomp.clone(),
        landlock: plan.landlock.clone(),
    };
    let result = builder
        .with_root_path(g.root.path())
        .and_then(|b| b.with_pid_file(opts.pid_file))
        .map(|b| {
            b.with_console_socket(opts.console_socket)
                .with_preserved_fds(opts.preserve_fds)
                .with_executor(executor)
                .as_init(&plan_dir)
                .with_systemd(false)
                .with_detach(opts.detach)
                .with_no_pivot(opts.no_pivot)
        })
        .and_then(|b| b.build());
    match result {
        Ok(_) => {
            tracing::debug!("container created");
            Ok(())
        }
        Err(source) => {
            // libcontainer removes its own state dir and cgroup on a failed create;
            // the hardened bundle is ours to remove.
            if let Err(e) = g.root.remove_plan(opts.id) {
                tracing::warn!(error = %e, "failed to remove the hardened bundle");
            }
            Err(CommandError::Container {
                id: opts.id.to_string(),
                op: "create",
                source: Box::new(source),
            })
        }
    }
}
