//! The spec loader: config.json bytes -> a validated spec (`bundle::parse`).
//!
//! Invariants: never panics; a JSON document the parser rejects for its content is
//! rejected naming a field path that exists in the document (containerd writes specs
//! on one line: a column alone names nothing); every other refusal starts with the
//! spec field it is about; a spec that loads re-serialises to a document that loads
//! to the same spec. Admission follows: under every shipped profile, evaluation
//! never panics, and a spec it admits (hardened) is valid and is admitted again
//! by the same profile, so what runs satisfies the profile that let it run.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::Spec;
use stockade::bundle::{self, BundleError};
use stockade::profile::node_config;
use stockade::profile::schema::NsType;
use stockade::profile::{evaluate, CgroupVersion, Decision, HostFacts, NsInodeLookup, Profile};

const SHIPPED: [&str; 4] = ["restricted", "baseline", "default", "unconfined"];

fn profiles() -> &'static [Profile] {
    static P: OnceLock<Vec<Profile>> = OnceLock::new();
    P.get_or_init(|| {
        SHIPPED
            .iter()
            .map(|n| {
                node_config::builtin(n)
                    .expect("shipped")
                    .expect("a shipped profile loads")
            })
            .collect()
    })
}

/// A host with every feature the rules ask about; its own namespaces have inodes
/// 1..=8, which `Ns` hands out for `/proc/1/ns/*` (the host's pid 1).
fn host() -> HostFacts {
    HostFacts {
        landlock_abi: Some(6),
        cgroup: CgroupVersion::V2,
        own_namespaces: NsType::ALL
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, i as u64 + 1))
            .collect::<BTreeMap<_, _>>(),
        tmpfs_idmap: true,
        kernel_release: "6.12.0".into(),
        // A runtime that may set any oomScoreAdj (it holds CAP_SYS_RESOURCE).
        oom_score_adj_floor: None,
    }
}

/// Namespace paths without a host: `/proc/1/ns/<kind>` is the host's namespace,
/// anything else a namespace of its own (an inode from the path).
struct Ns;

impl NsInodeLookup for Ns {
    fn inode(&self, path: &Path) -> std::io::Result<u64> {
        let p = path.to_string_lossy();
        if let Some(kind) = p.strip_prefix("/proc/1/ns/") {
            let i = ["pid", "net", "mnt", "ipc", "uts", "user", "cgroup", "time"]
                .iter()
                .position(|k| *k == kind)
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
            return Ok(i as u64 + 1);
        }
        Ok(1000 + p.bytes().map(u64::from).sum::<u64>())
    }
}

fn admit(spec: &Spec) {
    let host = host();
    for profile in profiles() {
        let decision = evaluate(spec, profile, &host, &Ns)
            .unwrap_or_else(|e| panic!("{}: {}", profile.name, stockade::error_chain(&e)));
        let Decision::Admitted(hardened) = decision else {
            continue;
        };
        bundle::validate(&hardened.spec)
            .unwrap_or_else(|e| panic!("{}: the hardened spec is invalid: {e}", profile.name));
        match evaluate(&hardened.spec, profile, &host, &Ns) {
            Ok(Decision::Admitted(_)) => {}
            Ok(Decision::Refused(r)) => panic!(
                "{}: refuses the spec it hardened: {:?}",
                profile.name, r.violations
            ),
            Err(e) => panic!("{}: {}", profile.name, stockade::error_chain(&e)),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let bundle = Path::new("/fuzz/bundle");
    match bundle::parse(bundle, data) {
        Ok(spec) => {
            let again = serde_json::to_vec(&spec).expect("a loaded spec serialises");
            let reloaded = bundle::parse(bundle, &again).unwrap_or_else(|e| {
                panic!(
                    "a loaded spec must load again: {}",
                    stockade::error_chain(&e)
                )
            });
            assert_eq!(spec, reloaded, "the spec changed on a round trip");
            admit(&spec);
        }
        Err(BundleError::ParseConfig { field, source, .. }) => {
            stockade_fuzz::assert_names_field(data, &field, &source);
        }
        Err(e) => {
            let text = e.to_string();
            let field = text.split([':', ' ', '[', '.']).next().unwrap_or_default();
            assert!(
                ["ociVersion", "root", "process", "mounts", "linux"].contains(&field),
                "a refusal must start with its spec field: {text}"
            );
        }
    }
});
