//! The hardening-profile format (`schema = 1`), as plain serde types.
//!
//! Every section is an allow-list: what it does not name is denied. Every section carries
//! a `reason` that is quoted in violation messages, and may override the profile's `mode`.
//! Every section is optional: a profile without one enforces nothing for that control.
//! Unknown keys are rejected everywhere so a typo can never silently weaken a profile.
//! Semantic checks (known syscalls, capability names, ranges) live in `load.rs`.

use crate::landlock::plan::{Compat, FsAccess};
use serde::{Deserialize, Serialize};

use super::node_paths::{NodePaths, PathTemplateError};
use super::seccomp_data::SeccompFilter;

/// The only schema version this runtime understands.
pub const SCHEMA_VERSION: u32 = 1;

/// What happens when a rule is violated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Refuse the container.
    Enforce,
    /// Start the container; record the violation in the audit log only.
    Audit,
    /// Start the container; record the violation and report it to the caller as a warning.
    Warn,
    /// Report only (Pod Security Admission's audit/warn semantics, for rollouts): as
    /// the profile's mode, every container runs its spec unchanged (nothing injected,
    /// no user namespace, no Landlock) and the audit record lists what enforcing would
    /// have refused (`would_refuse`) and injected (`would_inject`). On a section it
    /// acts like `audit`.
    Report,
}

/// What happens when the spec is silent about a control the profile requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissing {
    /// Write the profile's default into the spec.
    Inject,
    /// Report a violation.
    Refuse,
}

/// What happens when the spec asks for more than the profile allows, where the excess can
/// be removed without changing anything else (extra capabilities, denied syscalls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExcess {
    /// Remove the excess from the spec and record it.
    Strip,
    /// Report a violation.
    Refuse,
}

/// A hardening profile: one TOML file under the profiles directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub schema: u32,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// Rank used to decide whether an annotation may switch to this profile: a container
    /// may only move to a profile whose strictness is at least that of its default.
    pub strictness: u32,
    pub mode: Mode,
    // Each rule section is optional. An absent section means the profile neither checks
    // nor injects anything for that control: it is never read as "the strictest
    // default". `lint` reports every absent section, and `explain` says "not enforced",
    // so the gap is always visible to whoever reviews the profile.
    #[serde(default)]
    pub seccomp: Option<SeccompSection>,
    #[serde(default)]
    pub capabilities: Option<CapabilitiesSection>,
    #[serde(default)]
    pub process: Option<ProcessSection>,
    #[serde(default)]
    pub user_namespace: Option<UserNamespaceSection>,
    #[serde(default)]
    pub filesystem: Option<FilesystemSection>,
    #[serde(default)]
    pub mounts: Option<MountsSection>,
    #[serde(default)]
    pub namespaces: Option<NamespacesSection>,
    #[serde(default)]
    pub devices: Option<DevicesSection>,
    #[serde(default)]
    pub cgroups: Option<CgroupsSection>,
    #[serde(default)]
    pub sysctls: Option<SysctlsSection>,
    #[serde(default)]
    pub landlock: Option<LandlockSection>,
    #[serde(default)]
    pub lsm: Option<LsmSection>,
    /// The default-deny filter named by `seccomp.default_filter`, loaded by `load.rs`
    /// (`None` when the profile has no `[seccomp]` section).
    #[serde(skip)]
    pub seccomp_filter: Option<SeccompFilter>,
    /// The node directories the path templates were last resolved with
    /// ([`Profile::resolve_node_paths`]); the standard paths right after loading.
    #[serde(skip)]
    pub node_paths: NodePaths,
}

impl Profile {
    /// Substitute `paths` into every path template of the profile. `Err` names the key
    /// of the first template that does not resolve.
    pub fn resolve_node_paths(
        &mut self,
        paths: &NodePaths,
    ) -> Result<(), (String, PathTemplateError)> {
        if let Some(m) = &mut self.mounts {
            m.resolved_bind_source_prefixes = m
                .bind_source_prefixes
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    paths
                        .resolve(t)
                        .map_err(|e| (format!("mounts.bind_source_prefixes[{i}]"), e))
                })
                .collect::<Result<_, _>>()?;
        }
        self.node_paths = paths.clone();
        Ok(())
    }
}

/// Seccomp actions a profile may name (OCI `SCMP_ACT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeccompAction {
    KillProcess,
    KillThread,
    Kill,
    Trap,
    Errno,
    Notify,
    Trace,
    Log,
    Allow,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeccompSection {
    pub reason: String,
    pub mode: Option<Mode>,
    /// Spec without `linux.seccomp`: inject `default_filter`, or refuse.
    pub on_missing: OnMissing,
    /// Spec filter that allows a syscall of `deny`: strip it from the filter, or refuse.
    pub on_denied_allowed: OnExcess,
    /// File (relative to the profiles directory) holding the default-deny allow-list.
    pub default_filter: String,
    /// Default actions a spec-supplied filter may use.
    pub allowed_default_actions: Vec<SeccompAction>,
    /// Syscalls a spec-supplied filter may never allow.
    pub deny: Vec<DeniedSyscall>,
    /// Argument-level denials (a syscall with these arguments fails with EPERM),
    /// merged into every filter, the spec's own included: a filter that allows a
    /// syscall by name (containerd's default allows `socket`) still denies these.
    #[serde(default)]
    pub deny_args: Vec<DeniedArgs>,
    /// Whether a spec's filter may hand syscalls to a userspace agent
    /// (`SCMP_ACT_NOTIFY` rules, `linux.seccomp.listenerPath`). Absent: `forbid`.
    #[serde(default)]
    pub user_notification: UserNotification,
}

/// `[seccomp] user_notification`: may a userspace agent decide syscalls?
///
/// An agent answering `SCMP_ACT_NOTIFY` reads the container's memory to judge
/// pointer arguments, which the container can change after the check
/// (seccomp_unotify(2): not a security boundary), so only `allow` lets it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserNotification {
    /// Refuse a spec with `SCMP_ACT_NOTIFY` rules, `listenerPath` or `listenerMetadata`.
    #[default]
    Forbid,
    /// Run it: the agent at `listenerPath` decides the notified syscalls.
    Allow,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeniedArgs {
    pub name: String,
    /// Every condition must hold for the call to be denied.
    pub args: Vec<super::seccomp_data::ArgCondition>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeniedSyscall {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesSection {
    pub reason: String,
    pub mode: Option<Mode>,
    /// Capabilities outside `allowed` (in any set): drop them, or refuse.
    pub on_excess: OnExcess,
    /// Capability names, `CAP_` prefixed.
    pub allowed: Vec<String>,
}

/// When the container's uid 0 is acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootPolicy {
    /// Never run as uid/gid 0 (Kubernetes `runAsNonRoot`).
    Never,
    /// Only when a user namespace maps it to an unprivileged host id.
    IfUserns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdRange {
    pub min: u32,
    pub max: u32,
}

impl IdRange {
    pub fn contains(&self, id: u32) -> bool {
        self.min <= id && id <= self.max
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSection {
    pub reason: String,
    pub mode: Option<Mode>,
    /// `noNewPrivileges` unset or false: set it, or refuse.
    pub no_new_privileges: OnMissing,
    pub root: RootPolicy,
    pub uid_ranges: Vec<IdRange>,
    pub gid_ranges: Vec<IdRange>,
    /// The working directory may not be at or under these paths (CVE-2024-21626).
    pub forbidden_cwd: Vec<String>,
    /// Host fds a caller may hand the container or an exec'd process beyond stdio
    /// (`--preserve-fds N`); absent means none: a leaked host fd is a way out
    /// (CVE-2024-21626), so each one must be allowed.
    #[serde(default)]
    pub max_preserve_fds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostIdRange {
    pub start: u32,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserNamespaceSection {
    pub reason: String,
    pub mode: Option<Mode>,
    pub required: bool,
    /// Spec without a user namespace: request one from the runtime, or refuse.
    pub on_missing: OnMissing,
    /// Host ids the runtime hands out to containers, and that spec mappings must stay in.
    pub host_range: HostIdRange,
    /// Ids per container.
    pub container_size: u32,
    /// A bind volume the kernel cannot idmap under the allocated user namespace
    /// (tmpfs before Linux 6.3): `hard` refuses the container naming the kernel
    /// requirement; `best_effort` binds it plainly (its files keep their host owners,
    /// shown as the overflow id 65534 inside) and records that in the admission notes.
    #[serde(default)]
    pub idmap_compat: Compat,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemSection {
    pub reason: String,
    pub mode: Option<Mode>,
    /// Writable rootfs or missing masked/readonly paths: fix the spec, or refuse.
    pub on_missing: OnMissing,
    pub readonly_rootfs: bool,
    /// With a read-only rootfs, tmpfs mounted here (when the spec mounts nothing there) so
    /// ordinary images still have scratch space.
    pub writable_tmpfs: Vec<String>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    /// Why `masked_paths` and `readonly_paths` are required, when that differs from
    /// the section's `reason` (which is then about the read-only root).
    #[serde(default)]
    pub masked_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForbiddenSource {
    pub path: String,
    /// Also forbid everything beneath `path`.
    #[serde(default)]
    pub subtree: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountsSection {
    pub reason: String,
    pub mode: Option<Mode>,
    pub allowed_types: Vec<String>,
    /// Bind sources must be under one of these directories, as written: an entry may
    /// start with a node directory variable such as `${containerd_state}` (see
    /// `node_paths`).
    pub bind_source_prefixes: Vec<String>,
    /// `bind_source_prefixes` with this node's directories substituted: what rules
    /// check. Set by the loader (standard paths) and again for the node config's
    /// `[paths]` ([`Profile::resolve_node_paths`]).
    #[serde(skip)]
    pub resolved_bind_source_prefixes: Vec<String>,
    /// Checked before the prefixes: a forbidden source is refused even under a prefix.
    pub forbidden_sources: Vec<ForbiddenSource>,
    /// Refuse `shared`/`rshared` propagation on mounts and on the rootfs.
    pub forbid_shared_propagation: bool,
    /// Options every bind mount must carry (e.g. `nosuid`, `nodev`).
    pub bind_required_options: Vec<String>,
    /// Bind without the required options: add them, or refuse.
    pub on_missing: OnMissing,
}

/// Namespace kinds, named as in the OCI spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NsType {
    Pid,
    Network,
    Mount,
    Ipc,
    Uts,
    User,
    Cgroup,
    Time,
}

impl NsType {
    pub const ALL: [NsType; 8] = [
        NsType::Pid,
        NsType::Network,
        NsType::Mount,
        NsType::Ipc,
        NsType::Uts,
        NsType::User,
        NsType::Cgroup,
        NsType::Time,
    ];

    /// Name as in the OCI spec (`linux.namespaces[].type`).
    pub fn oci_name(self) -> &'static str {
        match self {
            NsType::Pid => "pid",
            NsType::Network => "network",
            NsType::Mount => "mount",
            NsType::Ipc => "ipc",
            NsType::Uts => "uts",
            NsType::User => "user",
            NsType::Cgroup => "cgroup",
            NsType::Time => "time",
        }
    }

    /// Name of the entry in `/proc/<pid>/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            NsType::Network => "net",
            NsType::Mount => "mnt",
            other => other.oci_name(),
        }
    }

    pub fn from_oci(t: oci_spec::runtime::LinuxNamespaceType) -> Self {
        use oci_spec::runtime::LinuxNamespaceType as T;
        match t {
            T::Pid => NsType::Pid,
            T::Network => NsType::Network,
            T::Mount => NsType::Mount,
            T::Ipc => NsType::Ipc,
            T::Uts => NsType::Uts,
            T::User => NsType::User,
            T::Cgroup => NsType::Cgroup,
            T::Time => NsType::Time,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespacesSection {
    pub reason: String,
    pub mode: Option<Mode>,
    /// Each must appear in `linux.namespaces` (absent = shared with the runtime = host).
    pub required: Vec<NsType>,
    /// Joining the runtime's own namespace of these kinds by `path` is refused.
    pub host_forbidden: Vec<NsType>,
    /// A spec without a namespace of one of these kinds gets a new one instead of
    /// sharing the runtime's (e.g. `cgroup`: the node's cgroup tree stays hidden).
    /// `user` is not allowed here: `[user_namespace]` decides that one.
    #[serde(default)]
    pub inject: Vec<NsInjection>,
}

/// A namespace kind the runtime adds when the spec has none, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NsInjection {
    #[serde(rename = "type")]
    pub kind: NsType,
    pub reason: String,
}

/// Device node kinds, as `linux.devices[].type` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceType {
    /// Character device (`u`, unbuffered, is the same node).
    #[serde(rename = "c")]
    Char,
    #[serde(rename = "b")]
    Block,
}

impl DeviceType {
    pub fn letter(self) -> &'static str {
        match self {
            DeviceType::Char => "c",
            DeviceType::Block => "b",
        }
    }
}

/// One device a container may have: the node `linux.devices` may create, and the
/// device-cgroup allow rule `linux.resources.devices` may add for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedDevice {
    /// Path inside the container (`/dev/...`).
    pub path: String,
    #[serde(rename = "type")]
    pub kind: DeviceType,
    pub major: i64,
    pub minor: i64,
    pub reason: String,
}

/// Host devices are decided at admission, never left to fail at rootfs preparation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesSection {
    pub reason: String,
    pub mode: Option<Mode>,
    /// Device nodes or device-cgroup allow rules outside `allowed`: remove them from the
    /// spec, or refuse.
    pub on_excess: OnExcess,
    /// Devices a spec may ask for; a node must match path, type, major and minor.
    pub allowed: Vec<AllowedDevice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Injected when the spec sets none.
    pub default: u64,
    /// The spec may not ask for more.
    pub max: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupsSection {
    pub reason: String,
    pub mode: Option<Mode>,
    /// Limit unset: inject the default, or refuse.
    pub on_missing: OnMissing,
    /// `linux.resources.memory.limit`, bytes.
    pub memory_bytes: Limit,
    /// CPU quota in millicores (`quota / period * 1000`).
    pub cpu_millicores: Limit,
    /// `linux.resources.pids.limit`.
    pub pids: Limit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SysctlsSection {
    pub reason: String,
    pub mode: Option<Mode>,
    /// Exact sysctl names.
    pub allowed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LandlockFsRule {
    /// Path inside the container.
    pub path: String,
    pub access: Vec<FsAccess>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LandlockSection {
    pub reason: String,
    pub mode: Option<Mode>,
    pub enabled: bool,
    /// ABI the rules are written for; rights newer than the host's ABI are handled per
    /// `compat`.
    pub min_abi: u8,
    pub compat: Compat,
    /// Derive rules from the spec: rootfs read+execute, writable mounts read-write.
    pub auto_rules: bool,
    #[serde(default)]
    pub fs: Vec<LandlockFsRule>,
    /// TCP ports the container may bind (ABI 4); absent = unrestricted.
    pub tcp_bind: Option<Vec<u16>>,
    /// TCP ports the container may connect to (ABI 4); absent = unrestricted.
    pub tcp_connect: Option<Vec<u16>>,
    /// ABI 6: deny connecting to abstract unix sockets outside the container's domain.
    #[serde(default)]
    pub scope_abstract_unix: bool,
    /// ABI 6: deny signalling processes outside the container's domain.
    #[serde(default)]
    pub scope_signal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LsmSection {
    pub reason: String,
    pub mode: Option<Mode>,
    /// AppArmor profile names a spec may set; a trailing `*` matches a prefix.
    pub apparmor_profiles: Vec<String>,
    /// SELinux types (third field of the label) a spec may set.
    pub selinux_types: Vec<String>,
}
