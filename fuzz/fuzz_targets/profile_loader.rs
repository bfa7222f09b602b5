//! The profile loader: profile TOML (and the seccomp data TOML it names) -> a
//! validated profile (`profile::load::parse_profile`, `parse_seccomp_filter`).
//!
//! Invariants: never panics; a parse error points into the text (span) and a
//! semantic error names its key; a profile that loads re-serialises to TOML that
//! loads to the same profile, and `lint`'s list of problems agrees that it is valid;
//! the same round trip for seccomp data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockade::profile::load::{self, LoadError};

fn check_error(text: &str, e: &LoadError) {
    match e {
        LoadError::Parse { source, .. } => {
            let span = source.span().expect("a TOML error points into the text");
            assert!(span.start <= text.len(), "span {span:?} outside the text");
        }
        LoadError::Invalid { key, .. } => {
            assert!(!key.is_empty(), "an invalid key without its name: {e}");
        }
        LoadError::Read { .. } | LoadError::ReadFilter { .. } => {
            panic!("parsing text reads no file: {e}")
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match load::parse_profile(text, "fuzz.toml") {
        Ok(profile) => {
            assert!(load::problems(&profile).is_empty(), "loaded with problems");
            let again = toml::to_string(&profile).expect("a loaded profile serialises");
            let reloaded = load::parse_profile(&again, "again.toml").unwrap_or_else(|e| {
                panic!(
                    "a loaded profile must load again: {}\n{again}",
                    stockade::error_chain(&e)
                )
            });
            assert_eq!(profile, reloaded, "the profile changed on a round trip");
        }
        Err(e) => check_error(text, &e),
    }
    match load::parse_seccomp_filter(text, "fuzz-seccomp.toml") {
        Ok(filter) => {
            let again = toml::to_string(&filter).expect("seccomp data serialises");
            let reloaded = load::parse_seccomp_filter(&again, "again.toml").unwrap_or_else(|e| {
                panic!(
                    "loaded seccomp data must load again: {}\n{again}",
                    stockade::error_chain(&e)
                )
            });
            assert_eq!(filter, reloaded, "the seccomp data changed on a round trip");
        }
        Err(e) => check_error(text, &e),
    }
});
