//! The parse cache (`<root>/.stockade/cache`, runtime/src/file_cache.rs) never
//! changes what a container gets (Stockade only): a profile or seccomp data file
//! edited between two creates is enforced as edited, and entries that are damaged,
//! truncated or another profile's give the container the full filter, observed from
//! inside; the damaged entries are replaced by good ones.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use stockade_integration_tests::profiles::{cap_mask, reports, status_hex, status_str};
use stockade_integration_tests::{
    assert_refused, runtime, skip_on_reference, BundleBuilder, Runtime,
};

const EPERM: i64 = libc::EPERM as i64;

/// A copy of the shipped profiles, made the node's profiles dir with `default` as
/// the node default.
fn profiles_copy(rt: &Runtime) -> tempfile::TempDir {
    let dir = stockade_integration_tests::runtime::profiles_copy();
    rt.set_node_config(&format!(
        "schema = 1\nprofiles_dir = {:?}\ndefault_profile = \"default\"\n",
        dir.path()
    ));
    dir
}

/// Replace `from` by `to` in `file` (which must contain it).
fn edit(file: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(file).expect("read profile copy");
    assert!(text.contains(from), "{} lacks {from:?}", file.display());
    fs::write(file, text.replacen(from, to, 1)).expect("write profile copy");
}

/// The probe's reports of one `run` of `script`.
fn run(rt: &Runtime, script: &str) -> Vec<Value> {
    let bundle = BundleBuilder::new().shell(script).build();
    let out = rt.run(&bundle).expect_ok(rt);
    reports(&out.stdout)
}

fn syscall<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no report for {name} in {lines:#?}"))
}

fn status(lines: &[Value]) -> &Value {
    lines
        .iter()
        .find(|r| r.get("status").is_some())
        .unwrap_or_else(|| panic!("no status report in {lines:#?}"))
}

fn cache_entries(rt: &Runtime) -> Vec<PathBuf> {
    let dir = rt.state_root().join(".stockade/cache");
    let mut out: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    out.sort();
    out
}

/// A runtime whose state root exists, as a node's does once it has run a container:
/// the cache is written only into an existing state root.
fn runtime_on_a_used_node() -> Runtime {
    let rt = runtime!();
    fs::create_dir_all(rt.state_root()).expect("state root");
    rt
}

/// On a fresh node (no state root yet) a refused create leaves nothing behind: not
/// even a state root for the cache.
#[test]
fn a_refused_create_on_a_fresh_node_leaves_no_state_root() {
    if skip_on_reference("the parse cache is Stockade's") {
        return;
    }
    let rt = runtime!(profile = "default");
    assert!(!rt.state_root().exists());
    let bundle = BundleBuilder::new()
        .mount(serde_json::json!({
            "destination": "/host", "type": "bind",
            "source": "/etc", "options": ["rbind", "ro"],
        }))
        .build();
    let Err(failed) = rt.create(&bundle) else {
        panic!("default admitted a bind of /etc");
    };
    assert_refused(&rt, &failed.out, &["/etc"]);
    assert!(
        !rt.state_root().exists(),
        "a refused create made {}",
        rt.state_root().display()
    );
}

#[test]
fn an_edited_profile_or_filter_is_enforced_as_edited() {
    if skip_on_reference("the parse cache is Stockade's") {
        return;
    }
    let rt = runtime_on_a_used_node();
    let profiles = profiles_copy(&rt);
    let script = "probe; probe syscall uname";
    let lines = run(&rt, script);
    assert!(
        syscall(&lines, "uname")["ret"].as_i64() >= Some(0),
        "{lines:#?}"
    );
    let kill = cap_mask(&["CAP_KILL"]);
    assert_eq!(status_hex(status(&lines), "CapBnd") & kill, kill);
    assert!(!cache_entries(&rt).is_empty(), "nothing was cached");

    // The seccomp data no longer allows uname: the next container's filter denies it.
    edit(
        &profiles.path().join("seccomp/default.toml"),
        "{ name = \"uname\", why = \"system name (of the container's uts namespace)\" },",
        "",
    );
    let lines = run(&rt, script);
    assert_eq!(syscall(&lines, "uname")["errno"], EPERM, "{lines:#?}");
    assert_eq!(status_hex(status(&lines), "CapBnd") & kill, kill);

    // The profile no longer allows CAP_KILL: the next container lacks it.
    edit(&profiles.path().join("default.toml"), "\"CAP_KILL\",", "");
    let lines = run(&rt, script);
    assert_eq!(status_hex(status(&lines), "CapBnd") & kill, 0, "{lines:#?}");
    assert_eq!(syscall(&lines, "uname")["errno"], EPERM);
}

#[test]
fn damaged_or_foreign_cache_entries_weaken_nothing() {
    if skip_on_reference("the parse cache is Stockade's") {
        return;
    }
    let rt = runtime_on_a_used_node();
    let _profiles = profiles_copy(&rt);
    let script = "probe; probe syscall keyctl; probe syscall uname";
    let check = |lines: &[Value]| {
        assert_eq!(status_str(status(lines), "Seccomp"), "2", "{lines:#?}");
        assert_eq!(syscall(lines, "keyctl")["errno"], EPERM, "{lines:#?}");
        assert!(syscall(lines, "uname")["ret"].as_i64() >= Some(0));
    };
    // `unconfined` (no seccomp at all) cached first, then `default`.
    rt.set_node_config(&fs::read_to_string(rt.node_config_path()).unwrap().replace(
        "default_profile = \"default\"",
        "default_profile = \"unconfined\"",
    ));
    let unconfined = run(&rt, script);
    assert_eq!(status_str(status(&unconfined), "Seccomp"), "0");
    let unconfined_entries = cache_entries(&rt);
    assert_eq!(unconfined_entries.len(), 1, "{unconfined_entries:?}");
    rt.set_node_config(&fs::read_to_string(rt.node_config_path()).unwrap().replace(
        "default_profile = \"unconfined\"",
        "default_profile = \"default\"",
    ));
    check(&run(&rt, script));
    let default_entries: Vec<PathBuf> = cache_entries(&rt)
        .into_iter()
        .filter(|e| !unconfined_entries.contains(e))
        .collect();
    assert_eq!(default_entries.len(), 2, "profile and seccomp data");
    let good: Vec<Vec<u8>> = default_entries
        .iter()
        .map(|e| fs::read(e).unwrap())
        .collect();

    // Foreign: `unconfined`'s entry (intact, of another key) under default's names.
    let foreign = fs::read(&unconfined_entries[0]).unwrap();
    for e in &default_entries {
        fs::write(e, &foreign).unwrap();
    }
    check(&run(&rt, script));
    // Damaged: one bit flipped in the middle; truncated; empty.
    fn flipped(b: &[u8]) -> Vec<u8> {
        let mut b = b.to_vec();
        let mid = b.len() / 2;
        b[mid] ^= 1;
        b
    }
    fn truncated(b: &[u8]) -> Vec<u8> {
        b[..b.len() - 7].to_vec()
    }
    fn emptied(_: &[u8]) -> Vec<u8> {
        Vec::new()
    }
    for damage in [flipped, truncated, emptied] {
        for (e, g) in default_entries.iter().zip(&good) {
            fs::write(e, damage(g)).unwrap();
        }
        check(&run(&rt, script));
    }
    // Each run replaced what it could not use by a good entry.
    for (e, g) in default_entries.iter().zip(&good) {
        assert_eq!(&fs::read(e).unwrap(), g, "{} not rebuilt", e.display());
    }
}
