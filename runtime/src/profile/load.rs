//! Read, parse and validate a profile and the seccomp data it names. Every error names the
//! file and, for semantic errors, the key; nothing is defaulted, so a profile that loads is
//! exactly the profile its author wrote. An absent section stays absent (`None`): it is
//! never filled in with a default, and it enforces nothing.

use std::path::{Component, Path, PathBuf};

use super::schema::{IdRange, Limit, Profile, SeccompSection, SCHEMA_VERSION};
use super::seccomp_data::SeccompFilter;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {file}")]
    Parse {
        file: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid {file}: {key}: {problem}")]
    Invalid {
        file: String,
        key: String,
        problem: Problem,
    },
}

/// What is wrong with a key that parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("unsupported schema {0} (this runtime reads schema {SCHEMA_VERSION})")]
    UnsupportedSchema(u32),
    #[error("must not be empty")]
    Empty,
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    #[error("unknown syscall {0:?}")]
    UnknownSyscall(String),
    #[error("range {min}-{max} is reversed")]
    ReversedRange { min: u32, max: u32 },
    #[error("host range must not contain host id 0")]
    HostRootInRange,
    #[error("host range too small for one container of {0} ids")]
    HostRangeTooSmall(u32),
    #[error("default {default} exceeds max {max}")]
    DefaultAboveMax { default: u64, max: u64 },
    #[error("landlock ABI {0} does not exist (1-7)")]
    UnknownLandlockAbi(u8),
    #[error("must be a relative path without '..'")]
    NotRelative,
    #[error("{0:?} must be an absolute path")]
    NotAbsolute(String),
}

fn invalid(file: &str, key: impl Into<String>, problem: Problem) -> LoadError {
    LoadError::Invalid {
        file: file.to_owned(),
        key: key.into(),
        problem,
    }
}

/// Parse and validate profile text. `file` names it in errors. The seccomp filter it
/// names is not loaded (see [`load_profile`]).
pub fn parse_profile(text: &str, file: &str) -> Result<Profile, LoadError> {
    let profile: Profile = toml::from_str(text).map_err(|source| LoadError::Parse {
        file: file.to_owned(),
        source,
    })?;
    validate(&profile, file)?;
    Ok(profile)
}

/// Parse and validate seccomp data text.
pub fn parse_seccomp_filter(text: &str, file: &str) -> Result<SeccompFilter, LoadError> {
    let f: SeccompFilter = toml::from_str(text).map_err(|source| LoadError::Parse {
        file: file.to_owned(),
        source,
    })?;
    if f.schema != SCHEMA_VERSION {
        return Err(invalid(
            file,
            "schema",
            Problem::UnsupportedSchema(f.schema),
        ));
    }
    let whys = f
        .allow
        .iter()
        .map(|s| (&s.name, &s.why, "allow"))
        .chain(
            f.conditional
                .iter()
                .map(|s| (&s.name, &s.why, "conditional")),
        )
        .chain(f.errno.iter().map(|s| (&s.name, &s.why, "errno")))
        .chain(f.deny.iter().map(|s| (&s.name, &s.why, "deny")));
    for (name, why, list) in whys {
        if !crate::seccomp::is_known_syscall(name) {
            return Err(invalid(file, list, Problem::UnknownSyscall(name.clone())));
        }
        if why.trim().is_empty() {
            return Err(invalid(file, format!("{list}.{name}.why"), Problem::Empty));
        }
    }
    Ok(f)
}

fn read(path: &Path) -> Result<String, LoadError> {
    // A profile or its seccomp data named a FIFO or device: never hang or fill memory.
    crate::bounded_read::read_to_string(path, crate::bounded_read::CONFIG_CAP).map_err(|source| {
        LoadError::Read {
            path: path.to_owned(),
            source,
        }
    })
}

/// Load `<profiles_dir>/<name>.toml` and the seccomp filter it names (relative to
/// `profiles_dir`), if it has a `[seccomp]` section.
pub fn load_profile(profiles_dir: &Path, name: &str) -> Result<Profile, LoadError> {
    let path = profiles_dir.join(format!("{name}.toml"));
    let file = path.display().to_string();
    let mut profile = parse_profile(&read(&path)?, &file)?;
    if let Some(sc) = &profile.seccomp {
        let filter_path = profiles_dir.join(&sc.default_filter);
        let filter_file = filter_path.display().to_string();
        profile.seccomp_filter = Some(parse_seccomp_filter(&read(&filter_path)?, &filter_file)?);
    }
    Ok(profile)
}

fn check_range(file: &str, key: &str, r: &IdRange) -> Result<(), LoadError> {
    if r.min > r.max {
        return Err(invalid(
            file,
            key,
            Problem::ReversedRange {
                min: r.min,
                max: r.max,
            },
        ));
    }
    Ok(())
}

fn check_limit(file: &str, key: &str, l: &Limit) -> Result<(), LoadError> {
    if l.default > l.max {
        return Err(invalid(
            file,
            key,
            Problem::DefaultAboveMax {
                default: l.default,
                max: l.max,
            },
        ));
    }
    Ok(())
}

fn is_capability(name: &str) -> bool {
    name.starts_with("CAP_")
        && serde_json::from_value::<oci_spec::runtime::Capability>(serde_json::Value::String(
            name.to_owned(),
        ))
        .is_ok()
}

fn validate(p: &Profile, file: &str) -> Result<(), LoadError> {
    if p.schema != SCHEMA_VERSION {
        return Err(invalid(
            file,
            "schema",
            Problem::UnsupportedSchema(p.schema),
        ));
    }
    // Absent sections have no reason to check: they enforce nothing (see schema.rs).
    let reasons = [
        ("seccomp.reason", p.seccomp.as_ref().map(|s| &s.reason)),
        (
            "capabilities.reason",
            p.capabilities.as_ref().map(|s| &s.reason),
        ),
        ("process.reason", p.process.as_ref().map(|s| &s.reason)),
        (
            "user_namespace.reason",
            p.user_namespace.as_ref().map(|s| &s.reason),
        ),
        (
            "filesystem.reason",
            p.filesystem.as_ref().map(|s| &s.reason),
        ),
        ("mounts.reason", p.mounts.as_ref().map(|s| &s.reason)),
        (
            "namespaces.reason",
            p.namespaces.as_ref().map(|s| &s.reason),
        ),
        ("cgroups.reason", p.cgroups.as_ref().map(|s| &s.reason)),
        ("sysctls.reason", p.sysctls.as_ref().map(|s| &s.reason)),
        ("landlock.reason", p.landlock.as_ref().map(|s| &s.reason)),
        ("lsm.reason", p.lsm.as_ref().map(|s| &s.reason)),
    ];
    let non_empty = [("name", p.name.as_str()), ("version", p.version.as_str())]
        .into_iter()
        .chain(
            reasons
                .into_iter()
                .filter_map(|(k, r)| r.map(|r| (k, r.as_str()))),
        );
    for (key, v) in non_empty {
        if v.trim().is_empty() {
            return Err(invalid(file, key, Problem::Empty));
        }
    }
    if let Some(sc) = &p.seccomp {
        validate_seccomp(sc, file)?;
    }
    if let Some(c) = &p.capabilities {
        for cap in &c.allowed {
            if !is_capability(cap) {
                return Err(invalid(
                    file,
                    "capabilities.allowed",
                    Problem::UnknownCapability(cap.clone()),
                ));
            }
        }
    }
    if let Some(pr) = &p.process {
        for r in &pr.uid_ranges {
            check_range(file, "process.uid_ranges", r)?;
        }
        for r in &pr.gid_ranges {
            check_range(file, "process.gid_ranges", r)?;
        }
    }
    if let Some(un) = &p.user_namespace {
        if un.host_range.start == 0 {
            return Err(invalid(
                file,
                "user_namespace.host_range",
                Problem::HostRootInRange,
            ));
        }
        if un.container_size == 0 || un.container_size > un.host_range.size {
            return Err(invalid(
                file,
                "user_namespace.container_size",
                Problem::HostRangeTooSmall(un.container_size),
            ));
        }
    }
    let fs = p.filesystem.as_ref();
    let mounts = p.mounts.as_ref();
    let landlock = p.landlock.as_ref();
    // Every path a profile lists, with the key it sits under: the error names the
    // key and shows the value (it used to print the value where the key belongs).
    fn indexed<'v>(
        key: &'static str,
        values: &'v [String],
    ) -> impl Iterator<Item = (String, &'v String)> + 'v {
        values
            .iter()
            .enumerate()
            .map(move |(i, v)| (format!("{key}[{i}]"), v))
    }
    let mut paths: Vec<(String, &String)> = Vec::new();
    if let Some(f) = fs {
        paths.extend(indexed("filesystem.masked_paths", &f.masked_paths));
        paths.extend(indexed("filesystem.readonly_paths", &f.readonly_paths));
    }
    if let Some(pr) = &p.process {
        paths.extend(indexed("process.forbidden_cwd", &pr.forbidden_cwd));
    }
    if let Some(m) = mounts {
        paths.extend(indexed(
            "mounts.bind_source_prefixes",
            &m.bind_source_prefixes,
        ));
        for (i, f) in m.forbidden_sources.iter().enumerate() {
            paths.push((format!("mounts.forbidden_sources[{i}].path"), &f.path));
        }
    }
    if let Some(l) = landlock {
        for (i, r) in l.fs.iter().enumerate() {
            paths.push((format!("landlock.fs[{i}].path"), &r.path));
        }
    }
    for (key, path) in paths {
        if !path.starts_with('/') {
            return Err(invalid(file, key, Problem::NotAbsolute(path.clone())));
        }
    }
    for (i, f) in mounts
        .into_iter()
        .flat_map(|m| &m.forbidden_sources)
        .enumerate()
    {
        if f.reason.trim().is_empty() {
            return Err(invalid(
                file,
                format!("mounts.forbidden_sources[{i}].reason"),
                Problem::Empty,
            ));
        }
    }
    if let Some(g) = &p.cgroups {
        check_limit(file, "cgroups.memory_bytes", &g.memory_bytes)?;
        check_limit(file, "cgroups.cpu_millicores", &g.cpu_millicores)?;
        check_limit(file, "cgroups.pids", &g.pids)?;
    }
    if let Some(l) = landlock {
        for (i, r) in l.fs.iter().enumerate() {
            if r.reason.trim().is_empty() {
                return Err(invalid(
                    file,
                    format!("landlock.fs[{i}].reason"),
                    Problem::Empty,
                ));
            }
        }
        if !(1..=7).contains(&l.min_abi) {
            return Err(invalid(
                file,
                "landlock.min_abi",
                Problem::UnknownLandlockAbi(l.min_abi),
            ));
        }
    }
    Ok(())
}

fn validate_seccomp(sc: &SeccompSection, file: &str) -> Result<(), LoadError> {
    for d in &sc.deny {
        if !crate::seccomp::is_known_syscall(&d.name) {
            return Err(invalid(
                file,
                "seccomp.deny",
                Problem::UnknownSyscall(d.name.clone()),
            ));
        }
        if d.reason.trim().is_empty() {
            return Err(invalid(
                file,
                format!("seccomp.deny.{}.reason", d.name),
                Problem::Empty,
            ));
        }
    }
    let rel = Path::new(&sc.default_filter);
    if rel.is_absolute() || rel.components().any(|c| c == Component::ParentDir) {
        return Err(invalid(
            file,
            "seccomp.default_filter",
            Problem::NotRelative,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESTRICTED: &str = include_str!("../../../profiles/restricted.toml");

    fn err(text: &str) -> String {
        let e = parse_profile(text, "p.toml").unwrap_err();
        let mut s = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(c) = src {
            s.push_str(&format!(": {c}"));
            src = c.source();
        }
        s
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name() {
        let t = RESTRICTED.replace("[capabilities]", "[capabilities]\nallowd = []");
        let e = err(&t);
        assert!(e.contains("p.toml") && e.contains("allowd"), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let cases = [
            ("schema = 1", "schema = 2", "schema"),
            (
                "\"CAP_NET_BIND_SERVICE\"",
                "\"CAP_NET_BIND_SERVIC\"",
                "capabilities.allowed",
            ),
            ("name = \"bpf\"", "name = \"bpff\"", "seccomp.deny"),
            ("min_abi = ", "min_abi = 9 #", "landlock.min_abi"),
        ];
        for (from, to, key) in cases {
            assert!(RESTRICTED.contains(from), "{from}");
            let e = err(&RESTRICTED.replacen(from, to, 1));
            assert!(e.starts_with("invalid p.toml: ") && e.contains(key), "{e}");
        }
    }

    /// A relative path names its key and shows its value (the value used to stand
    /// where the key belongs: "invalid p.toml: proc: must be an absolute path").
    #[test]
    fn relative_path_names_key_and_value() {
        let t = RESTRICTED.replacen("masked_paths = [", "masked_paths = [\"proc/kcore\", ", 1);
        assert_eq!(
            err(&t),
            "invalid p.toml: filesystem.masked_paths[0]: \"proc/kcore\" must be an absolute path"
        );
    }

    #[test]
    fn sections_are_optional_and_absent_means_none() {
        let header =
            "schema = 1\nname = \"p\"\nversion = \"1\"\nstrictness = 0\nmode = \"enforce\"\n";
        let p = parse_profile(header, "p.toml").unwrap();
        assert_eq!((p.seccomp, p.landlock, p.lsm), (None, None, None));
        // A present section is still checked in full.
        let e = err(&format!("{header}[sysctls]\nreason = \"\"\nallowed = []\n"));
        assert_eq!(e, "invalid p.toml: sysctls.reason: must not be empty");
        let e = err(&format!("{header}[sysctls]\nreason = \"r\"\n"));
        assert!(e.contains("missing field `allowed`"), "{e}");
    }

    #[test]
    fn a_profile_without_seccomp_loads_no_filter() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("p.toml"),
            "schema = 1\nname = \"p\"\nversion = \"1\"\nstrictness = 0\nmode = \"enforce\"\n",
        )
        .unwrap();
        let p = load_profile(d.path(), "p").unwrap();
        assert!(p.seccomp.is_none() && p.seccomp_filter.is_none());
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            load_profile(d.path(), "nope"),
            Err(LoadError::Read { .. })
        ));
    }

    #[test]
    fn seccomp_data_rejects_unknown_syscalls() {
        let e = parse_seccomp_filter(
            "schema = 1\nname = \"f\"\ndefault_action = \"errno\"\ndefault_errno = 1\narchitectures = []\nallow = [{ name = \"reed\", why = \"r\" }]",
            "f.toml",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid f.toml: allow: unknown syscall \"reed\""
        );
    }
}
