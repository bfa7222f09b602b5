//! Local OCI images for containerd tests, packed as OCI image archives and imported
//! with `ctr images import` (no registry involved): the runtime tests' rootfs
//! (busybox and our probe at /usr/bin/probe, see [`crate::rootfs`]); a pause image
//! of one static `/pause` (`integration-tests/pause/pause.c`) without `Env`, as the
//! upstream one; and a workload image without `/tmp`, `/run` or `PATH`.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

/// Applets the containerd tests use beyond the runtime tests' rootfs.
const EXTRA_APPLETS: &[&str] = &["tr", "stty", "touch"];

fn other(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// The runtime tests' rootfs (busybox, applets, probe and its libraries) copied to
/// `dir`, plus the applets only the containerd tests use.
pub fn probe_rootfs(dir: &Path) -> io::Result<()> {
    crate::rootfs::copy_to(dir)?;
    // Mount points of the profiles' writable tmpfs: containerd's overlay rootfs is
    // not idmapped, so the container's root cannot create them in `/` (owned by the
    // unmapped host root) the way it can in the runtime tests' idmapped rootfs.
    for d in ["run", "var/tmp"] {
        fs::create_dir_all(dir.join(d))?;
    }
    for applet in EXTRA_APPLETS {
        let link = dir.join("bin").join(applet);
        if fs::symlink_metadata(&link).is_err() {
            symlink("busybox", link)?;
        }
    }
    Ok(())
}

fn sha256_file(path: &Path) -> io::Result<String> {
    let out = Command::new("sha256sum").arg(path).output()?;
    if !out.status.success() {
        return Err(other(format!("sha256sum {} failed", path.display())));
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| other("sha256sum printed nothing".into()))
}

/// Moves `file` into `blobs/sha256/<digest>` of `layout`; returns (digest, size).
fn add_blob(layout: &Path, file: &Path) -> io::Result<(String, u64)> {
    let digest = sha256_file(file)?;
    let size = fs::metadata(file)?.len();
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;
    fs::rename(file, blobs.join(&digest))?;
    Ok((format!("sha256:{digest}"), size))
}

/// Packs `rootfs` as a single-layer OCI image named `name` (e.g.
/// `docker.io/library/busybox:test`) with entrypoint `cmd` and `PATH=/bin:/usr/bin`;
/// writes the archive to `out`.
pub fn oci_archive(rootfs: &Path, name: &str, cmd: &[&str], out: &Path) -> io::Result<()> {
    let config = serde_json::json!({
        "Cmd": cmd, "Env": ["PATH=/bin:/usr/bin"], "WorkingDir": "/",
    });
    oci_archive_with_config(rootfs, name, config, out)
}

/// [`oci_archive`] with the image config `config` (`Cmd`, `Entrypoint`, `Env`, ...)
/// as given.
pub fn oci_archive_with_config(
    rootfs: &Path,
    name: &str,
    config: serde_json::Value,
    out: &Path,
) -> io::Result<()> {
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    fs::create_dir_all(&layout)?;
    let layer = work.path().join("layer.tar");
    let st = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg(".")
        .status()?;
    if !st.success() {
        return Err(other("tar rootfs failed".into()));
    }
    let (layer_digest, layer_size) = add_blob(&layout, &layer)?;
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    });
    let config_file = work.path().join("config.json");
    fs::write(&config_file, serde_json::to_vec(&config)?)?;
    let (config_digest, config_size) = add_blob(&layout, &config_file)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest, "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest, "size": layer_size,
        }],
    });
    let manifest_file = work.path().join("manifest.json");
    fs::write(&manifest_file, serde_json::to_vec(&manifest)?)?;
    let (manifest_digest, manifest_size) = add_blob(&layout, &manifest_file)?;
    let tag = name.rsplit_once(':').map_or("latest", |(_, t)| t);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "platform": { "architecture": "amd64", "os": "linux" },
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    });
    fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    fs::File::create(layout.join("oci-layout"))?.write_all(br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let st = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()?;
    if !st.success() {
        return Err(other("tar layout failed".into()));
    }
    Ok(())
}

/// The source of the test pause program (`integration-tests/pause/pause.c`).
pub fn pause_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pause/pause.c")
}

/// A rootfs holding only `/pause`, statically linked (like the upstream pause image):
/// no shell, no libraries, no `/proc`, `/dev`, `/tmp` mount points.
pub fn pause_rootfs(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let out = Command::new("gcc")
        .args(["-static", "-Os", "-Wall", "-o"])
        .arg(dir.join("pause"))
        .arg(pause_source())
        .output()?;
    if !out.status.success() {
        return Err(other(format!(
            "gcc -static pause.c failed (needs gcc and libc6-dev): {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// The probe rootfs as a distroless-style workload: no `/tmp`, `/run` or `/var/tmp`
/// (the runtime must create the mount points it adds).
pub fn workload_rootfs(dir: &Path) -> io::Result<()> {
    probe_rootfs(dir)?;
    for d in ["tmp", "run", "var/tmp"] {
        let p = dir.join(d);
        if p.exists() {
            fs::remove_dir_all(p)?;
        }
    }
    Ok(())
}

/// Packs a [`workload_rootfs`] (possibly changed since) as the workload image
/// `name`: `Cmd` `/bin/sh`, no `Env`.
pub fn workload_archive(rootfs: &Path, name: &str, out: &Path) -> io::Result<()> {
    let config = serde_json::json!({ "Cmd": ["/bin/sh"], "WorkingDir": "/" });
    oci_archive_with_config(rootfs, name, config, out)
}

/// Image names and archives built by [`build_test_images`].
pub struct TestImages {
    /// busybox + probe, `PATH` set: the `ctr` tests' image.
    pub image: PathBuf,
    /// One static `/pause`, entrypoint `/pause`, no `Env`.
    pub pause: PathBuf,
    /// busybox + probe without `/tmp`, `/run`, `/var/tmp` and without `Env` (no PATH).
    pub workload: PathBuf,
}

/// Builds the probe test image, the pause image and the workload image into `dir`.
pub fn build_test_images(
    dir: &Path,
    image: &str,
    pause: &str,
    workload: &str,
) -> io::Result<TestImages> {
    let rootfs = dir.join("rootfs");
    probe_rootfs(&rootfs)?;
    let img = dir.join("busybox.tar");
    oci_archive(&rootfs, image, &["/bin/sh"], &img)?;

    let pause_root = dir.join("pause-rootfs");
    pause_rootfs(&pause_root)?;
    let pause_tar = dir.join("pause.tar");
    let config = serde_json::json!({ "Entrypoint": ["/pause"], "WorkingDir": "/" });
    oci_archive_with_config(&pause_root, pause, config, &pause_tar)?;

    let workload_root = dir.join("workload-rootfs");
    workload_rootfs(&workload_root)?;
    let workload_tar = dir.join("workload.tar");
    workload_archive(&workload_root, workload, &workload_tar)?;
    Ok(TestImages {
        image: img,
        pause: pause_tar,
        workload: workload_tar,
    })
}
