//! The spec loader: config.json bytes -> a validated spec (`bundle::parse`).
//!
//! Invariants: never panics; a JSON document the parser rejects for its content is
//! rejected naming a field path that exists in the document (containerd writes specs
//! on one line: a column alone names nothing); every other refusal starts with the
//! spec field it is about; a spec that loads re-serialises to a document that loads
//! to the same spec.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use stockade::bundle::{self, BundleError};

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
