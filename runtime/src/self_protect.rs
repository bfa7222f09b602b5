//! Protections of the runtime process itself, applied before it touches a container.

use std::ffi::{CString, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

use crate::commands::CommandError;
use crate::lockfile::{FileLock, Kind};

/// Where the runtime re-executes itself from: `<dir>/<dev>-<inode>/stockade`, a
/// read-only bind mount of the installed binary. Keyed by the binary's identity, so
/// an upgraded binary gets a mount of its own and an invocation never execs a
/// binary other than the one it was started as.
pub const PROTECTED_BINARY_DIR: &str = "/run/stockade/bin";

/// The file name of the bind mount in its `<dev>-<ino>` directory.
pub const PROTECTED_BINARY_NAME: &str = "stockade";

/// The directory of the protected copy of the binary with this identity. The
/// binary's entry point (`early_reexec`, x86-64) builds the same path.
fn protected_dir(exe: &fs::Metadata) -> PathBuf {
    Path::new(PROTECTED_BINARY_DIR).join(format!("{:x}-{:x}", exe.dev(), exe.ino()))
}

/// Make sure this process runs from a binary nothing can open for writing.
///
/// CVE-2019-5736: a process inside the container could open `/proc/<pid>/exe` of a
/// runtime process that joined its namespaces (or of its own init, through a
/// `#!/proc/self/exe` workload) and overwrite the host's runtime binary. If the
/// binary we run from sits on a read-only mount, `/proc/<pid>/exe` names that mount
/// and every open for writing fails with EROFS, whoever asks.
///
/// The first invocation of a binary bind-mounts it read-only under
/// [`PROTECTED_BINARY_DIR`]; every
/// container-entering invocation then re-executes from there, which costs one execve
/// instead of copying the binary into a sealed memfd each time (runc, crun). Where a
/// mount is impossible we fall back to that sealed copy. On x86-64 the binary's
/// entry point re-executes from an existing mount before the C library starts
/// (`early_reexec` in the binary), so this finds the work done, unless the mount is
/// not there yet.
pub fn run_from_read_only_binary() -> Result<(), CommandError> {
    if runs_from_unwritable_binary() {
        return Ok(());
    }
    match prepare_protected_binary() {
        Ok(target) => reexec(&target),
        Err(e) => {
            tracing::debug!(error = %e, "no read-only bind of the runtime binary; using a sealed copy");
            pentacle::ensure_sealed().map_err(CommandError::io(
                "failed to re-execute from a sealed copy of the runtime binary (CVE-2019-5736 protection)",
            ))
        }
    }
}

/// The read-only mount of this binary that containers are entered from, as
/// `stockade doctor` reports it: the binary itself when it is on a read-only mount
/// already, else its bind mount under [`PROTECTED_BINARY_DIR`] (made now if it is
/// not there yet, as the next create would make it). Or why there is none: then
/// every create, run and exec copies the binary into a sealed memfd and executes
/// the copy (still protected, but each start copies the whole binary).
pub fn protected_binary() -> Result<PathBuf, String> {
    if runs_from_unwritable_binary() {
        return fs::read_link("/proc/self/exe").map_err(|e| e.to_string());
    }
    prepare_protected_binary().map_err(|e| e.to_string())
}

/// True when `/proc/self/exe` is on a read-only mount or is a sealed memfd.
fn runs_from_unwritable_binary() -> bool {
    let on_ro_mount = statvfs("/proc/self/exe")
        .map(|s| s.flags().contains(FsFlags::ST_RDONLY))
        .unwrap_or(false);
    on_ro_mount || pentacle::is_sealed()
}

/// Bind-mount the running binary read-only under [`PROTECTED_BINARY_DIR`], unless
/// that mount exists already; returns its path.
fn prepare_protected_binary() -> std::io::Result<PathBuf> {
    let exe = fs::metadata("/proc/self/exe")?;
    let dir = protected_dir(&exe);
    let target = dir.join(PROTECTED_BINARY_NAME);
    fs::create_dir_all(&dir)?;
    // Serialise concurrent first invocations: one mounts, the others see it done.
    let _guard = FileLock::acquire(&dir.join(".lock"), Kind::Shared)?;

    // A mount there must hold this very binary: an older runtime bound the path it
    // was started from, which may have named another file by then, and anything
    // else mounted there is not ours to execute (nor to mount over).
    let same_file = fs::metadata(&target)
        .map(|m| m.dev() == exe.dev() && m.ino() == exe.ino())
        .unwrap_or(false);
    let mounted = statvfs(&target)
        .map(|s| s.flags().contains(FsFlags::ST_RDONLY))
        .unwrap_or(false);
    match (mounted, same_file) {
        (true, true) => return Ok(target),
        (true, false) => {
            return Err(std::io::Error::other(format!(
                "{} is a read-only mount of another file than this binary",
                target.display()
            )))
        }
        (false, _) => {}
    }
    remove_stale_mounts(&dir);
    // The mount point; never truncate what the path holds.
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&target)?;
    // Bind the file we run, through the magic link, not the path it was started
    // from: the path may name another file by now.
    mount(
        Some("/proc/self/exe"),
        &target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )?;
    let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    if let Err(e) = mount(None::<&str>, &target, None::<&str>, ro, None::<&str>) {
        let _ = umount2(&target, MntFlags::MNT_DETACH);
        return Err(e.into());
    }
    Ok(target)
}

/// Unmount protected copies of binaries that have since been deleted or replaced
/// (an upgrade): a mount keeps the old inode alive, and nothing execs it any more.
/// Best effort: a failure leaves a stale mount, never a wrong one.
/// `stockade gc`: unmount protected copies of binaries that were replaced since
/// (see [`remove_stale_mounts`]), keeping the running binary's.
pub fn remove_replaced_binaries() {
    let Ok(exe) = fs::metadata("/proc/self/exe") else {
        return;
    };
    remove_stale_mounts(&protected_dir(&exe));
}

fn remove_stale_mounts(keep: &Path) {
    let Ok(entries) = fs::read_dir(PROTECTED_BINARY_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let bin = dir.join(PROTECTED_BINARY_NAME);
        let deleted = fs::metadata(&bin).map(|m| m.nlink() == 0).unwrap_or(false);
        if dir != keep && deleted && umount2(&bin, MntFlags::MNT_DETACH).is_ok() {
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

/// Replace this process with `binary`, same arguments and environment.
fn reexec(binary: &Path) -> Result<(), CommandError> {
    let to_c = |s: OsString| CString::new(s.as_bytes()).ok();
    let args: Option<Vec<CString>> = std::env::args_os().map(to_c).collect();
    let env: Option<Vec<CString>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_c(kv)
        })
        .collect();
    let path = CString::new(binary.as_os_str().as_bytes()).ok();
    let (Some(args), Some(env), Some(path)) = (args, env, path) else {
        return Err(CommandError::Io {
            what: "cannot re-execute: an argument or variable contains a NUL byte".into(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        });
    };
    let err = nix::unistd::execve(&path, &args, &env).unwrap_err();
    Err(CommandError::Io {
        what: format!("failed to re-execute from {}", binary.display()),
        source: err.into(),
    })
}

/// Make this process (and the container init forked from it) non-dumpable until the
/// workload's execve.
///
/// CVE-2016-9962: while the init still holds host resources (fds, the runtime's
/// memory), a process in the container must not be able to ptrace it or open its
/// /proc files. execve of the workload resets the flag as the kernel sees fit.
pub fn make_non_dumpable() -> Result<(), CommandError> {
    nix::sys::prctl::set_dumpable(false).map_err(CommandError::SelfHarden)?;
    if nix::sys::prctl::get_dumpable().map_err(CommandError::SelfHarden)? {
        return Err(CommandError::SelfHarden(nix::Error::EPERM));
    }
    Ok(())
}
