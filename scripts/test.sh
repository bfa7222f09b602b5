#!/usr/bin/env bash
# Runs the whole test suite: unit tests (no root needed) and the integration tests,
# which start real containers (and a private containerd) and must run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
# The integration tests exec the built runtime and shim binaries.
cargo build --workspace --bins
cargo test --workspace -- --test-threads="${STOCKADE_TEST_THREADS:-4}"
# The vendored libcgroups is outside the workspace: its own tests of the code Stockade
# patched (third_party/PATCHES.md).
cargo test --manifest-path third_party/libcgroups/Cargo.toml --target-dir target/vendored \
  --no-default-features --features v1,v2,systemd --lib -- v2::io systemd::legacy wait_unpopulated v1::devices::tests::whitelist v1::devices::tests::rule_writer join_only \
  test_add_calling_thread get_all_pids_walks_sub_cgroups read_proc_text v1::cpuset \
  new_with_mountinfo list_subsystem_mount_points_in cgroup_v1_lines v1_mounts_parsed_once
# The vendored libcontainer likewise (it needs the patched libcgroups): the seccomp
# listener hand-over of patch 28, the mount points of patch 30, the passwd reader of
# patch 31, the parent-mount check of patch 36, the device nodes and links of
# patches 37-38, the user namespace check of patch 34 (its test fixed by patch 39).
cargo test --manifest-path third_party/libcontainer/Cargo.toml --target-dir target/vendored \
  --config 'patch.crates-io.libcgroups.path="third_party/libcgroups"' \
  --no-default-features --features v1,v2,systemd,cgroupsv2_devices --lib -- seccomp_listener \
  rootfs::mount::tests::mount_point utils::tests::home_in_passwd utils::tests::read_passwd \
  propagation_only_shared rootfs::device rootfs::symlink utils::tests::test_userns_spec_validation
# The binaries as they ship (`cargo build-shim`: size-optimised, statically linked;
# `cargo build-runtime`: a static PIE) through containerd and the CRI, and the runtime
# alone where static glibc could differ (the CVE-2019-5736 re-exec, `list`'s owner
# lookup): the suite above runs the debug builds.
cargo build-shim
cargo build-runtime
shipped=$(mktemp -d)
trap 'rm -rf "$shipped"' EXIT
cp target/release-shim/containerd-shim-stockade-v2 target/release/stockade "$shipped/"
STOCKADE_SHIM="$shipped/containerd-shim-stockade-v2" STOCKADE_TEST_RUNTIME="$shipped/stockade" \
  cargo test -p stockade-integration-tests --test containerd_shim --test cri_stockade \
  --test runtime_escapes --test runc_parity -- --test-threads="${STOCKADE_TEST_THREADS:-4}"
