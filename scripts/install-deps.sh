#!/usr/bin/env bash
# Installs what Stockade's build, demo and tests need on a fresh Debian machine.
# Idempotent: packages already present are left alone.
set -euo pipefail

packages=(
  busybox-static       # the test and demo rootfs
  containerd           # integration tests drive a private containerd
  runc crun            # reference runtimes for tests and benchmarks
  containernetworking-plugins  # loopback CNI plugin for the CRI tests
  hyperfine            # benchmarks
  procps               # ps, used by `stockade ps`
  iproute2
  protobuf-compiler    # protoc, for the CRI client used by the Kubernetes-path tests
  strace               # fault injection tests (runtime_faults: -e inject=...)
  valgrind             # instruction counts (runtime_work: the parse cache), bench/README
  gcc libc6-dev        # gcc -static: the CRI tests' pause image (integration-tests/pause); libc.a for the static shim (cargo build-shim)
  # libbpf (built from source by libbpf-sys) for the cgroup v2 device program
  libelf-dev zlib1g-dev pkg-config make
  # the VM lane (scripts/vm-lane.sh): qemu TCG, the VM's scratch disk, systemd as PID 1
  qemu-system-x86 e2fsprogs systemd dbus
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi

# kubernetes-validate (PyPI) checks deploy/*.yaml against the Kubernetes API schema in
# the tests; it lives in its own venv so the system Python is left alone.
venv=/opt/stockade-test-venv
if ! "$venv/bin/kubernetes-validate" --version >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check kubernetes-validate==1.37.0
fi

# cargo-fuzz and the nightly toolchain it needs, for scripts/fuzz-smoke.sh (CI's
# short run of the fuzz targets in fuzz/). From crates.io, pinned.
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
