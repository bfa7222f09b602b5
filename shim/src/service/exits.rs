//! Exit and pid bookkeeping of the task service: which pid is whose, exits that
//! arrive before their pid is known, and the TaskExit event once a process is
//! marked exited. Request handling is in the parent module.

use std::collections::{BTreeMap, HashMap};
use std::sync::MutexGuard;

use containerd_shim::protos::{events::task::TaskExit, topics};
use log::{debug, warn};

use super::{now, ProcTable, TaskService};
use crate::instance::Instance;
use crate::state::Op;

/// Who a pid belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Owner {
    pub(super) id: String,
    pub(super) exec_id: String,
}

/// Pids of our processes, and exits that arrived before their pid was known (a
/// short-lived exec can exit before `exec --pid-file` returns). Each exit gets a
/// sequence number so a stale exit of a reused pid is never matched.
#[derive(Default)]
pub(super) struct ExitTable {
    seq: u64,
    owners: HashMap<u32, Owner>,
    unclaimed: BTreeMap<u64, (u32, i32)>,
}

const MAX_UNCLAIMED: usize = 1024;

impl ExitTable {
    pub(super) fn seq(&self) -> u64 {
        self.seq
    }

    /// Records an exit; returns its owner if the pid is registered.
    pub(super) fn exit(&mut self, pid: u32, code: i32) -> Option<Owner> {
        self.seq += 1;
        if let Some(owner) = self.owners.remove(&pid) {
            return Some(owner);
        }
        self.unclaimed.insert(self.seq, (pid, code));
        while self.unclaimed.len() > MAX_UNCLAIMED {
            self.unclaimed.pop_first();
        }
        None
    }

    /// Registers `pid`, spawned after sequence `since`; returns its exit code if it
    /// already exited.
    pub(super) fn register(&mut self, pid: u32, owner: Owner, since: u64) -> Option<i32> {
        let found = self
            .unclaimed
            .range(since + 1..)
            .find(|(_, (p, _))| *p == pid)
            .map(|(seq, (_, code))| (*seq, *code));
        if let Some((seq, code)) = found {
            self.unclaimed.remove(&seq);
            return Some(code);
        }
        self.owners.insert(pid, owner);
        None
    }
}

impl<I: Instance> TaskService<I> {
    pub(super) fn exits(&self) -> MutexGuard<'_, ExitTable> {
        self.exits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by the exit dispatcher for every reaped child.
    pub fn process_exit(&self, pid: i32, code: i32) {
        let Ok(upid) = u32::try_from(pid) else { return };
        let owner = self.exits().exit(upid, code);
        if let Some(owner) = owner {
            if owner.exec_id.is_empty() {
                self.init_exited(&owner.id);
            }
            self.apply_exit(&owner, upid, code);
        }
    }

    /// Lets the instance sweep what an exited init left (shared pid namespace)
    /// before the exit is published: a kubelet that sees the exit deletes the task
    /// and waits for its output to close, which a leftover child would hold open.
    fn init_exited(&self, id: &str) {
        let Ok(c) = self.container(id) else { return };
        if let Err(e) = c.instance.init_exited() {
            warn!(
                "{id}: killing what the init left: {}",
                crate::error::chain(&e)
            );
        }
    }

    pub(super) fn apply_exit(&self, owner: &Owner, pid: u32, code: i32) {
        let Ok(c) = self.container(&owner.id) else {
            return;
        };
        let mut procs = c.lock();
        self.exit_locked(&mut procs, owner, pid, code);
        drop(procs);
        c.exited.notify_all();
    }

    /// Marks a process exited and publishes TaskExit; the caller holds the container lock.
    pub(super) fn exit_locked(&self, procs: &mut ProcTable, owner: &Owner, pid: u32, code: i32) {
        let Ok(p) = procs.get_mut(&owner.id, &owner.exec_id) else {
            return;
        };
        let Ok(next) = p.status.after(Op::Exit, "process") else {
            return;
        };
        let at = now();
        p.status = next;
        p.exit = Some((code as u32, at.clone()));
        debug!(
            "{}/{} pid {} exited with {}",
            owner.id, owner.exec_id, pid, code
        );
        let id = if owner.exec_id.is_empty() {
            owner.id.clone()
        } else {
            owner.exec_id.clone()
        };
        self.events.publish(
            topics::TASK_EXIT_EVENT_TOPIC,
            Box::new(TaskExit {
                container_id: owner.id.clone(),
                id,
                pid,
                exit_status: code as u32,
                exited_at: Some(at).into(),
                ..Default::default()
            }),
        );
    }

    /// Registers a pid under the container lock; returns the exit code if the process
    /// already exited (the caller reports it after its own start event).
    pub(super) fn register_pid(&self, owner: &Owner, pid: u32, since: u64) -> Option<i32> {
        self.exits().register(pid, owner.clone(), since)
    }
}
