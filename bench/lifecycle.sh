#!/usr/bin/env bash
# Benchmark: create+start+wait+delete of /bin/true (`<runtime> run`), Stockade vs
# runc vs crun, in one run on this machine, reported as medians and ratios.
#
#   bench/lifecycle.sh [RUNS]
#
# Every runtime runs the same bundle. crun 1.8 refuses the hybrid cgroup layout
# (a v2 hierarchy mounted beside v1), so the whole benchmark runs in a private mount
# namespace where /sys/fs/cgroup/unified is hidden: all three see pure cgroup v1.
# Stockade is measured twice on the same bundle: under the `unconfined` profile (the
# same work runc and crun do), and under the node `default` profile, i.e. with full
# hardening injected (default-deny seccomp, dropped caps, read-only root,
# no_new_privs, user namespace with an idmapped rootfs, cgroup limits, Landlock).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}

command -v hyperfine >/dev/null || { echo "hyperfine missing: scripts/install-deps.sh" >&2; exit 1; }
cargo build --release -p stockade >&2
stockade=$PWD/target/release/stockade

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

STOCKADE_CONFIG=$work/config.toml STOCKADE_USERNS_DB=$work/userns.json \
unshare -m bash -s "$work" "$stockade" "$runs" <<'SH'
set -euo pipefail
work=$1; stockade=$2; runs=$3
umount -l /sys/fs/cgroup/unified 2>/dev/null || true
hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/result.json" \
  -n stockade          "$stockade --default-profile unconfined --root $work/s1 run --bundle $work/plain-stockade b" \
  -n stockade-hardened "$stockade --default-profile default --root $work/s2 run --bundle $work/hardened b" \
  -n runc              "runc --root $work/s3 run --bundle $work/plain-runc b" \
  -n crun              "crun --root $work/s4 run --bundle $work/plain-crun b" \
  -n runc-hardened     "runc --root $work/s5 run --bundle $work/hardened-runc b" \
  -n crun-hardened     "crun --root $work/s6 run --bundle $work/hardened-crun b" >&2
python3 - "$work/result.json" <<'PY'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] * 1000 for k, v in res.items()}
print(f"{'runtime':<20}{'median ms':>10}{'vs crun':>10}{'vs runc':>10}")
for k, crun, runc in [("stockade", "crun", "runc"), ("runc", "crun", "runc"), ("crun", "crun", "runc"),
                      ("stockade-hardened", "crun-hardened", "runc-hardened"),
                      ("runc-hardened", "crun-hardened", "runc-hardened"),
                      ("crun-hardened", "crun-hardened", "runc-hardened")]:
    print(f"{k:<20}{med[k]:>10.1f}{med[k]/med[crun]:>10.2f}{med[k]/med[runc]:>10.2f}")
print("(hardened rows compare against runc/crun running the same hardened spec)")
PY
SH
