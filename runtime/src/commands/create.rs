//! `stockade create`: admit, harden, then hand the hardened bundle to libcontainer.
//!
//! Order (nothing on the host changes before step 4):
//!   1. read and validate config.json;
//!   2. select the profile and evaluate the spec (refuse, or inject defaults);
//!   3. compile seccomp and Landlock plans;
//!   4. allocate the user namespace range and idmap the rootfs; write the net
//!      sysctls of a joined, host-owned network namespace from the host;
//!   5. write the hardened bundle under the state root;
//!   6. libcontainer creates namespaces, cgroups, mounts and the init process, whose
//!      last step is `StockadeExecutor`.
//!
//! A failure from step 4 on undoes what was made, in reverse order.

use std::path::Path;
use std::rc::Rc;

use libcgroups::common::CgroupSetup;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;

use super::recover;
use super::userns_setup::{self, UsernsRecord};
use super::{CommandError, Global};
use crate::admission::{self, Source};
use crate::bundle;
use crate::cgroup_placement::CgroupDriver;
use crate::executor::StockadeExecutor;
use crate::hardening;
use crate::profile::gate::RuntimeOpts;
use crate::state_root::{PlanRecord, StateRootError};

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
    create_loaded(g, opts, None)
}

/// [`create`] of `loaded`, the bundle `run` has just read (for `process.terminal`)
/// from `opts.bundle`: one read of config.json and one resolution of the rootfs
/// per `run`, and the terminal decided on the very spec that is created. `None`
/// reads it here.
pub fn create_loaded(
    g: &Global,
    opts: &CreateOpts<'_>,
    loaded: Option<bundle::LoadedBundle>,
) -> Result<(), CommandError> {
    let span = tracing::info_span!("create", id = opts.id);
    let _enter = span.enter();
    let started = std::time::Instant::now();

    // Reject a bad id before anything, with libcontainer's own rules.
    let builder = ContainerBuilder::new(opts.id.to_string(), SyscallType::default())
        .validate_id()
        .map_err(CommandError::container(opts.id, "validate id"))?;

    let loaded = match loaded {
        Some(loaded) => loaded,
        None => bundle::load(opts.bundle)?,
    };
    tracing::debug!("bundle loaded");
    g.root.refuse_runtime_state(&loaded.spec, &loaded.rootfs)?;
    // The profile judges the rootfs the container will really get: resolved
    // against the bundle, symlinks followed (`rootfs -> /` is the host's root).
    let mut judged = loaded.spec.clone();
    if let Some(mut root) = judged.root().clone() {
        root.set_path(loaded.rootfs.clone());
        judged.set_root(Some(root));
    }
    let admitted = admission::admit(
        Source {
            config: g.config.as_deref(),
            default_profile: g.default_profile.as_deref(),
            handler: g.handler.as_deref(),
            state_root: g.root.path(),
            cgroup_driver: g.cgroup_driver,
        },
        &judged,
        RuntimeOpts {
            preserve_fds: opts.preserve_fds,
            ..Default::default()
        },
        opts.id,
    )?;
    let systemd = admitted.placement.driver == CgroupDriver::Systemd;
    let plan = hardening::plan(
        &loaded,
        admitted.spec,
        admitted.landlock,
        admitted.landlock_abi,
    )?;
    tracing::debug!("hardening plan compiled");

    g.root.ensure()?;
    // One create or delete of this id at a time, from the existence check until
    // libcontainer has written the state or everything made here is undone: two
    // creates of one id can no longer both pass the check, so no create ever undoes
    // what another made. Released on return (not inherited by the init).
    let lock = g.root.lock(opts.id)?;
    let result = (move || -> Result<(), CommandError> {
        if g.root.exists(opts.id) {
            return Err(StateRootError::Exists(opts.id.to_string()).into());
        }
        let cgroup_setup = libcgroups::common::get_cgroup_setup().ok();
        let host_mountinfo = cgroup_setup
            .as_ref()
            .and_then(|setup| host_mount_table(setup, g.root.path()));
        // A process added to a frozen cgroup stops at once: the create would wait for
        // it forever. Refused as runc does, before anything is made.
        let freezer = cgroup_setup
            .as_ref()
            .and_then(|setup| crate::cgroup_freeze::host_freezer(setup, host_mountinfo.as_deref()));
        if let Some((mount, kind)) = freezer {
            if let Some(cgroup) =
                crate::cgroup_freeze::frozen(&mount, &admitted.placement.cgroup, kind)?
            {
                return Err(CommandError::CgroupFrozen { cgroup });
            }
        }
        if recover::pending(g, opts.id) {
            // A create of this id was killed (its lock died with it): reclaim first.
            recover::reclaim(g, opts.id)?;
        }
        // Intent before the first side effect, so a kill from here on leaks nothing.
        recover::begin(g, opts.id)?;

        // Side effects start here; each later failure runs `undo`.
        let decided = Decided {
            bind_sources: &admitted.bind_sources,
            userns: admitted.userns.as_ref(),
            profile: &admitted.profile,
            policy: &admitted.policy,
            systemd,
            started,
            audit: &admitted.audit,
            host_mountinfo,
        };
        let result = make(g, opts, builder, plan, &decided);
        // Done: the container exists, or everything made was undone.
        recover::end(g, opts.id);
        result
    })();
    // A failed create leaves no container, and then no lock file either.
    g.root.release_lock(opts.id, lock);
    result
}

/// The host's cgroup v1 mount table, found once per create and only where the
/// cgroup hierarchies must be found in it: on cgroup v1 (legacy or hybrid; v2 has
/// its one hierarchy at a fixed path, so nothing is read). The freezer check finds
/// the freezer in it, and libcontainer's processes (the cgroup manager of the
/// process that joins the cgroup, the init's cgroup v1 mounts: forks of this
/// process a moment later) the other hierarchies, instead of reading the table
/// again. Its cgroup lines come from the state root's snapshot while that still
/// describes this mount namespace ([`crate::cgroup_mounts`]). `None` if it cannot
/// be read: the freezer check then knows no freezer and libcontainer reads the
/// table itself (and fails there, naming the cause, if it still cannot).
fn host_mount_table(setup: &CgroupSetup, state_root: &Path) -> Option<Rc<str>> {
    match setup {
        CgroupSetup::Unified => None,
        CgroupSetup::Legacy | CgroupSetup::Hybrid => crate::cgroup_mounts::host_table(state_root),
    }
}

/// What admission decided that [`make`] applies, besides the plan.
struct Decided<'a> {
    /// The bind sources admission opened and judged, held open until the end.
    bind_sources: &'a crate::bind_source::CheckedSources,
    userns: Option<&'a crate::profile::UsernsRequest>,
    profile: &'a str,
    /// The admitting profile, recorded so exec and update are judged by it.
    policy: &'a crate::profile::Profile,
    systemd: bool,
    started: std::time::Instant,
    /// Audit settings of the node config admission read.
    audit: &'a crate::audit_log::AuditConfig,
    /// The host's mountinfo ([`host_mount_table`], cgroup v1): the container's
    /// processes find the cgroup hierarchies in it. This create's own, never kept
    /// for a later command (a container may be deleted days later).
    host_mountinfo: Option<Rc<str>>,
}

/// The side effects of [`create`], in order; a failure undoes what was made.
fn make(
    g: &Global,
    opts: &CreateOpts<'_>,
    builder: ContainerBuilder,
    mut plan: hardening::Plan,
    decided: &Decided<'_>,
) -> Result<(), CommandError> {
    // What the init must find behind each bind source: the objects admitted.
    let mut binds = decided.bind_sources.identities();
    let userns = match decided.userns {
        Some(req) => Some(userns_setup::setup(
            opts.id,
            &mut plan.spec,
            req,
            &g.userns_db,
            g.root.path(),
            &g.root.rootfs_dir(),
            userns_setup::Binds {
                checked: decided.bind_sources,
                identities: &mut binds,
            },
        )?),
        // The spec brings its own mappings: those inside the pool are reserved.
        None => match decided.policy.user_namespace.as_ref() {
            Some(u) => userns_setup::reserve_explicit(
                opts.id,
                &plan.spec,
                u.host_range,
                &g.userns_db,
                g.root.path(),
            )?,
            None => None,
        },
    };
    tracing::debug!("user namespace ready");
    // A joined network namespace the host owns: its net sysctls are written from
    // here, not by the init inside the container's user namespace (netns_sysctl).
    if let Err(e) = host_side_net_sysctls(&mut plan.spec) {
        if let Some(rec) = &userns {
            userns_setup::teardown(opts.id, rec);
        }
        return Err(e);
    }
    if let Some(range) = userns.as_ref().and_then(|u| u.range) {
        // The caller chowned our stdio pipes for the spec it wrote, which had no
        // mapping; the container's root is this range's first id.
        crate::userns::stdio::chown_inherited_pipes(range);
    }
    let undo = |g: &Global, userns: Option<&UsernsRecord>| {
        if let Err(e) = g.root.remove_plan(opts.id) {
            tracing::warn!(error = %e, "failed to remove the hardened bundle");
        }
        if let Some(rec) = userns {
            userns_setup::teardown(opts.id, rec);
        }
    };
    let record = PlanRecord {
        bundle: std::fs::canonicalize(opts.bundle).unwrap_or_else(|_| opts.bundle.to_path_buf()),
        landlock: plan.landlock.clone(),
        profile: Some(decided.profile.to_string()),
        policy: Some(decided.policy.clone()),
        userns: userns.clone(),
    };
    let plan_dir = match g.root.write_plan(opts.id, &plan.spec, &record) {
        Ok(dir) => dir,
        Err(e) => {
            undo(g, userns.as_ref());
            return Err(e.into());
        }
    };

    let executor = StockadeExecutor {
        seccomp: plan.seccomp.clone(),
        landlock: plan.landlock_domains.clone(),
        binds,
    };
    let result = builder
        .with_root_path(g.root.path())
        .and_then(|b| b.with_pid_file(opts.pid_file))
        .map(|b| {
            b.with_console_socket(opts.console_socket)
                .with_preserved_fds(opts.preserve_fds)
                .with_executor(executor)
                .as_init(&plan_dir)
                // Hooks get the caller's bundle in their state, as `state` reports
                // it: the hardened bundle is ours, not theirs.
                .with_hook_bundle(record.bundle.clone())
                .with_systemd(decided.systemd)
                .with_detach(opts.detach)
                .with_no_pivot(opts.no_pivot)
        })
        .map(|b| match decided.host_mountinfo.clone() {
            Some(text) => b.with_host_mountinfo(text),
            None => b,
        })
        .and_then(|b| b.build());
    match result {
        Ok(_) => {
            tracing::debug!("container created");
            crate::audit_log::record_create_time(
                decided.audit,
                decided.started.elapsed().as_secs_f64(),
            );
            Ok(())
        }
        Err(source) => {
            // libcontainer removes its own state dir and cgroup on a failed create.
            undo(g, userns.as_ref());
            Err(CommandError::Container {
                id: opts.id.to_string(),
                op: "create",
                source: Box::new(source),
            })
        }
    }
}

/// Plan and write the sysctls of a joined, host-owned network namespace
/// ([`crate::netns_sysctl`]), taking them out of the spec the init applies.
fn host_side_net_sysctls(spec: &mut oci_spec::runtime::Spec) -> Result<(), CommandError> {
    let Some(netns) =
        crate::netns_sysctl::joined_netns(spec).filter(|_| crate::netns_sysctl::has_userns(spec))
    else {
        return Ok(());
    };
    let host_owned =
        crate::netns_sysctl::owned_by_our_userns(&netns).map_err(CommandError::io(format!(
            "cannot find the owner of network namespace {}",
            netns.display()
        )))?;
    match crate::netns_sysctl::plan(spec, host_owned) {
        Some(p) => crate::netns_sysctl::apply(&p).map_err(CommandError::NetnsSysctl),
        None => Ok(()),
    }
}
