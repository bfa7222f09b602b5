//! The `stockade` binary: parse flags, set up logging, run one verb, map the outcome
//! to an exit code. Errors are rendered here, once, with their causes.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use stockade::cli::{Cli, Command, ProfileCmd};
use stockade::commands::{self, create::CreateOpts, Global};
use stockade::logging::{self, Format};
use stockade::self_protect;
use stockade::state_root::StateRoot;

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            let msg = format!("{e:#}");
            // containerd's runc shim shows the last `error` line of the log file; a
            // terminal user reads stderr. Both get the full reason.
            tracing::error!("{msg}");
            // A refusal already starts with "stockade:"; don't say it twice.
            if msg.starts_with("stockade:") {
                print_err(&msg);
            } else {
                print_err(&format!("stockade: {msg}"));
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let g = Global {
        root: StateRoot::new(&cli.global.root),
        config: cli.global.config.clone(),
        default_profile: cli.global.default_profile.clone(),
        handler: cli.global.handler.clone(),
        userns_db: cli.global.userns_db.clone(),
    };
    match &cli.command {
        Command::Create(a) => {
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
        Command::Run(a) => {
            enter_container_guard()?;
            return Ok(clamp(commands::run::run(&g, a)?));
        }
        Command::Exec(a) => {
            enter_container_guard()?;
            let opts = commands::exec::ExecOpts { args: a };
            return Ok(clamp(commands::exec::exec(&g, &opts)?));
        }
        Command::Start(a) => commands::lifecycle::start(&g, &a.container_id)?,
        Command::State(a) => {
            let s = commands::lifecycle::state(&g, &a.container_id)?;
            print_out(&serde_json::to_string_pretty(&s)?)?;
        }
        Command::Kill(a) => commands::lifecycle::kill(&g, &a.container_id, &a.signal, a.all)?,
        Command::Delete(a) => commands::lifecycle::delete(&g, &a.container_id, a.force)?,
        Command::Pause(a) => commands::lifecycle::pause(&g, &a.container_id)?,
        Command::Resume(a) => commands::lifecycle::resume(&g, &a.container_id)?,
        Command::Ps(a) => print_out(&commands::info::ps(&g, a)?)?,
        Command::List(a) => print_out(&commands::info::list(&g, a)?)?,
        Command::Events(a) => commands::info::events(&g, a)?,
        Command::Update(a) => commands::info::update(&g, a)?,
        Command::Features(_) => {
            print_out(&serde_json::to_string_pretty(&commands::info::features())?)?
        }
        Command::Spec(a) => {
            let spec = match &a.profile {
                Some(p) => commands::profile_cmd::compliant_spec(g.config.as_deref(), p)?,
                None => stockade::default_spec::hardened_default(),
            };
            let json = serde_json::to_string_pretty(&spec)?;
            if a.stdout {
                print_out(&json)?;
            } else {
                let path = a.bundle.join("config.json");
                std::fs::write(&path, json)
                    .with_context(|| format!("failed to write {}", path.display()))?;
            }
        }
        Command::Profile(p) => return profile(&g, p),
    }
    Ok(0)
}

/// `stockade profile ...`: print the result; exit 1 when refused / lint errors.
fn profile(g: &Global, cmd: &ProfileCmd) -> anyhow::Result<u8> {
    use commands::profile_cmd;
    let cfg = g.config.as_deref();
    let (out, ok) = match cmd {
        ProfileCmd::Check {
            profile,
            spec,
            json,
        } => profile_cmd::check(cfg, profile, spec, *json)?,
        ProfileCmd::Lint { profile } => profile_cmd::lint_cmd(cfg, profile)?,
        ProfileCmd::Explain { profile } => (profile_cmd::explain(cfg, profile)?, true),
        ProfileCmd::ImportSeccomp { file, name } => {
            let (toml, dropped) = profile_cmd::import_seccomp(file, name)?;
            for d in dropped {
                print_err(&format!("not imported: {d}"));
            }
            (toml, true)
        }
    };
    print_out(&out)?;
    Ok(if ok { 0 } else { 1 })
}

/// Print `text` and a newline on stdout. A reader that went away (`| head`, a
/// closed pipe: EPIPE, SIGPIPE being ignored) is not an error of ours; the print
/// macros would panic there.
fn print_out(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok(()),
    }
}

/// Print a line on stderr; a closed stderr loses it (the macro would panic).
fn print_err(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Protections for verbs whose process enters a container.
fn enter_container_guard() -> anyhow::Result<()> {
    self_protect::run_from_read_only_binary()?;
    self_protect::make_non_dumpable()?;
    Ok(())
}

fn clamp(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(1)
}
