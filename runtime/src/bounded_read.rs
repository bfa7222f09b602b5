//! Reading configuration files the runtime is pointed at (`config.json`, profiles
//! and their seccomp data, the node config, an exec's process.json, an update's
//! resources): regular files only, and never more than a cap.
//!
//! A path naming a FIFO made `read` block forever, a character device such as
//! `/dev/zero` made it eat memory until the OOM killer came. The file is opened
//! with `O_NONBLOCK` (so opening a FIFO cannot block either) and checked with
//! fstat(2) on the opened fd, not the path, so it cannot be swapped in between.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Cap for a container's `config.json` (containerd's are a few KiB; inline seccomp
/// profiles make them tens of KiB).
pub const SPEC_CAP: u64 = 16 << 20;
/// Cap for a profile, its seccomp data, the node config and small documents.
pub const CONFIG_CAP: u64 = 4 << 20;

/// The whole content of the regular file at `path`, at most `cap` bytes.
pub fn read(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what}: only a regular file is read"),
        ));
    }
    read_capped(file, cap)
}

/// [`read`] as UTF-8 text.
pub fn read_to_string(path: &Path, cap: u64) -> io::Result<String> {
    String::from_utf8(read(path, cap)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// At most `cap` bytes of `reader` (e.g. stdin); more is an error, never truncation.
pub fn read_capped(reader: impl Read, cap: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("larger than the limit of {cap} bytes"),
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_only_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        std::fs::write(&f, "abc").unwrap();
        assert_eq!(read(&f, 3).unwrap(), b"abc");
        let e = read(&f, 2).unwrap_err();
        assert!(e.to_string().contains("limit of 2 bytes"), "{e}");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Returns at once (no writer needed), naming what it is.
        let e = read(&fifo, 10).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let e = read(Path::new("/dev/zero"), 10).unwrap_err();
        assert!(e.to_string().contains("device"), "{e}");
        let e = read(dir.path(), 10).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
    }
}
