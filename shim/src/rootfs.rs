//! Mounting the rootfs containerd hands over (e.g. an overlay from the snapshotter)
//! onto `<bundle>/rootfs`, and taking it down again.
//!
//! Mounts are done in this thread with mount(2): no fork from the threaded shim.

use std::path::Path;

use containerd_shim::protos::types::mount::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Error, Result};

/// mount(8)-style option words that are flags, not filesystem data.
fn flag(word: &str) -> Option<(bool, MsFlags)> {
    let f = match word {
        "ro" => (false, MsFlags::MS_RDONLY),
        "rw" => (true, MsFlags::MS_RDONLY),
        "nosuid" => (false, MsFlags::MS_NOSUID),
        "suid" => (true, MsFlags::MS_NOSUID),
        "nodev" => (false, MsFlags::MS_NODEV),
        "dev" => (true, MsFlags::MS_NODEV),
        "noexec" => (false, MsFlags::MS_NOEXEC),
        "exec" => (true, MsFlags::MS_NOEXEC),
        "bind" => (false, MsFlags::MS_BIND),
        "rbind" => (false, MsFlags::MS_BIND | MsFlags::MS_REC),
        "noatime" => (false, MsFlags::MS_NOATIME),
        "relatime" => (false, MsFlags::MS_RELATIME),
        "sync" => (false, MsFlags::MS_SYNCHRONOUS),
        "remount" => (false, MsFlags::MS_REMOUNT),
        _ => return None,
    };
    Some(f)
}

/// Splits options into mount flags and the filesystem data string.
pub fn parse_options(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        match flag(o) {
            Some((true, f)) => flags.remove(f),
            Some((false, f)) => flags.insert(f),
            None => data.push(o.as_str()),
        }
    }
    (flags, data.join(","))
}

/// Mounts `mounts` in order onto `target`.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for m in mounts {
        let (flags, data) = parse_options(&m.options);
        let fstype = Some(m.type_.as_str()).filter(|t| !t.is_empty() && *t != "bind");
        mount(
            Some(m.source.as_str()),
            target,
            fstype,
            flags,
            Some(data.as_str()).filter(|d| !d.is_empty()),
        )
        .map_err(Error::sys(format!(
            "mount {} ({}) on {}",
            m.source,
            m.type_,
            target.display()
        )))?;
        // A bind mount ignores MS_RDONLY until remounted.
        if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
            mount(
                None::<&str>,
                target,
                None::<&str>,
                flags | MsFlags::MS_REMOUNT,
                None::<&str>,
            )
            .map_err(Error::sys(format!(
                "remount {} read-only",
                target.display()
            )))?;
        }
    }
    Ok(())
}

/// Unmounts everything stacked on `target`; not mounted is fine.
pub fn unmount_all(target: &Path) -> Result<()> {
    loop {
        match umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => {
                return Err(Error::sys(format!("unmount {}", target.display()))(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_split() {
        let opts: Vec<String> = ["index=off", "workdir=/w", "upperdir=/u", "lowerdir=/l1:/l2"]
            .map(String::from)
            .to_vec();
        let (flags, data) = parse_options(&opts);
        assert!(flags.is_empty());
        assert_eq!(data, "index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2");
    }

    #[test]
    fn bind_ro_flags() {
        let opts: Vec<String> = ["rbind", "ro", "nosuid"].map(String::from).to_vec();
        let (flags, data) = parse_options(&opts);
        assert_eq!(
            flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID
        );
        assert!(data.is_empty());
    }
}
