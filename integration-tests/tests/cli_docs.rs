//! `stockade --version` / `-v` (runc's shape, with the commit), each verb's help, shell
//! completions and man pages generated from the CLI definition, tried the way a user uses them.

use std::process::{Command, Stdio};

use stockade_integration_tests::runtime::runtime_binary;

fn stockade(args: &[&str]) -> std::process::Output {
    Command::new(runtime_binary())
        .args(args)
        .output()
        .expect("run stockade")
}

#[test]
fn version_prints_version_commit_and_spec_like_runc() {
    for flag in ["--version", "-v"] {
        let out = stockade(&[flag]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!("stockade version {}", env!("CARGO_PKG_VERSION"))
        );
        let commit = lines[1].strip_prefix("commit: ").expect("commit line");
        let head = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        match head {
            // Built from this checkout: the commit is HEAD's (HEAD cannot move
            // between the build and the test in one `cargo test`).
            Some(h) => assert_eq!(commit, h, "{text}"),
            None => assert!(commit == "unknown" || commit.len() == 12, "{text}"),
        }
        // The spec version is the one `features` advertises as its maximum.
        let features: serde_json::Value =
            serde_json::from_slice(&stockade(&["features"]).stdout).unwrap();
        assert_eq!(
            lines[2],
            format!("spec: {}", features["ociVersionMax"].as_str().unwrap())
        );
        assert!(text.contains("features: hardening profiles"), "{text}");
    }
}

#[test]
fn bash_completion_completes_verbs_and_profile_subcommands() {
    let out = stockade(&["completion", "bash"]);
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("stockade.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    // As bash calls a completion function: COMP_WORDS/COMP_CWORD set, and the
    // command, the word being completed and the one before it as arguments.
    let complete = |words: &str, cword: usize| {
        let w: Vec<&str> = words.split(' ').collect();
        let cur = w[cword].trim_matches('\'');
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; _stockade stockade '{cur}' '{}'; echo \"${{COMPREPLY[@]}}\"",
                script.display(),
                w[cword - 1]
            ))
            .output()
            .expect("run bash");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(complete("stockade cr", 1), "create");
    assert_eq!(complete("stockade doc", 1), "doctor");
    let profile = complete("stockade profile ''", 2);
    for verb in ["check", "lint", "explain"] {
        assert!(profile.split(' ').any(|w| w == verb), "{profile}");
    }
    // A verb's arguments are built only when it is invoked (`defer`): completion
    // still offers each verb's own flags and the global ones.
    for (words, cword, flags) in [
        (
            "stockade create --",
            2,
            &[
                "--bundle",
                "--console-socket",
                "--no-pivot",
                "--root",
                "--default-profile",
            ][..],
        ),
        ("stockade kill --", 2, &["--all", "--log-format"][..]),
        ("stockade profile check --", 3, &["--sarif", "--root"][..]),
    ] {
        let offered = complete(words, cword);
        for flag in flags {
            assert!(
                offered.split(' ').any(|w| w == *flag),
                "{words}: {flag} not in {offered}"
            );
        }
    }
}

/// Each verb's help shows the verb's own about text and help texts (not those of
/// the liboci-cli struct its arguments come from) and the global flags, whichever
/// way help is asked for.
#[test]
fn verb_help_shows_our_texts_and_the_global_flags() {
    const KILL: &str = "Send a signal to the container's init process (or all its processes)";
    for args in [
        &["kill", "--help"][..],
        &["help", "kill"][..],
        &["kill", "-h"][..],
    ] {
        let out = stockade(args);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.lines().next(), Some(KILL), "{args:?}: {text}");
        assert!(text.contains("--root <ROOT>"), "{args:?}: {text}");
    }
    let out = stockade(&["create", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Do not use pivot root to jail the process inside the rootfs"),
        "{text}"
    );
    let out = stockade(&["list", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Output format: table or json"), "{text}");
}

#[test]
fn man_pages_cover_every_verb() {
    let dir = tempfile::tempdir().unwrap();
    let out = stockade(&["man", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (page, about) in [
        ("stockade.8", "A hardened, runc"),
        ("stockade-create.8", "Create a container from a bundle"),
        (
            "stockade-exec.8",
            "Run a new process inside a running container",
        ),
        ("stockade-doctor.8", "Check this node"),
        ("stockade-kill.8", "Send a signal to the container"),
        ("stockade-update.8", "Change the cgroup resources"),
        ("stockade-profile-lint.8", "Lint a profile"),
    ] {
        let text = std::fs::read_to_string(dir.path().join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
        assert!(text.contains(about), "{page} lacks {about:?}");
    }
    assert!(!dir.path().join("stockade-help.8").exists());
}

#[test]
fn completion_into_a_closed_pipe_is_quiet() {
    let mut child = Command::new(runtime_binary())
        .args(["completion", "zsh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}
