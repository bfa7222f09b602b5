//! The node-wide record of admission decisions, kept after the container is gone.
//!
//! Two sinks, both named by the node config's `[audit]` table:
//! - a JSON-lines log (default `/var/log/stockade/audit.jsonl`, 0600): one line per
//!   decision with an `id` the refusal message quotes, size-capped with numbered
//!   rotation (`audit.jsonl.1` is the newest old file);
//! - a Prometheus text file for node_exporter's textfile collector (`metrics`, off
//!   unless set): decisions by profile and outcome, violations by rule, and create
//!   latency. Every runtime invocation is a separate process, so the file itself is
//!   the counter state: read, add, write a temp file, rename (atomic for the
//!   collector), all under a lock file.
//!
//! Writing either is best effort for the container (an unwritable log must not stop
//! the node) but never silent: failures are returned for the caller to log.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::profile::plan::{AuditRecord, Outcome};

pub use crate::profile::node_config::AuditConfig;

#[derive(Debug, thiserror::Error)]
pub enum AuditLogError {
    #[error("cannot write the audit log {path}")]
    Log {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot update the metrics file {path}")]
    Metrics {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A fresh record id: 16 hex digits from the kernel's random pool, quoted in the
/// refusal message so an operator finds the full record.
pub fn new_id() -> String {
    let mut b = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        // Unique enough to find the line again: time and pid.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        b = (t ^ u64::from(std::process::id()) << 40).to_be_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Held lock on `<path>.lock` (flock, released on drop).
struct Lock {
    _held: nix::fcntl::Flock<File>,
}

impl Lock {
    fn take(path: &Path) -> io::Result<Lock> {
        let mut p = path.as_os_str().to_owned();
        p.push(".lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(PathBuf::from(p))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map(|held| Lock { _held: held })
            .map_err(|(_, e)| io::Error::from(e))
    }
}

fn ensure_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(d)
        }
        _ => Ok(()),
    }
}

/// Append one decision as a JSON line `{"id":..,"time":..,<record>}`.
pub fn append(cfg: &AuditConfig, id: &str, record: &AuditRecord) -> Result<(), AuditLogError> {
    if cfg.log.as_os_str().is_empty() {
        return Ok(());
    }
    let err = |source| AuditLogError::Log {
        path: cfg.log.clone(),
        source,
    };
    let mut line = serde_json::json!({
        "id": id,
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    if let (Some(obj), Ok(serde_json::Value::Object(rec))) =
        (line.as_object_mut(), serde_json::to_value(record))
    {
        obj.extend(rec);
    }
    let mut text = line.to_string();
    text.push('\n');

    ensure_dir(&cfg.log).map_err(err)?;
    let _lock = Lock::take(&cfg.log).map_err(err)?;
    let size = fs::metadata(&cfg.log).map(|m| m.len()).unwrap_or(0);
    if size > 0 && size + text.len() as u64 > cfg.max_bytes {
        rotate(&cfg.log, cfg.keep).map_err(err)?;
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&cfg.log)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)
}

/// `log` → `log.1` → ... → `log.keep` (the oldest is dropped).
fn rotate(log: &Path, keep: u32) -> io::Result<()> {
    let numbered = |n: u32| {
        let mut p = log.as_os_str().to_owned();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    };
    if keep == 0 {
        return fs::remove_file(log);
    }
    let _ = fs::remove_file(numbered(keep));
    for n in (1..keep).rev() {
        match fs::rename(numbered(n), numbered(n + 1)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    fs::rename(log, numbered(1))
}

/// Where one decision was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub id: String,
    /// The node audit log holding it; `None` when off or not writable (the runtime's
    /// own log line still carries it, with the id).
    pub log: Option<PathBuf>,
}

impl std::fmt::Display for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.log {
            Some(l) => write!(f, "audit id {} in {}", self.id, l.display()),
            None => write!(f, "audit id {} in the runtime's log", self.id),
        }
    }
}

/// Record one decision in the node's audit log and metrics, as the node config at
/// `config` says. A sink that cannot be written is logged as an error (the
/// container's own log still holds the decision) and does not stop the container.
pub fn record(config: Option<&Path>, record: &AuditRecord) -> Recorded {
    record_in(&crate::profile::node_config::audit_config(config), record)
}

/// [`record`] under audit settings already read from the node config.
pub fn record_in(cfg: &AuditConfig, record: &AuditRecord) -> Recorded {
    let id = new_id();
    let mut log = (!cfg.log.as_os_str().is_empty()).then(|| cfg.log.clone());
    if let Err(e) = append(cfg, &id, record) {
        tracing::error!("{}", crate::error_chain(&e));
        log = None;
    }
    let obs = Observation {
        decision: Some(record),
        create_seconds: None,
    };
    if let Err(e) = observe(cfg, &obs) {
        tracing::error!("{}", crate::error_chain(&e));
    }
    Recorded { id, log }
}

/// Add a finished create's wall time to the metrics.
pub fn record_create_time(cfg: &AuditConfig, seconds: f64) {
    let obs = Observation {
        decision: None,
        create_seconds: Some(seconds),
    };
    if let Err(e) = observe(cfg, &obs) {
        tracing::error!("{}", crate::error_chain(&e));
    }
}

/// Buckets of `stockade_create_duration_seconds`.
const BUCKETS: [f64; 9] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

const HELP: [(&str, &str, &str); 3] = [
    (
        "stockade_decisions_total",
        "counter",
        "Admission decisions of the runtime, by profile and outcome (admitted, hardened, refused).",
    ),
    (
        "stockade_violations_total",
        "counter",
        "Rules violated by refused containers, by profile and rule.",
    ),
    (
        "stockade_create_duration_seconds",
        "histogram",
        "Wall time of stockade create, from start to the container's init waiting to start.",
    ),
];

/// What one invocation adds to the metrics.
#[derive(Debug, Clone, Default)]
pub struct Observation<'a> {
    pub decision: Option<&'a AuditRecord>,
    /// A completed create's duration.
    pub create_seconds: Option<f64>,
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return name.to_string();
    }
    let l: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
        .collect();
    format!("{name}{{{}}}", l.join(","))
}

/// Parse our own file back into series → value (lines we did not write are dropped).
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| l.starts_with("stockade_"))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn render(values: &BTreeMap<String, f64>) -> String {
    let mut out = String::new();
    for (name, kind, help) in HELP {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (k, v) in values.iter().filter(|(k, _)| {
            k.strip_prefix(name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['{', '_']))
        }) {
            out.push_str(&format!("{k} {v}\n"));
        }
    }
    out
}

/// Add `obs` to the metrics in `values` (pure: table-tested).
fn add(values: &mut BTreeMap<String, f64>, obs: &Observation<'_>) {
    if let Some(r) = obs.decision {
        let outcome = match r.outcome {
            Outcome::Admitted => "admitted",
            Outcome::Hardened => "hardened",
            Outcome::Refused => "refused",
            Outcome::WouldRefuse => "would_refuse",
        };
        *values
            .entry(series(
                "stockade_decisions_total",
                &[("profile", &r.profile), ("outcome", outcome)],
            ))
            .or_default() += 1.0;
        for v in &r.violations {
            *values
                .entry(series(
                    "stockade_violations_total",
                    &[("profile", &r.profile), ("rule", v.rule)],
                ))
                .or_default() += 1.0;
        }
    }
    if let Some(s) = obs.create_seconds {
        let name = "stockade_create_duration_seconds";
        for b in BUCKETS {
            let le = b.to_string();
            let e = values
                .entry(series(&format!("{name}_bucket"), &[("le", &le)]))
                .or_default();
            if s <= b {
                *e += 1.0;
            }
        }
        *values
            .entry(series(&format!("{name}_bucket"), &[("le", "+Inf")]))
            .or_default() += 1.0;
        *values.entry(format!("{name}_sum")).or_default() += s;
        *values.entry(format!("{name}_count")).or_default() += 1.0;
    }
}

/// Add one invocation's observation to the metrics file, atomically.
pub fn observe(cfg: &AuditConfig, obs: &Observation<'_>) -> Result<(), AuditLogError> {
    let Some(path) = &cfg.metrics else {
        return Ok(());
    };
    let err = |source| AuditLogError::Metrics {
        path: path.clone(),
        source,
    };
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).map_err(err)?;
    }
    let _lock = Lock::take(path).map_err(err)?;
    let mut values = fs::read_to_string(path)
        .map(|t| parse(&t))
        .unwrap_or_default();
    add(&mut values, obs);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // 0644: node_exporter reads it as its own user.
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(render(&values).as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::plan::AUDIT_EVENT;

    fn record(outcome: Outcome, rules: &[&'static str]) -> AuditRecord {
        AuditRecord {
            event: AUDIT_EVENT,
            verb: crate::profile::gate::Verb::Create,
            outcome,
            container_id: Some("c1".into()),
            profile: "restricted".into(),
            version: "1.0.0".into(),
            violations: rules
                .iter()
                .map(|r| crate::profile::Violation {
                    rule: r,
                    path: "process.user.uid".into(),
                    actual: "0".into(),
                    allowed: "1-65535".into(),
                    reason: "no root".into(),
                    k8s_field: "runAsNonRoot",
                    mode: crate::profile::schema::Mode::Enforce,
                })
                .collect(),
            warnings: vec![],
            injected: vec![],
            landlock: None,
            userns: None,
            would_refuse: vec![],
            would_inject: vec![],
        }
    }

    #[test]
    fn counters_accumulate_across_reads_and_writes() {
        let mut v = BTreeMap::new();
        let refused = record(Outcome::Refused, &["process.root", "capabilities.allowed"]);
        add(
            &mut v,
            &Observation {
                decision: Some(&refused),
                create_seconds: None,
            },
        );
        let mut v = parse(&render(&v));
        add(
            &mut v,
            &Observation {
                decision: Some(&record(Outcome::Hardened, &[])),
                create_seconds: Some(0.04),
            },
        );
        let text = render(&v);
        for line in [
            "stockade_decisions_total{profile=\"restricted\",outcome=\"refused\"} 1",
            "stockade_decisions_total{profile=\"restricted\",outcome=\"hardened\"} 1",
            "stockade_violations_total{profile=\"restricted\",rule=\"process.root\"} 1",
            "stockade_create_duration_seconds_bucket{le=\"0.025\"} 0",
            "stockade_create_duration_seconds_bucket{le=\"0.05\"} 1",
            "stockade_create_duration_seconds_bucket{le=\"+Inf\"} 1",
            "stockade_create_duration_seconds_count 1",
            "# TYPE stockade_create_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
    }

    #[test]
    fn log_rotates_at_the_cap_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = AuditConfig {
            log: dir.path().join("a/audit.jsonl"),
            max_bytes: 600,
            keep: 2,
            metrics: None,
        };
        let r = record(Outcome::Refused, &["process.root"]);
        for i in 0..10 {
            append(&cfg, &format!("id{i}"), &r).unwrap();
        }
        let read = |p: &str| fs::read_to_string(dir.path().join(p)).unwrap_or_default();
        let cur = read("a/audit.jsonl");
        assert!(cur.len() <= 600, "{}", cur.len());
        assert!(cur.contains("\"id\":\"id9\""), "{cur}");
        assert!(!read("a/audit.jsonl.1").is_empty());
        assert!(!dir.path().join("a/audit.jsonl.3").exists());
        let line: serde_json::Value = serde_json::from_str(cur.lines().last().unwrap()).unwrap();
        assert_eq!(line["outcome"], "refused");
        assert_eq!(line["violations"][0]["rule"], "process.root");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&cfg.log).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn ids_differ() {
        assert_ne!(new_id(), new_id());
        assert_eq!(new_id().len(), 16);
    }
}
