//! `stockade-seccomp-agent SOCKET OUT_DIR`: a seccomp agent for the tests, as the
//! OCI runtime-spec ("seccomp", `listenerPath`) has runtimes talk to one. It listens
//! on the unix socket SOCKET; for every connection it receives one message, the
//! container process state (JSON) with the seccomp listener fd as SCM_RIGHTS,
//! writes the state to `OUT_DIR/state-N.json` (N counts connections from 0; written
//! whole, then renamed) and answers that listener's notifications until every
//! process using the filter is gone.
//!
//! Answers, chosen by the mode argument of `mkdirat` (`mkdir`):
//!   0700 -> EXDEV (the kernel never runs the call)
//!   0711 -> success (0) without running the call: no directory appears
//!   other modes, other syscalls -> SECCOMP_USER_NOTIF_FLAG_CONTINUE (the kernel runs it)
//! Each answer is appended to `OUT_DIR/answers.log` as `PID NR MODE ANSWER`.

use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// `_IOWR('!', nr, size)` (linux/seccomp.h: SECCOMP_IOC_MAGIC is '!').
const fn iowr(nr: u64, size: usize) -> u64 {
    (3 << 30) | ((size as u64) << 16) | (0x21 << 8) | nr
}
const NOTIF_RECV: u64 = iowr(0, std::mem::size_of::<libc::seccomp_notif>());
const NOTIF_SEND: u64 = iowr(1, std::mem::size_of::<libc::seccomp_notif_resp>());

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [socket, out_dir] = args.as_slice() else {
        eprintln!("usage: stockade-seccomp-agent SOCKET OUT_DIR");
        std::process::exit(2);
    };
    let out_dir = PathBuf::from(out_dir);
    let listener = UnixListener::bind(socket).unwrap_or_else(|e| {
        eprintln!("bind {socket}: {e}");
        std::process::exit(1);
    });
    for (n, conn) in listener.incoming().enumerate() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        match receive(&conn) {
            Ok((state, fds)) => {
                let tmp = out_dir.join(format!(".state-{n}.json"));
                let done = out_dir.join(format!("state-{n}.json"));
                let record = serde_json::json!({"message": state, "fds_received": fds.len()});
                fs::write(&tmp, record.to_string()).expect("write state");
                fs::rename(&tmp, &done).expect("rename state");
                for fd in fds {
                    let log = out_dir.join("answers.log");
                    std::thread::spawn(move || answer(fd, &log));
                }
            }
            Err(e) => eprintln!("receive: {e}"),
        }
    }
}

/// One message and the fds that came with it: read until the bytes parse as JSON (a
/// stream may split it) or the connection ends. Not until EOF: runc 1.1 keeps its
/// end of the connection open until it exits.
fn receive(conn: &UnixStream) -> std::io::Result<(serde_json::Value, Vec<OwnedFd>)> {
    let mut data = Vec::new();
    let mut fds = Vec::new();
    loop {
        let mut buf = [0u8; 16384];
        // Room for a few fds: the spec sends one, more would be a finding.
        let mut cmsg = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain data; zero is a valid "no name, no control" value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cmsg) as _;
        // SAFETY: msg points to live buffers of the sizes it states.
        let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: msg was filled by recvmsg; the CMSG_* macros walk its control
        // buffer within msg_controllen.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let bytes = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    let first = libc::CMSG_DATA(c).cast::<RawFd>();
                    for i in 0..bytes / std::mem::size_of::<RawFd>() {
                        fds.push(OwnedFd::from_raw_fd(first.add(i).read_unaligned()));
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n as usize]);
        if serde_json::from_slice::<serde_json::Value>(&data).is_ok() {
            break;
        }
    }
    let state = serde_json::from_slice(&data)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok((state, fds))
}

/// Answer notifications on `listener` until no process uses its filter.
fn answer(listener: OwnedFd, log: &Path) {
    loop {
        let mut poll = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, -1) };
        if ready < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        if poll.revents & libc::POLLIN == 0 {
            // POLLHUP: every task of the filter has exited.
            return;
        }
        // SAFETY: seccomp_notif is plain data; the kernel requires it zeroed.
        let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: NOTIF_RECV writes one seccomp_notif into `notif`.
        if unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_RECV as _, &mut notif) } < 0 {
            // ENOENT: the caller died before we received it; go on.
            continue;
        }
        let nr = i64::from(notif.data.nr);
        let mode = match nr {
            libc::SYS_mkdirat => Some(notif.data.args[2] & 0o7777),
            #[cfg(target_arch = "x86_64")]
            libc::SYS_mkdir => Some(notif.data.args[1] & 0o7777),
            _ => None,
        };
        let mut resp = libc::seccomp_notif_resp {
            id: notif.id,
            val: 0,
            error: 0,
            flags: 0,
        };
        let what = match mode {
            Some(0o700) => {
                resp.error = -libc::EXDEV;
                "EXDEV"
            }
            Some(0o711) => "success",
            _ => {
                resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
                "continue"
            }
        };
        // SAFETY: NOTIF_SEND reads one seccomp_notif_resp.
        let sent = unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_SEND as _, &resp) };
        if sent == 0 {
            if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(log) {
                let _ = writeln!(f, "{} {nr} {:o} {what}", notif.pid, mode.unwrap_or(0));
            }
        }
    }
}
