//! The node config's `[[handler]]` mapping reaches containers started through our
//! shim: the handler's options file names its handler (`handler = ...`), the shim
//! passes it to every runtime invocation, and the README's node config, used verbatim,
//! gives that handler's containers its mapped profile. Root only.

use std::{fs, path::Path, process::Output};
use stockade_integration_tests::installer::repo_root;

use stockade_integration_tests::containerd::{
    cgroup_parent, remove_test_cgroups, runtime_binary, skip_unless_stockade, test_cgroups,
    Containerd, IMAGE, RUNTIME,
};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The README's node config, verbatim but for the profiles dir, which a node has at
/// `/etc/stockade/profiles` and the test takes from the repository.
fn readme_node_config() -> String {
    let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme
        .find("# /etc/stockade/config.toml\n")
        .expect("README shows the node config");
    let block = &readme[start..];
    let block = &block[..block.find("```").expect("end of the toml block")];
    assert!(block.contains("[[handler]]"), "{block}");
    block.replace(
        "\"/etc/stockade/profiles\"",
        &format!("\"{}\"", repo_root().join("profiles").display()),
    )
}

fn run(c: &Containerd, options: &Path, id: &str) -> Output {
    c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--runtime-config-path",
        options.to_str().unwrap(),
        "--cgroup",
        &format!("{}/{id}", cgroup_parent()),
        IMAGE,
        id,
        "true",
    ])
}

#[test]
fn readme_handler_mapping_applies_through_the_shim() {
    if !is_root() || skip_unless_stockade("the handler mapping is Stockade's") {
        return;
    }
    let c = Containerd::start().expect("containerd");
    let node_config = c.dir().join("readme-node-config.toml");
    fs::write(&node_config, readme_node_config()).unwrap();
    let options = |name: &str, handler: Option<&str>| {
        let path = c.dir().join(name);
        let mut text = format!(
            "binary_name = \"{}\"\nroot = \"{}\"\nconfig = \"{}\"\n",
            runtime_binary(),
            c.runtime_root().display(),
            node_config.display()
        );
        if let Some(h) = handler {
            text.push_str(&format!("handler = \"{h}\"\n"));
        }
        fs::write(&path, text).unwrap();
        path
    };

    // The mapped handler: `restricted` applies, which refuses the image's root user.
    let id = format!("handler-restricted-{}", std::process::id());
    let out = run(
        &c,
        &options("restricted.toml", Some("stockade-restricted")),
        &id,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "ran under the mapped handler: {err}");
    assert!(
        err.contains("container refused by profile \"restricted\""),
        "ctr stderr: {err}"
    );
    let _ = c.ctr(&["container", "rm", &id]);
    // The shim puts one line per decision into containerd's own log.
    let summary = format!("stockade: container {id} refused by profile \\\"restricted\\\" v");
    assert!(
        c.log().contains(&summary) && c.log().contains("violations; audit id "),
        "no decision line in containerd's log: {}",
        c.log()
    );

    // A handler the config does not map, and no handler at all: `default_profile`,
    // under which the same image runs (as root in a user namespace).
    for (name, handler) in [("other.toml", Some("stockade-other")), ("none.toml", None)] {
        let id = format!(
            "handler-{}-{}",
            name.trim_end_matches(".toml"),
            std::process::id()
        );
        let out = run(&c, &options(name, handler), &id);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = format!("stockade: container {id} hardened by profile \\\"default\\\" v");
        assert!(c.log().contains(&summary), "{name}: {}", c.log());
    }
    c.assert_clean();
    for id in ["handler-restricted", "handler-other", "handler-none"] {
        let id = format!("{id}-{}", std::process::id());
        let left = test_cgroups(&id);
        remove_test_cgroups(&id);
        assert!(left.is_empty(), "cgroups left: {left:?}");
    }
}
