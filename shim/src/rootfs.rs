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

/// Mounts `mounts` in order onto `target`. An overlay with `uidmap=`/`gidmap=`
/// options (containerd 2.x, `hostUsers: false`) is mounted over idmapped clones of
/// its lower layers (see `crate::idmap`).
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    mount_all_with(mounts, target, &crate::idmap::Holder::this_shim())
}

fn mount_all_with(mounts: &[Mount], target: &Path, holder: &crate::idmap::Holder) -> Result<()> {
    for m in mounts {
        if m.type_ == "overlay" {
            if let Some(ov) = crate::idmap::split(&m.options)? {
                let (flags, _) = parse_options(&ov.options);
                let work = target.with_file_name("idmapped-lowers");
                crate::idmap::mount_overlay(
                    holder,
                    &ov,
                    flags,
                    |o| parse_options(o).1,
                    target,
                    &work,
                )?;
                continue;
            }
        }
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

    /// containerd 2.x's overlay for a `hostUsers: false` pod, mounted by the shim: a
    /// file owned by 0:0 in the lower layer shows as the mapped host ids (before
    /// the fix mount(2) got `uidmap=` and failed with EINVAL), the layer keeps its
    /// owner, and no clone of a layer stays mounted. The holder here is `cat` (the
    /// test binary cannot re-exec itself as the shim); the shim's own holder mode is
    /// exercised by integration-tests/tests/containerd_rootfs.rs.
    #[test]
    fn overlay_with_uidmap_gidmap_mounts_over_idmapped_layers() {
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: needs root (mounts)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["lower", "upper", "work", "bundle/rootfs"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("lower/file"), "x").unwrap();
        std::os::unix::fs::chown(d.join("lower/file"), Some(0), Some(0)).unwrap();
        let m = Mount {
            type_: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "index=off".into(),
                format!("workdir={}", d.join("work").display()),
                format!("upperdir={}", d.join("upper").display()),
                format!("lowerdir={}", d.join("lower").display()),
                "uidmap=0:1230000:65536".into(),
                "gidmap=0:1240000:65536".into(),
            ],
            ..Default::default()
        };
        let target = d.join("bundle/rootfs");
        let holder = crate::idmap::Holder {
            program: "cat".into(),
            args: Vec::new(),
        };
        let mounted = mount_all_with(&[m], &target, &holder);
        let meta = std::fs::metadata(target.join("file"));
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        unmount_all(&target).unwrap();
        mounted.unwrap();
        let meta = meta.unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1_230_000, 1_240_000));
        let lower = std::fs::metadata(d.join("lower/file")).unwrap();
        assert_eq!((lower.uid(), lower.gid()), (0, 0));
        let work = d.join("bundle/idmapped-lowers");
        assert!(!work.exists(), "the layer clones' directory is removed");
        let work = work.display().to_string();
        assert!(
            !mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .any(|mp| mp.starts_with(&work)),
            "a layer clone stays mounted: {mounts}"
        );
    }
}
