//! Test support for Stockade's end-to-end tests: a busybox + probe rootfs, OCI
//! bundles built from a sane default spec, and a driver for a runc-compatible
//! runtime binary (Stockade, or runc as the reference).
//!
//! Select the runtime with `STOCKADE_TEST_RUNTIME=/path/to/binary` (default: the
//! workspace's `target/debug/stockade`); set `STOCKADE_TEST_REFERENCE=1` when that
//! binary is a reference runtime, which skips Stockade-specific scenarios loudly.

pub mod bounded;
pub mod bundle;
pub mod console;
pub mod containerd;
pub mod golden;
pub mod image;
pub mod installer;
pub mod nss;
pub mod profiles;
pub mod rootfs;
pub mod runtime;

pub use bundle::{Bundle, BundleBuilder};
pub use runtime::{
    assert_nothing_left_behind, assert_refused, skip_on_reference, torn_journal_writes, Container,
    Runtime,
};

/// A [`Runtime`] for the runtime under test, with the probe binary cargo built for
/// this crate registered first. Use it from `tests/*.rs`:
/// `let rt = stockade_integration_tests::runtime!();`, or
/// `runtime!(profile = "default")` for a node whose default profile is a shipped one.
#[macro_export]
macro_rules! runtime {
    () => {{
        $crate::rootfs::set_probe_binary(env!("CARGO_BIN_EXE_stockade-probe"));
        $crate::Runtime::new()
    }};
    (profile = $profile:expr) => {{
        $crate::rootfs::set_probe_binary(env!("CARGO_BIN_EXE_stockade-probe"));
        $crate::Runtime::with_profile($profile)
    }};
}
