//! The `stockade` binary: parse flags, set up logging, run one verb, map the outcome
//! to an exit code. Errors are rendered here, once, with their causes.

use std::process::ExitCode;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod early_reexec;

use anyhow::Context as _;
use stockade::cgroup_placement::CgroupDriver;
use stockade::cli::{Cli, Command, ProfileCmd, Verb};
use stockade::commands::{self, create::CreateOpts, Global};
use stockade::logging::{self, Format};
use stockade::self_protect;
use stockade::state_root::StateRoot;

/// Whether `--log` names a file (else log lines go to stderr).
static LOG_TO_FILE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn main() -> ExitCode {
    // A verb that enters a container re-executes from a read-only binary
    // (`enter_container_guard`). Doing it before anything else spares the image that
    // is replaced its command-line parsing and logging setup (crun re-executes at the
    // same point). A token equal to such a verb anywhere (even a container id) only
    // costs that re-execution early. Best effort: `enter_container_guard` still
    // enforces it, and reports a failure through the configured log.
    if std::env::args_os()
        .skip(1)
        .any(|a| ENTERING_VERBS.iter().any(|v| a == *v))
    {
        let _ = self_protect::run_from_read_only_binary();
    }
    let cli = parse_command_line();
    LOG_TO_FILE.store(
        cli.global.log.is_some(),
        std::sync::atomic::Ordering::Relaxed,
    );
    let format = if cli.global.log_format == "json" {
        Format::Json
    } else {
        Format::Text
    };
    if let Err(e) = logging::init(cli.global.log.as_deref(), format, cli.global.debug) {
        print_err(&format!("stockade: {}", stockade::error_chain(&e)));
        return ExitCode::FAILURE;
    }
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report(&e);
            e.downcast_ref::<commands::CommandError>()
                .map_or(ExitCode::FAILURE, |c| ExitCode::from(c.exit_code()))
        }
    }
}

/// [`Cli::parse`], without freeing clap's command tree and matches afterwards:
/// the process ends with the verb, and dropping every subcommand's arguments (each
/// global flag is cloned into every verb) was a sixth of the instructions of a
/// short verb such as `state`.
fn parse_command_line() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let mut cmd = Cli::command();
    let mut matches = cmd.get_matches_mut();
    let cli = Cli::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.format(&mut cmd).exit());
    std::mem::forget(matches);
    std::mem::forget(cmd);
    cli
}

/// Render a failed verb once: to the log (containerd's runc shim shows the last `error`
/// line of the log file) and to stderr for a terminal user. Both get the full reason.
fn report(e: &anyhow::Error) -> String {
    let msg = format!("{e:#}");
    // Without --log the log *is* stderr: the line below says it once.
    if LOG_TO_FILE.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::error!("{msg}");
    }
    // A refusal already starts with "stockade:"; don't say it twice.
    if msg.starts_with("stockade:") {
        print_err(&msg);
    } else {
        print_err(&format!("stockade: {msg}"));
    }
    msg
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let g = Global {
        root: StateRoot::new(&cli.global.root),
        config: cli.global.config.clone(),
        default_profile: cli.global.default_profile.clone(),
        handler: cli.global.handler.clone(),
        userns_db: cli.global.userns_db.clone(),
        cgroup_driver: if cli.global.systemd_cgroup {
            CgroupDriver::Systemd
        } else {
            CgroupDriver::Cgroupfs
        },
    };
    match &cli.command {
        Command::Create(Verb(a)) => {
            enter_container_guard()?;
            commands::create::create(
                &g,
                &CreateOpts {
                    id: &a.container_id,
                    bundle: &a.bundle,
                    pid_file: a.pid_file.as_deref(),
                    console_socket: a.console_socket.as_deref(),
                    no_pivot: a.no_pivot,
                    preserve_fds: a.preserve_fds,
                    detach: true,
                },
            )?;
        }
        Command::Run(Verb(a)) => {
            enter_container_guard()?;
            return Ok(clamp(commands::run::run(&g, a)?));
        }
        Command::Exec(Verb(a)) => {
            enter_container_guard()?;
            let opts = commands::exec::ExecOpts { args: a };
            return Ok(clamp(commands::exec::exec(&g, &opts)?));
        }
        Command::Start(Verb(a)) => commands::lifecycle::start(&g, &a.container_id)?,
        Command::State(Verb(a)) => {
            let s = commands::lifecycle::state(&g, &a.container_id)?;
            print_out(&serde_json::to_string_pretty(&s)?)?;
        }
        Command::Kill(Verb(a)) => commands::lifecycle::kill(&g, &a.container_id, &a.signal, a.all)?,
        Command::Delete(Verb(a)) => commands::lifecycle::delete(&g, &a.container_id, a.force)?,
        Command::Pause(Verb(a)) => commands::lifecycle::pause(&g, &a.container_id)?,
        Command::Resume(Verb(a)) => commands::lifecycle::resume(&g, &a.container_id)?,
        Command::Ps(Verb(a)) => print_out(&commands::info::ps(&g, a)?)?,
        Command::List(Verb(a)) => print_out(&commands::info::list(&g, a)?)?,
        Command::Events(Verb(a)) => commands::info::events(&g, a)?,
        Command::Update(Verb(a)) => commands::info::update(&g, a)?,
        Command::Features(_) => {
            print_out(&serde_json::to_string_pretty(&commands::info::features())?)?
        }
        Command::Spec(Verb(a)) => {
            let spec = match &a.profile {
                Some(p) => commands::profile_cmd::compliant_spec(g.config.as_deref(), p)?,
                None => stockade::default_spec::hardened_default(),
            };
            let json =
                serde_json::to_string_pretty(&stockade::default_spec::to_stable_json(&spec)?)?;
            if a.stdout {
                print_out(&json)?;
            } else {
                let path = a.bundle.join("config.json");
                write_new(&path, &json)?;
            }
        }
        Command::Profile(p) => return profile(&g, p),
        Command::Doctor(Verb(a)) => return doctor(&g, a),
        Command::Gc => {
            let report = commands::recover::gc(&g)?;
            print_out(&serde_json::to_string_pretty(&report)?)?;
        }
        Command::Completion { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "stockade", &mut script);
            // A reader that stops early (`| head`) is not an error of ours.
            use std::io::Write as _;
            match std::io::stdout().write_all(&script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
                _ => {}
            }
        }
        Command::Man { dir } => man_pages(dir)?,
    }
    Ok(0)
}

/// Exit status of `stockade profile ...` when the tool could not do its job (bad
/// input, missing profile), distinct from 1 = refused / lint errors, so CI can tell
/// a rejected workload from a broken pipeline.
const PROFILE_TOOL_ERROR: u8 = 2;

/// `stockade profile ...`: print the result; exit 0 admitted / clean, 1 refused / lint
/// errors, 2 error. With `--json` an error is also a JSON document on stdout, so a
/// consumer that parses stdout always gets one.
fn profile(g: &Global, cmd: &ProfileCmd) -> anyhow::Result<u8> {
    let json = matches!(
        cmd,
        ProfileCmd::Check { json: true, .. }
            | ProfileCmd::Check { sarif: true, .. }
            | ProfileCmd::Diff { json: true, .. }
            | ProfileCmd::Show { json: true, .. }
    );
    let (out, code) = match profile_output(g, cmd) {
        Ok(done) => done,
        Err(e) => {
            let msg = report(&e);
            if json {
                let doc = serde_json::json!({ "outcome": "error", "error": msg });
                print_out(&serde_json::to_string_pretty(&doc)?)?;
            }
            return Ok(PROFILE_TOOL_ERROR);
        }
    };
    print_out(&out)?;
    Ok(code)
}

/// A tool's output and its exit status.
fn profile_output(g: &Global, cmd: &ProfileCmd) -> anyhow::Result<(String, u8)> {
    match cmd {
        ProfileCmd::Check {
            profile,
            spec,
            json,
            sarif,
        } if commands::profile_cmd::is_manifest(spec) => Ok(commands::profile_cmd::check_manifest(
            g.config.as_deref(),
            profile,
            spec,
            *json,
            *sarif,
        )?),
        _ => profile_result(g, cmd).map(|(out, ok)| (out, u8::from(!ok))),
    }
}

fn profile_result(g: &Global, cmd: &ProfileCmd) -> anyhow::Result<(String, bool)> {
    use commands::profile_cmd;
    let cfg = g.config.as_deref();
    Ok(match cmd {
        ProfileCmd::Check {
            profile,
            spec,
            json,
            ..
        } => profile_cmd::check(cfg, profile, spec, *json)?,
        ProfileCmd::Lint { profile } => profile_cmd::lint_cmd(cfg, profile)?,
        ProfileCmd::Explain { profile } => (profile_cmd::explain(cfg, profile)?, true),
        ProfileCmd::Diff { a, b, json } => profile_cmd::diff(cfg, a, b, *json)?,
        ProfileCmd::Learn {
            bundle,
            out,
            name,
            max_runs,
        } => (
            commands::learn::learn(&commands::learn::LearnOpts {
                bundle,
                out,
                name,
                max_runs: *max_runs,
            })
            .map_err(commands::CommandError::from)?,
            true,
        ),
        ProfileCmd::Show {
            profile,
            container,
            json,
        } => (
            profile_cmd::show(
                cfg,
                &g.root,
                profile.as_deref(),
                container.as_deref(),
                *json,
            )?,
            true,
        ),
        ProfileCmd::ImportSeccomp {
            file,
            name,
            exclude,
        } => {
            let out = profile_cmd::import_seccomp(file, name, exclude)?;
            for d in &out.dropped {
                print_err(&format!("not imported: {d}"));
            }
            if !out.unknown.is_empty() {
                print_err(&format!(
                    "error: not a syscall on any architecture (misspelt, or newer than this \
                     runtime; fix the source or --exclude them): {}",
                    out.unknown.join(", ")
                ));
            }
            (out.toml, out.unknown.is_empty())
        }
    })
}

/// Write a new file; like `runc spec`, never overwrite one that exists (it may be a
/// reviewed spec).
fn write_new(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                anyhow::anyhow!("{} already exists; remove it first", path.display())
            }
            _ => anyhow::Error::new(e).context(format!("failed to create {}", path.display())),
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .with_context(|| format!("failed to write {}", path.display()))
}

/// Print `out` and a newline. A reader that stops early (`| head`, a closed pipe:
/// EPIPE, SIGPIPE being ignored) is not an error of ours; the print macros would
/// panic there.
fn print_out(out: &str) -> anyhow::Result<()> {
    print_raw(&format!("{out}\n"))
}

/// Print `out` as it is (see [`print_out`]).
fn print_raw(out: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Print a line on stderr; a closed stderr loses it (the macro would panic).
fn print_err(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// `stockade doctor`: the findings, then exit 1 when any check failed.
fn doctor(g: &Global, a: &stockade::cli::DoctorArgs) -> anyhow::Result<u8> {
    use stockade::doctor::{self, probe, Status};
    let facts = probe::probe(&probe::ProbeInputs {
        node_config: g.config.clone(),
        containerd_config: a.containerd_config.clone(),
        idmap_dirs: (!a.idmap_dirs.is_empty()).then(|| a.idmap_dirs.clone()),
    });
    let findings = doctor::assess(&facts);
    let worst = doctor::worst(&findings);
    if a.json {
        let doc = serde_json::json!({ "facts": facts, "findings": findings, "status": worst });
        print_out(&serde_json::to_string_pretty(&doc)?)?;
    } else {
        print_raw(&commands::doctor::render(&findings))?;
    }
    Ok(if worst == Status::Fail { 1 } else { 0 })
}

/// One man page for `stockade` and one per verb (`stockade-create.8`, ...), from the
/// same clap definition that parses the command line.
fn man_pages(dir: &std::path::Path) -> anyhow::Result<()> {
    fn write(cmd: clap::Command, name: &str, dir: &std::path::Path) -> anyhow::Result<()> {
        let path = dir.join(format!("{name}.8"));
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd.clone().name(name.to_string()))
            .section("8")
            .render(&mut out)
            .with_context(|| format!("render {name}"))?;
        std::fs::write(&path, out).with_context(|| format!("write {}", path.display()))?;
        for sub in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            write(sub.clone(), &format!("{name}-{}", sub.get_name()), dir)?;
        }
        Ok(())
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    // Man pages carry the one-line version (.TH), not --version's full text.
    let mut cmd = <Cli as clap::CommandFactory>::command().version(env!("CARGO_PKG_VERSION"));
    cmd.build();
    write(cmd, "stockade", dir)
}

/// The verbs that call [`enter_container_guard`].
const ENTERING_VERBS: [&str; 3] = ["create", "run", "exec"];

/// Protections for verbs whose process enters a container.
fn enter_container_guard() -> anyhow::Result<()> {
    self_protect::run_from_read_only_binary()?;
    self_protect::make_non_dumpable()?;
    Ok(())
}

fn clamp(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(1)
}
