//! The node-wide audit log and metrics file (`[audit]` of the node config): every
//! decision is a JSON line that outlives the container, the refusal's record id is in
//! the runtime's log line, and the Prometheus text file counts decisions by outcome,
//! violations by rule, and create latency. Real creates under shipped profiles.

use std::fs;

use serde_json::Value;
use stockade_integration_tests::profiles::{bundle_from_spec, fixture_on_this_host, PodSandbox};
use stockade_integration_tests::runtime::profiles_dir;
use stockade_integration_tests::{runtime, skip_on_reference, BundleBuilder};

fn audit_lines(path: &std::path::Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn decisions_are_kept_in_the_node_audit_log_and_metrics() {
    if skip_on_reference("the audit log is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "restricted");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log/audit.jsonl");
    let metrics = dir.path().join("textfile/stockade.prom");
    rt.set_node_config(&format!(
        "schema = 1\nprofiles_dir = {:?}\ndefault_profile = \"restricted\"\n\n[audit]\nlog = {:?}\nmetrics = {:?}\n",
        profiles_dir(),
        log,
        metrics
    ));

    // A refusal: the record survives the container and carries every violation.
    let sandbox = PodSandbox::start();
    let refused = bundle_from_spec(fixture_on_this_host("cap-sys-admin", &sandbox)).build();
    let out = match rt.create(&refused) {
        Ok(c) => panic!("{c:?}: restricted admitted CAP_SYS_ADMIN"),
        Err(f) => f.out,
    };
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let lines = audit_lines(&log);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let rec = &lines[0];
    assert_eq!(rec["outcome"], "refused", "{rec}");
    assert_eq!(rec["profile"], "restricted");
    assert_eq!(rec["container_id"], refused.id.as_str());
    assert!(
        rec["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["rule"] == "capabilities.allowed"),
        "{rec}"
    );
    let id = rec["id"].as_str().unwrap();
    assert_eq!(id.len(), 16, "{rec}");
    assert!(rec["time"].as_str().unwrap().ends_with('Z'), "{rec}");
    // The refusal message (what a pod's events show) is short and points at it.
    assert!(out.stderr.len() <= 900, "{}", out.stderr);
    assert!(
        out.stderr
            .trim_end()
            .ends_with(&format!("full record: audit id {id} in {}", log.display())),
        "{}",
        out.stderr
    );
    // The container's own log names the same record.
    assert!(
        rt.log_text().contains(&format!("\"audit_id\":\"{id}\"")),
        "{}",
        rt.log_text()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // An admitted (hardened) container: a second line, and a create time observed.
    let ok = BundleBuilder::new()
        .edit(|s| {
            s["process"]["user"]["uid"] = 1000.into();
            s["process"]["user"]["gid"] = 1000.into();
        })
        .args(&["true"])
        .build();
    rt.set_node_config(&format!(
        "schema = 1\nprofiles_dir = {:?}\ndefault_profile = \"default\"\n\n[audit]\nlog = {:?}\nmetrics = {:?}\n",
        profiles_dir(),
        log,
        metrics
    ));
    let c = rt.create(&ok).expect("default admits a plain spec");
    c.start();
    c.wait();
    drop(c);
    let lines = audit_lines(&log);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["outcome"], "hardened");
    assert_eq!(lines[1]["profile"], "default");
    assert_ne!(lines[1]["id"], lines[0]["id"]);

    let prom = fs::read_to_string(&metrics).expect("metrics file");
    // One count per violation of the rule (one per capability set here).
    let cap_violations = lines[0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["rule"] == "capabilities.allowed")
        .count();
    for want in [
        "stockade_decisions_total{profile=\"restricted\",outcome=\"refused\"} 1".to_string(),
        "stockade_decisions_total{profile=\"default\",outcome=\"hardened\"} 1".to_string(),
        format!(
            "stockade_violations_total{{profile=\"restricted\",rule=\"capabilities.allowed\"}} {cap_violations}"
        ),
        "stockade_create_duration_seconds_count 1".to_string(),
        "stockade_create_duration_seconds_bucket{le=\"+Inf\"} 1".to_string(),
    ] {
        assert!(prom.lines().any(|l| l == want), "{want} not in\n{prom}");
    }
    assert!(
        prom.contains("# TYPE stockade_decisions_total counter"),
        "{prom}"
    );
    // Written by rename: no temp file left for the collector to read half-written.
    assert!(!metrics.with_extension("prom.tmp").exists());
}
