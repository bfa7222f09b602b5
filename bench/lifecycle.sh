#!/usr/bin/env bash
# Benchmark: create+start+wait+delete of /bin/true (`<runtime> run`), Stockade vs
# runc vs crun, in one run on this machine, reported as medians and ratios.
#
#   bench/lifecycle.sh [ROUNDS] [STOCKADE_BINARY]     (as root)
#
# Every runtime runs the same bundle. crun 1.8 refuses the hybrid cgroup layout
# (a v2 hierarchy mounted beside v1), so the whole benchmark runs in a private mount
# namespace where /sys/fs/cgroup/unified is hidden: all three see pure cgroup v1.
# Stockade is measured twice on the same bundle: under the `unconfined` profile (the
# same work runc and crun do), and under the node `default` profile, i.e. with full
# hardening injected (default-deny seccomp, dropped caps, read-only root,
# no_new_privs, user namespace with an idmapped rootfs, cgroup limits, Landlock).
#
# As on a node: every runtime runs from a 0711 directory (containerd runs it from
# the bundle directory it makes 0711), and the state roots and Stockade's range
# database live on a tmpfs (containerd's /run); the rootfs stays on disk.
# bench/ab.py times the commands in alternating rounds (medians, p25/p75, ratios);
# STOCKADE_BENCH_STRACE=1 adds the syscall and process count of one run of each.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-30}
stockade=${2:-}
if [ -z "$stockade" ]; then
  cargo build-runtime >&2
  stockade=$PWD/target/release/stockade
fi
bench=$PWD/bench

work=$(mktemp -d /tmp/stockade-bench.XXXXXX)
# A user-namespaced container root (an unprivileged host uid) must traverse to the rootfs.
chmod 711 "$work"
cleanup() {
  for rt in stockade stockade-hardened runc crun runc-hardened crun-hardened; do
    rmdir /sys/fs/cgroup/*/stockade-bench/"$rt" 2>/dev/null || true
  done
  rmdir /sys/fs/cgroup/*/stockade-bench 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/rootfs"/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$work/rootfs/bin/"
ln -s busybox "$work/rootfs/bin/true"
ln -s busybox "$work/rootfs/bin/sh"

make_bundle() { # name cgroup
  mkdir -p "$work/$1"
  python3 - "$work" "$1" "$2" <<'PY'
import json, subprocess, sys
work, name, cg = sys.argv[1:]
subprocess.check_call(["runc", "spec"], cwd=f"{work}/{name}")
spec = json.load(open(f"{work}/{name}/config.json"))
spec["root"]["path"] = f"{work}/rootfs"
spec["process"]["terminal"] = False
spec["process"]["args"] = ["/bin/true"]
spec["linux"]["cgroupsPath"] = f"/stockade-bench/{cg}"
json.dump(spec, open(f"{work}/{name}/config.json", "w"))
PY
}
make_bundle plain-stockade stockade
make_bundle plain-runc runc
make_bundle plain-crun crun
make_bundle hardened stockade-hardened
cat > "$work/config.toml" <<TOML
schema = 1
profiles_dir = "$PWD/profiles"
default_profile = "default"
TOML

# The spec Stockade's default profile turns the plain bundle into (seccomp, caps,
# read-only root, no_new_privs, user namespace, limits), for runc and crun to run
# the same hardening. Landlock and the idmapped rootfs have no OCI equivalent.
STOCKADE_CONFIG=$work/config.toml STOCKADE_USERNS_DB=$work/userns.json \
  "$stockade" --root "$work/probe" create --bundle "$work/hardened" probe >&2
for rt in runc crun; do
  mkdir -p "$work/hardened-$rt"
  python3 - "$work" "$rt" <<'PY'
import json, sys
work, rt = sys.argv[1:]
spec = json.load(open(f"{work}/probe/.stockade/plans/probe/config.json"))
spec["root"]["path"] = f"{work}/rootfs"
spec["linux"]["cgroupsPath"] = f"/stockade-bench/{rt}-hardened"
json.dump(spec, open(f"{work}/hardened-{rt}/config.json", "w"))
PY
done
STOCKADE_CONFIG=$work/config.toml STOCKADE_USERNS_DB=$work/userns.json \
  "$stockade" --root "$work/probe" delete --force probe >&2

STOCKADE_CONFIG=$work/config.toml STOCKADE_USERNS_DB=$work/run/userns.json \
unshare -m bash -s "$work" "$stockade" "$rounds" "$bench" "${STOCKADE_BENCH_STRACE:-0}" <<'SH'
set -euo pipefail
work=$1; stockade=$2; rounds=$3; bench=$4; trace=$5
umount -l /sys/fs/cgroup/unified 2>/dev/null || true
mkdir -p "$work/run"
mount -t tmpfs -o mode=0700 stockade-bench "$work/run"
r=$work/run
cd "$work"
extra=()
[ "$trace" = 1 ] && extra=(--strace)
python3 "$bench/ab.py" "$rounds" "$work" \
  "stockade=$stockade --default-profile unconfined --root $r/s1 run --bundle $work/plain-stockade b" \
  "stockade-hardened=$stockade --default-profile default --root $r/s2 run --bundle $work/hardened b" \
  "runc=runc --root $r/s3 run --bundle $work/plain-runc b" \
  "crun=crun --root $r/s4 run --bundle $work/plain-crun b" \
  "runc-hardened=runc --root $r/s5 run --bundle $work/hardened-runc b" \
  "crun-hardened=crun --root $r/s6 run --bundle $work/hardened-crun b" \
  --pairs stockade:crun stockade:runc runc:crun \
  stockade-hardened:crun-hardened stockade-hardened:runc-hardened runc-hardened:crun-hardened \
  "${extra[@]}"
echo "(hardened pairs: runc and crun run the very spec Stockade's default profile produces)"
SH
