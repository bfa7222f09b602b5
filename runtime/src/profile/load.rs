//! Read, parse and validate a profile and the seccomp data it names. Every error names the
//! file and, for semantic errors, the key; nothing is defaulted, so a profile that loads is
//! exactly the profile its author wrote. An absent section stays absent (`None`): it is
//! never filled in with a default, and it enforces nothing.

use std::path::{Component, Path, PathBuf};

use super::node_paths::NodePaths;
use super::schema::{IdRange, Limit, NsType, Profile, SeccompSection, SCHEMA_VERSION};
use super::seccomp_data::SeccompFilter;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot read {path} (seccomp.default_filter {filter:?} is relative to the profile's directory)"
    )]
    ReadFilter {
        path: PathBuf,
        filter: String,
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
    #[error("unknown capability {name:?}{}", suggest(suggestion))]
    UnknownCapability {
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown syscall {name:?}{}", suggest(suggestion))]
    UnknownSyscall {
        name: String,
        suggestion: Option<String>,
    },
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
    #[error(
        "{0:?} must be a path relative to the profile's directory, without '..' \
         (e.g. \"seccomp/default.toml\")"
    )]
    NotRelative(String),
    #[error("{0:?} must be an absolute path")]
    NotAbsolute(String),
    #[error("must be a path under /dev/")]
    NotUnderDev,
    // Displayed inline in `LoadError::Invalid`, which has no source: printed once.
    #[error("{0}")]
    PathTemplate(super::node_paths::PathTemplateError),
    #[error("{0:?} must not contain '..': it could name anything")]
    DotDot(String),
    #[error("{path:?} is not normalised; write {normal:?}")]
    NotNormalised { path: String, normal: String },
    #[error("a user namespace is requested by [user_namespace], not injected here")]
    UserNamespaceInjected,
}

fn suggest(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
}

/// One problem with a profile that parsed: the key (`capabilities.allowed`), the
/// offending value within it when the key holds a list, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub key: String,
    pub value: Option<String>,
    pub problem: Problem,
}

impl Invalid {
    fn new(key: impl Into<String>, problem: Problem) -> Self {
        Invalid {
            key: key.into(),
            value: None,
            problem,
        }
    }

    fn at(key: impl Into<String>, value: &str, problem: Problem) -> Self {
        Invalid {
            key: key.into(),
            value: Some(value.to_owned()),
            problem,
        }
    }
}

/// The closest name in `candidates` to `name` (edit distance at most a third of its
/// length), as a suggestion for a misspelt name.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let max = (name.len() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= max)
        .min()
        .map(|(_, c)| c.to_owned())
}

/// Edit distance counting a swap of two neighbours as one edit (optimal string
/// alignment): `bfp` is one edit from `bpf`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// What is wrong with a path a profile names inside the container or on the host: it
/// must be absolute, without `..`, and normalised (no `.`, `//` or trailing `/`), so
/// that the path a reviewer reads is the path enforced.
fn path_problem(path: &str) -> Option<Problem> {
    if !path.starts_with('/') {
        return Some(Problem::NotAbsolute(path.to_owned()));
    }
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if parts.contains(&"..") {
        return Some(Problem::DotDot(path.to_owned()));
    }
    let normal = format!(
        "/{}",
        parts
            .iter()
            .filter(|c| **c != ".")
            .copied()
            .collect::<Vec<_>>()
            .join("/")
    );
    (normal != path).then(|| Problem::NotNormalised {
        path: path.to_owned(),
        normal,
    })
}

fn invalid(file: &str, key: impl Into<String>, problem: Problem) -> LoadError {
    LoadError::Invalid {
        file: file.to_owned(),
        key: key.into(),
        problem,
    }
}

/// A store of parse results, keyed by the exact text they were parsed from.
///
/// Parsing the TOML of a profile and its seccomp data is most of the CPU a `create`
/// spends on admission (toml_edit: ~8 M instructions for `default`, against ~1 M
/// for everything else it decides), and the files change rarely. What a cache hands
/// back is never trusted: it is decoded and validated exactly as parsed text is, and
/// anything that does not decode or validate is parsed from the text again.
/// The implementation owns the keying (a digest of `kind`, `text` and the binary
/// that parsed it) and the storage; the pure core only sees bytes.
pub trait ParseCache: std::fmt::Debug {
    /// The bytes stored for `text` parsed as `kind`, if any.
    fn get(&self, kind: &'static str, text: &str) -> Option<Vec<u8>>;
    /// Store `value` for `text` parsed as `kind`. Failing to store costs only time.
    fn put(&self, kind: &'static str, text: &str, value: &[u8]);
}

/// No cache: every profile is parsed from its text.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCache;

impl ParseCache for NoCache {
    fn get(&self, _: &'static str, _: &str) -> Option<Vec<u8>> {
        None
    }
    fn put(&self, _: &'static str, _: &str, _: &[u8]) {}
}

/// [`ParseCache`] kind of a parsed profile (JSON of [`Profile`], before node paths).
pub const PROFILE_KIND: &str = "profile";
/// [`ParseCache`] kind of parsed seccomp data (JSON of [`SeccompFilter`]).
pub const FILTER_KIND: &str = "seccomp-data";

/// Parse and validate profile text. `file` names it in errors. The seccomp filter it
/// names is not loaded (see [`load_profile`]).
pub fn parse_profile(text: &str, file: &str) -> Result<Profile, LoadError> {
    parse_profile_with(text, file, &NoCache)
}

/// [`parse_profile`], taking the parse from `cache` when it holds one for `text`
/// that decodes and validates, and storing a fresh parse there otherwise.
pub fn parse_profile_with(
    text: &str,
    file: &str,
    cache: &dyn ParseCache,
) -> Result<Profile, LoadError> {
    parse_cached(text, file, cache, PROFILE_KIND, finish_profile)
}

/// One parse of `text` through `cache`: a cached value is decoded and put through
/// `finish` (the checks fresh text gets); what does not decode or pass is parsed
/// from the text again, and a fresh parse that passes is stored.
fn parse_cached<T: serde::Serialize + serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
    cache: &dyn ParseCache,
    kind: &'static str,
    finish: fn(T, &str) -> Result<T, LoadError>,
) -> Result<T, LoadError> {
    let cached = cache
        .get(kind, text)
        .and_then(|bytes| serde_json::from_slice::<T>(&bytes).ok())
        .and_then(|v| finish(v, file).ok());
    if let Some(value) = cached {
        return Ok(value);
    }
    let parsed: T = toml::from_str(text).map_err(|source| LoadError::Parse {
        file: file.to_owned(),
        source,
    })?;
    let value = finish(parsed, file)?;
    if let Ok(bytes) = serde_json::to_vec(&value) {
        cache.put(kind, text, &bytes);
    }
    Ok(value)
}

/// Validate a parsed profile and resolve its path templates for the standard node
/// directories: the same steps for text just parsed and for a cached parse.
fn finish_profile(mut profile: Profile, file: &str) -> Result<Profile, LoadError> {
    validate(&profile, file)?;
    // Standard node directories until a node config names its own.
    profile
        .resolve_node_paths(&NodePaths::default())
        .map_err(|(key, e)| invalid(file, key, Problem::PathTemplate(e)))?;
    Ok(profile)
}

/// Parse and validate seccomp data text.
pub fn parse_seccomp_filter(text: &str, file: &str) -> Result<SeccompFilter, LoadError> {
    parse_seccomp_filter_with(text, file, &NoCache)
}

/// [`parse_seccomp_filter`] through `cache`, as [`parse_profile_with`].
pub fn parse_seccomp_filter_with(
    text: &str,
    file: &str,
    cache: &dyn ParseCache,
) -> Result<SeccompFilter, LoadError> {
    parse_cached(text, file, cache, FILTER_KIND, validate_filter)
}

/// The checks parsed seccomp data must pass (text just parsed or a cached parse).
fn validate_filter(f: SeccompFilter, file: &str) -> Result<SeccompFilter, LoadError> {
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
            return Err(invalid(file, list, unknown_syscall(name)));
        }
        if why.trim().is_empty() {
            return Err(invalid(file, format!("{list}.{name}.why"), Problem::Empty));
        }
    }
    Ok(f)
}

fn read(path: &Path) -> Result<String, LoadError> {
    // A profile or its seccomp data naming a FIFO or device: never hang or fill memory.
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
    load_profile_with(profiles_dir, name, &NoCache)
}

/// [`load_profile`] with parses taken from, and stored in, `cache`. Both files are
/// read every time: a cached parse is found by their current content, so an edited
/// profile or filter is parsed afresh, whatever its timestamps say.
pub fn load_profile_with(
    profiles_dir: &Path,
    name: &str,
    cache: &dyn ParseCache,
) -> Result<Profile, LoadError> {
    let path = profiles_dir.join(format!("{name}.toml"));
    let file = path.display().to_string();
    let mut profile = parse_profile_with(&read(&path)?, &file, cache)?;
    if let Some(sc) = &profile.seccomp {
        profile.seccomp_filter = Some(load_filter_with(profiles_dir, sc, cache)?);
    }
    Ok(profile)
}

/// The seccomp data `sc.default_filter` names, relative to `profiles_dir`.
pub fn load_filter(profiles_dir: &Path, sc: &SeccompSection) -> Result<SeccompFilter, LoadError> {
    load_filter_with(profiles_dir, sc, &NoCache)
}

fn load_filter_with(
    profiles_dir: &Path,
    sc: &SeccompSection,
    cache: &dyn ParseCache,
) -> Result<SeccompFilter, LoadError> {
    let filter_path = profiles_dir.join(&sc.default_filter);
    let text = crate::bounded_read::read_to_string(&filter_path, crate::bounded_read::CONFIG_CAP)
        .map_err(|source| LoadError::ReadFilter {
        path: filter_path.clone(),
        filter: sc.default_filter.clone(),
        source,
    })?;
    parse_seccomp_filter_with(&text, &filter_path.display().to_string(), cache)
}

fn unknown_syscall(name: &str) -> Problem {
    Problem::UnknownSyscall {
        name: name.to_owned(),
        suggestion: crate::seccomp::closest_syscall(name),
    }
}

fn unknown_capability(name: &str) -> Problem {
    // Kubernetes spells capabilities without the prefix (`NET_BIND_SERVICE`).
    let prefixed = format!("CAP_{name}");
    let suggestion = if is_capability(&prefixed) {
        Some(prefixed)
    } else {
        closest(&name.to_ascii_uppercase(), ALL_CAPABILITIES.iter().copied())
    };
    Problem::UnknownCapability {
        name: name.to_owned(),
        suggestion,
    }
}

/// Every capability name the OCI spec knows, for suggestions.
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_READ",
    "CAP_AUDIT_WRITE",
    "CAP_BLOCK_SUSPEND",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_LINUX_IMMUTABLE",
    "CAP_MAC_ADMIN",
    "CAP_MAC_OVERRIDE",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_RAW",
    "CAP_PERFMON",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_CHROOT",
    "CAP_SYS_MODULE",
    "CAP_SYS_NICE",
    "CAP_SYS_PACCT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
];

fn is_capability(name: &str) -> bool {
    name.starts_with("CAP_")
        && serde_json::from_value::<oci_spec::runtime::Capability>(serde_json::Value::String(
            name.to_owned(),
        ))
        .is_ok()
}

fn validate(p: &Profile, file: &str) -> Result<(), LoadError> {
    match problems(p).into_iter().next() {
        Some(Invalid { key, problem, .. }) => Err(invalid(file, key, problem)),
        None => Ok(()),
    }
}

fn range_problem(key: &str, r: &IdRange) -> Option<Invalid> {
    (r.min > r.max).then(|| {
        Invalid::new(
            key,
            Problem::ReversedRange {
                min: r.min,
                max: r.max,
            },
        )
    })
}

fn limit_problem(key: &str, l: &Limit) -> Option<Invalid> {
    (l.default > l.max).then(|| {
        Invalid::new(
            key,
            Problem::DefaultAboveMax {
                default: l.default,
                max: l.max,
            },
        )
    })
}

/// Every problem of a parsed profile, in file order of the sections (loading reports
/// the first, `lint` all of them).
pub fn problems(p: &Profile) -> Vec<Invalid> {
    let mut out = Vec::new();
    if p.schema != SCHEMA_VERSION {
        out.push(Invalid::new("schema", Problem::UnsupportedSchema(p.schema)));
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
        ("devices.reason", p.devices.as_ref().map(|s| &s.reason)),
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
            out.push(Invalid::new(key, Problem::Empty));
        }
    }
    if let Some(sc) = &p.seccomp {
        seccomp_problems(sc, &mut out);
    }
    if let Some(c) = &p.capabilities {
        for cap in &c.allowed {
            if !is_capability(cap) {
                out.push(Invalid::at(
                    "capabilities.allowed",
                    cap,
                    unknown_capability(cap),
                ));
            }
        }
    }
    if let Some(pr) = &p.process {
        out.extend(
            pr.uid_ranges
                .iter()
                .filter_map(|r| range_problem("process.uid_ranges", r)),
        );
        out.extend(
            pr.gid_ranges
                .iter()
                .filter_map(|r| range_problem("process.gid_ranges", r)),
        );
    }
    if let Some(un) = &p.user_namespace {
        if un.host_range.start == 0 {
            out.push(Invalid::new(
                "user_namespace.host_range",
                Problem::HostRootInRange,
            ));
        }
        if un.container_size == 0 || un.container_size > un.host_range.size {
            out.push(Invalid::new(
                "user_namespace.container_size",
                Problem::HostRangeTooSmall(un.container_size),
            ));
        }
    }
    // Every path list, host side or container side: `writable_tmpfs = ["tmp"]` or
    // `"/x/../../etc"` would otherwise be mounted wherever it resolves.
    let fs = p.filesystem.as_ref();
    let mounts = p.mounts.as_ref();
    let landlock = p.landlock.as_ref();
    let lists: Vec<(&str, Vec<&String>)> = vec![
        (
            "filesystem.writable_tmpfs",
            fs.iter().flat_map(|f| &f.writable_tmpfs).collect(),
        ),
        (
            "filesystem.masked_paths",
            fs.iter().flat_map(|f| &f.masked_paths).collect(),
        ),
        (
            "filesystem.readonly_paths",
            fs.iter().flat_map(|f| &f.readonly_paths).collect(),
        ),
        (
            "process.forbidden_cwd",
            p.process.iter().flat_map(|pr| &pr.forbidden_cwd).collect(),
        ),
        // mounts.bind_source_prefixes may hold node directory variables: checked when
        // resolved (`resolve_node_paths`).
        (
            "mounts.forbidden_sources",
            mounts
                .iter()
                .flat_map(|m| m.forbidden_sources.iter().map(|f| &f.path))
                .collect(),
        ),
        (
            "landlock.fs",
            landlock
                .iter()
                .flat_map(|l| l.fs.iter().map(|r| &r.path))
                .collect(),
        ),
    ];
    for (key, paths) in lists {
        for path in paths {
            if let Some(problem) = path_problem(path) {
                out.push(Invalid::at(key, path, problem));
            }
        }
    }
    // Templates resolve against the standard directories here; a node config's own
    // directories are checked when it is parsed, so any valid template resolves there.
    for (i, t) in mounts
        .into_iter()
        .flat_map(|m| &m.bind_source_prefixes)
        .enumerate()
    {
        if let Err(e) = NodePaths::default().resolve(t) {
            out.push(Invalid::at(
                format!("mounts.bind_source_prefixes[{i}]"),
                t,
                Problem::PathTemplate(e),
            ));
        }
    }
    for f in mounts.into_iter().flat_map(|m| &m.forbidden_sources) {
        if f.reason.trim().is_empty() {
            out.push(Invalid::at(
                format!("mounts.forbidden_sources.{}.reason", f.path),
                &f.path,
                Problem::Empty,
            ));
        }
    }
    for (i, d) in p.devices.iter().flat_map(|s| &s.allowed).enumerate() {
        if !d.path.starts_with("/dev/") {
            out.push(Invalid::at(
                format!("devices.allowed[{i}].path"),
                &d.path,
                Problem::NotUnderDev,
            ));
        }
        if d.reason.trim().is_empty() {
            out.push(Invalid::new(
                format!("devices.allowed[{i}].reason"),
                Problem::Empty,
            ));
        }
    }
    for i in p.namespaces.iter().flat_map(|n| &n.inject) {
        let key = format!("namespaces.inject.{}", i.kind.oci_name());
        if i.kind == NsType::User {
            out.push(Invalid::new(key.clone(), Problem::UserNamespaceInjected));
        }
        if i.reason.trim().is_empty() {
            out.push(Invalid::new(format!("{key}.reason"), Problem::Empty));
        }
    }
    if let Some(g) = &p.cgroups {
        out.extend(limit_problem("cgroups.memory_bytes", &g.memory_bytes));
        out.extend(limit_problem("cgroups.cpu_millicores", &g.cpu_millicores));
        out.extend(limit_problem("cgroups.pids", &g.pids));
    }
    if let Some(l) = landlock {
        for r in &l.fs {
            if r.reason.trim().is_empty() {
                out.push(Invalid::at(
                    format!("landlock.fs.{}.reason", r.path),
                    &r.path,
                    Problem::Empty,
                ));
            }
        }
        if !(1..=7).contains(&l.min_abi) {
            out.push(Invalid::new(
                "landlock.min_abi",
                Problem::UnknownLandlockAbi(l.min_abi),
            ));
        }
    }
    out
}

fn seccomp_problems(sc: &SeccompSection, out: &mut Vec<Invalid>) {
    for d in &sc.deny {
        if !crate::seccomp::is_known_syscall(&d.name) {
            out.push(Invalid::at(
                "seccomp.deny",
                &d.name,
                unknown_syscall(&d.name),
            ));
        }
        if d.reason.trim().is_empty() {
            out.push(Invalid::at(
                format!("seccomp.deny.{}.reason", d.name),
                &d.name,
                Problem::Empty,
            ));
        }
    }
    let rel = Path::new(&sc.default_filter);
    if rel.is_absolute() || rel.components().any(|c| c == Component::ParentDir) {
        out.push(Invalid::new(
            "seccomp.default_filter",
            Problem::NotRelative(sc.default_filter.clone()),
        ));
    }
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

    /// A cache in memory that records what was asked and stored.
    #[derive(Debug, Default)]
    struct MemCache {
        entries: std::cell::RefCell<std::collections::HashMap<(String, String), Vec<u8>>>,
        hits: std::cell::Cell<usize>,
    }

    impl ParseCache for MemCache {
        fn get(&self, kind: &'static str, text: &str) -> Option<Vec<u8>> {
            let v = self
                .entries
                .borrow()
                .get(&(kind.to_owned(), text.to_owned()))
                .cloned();
            self.hits.set(self.hits.get() + usize::from(v.is_some()));
            v
        }
        fn put(&self, kind: &'static str, text: &str, value: &[u8]) {
            self.entries
                .borrow_mut()
                .insert((kind.to_owned(), text.to_owned()), value.to_vec());
        }
    }

    fn shipped_dir() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles"))
    }

    #[test]
    fn a_cached_parse_is_the_parse_of_the_text() {
        let cache = MemCache::default();
        for name in ["default", "baseline", "restricted", "unconfined"] {
            let fresh = load_profile(shipped_dir(), name).unwrap();
            let first = load_profile_with(shipped_dir(), name, &cache).unwrap();
            let hits = cache.hits.get();
            let second = load_profile_with(shipped_dir(), name, &cache).unwrap();
            assert_eq!(first, fresh, "{name}");
            assert_eq!(second, fresh, "{name}: the cached parse differs");
            let expected = 1 + usize::from(fresh.seccomp_filter.is_some());
            assert_eq!(
                cache.hits.get() - hits,
                expected,
                "{name}: not read from the cache"
            );
        }
    }

    #[test]
    fn a_cached_value_that_does_not_decode_or_validate_is_parsed_again() {
        let text = std::fs::read_to_string(shipped_dir().join("seccomp/default.toml")).unwrap();
        let fresh = parse_seccomp_filter(&text, "f.toml").unwrap();
        let cache = MemCache::default();
        cache.put(FILTER_KIND, &text, b"{ not json");
        assert_eq!(
            parse_seccomp_filter_with(&text, "f.toml", &cache).unwrap(),
            fresh
        );
        // Decodes, but names a syscall the table does not know: not used.
        let mut bad = fresh.clone();
        bad.allow[0].name = "no_such_syscall".into();
        cache.put(FILTER_KIND, &text, &serde_json::to_vec(&bad).unwrap());
        assert_eq!(
            parse_seccomp_filter_with(&text, "f.toml", &cache).unwrap(),
            fresh
        );
        // The fresh parse replaced the bad entry.
        let stored: SeccompFilter =
            serde_json::from_slice(&cache.get(FILTER_KIND, &text).unwrap()).unwrap();
        assert_eq!(stored, fresh);
        // A profile whose cached form fails validation: the text decides.
        let cache = MemCache::default();
        let mut p = parse_profile(RESTRICTED, "p.toml").unwrap();
        p.schema = SCHEMA_VERSION + 1;
        cache.put(PROFILE_KIND, RESTRICTED, &serde_json::to_vec(&p).unwrap());
        let got = parse_profile_with(RESTRICTED, "p.toml", &cache).unwrap();
        assert_eq!(got, parse_profile(RESTRICTED, "p.toml").unwrap());
    }

    #[test]
    fn text_that_does_not_parse_is_an_error_whatever_the_cache_holds() {
        let cache = MemCache::default();
        let broken = RESTRICTED.replace("[capabilities]", "[capabilities]\nallowd = []");
        assert!(parse_profile_with(&broken, "p.toml", &cache).is_err());
        assert!(cache.entries.borrow().is_empty(), "an error was cached");
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
            (
                "{ type = \"cgroup\", reason = \"",
                "{ type = \"user\", reason = \"",
                "namespaces.inject.user",
            ),
            (
                "\"without its own cgroup namespace a container sees the node's whole cgroup tree (every pod and QoS class) in /proc/self/cgroup and its cgroup mount\"",
                "\" \"",
                "namespaces.inject.cgroup.reason",
            ),
        ];
        for (from, to, key) in cases {
            assert!(RESTRICTED.contains(from), "{from}");
            let e = err(&RESTRICTED.replacen(from, to, 1));
            assert!(e.starts_with("invalid p.toml: ") && e.contains(key), "{e}");
        }
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
            "invalid f.toml: allow: unknown syscall \"reed\" (did you mean \"read\"?)"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_value() {
        let t = RESTRICTED
            .replacen("\"CAP_NET_BIND_SERVICE\"", "\"NET_BIND_SERVICE\"", 1)
            .replacen("name = \"bpf\"", "name = \"bpff\"", 1)
            .replacen(
                "writable_tmpfs = []",
                "writable_tmpfs = [\"tmp\", \"/x/../../etc\", \"/run/\"]",
                1,
            );
        let p: Profile = toml::from_str(&t).unwrap();
        let got: Vec<String> = problems(&p)
            .iter()
            .map(|i| format!("{}: {}", i.key, i.problem))
            .collect();
        assert_eq!(
            got,
            [
                "seccomp.deny: unknown syscall \"bpff\" (did you mean \"bpf\"?)",
                "capabilities.allowed: unknown capability \"NET_BIND_SERVICE\" (did you mean \"CAP_NET_BIND_SERVICE\"?)",
                "filesystem.writable_tmpfs: \"tmp\" must be an absolute path",
                "filesystem.writable_tmpfs: \"/x/../../etc\" must not contain '..': it could name anything",
                "filesystem.writable_tmpfs: \"/run/\" is not normalised; write \"/run\"",
            ]
        );
        // Loading refuses the profile on the first one.
        assert!(err(&t).contains("bpff"));
    }

    #[test]
    fn closest_suggests_near_names_only() {
        assert_eq!(closest("reed", ["read", "write"]), Some("read".into()));
        assert_eq!(closest("bfp", ["bpf", "brk"]), Some("bpf".into()));
        assert_eq!(closest("xyzzy", ["read", "write"]), None);
    }
}
