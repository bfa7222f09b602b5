//! Golden outputs: what a tool prints, checked in under `integration-tests/golden/`, so a
//! change to a message is a reviewed diff. `STOCKADE_UPDATE_GOLDEN=1` rewrites the files
//! from the current output instead of comparing (then review `git diff`).

use std::path::PathBuf;

/// The golden file `name`.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(name)
}

/// `actual` equals the golden file `name` (or replaces it under `STOCKADE_UPDATE_GOLDEN=1`).
pub fn assert_golden(name: &str, actual: &str) {
    let path = path(name);
    if std::env::var_os("STOCKADE_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e} (run with STOCKADE_UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if want != actual {
        panic!(
            "output differs from {} (STOCKADE_UPDATE_GOLDEN=1 rewrites it):\n--- want\n{want}\n--- got\n{actual}",
            path.display()
        );
    }
}
