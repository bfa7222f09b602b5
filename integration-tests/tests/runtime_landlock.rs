//! Landlock (Stockade-specific): rules from the hardening profile, here requested
//! through the `org.stockade.landlock` annotation, confine the container's init and
//! its `exec` processes. runc has no Landlock support, so under a reference run
//! (`STOCKADE_TEST_REFERENCE=1`) these are skipped, loudly.

use serde_json::Value;
use stockade_integration_tests::{
    assert_nothing_left_behind, runtime, skip_on_reference, Bundle, BundleBuilder, Container,
    Runtime,
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

/// The running kernel's Landlock ABI (0 without Landlock).
fn kernel_abi() -> u8 {
    stockade::profile::host::probe_landlock_abi().unwrap_or(0)
}

/// On a kernel older than `needed`, the rules cannot be enforced in full: the
/// container is refused at admission naming the ABI (never started and then broken).
/// Returns true (after checking that) when the caller's scenario cannot run here.
fn refused_below_abi(rt: &Runtime, bundle: BundleBuilder, needed: u8) -> bool {
    if kernel_abi() >= needed {
        return false;
    }
    let bundle = bundle.args(&["/usr/bin/probe"]).build();
    let out = match rt.create(&bundle) {
        Ok(c) => panic!(
            "ABI {needed} rules admitted on an ABI {} kernel: {c:?}",
            kernel_abi()
        ),
        Err(f) => f.out,
    };
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("landlock.owner_abi")
            && out.stderr.contains(&format!("ABI >= {needed}")),
        "{}",
        out.stderr
    );
    assert_nothing_left_behind(rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
    eprintln!(
        "kernel Landlock ABI {}: the ABI {needed} rules were refused at admission",
        kernel_abi()
    );
    true
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

/// The rules are the same for `exec`; the domain is not (each exec process enforces
/// them anew, see the signal scope test below).
#[test]
fn exec_is_confined_by_the_same_landlock_rules() {
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

/// Only TCP port 8080 may be bound and only 9090 connected to; the filesystem is not
/// handled, so the probe runs as usual.
const TCP_RULES: &str = r#"{"tcp_bind":[8080],"tcp_connect":[9090]}"#;

fn probe_report(rt: &Runtime, bundle: BundleBuilder, args: &[&str]) -> Value {
    let mut argv = vec!["/usr/bin/probe"];
    argv.extend_from_slice(args);
    rt.run_report(&bundle.args(&argv).build())
}

/// A connect Landlock lets through meets the container's empty network namespace:
/// refused by the kernel (ECONNREFUSED), or unroutable while loopback is down
/// (ENETUNREACH). Landlock's own refusal is EACCES, checked before routing.
fn assert_connect_reached_the_network(report: &Value) {
    let e = errno(report);
    assert!(
        e == i64::from(libc::ECONNREFUSED) || e == i64::from(libc::ENETUNREACH),
        "an allowed connect must fail only for lack of a listener: {report}"
    );
}

#[test]
fn landlock_allows_binding_only_the_listed_tcp_port() {
    if skip_on_reference("Landlock network rules from a Stockade hardening profile") {
        return;
    }
    let rt = runtime!();
    if refused_below_abi(
        &rt,
        BundleBuilder::new().annotation(LANDLOCK_ANNOTATION, TCP_RULES),
        4,
    ) {
        return;
    }
    let allowed = probe_report(
        &rt,
        BundleBuilder::new().annotation(LANDLOCK_ANNOTATION, TCP_RULES),
        &["tcp-bind", "8080"],
    );
    assert_eq!(allowed["ok"], true, "{allowed}");
    let denied = probe_report(
        &rt,
        BundleBuilder::new().annotation(LANDLOCK_ANNOTATION, TCP_RULES),
        &["tcp-bind", "8081"],
    );
    assert_eq!(denied["ok"], false, "{denied}");
    assert_eq!(errno(&denied), i64::from(libc::EACCES), "{denied}");
}

#[test]
fn landlock_allows_connecting_only_to_the_listed_tcp_port() {
    if skip_on_reference("Landlock network rules from a Stockade hardening profile") {
        return;
    }
    let rt = runtime!();
    if refused_below_abi(
        &rt,
        BundleBuilder::new().annotation(LANDLOCK_ANNOTATION, TCP_RULES),
        4,
    ) {
        return;
    }
    let allowed = probe_report(
        &rt,
        BundleBuilder::new().annotation(LANDLOCK_ANNOTATION, TCP_RULES),
        &["tcp-connect", "9090"],
    );
    assert_connect_reached_the_network(&allowed);
    let denied = probe_report(
        &rt,
        BundleBuilder::new().annotation(LANDLOCK_ANNOTATION, TCP_RULES),
        &["tcp-connect", "9091"],
    );
    assert_eq!(errno(&denied), i64::from(libc::EACCES), "{denied}");
}

/// Control, valid on any runtime: without network rules both ports are free.
#[test]
fn without_network_rules_any_port_binds_and_connects() {
    let rt = runtime!();
    let bind = probe_report(&rt, BundleBuilder::new(), &["tcp-bind", "8081"]);
    assert_eq!(bind["ok"], true, "{bind}");
    let connect = probe_report(&rt, BundleBuilder::new(), &["tcp-connect", "9091"]);
    assert_connect_reached_the_network(&connect);
}

/// An abstract unix socket held by a process on the host, outside every Landlock
/// domain, but inside the container's network namespace (abstract names are per
/// network namespace). The probe enters the namespace itself and holds the socket
/// until its stdin closes, which dropping this does.
struct HostAbstractListener {
    child: std::process::Child,
}

impl HostAbstractListener {
    fn start(init_pid: i64, name: &str) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stockade-probe"))
            .args(["abstract-listen", name, &format!("/proc/{init_pid}/ns/net")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn the host-side probe");
        // The report line is printed once the socket listens (or failed to).
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listener's report");
        let listener = Self { child };
        let report: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("listener report is not JSON ({e}): {line:?}"));
        assert_eq!(report["ok"], true, "host-side listener: {report}");
        listener
    }
}

impl Drop for HostAbstractListener {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn init_pid(c: &Container<'_>) -> i64 {
    let state = c.state();
    state["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("no pid in state {state}"))
}

fn sleeper(annotation: Option<&str>) -> Bundle {
    let b = BundleBuilder::new().args(&["/usr/bin/probe", "sleep", "600"]);
    match annotation {
        Some(rules) => b.annotation(LANDLOCK_ANNOTATION, rules),
        None => b,
    }
    .build()
}

/// Control, valid on any runtime: without a scope, a container process reaches an
/// abstract socket the host opened in the container's network namespace.
#[test]
fn without_scopes_an_abstract_socket_from_outside_is_reachable() {
    let rt = runtime!();
    let bundle = sleeper(None);
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let _listener = HostAbstractListener::start(init_pid(&c), "stockade-outside");
    let report = c
        .exec(&["/usr/bin/probe", "abstract-connect", "stockade-outside"])
        .expect_ok(&rt)
        .report();
    assert_eq!(report["ok"], true, "{report}");
}

#[test]
fn landlock_scope_denies_abstract_sockets_created_outside_the_domain() {
    if skip_on_reference("Landlock scopes from a Stockade hardening profile") {
        return;
    }
    let rt = runtime!();
    let scoped =
        BundleBuilder::new().annotation(LANDLOCK_ANNOTATION, r#"{"scope_abstract_unix":true}"#);
    if refused_below_abi(&rt, scoped, 6) {
        return;
    }
    let bundle = sleeper(Some(r#"{"scope_abstract_unix":true}"#));
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let _listener = HostAbstractListener::start(init_pid(&c), "stockade-outside");
    let denied = c
        .exec(&["/usr/bin/probe", "abstract-connect", "stockade-outside"])
        .expect_ok(&rt)
        .report();
    assert_eq!(errno(&denied), i64::from(libc::EPERM), "{denied}");
    // Within one domain abstract sockets still work.
    let own = c
        .exec(&["/usr/bin/probe", "abstract-self", "stockade-inside"])
        .expect_ok(&rt)
        .report();
    assert_eq!(own["ok"], true, "{own}");
}

/// Control, valid on any runtime: an `exec` process may signal the init.
#[test]
fn without_scopes_exec_may_signal_the_init() {
    let rt = runtime!();
    let bundle = sleeper(None);
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    // Signal 0: the permission check only, nothing is delivered (kill(2)).
    let report = c
        .exec(&["/usr/bin/probe", "signal", "1", "0"])
        .expect_ok(&rt)
        .report();
    assert_eq!(report["ok"], true, "{report}");
}

/// Landlock cannot join an existing domain, so each `exec` process enforces the
/// rules into a domain of its own, a sibling of the init's. With the signal scope
/// the init is therefore outside the exec process's domain.
#[test]
fn landlock_scope_denies_signals_outside_the_domain_including_exec_to_init() {
    if skip_on_reference("Landlock scopes from a Stockade hardening profile") {
        return;
    }
    let rt = runtime!();
    let scoped = BundleBuilder::new().annotation(LANDLOCK_ANNOTATION, r#"{"scope_signal":true}"#);
    if refused_below_abi(&rt, scoped, 6) {
        return;
    }
    let bundle = sleeper(Some(r#"{"scope_signal":true}"#));
    let c = rt.create_started(&bundle);
    c.wait_status("running");
    let denied = c
        .exec(&["/usr/bin/probe", "signal", "1", "0"])
        .expect_ok(&rt)
        .report();
    assert_eq!(denied["ok"], false, "{denied}");
    assert_eq!(errno(&denied), i64::from(libc::EPERM), "{denied}");
    let own = c
        .exec(&["/usr/bin/probe", "signal", "self", "0"])
        .expect_ok(&rt)
        .report();
    assert_eq!(own["ok"], true, "{own}");
}

/// The owner's rule set restricts only the rights some rule of it mentions (Landlock
/// "handles" exactly those, README "Landlock rules from the container owner"). The
/// README's example mentions `write_file` and `make_reg` but not `make_dir`: writing a
/// file outside /tmp is denied, creating a directory there is not. Listing every right
/// in `handled_fs` denies them all outside the granted paths.
#[test]
fn owner_rules_restrict_only_the_rights_they_mention() {
    if skip_on_reference("Landlock rules from a Stockade hardening profile") {
        return;
    }
    let rt = runtime!();
    let script = "mkdir /etc/owner-dir; echo mkdir=$?; echo x > /etc/owner-file; echo write=$?";
    let bundle = landlocked().args(&["/bin/sh", "-c", script]).build();
    let out = rt.run(&bundle);
    assert!(out.stdout.contains("mkdir=0"), "{out:?}");
    assert!(!out.stdout.contains("write=0"), "{out:?}");
    assert!(bundle.rootfs.join("etc/owner-dir").is_dir());
    assert!(!bundle.rootfs.join("etc/owner-file").exists());

    const EVERY_RIGHT: &str = r#"{"handled_fs":["execute","read_file","read_dir","write_file","make_reg","make_dir","remove_file","remove_dir","make_sym","make_fifo","make_sock","make_char","make_block"],"fs_rules":[{"path":"/tmp","access":["read_file","write_file","make_reg","read_dir"]},{"path":"/","access":["read_file","read_dir","execute"]}]}"#;
    let bundle = BundleBuilder::new()
        .readonly_root(false)
        .annotation(LANDLOCK_ANNOTATION, EVERY_RIGHT)
        .args(&["/bin/sh", "-c", script])
        .build();
    let out = rt.run(&bundle);
    assert!(out.stdout.contains("mkdir="), "{out:?}");
    assert!(!out.stdout.contains("mkdir=0"), "{out:?}");
    assert!(!out.stdout.contains("write=0"), "{out:?}");
    assert!(!bundle.rootfs.join("etc/owner-dir").exists());
    assert!(!bundle.rootfs.join("etc/owner-file").exists());
}

/// A copy of the shipped profiles plus `landlock-newest`: the `default` profile whose
/// `[landlock]` asks for rights of every ABI up to 6 (Truncate: 3, TCP ports: 4,
/// IoctlDev: 5, scopes: 6) under `compat`, made the node default.
fn newest_landlock_profile(rt: &Runtime, compat: &str) -> tempfile::TempDir {
    let dir = stockade_integration_tests::runtime::profiles_copy();
    let text = std::fs::read_to_string(dir.path().join("default.toml")).expect("default.toml");
    let section = "[landlock]\n";
    let at = text.find(section).expect("default.toml has [landlock]");
    let end = text[at + section.len()..]
        .find("\n[")
        .map_or(text.len(), |i| at + section.len() + i + 1);
    let landlock = format!(
        "{section}reason = \"every Landlock right there is\"\nenabled = true\nmin_abi = 6\n\
         compat = \"{compat}\"\nauto_rules = true\ntcp_bind = [8080]\ntcp_connect = [443]\n\
         scope_abstract_unix = true\nscope_signal = true\n\n"
    );
    let text = format!("{}{landlock}{}", &text[..at], &text[end..]);
    let text = text.replacen("name = \"default\"", "name = \"landlock-newest\"", 1);
    std::fs::write(dir.path().join("landlock-newest.toml"), text).unwrap();
    rt.set_node_config(&format!(
        "schema = 1\nprofiles_dir = {:?}\ndefault_profile = \"landlock-newest\"\n",
        dir.path()
    ));
    dir
}

/// The rights of ABI 3..=6 this kernel lacks, as the admission note names them.
fn rights_missing_here() -> Vec<&'static str> {
    let abi = kernel_abi();
    let mut want = Vec::new();
    if abi < 3 {
        want.push("Truncate");
    }
    if abi < 4 {
        want.extend(["TCP bind ports", "TCP connect ports"]);
    }
    if abi < 5 {
        want.push("IoctlDev");
    }
    if abi < 6 {
        want.extend(["abstract unix socket scope", "signal scope"]);
    }
    want
}

/// best_effort on an older kernel: admitted, and the admission note (in the audit
/// record) names every right not enforced here, filesystem, network and scopes.
#[test]
fn best_effort_on_an_older_abi_names_every_right_not_enforced() {
    if skip_on_reference("Landlock is Stockade's") {
        return;
    }
    let rt = runtime!();
    let _profiles = newest_landlock_profile(&rt, "best_effort");
    let bundle = BundleBuilder::new().args(&["/usr/bin/probe"]).build();
    let c = rt
        .create(&bundle)
        .unwrap_or_else(|f| panic!("create: {:?}\nlog: {}", f.out, rt.log_text()));
    let log = rt.log_text();
    let audit: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["audit"]["container_id"] == c.id.as_str())
        .map(|l| l["audit"].clone())
        .unwrap_or_else(|| panic!("no audit record for {}: {log}", c.id));
    assert_eq!(audit["profile"], "landlock-newest", "{audit}");
    let note = audit["injected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["rule"] == "landlock.abi")
        .map(|i| i["change"].as_str().unwrap().to_owned());
    let missing = rights_missing_here();
    match note {
        None => assert!(
            missing.is_empty(),
            "kernel ABI {}: no note, but {missing:?} cannot be enforced: {audit}",
            kernel_abi()
        ),
        Some(note) => {
            assert!(note.contains("not enforced"), "{note}");
            for right in &missing {
                assert!(note.contains(right), "{right} not named in: {note}");
            }
            eprintln!("kernel Landlock ABI {}: {note}", kernel_abi());
        }
    }
    let out = c.delete_force();
    assert!(out.success(), "delete --force: {out:?}");
}

/// compat hard: a kernel below the ABI the profile requires refuses the container at
/// admission, naming the ABI, and nothing is made.
#[test]
fn hard_compat_on_an_older_abi_is_refused_at_admission() {
    if skip_on_reference("Landlock is Stockade's") {
        return;
    }
    let rt = runtime!();
    let _profiles = newest_landlock_profile(&rt, "hard");
    let bundle = BundleBuilder::new().args(&["/usr/bin/probe"]).build();
    if kernel_abi() >= 6 {
        let c = rt
            .create(&bundle)
            .unwrap_or_else(|f| panic!("create: {:?}\nlog: {}", f.out, rt.log_text()));
        assert!(c.delete_force().success());
        eprintln!("kernel Landlock ABI {}: every right enforced", kernel_abi());
        return;
    }
    let out = match rt.create(&bundle) {
        Ok(c) => panic!("admitted on ABI {}: {c:?}", kernel_abi()),
        Err(f) => f.out,
    };
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("landlock.abi") && out.stderr.contains("ABI >= 6"),
        "{}",
        out.stderr
    );
    assert!(
        !rt.log_text().contains("container admitted by profile"),
        "refused before anything was admitted"
    );
    assert_nothing_left_behind(&rt, &bundle.id, &bundle.cgroup_relative(), &bundle.rootfs);
}
