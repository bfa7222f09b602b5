//! [stockade patch] Hand a seccomp user-notification listener to the agent at
//! `linux.seccomp.listenerPath`, as runtime-spec "seccomp" and runc define it: connect
//! to the unix socket, send the container process state (JSON) with the listener fd
//! as SCM_RIGHTS in one message, close the connection. Upstream needed the
//! `libseccomp` feature and its errors did not name the socket; the filter is
//! loaded by the executor, so this depends on no seccomp library.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{self, UnixAddr};
use oci_spec::runtime::{self, LinuxSeccompAction};

use super::channel;

#[derive(Debug, thiserror::Error)]
pub enum SeccompListenerError {
    #[error("failed to encode the container process state for the seccomp agent")]
    EncodeState(#[source] serde_json::Error),
    #[error(transparent)]
    ChannelError(#[from] channel::ChannelError),
    #[error("cannot connect to the seccomp agent at linux.seccomp.listenerPath {path:?}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot send the seccomp listener to the agent at linux.seccomp.listenerPath {path:?}"
    )]
    Send {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

type Result<T> = std::result::Result<T, SeccompListenerError>;

/// The agent's socket when the filter notifies (some rule is `SCMP_ACT_NOTIFY`): the
/// init then loads it with a listener and sends that fd, which the runtime must
/// wait for. A `listenerPath` without notify rules gets no listener (runc loads
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` only for notify rules).
pub fn listener_path(seccomp: &runtime::LinuxSeccomp) -> Option<&Path> {
    let notifies = seccomp
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify);
    seccomp.listener_path().as_deref().filter(|_| notifies)
}

/// Receive the init's listener, send it with `state` to the agent at `path`, then
/// tell the init it may go on (and close its copy).
pub fn sync_seccomp(
    path: &Path,
    state: &runtime::ContainerProcessState,
    init_sender: &mut channel::InitSender,
    main_receiver: &mut channel::MainReceiver,
) -> Result<()> {
    tracing::debug!(?path, "waiting for the init's seccomp listener");
    let raw = main_receiver.wait_for_seccomp_request()?;
    // SAFETY: the fd was just received with SCM_RIGHTS; nothing else owns it.
    let listener = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    let encoded = serde_json::to_vec(state).map_err(SeccompListenerError::EncodeState)?;
    send_to_agent(path, &encoded, &listener)?;
    init_sender.seccomp_notify_done()?;
    // The agent holds its own copy now (SCM_RIGHTS duplicates it).
    drop(listener);
    Ok(())
}

fn send_to_agent(path: &Path, msg: &[u8], listener: &OwnedFd) -> Result<()> {
    let stream = UnixStream::connect(path).map_err(|source| SeccompListenerError::Connect {
        path: path.to_owned(),
        source,
    })?;
    let iov = [IoSlice::new(msg)];
    let fds = [listener.as_raw_fd()];
    let cmsgs = [socket::ControlMessage::ScmRights(&fds)];
    let sent = socket::sendmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &iov,
        &cmsgs,
        socket::MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|source| SeccompListenerError::Send {
        path: path.to_owned(),
        source,
    })?;
    if sent != msg.len() {
        // A stream socket may take less than asked; an agent reads one message.
        return Err(SeccompListenerError::Send {
            path: path.to_owned(),
            source: nix::Error::EMSGSIZE,
        });
    }
    // The spec: the runtime closes the connection after sending.
    drop(stream);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::net::UnixListener;

    use anyhow::Result;

    use super::*;
    use crate::process::channel;

    fn state() -> runtime::ContainerProcessState {
        runtime::ContainerProcessStateBuilder::default()
            .version("1.0.0".to_string())
            .fds(vec!["seccompFd".to_string()])
            .pid(1234)
            .metadata("test".to_string())
            .state(
                runtime::StateBuilder::default()
                    .version("1.0.0".to_string())
                    .id("test-container".to_string())
                    .status(runtime::ContainerState::Creating)
                    .pid(1234)
                    .bundle(PathBuf::from("/tmp/bundle"))
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn the_agent_gets_the_state_and_the_listener() -> Result<()> {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("agent.sock");
        let agent = UnixListener::bind(&path)?;
        let (mut main_sender, mut main_receiver) = channel::main_channel()?;
        let (mut init_sender, mut init_receiver) = channel::init_channel()?;
        let file = tempfile::tempfile()?;
        main_sender.seccomp_notify_request(file.as_raw_fd())?;
        let want = serde_json::to_string(&state())?;
        let th_path = path.clone();
        let th = std::thread::spawn(move || {
            sync_seccomp(&th_path, &state(), &mut init_sender, &mut main_receiver)
        });
        let (mut conn, _) = agent.accept()?;
        let mut got = String::new();
        conn.read_to_string(&mut got)?;
        assert_eq!(want, got);
        init_receiver.wait_for_seccomp_request_done()?;
        th.join().unwrap()?;
        Ok(())
    }

    #[test]
    fn a_missing_agent_is_named() -> Result<()> {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("missing.sock");
        let file = tempfile::tempfile()?;
        let err = send_to_agent(&path, b"{}", &OwnedFd::from(file)).unwrap_err();
        assert!(
            err.to_string().contains("linux.seccomp.listenerPath")
                && err.to_string().contains("missing.sock"),
            "{err}"
        );
        Ok(())
    }
}
