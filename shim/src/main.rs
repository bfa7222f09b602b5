//! containerd-shim-stockade-v2: containerd's shim v2 for the Stockade runtime.
//!
//! Runtime name `io.containerd.stockade.v2`. One shim per pod (or per container
//! outside Kubernetes); every container operation execs the runc-compatible runtime
//! binary (`stockade` by default, `binary_name` in the runtime options).

mod bootstrap;
mod cgroup_path;
mod cli_instance;
mod error;
mod idmap;
mod instance;
mod named;
mod oom;
mod options;
mod rootfs;
mod runtime_cli;
mod service;
mod state;
mod stats;
mod stdio;

fn main() {
    // One malloc arena instead of glibc's one per allocating thread (up to eight per
    // core): the shim stays resident once per pod and its threads are few and mostly
    // idle, so per-thread arenas only hold memory (~100 kB per shim), not speed.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    // The holder of an idmapping's user namespace (see `idmap`): a fresh exec of
    // this binary that does nothing else.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == idmap::HOLDER_ARG)
    {
        idmap::hold();
        return;
    }
    if let Err(e) = bootstrap::run() {
        eprintln!("{}: {e:#}", bootstrap::RUNTIME_NAME);
        std::process::exit(1);
    }
}
