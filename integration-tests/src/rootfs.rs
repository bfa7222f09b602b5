//! The test rootfs: Debian's `busybox-static` with applet links, our probe at
//! /usr/bin/probe plus the shared libraries it needs, and a minimal /etc.
//!
//! Built once per probe binary into `<target>/stockade-test-rootfs` under an
//! exclusive flock(2), so parallel test binaries never race; a stamp file records
//! which probe binary (size + mtime) it was built from. Each bundle then gets its
//! own copy (see `bundle.rs`), because tests write into it or chown it.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where Debian's busybox-static installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets linked into /bin; the tests and humans debugging them use these.
const APPLETS: &[&str] = &[
    "sh", "ash", "ls", "cat", "touch", "sleep", "id", "mount", "umount", "echo", "true", "false",
    "ps", "head", "tail", "dd", "hostname", "grep", "wc", "env", "mkdir", "rm", "stat", "test",
    "kill", "uname", "readlink", "printf", "pwd", "ln", "chmod", "tty",
];

static PROBE: OnceLock<PathBuf> = OnceLock::new();

/// Records the probe binary's path. Cargo only tells integration tests where it is
/// (`env!("CARGO_BIN_EXE_stockade-probe")` at their compile time), so the
/// [`runtime!`](crate::runtime!) macro passes it in from the test crate.
pub fn set_probe_binary(path: &str) {
    let _ = PROBE.set(PathBuf::from(path));
}

/// Path of the probe binary cargo built for this crate's tests: as recorded by
/// [`set_probe_binary`], else next to the test executable's `deps/` directory.
pub fn probe_binary() -> PathBuf {
    PROBE
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("current_exe");
            exe.parent()
                .and_then(Path::parent)
                .map(|d| d.join("stockade-probe"))
                .expect("test executable lives in <target>/<profile>/deps")
        })
        .clone()
}

/// The cargo target directory the tests were built into (`<target>/<profile>/probe`).
pub fn target_dir() -> PathBuf {
    let probe = probe_binary();
    probe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("probe binary {} has no target dir", probe.display()))
}

/// Returns the shared, read-only-by-convention template rootfs, building it if needed.
pub fn template() -> PathBuf {
    let base = target_dir().join("stockade-test-rootfs");
    fs::create_dir_all(&base).unwrap_or_else(|e| panic!("create {}: {e}", base.display()));
    let lock = fs::File::create(base.join("lock")).expect("create rootfs lock file");
    // SAFETY: the fd is valid for the lifetime of `lock`; flock only takes a lock.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock rootfs lock: {}", io::Error::last_os_error());

    let rootfs = base.join("rootfs");
    let stamp_path = base.join("stamp");
    let stamp = probe_stamp();
    if fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str()) && rootfs.is_dir() {
        return rootfs;
    }
    let staging = base.join("rootfs.new");
    let _ = fs::remove_dir_all(&staging);
    build(&staging).unwrap_or_else(|e| panic!("build test rootfs in {}: {e}", staging.display()));
    let _ = fs::remove_dir_all(&rootfs);
    fs::rename(&staging, &rootfs).expect("move staged rootfs into place");
    fs::write(&stamp_path, stamp).expect("write rootfs stamp");
    // The lock is released when `lock` is dropped.
    rootfs
}

fn probe_stamp() -> String {
    let probe = probe_binary();
    let meta = fs::metadata(&probe).unwrap_or_else(|e| panic!("stat {}: {e}", probe.display()));
    format!(
        "{} {} {}.{}\n",
        probe.display(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    )
}

fn build(root: &Path) -> io::Result<()> {
    for dir in [
        "bin", "usr/bin", "etc", "proc", "sys", "dev", "tmp", "root", "lib", "lib64",
    ] {
        fs::create_dir_all(root.join(dir))?;
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;

    if !Path::new(BUSYBOX).is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{BUSYBOX} missing: apt-get install -y busybox-static"),
        ));
    }
    fs::copy(BUSYBOX, root.join("bin/busybox"))?;
    for applet in APPLETS {
        symlink("busybox", root.join("bin").join(applet))?;
    }

    let probe = probe_binary();
    fs::copy(&probe, root.join("usr/bin/probe"))?;
    for lib in shared_libraries(&probe)? {
        let rel = lib.strip_prefix("/").unwrap_or(&lib);
        let dest = root.join(rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        // fs::copy follows symlinks, so the soname path gets the real file's bytes.
        fs::copy(&lib, &dest)?;
    }

    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    fs::write(root.join("etc/hostname"), "stockade-test\n")?;
    Ok(())
}

/// Absolute paths of the shared objects `ldd` resolves for `binary` (including the
/// dynamic loader), so the probe runs in a rootfs that has no distribution in it.
fn shared_libraries(binary: &Path) -> io::Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(binary).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ldd {} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let mut libs = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // Forms: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)",
        //        "/lib64/ld-linux-x86-64.so.2 (0x...)", "linux-vdso.so.1 (0x...)".
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    Ok(libs)
}

/// Copies the template into `dest` (which must not exist), preserving modes and links.
pub fn copy_to(dest: &Path) -> io::Result<()> {
    let template = template();
    let status = Command::new("cp")
        .arg("-a")
        .arg(&template)
        .arg(dest)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "cp -a {} {} failed: {status}",
            template.display(),
            dest.display()
        )))
    }
}

/// Gives every file of `rootfs` to `uid:gid` (for user-namespaced containers whose
/// root maps to an unprivileged host range).
pub fn chown_all(rootfs: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let status = Command::new("chown")
        .arg("-R")
        .arg("-h")
        .arg(format!("{uid}:{gid}"))
        .arg(rootfs)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "chown -R {uid}:{gid} {} failed: {status}",
            rootfs.display()
        )))
    }
}
