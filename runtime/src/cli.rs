//! Command-line shape of `stockade`. Argument structs only: no logic lives here.
//!
//! The runc-compatible verbs reuse youki's `liboci-cli` argument structs so that the
//! flags containerd's runc shim passes (`--root`, `--log`, `--log-format json`,
//! `create --bundle --pid-file --console-socket`, `kill --all`, `ps --format json`, ...)
//! parse exactly as runc parses them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `stockade --version`, shaped like runc's (`runc version X`, `commit:`, `spec:`),
/// plus what enforces the hardening.
pub const LONG_VERSION: &str = concat!(
    "version ",
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("STOCKADE_COMMIT"),
    "\nspec: 1.2.0",
    "\nlibcontainer: 0.7.0 (vendored with fixes, third_party/PATCHES.md)",
    "\nseccomp: seccompiler (filters compiled by the runtime; no libseccomp)",
    "\nfeatures: hardening profiles, seccomp, landlock, user namespaces with idmapped mounts, cgroup v1 and v2",
);

#[derive(Parser, Debug)]
#[command(
    name = "stockade",
    // -v and --version both print everything, as runc's.
    version = LONG_VERSION,
    disable_version_flag = true,
    about = "A hardened, runc-compatible OCI runtime that enforces security profiles"
)]
pub struct Cli {
    /// Print the version, commit, OCI spec version and features (as runc -v)
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    pub version: Option<bool>,
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// runc's global flags.
#[derive(Args, Debug)]
pub struct GlobalOpts {
    /// Root directory for container state
    #[arg(long, global = true, default_value = "/run/stockade")]
    pub root: PathBuf,
    /// Log file (default: stderr)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Enable debug logging
    #[arg(long, global = true)]
    pub debug: bool,
    /// Place containers with systemd: cgroupsPath is slice:prefix:name and the
    /// container runs in the transient scope <prefix>-<name>.scope (cgroup v2 hosts)
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Node configuration file (profiles dir, default profile, handler mapping);
    /// default /etc/stockade/config.toml
    #[arg(long, global = true, env = "STOCKADE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Profile for every container this invocation creates, overriding the node
    /// config's default (set by whoever runs the runtime, e.g. the shim's options);
    /// a name in the node config's profiles dir or a path to a .toml file
    #[arg(long, global = true, env = "STOCKADE_PROFILE")]
    pub default_profile: Option<String>,
    /// Runtime handler (Kubernetes RuntimeClass) the container was started for
    #[arg(long, global = true, env = "STOCKADE_HANDLER")]
    pub handler: Option<String>,
    /// Host id range allocation database, shared by all state roots of the node
    #[arg(
        long,
        global = true,
        env = "STOCKADE_USERNS_DB",
        default_value = "/run/stockade/userns-ranges.json"
    )]
    pub userns_db: PathBuf,
}

/// The verbs. Each verb's arguments are built only when that verb is invoked
/// (`defer`): every container start runs the runtime, and building the arguments of
/// all ~20 verbs and `profile`'s subcommands, with the global flags copied into each,
/// was most of clap's work (bench/README.md, "The cgroup mounts parsed once; the
/// arguments of the invoked verb only"). `--help`, `help VERB`, completions and man
/// pages build what they show.
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Create a container from a bundle (does not start the user process)
    Create(Verb<liboci_cli::Create>),
    /// Start the user process of a created container
    Start(Verb<liboci_cli::Start>),
    /// Print the state of a container as JSON
    State(Verb<liboci_cli::State>),
    /// Send a signal to the container's init process (or all its processes)
    Kill(Verb<liboci_cli::Kill>),
    /// Delete a container and everything it holds on the host
    Delete(Verb<liboci_cli::Delete>),
    /// Create and start a container, and wait for it unless detached
    Run(Verb<liboci_cli::Run>),
    /// Run a new process inside a running container
    Exec(Verb<liboci_cli::Exec>),
    /// List the processes of a container
    Ps(Verb<liboci_cli::Ps>),
    /// Freeze all processes of a container
    Pause(Verb<liboci_cli::Pause>),
    /// Thaw all processes of a container
    Resume(Verb<liboci_cli::Resume>),
    /// Change the cgroup resources of a running container
    Update(Verb<UpdateArgs>),
    /// List containers under the state root
    List(Verb<liboci_cli::List>),
    /// Print container events (stats)
    Events(Verb<EventsArgs>),
    /// Print the OCI features this runtime supports, as JSON
    Features(Verb<liboci_cli::Features>),
    /// Write a hardened default config.json
    Spec(Verb<SpecArgs>),
    /// Tools for security teams: check, lint, explain and import hardening profiles
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages for stockade and each of its verbs into a directory
    #[command(hide = true)]
    Man {
        /// Directory to write stockade.8 and stockade-VERB.8 into
        dir: PathBuf,
    },
    /// Reclaim what killed runtimes left under the state root: interrupted creates
    /// (host id ranges, idmapped mounts, plans), idmapped mounts of containers that
    /// no longer exist, and protected copies of replaced runtime binaries
    Gc,
    /// Check this node: kernel features, cgroups, idmapped mounts, the node config and
    /// every profile, containerd's runtime handlers (exit 1 when something fails)
    Doctor(Verb<DoctorArgs>),
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// containerd's config file to check for Stockade's runtime handlers
    #[arg(long, default_value = "/etc/containerd/config.toml")]
    pub containerd_config: PathBuf,
    /// Directory to check for idmapped mount support (repeatable; default: containerd's,
    /// the kubelet's and Stockade's directories under /var/lib, and /run)
    #[arg(long = "idmap-dir")]
    pub idmap_dirs: Vec<PathBuf>,
    /// Print the facts and findings as JSON
    #[arg(long)]
    pub json: bool,
}

const NO_PIVOT_HELP: &str = "Do not use pivot root to jail the process inside the rootfs";
const CONSOLE_SOCKET_HELP: &str =
    "Unix socket (file) path which will receive the file descriptor of the pseudoterminal's master end";

/// A verb's arguments, as the verb's variant of [`Command`] holds them. The verbs'
/// arguments are built only for the verb invoked (`defer` on [`Command`]), after the
/// attributes of the verb's variant applied: this wrapper keeps the about texts they
/// set, which building a documented struct's arguments would replace with its doc
/// comment, and applies the verb's own help texts ([`VerbHelp`]).
#[derive(Debug)]
pub struct Verb<T>(pub T);

/// Help texts of a verb's arguments that replace those of the struct they come
/// from (liboci-cli's have typos). They are applied where the arguments are built:
/// a `mut_arg` attribute on a deferred verb's variant would find no argument yet.
pub trait VerbHelp {
    fn help(cmd: clap::Command) -> clap::Command {
        cmd
    }
}

impl VerbHelp for liboci_cli::Create {
    fn help(cmd: clap::Command) -> clap::Command {
        cmd.mut_arg("no_pivot", |a| a.help(NO_PIVOT_HELP))
            .mut_arg("console_socket", |a| a.help(CONSOLE_SOCKET_HELP))
    }
}

impl VerbHelp for liboci_cli::Run {
    fn help(cmd: clap::Command) -> clap::Command {
        cmd.mut_arg("container_id", |a| {
            a.help("Name of the container instance to be started")
        })
        .mut_arg("console_socket", |a| a.help(CONSOLE_SOCKET_HELP))
    }
}

impl VerbHelp for liboci_cli::Exec {
    fn help(cmd: clap::Command) -> clap::Command {
        cmd.mut_arg("console_socket", |a| a.help(CONSOLE_SOCKET_HELP))
    }
}

impl VerbHelp for liboci_cli::List {
    fn help(cmd: clap::Command) -> clap::Command {
        cmd.mut_arg("format", |a| a.help("Output format: table or json"))
    }
}

impl VerbHelp for liboci_cli::Start {}
impl VerbHelp for liboci_cli::State {}
impl VerbHelp for liboci_cli::Kill {}
impl VerbHelp for liboci_cli::Delete {}
impl VerbHelp for liboci_cli::Ps {}
impl VerbHelp for liboci_cli::Pause {}
impl VerbHelp for liboci_cli::Resume {}
impl VerbHelp for liboci_cli::Features {}
impl VerbHelp for UpdateArgs {}
impl VerbHelp for EventsArgs {}
impl VerbHelp for SpecArgs {}
impl VerbHelp for DoctorArgs {}

impl<T> Verb<T> {
    /// `build` applied to `cmd`, keeping the about texts the verb's variant gave it.
    fn keeping_about(
        cmd: clap::Command,
        build: impl FnOnce(clap::Command) -> clap::Command,
    ) -> clap::Command {
        let about = cmd.get_about().cloned();
        let long_about = cmd.get_long_about().cloned();
        let cmd = build(cmd);
        let cmd = match about {
            Some(text) => cmd.about(text),
            None => cmd.about(None::<&str>),
        };
        match long_about {
            Some(text) => cmd.long_about(text),
            None => cmd.long_about(None::<&str>),
        }
    }
}

impl<T: clap::Args + VerbHelp> clap::Args for Verb<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        Self::keeping_about(cmd, |cmd| T::help(T::augment_args(cmd)))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::keeping_about(cmd, |cmd| T::help(T::augment_args_for_update(cmd)))
    }
}

impl<T: clap::FromArgMatches> clap::FromArgMatches for Verb<T> {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(Self)
    }
    fn from_arg_matches_mut(m: &mut clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(m).map(Self)
    }
    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
    fn update_from_arg_matches_mut(&mut self, m: &mut clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(m)
    }
}

/// `update`'s flags, as runc spells them. liboci-cli's struct types `--cpu-quota`
/// unsigned, so runc's `--cpu-quota -1` (no limit, what tools pass to lift one) would
/// not parse; this one takes it.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Read the new resource limits from the given json file. Use - to read from stdin.
    /// If this option is used, all other options are ignored.
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Set a new I/O weight
    #[arg(long)]
    pub blkio_weight: Option<u64>,
    /// Set CPU CFS period to be used for hardcapping (in microseconds)
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// Set CPU usage limit within a given period (in microseconds; -1 for no limit)
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(-1..))]
    pub cpu_quota: Option<i64>,
    /// Set CPU realtime period to be used for hardcapping (in microseconds)
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// Set CPU realtime hardcap limit (in microseconds)
    #[arg(long)]
    pub cpu_rt_runtime: Option<u64>,
    /// Set CPU shares (relative weight vs. other containers)
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// Set CPU(s) to use. The list can contain commas and ranges. For example: 0-3,7
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Set memory node(s) to use. The list format is the same as for --cpuset-cpus.
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Set memory limit to num bytes.
    #[arg(long)]
    pub memory: Option<u64>,
    /// Set memory reservation (or soft limit) to num bytes.
    #[arg(long)]
    pub memory_reservation: Option<u64>,
    /// Set total memory + swap usage to num bytes. Use -1 to unset the limit (i.e. use unlimited swap).
    #[arg(long, allow_negative_numbers = true)]
    pub memory_swap: Option<i64>,
    /// Set the maximum number of processes allowed in the container
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Set the value for Intel RDT/CAT L3 cache schema.
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    /// Set the Intel RDT/MBA memory bandwidth schema.
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
    /// Container identifier
    #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new(), required = true)]
    pub container_id: String,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Directory to write config.json into
    #[arg(long, short, default_value = ".")]
    pub bundle: PathBuf,
    /// Accepted for runc compatibility (rootless specs are not generated)
    #[arg(long)]
    pub rootless: bool,
    /// Produce a spec that passes this profile (name or path)
    #[arg(long)]
    pub profile: Option<String>,
    /// Print to stdout instead of writing config.json
    #[arg(long)]
    pub stdout: bool,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ProfileCmd {
    /// Check a config.json, or the containers of Kubernetes manifests (.yaml/.yml:
    /// Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob), against a
    /// profile (exit 0 admitted, 1 refused, 2 error)
    Check {
        /// Profile name (from the profiles dir) or path to a .toml file
        #[arg(long)]
        profile: String,
        /// Path to the config.json or manifest file to check
        #[arg(value_name = "CONFIG_JSON|MANIFEST")]
        spec: PathBuf,
        /// Print the decision as JSON
        #[arg(long)]
        json: bool,
        /// Print SARIF 2.1.0 for code scanning (Kubernetes manifests)
        #[arg(long, conflicts_with = "json")]
        sarif: bool,
    },
    /// Lint a profile: schema, unknown syscalls, contradictions, unenforceable rules
    Lint {
        /// Profile name or path
        profile: String,
    },
    /// Convert a Docker/OCI seccomp JSON into a profile's seccomp data (TOML on
    /// stdout); what cannot be carried over is listed on stderr
    ImportSeccomp {
        /// Docker or OCI seccomp JSON file
        file: PathBuf,
        /// Name for the imported filter
        #[arg(long, default_value = "imported")]
        name: String,
        /// Syscall names to leave out of the import (e.g. ones the target profile
        /// denies); repeat the flag or separate names with commas
        #[arg(long, value_name = "NAME", num_args = 1.., value_delimiter = ',')]
        exclude: Vec<String>,
    },
    /// Explain a profile in plain language
    Explain {
        /// Profile name or path
        profile: String,
    },
    /// Run a bundle's workload under a recording seccomp filter (SECCOMP_RET_LOG) until
    /// it makes no new syscall, and draft a profile from what it used:
    /// <out>/<name>.toml and <out>/seccomp/<name>.toml
    Learn {
        /// Bundle directory holding config.json (its rootfs is used as is)
        #[arg(long, default_value = ".")]
        bundle: PathBuf,
        /// Directory to write the draft profile into
        #[arg(long)]
        out: PathBuf,
        /// Name of the drafted profile
        #[arg(long, default_value = "learned")]
        name: String,
        /// Give up after this many recorded runs
        #[arg(long, default_value_t = 40)]
        max_runs: usize,
    },
    /// What profile A allows that profile B does not, and the reverse, rule by rule
    /// (exit 0 when they allow the same, 1 when they differ)
    Diff {
        /// Profile name or path
        a: String,
        /// Profile name or path
        b: String,
        /// Print the differences as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show a profile's effective seccomp allow-list and BPF length, or (with
    /// --container) the plan a container runs under, from <root>/.stockade/plans/<id>
    Show {
        /// Profile name or path
        #[arg(required_unless_present = "container", conflicts_with = "container")]
        profile: Option<String>,
        /// A container under --root: its hardened spec and plan record
        #[arg(long, value_name = "ID")]
        container: Option<String>,
        /// Print as JSON
        #[arg(long)]
        json: bool,
    },
}

/// runc's `events`. liboci-cli's struct takes `--interval` as bare seconds, but
/// runc takes a Go duration and go-runc's `Events` passes `--interval=5s`.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Stats collection interval: a Go duration (`5s`, `500ms`, `1m30s`) or seconds
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub interval: std::time::Duration,
    /// Display the container stats only once
    #[arg(long)]
    pub stats: bool,
    /// Name of the container instance
    #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new(), required = true)]
    pub container_id: String,
}

/// A Go `time.ParseDuration` string of unsigned decimal numbers with units
/// (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), or a bare number of seconds.
fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {text:?} (e.g. 5s, 500ms, 1m30s)");
    if let Ok(secs) = text.parse::<f64>() {
        return std::time::Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    if text.is_empty() {
        return Err(bad());
    }
    std::time::Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::parse_interval;
    use std::time::Duration;

    #[test]
    fn interval_accepts_go_durations_and_bare_seconds() {
        for (text, want) in [
            ("5s", Duration::from_secs(5)),
            ("500ms", Duration::from_millis(500)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5h", Duration::from_secs(5400)),
            ("250us", Duration::from_micros(250)),
            ("7", Duration::from_secs(7)),
        ] {
            assert_eq!(parse_interval(text), Ok(want), "{text}");
        }
        for text in ["", "s", "5x", "-1s", "-1", "1s5"] {
            assert!(parse_interval(text).is_err(), "{text}");
        }
    }
}
