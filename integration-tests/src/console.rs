//! The receiving end of `--console-socket`: a unix socket on which the runtime sends
//! the pty master of a `process.terminal: true` container as SCM_RIGHTS (what
//! containerd's shim does with runc's console socket protocol).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// A listening console socket in a private temporary directory.
pub struct ConsoleSocket {
    path: PathBuf,
    accept: Option<JoinHandle<io::Result<OwnedFd>>>,
    _dir: tempfile::TempDir,
}

impl ConsoleSocket {
    /// Binds the socket and accepts the runtime's single connection in a thread, so
    /// `create` (which blocks until the master is sent) can run meanwhile.
    pub fn listen() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stockade-console-")
            .tempdir()
            .expect("console socket tempdir");
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).expect("bind console socket");
        let accept = std::thread::spawn(move || {
            let (stream, _) = listener.accept()?;
            recv_fd(stream.as_raw_fd())
        });
        Self {
            path,
            accept: Some(accept),
            _dir: dir,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pty master the runtime sent. Call after `create` returned.
    pub fn master(mut self) -> io::Result<OwnedFd> {
        self.accept
            .take()
            .expect("master() is called once")
            .join()
            .expect("console accept thread panicked")
    }
}

/// Receives one fd passed as SCM_RIGHTS on the connected socket `sock` (unix(7)).
fn recv_fd(sock: i32) -> io::Result<OwnedFd> {
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for one cmsghdr carrying a few fds, aligned as cmsg(3) requires.
    let mut cmsg_buf = [0u64; 16];
    // SAFETY: msghdr is a plain C struct; all-zero is a valid empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_buf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg_buf);
    // SAFETY: msg points at live, writable buffers of the sizes it declares.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: msg was filled by recvmsg; the CMSG macros stay within msg_controllen.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: cmsg is non-null and points into cmsg_buf, as CMSG_FIRSTHDR/NXTHDR
        // guarantee.
        let hdr = unsafe { &*cmsg };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: an SCM_RIGHTS payload is an array of ints; we read the first.
            let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>()) };
            // SAFETY: the kernel just installed fd in our table; nobody else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        // SAFETY: as above, msg and cmsg are valid.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("no SCM_RIGHTS fd in the console socket message ({n} data bytes)"),
    ))
}

/// Reads the pty master until the slave side is closed everywhere (EIO) or `limit`
/// passes; returns what was read.
pub fn read_until_closed(master: &OwnedFd, limit: std::time::Duration) -> String {
    let deadline = std::time::Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: pfd is one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, 50) };
        if rc > 0 {
            // SAFETY: buf is writable for its length.
            let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break; // EIO: every slave fd is closed, the container is gone.
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        if std::time::Instant::now() >= deadline {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
