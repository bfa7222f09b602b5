//! Readers for the kernel's cgroup interface files, by format
//! (Documentation/admin-guide/cgroup-v2.rst, "Interface Files"): single values,
//! `max`-or-number limits, flat-keyed (`key value` lines) and nested-keyed
//! (`MAJ:MIN key=value ...` lines).
//!
//! Every reader takes the cgroup directory, so tests point it at a tempdir of fake
//! files. A missing file is `Ok(None)` (its controller is not enabled for the
//! cgroup, or the kernel predates it); unreadable or malformed content is an error.

use std::{
    collections::HashMap,
    io,
    num::ParseIntError,
    path::{Path, PathBuf},
};

/// Why a cgroup file could not be read into numbers.
#[derive(Debug, thiserror::Error)]
pub enum CgroupFileError {
    #[error("read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parse value {value:?} in {}", path.display())]
    ParseValue {
        path: PathBuf,
        value: String,
        #[source]
        source: ParseIntError,
    },
    #[error("malformed line {line:?} in {}", path.display())]
    MalformedLine { path: PathBuf, line: String },
}

/// The content of `dir/name`, `None` when the file does not exist.
pub fn read_optional(dir: &Path, name: &str) -> Result<Option<String>, CgroupFileError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(content) => Ok(Some(content)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupFileError::Read { path, source }),
    }
}

/// The content of `dir/name`, which must exist.
pub fn read_required(dir: &Path, name: &str) -> Result<String, CgroupFileError> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).map_err(|source| CgroupFileError::Read { path, source })
}

fn number(path: &Path, value: &str) -> Result<u64, CgroupFileError> {
    value.parse().map_err(|source| CgroupFileError::ParseValue {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })
}

/// Parses single-value content (one number) of the file at `path`.
pub fn parse_single(path: &Path, content: &str) -> Result<u64, CgroupFileError> {
    number(path, content.trim())
}

/// A single-value file such as `memory.current`.
pub fn single(dir: &Path, name: &str) -> Result<Option<u64>, CgroupFileError> {
    read_optional(dir, name)?
        .map(|c| parse_single(&dir.join(name), &c))
        .transpose()
}

/// A protobuf setter for one key of a flat-keyed file.
pub type Setter<T> = fn(&mut T, u64);

/// Sets each field whose key is in `values`; absent keys leave the field at 0.
pub fn fill<T>(target: &mut T, values: &HashMap<String, u64>, fields: &[(&str, Setter<T>)]) {
    for (key, set) in fields {
        if let Some(v) = values.get(*key) {
            set(target, *v);
        }
    }
}

/// A limit file such as `memory.max`: a number, or `max` for none, given as `unlimited`.
pub fn limit(dir: &Path, name: &str, unlimited: u64) -> Result<Option<u64>, CgroupFileError> {
    read_optional(dir, name)?
        .map(|c| match c.trim() {
            "max" => Ok(unlimited),
            v => number(&dir.join(name), v),
        })
        .transpose()
}

/// Parses flat-keyed content (`key value` per line) of the file at `path`.
pub fn parse_flat_keyed(
    path: &Path,
    content: &str,
) -> Result<HashMap<String, u64>, CgroupFileError> {
    content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut fields = line.split_whitespace();
            match (fields.next(), fields.next(), fields.next()) {
                (Some(key), Some(value), None) => Ok((key.to_owned(), number(path, value)?)),
                _ => Err(CgroupFileError::MalformedLine {
                    path: path.to_owned(),
                    line: line.to_owned(),
                }),
            }
        })
        .collect()
}

/// A flat-keyed file such as `memory.stat` or `cpu.stat`.
pub fn flat_keyed(dir: &Path, name: &str) -> Result<Option<HashMap<String, u64>>, CgroupFileError> {
    let path = dir.join(name);
    read_optional(dir, name)?
        .map(|c| parse_flat_keyed(&path, &c))
        .transpose()
}

/// One line of a nested-keyed file: a `MAJ:MIN` device and its `key=value` pairs.
#[derive(Debug, PartialEq, Eq)]
pub struct DeviceLine {
    pub major: u64,
    pub minor: u64,
    pub values: HashMap<String, u64>,
}

/// A nested-keyed per-device file such as `io.stat`.
pub fn nested_keyed(dir: &Path, name: &str) -> Result<Option<Vec<DeviceLine>>, CgroupFileError> {
    let path = dir.join(name);
    let Some(content) = read_optional(dir, name)? else {
        return Ok(None);
    };
    let malformed = |line: &str| CgroupFileError::MalformedLine {
        path: path.clone(),
        line: line.to_owned(),
    };
    content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut fields = line.split_whitespace();
            let device = fields.next().ok_or_else(|| malformed(line))?;
            let (major, minor) = device.split_once(':').ok_or_else(|| malformed(line))?;
            let values = fields
                .map(|kv| {
                    let (k, v) = kv.split_once('=').ok_or_else(|| malformed(line))?;
                    Ok((k.to_owned(), number(&path, v)?))
                })
                .collect::<Result<_, CgroupFileError>>()?;
            Ok(DeviceLine {
                major: number(&path, major)?,
                minor: number(&path, minor)?,
                values,
            })
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        dir
    }

    #[test]
    fn single_and_limit_values() {
        let d = dir_with(&[
            ("memory.current", "4096\n"),
            ("memory.max", "max\n"),
            ("pids.max", "64\n"),
        ]);
        assert_eq!(single(d.path(), "memory.current").unwrap(), Some(4096));
        assert_eq!(single(d.path(), "memory.peak").unwrap(), None);
        assert_eq!(
            limit(d.path(), "memory.max", u64::MAX).unwrap(),
            Some(u64::MAX)
        );
        assert_eq!(limit(d.path(), "pids.max", 0).unwrap(), Some(64));
    }

    #[test]
    fn flat_keyed_skips_blank_lines() {
        let d = dir_with(&[("cpu.stat", "usage_usec 7\n\nuser_usec 5\n")]);
        let m = flat_keyed(d.path(), "cpu.stat").unwrap().unwrap();
        assert_eq!((m["usage_usec"], m["user_usec"]), (7, 5));
    }

    #[test]
    fn malformed_content_is_a_typed_error() {
        let d = dir_with(&[
            ("memory.current", "lots\n"),
            ("memory.max", "-1\n"),
            ("cpu.stat", "usage_usec\n"),
            ("memory.stat", "anon 1 2\n"),
            ("memory.events", "oom_kill x\n"),
            ("io.stat", "8:0 rbytes=1 wbytes\n"),
            ("io.stat.2", "sda rbytes=1\n"),
            ("io.stat.3", "8:x rbytes=1\n"),
        ]);
        let p = d.path();
        assert!(matches!(
            single(p, "memory.current"),
            Err(CgroupFileError::ParseValue { value, .. }) if value == "lots"
        ));
        assert!(matches!(
            limit(p, "memory.max", u64::MAX),
            Err(CgroupFileError::ParseValue { .. })
        ));
        for name in ["cpu.stat", "memory.stat"] {
            assert!(
                matches!(
                    flat_keyed(p, name),
                    Err(CgroupFileError::MalformedLine { .. })
                ),
                "{name}"
            );
        }
        assert!(matches!(
            flat_keyed(p, "memory.events"),
            Err(CgroupFileError::ParseValue { .. })
        ));
        for name in ["io.stat", "io.stat.2"] {
            assert!(
                matches!(
                    nested_keyed(p, name),
                    Err(CgroupFileError::MalformedLine { .. })
                ),
                "{name}"
            );
        }
        assert!(matches!(
            nested_keyed(p, "io.stat.3"),
            Err(CgroupFileError::ParseValue { .. })
        ));
    }

    #[test]
    fn unreadable_file_is_a_read_error() {
        // A directory where a file is expected: read fails with EISDIR, not NotFound.
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("memory.stat")).unwrap();
        let err = flat_keyed(d.path(), "memory.stat").unwrap_err();
        assert!(matches!(err, CgroupFileError::Read { .. }), "{err:?}");
        assert!(matches!(
            read_required(d.path(), "cpu.stat"),
            Err(CgroupFileError::Read { .. })
        ));
    }
}
