//! A container process's stdio: pipes (or a pty) between the process and containerd's
//! FIFOs, copied by small threads.
//!
//! The process never gets containerd's FIFOs directly: pipes owned by the shim keep
//! the process's writes working when containerd's reader goes away and restarts, and
//! are chowned to the container's root so `/proc/self/fd/1` reopens work in a user
//! namespace (as runc's shim does).

use std::{
    fs::{File, OpenOptions},
    io::{Read, Write},
    os::fd::{AsFd, FromRawFd, OwnedFd},
    os::unix::{fs::OpenOptionsExt, net::UnixListener},
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Condvar, Mutex},
    time::Duration,
};

use nix::{
    sys::socket::{recvmsg, ControlMessageOwned, MsgFlags},
    unistd::{fchown, pipe2, Gid, Uid},
};

use crate::{
    error::{Error, Result},
    instance::StdioPaths,
    runtime_cli::Stdio3,
};

/// Copy threads need little stack; keep per-container memory small.
const COPY_STACK: usize = 64 * 1024;

/// Counts output copies still running, so Delete can wait for the last bytes.
#[derive(Default)]
pub struct Drain {
    running: Mutex<usize>,
    cond: Condvar,
}

impl Drain {
    fn add(&self) {
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }

    fn done(&self) {
        let mut n = self.running.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        self.cond.notify_all();
    }

    /// Waits until all copies ended, at most `timeout` (a daemon in the container
    /// may hold stdout open forever).
    pub fn wait(&self, timeout: Duration) {
        let n = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.cond.wait_timeout_while(n, timeout, |n| *n > 0);
    }
}

/// The shim's side of a running process's stdio.
pub struct ProcessIo {
    /// Writer into the process's stdin (pipe or pty master); `None` once closed.
    stdin: Arc<Mutex<Option<File>>>,
    /// pty master, for resize.
    console: Option<File>,
    pub drain: Arc<Drain>,
}

impl ProcessIo {
    pub fn close_stdin(&self) {
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let Some(console) = &self.console else {
            return Ok(());
        };
        let ws = libc::winsize {
            ws_row: u16::try_from(height).unwrap_or(u16::MAX),
            ws_col: u16::try_from(width).unwrap_or(u16::MAX),
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        use std::os::fd::AsRawFd;
        // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which is valid for
        // the duration of the call; the fd is an open pty master we own.
        let rc = unsafe { libc::ioctl(console.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        if rc < 0 {
            return Err(Error::io("resize pty")(std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

/// Stdio prepared before the runtime runs; finished into a [`ProcessIo`] after.
///
/// The output copies start only in [`PendingIo::finish`], once the runtime
/// succeeded (as containerd's runc shim starts `copyPipes` after `runc create`):
/// the runtime writes its own error to its stderr, which is the process's stderr
/// pipe, and that error already reaches containerd as the request's error. A
/// failed runtime call drops the pipes unread, so the message is shown once.
pub struct PendingIo {
    paths: StdioPaths,
    stdin: Arc<Mutex<Option<File>>>,
    drain: Arc<Drain>,
    console: Option<(tempfile::TempDir, UnixListener)>,
    /// (read end of an output pipe, containerd's FIFO) to copy once finished.
    outputs: Vec<(File, File)>,
}

impl PendingIo {
    /// Opens the FIFOs and pipes. `owner` is the host uid/gid of the container's root.
    pub fn prepare(paths: &StdioPaths, owner: (u32, u32)) -> Result<(Self, Stdio3)> {
        let mut pending = Self {
            paths: paths.clone(),
            stdin: Arc::new(Mutex::new(None)),
            drain: Arc::new(Drain::default()),
            console: None,
            outputs: Vec::new(),
        };
        if paths.terminal {
            // runc sends the pty master over this socket (SCM_RIGHTS). A path socket
            // in a fresh 0700 directory: nobody else can connect and hand us an fd.
            let dir = tempfile::Builder::new()
                .prefix("stockade-pty")
                .tempdir()
                .map_err(Error::io("create console socket dir"))?;
            let listener = UnixListener::bind(dir.path().join("pty.sock"))
                .map_err(Error::io("bind console socket"))?;
            listener
                .set_nonblocking(true)
                .map_err(Error::io("set console socket non-blocking"))?;
            pending.console = Some((dir, listener));
            let stdio = Stdio3::Given {
                stdin: Stdio::null(),
                stdout: Stdio::null(),
                stderr: Stdio::null(),
            };
            return Ok((pending, stdio));
        }
        let stdin = if paths.stdin.is_empty() {
            Stdio::null()
        } else {
            let (r, w) = pipe()?;
            chown(&r, owner)?;
            *pending.stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(File::from(w));
            Stdio::from(r)
        };
        let stdout = pending.output(&paths.stdout, owner)?;
        let stderr = pending.output(&paths.stderr, owner)?;
        if !paths.stdin.is_empty() {
            spawn_copy_in(&paths.stdin, Arc::clone(&pending.stdin))?;
        }
        Ok((
            pending,
            Stdio3::Given {
                stdin,
                stdout,
                stderr,
            },
        ))
    }

    fn output(&mut self, path: &str, owner: (u32, u32)) -> Result<Stdio> {
        if path.is_empty() {
            return Ok(Stdio::null());
        }
        let sink = open_output(path)?;
        let (r, w) = pipe()?;
        chown(&w, owner)?;
        self.outputs.push((File::from(r), sink));
        Ok(Stdio::from(w))
    }

    pub fn console_socket(&self) -> Option<PathBuf> {
        self.console
            .as_ref()
            .map(|(d, _)| d.path().join("pty.sock"))
    }

    /// After the runtime succeeded: start the output copies, or receive the pty
    /// master and start its copies.
    pub fn finish(self) -> Result<ProcessIo> {
        for (reader, sink) in self.outputs {
            spawn_copy_out(reader, sink, Arc::clone(&self.drain))?;
        }
        let Some((_dir, listener)) = self.console else {
            return Ok(ProcessIo {
                stdin: self.stdin,
                console: None,
                drain: self.drain,
            });
        };
        let master = receive_master(&listener)?;
        if !self.paths.stdin.is_empty() {
            let writer = master.try_clone().map_err(Error::io("dup pty master"))?;
            *self.stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(writer);
            spawn_copy_in(&self.paths.stdin, Arc::clone(&self.stdin))?;
        }
        if !self.paths.stdout.is_empty() {
            let reader = master.try_clone().map_err(Error::io("dup pty master"))?;
            spawn_copy_out(
                reader,
                open_output(&self.paths.stdout)?,
                Arc::clone(&self.drain),
            )?;
        }
        Ok(ProcessIo {
            stdin: self.stdin,
            console: Some(master),
            drain: self.drain,
        })
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys("create pipe"))
}

fn chown(fd: &OwnedFd, (uid, gid): (u32, u32)) -> Result<()> {
    if uid == 0 && gid == 0 {
        return Ok(());
    }
    fchown(
        fd.as_fd(),
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
    )
    .map_err(Error::sys("chown stdio pipe"))
}

/// How long [`open_output`] waits for the client's reader of an output FIFO.
/// ctr and containerd's CRI open theirs (asynchronously) as they ask for the
/// task, so it is normally there already or within milliseconds.
const READER_WAIT: Duration = Duration::from_secs(30);

/// Opens where output goes: a FIFO or a `file://` log.
///
/// A FIFO is opened only once the client's reader has it open. A FIFO's buffer
/// lives only while some end is open: had the shim opened it while nobody read,
/// a short-lived process could write, exit and have its copy close the FIFO
/// before the client's (asynchronous) open came, and the output was lost (`ctr
/// run` printed nothing; the client's open then waited for a writer that never
/// came). containerd's runc shim waits the same way (a blocking write-only open).
/// The fd kept is read-write, so a reader that goes away later does not turn the
/// process's writes into EPIPE.
fn open_output(path: &str) -> Result<File> {
    if let Some(file) = path.strip_prefix("file://") {
        return OpenOptions::new()
            .append(true)
            .create(true)
            .open(file)
            .map_err(Error::io(format!("open log file {file}")));
    }
    if path.contains("://") {
        return Err(Error::InvalidRequest(format!(
            "unsupported stdio URI {path}"
        )));
    }
    let probe = wait_for_reader(path, READER_WAIT)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(Error::io(format!("open {path}")));
    // Only now: with no writer open for a moment, the reader's next read would
    // return EOF and the client would stop reading before the first byte.
    drop(probe);
    file
}

/// Waits until `path` has a reader: a non-blocking write-only open of a FIFO
/// fails with ENXIO until then (fifo(7)). Returns that write-only fd, which the
/// caller keeps open until its own writer is: a reader woken by it and then left
/// without any writer reads EOF. Anything that is not a FIFO returns at once.
fn wait_for_reader(path: &str, limit: Duration) -> Result<File> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
        {
            Ok(probe) => return Ok(probe),
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {}
            Err(e) => return Err(Error::io(format!("open {path}"))(e)),
        }
        if started.elapsed() >= limit {
            return Err(Error::FifoNoReader {
                path: path.to_string(),
                waited: limit,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn spawn_copy_out(mut from: File, mut to: File, drain: Arc<Drain>) -> Result<()> {
    drain.add();
    let d = Arc::clone(&drain);
    std::thread::Builder::new()
        .name("io-out".into())
        .stack_size(COPY_STACK)
        .spawn(move || {
            // Ends at EOF, or EIO once a pty's last slave fd closes.
            let _ = std::io::copy(&mut from, &mut to);
            d.done();
        })
        .map(drop)
        .map_err(|e| {
            drain.done();
            Error::io("spawn io thread")(e)
        })
}

/// Copies containerd's stdin FIFO into the process until EOF or CloseIO.
fn spawn_copy_in(fifo: &str, to: Arc<Mutex<Option<File>>>) -> Result<()> {
    let fifo = fifo.to_string();
    std::thread::Builder::new()
        .name("io-in".into())
        .stack_size(COPY_STACK)
        .spawn(move || {
            // Blocks until containerd opens its writer end.
            let Ok(mut from) = File::open(&fifo) else {
                to.lock().unwrap_or_else(|p| p.into_inner()).take();
                return;
            };
            let mut buf = [0u8; 4096];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut guard = to.lock().unwrap_or_else(|p| p.into_inner());
                let Some(w) = guard.as_mut() else { break };
                if w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            to.lock().unwrap_or_else(|p| p.into_inner()).take();
        })
        .map(drop)
        .map_err(Error::io("spawn io thread"))
}

/// Accepts the runtime's connection on the console socket and takes the pty master.
/// The runtime already connected, sent and exited: the connection waits in the
/// backlog, so a non-blocking accept needs no thread.
fn receive_master(listener: &UnixListener) -> Result<File> {
    let (stream, _) = listener
        .accept()
        .map_err(Error::io("accept console socket"))?;
    let mut name = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    use std::os::fd::AsRawFd;
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(Error::sys("receive pty master"))?;
    for c in msg.cmsgs().map_err(Error::sys("read control message"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                for &extra in &fds[1..] {
                    // SAFETY: the kernel just installed these fds in our table for us;
                    // nothing else owns them.
                    drop(unsafe { OwnedFd::from_raw_fd(extra) });
                }
                // SAFETY: as above; ownership moves into the File exactly once.
                return Ok(unsafe { File::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::InvalidRequest(
        "runtime sent no pty master on the console socket".into(),
    ))
}

/// Host uid/gid of the container's root user, from the bundle's user namespace
/// mappings; `(0, 0)` without a user namespace.
pub fn container_root_owner(bundle: &Path) -> (u32, u32) {
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Linux {
        #[serde(default)]
        uid_mappings: Vec<Mapping>,
        #[serde(default)]
        gid_mappings: Vec<Mapping>,
    }
    #[derive(serde::Deserialize)]
    struct Mapping {
        #[serde(rename = "containerID")]
        container_id: u32,
        #[serde(rename = "hostID")]
        host_id: u32,
        size: u32,
    }
    #[derive(serde::Deserialize, Default)]
    struct Spec {
        #[serde(default)]
        linux: Option<Linux>,
    }
    let spec: Spec = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let linux = spec.linux.unwrap_or_default();
    let root = |maps: &[Mapping]| {
        maps.iter()
            .find(|m| m.container_id == 0 && m.size > 0)
            .map_or(0, |m| m.host_id)
    };
    (root(&linux.uid_mappings), root(&linux.gid_mappings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_owner_from_mappings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"linux":{"uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
                "gidMappings":[{"containerID":0,"hostID":200000,"size":65536}]}}"#,
        )
        .unwrap();
        assert_eq!(container_root_owner(dir.path()), (100000, 200000));
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        assert_eq!(container_root_owner(dir.path()), (0, 0));
    }

    /// A child writes `hello` through the stdout pipe, as the container would;
    /// returns once the shim's copy has ended.
    fn echo_hello_through(paths: &StdioPaths) -> ProcessIo {
        let (pending, stdio) = PendingIo::prepare(paths, (0, 0)).unwrap();
        let Stdio3::Given { stdout, .. } = stdio else {
            panic!()
        };
        let status = std::process::Command::new("/bin/echo")
            .arg("hello")
            .stdout(stdout)
            .status()
            .unwrap();
        assert!(status.success());
        let io = pending.finish().unwrap();
        io.drain.wait(Duration::from_secs(10));
        io
    }

    fn mkfifo(path: &Path) {
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }

    /// A client whose reader opens only after the process wrote and exited (ctr
    /// opens its FIFOs asynchronously): the output waits for it. Opened at once,
    /// the shim's copy wrote into the FIFO and closed it unread, the buffer went
    /// with it, and the late reader waited for a writer forever.
    #[test]
    fn output_of_a_quick_process_reaches_a_reader_that_opens_late() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("stdout");
        mkfifo(&fifo);
        let paths = StdioPaths {
            stdout: fifo.display().to_string(),
            ..Default::default()
        };
        let (got, read) = std::sync::mpsc::channel();
        let reader_fifo = fifo.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let mut out = String::new();
            let _ = File::open(&reader_fifo).and_then(|mut f| f.read_to_string(&mut out));
            let _ = got.send(out);
        });
        drop(echo_hello_through(&paths));
        let out = read
            .recv_timeout(Duration::from_secs(10))
            .expect("the late reader got no writer: the output was lost");
        assert_eq!(out, "hello\n");
    }

    #[test]
    fn an_output_fifo_nobody_reads_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("stdout");
        mkfifo(&fifo);
        let err =
            wait_for_reader(&fifo.display().to_string(), Duration::from_millis(100)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&fifo.display().to_string()), "{text}");
        assert!(matches!(err, Error::FifoNoReader { .. }), "{err:?}");
    }

    #[test]
    fn output_copies_to_file_uri_and_drains() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let paths = StdioPaths {
            stdout: format!("file://{}", log.display()),
            ..Default::default()
        };
        let _io = echo_hello_through(&paths);
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "hello\n");
    }
}
