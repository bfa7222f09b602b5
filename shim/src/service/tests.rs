//! The task service against a stub instance: state machine, event order, waits and
//! early exits, without root or a runtime.

use std::sync::{
    atomic::{AtomicU32, Ordering},
    mpsc,
};

use containerd_shim::protos::{protobuf::well_known_types::any::Any, ttrpc::Code};

use super::*;
use crate::instance::OomNotify;

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl EventSink for Recorder {
    fn publish(&self, topic: &'static str, _event: Box<dyn Named>) {
        self.0.lock().unwrap().push(topic.to_string());
    }
}

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

type ExecHook = Arc<Mutex<Option<(mpsc::Sender<u32>, mpsc::Receiver<()>)>>>;

#[derive(Default)]
struct StubFactory {
    next_pid: AtomicU32,
    calls: Arc<Mutex<Vec<String>>>,
    /// Lets a test act while `exec` runs: the stub sends the pid and waits.
    exec_hook: ExecHook,
}

struct Stub {
    calls: Arc<Mutex<Vec<String>>>,
    next_pid: u32,
    exec_hook: ExecHook,
}

impl Stub {
    fn call(&self, what: &str) {
        self.calls.lock().unwrap().push(what.into());
    }
}

impl Instance for Stub {
    type Factory = StubFactory;

    fn create(f: &StubFactory, cfg: &CreateConfig) -> Result<(Self, u32)> {
        f.calls.lock().unwrap().push(format!("create {}", cfg.id));
        let pid = 100 + f.next_pid.fetch_add(1, Ordering::SeqCst);
        Ok((
            Stub {
                calls: Arc::clone(&f.calls),
                next_pid: 1000,
                exec_hook: Arc::clone(&f.exec_hook),
            },
            pid,
        ))
    }
    fn start(&self) -> Result<()> {
        self.call("start");
        Ok(())
    }
    fn kill(&self, signal: u32, _all: bool) -> Result<()> {
        self.call(&format!("kill {signal}"));
        Ok(())
    }
    fn delete(&self) -> Result<()> {
        self.call("delete");
        Ok(())
    }
    fn pause(&self) -> Result<()> {
        self.call("pause");
        Ok(())
    }
    fn resume(&self) -> Result<()> {
        self.call("resume");
        Ok(())
    }
    fn pids(&self) -> Result<Vec<u32>> {
        Ok(vec![100])
    }
    fn update(&self, _resources: &[u8]) -> Result<()> {
        Ok(())
    }
    fn stats(&self, _pid: u32) -> Result<Any> {
        Ok(Any::new())
    }
    fn exec(&self, cfg: &ExecConfig) -> Result<u32> {
        self.call(&format!("exec {}", cfg.exec_id));
        if let Some((tx, rx)) = self.exec_hook.lock().unwrap().as_ref() {
            tx.send(self.next_pid).unwrap();
            rx.recv().unwrap();
        }
        Ok(self.next_pid)
    }
    fn kill_exec(&self, pid: u32, signal: u32) -> Result<()> {
        self.call(&format!("kill-exec {pid} {signal}"));
        Ok(())
    }
    fn delete_exec(&self, exec_id: &str) -> Result<()> {
        self.call(&format!("delete-exec {exec_id}"));
        Ok(())
    }
    fn resize_pty(&self, _exec_id: Option<&str>, _w: u32, _h: u32) -> Result<()> {
        Ok(())
    }
    fn close_stdin(&self, _exec_id: Option<&str>) -> Result<()> {
        Ok(())
    }
    fn watch_oom(&self, _pid: u32, _notify: OomNotify) -> Result<()> {
        Ok(())
    }
    fn init_exited(&self) -> Result<()> {
        self.call("init-exited");
        Ok(())
    }
}

fn service() -> (TaskService<Stub>, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let svc = TaskService::new(
        StubFactory::default(),
        Arc::clone(&rec) as Arc<dyn EventSink>,
        Arc::new(ExitSignal::default()),
    );
    (svc, rec)
}

fn create(svc: &TaskService<Stub>, id: &str) -> u32 {
    svc.do_create(CreateTaskRequest {
        id: id.into(),
        bundle: "/b".into(),
        ..Default::default()
    })
    .unwrap()
    .pid
}

fn start(svc: &TaskService<Stub>, id: &str, exec_id: &str) -> Result<StartResponse> {
    svc.do_start(StartRequest {
        id: id.into(),
        exec_id: exec_id.into(),
        ..Default::default()
    })
}

fn delete(svc: &TaskService<Stub>, id: &str, exec_id: &str) -> Result<DeleteResponse> {
    svc.do_delete(DeleteRequest {
        id: id.into(),
        exec_id: exec_id.into(),
        ..Default::default()
    })
}

fn code<T: std::fmt::Debug>(r: Result<T>) -> Code {
    match ttrpc::Error::from(r.unwrap_err()) {
        ttrpc::Error::RpcStatus(s) => s.code(),
        other => panic!("{other:?}"),
    }
}

fn status(svc: &TaskService<Stub>, id: &str, exec_id: &str) -> Status {
    let c = svc.container(id).unwrap();
    let mut procs = c.lock();
    procs.get_mut(id, exec_id).unwrap().status
}

#[test]
fn lifecycle_events_in_order() {
    let (svc, rec) = service();
    let pid = create(&svc, "c");
    assert_eq!(status(&svc, "c", ""), Status::Created);
    start(&svc, "c", "").unwrap();
    assert_eq!(status(&svc, "c", ""), Status::Running);
    svc.process_exit(pid as i32, 3);
    let w = svc
        .do_wait(WaitRequest {
            id: "c".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(w.exit_status, 3);
    let d = delete(&svc, "c", "").unwrap();
    assert_eq!((d.pid, d.exit_status), (pid, 3));
    assert_eq!(
        rec.take(),
        [
            topics::TASK_CREATE_EVENT_TOPIC,
            topics::TASK_START_EVENT_TOPIC,
            topics::TASK_EXIT_EVENT_TOPIC,
            topics::TASK_DELETE_EVENT_TOPIC
        ]
    );
    assert_eq!(code(svc.container("c").map(drop)), Code::NOT_FOUND);
}

#[test]
fn invalid_transitions_are_failed_precondition() {
    let (svc, _) = service();
    create(&svc, "c");
    assert_eq!(
        code(svc.do_pause_resume("c", Op::Pause)),
        Code::FAILED_PRECONDITION
    );
    start(&svc, "c", "").unwrap();
    assert_eq!(code(start(&svc, "c", "")), Code::FAILED_PRECONDITION);
    assert_eq!(code(delete(&svc, "c", "")), Code::FAILED_PRECONDITION);
    assert_eq!(
        code(svc.do_pause_resume("c", Op::Resume)),
        Code::FAILED_PRECONDITION
    );
    svc.do_pause_resume("c", Op::Pause).unwrap();
    assert_eq!(status(&svc, "c", ""), Status::Paused);
    assert_eq!(
        code(svc.do_pause_resume("c", Op::Pause)),
        Code::FAILED_PRECONDITION
    );
    svc.do_pause_resume("c", Op::Resume).unwrap();
    assert_eq!(status(&svc, "c", ""), Status::Running);
}

#[test]
fn duplicate_and_unknown_ids() {
    let (svc, _) = service();
    create(&svc, "c");
    assert_eq!(
        code(svc.do_create(CreateTaskRequest {
            id: "c".into(),
            ..Default::default()
        })),
        Code::ALREADY_EXISTS
    );
    assert_eq!(code(start(&svc, "nope", "")), Code::NOT_FOUND);
    assert_eq!(code(start(&svc, "c", "nope")), Code::NOT_FOUND);
}

#[test]
fn kill_after_exit_is_not_found() {
    let (svc, _) = service();
    let pid = create(&svc, "c");
    start(&svc, "c", "").unwrap();
    svc.process_exit(pid as i32, 137);
    let r = svc.do_kill(KillRequest {
        id: "c".into(),
        signal: 9,
        ..Default::default()
    });
    assert_eq!(code(r), Code::NOT_FOUND);
}

fn exec_req(id: &str, exec_id: &str) -> ExecProcessRequest {
    ExecProcessRequest {
        id: id.into(),
        exec_id: exec_id.into(),
        spec: Some(Any::new()).into(),
        ..Default::default()
    }
}

#[test]
fn exec_needs_running_container_and_orders_events() {
    let (svc, rec) = service();
    create(&svc, "c");
    assert_eq!(
        code(svc.do_exec(exec_req("c", "e"))),
        Code::FAILED_PRECONDITION
    );
    start(&svc, "c", "").unwrap();
    rec.take();
    svc.do_exec(exec_req("c", "e")).unwrap();
    assert_eq!(code(svc.do_exec(exec_req("c", "e"))), Code::ALREADY_EXISTS);
    let pid = start(&svc, "c", "e").unwrap().pid;
    svc.process_exit(pid as i32, 5);
    let d = delete(&svc, "c", "e").unwrap();
    assert_eq!(d.exit_status, 5);
    assert_eq!(
        rec.take(),
        [
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            topics::TASK_EXEC_STARTED_EVENT_TOPIC,
            topics::TASK_EXIT_EVENT_TOPIC
        ]
    );
}

#[test]
fn stale_exit_of_reused_pid_is_ignored() {
    let (svc, _) = service();
    let owner = Owner {
        id: "c".into(),
        exec_id: "e".into(),
    };
    svc.process_exit(1000, 99); // an earlier process with the same pid
    let since = svc.exits().seq();
    assert_eq!(svc.exits().register(1000, owner.clone(), since), None);
    let since = svc.exits().seq();
    svc.process_exit(2000, 7); // exits before its pid is registered
    assert_eq!(svc.exits().register(2000, owner, since), Some(7));
}

#[test]
fn early_exit_event_follows_exec_started() {
    let (svc, rec) = service();
    let svc = Arc::new(svc);
    let (to_test, from_stub) = mpsc::channel();
    let (to_stub, from_test) = mpsc::channel();
    *svc.factory.exec_hook.lock().unwrap() = Some((to_test, from_test));
    create(&svc, "c");
    start(&svc, "c", "").unwrap();
    svc.do_exec(exec_req("c", "e")).unwrap();
    rec.take();
    let s2 = Arc::clone(&svc);
    let h = std::thread::spawn(move || start(&s2, "c", "e").map(|r| r.pid));
    // The exec process exits while the runtime's `exec` is still running.
    let pid = from_stub.recv().unwrap();
    svc.process_exit(pid as i32, 7);
    to_stub.send(()).unwrap();
    assert_eq!(h.join().unwrap().unwrap(), pid);
    assert_eq!(status(&svc, "c", "e"), Status::Stopped);
    assert_eq!(
        rec.take(),
        [
            topics::TASK_EXEC_STARTED_EVENT_TOPIC,
            topics::TASK_EXIT_EVENT_TOPIC
        ]
    );
}

#[test]
fn shutdown_when_last_container_is_gone() {
    let (svc, _) = service();
    let pid = create(&svc, "c");
    start(&svc, "c", "").unwrap();
    svc.process_exit(pid as i32, 0);
    delete(&svc, "c", "").unwrap();
    svc.do_shutdown(ShutdownRequest::default()).unwrap();
    svc.shutdown.wait(); // returns: signalled
}

#[test]
fn checkpoint_is_unimplemented() {
    assert_eq!(
        code::<()>(Err(Error::NotImplemented { op: "checkpoint" })),
        Code::UNIMPLEMENTED
    );
}

/// Events and instance calls in one log, to check their relative order.
struct SharedLog(Arc<Mutex<Vec<String>>>);

impl EventSink for SharedLog {
    fn publish(&self, topic: &'static str, _event: Box<dyn Named>) {
        self.0.lock().unwrap().push(topic.to_string());
    }
}

/// The instance sweeps what an exited init left (shared pid namespace) before the
/// init's exit is published; an exec's exit does not trigger it.
#[test]
fn init_exit_sweeps_before_the_exit_event() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let factory = StubFactory {
        calls: Arc::clone(&log),
        ..Default::default()
    };
    let svc = TaskService::new(
        factory,
        Arc::new(SharedLog(Arc::clone(&log))) as Arc<dyn EventSink>,
        Arc::new(ExitSignal::default()),
    );
    let pid = create(&svc, "c");
    start(&svc, "c", "").unwrap();
    svc.do_exec(exec_req("c", "e")).unwrap();
    let epid = start(&svc, "c", "e").unwrap().pid;
    log.lock().unwrap().clear();
    svc.process_exit(epid as i32, 0);
    svc.process_exit(pid as i32, 0);
    assert_eq!(
        *log.lock().unwrap(),
        [
            topics::TASK_EXIT_EVENT_TOPIC,
            "init-exited",
            topics::TASK_EXIT_EVENT_TOPIC
        ]
    );
}

/// A kill of a deleted task or exec is NotFound too (containerd's CRI ignores
/// NotFound when it stops what already went away).
#[test]
fn kill_after_delete_is_not_found() {
    let (svc, _) = service();
    let pid = create(&svc, "c");
    start(&svc, "c", "").unwrap();
    svc.do_exec(exec_req("c", "e")).unwrap();
    let epid = start(&svc, "c", "e").unwrap().pid;
    svc.process_exit(epid as i32, 0);
    delete(&svc, "c", "e").unwrap();
    let kill = |exec_id: &str| {
        svc.do_kill(KillRequest {
            id: "c".into(),
            exec_id: exec_id.into(),
            signal: 9,
            ..Default::default()
        })
    };
    assert_eq!(code(kill("e")), Code::NOT_FOUND);
    svc.process_exit(pid as i32, 137);
    delete(&svc, "c", "").unwrap();
    assert_eq!(code(kill("")), Code::NOT_FOUND);
}
