//! `stockade-probe`: runs inside a test container and prints ONE JSON object
//! describing what the container sees. The host-side tests assert on that
//! report, so the probe itself makes no judgement: it only observes.
//!
//! Usage:
//!   probe                      default report (status, maps, root flags, cgroup limits, ...)
//!   probe syscall NAME [ARGS]  try one raw syscall, report {"ret","errno"}
//!                              (`syscall mkdir PATH MODE`: mkdirat(2) with an octal
//!                              MODE, and whether PATH is a directory afterwards)
//!   probe write PATH           create/truncate PATH and write to it
//!   probe read PATH            read PATH fully, report the byte count
//!   probe threads              spawn and join a thread (glibc: clone3, clone fallback)
//!   probe sleep N              sleep N seconds (a long-running init for exec tests)
//!   probe int80 getpid         i386 getpid (20) through `int $0x80` (x86_64 only)
//!   probe x32 getpid           x32 getpid (__X32_SYSCALL_BIT | 39) (x86_64 only)
//!   probe fds                  open fds (readlink of /proc/self/fd/*) and the cwd
//!   probe cat PATH             PATH's text (e.g. /proc/self/limits), or its errno
//!   probe stat PATH            lstat(2) of PATH: type, mode, owner, device numbers
//!   probe open PATH            open(2) PATH read-only and non-blocking, close it
//!   probe tcp-bind PORT        bind a TCP socket to 127.0.0.1:PORT
//!   probe tcp-connect PORT     connect a TCP socket to 127.0.0.1:PORT
//!   probe abstract-listen NAME [NETNS]
//!                              listen on the abstract unix socket `\0NAME` (first
//!                              entering the network namespace file NETNS, if given),
//!                              print the report, then hold the socket until stdin ends
//!   probe abstract-connect NAME
//!                              connect to the abstract unix socket `\0NAME`
//!   probe abstract-self NAME   listen on `\0NAME` and connect to it from this process
//!   probe signal PID SIG       kill(2) PID (`self`: this process) with SIG (0: check only)

use serde_json::{json, Map, Value};
use std::ffi::CString;
use std::io::{Read, Write};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let report = match args.first().map(String::as_str) {
        None | Some("report") => default_report(),
        Some("syscall") => match args.get(1) {
            Some(name) => try_syscall(name, &args[2..]),
            None => usage("syscall needs a NAME"),
        },
        Some("write") => match args.get(1) {
            Some(path) => write_file(path),
            None => usage("write needs a PATH"),
        },
        Some("read") => match args.get(1) {
            Some(path) => read_file(path),
            None => usage("read needs a PATH"),
        },
        Some("threads") => spawn_thread(),
        Some("sleep") => {
            let secs = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3600);
            std::thread::sleep(std::time::Duration::from_secs(secs));
            json!({"slept": secs})
        }
        Some("int80") => match args.get(1).map(String::as_str) {
            Some("getpid") => int80_getpid(),
            _ => usage("int80 knows only getpid"),
        },
        Some("x32") => match args.get(1).map(String::as_str) {
            Some("getpid") => x32_getpid(),
            _ => usage("x32 knows only getpid"),
        },
        Some("fds") => open_fds(),
        Some("cat") => match args.get(1) {
            Some(path) => cat_file(path),
            None => usage("cat needs a PATH"),
        },
        Some("stat") => match args.get(1) {
            Some(path) => stat_path(path),
            None => usage("stat needs a PATH"),
        },
        Some("open") => match args.get(1) {
            Some(path) => open_only(path),
            None => usage("open needs a PATH"),
        },
        Some("tcp-bind") => match args.get(1).and_then(|p| p.parse().ok()) {
            Some(port) => tcp_bind(port),
            None => usage("tcp-bind needs a PORT"),
        },
        Some("tcp-connect") => match args.get(1).and_then(|p| p.parse().ok()) {
            Some(port) => tcp_connect(port),
            None => usage("tcp-connect needs a PORT"),
        },
        Some("abstract-listen") => match args.get(1) {
            Some(name) => return abstract_listen(name, args.get(2).map(String::as_str)),
            None => usage("abstract-listen needs a NAME"),
        },
        Some("abstract-connect") => match args.get(1) {
            Some(name) => abstract_connect(name),
            None => usage("abstract-connect needs a NAME"),
        },
        Some("abstract-self") => match args.get(1) {
            Some(name) => abstract_self(name),
            None => usage("abstract-self needs a NAME"),
        },
        Some("signal") => match (args.get(1), args.get(2).and_then(|s| s.parse().ok())) {
            (Some(pid), Some(sig)) => send_signal(pid, sig),
            _ => usage("signal needs a PID and a SIG"),
        },
        Some("passwd-home") => match args.get(1).and_then(|u| u.parse().ok()) {
            Some(uid) => passwd_home(uid),
            None => usage("passwd-home needs a UID"),
        },
        Some(other) => usage(&format!("unknown subcommand {other}")),
    };
    print_report(&report);
}

fn print_report(report: &Value) {
    let mut out = std::io::stdout().lock();
    // One line, so a reader can take the last line of stdout as the report.
    let _ = writeln!(out, "{report}");
    let _ = out.flush();
}

fn outcome<T>(result: &std::io::Result<T>) -> Value {
    match result {
        Ok(_) => json!({"ok": true, "errno": 0}),
        Err(e) => json!({"ok": false, "errno": io_errno(e), "error": e.to_string()}),
    }
}

fn with_field(mut report: Value, key: &str, value: Value) -> Value {
    report[key] = value;
    report
}

/// Loopback only: the container's own network namespace. Landlock's bind hook runs
/// before the address is looked up, so a denied port is EACCES whatever the address.
fn tcp_bind(port: u16) -> Value {
    let result = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port));
    with_field(outcome(&result), "port", json!(port))
}

/// Nothing listens in the container's namespace, so a connect Landlock allows ends in
/// ECONNREFUSED (or ENETUNREACH with loopback down); a denied one in EACCES.
fn tcp_connect(port: u16) -> Value {
    let result = std::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port));
    with_field(outcome(&result), "port", json!(port))
}

fn abstract_addr(name: &str) -> std::io::Result<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
}

/// Abstract unix sockets live per network namespace, so a listener outside the
/// container (outside its Landlock domain) enters the container's namespace first.
/// The socket is held until stdin reaches EOF, so the caller ends it by closing the
/// pipe rather than by a signal.
fn abstract_listen(name: &str, netns: Option<&str>) {
    if let Some(path) = netns {
        if let Err(e) = enter_netns(path) {
            print_report(
                &json!({"ok": false, "errno": io_errno(&e), "error": e.to_string(), "netns": path}),
            );
            std::process::exit(1);
        }
    }
    let listener =
        abstract_addr(name).and_then(|a| std::os::unix::net::UnixListener::bind_addr(&a));
    let report = with_field(outcome(&listener), "name", json!(name));
    print_report(&report);
    if listener.is_ok() {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    }
}

fn enter_netns(path: &str) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(path)?;
    // SAFETY: ns is an open namespace file; setns(2) only changes this process's
    // network namespace (the probe is single-threaded here).
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Landlock's abstract unix scope denies the connect with EPERM when the listening
/// socket was created outside the caller's domain.
fn abstract_connect(name: &str) -> Value {
    let result = abstract_addr(name).and_then(|a| std::os::unix::net::UnixStream::connect_addr(&a));
    with_field(outcome(&result), "name", json!(name))
}

/// Listener and connector in one process, hence in one Landlock domain.
fn abstract_self(name: &str) -> Value {
    let result = abstract_addr(name).and_then(|a| {
        let listener = std::os::unix::net::UnixListener::bind_addr(&a)?;
        let stream = std::os::unix::net::UnixStream::connect_addr(&a)?;
        Ok((listener, stream))
    });
    with_field(outcome(&result), "name", json!(name))
}

fn send_signal(pid: &str, sig: libc::c_int) -> Value {
    let target: libc::pid_t = if pid == "self" {
        // SAFETY: getpid has no arguments and no side effects.
        unsafe { libc::getpid() }
    } else {
        match pid.parse() {
            Ok(p) => p,
            Err(_) => return usage("signal needs a numeric PID or self"),
        }
    };
    // SAFETY: integer-only arguments; the tests send signal 0, which only checks
    // permission (kill(2)).
    let ret = unsafe { libc::kill(target, sig) };
    let errno = if ret < 0 { errno() } else { 0 };
    json!({"pid": target, "signal": sig, "ok": ret == 0, "errno": errno})
}

fn usage(msg: &str) -> Value {
    json!({"error": msg})
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn io_errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

fn read_to_string(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn trimmed(path: &str) -> Value {
    read_to_string(path).map_or(Value::Null, |s| Value::String(s.trim().to_string()))
}

fn default_report() -> Value {
    json!({
        "status": status_fields(),
        "uid_map": trimmed("/proc/self/uid_map"),
        "gid_map": trimmed("/proc/self/gid_map"),
        "root": root_flags(),
        "hostname": hostname(),
        "cgroup": cgroup_limits(),
        "cwd": std::env::current_dir().ok().map(|p| p.display().to_string()),
        "landlock_abi": landlock_abi(),
        "pid": std::process::id(),
    })
}

/// The security-relevant lines of /proc/self/status, values as the kernel prints them.
fn status_fields() -> Value {
    const FIELDS: &[&str] = &[
        "Seccomp",
        "Seccomp_filters",
        "NoNewPrivs",
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "Uid",
        "Gid",
    ];
    let mut map = Map::new();
    for line in read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
    {
        if let Some((key, value)) = line.split_once(':') {
            if FIELDS.contains(&key) {
                map.insert(key.to_string(), Value::String(value.trim().to_string()));
            }
        }
    }
    Value::Object(map)
}

/// Flags of the mount at `/`: statvfs(3) for the kernel's view, plus the per-mount
/// options from mountinfo (proc(5)) so nosuid/nodev are visible even where statvfs
/// folds them differently.
fn root_flags() -> Value {
    let mut vfs = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    let root = CString::new("/").expect("no nul");
    // SAFETY: `root` is a valid nul-terminated path and `vfs` points to writable
    // storage of the right size; statvfs only writes into it.
    let rc = unsafe { libc::statvfs(root.as_ptr(), vfs.as_mut_ptr()) };
    let statvfs = if rc == 0 {
        // SAFETY: statvfs returned 0, so it filled the struct.
        let vfs = unsafe { vfs.assume_init() };
        json!({
            "rdonly": vfs.f_flag & libc::ST_RDONLY != 0,
            "nosuid": vfs.f_flag & libc::ST_NOSUID != 0,
            "nodev": vfs.f_flag & libc::ST_NODEV != 0,
        })
    } else {
        json!({"errno": errno()})
    };
    // mountinfo: the last line whose mount point is "/" is the one in effect.
    let options = read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(4) == Some(&"/")).then(|| fields.get(5).map(|s| s.to_string()))?
        })
        .next_back();
    let opts: Vec<&str> = options.as_deref().unwrap_or("").split(',').collect();
    json!({
        "statvfs": statvfs,
        "mount_options": options,
        "rdonly": opts.contains(&"ro"),
        "nosuid": opts.contains(&"nosuid"),
        "nodev": opts.contains(&"nodev"),
    })
}

fn hostname() -> Value {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its full length, which we pass.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Value::Null;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Value::String(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// Limits as seen from inside; v1 controller paths first, then the v2 unified files.
/// `self` is /proc/self/cgroup: the paths are relative to the cgroup namespace's
/// root, so inside a cgroup namespace of its own every line ends in `:/`.
fn cgroup_limits() -> Value {
    let first = |paths: &[&str]| {
        paths
            .iter()
            .find_map(|p| read_to_string(p).map(|s| json!({"path": p, "value": s.trim()})))
            .unwrap_or(Value::Null)
    };
    json!({
        "memory_limit": first(&[
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory.max",
        ]),
        "pids_max": first(&["/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"]),
        // blockIO.weight: v1 CFQ or BFQ file, v2 BFQ (same scale) or io.weight (1-10000).
        "io_weight": first(&[
            "/sys/fs/cgroup/blkio/blkio.weight",
            "/sys/fs/cgroup/blkio/blkio.bfq.weight",
            "/sys/fs/cgroup/io.bfq.weight",
            "/sys/fs/cgroup/io.weight",
        ]),
        "self": trimmed("/proc/self/cgroup"),
    })
}

/// landlock_create_ruleset(2) with LANDLOCK_CREATE_RULESET_VERSION returns the ABI.
fn landlock_abi() -> Value {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_long = 1;
    // SAFETY: with the VERSION flag the kernel ignores attr/size and touches no memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if ret < 0 {
        json!({"ret": ret, "errno": errno()})
    } else {
        json!({"ret": ret, "errno": 0})
    }
}

fn arg(args: &[String], i: usize, default: libc::c_long) -> libc::c_long {
    args.get(i)
        .and_then(|s| {
            if let Some(hex) = s.strip_prefix("0x") {
                libc::c_long::from_str_radix(hex, 16).ok()
            } else {
                s.parse().ok()
            }
        })
        .unwrap_or(default)
}

/// Raw syscall by name. Arguments are chosen so that a permitted call either
/// succeeds harmlessly or fails with a kernel errno other than the one a seccomp
/// filter would return; the tests compare errno values.
fn try_syscall(name: &str, args: &[String]) -> Value {
    let ret: libc::c_long = match name {
        "getpid" => {
            // SAFETY: getpid has no arguments and no side effects.
            unsafe { libc::syscall(libc::SYS_getpid) }
        }
        "getcwd" => {
            let mut buf = [0u8; 4096];
            // SAFETY: the buffer is writable for the length passed.
            unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) }
        }
        "uname" => {
            let mut uts = std::mem::MaybeUninit::<libc::utsname>::zeroed();
            // SAFETY: uts is writable storage for one struct utsname.
            unsafe { libc::syscall(libc::SYS_uname, uts.as_mut_ptr()) }
        }
        "unshare" => {
            let flags = arg(args, 0, libc::CLONE_NEWUSER as libc::c_long);
            // SAFETY: unshare only changes this short-lived probe's namespaces.
            unsafe { libc::syscall(libc::SYS_unshare, flags) }
        }
        "mount" => {
            let src = CString::new("none").expect("no nul");
            let target = CString::new("/tmp").expect("no nul");
            let fstype = CString::new("tmpfs").expect("no nul");
            // SAFETY: all pointers are valid C strings; data is NULL. A successful
            // mount only affects the container's own mount namespace.
            unsafe {
                libc::syscall(
                    libc::SYS_mount,
                    src.as_ptr(),
                    target.as_ptr(),
                    fstype.as_ptr(),
                    0 as libc::c_ulong,
                    std::ptr::null::<u8>(),
                )
            }
        }
        "keyctl" => {
            // KEYCTL_GET_KEYRING_ID (0) of KEY_SPEC_SESSION_KEYRING (-3), no create.
            // SAFETY: integer-only arguments.
            unsafe { libc::syscall(libc::SYS_keyctl, 0 as libc::c_long, -3 as libc::c_long, 0) }
        }
        "bpf" => {
            // BPF_MAP_CREATE with a NULL attr: EFAULT/EPERM if permitted, never a map.
            // SAFETY: the kernel validates the NULL pointer and fails.
            unsafe { libc::syscall(libc::SYS_bpf, 0 as libc::c_long, std::ptr::null::<u8>(), 0) }
        }
        "io_uring_setup" => {
            let mut params = [0u8; 120];
            // SAFETY: params is writable storage the size of struct io_uring_params.
            let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr()) };
            close_if_fd(fd)
        }
        "userfaultfd" => {
            // SAFETY: integer-only argument; a returned fd is closed.
            let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) };
            close_if_fd(fd)
        }
        "perf_event_open" => {
            // A zeroed attr with the right size: PERF_TYPE_HARDWARE cycles, this
            // thread, any cpu.
            let mut attr = [0u8; 128];
            attr[4..8].copy_from_slice(&128u32.to_ne_bytes());
            // SAFETY: attr is a readable buffer of the size written into it.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_perf_event_open,
                    attr.as_mut_ptr(),
                    0 as libc::c_long,
                    -1 as libc::c_long,
                    -1 as libc::c_long,
                    0 as libc::c_long,
                )
            };
            close_if_fd(fd)
        }
        "mkdir" => {
            let path = CString::new(mkdir_path(args)).expect("no nul");
            let mode = args
                .get(1)
                .and_then(|m| libc::c_long::from_str_radix(m, 8).ok())
                .unwrap_or(0o755);
            // SAFETY: a valid C string; makes at most one directory in the container.
            unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, path.as_ptr(), mode) }
        }
        "clone3" => clone3_child(),
        "personality" => {
            let persona = arg(args, 0, 0xffff_ffff);
            // SAFETY: integer-only argument; 0xffffffff only queries.
            unsafe { libc::syscall(libc::SYS_personality, persona) }
        }
        "socket" => {
            let family = arg(args, 0, libc::AF_INET as libc::c_long);
            let ty = arg(args, 1, libc::SOCK_STREAM as libc::c_long);
            let protocol = arg(args, 2, 0);
            // SAFETY: integer-only arguments; a returned fd is closed.
            let fd = unsafe { libc::syscall(libc::SYS_socket, family, ty, protocol) };
            close_if_fd(fd)
        }
        "ptrace" => {
            // PTRACE_PEEKDATA on pid 0 (no such tracee): ESRCH if permitted.
            // SAFETY: the kernel rejects the target before touching memory.
            unsafe {
                libc::syscall(
                    libc::SYS_ptrace,
                    libc::PTRACE_PEEKDATA as libc::c_long,
                    0 as libc::c_long,
                    0 as libc::c_long,
                    0 as libc::c_long,
                )
            }
        }
        "reboot" => {
            // Wrong magic numbers: the kernel checks CAP_SYS_BOOT, then returns
            // EINVAL; it can never reboot anything.
            // SAFETY: integer-only arguments, invalid by construction.
            unsafe { libc::syscall(libc::SYS_reboot, 0 as libc::c_long, 0 as libc::c_long, 0, 0) }
        }
        "setns" => {
            // fd -1: EBADF if permitted.
            // SAFETY: integer-only arguments.
            unsafe { libc::syscall(libc::SYS_setns, -1 as libc::c_long, 0 as libc::c_long) }
        }
        "chroot" => {
            let path = CString::new("/").expect("no nul");
            // SAFETY: valid C string; chroot("/") is a no-op for this process.
            unsafe { libc::syscall(libc::SYS_chroot, path.as_ptr()) }
        }
        other => return json!({"name": other, "error": "unknown syscall name"}),
    };
    let errno = if ret < 0 { errno() } else { 0 };
    let mut report = json!({"name": name, "ret": ret, "errno": errno});
    if name == "mkdir" {
        // A seccomp agent can answer success without making it: say what is there.
        report["exists"] = json!(std::path::Path::new(mkdir_path(args)).is_dir());
    }
    report
}

fn mkdir_path(args: &[String]) -> &str {
    args.first().map_or("/tmp/probe-mkdir", String::as_str)
}

fn close_if_fd(fd: libc::c_long) -> libc::c_long {
    if fd >= 0 {
        // SAFETY: fd was just returned by the kernel and is owned by nobody else.
        unsafe { libc::close(fd as libc::c_int) };
    }
    fd
}

/// clone3(2) with a minimal valid struct: fork-like (no CLONE_VM), SIGCHLD on exit.
/// The child exits at once; the parent reaps it and reports clone3's return value
/// (the child's pid) or its errno.
fn clone3_child() -> libc::c_long {
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
    }
    let mut cl = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // SAFETY: `cl` is a valid clone_args (CLONE_ARGS_SIZE_VER0) for its size. Without
    // CLONE_VM the child gets a copy of the address space, like fork(2), and only
    // calls _exit(2), which is async-signal-safe.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut cl as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret == 0 {
        // SAFETY: we are the child; leave without running any destructors.
        unsafe { libc::_exit(0) };
    }
    if ret > 0 {
        let mut status = 0;
        // SAFETY: ret is our own child's pid; status is writable.
        unsafe { libc::waitpid(ret as libc::pid_t, &mut status, 0) };
    }
    ret
}

fn write_file(path: &str) -> Value {
    let result = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(b"written by stockade-probe\n"));
    match result {
        Ok(()) => json!({"path": path, "ok": true, "errno": 0}),
        Err(e) => json!({"path": path, "ok": false, "errno": io_errno(&e), "error": e.to_string()}),
    }
}

fn read_file(path: &str) -> Value {
    let mut buf = Vec::new();
    let result = std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut buf));
    match result {
        Ok(n) => json!({"path": path, "ok": true, "bytes": n, "errno": 0}),
        Err(e) => {
            json!({"path": path, "ok": false, "bytes": 0, "errno": io_errno(&e), "error": e.to_string()})
        }
    }
}

/// glibc's own user lookup (getpwuid_r, which follows /etc/nsswitch.conf and loads
/// the NSS modules it names), and `HOME` as the process got it.
fn passwd_home(uid: u32) -> Value {
    // SAFETY: passwd and result are plain C structs zeroed before the call;
    // getpwuid_r writes at most buf.len() bytes into buf, which outlives the reads
    // of pw_dir below (it points into buf).
    let home = unsafe {
        let mut passwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let mut buf = vec![0 as libc::c_char; 16384];
        let rc = libc::getpwuid_r(uid, &mut passwd, buf.as_mut_ptr(), buf.len(), &mut result);
        (rc == 0 && !result.is_null() && !passwd.pw_dir.is_null()).then(|| {
            std::ffi::CStr::from_ptr(passwd.pw_dir)
                .to_string_lossy()
                .into_owned()
        })
    };
    json!({"uid": uid, "home": home, "HOME": std::env::var("HOME").ok()})
}

fn cat_file(path: &str) -> Value {
    match std::fs::read(path) {
        Ok(bytes) => json!({
            "path": path,
            "ok": true,
            "text": String::from_utf8_lossy(&bytes),
            "errno": 0
        }),
        Err(e) => json!({"path": path, "ok": false, "errno": io_errno(&e), "error": e.to_string()}),
    }
}

/// lstat(2), so a device node is reported as itself: its type letter as in
/// `linux.devices` (`c`, `b`, `p`) or `d`/`f`/`l`, permission bits, owner, and
/// major:minor of the device it stands for.
fn stat_path(path: &str) -> Value {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    match std::fs::symlink_metadata(path) {
        Ok(m) => {
            let ft = m.file_type();
            let kind = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else if ft.is_fifo() {
                "p"
            } else if ft.is_dir() {
                "d"
            } else if ft.is_symlink() {
                "l"
            } else {
                "f"
            };
            let rdev = m.rdev();
            json!({
                "path": path,
                "ok": true,
                "type": kind,
                "mode": m.mode() & 0o7777,
                "uid": m.uid(),
                "gid": m.gid(),
                "major": libc::major(rdev),
                "minor": libc::minor(rdev),
                "errno": 0
            })
        }
        Err(e) => json!({"path": path, "ok": false, "errno": io_errno(&e), "error": e.to_string()}),
    }
}

/// Only open(2): for a device node, the devices cgroup decides at open time
/// (EPERM), before any driver code runs.
fn open_only(path: &str) -> Value {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(_) => json!({"path": path, "ok": true, "errno": 0}),
        Err(e) => json!({"path": path, "ok": false, "errno": io_errno(&e), "error": e.to_string()}),
    }
}

fn spawn_thread() -> Value {
    match std::thread::Builder::new().spawn(|| 42).map(|h| h.join()) {
        Ok(Ok(42)) => json!({"ok": true}),
        Ok(_) => json!({"ok": false, "error": "thread returned a wrong value or panicked"}),
        Err(e) => json!({"ok": false, "errno": io_errno(&e), "error": e.to_string()}),
    }
}

/// getpid through the i386 entry point: `int $0x80` from a 64-bit process enters the
/// kernel's compat path and its seccomp data carries AUDIT_ARCH_I386 (i386 getpid is
/// 20). A filter that only knows x86_64 numbers must not let this through.
#[cfg(target_arch = "x86_64")]
fn int80_getpid() -> Value {
    const I386_GETPID: i32 = 20;
    let ret: i32;
    // SAFETY: i386 getpid takes no arguments and touches no memory. The compat entry
    // returns in eax and may clobber r8-r11 (older kernels do not preserve them).
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inlateout("eax") I386_GETPID => ret,
            lateout("r8") _, lateout("r9") _, lateout("r10") _, lateout("r11") _,
            options(nostack),
        );
    }
    // The kernel returns -errno in eax (e.g. -ENOSYS without IA32 emulation).
    if ret < 0 {
        json!({"abi": "i386", "ret": -1, "errno": -ret})
    } else {
        json!({"abi": "i386", "ret": ret, "errno": 0})
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn int80_getpid() -> Value {
    usage("int80 exists only on x86_64")
}

/// getpid through the x32 ABI: the x86_64 `syscall` instruction with
/// __X32_SYSCALL_BIT set. The seccomp data carries AUDIT_ARCH_X86_64, so only an
/// explicit check of the number catches it.
#[cfg(target_arch = "x86_64")]
fn x32_getpid() -> Value {
    const X32_SYSCALL_BIT: libc::c_long = 0x4000_0000;
    // SAFETY: getpid takes no arguments; without x32 support the kernel returns ENOSYS.
    let ret = unsafe { libc::syscall(X32_SYSCALL_BIT | libc::SYS_getpid) };
    let errno = if ret < 0 { errno() } else { 0 };
    json!({"abi": "x32", "ret": ret, "errno": errno})
}

#[cfg(not(target_arch = "x86_64"))]
fn x32_getpid() -> Value {
    usage("x32 exists only on x86_64")
}

/// Every open fd with what it points to. The fd of the directory being listed shows
/// up too; it is reported separately so the tests can ignore it.
fn open_fds() -> Value {
    let dir = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d,
        Err(e) => return json!({"error": e.to_string(), "errno": io_errno(&e)}),
    };
    let mut fds = Map::new();
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let target = std::fs::read_link(entry.path())
            .map(|t| t.display().to_string())
            .unwrap_or_else(|e| format!("<{e}>"));
        fds.insert(name, Value::String(target));
    }
    // The listing's own fd is the only one that is a directory named .../fd.
    let own: Vec<String> = fds
        .iter()
        .filter(|(_, t)| {
            t.as_str()
                .is_some_and(|t| t.starts_with("/proc/") && t.ends_with("/fd"))
        })
        .map(|(k, _)| k.clone())
        .collect();
    json!({
        "fds": fds,
        "listing_fd": own,
        "cwd": std::fs::read_link("/proc/self/cwd").ok().map(|p| p.display().to_string()),
        "root": std::fs::read_link("/proc/self/root").ok().map(|p| p.display().to_string()),
    })
}
