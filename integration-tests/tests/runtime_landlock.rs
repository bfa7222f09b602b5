//! Landlock (Stockade-specific): rules from the hardening profile, here requested
//! through the `org.stockade.landlock` annotation, confine the container's init and
//! its `exec` processes. runc has no Landlock support, so under a reference run
//! (`STOCKADE_TEST_REFERENCE=1`) these are skipped, loudly.

use serde_json::Value;
use stockade_integration_tests::{
    assert_nothing_left_behind, runtime, skip_on_reference, BundleBuilder,
};

/// The annotation Stockade reads Landlock rules from.
const LANDLOCK_ANNOTATION: &str = "org.stockade.landlock";

/// Writes are allowed below /tmp only; the rest of the tree is read/execute.
const RULES: &str = r#"{"fs_rules":[{"path":"/tmp","access":["read_file","write_file","make_reg","read_dir"]},{"path":"/","access":["read_file","read_dir","execute"]}]}"#;

fn landlocked() -> BundleBuilder {
    // A writable root, so a refused write can only be Landlock's doing (EACCES),
    // not the read-only mount (EROFS).
    BundleBuilder::new()
        .readonly_root(false)
        .annotation(LANDLOCK_ANNOTATION, RULES)
}

fn errno(report: &Value) -> i64 {
    report["errno"]
        .as_i64()
        .unwrap_or_else(|| panic!("no errno in {report}"))
}

/// Control for the scenarios below, valid on any runtime: without rules, the same
/// write outside /tmp succeeds.
#[test]
fn without_rules_the_write_outside_tmp_succeeds() {
    let rt = runtime!();
    let bundle = BundleBuilder::new()
        .readonly_root(false)
        .args(&["/usr/bin/probe", "write", "/etc/landlock-denied"])
        .build();
    let report = rt.run_report(&bundle);
    assert_eq!(report["ok"], true, "{report}");
}

#[test]
fn landlock_denies_a_write_outside_the_allowed_directory() {
    if skip_on_reference("Landlock rules from a Stockade hardening profile") {
        return;
    }
    let rt = runtime!();
    let bundle = landlocked()
        .args(&["/usr/bin/probe", "write", "/etc/landlock-denied"])
        .build();
    let report = rt.run_report(&bundle);
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(errno(&report), i64::from(libc::EACCES), "{report}");
    assert!(!bundle.rootfs.join("etc/landlock-denied").exists());
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}

#[test]
fn landlock_allows_a_write_inside_the_allowed_directory() {
    if skip_on_reference("Landlock rules from a Stockade hardening profile") {
        return;
    }
    let rt = runtime!();
    let bundle = landlocked()
        .args(&["/usr/bin/probe", "write", "/tmp/landlock-allowed"])
        .build();
    let report = rt.run_report(&bundle);
    assert_eq!(report["ok"], true, "{report}");
    assert!(bundle.rootfs.join("tmp/landlock-allowed").exists());
}

#[test]
fn exec_is_in_the_same_landlock_domain() {
    if skip_on_reference("Landlock rules from a Stockade hardening profile") {
        return;
    }
    let rt = runtime!();
    let bundle = landlocked()
        .args(&["/usr/bin/probe", "sleep", "600"])
        .build();
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let denied = c
        .exec(&["/usr/bin/probe", "write", "/etc/landlock-denied-exec"])
        .expect_ok(&rt)
        .report();
    assert_eq!(errno(&denied), i64::from(libc::EACCES), "{denied}");
    let allowed = c
        .exec(&["/usr/bin/probe", "write", "/tmp/landlock-allowed-exec"])
        .expect_ok(&rt)
        .report();
    assert_eq!(allowed["ok"], true, "{allowed}");
    // Landlock requires no_new_privs (landlock_restrict_self(2)).
    let status = c.exec(&["/usr/bin/probe"]).expect_ok(&rt).report();
    assert_eq!(status["status"]["NoNewPrivs"], "1", "{status}");
}
