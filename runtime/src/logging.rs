//! Log output in the shape containerd's runc shim reads.
//!
//! With `--log-format json`, every event is one line
//! `{"level":"error","msg":"...","time":"RFC3339"}`: go-runc scans the log file for
//! the last `error` entry and shows its `msg` to the user (e.g. in `ctr run`), so a
//! refused container's violation list must land in `msg` verbatim.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io;
use std::path::Path;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("failed to open log file {path}")]
    OpenLog {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to install the log subscriber")]
    Install(#[source] tracing_subscriber::util::TryInitError),
}

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Install the process-wide subscriber. `debug` lowers the threshold to DEBUG; the
/// default is INFO so that audit events (profile decisions) are always recorded.
pub fn init(path: Option<&Path>, format: Format, debug: bool) -> Result<(), LoggingError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    // libcontainer reports every cgroup controller the host lacks as a warning, and
    // logs each error at every layer it passes through before returning it. The
    // error it returns carries its whole cause chain (the vendored copy sends the
    // init's chain across), and `main` prints that once; so the library crates are
    // heard only when --debug asks for everything.
    let filter = if debug {
        Targets::new().with_default(Level::DEBUG)
    } else {
        // A log file records every audit event; an interactive stderr only hears
        // warnings and errors, as with runc.
        let default = if path.is_some() {
            Level::INFO
        } else {
            Level::WARN
        };
        Targets::new()
            .with_default(default)
            .with_target("libcontainer", LevelFilter::OFF)
            .with_target("libcgroups", LevelFilter::OFF)
    };
    let writer = match path {
        Some(p) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|source| LoggingError::OpenLog {
                    path: p.display().to_string(),
                    source,
                })?;
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Mutex::new(file))
        }
        None => tracing_subscriber::fmt::writer::BoxMakeWriter::new(io::stderr),
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .event_format(RuncFormat { format })
        .with_filter(filter);
    use tracing_subscriber::Layer as _;
    tracing_subscriber::registry()
        .with(layer)
        .try_init()
        .map_err(LoggingError::Install)
}

/// Formats events as runc does (logrus text or JSON).
struct RuncFormat {
    format: Format,
}

impl<S, N> FormatEvent<S, N> for RuncFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        // Span context (container id, lifecycle step) goes into the message so that
        // one line is self-contained for whoever reads it.
        let mut scope = String::new();
        if let Some(span) = ctx.lookup_current() {
            for s in span.scope().from_root() {
                let ext = s.extensions();
                let _ = write!(scope, "{}", s.name());
                if let Some(f) = ext.get::<tracing_subscriber::fmt::FormattedFields<N>>() {
                    if !f.is_empty() {
                        let _ = write!(scope, "{{{f}}}");
                    }
                }
                scope.push(':');
            }
        }
        let level = level_name(*event.metadata().level());
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let msg = if scope.is_empty() {
            fields.message
        } else {
            format!("{scope} {}", fields.message)
        };
        match self.format {
            Format::Json => {
                let mut line = serde_json::Map::new();
                line.insert("level".into(), level.into());
                line.insert("msg".into(), msg.into());
                line.insert("time".into(), time.into());
                for (k, v) in fields.rest {
                    // Structured events (the audit record) stay structured in JSON logs.
                    let value = if k == "audit" {
                        serde_json::from_str(&v).unwrap_or(serde_json::Value::String(v))
                    } else {
                        serde_json::Value::String(v)
                    };
                    line.insert(k.to_string(), value);
                }
                writeln!(writer, "{}", serde_json::Value::Object(line))
            }
            Format::Text => {
                write!(writer, "time=\"{time}\" level={level} msg={msg:?}")?;
                for (k, v) in fields.rest {
                    if k == "audit" {
                        write!(writer, " {k}={v}")?;
                    } else {
                        write!(writer, " {k}={v:?}")?;
                    }
                }
                writeln!(writer)
            }
        }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.rest.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.rest.push((field.name(), format!("{value:?}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_match_logrus() {
        assert_eq!(level_name(Level::ERROR), "error");
        assert_eq!(level_name(Level::WARN), "warning");
    }
}
