//! An overlay rootfs (containerd's snapshots) over idmapped lower layers.
//!
//! overlayfs itself cannot be idmapped, but it accepts idmapped layers (Linux 5.19+).
//! So the snapshot's overlay is rebuilt in place: every lower layer is cloned with
//! the container's idmapping, containerd's overlay at the rootfs path is replaced by
//! one over those clones with the same upper and work directories (overlayfs
//! refuses an upper directory another overlay still uses), and containerd later
//! unmounts it exactly as it would have unmounted its own. Copy-up and new files
//! are done with the mounter's (host root's) credentials but owned by the
//! container's ids, so the image behaves as owned by the container's root.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// One overlay mount as /proc/self/mountinfo describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayMount {
    pub mount_point: PathBuf,
    /// Per-mount flags (`ro`, `nosuid`, ...).
    pub flags: MsFlags,
    /// overlayfs options (`lowerdir=..,upperdir=..,workdir=..`), without `rw`/`ro`.
    pub options: Vec<String>,
}

impl OverlayMount {
    /// Lower layers, top first, as mounted.
    pub fn lowerdirs(&self) -> Vec<PathBuf> {
        self.option("lowerdir")
            .map(|v| split_lowerdirs(v).into_iter().map(PathBuf::from).collect())
            .unwrap_or_default()
    }

    /// Whether a read-write upper layer exists (a writable snapshot).
    pub fn has_upper(&self) -> bool {
        self.option("upperdir").is_some()
    }

    fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find_map(|o| o.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }

    /// The mount data string with `lowerdir` replaced by `lowers`.
    pub fn data_with_lowerdirs(&self, lowers: &[PathBuf]) -> String {
        stockade_mountapi::with_lowerdirs(&self.options, lowers).join(",")
    }

    /// The original mount data, to put containerd's overlay back after a failure.
    pub fn data(&self) -> String {
        self.options.join(",")
    }
}

/// `lowerdir` is `:`-separated, with `\:` and `\\` escapes.
fn split_lowerdirs(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().expect("never empty").push(n);
                }
            }
            ':' => out.push(String::new()),
            c => out.last_mut().expect("never empty").push(c),
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit)
        {
            let n = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(n);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

fn mount_flags(per_mount: &str) -> MsFlags {
    per_mount.split(',').fold(MsFlags::empty(), |f, o| {
        f | match o {
            "ro" => MsFlags::MS_RDONLY,
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "noatime" => MsFlags::MS_NOATIME,
            "nodiratime" => MsFlags::MS_NODIRATIME,
            "relatime" => MsFlags::MS_RELATIME,
            _ => MsFlags::empty(),
        }
    })
}

/// Parse one mountinfo line if it is an overlay mount.
pub fn parse_line(line: &str) -> Option<OverlayMount> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let right: Vec<&str> = right.splitn(3, ' ').collect();
    if right.first() != Some(&"overlay") || left.len() < 6 {
        return None;
    }
    let options = right
        .get(2)?
        .split(',')
        .filter(|o| *o != "rw" && *o != "ro")
        .map(str::to_owned)
        .collect();
    Some(OverlayMount {
        mount_point: unescape(left[4]),
        flags: mount_flags(left[5]),
        options,
    })
}

/// The overlay mounted exactly at `path`, if any (the topmost one).
pub fn find(path: &Path) -> io::Result<Option<OverlayMount>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info
        .lines()
        .filter_map(parse_line)
        .rfind(|m| m.mount_point == path))
}

/// The caller's overlay as it was, so delete can put it back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedOverlay {
    pub mount_point: PathBuf,
    pub flags: u64,
    pub data: String,
}

impl SavedOverlay {
    fn mount(&self) -> nix::Result<()> {
        let flags = MsFlags::from_bits_truncate(self.flags);
        mount(
            Some("overlay"),
            &self.mount_point,
            Some("overlay"),
            flags,
            Some(self.data.as_str()),
        )
    }

    /// Replace the rebuilt overlay by the caller's original: the caller finds the
    /// rootfs it handed over, and unmounts it as it always would.
    pub fn restore(&self) -> io::Result<()> {
        umount2(&self.mount_point, MntFlags::empty())?;
        self.mount().map_err(io::Error::from)
    }
}

/// Replace the overlay at `ov.mount_point` by one whose lower layers are `lowers`.
/// On failure the caller's original overlay is put back.
pub fn remount_with_lowerdirs(ov: &OverlayMount, lowers: &[PathBuf]) -> io::Result<SavedOverlay> {
    let saved = SavedOverlay {
        mount_point: ov.mount_point.clone(),
        flags: ov.flags.bits(),
        data: ov.data(),
    };
    let target = &ov.mount_point;
    umount2(target, MntFlags::empty())?;
    let data = ov.data_with_lowerdirs(lowers);
    if let Err(e) = mount(
        Some("overlay"),
        target,
        Some("overlay"),
        ov.flags,
        Some(data.as_str()),
    ) {
        saved.mount()?;
        return Err(e.into());
    }
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "570 88 0:93 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs rw,relatime - overlay overlay rw,lowerdir=/var/lib/containerd/snapshots/2/fs:/var/lib/containerd/snapshots/1/fs,upperdir=/var/lib/containerd/snapshots/3/fs,workdir=/var/lib/containerd/snapshots/3/work,index=off";

    #[test]
    fn parses_containerds_overlay() {
        let m = parse_line(LINE).unwrap();
        assert_eq!(
            m.mount_point,
            Path::new("/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs")
        );
        assert_eq!(m.flags, MsFlags::MS_RELATIME);
        assert!(m.has_upper());
        assert_eq!(
            m.lowerdirs(),
            vec![
                PathBuf::from("/var/lib/containerd/snapshots/2/fs"),
                PathBuf::from("/var/lib/containerd/snapshots/1/fs")
            ]
        );
        let data = m.data_with_lowerdirs(&[PathBuf::from("/x/0"), PathBuf::from("/x:1")]);
        assert_eq!(
            data,
            "lowerdir=/x/0:/x\\:1,upperdir=/var/lib/containerd/snapshots/3/fs,workdir=/var/lib/containerd/snapshots/3/work,index=off"
        );
    }

    #[test]
    fn other_filesystems_and_escapes() {
        assert!(parse_line("22 1 254:0 / / rw,relatime - ext4 /dev/vda rw").is_none());
        let m =
            parse_line("1 2 0:9 / /a\\040b ro,nosuid - overlay overlay ro,lowerdir=/l1\\:x:/l2")
                .unwrap();
        assert_eq!(m.mount_point, Path::new("/a b"));
        assert_eq!(m.flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert!(!m.has_upper());
        assert_eq!(
            m.lowerdirs(),
            vec![PathBuf::from("/l1:x"), PathBuf::from("/l2")]
        );
    }
}
