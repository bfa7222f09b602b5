//! Overlay rootfs mounts carrying `uidmap=`/`gidmap=` options.
//!
//! `stockade features` advertises idmapped mounts, so containerd 2.x hands a
//! `hostUsers: false` pod's snapshot over as an overlay whose options include
//! `uidmap=CONTAINER:HOST:SIZE` and `gidmap=...` (several mappings separated by
//! `,` inside one option word). Those are not overlayfs options (mount(2) returns
//! EINVAL): as containerd's own mount code does, every lower layer is cloned with
//! that idmapping (open_tree(2) + mount_setattr(2) `MOUNT_ATTR_IDMAP` +
//! move_mount(2)) and the overlay is mounted over the clones. overlayfs keeps its
//! own private references to its layers, so the clones are detached and their
//! directories removed right after: nothing is left but the overlay.
//!
//! The idmapping's user namespace is held by a child that the shim spawns (fork +
//! exec, never fork alone: the shim is threaded) in a new user namespace; its
//! mappings are written from here, its namespace file opened, and it is ended.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Error, Result};

/// First argument that makes the shim binary act as the user-namespace holder.
pub const HOLDER_ARG: &str = "--stockade-userns-holder";

/// The holder's whole job: keep its (new, empty) user namespace alive until the
/// shim closes our stdin.
pub fn hold() {
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
}

/// One `CONTAINER:HOST:SIZE` mapping: on-disk id `container` shows as `host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// An overlay mount's options with `uidmap=`/`gidmap=` taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdmappedOverlay {
    /// The overlayfs options (and flag words) that remain.
    pub options: Vec<String>,
    pub uid: Vec<IdMap>,
    pub gid: Vec<IdMap>,
}

fn parse_maps(key: &str, value: &str) -> Result<Vec<IdMap>> {
    let bad = |why: &str| {
        Error::InvalidRequest(format!(
            "rootfs mount option {key}={value}: {why} (expected CONTAINER:HOST:SIZE[,...])"
        ))
    };
    let mut maps = Vec::new();
    for one in value.split(',') {
        let parts: Vec<&str> = one.split(':').collect();
        let [c, h, s] = parts[..] else {
            return Err(bad("not three fields"));
        };
        let num = |f: &str| {
            f.parse::<u32>()
                .map_err(|_| bad("not an unsigned 32-bit id"))
        };
        let map = IdMap {
            container: num(c)?,
            host: num(h)?,
            size: num(s)?,
        };
        if map.size == 0 {
            return Err(bad("empty mapping"));
        }
        if u64::from(map.host) + u64::from(map.size) > 1 << 32
            || u64::from(map.container) + u64::from(map.size) > 1 << 32
        {
            return Err(bad("mapping overflows the 32-bit id space"));
        }
        maps.push(map);
    }
    Ok(maps)
}

/// Splits `uidmap=`/`gidmap=` out of an overlay's options. `Ok(None)`: neither is
/// present (a plain overlay). Both must be present: an idmapping of only the users
/// would leave every file's group as the overflow id.
pub fn split(options: &[String]) -> Result<Option<IdmappedOverlay>> {
    let (mut uid, mut gid) = (None, None);
    let mut rest = Vec::new();
    for o in options {
        if let Some(v) = o.strip_prefix("uidmap=") {
            uid = Some(parse_maps("uidmap", v)?);
        } else if let Some(v) = o.strip_prefix("gidmap=") {
            gid = Some(parse_maps("gidmap", v)?);
        } else {
            rest.push(o.clone());
        }
    }
    match (uid, gid) {
        (None, None) => Ok(None),
        (Some(uid), Some(gid)) => Ok(Some(IdmappedOverlay {
            options: rest,
            uid,
            gid,
        })),
        (Some(_), None) => Err(Error::InvalidRequest(
            "rootfs mount option uidmap= given without gidmap=".into(),
        )),
        (None, Some(_)) => Err(Error::InvalidRequest(
            "rootfs mount option gidmap= given without uidmap=".into(),
        )),
    }
}

/// `lowerdir=` of overlay options, top layer first (`:`-separated, `\:` escaped).
pub fn lowerdirs(options: &[String]) -> Vec<PathBuf> {
    let Some(value) = options.iter().find_map(|o| o.strip_prefix("lowerdir=")) else {
        return Vec::new();
    };
    let mut out = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.last_mut().expect("never empty").extend(chars.next()),
            ':' => out.push(String::new()),
            c => out.last_mut().expect("never empty").push(c),
        }
    }
    out.into_iter()
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// The options with `lowerdir=` replaced by `lowers`.
pub use stockade_mountapi::with_lowerdirs;

/// The program that holds a fresh user namespace: the shim itself with
/// [`HOLDER_ARG`] (tests use another program that blocks on stdin).
pub struct Holder {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl Holder {
    pub fn this_shim() -> Self {
        Self {
            program: PathBuf::from("/proc/self/exe"),
            args: vec![HOLDER_ARG.into()],
        }
    }
}

fn map_text(maps: &[IdMap]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container, m.host, m.size))
        .collect()
}

/// A user namespace with these mappings, as an fd.
fn userns(holder: &Holder, uid: &[IdMap], gid: &[IdMap]) -> Result<OwnedFd> {
    let mut cmd = Command::new(&holder.program);
    cmd.args(&holder.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only makes the
    // unshare(2) system call, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).map_err(Into::into)
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(Error::io("spawn the user namespace holder"))?;
    let proc_dir = PathBuf::from(format!("/proc/{}", child.id()));
    // As root in the parent namespace we hold CAP_SETUID/CAP_SETGID over the
    // child's namespace: gid_map needs no `setgroups deny` first (user_namespaces(7)).
    let result = (|| {
        for (file, maps) in [("uid_map", uid), ("gid_map", gid)] {
            let path = proc_dir.join(file);
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|mut f| f.write_all(map_text(maps).as_bytes()))
                .map_err(Error::io(format!("write {}", path.display())))?;
        }
        let ns = proc_dir.join("ns/user");
        File::open(&ns)
            .map(OwnedFd::from)
            .map_err(Error::io(format!("open {}", ns.display())))
    })();
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Attach an idmapped clone of directory `source` on directory `target`.
fn idmapped_clone(userns: &OwnedFd, source: &Path, target: &Path) -> Result<()> {
    use std::os::fd::AsFd;
    let from = stockade_mountapi::Source::Path(source);
    stockade_mountapi::idmapped_clone(userns.as_fd(), from, target, false).map_err(|e| {
        let what = format!(
            "{} {} for an idmapped lower layer",
            e.step,
            source.display()
        );
        Error::io(what)(e.source)
    })
}

/// Mounts `ov` (an overlay whose options held `uidmap=`/`gidmap=`) on `target`:
/// lower layers cloned with the idmapping under `work` (created, then removed),
/// `flags` and the remaining options as for any mount.
pub fn mount_overlay(
    holder: &Holder,
    ov: &IdmappedOverlay,
    flags: MsFlags,
    data_of: impl Fn(&[String]) -> String,
    target: &Path,
    work: &Path,
) -> Result<()> {
    let lowers = lowerdirs(&ov.options);
    if lowers.is_empty() {
        return Err(Error::InvalidRequest(
            "rootfs overlay with uidmap=/gidmap= has no lowerdir=".into(),
        ));
    }
    let userns = userns(holder, &ov.uid, &ov.gid)?;
    std::fs::create_dir_all(work).map_err(Error::io(format!("create {}", work.display())))?;
    let mut clones = Vec::new();
    let result = (|| {
        for (i, lower) in lowers.iter().enumerate() {
            let clone = work.join(i.to_string());
            std::fs::create_dir(&clone)
                .map_err(Error::io(format!("create {}", clone.display())))?;
            clones.push(clone.clone());
            idmapped_clone(&userns, lower, &clone)?;
        }
        let data = data_of(&with_lowerdirs(&ov.options, &clones));
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            flags,
            Some(data.as_str()),
        )
        .map_err(Error::sys(format!(
            "mount the overlay over idmapped lower layers on {}",
            target.display()
        )))
    })();
    // overlayfs holds private clones of its layers: ours can go either way.
    for clone in clones.iter().rev() {
        let _ = umount2(clone, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(clone);
    }
    let _ = std::fs::remove_dir(work);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn containerd_idmap_options_are_split_out() {
        let o = opts(&[
            "index=off",
            "workdir=/s/3/work",
            "upperdir=/s/3/fs",
            "lowerdir=/s/2/fs:/s/1/fs",
            "uidmap=0:1000000:65536",
            "gidmap=0:1000000:65536,65536:2000000:1",
        ]);
        let ov = split(&o).unwrap().unwrap();
        assert_eq!(
            ov.options,
            opts(&[
                "index=off",
                "workdir=/s/3/work",
                "upperdir=/s/3/fs",
                "lowerdir=/s/2/fs:/s/1/fs"
            ])
        );
        assert_eq!(
            ov.uid,
            [IdMap {
                container: 0,
                host: 1_000_000,
                size: 65536
            }]
        );
        assert_eq!(ov.gid.len(), 2);
        assert_eq!(
            ov.gid[1],
            IdMap {
                container: 65536,
                host: 2_000_000,
                size: 1
            }
        );
        assert_eq!(
            lowerdirs(&ov.options),
            [PathBuf::from("/s/2/fs"), PathBuf::from("/s/1/fs")]
        );
        assert_eq!(
            with_lowerdirs(&ov.options, &[PathBuf::from("/w/0"), PathBuf::from("/w:1")])[3],
            "lowerdir=/w/0:/w\\:1"
        );
    }

    #[test]
    fn plain_overlay_is_untouched() {
        assert_eq!(split(&opts(&["lowerdir=/a", "upperdir=/b"])).unwrap(), None);
    }

    #[test]
    fn bad_idmap_options_name_the_option() {
        for (words, needle) in [
            (vec!["uidmap=0:1:2", "gidmap=0:1"], "gidmap=0:1"),
            (vec!["uidmap=a:1:2", "gidmap=0:1:2"], "uidmap=a:1:2"),
            (vec!["uidmap=0:1:0", "gidmap=0:1:2"], "empty"),
            (vec!["uidmap=0:4294967295:2", "gidmap=0:1:2"], "overflows"),
            (vec!["uidmap=0:1:2"], "without gidmap"),
            (vec!["gidmap=0:1:2"], "without uidmap"),
        ] {
            let err = split(&opts(&words)).unwrap_err().to_string();
            assert!(err.contains(needle), "{words:?}: {err}");
        }
    }
}
