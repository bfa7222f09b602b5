//! The terminal of a foreground `run` or `exec` whose process asks for one
//! (`process.terminal: true`) when the caller passed no `--console-socket`: as runc
//! does, the runtime takes the pty master itself and proxies it to its own stdio.
//! Without this the process inherited the caller's stdio and had no terminal.
//!
//! Order (runc's `setupIO`/`tty.go`): listen on a private console socket, hand its
//! path to libcontainer (the init sends the master over it, SCM_RIGHTS, during
//! create), then put the caller's terminal in raw mode (keystrokes such as Ctrl-C
//! go to the container's terminal, whose own line discipline handles them), copy
//! its window size, and copy bytes both ways until the process is gone. The
//! caller's terminal settings are restored when the proxy ends.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{self, SetArg, Termios};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("cannot make the console socket directory")]
    SocketDir(#[source] io::Error),
    #[error("cannot listen on the console socket {}", path.display())]
    Listen {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot receive the pty master from the container")]
    Receive(#[source] io::Error),
    #[error("the container sent no pty master on the console socket")]
    NoMaster,
    #[error("cannot start the terminal proxy")]
    Spawn(#[source] io::Error),
}

/// How long the output copy keeps reading once the process is gone: what it wrote
/// last is still in the pty's buffer.
const DRAIN_IDLE: Duration = Duration::from_millis(200);

/// A console socket in a private 0700 directory, accepting libcontainer's one
/// connection in a thread (create blocks until the master is sent).
pub struct ConsoleListener {
    path: PathBuf,
    accept: JoinHandle<Result<OwnedFd, ConsoleError>>,
    _dir: tempfile::TempDir,
}

impl ConsoleListener {
    pub fn listen() -> Result<Self, ConsoleError> {
        // tempfile makes the directory 0700: nobody else can connect and hand us a
        // terminal of theirs.
        let dir = tempfile::Builder::new()
            .prefix("stockade-console-")
            .tempdir()
            .map_err(ConsoleError::SocketDir)?;
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).map_err(|source| ConsoleError::Listen {
            path: path.clone(),
            source,
        })?;
        let accept = std::thread::Builder::new()
            .name("console-accept".into())
            .spawn(move || receive_master(&listener))
            .map_err(ConsoleError::Spawn)?;
        Ok(Self {
            path,
            accept,
            _dir: dir,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The master the container sent. Call once create or exec has returned.
    pub fn master(self) -> Result<OwnedFd, ConsoleError> {
        self.accept
            .join()
            .unwrap_or(Err(ConsoleError::Receive(io::Error::other(
                "console accept thread panicked",
            ))))
    }
}

fn receive_master(listener: &UnixListener) -> Result<OwnedFd, ConsoleError> {
    let (stream, _) = listener.accept().map_err(ConsoleError::Receive)?;
    // libcontainer sends the terminal's name as data with the fd.
    let mut name = [0u8; 4096];
    let mut iov = [io::IoSliceMut::new(&mut name)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| ConsoleError::Receive(e.into()))?;
    let mut master = None;
    for c in msg.cmsgs().map_err(|e| ConsoleError::Receive(e.into()))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just installed these fds in our table for us;
                // nothing else owns them, and each is wrapped exactly once.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if master.is_none() {
                    master = Some(owned);
                }
            }
        }
    }
    master.ok_or(ConsoleError::NoMaster)
}

/// The caller's terminal in raw mode while the proxy runs; restored on drop.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Raw mode on our stdin, if it is a terminal (a pipe needs nothing).
    fn enter() -> Option<Self> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        if let Err(e) = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw) {
            tracing::warn!(error = %e, "cannot put the caller's terminal in raw mode");
            return None;
        }
        Some(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Err(e) = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, &self.saved) {
            tracing::warn!(error = %e, "cannot restore the caller's terminal settings");
        }
    }
}

/// Copies the caller's window size (if its stdin is a terminal) to the container's.
pub fn copy_window_size(master: &impl AsRawFd) {
    // SAFETY: winsize is plain data; all-zero is a valid value for the ioctl to fill.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`, which lives for the call.
    if unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut ws) } != 0 {
        return; // Not a terminal: there is no size to pass on.
    }
    // SAFETY: TIOCSWINSZ reads one winsize from `ws`; the master fd is open.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        tracing::warn!(
            error = %io::Error::last_os_error(),
            "cannot pass the window size to the container's terminal"
        );
    }
}

/// The running proxy between our stdio and the container's terminal.
pub struct ConsoleProxy {
    master: Arc<File>,
    output: JoinHandle<()>,
    exited: Arc<AtomicBool>,
    _raw: Option<RawMode>,
}

impl ConsoleProxy {
    pub fn start(master: OwnedFd) -> Result<Self, ConsoleError> {
        let master = Arc::new(File::from(master));
        copy_window_size(&*master);
        let raw = RawMode::enter();
        let exited = Arc::new(AtomicBool::new(false));
        let output = {
            let (master, exited) = (Arc::clone(&master), Arc::clone(&exited));
            std::thread::Builder::new()
                .name("console-out".into())
                .spawn(move || copy_output(&master, &exited))
                .map_err(ConsoleError::Spawn)?
        };
        {
            // Our stdin may never end (a terminal); this thread is left behind when
            // the runtime exits, it holds nothing that must be released.
            let master = Arc::clone(&master);
            std::thread::Builder::new()
                .name("console-in".into())
                .spawn(move || copy_input(&master))
                .map_err(ConsoleError::Spawn)?;
        }
        Ok(Self {
            master,
            output,
            exited,
            _raw: raw,
        })
    }

    /// SIGWINCH on the caller's side: the container's terminal follows.
    pub fn resize(&self) {
        copy_window_size(&*self.master);
    }

    /// The process is gone: copy what is left of its output, then restore the
    /// caller's terminal.
    pub fn finish(self) {
        self.exited.store(true, Ordering::SeqCst);
        if self.output.join().is_err() {
            tracing::warn!("the terminal output copy panicked");
        }
    }
}

fn copy_input(master: &File) {
    let mut stdin = io::stdin().lock();
    let mut buf = [0u8; 4096];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if (&*master).write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

/// Master to our stdout until the terminal is closed everywhere (EIO), or the
/// process is gone and nothing more came for [`DRAIN_IDLE`].
fn copy_output(master: &File, exited: &AtomicBool) {
    let mut stdout = io::stdout();
    let mut buf = [0u8; 4096];
    loop {
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, DRAIN_IDLE.as_millis() as libc::c_int) };
        if rc < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if rc == 0 {
            if exited.load(Ordering::SeqCst) {
                return;
            }
            continue;
        }
        match (&*master).read(&mut buf) {
            // EIO: every slave fd is closed.
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stdout
                    .write_all(&buf[..n])
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}
