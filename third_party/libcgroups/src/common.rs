use std::fmt::{Debug, Display};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf, StripPrefixError};
use std::time::Duration;

use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, TMPFS_MAGIC, statfs};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
#[cfg(any(feature = "cgroupsv2_devices", feature = "v1"))]
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};

use super::stats::Stats;
use super::{systemd, v1, v2};

pub const CGROUP_PROCS: &str = "cgroup.procs";
pub const DEFAULT_CGROUP_ROOT: &str = "/sys/fs/cgroup";

#[cfg(feature = "systemd")]
#[inline]
fn is_true_root() -> Result<bool, WrappedIoError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(false);
    }
    let uid_map_path = "/proc/self/uid_map";
    let content = std::fs::read_to_string(uid_map_path).map_err(|e| WrappedIoError::Read {
        err: e,
        path: uid_map_path.into(),
    })?;
    Ok(content.contains("4294967295"))
}
pub trait CgroupManager {
    type Error;

    /// Adds a task specified by its pid to the cgroup
    fn add_task(&self, pid: Pid) -> Result<(), Self::Error>;

    /// [stockade patch] Adds the calling process, which must have a single thread
    /// (a freshly forked child: libcontainer's intermediate process), to the cgroup.
    /// A manager may move just the calling thread, which on cgroup v1 avoids the
    /// kernel's global threadgroup lock and the RCU grace period taking it costs;
    /// the process's other threads, if it had any, would stay where they are.
    fn add_calling_process(&self) -> Result<(), Self::Error> {
        self.add_task(nix::unistd::getpid())
    }

    /// Applies resource restrictions to the cgroup
    fn apply(&self, controller_opt: &ControllerOpt) -> Result<(), Self::Error>;

    /// Removes the cgroup
    fn remove(&self) -> Result<(), Self::Error>;

    /// Sets the freezer cgroup to the specified state
    fn freeze(&self, state: FreezerState) -> Result<(), Self::Error>;

    /// Retrieve statistics for the cgroup
    fn stats(&self) -> Result<Stats, Self::Error>;

    /// Gets the PIDs inside the cgroup
    fn get_all_pids(&self) -> Result<Vec<Pid>, Self::Error>;
}

#[derive(thiserror::Error, Debug)]
pub enum AnyManagerError {
    #[error(transparent)]
    Systemd(#[from] systemd::manager::SystemdManagerError),
    #[error(transparent)]
    V1(#[from] v1::manager::V1ManagerError),
    #[error(transparent)]
    V2(#[from] v2::manager::V2ManagerError),
}

// systemd is boxed due to size lint https://rust-lang.github.io/rust-clippy/master/index.html#/large_enum_variant
pub enum AnyCgroupManager {
    Systemd(Box<systemd::manager::Manager>),
    /// [stockade patch] systemd on cgroup v1 (legacy and hybrid hosts).
    SystemdLegacy(Box<systemd::legacy::LegacyManager>),
    V1(v1::manager::Manager),
    V2(v2::manager::Manager),
}

impl AnyCgroupManager {
    /// [stockade patch] The directories this manager's cgroup is (one per v1
    /// hierarchy), whether or not they exist: `exec --cgroup SUB` must find SUB in
    /// each, not create it.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        match self {
            AnyCgroupManager::Systemd(m) => m.cgroup_dirs(),
            AnyCgroupManager::SystemdLegacy(m) => m.cgroup_dirs(),
            AnyCgroupManager::V1(m) => m.cgroup_dirs(),
            AnyCgroupManager::V2(m) => m.cgroup_dirs(),
        }
    }
}

impl CgroupManager for AnyCgroupManager {
    type Error = AnyManagerError;

    fn add_task(&self, pid: Pid) -> Result<(), Self::Error> {
        match self {
            AnyCgroupManager::Systemd(m) => Ok(m.add_task(pid)?),
            AnyCgroupManager::SystemdLegacy(m) => Ok(m.add_task(pid)?),
            AnyCgroupManager::V1(m) => Ok(m.add_task(pid)?),
            AnyCgroupManager::V2(m) => Ok(m.add_task(pid)?),
        }
    }

    fn add_calling_process(&self) -> Result<(), Self::Error> {
        match self {
            AnyCgroupManager::Systemd(m) => Ok(m.add_calling_process()?),
            AnyCgroupManager::SystemdLegacy(m) => Ok(m.add_calling_process()?),
            AnyCgroupManager::V1(m) => Ok(m.add_calling_process()?),
            AnyCgroupManager::V2(m) => Ok(m.add_calling_process()?),
        }
    }

    fn apply(&self, controller_opt: &ControllerOpt) -> Result<(), Self::Error> {
        match self {
            AnyCgroupManager::Systemd(m) => Ok(m.apply(controller_opt)?),
            AnyCgroupManager::SystemdLegacy(m) => Ok(m.apply(controller_opt)?),
            AnyCgroupManager::V1(m) => Ok(m.apply(controller_opt)?),
            AnyCgroupManager::V2(m) => Ok(m.apply(controller_opt)?),
        }
    }

    fn remove(&self) -> Result<(), Self::Error> {
        match self {
            AnyCgroupManager::Systemd(m) => Ok(m.remove()?),
            AnyCgroupManager::SystemdLegacy(m) => Ok(m.remove()?),
            AnyCgroupManager::V1(m) => Ok(m.remove()?),
            AnyCgroupManager::V2(m) => Ok(m.remove()?),
        }
    }

    fn freeze(&self, state: FreezerState) -> Result<(), Self::Error> {
        match self {
            AnyCgroupManager::Systemd(m) => Ok(m.freeze(state)?),
            AnyCgroupManager::SystemdLegacy(m) => Ok(m.freeze(state)?),
            AnyCgroupManager::V1(m) => Ok(m.freeze(state)?),
            AnyCgroupManager::V2(m) => Ok(m.freeze(state)?),
        }
    }

    fn stats(&self) -> Result<Stats, Self::Error> {
        match self {
            AnyCgroupManager::Systemd(m) => Ok(m.stats()?),
            AnyCgroupManager::SystemdLegacy(m) => Ok(m.stats()?),
            AnyCgroupManager::V1(m) => Ok(m.stats()?),
            AnyCgroupManager::V2(m) => Ok(m.stats()?),
        }
    }

    fn get_all_pids(&self) -> Result<Vec<Pid>, Self::Error> {
        match self {
            AnyCgroupManager::Systemd(m) => Ok(m.get_all_pids()?),
            AnyCgroupManager::SystemdLegacy(m) => Ok(m.get_all_pids()?),
            AnyCgroupManager::V1(m) => Ok(m.get_all_pids()?),
            AnyCgroupManager::V2(m) => Ok(m.get_all_pids()?),
        }
    }
}

impl AnyCgroupManager {
    /// Marks the cgroup manager as operating in a rootless environment.
    ///
    /// Only affects the v2 manager.
    #[cfg_attr(not(feature = "v2"), allow(unused_variables))]
    pub fn with_rootless(self, rootless: bool) -> Self {
        match self {
            #[cfg(feature = "v2")]
            AnyCgroupManager::V2(m) => AnyCgroupManager::V2(m.with_rootless(rootless)),
            other => other,
        }
    }
}

#[derive(Debug)]
pub enum CgroupSetup {
    Hybrid,
    Legacy,
    Unified,
}

impl Display for CgroupSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let print = match self {
            CgroupSetup::Hybrid => "hybrid",
            CgroupSetup::Legacy => "legacy",
            CgroupSetup::Unified => "unified",
        };

        write!(f, "{print}")
    }
}

/// FreezerState is given freezer controller
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum FreezerState {
    /// Tasks in cgroup are undefined
    Undefined,
    /// Tasks in cgroup are suspended.
    Frozen,
    /// Tasks in cgroup are resuming.
    Thawed,
}

/// ControllerOpt is given all cgroup controller for applying cgroup configuration.
#[derive(Clone, Debug)]
pub struct ControllerOpt<'a> {
    /// Resources contain cgroup information for handling resource constraints for the container.
    pub resources: &'a LinuxResources,
    /// Disables the OOM killer for out of memory conditions.
    pub disable_oom_killer: bool,
    /// Specify an oom_score_adj for container.
    pub oom_score_adj: Option<i32>,
    /// FreezerState is given to freezer controller for suspending process.
    pub freezer_state: Option<FreezerState>,
}

#[derive(thiserror::Error, Debug)]
pub enum WrappedIoError {
    #[error("failed to open {path}: {err}")]
    Open { err: std::io::Error, path: PathBuf },
    #[error("failed to write {data} to {path}: {err}")]
    Write {
        err: std::io::Error,
        path: PathBuf,
        data: String,
    },
    #[error("failed to read {path}: {err}")]
    Read { err: std::io::Error, path: PathBuf },
    #[error("failed to create dir {path}: {err}")]
    CreateDir { err: std::io::Error, path: PathBuf },
    #[error("at {path}: {err}")]
    Other { err: std::io::Error, path: PathBuf },
}

impl WrappedIoError {
    pub fn inner(&self) -> &std::io::Error {
        match self {
            WrappedIoError::Open { err, .. } => err,
            WrappedIoError::Write { err, .. } => err,
            WrappedIoError::Read { err, .. } => err,
            WrappedIoError::CreateDir { err, .. } => err,
            WrappedIoError::Other { err, .. } => err,
        }
    }
}

#[inline]
pub fn write_cgroup_file_str<P: AsRef<Path>>(path: P, data: &str) -> Result<(), WrappedIoError> {
    let path = path.as_ref();

    fs::OpenOptions::new()
        .create(false)
        .write(true)
        .truncate(false)
        .open(path)
        .map_err(|err| WrappedIoError::Open {
            err,
            path: path.to_path_buf(),
        })?
        .write_all(data.as_bytes())
        .map_err(|err| WrappedIoError::Write {
            err,
            path: path.to_path_buf(),
            data: data.into(),
        })?;

    Ok(())
}

#[inline]
pub fn write_cgroup_file<P: AsRef<Path>, T: ToString>(
    path: P,
    data: T,
) -> Result<(), WrappedIoError> {
    let path = path.as_ref();
    let data = data.to_string();

    fs::OpenOptions::new()
        .create(false)
        .write(true)
        .truncate(false)
        .open(path)
        .map_err(|err| WrappedIoError::Open {
            err,
            path: path.to_path_buf(),
        })?
        .write_all(data.as_bytes())
        .map_err(|err| WrappedIoError::Write {
            err,
            path: path.to_path_buf(),
            data,
        })?;

    Ok(())
}

/// [stockade patch] Room for a procfs text file (`mountinfo`, `cgroup`) read whole:
/// a host's mountinfo (a few KiB, tens with many containers) fits, so the kernel
/// renders it in one read(2) and the next reports the end. `read_to_string` on an
/// empty `String` starts with a 32-byte read and doubles (ten reads for 4.7 KiB),
/// and each read re-renders the table from its start up to the offset.
pub const PROC_TEXT_CAPACITY: usize = 64 * 1024;

/// [stockade patch] The whole text of `file` (a procfs file: its size is unknown
/// until read), read into a buffer of [`PROC_TEXT_CAPACITY`] bytes that grows only
/// when the file is larger. The buffer is not zeroed first (`read_to_end` reads
/// into its spare capacity): zeroing 64 KiB touched 16 fresh heap pages, a page
/// fault each, for a table of ~5 KiB.
pub fn read_proc_text(mut file: impl std::io::Read) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(PROC_TEXT_CAPACITY);
    file.read_to_end(&mut buf)?;
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[inline]
pub fn read_cgroup_file<P: AsRef<Path>>(path: P) -> Result<String, WrappedIoError> {
    let path = path.as_ref();
    fs::read_to_string(path).map_err(|err| WrappedIoError::Read {
        err,
        path: path.to_path_buf(),
    })
}

#[derive(thiserror::Error, Debug)]
pub enum GetCgroupSetupError {
    #[error("io error: {0}")]
    WrappedIo(#[from] WrappedIoError),
    #[error("non default cgroup root not supported")]
    NonDefault,
    #[error("failed to detect cgroup setup")]
    FailedToDetect,
}

/// Determines the cgroup setup of the system. Systems typically have one of
/// three setups:
/// - Unified: Pure cgroup v2 system.
/// - Legacy: Pure cgroup v1 system.
/// - Hybrid: Hybrid is basically a cgroup v1 system, except for
///   an additional unified hierarchy which doesn't have any
///   controllers attached. Resource control can purely be achieved
///   through the cgroup v1 hierarchy, not through the cgroup v2 hierarchy.
pub fn get_cgroup_setup_with_root(root_path: &Path) -> Result<CgroupSetup, GetCgroupSetupError> {
    match root_path.exists() {
        true => {
            // If the filesystem is of type cgroup2, the system is in unified mode.
            // If the filesystem is tmpfs instead the system is either in legacy or
            // hybrid mode. If a cgroup2 filesystem has been mounted under the "unified"
            // folder we are in hybrid mode, otherwise we are in legacy mode.
            let stat = statfs(root_path)
                .map_err(std::io::Error::other)
                .wrap_other(root_path)?;
            if stat.filesystem_type() == CGROUP2_SUPER_MAGIC {
                return Ok(CgroupSetup::Unified);
            }

            if stat.filesystem_type() == TMPFS_MAGIC {
                let unified = &Path::new(root_path).join("unified");
                if Path::new(unified).exists() {
                    let stat = statfs(unified)
                        .map_err(std::io::Error::other)
                        .wrap_other(unified)?;
                    if stat.filesystem_type() == CGROUP2_SUPER_MAGIC {
                        return Ok(CgroupSetup::Hybrid);
                    }
                }

                return Ok(CgroupSetup::Legacy);
            }
        }
        false => return Err(GetCgroupSetupError::NonDefault),
    }

    Err(GetCgroupSetupError::FailedToDetect)
}

pub fn get_cgroup_setup() -> Result<CgroupSetup, GetCgroupSetupError> {
    get_cgroup_setup_with_root(Path::new(DEFAULT_CGROUP_ROOT))
}

#[derive(thiserror::Error, Debug)]
pub enum CreateCgroupSetupError {
    #[error("io error: {0}")]
    WrappedIo(#[from] WrappedIoError),
    #[error("non default cgroup root not supported")]
    NonDefault,
    #[error("failed to detect cgroup setup")]
    FailedToDetect,
    #[error("v1 error: {0}")]
    V1(#[from] v1::manager::V1ManagerError),
    #[error("v2 error: {0}")]
    V2(#[from] v2::manager::V2ManagerError),
    #[error("systemd error: {0}")]
    Systemd(#[from] systemd::manager::SystemdManagerError),
    /// [stockade patch]
    #[error("the systemd cgroup driver on cgroup v1 needs libcgroups' systemd and v1 features")]
    SystemdLegacyNotEnabled,
}

#[derive(Clone)]
pub struct CgroupConfig {
    pub cgroup_path: PathBuf,
    pub systemd_cgroup: bool,
    pub container_name: String,
}

// Create any cgroup manager with customize root path. If root_path provided
// is None, then it defaults to /sys/fs/cgroup.
pub fn create_cgroup_manager_with_root(
    root_path: Option<&Path>,
    config: CgroupConfig,
) -> Result<AnyCgroupManager, CreateCgroupSetupError> {
    create_cgroup_manager_in(root_path, config, None)
}

/// [stockade patch] [`create_cgroup_manager`] given the text of this process's
/// `/proc/self/mountinfo` when the caller has just read it (the cgroup v1 manager
/// takes its mount points from it instead of reading the file again; every other
/// manager ignores it).
pub fn create_cgroup_manager_with_mountinfo(
    config: CgroupConfig,
    mountinfo: Option<&str>,
) -> Result<AnyCgroupManager, CreateCgroupSetupError> {
    create_cgroup_manager_in(Some(Path::new(DEFAULT_CGROUP_ROOT)), config, mountinfo)
}

fn create_cgroup_manager_in(
    root_path: Option<&Path>,
    config: CgroupConfig,
    mountinfo: Option<&str>,
) -> Result<AnyCgroupManager, CreateCgroupSetupError> {
    let root = match root_path {
        Some(p) => p,
        None => Path::new(DEFAULT_CGROUP_ROOT),
    };

    let cgroup_setup = get_cgroup_setup_with_root(root).map_err(|err| match err {
        GetCgroupSetupError::WrappedIo(err) => CreateCgroupSetupError::WrappedIo(err),
        GetCgroupSetupError::NonDefault => CreateCgroupSetupError::NonDefault,
        GetCgroupSetupError::FailedToDetect => CreateCgroupSetupError::FailedToDetect,
    })?;
    let cgroup_path = config.cgroup_path.as_path();

    match cgroup_setup {
        CgroupSetup::Legacy | CgroupSetup::Hybrid => {
            // [stockade patch] a systemd path (slice:prefix:name) is a transient unit
            // on v1 too (it was read as a directory name with colons).
            if config.systemd_cgroup && !cgroup_path.is_absolute() {
                return create_systemd_legacy_cgroup_manager(
                    cgroup_path,
                    config.container_name.as_str(),
                );
            }
            Ok(create_v1_cgroup_manager(cgroup_path, mountinfo)?.any())
        }
        CgroupSetup::Unified => {
            // ref https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#cgroups-path
            if cgroup_path.is_absolute() || !config.systemd_cgroup {
                return Ok(create_v2_cgroup_manager(root, cgroup_path)?.any());
            }
            Ok(
                create_systemd_cgroup_manager(root, cgroup_path, config.container_name.as_str())?
                    .any(),
            )
        }
    }
}

pub fn create_cgroup_manager(
    config: CgroupConfig,
) -> Result<AnyCgroupManager, CreateCgroupSetupError> {
    create_cgroup_manager_with_root(Some(Path::new(DEFAULT_CGROUP_ROOT)), config)
}

#[cfg(feature = "v1")]
fn create_v1_cgroup_manager(
    cgroup_path: &Path,
    mountinfo: Option<&str>,
) -> Result<v1::manager::Manager, v1::manager::V1ManagerError> {
    tracing::info!("cgroup manager V1 will be used");
    v1::manager::Manager::new_with_mountinfo(cgroup_path, mountinfo)
}

#[cfg(not(feature = "v1"))]
fn create_v1_cgroup_manager(
    _cgroup_path: &Path,
    _mountinfo: Option<&str>,
) -> Result<v1::manager::Manager, v1::manager::V1ManagerError> {
    Err(v1::manager::V1ManagerError::NotEnabled)
}

#[cfg(feature = "v2")]
fn create_v2_cgroup_manager(
    root_path: &Path,
    cgroup_path: &Path,
) -> Result<v2::manager::Manager, v2::manager::V2ManagerError> {
    tracing::info!("cgroup manager V2 will be used");
    v2::manager::Manager::new(root_path.to_path_buf(), cgroup_path.to_owned())
}

#[cfg(not(feature = "v2"))]
fn create_v2_cgroup_manager(
    _root_path: &Path,
    _cgroup_path: &Path,
) -> Result<v2::manager::Manager, v2::manager::V2ManagerError> {
    Err(v2::manager::V2ManagerError::NotEnabled)
}

#[cfg(feature = "systemd")]
fn create_systemd_cgroup_manager(
    root_path: &Path,
    cgroup_path: &Path,
    container_name: &str,
) -> Result<systemd::manager::Manager, systemd::manager::SystemdManagerError> {
    use crate::systemd::manager::PROCESS_IN_CGROUP_TIMEOUT_DURATION;

    if !systemd::booted() {
        return Err(systemd::manager::SystemdManagerError::SystemdNotAvailable);
    }

    let use_system = is_true_root().map_err(systemd::manager::SystemdManagerError::WrappedIo)?;

    tracing::info!(
        "systemd cgroup manager with system bus {} will be used",
        use_system
    );
    systemd::manager::Manager::new(
        root_path.into(),
        cgroup_path.to_owned(),
        container_name.into(),
        use_system,
        PROCESS_IN_CGROUP_TIMEOUT_DURATION,
    )
}

#[cfg(all(feature = "systemd", feature = "v1"))]
fn create_systemd_legacy_cgroup_manager(
    cgroup_path: &Path,
    container_name: &str,
) -> Result<AnyCgroupManager, CreateCgroupSetupError> {
    use crate::systemd::manager::{PROCESS_IN_CGROUP_TIMEOUT_DURATION, SystemdManagerError};

    if !systemd::booted() {
        return Err(SystemdManagerError::SystemdNotAvailable.into());
    }
    let use_system = is_true_root().map_err(SystemdManagerError::WrappedIo)?;
    tracing::info!("systemd cgroup manager on cgroup v1 will be used");
    Ok(systemd::legacy::LegacyManager::new(
        cgroup_path.to_owned(),
        container_name.into(),
        use_system,
        PROCESS_IN_CGROUP_TIMEOUT_DURATION,
    )?
    .any())
}

#[cfg(not(all(feature = "systemd", feature = "v1")))]
fn create_systemd_legacy_cgroup_manager(
    _cgroup_path: &Path,
    _container_name: &str,
) -> Result<AnyCgroupManager, CreateCgroupSetupError> {
    Err(CreateCgroupSetupError::SystemdLegacyNotEnabled)
}

#[cfg(not(feature = "systemd"))]
fn create_systemd_cgroup_manager(
    _root_path: &Path,
    _cgroup_path: &Path,
    _container_name: &str,
) -> Result<systemd::manager::Manager, systemd::manager::SystemdManagerError> {
    Err(systemd::manager::SystemdManagerError::NotEnabled)
}

pub fn get_all_pids(path: &Path) -> Result<Vec<Pid>, WrappedIoError> {
    tracing::debug!("scan pids in folder: {:?}", path);
    let mut result = vec![];
    walk_dir(path, &mut |p| {
        let file_path = p.join(CGROUP_PROCS);
        if file_path.exists() {
            let file = File::open(&file_path).wrap_open(&file_path)?;
            for line in BufReader::new(file).lines().map_while(Result::ok) {
                result.push(Pid::from_raw(
                    line.parse::<i32>()
                        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))
                        .wrap_other(&file_path)?,
                ))
            }
        }
        Ok::<(), WrappedIoError>(())
    })?;
    Ok(result)
}

fn walk_dir<F, E>(path: &Path, c: &mut F) -> Result<(), E>
where
    F: FnMut(&Path) -> Result<(), E>,
    E: From<WrappedIoError>,
{
    c(path)?;
    for entry in fs::read_dir(path).wrap_read(path)? {
        let entry = entry.wrap_open(path)?;
        // [stockade patch 12] The entry's type from the directory listing (d_type,
        // which cgroupfs always fills), not `path.is_dir()`: that was a statx per
        // control file (~150 per hardened `run`, at delete, for nothing: only
        // sub-cgroups are directories). A symlink is not followed, as in
        // `delete_tree_with_retry`; cgroupfs has none. An entry gone meanwhile is
        // skipped, as before.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk_dir(&entry.path(), c)?;
        }
    }
    Ok(())
}

pub(crate) trait PathBufExt {
    fn join_safely<P: AsRef<Path>>(&self, path: P) -> Result<PathBuf, JoinSafelyError>;
}

#[derive(thiserror::Error, Debug)]
pub enum JoinSafelyError {
    #[error("failed to strip prefix from {path}: {err}")]
    StripPrefix {
        err: StripPrefixError,
        path: PathBuf,
    },
}

impl PathBufExt for PathBuf {
    fn join_safely<P: AsRef<Path>>(&self, path: P) -> Result<PathBuf, JoinSafelyError> {
        let path = path.as_ref();
        if path.is_relative() {
            return Ok(self.join(path));
        }

        let stripped = path
            .strip_prefix("/")
            .map_err(|err| JoinSafelyError::StripPrefix {
                err,
                path: path.to_path_buf(),
            })?;
        Ok(self.join(stripped))
    }
}

#[cfg(any(feature = "cgroupsv2_devices", feature = "v1"))]
pub(crate) fn default_allow_devices() -> Vec<LinuxDeviceCgroup> {
    vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .access("m")
            .build()
            .unwrap(),
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::B)
            .access("m")
            .build()
            .unwrap(),
        // /dev/console
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(5)
            .minor(1)
            .access("rwm")
            .build()
            .unwrap(),
        // /dev/pts
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(136)
            .access("rwm")
            .build()
            .unwrap(),
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(5)
            .minor(2)
            .access("rwm")
            .build()
            .unwrap(),
        // tun/tap
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(200)
            .access("rwm")
            .build()
            .unwrap(),
    ]
}

#[cfg(any(feature = "cgroupsv2_devices", feature = "v1"))]
pub(crate) fn default_devices() -> Vec<LinuxDevice> {
    vec![
        LinuxDeviceBuilder::default()
            .path(PathBuf::from("/dev/null"))
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .file_mode(0o066u32)
            .build()
            .unwrap(),
        LinuxDeviceBuilder::default()
            .path(PathBuf::from("/dev/zero"))
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(5)
            .file_mode(0o066u32)
            .build()
            .unwrap(),
        LinuxDeviceBuilder::default()
            .path(PathBuf::from("/dev/full"))
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(7)
            .file_mode(0o066u32)
            .build()
            .unwrap(),
        LinuxDeviceBuilder::default()
            .path(PathBuf::from("/dev/tty"))
            .typ(LinuxDeviceType::C)
            .major(5)
            .minor(0)
            .file_mode(0o066u32)
            .build()
            .unwrap(),
        LinuxDeviceBuilder::default()
            .path(PathBuf::from("/dev/urandom"))
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(9)
            .file_mode(0o066u32)
            .build()
            .unwrap(),
        LinuxDeviceBuilder::default()
            .path(PathBuf::from("/dev/random"))
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(8)
            .file_mode(0o066u32)
            .build()
            .unwrap(),
    ]
}

/// [stockade patch] Deletes the cgroup `path` with every cgroup below it, deepest
/// first (as runc's `RemovePath`): a container that made sub-cgroups (systemd
/// inside, `exec --cgroup`) left its cgroup undeletable (EBUSY), so `delete --force`
/// failed and leaked the tree. Each directory gets `delete_with_retry`'s retries.
pub(crate) fn delete_tree_with_retry<P: AsRef<Path>, L: Into<Option<Duration>> + Copy>(
    path: P,
    retries: u32,
    limit_backoff: L,
) -> Result<(), WrappedIoError> {
    let path = path.as_ref();
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        // Gone already (a concurrent delete): nothing left to do.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).wrap_read(path),
    };
    for entry in entries {
        let entry = entry.wrap_read(path)?;
        // Only sub-cgroups are directories in a cgroup; never follow a symlink.
        if entry.file_type().wrap_read(entry.path())?.is_dir() {
            delete_tree_with_retry(entry.path(), retries, limit_backoff)?;
        }
    }
    delete_with_retry(path, retries, limit_backoff)
}

/// [stockade patch] Kills every process of the cgroup tree at `path` (sub-cgroups
/// included), then removes its directories deepest first, as `get_all_pids` and
/// `delete_tree_with_retry` one after the other did, but listing each directory
/// once: those two walked the tree each (on cgroup v1: every hierarchy listed
/// twice at every delete, ~50 syscalls of a `run`). A directory that still cannot
/// be removed (a sub-cgroup made by a process before it was killed) gets
/// `delete_tree_with_retry`, which lists it again. A tree already gone is no error.
///
/// [stockade patch] First of all one rmdir, as crun does: the kernel removes a
/// cgroup only when it holds no process and no sub-cgroup (EBUSY otherwise), which
/// is all the walk would achieve; a container whose processes have exited (every
/// `delete` after a `run` or a wait) leaves exactly that. Its walk listed the
/// directory (~30 control files on v1) and read its `cgroup.procs`: ~10 syscalls
/// per hierarchy. Any failure goes on to the walk.
pub(crate) fn kill_and_delete_tree<L: Into<Option<Duration>> + Copy>(
    path: &Path,
    retries: u32,
    limit_backoff: L,
) -> Result<(), WrappedIoError> {
    match fs::remove_dir(path) {
        Ok(()) => return Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let mut dirs = Vec::new();
    collect_tree(path, &mut dirs)?;
    for dir in &dirs {
        let procs = dir.join(CGROUP_PROCS);
        let text = match fs::read_to_string(&procs) {
            Ok(text) => text,
            // Removed meanwhile (a concurrent delete): no process there.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err).wrap_read(&procs),
        };
        for line in text.lines() {
            let pid = line
                .parse::<i32>()
                .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))
                .wrap_other(&procs)?;
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
    }
    for dir in dirs.iter().rev() {
        if delete_with_retry(dir, retries, limit_backoff).is_err() {
            delete_tree_with_retry(dir, retries, limit_backoff)?;
        }
    }
    Ok(())
}

/// `path` and every directory under it, parents before their children; one gone
/// meanwhile (a concurrent delete) is left out. Only sub-cgroups are directories
/// in a cgroup; a symlink is never followed.
fn collect_tree(path: &Path, dirs: &mut Vec<PathBuf>) -> Result<(), WrappedIoError> {
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).wrap_read(path),
    };
    dirs.push(path.to_path_buf());
    for entry in entries {
        let entry = entry.wrap_read(path)?;
        if entry.file_type().wrap_read(entry.path())?.is_dir() {
            collect_tree(&entry.path(), dirs)?;
        }
    }
    Ok(())
}

/// Attempts to delete the path the requested number of times.
pub(crate) fn delete_with_retry<P: AsRef<Path>, L: Into<Option<Duration>>>(
    path: P,
    retries: u32,
    limit_backoff: L,
) -> Result<(), WrappedIoError> {
    let mut attempts = 0;
    let mut delay = Duration::from_millis(10);
    let path = path.as_ref();
    let limit = limit_backoff.into().unwrap_or(Duration::MAX);

    while attempts < retries {
        if fs::remove_dir(path).is_ok() {
            return Ok(());
        }

        std::thread::sleep(delay);
        attempts += 1;
        delay *= attempts;
        if delay > limit {
            delay = limit;
        }
    }

    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "could not delete".to_string(),
    ))
    .wrap_other(path)?
}

pub(crate) trait WrapIoResult {
    type Target;

    fn wrap_create_dir<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError>;
    fn wrap_read<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError>;
    fn wrap_open<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError>;
    fn wrap_write<P: Into<PathBuf>, D: Into<String>>(
        self,
        path: P,
        data: D,
    ) -> Result<Self::Target, WrappedIoError>;
    fn wrap_other<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError>;
}

impl<T> WrapIoResult for Result<T, std::io::Error> {
    type Target = T;

    fn wrap_create_dir<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError> {
        self.map_err(|err| WrappedIoError::CreateDir {
            err,
            path: path.into(),
        })
    }

    fn wrap_read<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError> {
        self.map_err(|err| WrappedIoError::Read {
            err,
            path: path.into(),
        })
    }

    fn wrap_open<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError> {
        self.map_err(|err| WrappedIoError::Open {
            err,
            path: path.into(),
        })
    }

    fn wrap_write<P: Into<PathBuf>, D: Into<String>>(
        self,
        path: P,
        data: D,
    ) -> Result<Self::Target, WrappedIoError> {
        self.map_err(|err| WrappedIoError::Write {
            err,
            path: path.into(),
            data: data.into(),
        })
    }

    fn wrap_other<P: Into<PathBuf>>(self, path: P) -> Result<Self::Target, WrappedIoError> {
        self.map_err(|err| WrappedIoError::Other {
            err,
            path: path.into(),
        })
    }
}

#[derive(Debug)]
pub enum EitherError<L, R> {
    Left(L),
    Right(R),
}

impl<L: Display, R: Display> Display for EitherError<L, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EitherError::Left(left) => <L as Display>::fmt(left, f),
            EitherError::Right(right) => <R as Display>::fmt(right, f),
        }
    }
}

impl<L: Debug + Display, R: Debug + Display> std::error::Error for EitherError<L, R> {}

#[derive(Debug)]
pub struct MustBePowerOfTwo;

impl Display for MustBePowerOfTwo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("page size must be in the format of 2^(integer)")
    }
}

#[cfg(test)]
mod walk_tests {
    use super::*;

    // [stockade patch 12] `get_all_pids` descends into sub-cgroups (directories, as
    // the listing types them) and reads no other entry as one.
    #[test]
    fn get_all_pids_walks_sub_cgroups() {
        let tmp = tempfile::tempdir().unwrap();
        let cg = tmp.path();
        fs::write(cg.join(CGROUP_PROCS), "1\n2\n").unwrap();
        fs::write(cg.join("memory.limit_in_bytes"), "9\n").unwrap();
        fs::create_dir_all(cg.join("sub/deeper")).unwrap();
        fs::write(cg.join("sub").join(CGROUP_PROCS), "3\n").unwrap();
        fs::write(cg.join("sub/deeper").join(CGROUP_PROCS), "4\n").unwrap();
        let mut pids: Vec<i32> = get_all_pids(cg)
            .unwrap()
            .into_iter()
            .map(|p| p.as_raw())
            .collect();
        pids.sort();
        assert_eq!(pids, vec![1, 2, 3, 4]);
    }
}

/// [stockade patch]
#[cfg(test)]
mod read_proc_text_tests {
    use super::{PROC_TEXT_CAPACITY, read_proc_text};

    /// Hands out at most `chunk` bytes per read, as procfs hands out a page.
    struct Chunked<'a> {
        data: &'a [u8],
        chunk: usize,
        reads: usize,
    }

    impl std::io::Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.reads += 1;
            let n = self.data.len().min(self.chunk).min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn read_proc_text_takes_a_small_file_in_one_read_and_a_large_one_whole() {
        let small = "35 31 0:32 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n".repeat(50);
        let mut file = Chunked {
            data: small.as_bytes(),
            chunk: usize::MAX,
            reads: 0,
        };
        assert_eq!(read_proc_text(&mut file).unwrap(), small);
        assert_eq!(file.reads, 2, "the text, then the end");

        // Larger than the buffer, a page at a time: nothing is lost at the growth.
        let large: String = (0..PROC_TEXT_CAPACITY / 10)
            .map(|i| format!("{i:09}\n"))
            .collect::<String>()
            + "tail\n";
        let mut file = Chunked {
            data: large.as_bytes(),
            chunk: 4096,
            reads: 0,
        };
        assert_eq!(read_proc_text(&mut file).unwrap(), large);

        let mut bad = Chunked {
            data: &[0xff, 0xfe],
            chunk: 4096,
            reads: 0,
        };
        assert_eq!(
            read_proc_text(&mut bad).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
    }
}
