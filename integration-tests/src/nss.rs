//! An image-supplied NSS module that reports every process that loads it: glibc's
//! `getpwuid_r` follows the image's `/etc/nsswitch.conf` and `dlopen()`s the
//! `libnss_<service>.so.2` it names, so a runtime that asks glibc for a user inside
//! the container runs the image's code (libcontainer patch 31). The tests put the
//! module into a rootfs, let the workload itself call glibc (proving the module
//! loads in that container) and read from its stderr lines which binaries loaded it.

use std::{io, path::Path, process::Command};

/// The module's C source: a constructor that says, on stderr, that it was loaded,
/// by which binary and under which seccomp mode.
const NSS_MODULE_C: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include <sys/prctl.h>
__attribute__((constructor)) static void loaded(void) {
    char exe[256] = {0};
    readlink("/proc/self/exe", exe, sizeof exe - 1);
    fprintf(stderr, "NSS-MODULE-LOADED exe=%s seccomp=%d\n", exe, prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
}
"#;

/// The line prefix the module prints when it is loaded.
const LOADED: &str = "NSS-MODULE-LOADED exe=";

/// Compiles the module with `cc` into `rootfs` as `libnss_stockadetest.so.2` and
/// names it first for `passwd` in the rootfs's nsswitch.conf, as a Debian image
/// names `systemd` ("passwd: files systemd").
pub fn install_nss_module(rootfs: &Path) -> io::Result<()> {
    let src = tempfile::tempdir()?;
    let c = src.path().join("module.c");
    std::fs::write(&c, NSS_MODULE_C)?;
    let lib = rootfs.join("lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&lib)?;
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(lib.join("libnss_stockadetest.so.2"))
        .arg(&c)
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "cc -shared module.c failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    std::fs::write(
        rootfs.join("etc/nsswitch.conf"),
        "passwd: stockadetest files\ngroup: files\n",
    )
}

/// The binaries that loaded the module, from its lines in `stderr`.
pub fn module_loaders(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.split_once(LOADED)?.1.split(' ').next())
        .map(str::to_string)
        .collect()
}
