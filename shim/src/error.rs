//! The shim's error type and the single place where errors become ttrpc status codes.

use containerd_shim::protos::ttrpc::{self, Code};

use crate::runtime_cli::RuntimeError;

/// Everything a task request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {0} not found")]
    ContainerNotFound(String),
    #[error("exec {exec_id} not found in container {id}")]
    ExecNotFound { id: String, exec_id: String },
    #[error("container {0} already exists")]
    ContainerExists(String),
    #[error("exec {exec_id} already exists in container {id}")]
    ExecExists { id: String, exec_id: String },
    #[error("cannot {op} {what}: it is {state}")]
    InvalidTransition {
        op: &'static str,
        what: String,
        state: &'static str,
    },
    #[error("{0}: process already finished")]
    ProcessFinished(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("{op} is not implemented by this shim")]
    NotImplemented { op: &'static str },
    #[error("runtime {op} failed")]
    Runtime {
        op: &'static str,
        #[source]
        source: RuntimeError,
    },
    #[error("{op}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}")]
    Sys {
        op: String,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("nothing opened the output FIFO {path} for reading within {waited:?}; the client that asked for the output is gone")]
    FifoNoReader {
        path: String,
        waited: std::time::Duration,
    },
    #[error("collect cgroup metrics")]
    CgroupStats(#[source] crate::stats::CgroupFileError),
    #[error("encode protobuf")]
    Protobuf(#[source] containerd_shim::protos::protobuf::Error),
}

impl Error {
    pub fn io(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let op = op.into();
        move |source| Self::Io { op, source }
    }

    pub fn sys(op: impl Into<String>) -> impl FnOnce(nix::errno::Errno) -> Self {
        let op = op.into();
        move |source| Self::Sys { op, source }
    }

    fn code(&self) -> Code {
        match self {
            Self::ContainerNotFound(_) | Self::ExecNotFound { .. } | Self::ProcessFinished(_) => {
                Code::NOT_FOUND
            }
            Self::ContainerExists(_) | Self::ExecExists { .. } => Code::ALREADY_EXISTS,
            Self::InvalidTransition { .. } => Code::FAILED_PRECONDITION,
            Self::InvalidRequest(_) => Code::INVALID_ARGUMENT,
            Self::NotImplemented { .. } => Code::UNIMPLEMENTED,
            Self::Runtime { source, .. } if source.is_not_found() => Code::NOT_FOUND,
            Self::Runtime { .. }
            | Self::Io { .. }
            | Self::Sys { .. }
            | Self::FifoNoReader { .. }
            | Self::CgroupStats(_)
            | Self::Protobuf(_) => Code::UNKNOWN,
        }
    }
}

/// Renders the error with its whole cause chain: containerd shows only this text, and
/// for a refused container the runtime's own reason is the part the user needs.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The one mapping from shim errors to ttrpc status codes.
impl From<Error> for ttrpc::Error {
    fn from(err: Error) -> Self {
        ttrpc::Error::RpcStatus(ttrpc::get_status(err.code(), chain(&err)))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(err: Error) -> Code {
        match ttrpc::Error::from(err) {
            ttrpc::Error::RpcStatus(s) => s.code(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn codes() {
        assert_eq!(
            code_of(Error::ContainerNotFound("a".into())),
            Code::NOT_FOUND
        );
        assert_eq!(
            code_of(Error::InvalidTransition {
                op: "start",
                what: "container a".into(),
                state: "running"
            }),
            Code::FAILED_PRECONDITION
        );
        assert_eq!(
            code_of(Error::NotImplemented { op: "checkpoint" }),
            Code::UNIMPLEMENTED
        );
    }

    #[test]
    fn message_carries_cause_chain() {
        let err = Error::Runtime {
            op: "create",
            source: RuntimeError::Failed {
                binary: "stockade".into(),
                status: 1,
                message: "profile violated: rule x".into(),
            },
        };
        let ttrpc::Error::RpcStatus(s) = ttrpc::Error::from(err) else {
            panic!()
        };
        assert_eq!(
            s.message,
            "runtime create failed: stockade exited with status 1: profile violated: rule x"
        );
    }
}
