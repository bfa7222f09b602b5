//! The lifecycle of a task process as an explicit state machine.
//!
//! ```text
//! created --start--> running --pause--> paused --resume--> running
//!    |                  |                  |
//!    +------exit--------+-------exit-------+--> stopped --delete--> deleted
//!    +---------------------------delete-------------------------------^
//! ```
//! Every request is checked against this table before the runtime is called; an
//! invalid transition is a FAILED_PRECONDITION for containerd.

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
    Deleted,
}

/// Requests (and the one event, `Exit`) that move or need a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Pause,
    Resume,
    Exit,
    Delete,
    Kill,
    /// Add an exec process to the container.
    Exec,
    /// Update, Pids, Stats: need a live container.
    Inspect,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Pause => "pause",
            Op::Resume => "resume",
            Op::Exit => "exit",
            Op::Delete => "delete",
            Op::Kill => "kill",
            Op::Exec => "exec in",
            Op::Inspect => "inspect",
        }
    }
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
            Status::Deleted => "deleted",
        }
    }

    /// The state after `op`, or why `op` is not allowed now. `what` names the process
    /// for the error message.
    pub fn after(self, op: Op, what: &str) -> Result<Status, Error> {
        use Status::*;
        let next = match (op, self) {
            (Op::Start, Created) => Some(Running),
            (Op::Pause, Running) => Some(Paused),
            (Op::Resume, Paused) => Some(Running),
            (Op::Exit, Created | Running | Paused) => Some(Stopped),
            (Op::Delete, Created | Stopped) => Some(Deleted),
            (Op::Kill, Created | Running | Paused) => Some(self),
            (Op::Exec, Running) => Some(self),
            (Op::Inspect, Created | Running | Paused) => Some(self),
            _ => None,
        };
        match next {
            Some(s) => Ok(s),
            // containerd expects NotFound for a kill of an exited or deleted
            // process (its runc shim: "process already finished").
            None if op == Op::Kill && matches!(self, Stopped | Deleted) => {
                Err(Error::ProcessFinished(what.into()))
            }
            None => Err(Error::InvalidTransition {
                op: op.name(),
                what: what.into(),
                state: self.name(),
            }),
        }
    }

    pub fn to_proto(self) -> containerd_shim::protos::types::task::Status {
        use containerd_shim::protos::types::task::Status as P;
        match self {
            Status::Created => P::CREATED,
            Status::Running => P::RUNNING,
            Status::Paused => P::PAUSED,
            Status::Stopped | Status::Deleted => P::STOPPED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    const ALL: [Status; 5] = [Created, Running, Paused, Stopped, Deleted];

    /// The full transition table: (state, op) -> allowed next state.
    fn expected(s: Status, op: Op) -> Option<Status> {
        match (s, op) {
            (Created, Op::Start) => Some(Running),
            (Running, Op::Pause) => Some(Paused),
            (Paused, Op::Resume) => Some(Running),
            (Created | Running | Paused, Op::Exit) => Some(Stopped),
            (Created | Stopped, Op::Delete) => Some(Deleted),
            (Created | Running | Paused, Op::Kill | Op::Inspect) => Some(s),
            (Running, Op::Exec) => Some(Running),
            _ => None,
        }
    }

    #[test]
    fn transition_table() {
        let ops = [
            Op::Start,
            Op::Pause,
            Op::Resume,
            Op::Exit,
            Op::Delete,
            Op::Kill,
            Op::Exec,
            Op::Inspect,
        ];
        for s in ALL {
            for op in ops {
                let got = s.after(op, "container c").ok();
                assert_eq!(got, expected(s, op), "{s:?} {op:?}");
            }
        }
    }

    #[test]
    fn invalid_transition_names_state() {
        let err = Running.after(Op::Start, "container c").unwrap_err();
        assert_eq!(err.to_string(), "cannot start container c: it is running");
    }

    #[test]
    fn kill_after_exit_or_delete_is_not_found() {
        for s in [Stopped, Deleted] {
            assert!(
                matches!(
                    s.after(Op::Kill, "container c"),
                    Err(Error::ProcessFinished(_))
                ),
                "{s:?}"
            );
        }
    }
}
