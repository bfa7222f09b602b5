//! The task service: containerd's Task API over any [`Instance`], with the state machine
//! and events in the order containerd requires (TaskCreate, TaskStart, TaskExit,
//! TaskDelete; TaskExecAdded, TaskExecStarted). This module handles the requests;
//! `exits` keeps the pids and exits of our processes and publishes TaskExit.
//!
//! Locking: a container's state lock is held across runtime calls that start a
//! process (start, exec start) and while its start event is published. The exit
//! dispatcher takes the same lock before publishing an exit, so an exit can never be
//! reported before the start it follows.

use std::{
    collections::HashMap,
    sync::{Arc, Condvar, Mutex, MutexGuard},
};

use containerd_shim::{
    api::{
        CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse,
        DeleteRequest, DeleteResponse, ExecProcessRequest, KillRequest, PauseRequest, PidsRequest,
        PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest, StartRequest,
        StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse, UpdateTaskRequest,
        WaitRequest, WaitResponse,
    },
    protos::{
        events::task::{
            TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskIO, TaskOOM, TaskPaused,
            TaskResumed, TaskStart,
        },
        protobuf::well_known_types::timestamp::Timestamp,
        shim::shim::CheckpointTaskRequest,
        topics,
        ttrpc::{self, TtrpcContext},
        types::task::ProcessInfo,
    },
    ExitSignal, Task,
};
use log::{debug, info, warn};

use crate::{
    error::{Error, Result},
    instance::{CreateConfig, ExecConfig, Instance, StdioPaths},
    named::Named,
    state::{Op, Status},
};

mod exits;

use exits::{ExitTable, Owner};

type Empty = containerd_shim::protos::protobuf::well_known_types::empty::Empty;

/// Where events go; the real one forwards to containerd in order.
pub trait EventSink: Send + Sync + 'static {
    fn publish(&self, topic: &'static str, event: Box<dyn Named>);
}

fn now() -> Timestamp {
    containerd_shim::util::timestamp().unwrap_or_default()
}

#[derive(Debug, Clone)]
struct Proc {
    pid: u32,
    status: Status,
    exit: Option<(u32, Timestamp)>,
    stdio: StdioPaths,
    /// Set for exec processes until they are started.
    exec: Option<ExecConfig>,
}

impl Proc {
    fn new(stdio: StdioPaths) -> Self {
        Self {
            pid: 0,
            status: Status::Created,
            exit: None,
            stdio,
            exec: None,
        }
    }
}

struct ProcTable {
    init: Proc,
    execs: HashMap<String, Proc>,
}

impl ProcTable {
    fn get_mut(&mut self, id: &str, exec_id: &str) -> Result<&mut Proc> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        self.execs
            .get_mut(exec_id)
            .ok_or_else(|| Error::ExecNotFound {
                id: id.into(),
                exec_id: exec_id.into(),
            })
    }
}

struct Container<I> {
    id: String,
    bundle: String,
    instance: I,
    procs: Mutex<ProcTable>,
    exited: Condvar,
}

impl<I> Container<I> {
    fn lock(&self) -> MutexGuard<'_, ProcTable> {
        self.procs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct TaskService<I: Instance> {
    factory: I::Factory,
    events: Arc<dyn EventSink>,
    containers: Mutex<HashMap<String, Arc<Container<I>>>>,
    exits: Mutex<ExitTable>,
    shutdown: Arc<ExitSignal>,
}

impl<I: Instance> TaskService<I> {
    pub fn new(factory: I::Factory, events: Arc<dyn EventSink>, shutdown: Arc<ExitSignal>) -> Self {
        Self {
            factory,
            events,
            containers: Mutex::new(HashMap::new()),
            exits: Mutex::new(ExitTable::default()),
            shutdown,
        }
    }

    fn containers(&self) -> MutexGuard<'_, HashMap<String, Arc<Container<I>>>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn container(&self, id: &str) -> Result<Arc<Container<I>>> {
        self.containers()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::ContainerNotFound(id.into()))
    }

    fn do_create(&self, req: CreateTaskRequest) -> Result<CreateTaskResponse> {
        if !req.checkpoint.is_empty() {
            return Err(Error::NotImplemented { op: "restore" });
        }
        if self.containers().contains_key(&req.id) {
            return Err(Error::ContainerExists(req.id));
        }
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let cfg = CreateConfig {
            id: req.id.clone(),
            bundle: req.bundle.clone().into(),
            rootfs: req.rootfs.clone(),
            stdio: stdio.clone(),
            options: req.options.clone().into_option(),
        };
        let since = self.exits().seq();
        info!("create {}", req.id);
        let (instance, pid) = I::create(&self.factory, &cfg)?;
        let container = Arc::new(Container {
            id: req.id.clone(),
            bundle: req.bundle.clone(),
            instance,
            procs: Mutex::new(ProcTable {
                init: Proc {
                    pid,
                    ..Proc::new(stdio)
                },
                execs: HashMap::new(),
            }),
            exited: Condvar::new(),
        });
        {
            let mut procs = container.lock();
            self.containers()
                .insert(req.id.clone(), Arc::clone(&container));
            let owner = Owner {
                id: req.id.clone(),
                exec_id: String::new(),
            };
            let early = self.register_pid(&owner, pid, since);
            self.events.publish(
                topics::TASK_CREATE_EVENT_TOPIC,
                Box::new(TaskCreate {
                    container_id: req.id.clone(),
                    bundle: req.bundle.clone(),
                    rootfs: req.rootfs.clone(),
                    io: Some(TaskIO {
                        stdin: req.stdin.clone(),
                        stdout: req.stdout.clone(),
                        stderr: req.stderr.clone(),
                        terminal: req.terminal,
                        ..Default::default()
                    })
                    .into(),
                    pid,
                    ..Default::default()
                }),
            );
            if let Some(code) = early {
                self.exit_locked(&mut procs, &owner, pid, code);
            }
        }
        let events = Arc::clone(&self.events);
        let id = req.id.clone();
        if let Err(e) = container.instance.watch_oom(
            pid,
            Box::new(move || {
                events.publish(
                    topics::TASK_OOM_EVENT_TOPIC,
                    Box::new(TaskOOM {
                        container_id: id.clone(),
                        ..Default::default()
                    }),
                )
            }),
        ) {
            warn!(
                "{}: cannot watch for OOM: {}",
                req.id,
                crate::error::chain(&e)
            );
        }
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    fn do_start(&self, req: StartRequest) -> Result<StartResponse> {
        let c = self.container(&req.id)?;
        let mut procs = c.lock();
        let what = describe(&req.id, &req.exec_id);
        let p = procs.get_mut(&req.id, &req.exec_id)?;
        let next = p.status.after(Op::Start, &what)?;
        if req.exec_id.is_empty() {
            c.instance.start()?;
            let pid = p.pid;
            p.status = next;
            self.events.publish(
                topics::TASK_START_EVENT_TOPIC,
                Box::new(TaskStart {
                    container_id: req.id.clone(),
                    pid,
                    ..Default::default()
                }),
            );
            drop(procs);
            return Ok(StartResponse {
                pid,
                ..Default::default()
            });
        }
        let exec = p
            .exec
            .clone()
            .ok_or_else(|| Error::InvalidRequest(format!("{what} has no process spec")))?;
        if procs.init.status != Status::Running {
            return Err(Error::InvalidTransition {
                op: "start",
                what,
                state: procs.init.status.name(),
            });
        }
        let since = self.exits().seq();
        let pid = c.instance.exec(&exec)?;
        let p = procs.get_mut(&req.id, &req.exec_id)?;
        p.pid = pid;
        p.status = next;
        p.exec = None;
        let owner = Owner {
            id: req.id.clone(),
            exec_id: req.exec_id.clone(),
        };
        let early = self.register_pid(&owner, pid, since);
        self.events.publish(
            topics::TASK_EXEC_STARTED_EVENT_TOPIC,
            Box::new(TaskExecStarted {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                pid,
                ..Default::default()
            }),
        );
        if let Some(code) = early {
            self.exit_locked(&mut procs, &owner, pid, code);
        }
        drop(procs);
        c.exited.notify_all();
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn do_delete(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        let c = self.container(&req.id)?;
        let mut procs = c.lock();
        let what = describe(&req.id, &req.exec_id);
        let p = procs.get_mut(&req.id, &req.exec_id)?;
        p.status.after(Op::Delete, &what)?;
        let (pid, exit) = (p.pid, p.exit.clone());
        let (exit_status, exited_at) = exit.unwrap_or_else(|| (0, now()));
        if req.exec_id.is_empty() {
            if !procs
                .execs
                .values()
                .all(|e| e.status == Status::Stopped || e.status == Status::Created)
            {
                return Err(Error::InvalidTransition {
                    op: "delete",
                    what,
                    state: "running execs",
                });
            }
            c.instance.delete()?;
            procs.init.status = Status::Deleted;
            self.containers().remove(&req.id);
            self.events.publish(
                topics::TASK_DELETE_EVENT_TOPIC,
                Box::new(TaskDelete {
                    container_id: req.id.clone(),
                    id: req.id.clone(),
                    pid,
                    exit_status,
                    exited_at: Some(exited_at.clone()).into(),
                    ..Default::default()
                }),
            );
        } else {
            c.instance.delete_exec(&req.exec_id)?;
            procs.execs.remove(&req.exec_id);
        }
        Ok(DeleteResponse {
            pid,
            exit_status,
            exited_at: Some(exited_at).into(),
            ..Default::default()
        })
    }

    fn do_exec(&self, req: ExecProcessRequest) -> Result<Empty> {
        let c = self.container(&req.id)?;
        let mut procs = c.lock();
        let what = describe(&req.id, "");
        procs.init.status.after(Op::Exec, &what)?;
        if procs.execs.contains_key(&req.exec_id) {
            return Err(Error::ExecExists {
                id: req.id,
                exec_id: req.exec_id,
            });
        }
        let spec = req
            .spec
            .as_ref()
            .ok_or_else(|| Error::InvalidRequest("exec without process spec".into()))?;
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let mut p = Proc::new(stdio.clone());
        p.exec = Some(ExecConfig {
            exec_id: req.exec_id.clone(),
            stdio,
            process_json: spec.value.clone(),
        });
        procs.execs.insert(req.exec_id.clone(), p);
        self.events.publish(
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            Box::new(TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            }),
        );
        Ok(Empty::new())
    }

    fn do_kill(&self, req: KillRequest) -> Result<Empty> {
        let c = self.container(&req.id)?;
        let procs = {
            let mut procs = c.lock();
            let what = describe(&req.id, &req.exec_id);
            let p = procs.get_mut(&req.id, &req.exec_id)?;
            p.status.after(Op::Kill, &what)?;
            p.pid
        };
        if req.exec_id.is_empty() {
            c.instance.kill(req.signal, req.all)?;
        } else {
            c.instance.kill_exec(procs, req.signal)?;
        }
        Ok(Empty::new())
    }

    fn do_pause_resume(&self, id: &str, op: Op) -> Result<Empty> {
        let c = self.container(id)?;
        let mut procs = c.lock();
        let next = procs.init.status.after(op, &describe(id, ""))?;
        if op == Op::Pause {
            c.instance.pause()?;
            procs.init.status = next;
            self.events.publish(
                topics::TASK_PAUSED_EVENT_TOPIC,
                Box::new(TaskPaused {
                    container_id: id.into(),
                    ..Default::default()
                }),
            );
        } else {
            c.instance.resume()?;
            procs.init.status = next;
            self.events.publish(
                topics::TASK_RESUMED_EVENT_TOPIC,
                Box::new(TaskResumed {
                    container_id: id.into(),
                    ..Default::default()
                }),
            );
        }
        Ok(Empty::new())
    }

    /// Init pid of a live container, for inspections.
    fn live_pid(&self, c: &Container<I>) -> Result<u32> {
        let procs = c.lock();
        procs.init.status.after(Op::Inspect, &describe(&c.id, ""))?;
        Ok(procs.init.pid)
    }

    fn do_state(&self, req: StateRequest) -> Result<StateResponse> {
        let c = self.container(&req.id)?;
        let mut procs = c.lock();
        let p = procs.get_mut(&req.id, &req.exec_id)?;
        let (exit_status, exited_at) = p.exit.clone().unwrap_or_default();
        Ok(StateResponse {
            id: req.id.clone(),
            bundle: c.bundle.clone(),
            pid: p.pid,
            status: p.status.to_proto().into(),
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exit_status,
            exited_at: p.exit.as_ref().map(|_| exited_at).into(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    fn do_wait(&self, req: WaitRequest) -> Result<WaitResponse> {
        let c = self.container(&req.id)?;
        let mut procs = c.lock();
        loop {
            let p = procs.get_mut(&req.id, &req.exec_id)?;
            if let Some((exit_status, at)) = p.exit.clone() {
                return Ok(WaitResponse {
                    exit_status,
                    exited_at: Some(at).into(),
                    ..Default::default()
                });
            }
            procs = c.exited.wait(procs).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn do_shutdown(&self, req: ShutdownRequest) -> Result<Empty> {
        if req.now || self.containers().is_empty() {
            info!("shutting down");
            self.shutdown.signal();
        }
        Ok(Empty::new())
    }
}

fn describe(id: &str, exec_id: &str) -> String {
    if exec_id.is_empty() {
        format!("container {id}")
    } else {
        format!("exec {exec_id} of container {id}")
    }
}

fn reply<T>(r: Result<T>) -> ttrpc::Result<T> {
    r.map_err(|e| {
        debug!("request failed: {}", crate::error::chain(&e));
        e.into()
    })
}

impl<I: Instance> Task for TaskService<I> {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> ttrpc::Result<CreateTaskResponse> {
        reply(self.do_create(req))
    }

    fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> ttrpc::Result<StartResponse> {
        reply(self.do_start(req))
    }

    fn delete(&self, _ctx: &TtrpcContext, req: DeleteRequest) -> ttrpc::Result<DeleteResponse> {
        reply(self.do_delete(req))
    }

    fn exec(&self, _ctx: &TtrpcContext, req: ExecProcessRequest) -> ttrpc::Result<Empty> {
        reply(self.do_exec(req))
    }

    fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> ttrpc::Result<StateResponse> {
        reply(self.do_state(req))
    }

    fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> ttrpc::Result<Empty> {
        reply(self.do_kill(req))
    }

    fn pause(&self, _ctx: &TtrpcContext, req: PauseRequest) -> ttrpc::Result<Empty> {
        reply(self.do_pause_resume(&req.id, Op::Pause))
    }

    fn resume(&self, _ctx: &TtrpcContext, req: ResumeRequest) -> ttrpc::Result<Empty> {
        reply(self.do_pause_resume(&req.id, Op::Resume))
    }

    fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> ttrpc::Result<PidsResponse> {
        reply((|| {
            let c = self.container(&req.id)?;
            self.live_pid(&c)?;
            let processes = c
                .instance
                .pids()?
                .into_iter()
                .map(|pid| ProcessInfo {
                    pid,
                    ..Default::default()
                })
                .collect();
            Ok(PidsResponse {
                processes,
                ..Default::default()
            })
        })())
    }

    fn update(&self, _ctx: &TtrpcContext, req: UpdateTaskRequest) -> ttrpc::Result<Empty> {
        reply((|| {
            let c = self.container(&req.id)?;
            self.live_pid(&c)?;
            let resources = req
                .resources
                .as_ref()
                .ok_or_else(|| Error::InvalidRequest("update without resources".into()))?;
            c.instance.update(&resources.value)?;
            Ok(Empty::new())
        })())
    }

    fn stats(&self, _ctx: &TtrpcContext, req: StatsRequest) -> ttrpc::Result<StatsResponse> {
        reply((|| {
            let c = self.container(&req.id)?;
            let pid = self.live_pid(&c)?;
            Ok(StatsResponse {
                stats: Some(c.instance.stats(pid)?).into(),
                ..Default::default()
            })
        })())
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: ResizePtyRequest) -> ttrpc::Result<Empty> {
        reply((|| {
            let c = self.container(&req.id)?;
            c.lock().get_mut(&req.id, &req.exec_id)?;
            let exec = Some(req.exec_id.as_str()).filter(|e| !e.is_empty());
            c.instance.resize_pty(exec, req.width, req.height)?;
            Ok(Empty::new())
        })())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: CloseIORequest) -> ttrpc::Result<Empty> {
        reply((|| {
            let c = self.container(&req.id)?;
            c.lock().get_mut(&req.id, &req.exec_id)?;
            if req.stdin {
                let exec = Some(req.exec_id.as_str()).filter(|e| !e.is_empty());
                c.instance.close_stdin(exec)?;
            }
            Ok(Empty::new())
        })())
    }

    fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> ttrpc::Result<WaitResponse> {
        reply(self.do_wait(req))
    }

    fn checkpoint(&self, _ctx: &TtrpcContext, _req: CheckpointTaskRequest) -> ttrpc::Result<Empty> {
        reply(Err(Error::NotImplemented { op: "checkpoint" }))
    }

    fn connect(&self, _ctx: &TtrpcContext, req: ConnectRequest) -> ttrpc::Result<ConnectResponse> {
        let task_pid = self
            .container(&req.id)
            .map(|c| c.lock().init.pid)
            .unwrap_or_default();
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, req: ShutdownRequest) -> ttrpc::Result<Empty> {
        reply(self.do_shutdown(req))
    }
}

#[cfg(test)]
mod tests;
