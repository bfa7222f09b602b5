#!/usr/bin/env bash
# Soak test for releases (not run in CI): N full lifecycles under the hardened
# `default` profile (user namespace, idmapped rootfs, host id range; or the
# profile named by SOAK_PROFILE, e.g. `unconfined`, whose init is forked without
# libcontainer's intermediate process), every tenth
# one interrupted (create or start killed with -9, then `delete --force`), with
# leak accounting before and after: mounts, cgroups, host id ranges, state and plan
# dirs, idmap dirs, lock and journal files, runtime processes, open fds of the
# shell. Exit 1 on any leak.
#
#   [SOAK_PROFILE=NAME] bench/soak.sh [LIFECYCLES]      (default 1000; run as root)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}

cargo build-runtime >&2
stockade=$PWD/target/release/stockade

work=$(mktemp -d /tmp/stockade-soak.XXXXXX)
chmod 711 "$work"
cg=stockade-soak-$$
root=$work/state
db=$work/userns-ranges.json
cleanup() {
  for id in $("$stockade" --root "$root" list --quiet 2>/dev/null); do
    "$stockade" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
  done
  rmdir /sys/fs/cgroup/*/"$cg"/* /sys/fs/cgroup/*/"$cg" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/rootfs"/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$work/rootfs/bin/"
ln -s busybox "$work/rootfs/bin/sh"
ln -s busybox "$work/rootfs/bin/sleep"
mkdir -p "$work/bundle"
(cd "$work/bundle" && "$stockade" spec)
python3 - "$work" "$cg" <<'PY'
import json, sys
work, cg = sys.argv[1:]
p = f"{work}/bundle/config.json"
spec = json.load(open(p))
spec["root"]["path"] = f"{work}/rootfs"
spec["process"]["terminal"] = False
spec["process"]["args"] = ["/bin/sh", "-c", "exit 0"]
spec["linux"]["cgroupsPath"] = f"/{cg}/c"
json.dump(spec, open(p, "w"))
PY
cat > "$work/config.toml" <<TOML
schema = 1
profiles_dir = "$PWD/profiles"
default_profile = "${SOAK_PROFILE:-default}"
TOML
export STOCKADE_CONFIG=$work/config.toml STOCKADE_USERNS_DB=$db
rt() { "$stockade" --root "$root" --log "$work/log.json" --log-format json "$@"; }
# The runtime in the background as the very process `$!` names: `rt ... &` would be
# a subshell running the function, and kill -9 would end that shell while the
# runtime ran on.
rt_bg() { "$stockade" --root "$root" --log "$work/log.json" --log-format json "$@" >/dev/null 2>&1 & }

# What this soak may leave behind, counted; only things it made are counted.
snapshot() {
  local mounts cgroups ranges states plans idmap locks journal procs fds
  mounts=$(grep -c -e "$work" -e "/root/soak-" -e "/binds/soak-" -e "/layers/soak-" /proc/self/mountinfo || true)
  cgroups=$(find /sys/fs/cgroup/*/"$cg" -mindepth 1 -type d 2>/dev/null | wc -l)
  ranges=$(python3 -c "import json,sys;print(len(json.load(open(sys.argv[1]))['ranges']))" "$db" 2>/dev/null || echo 0)
  states=$(find "$root" -mindepth 1 -maxdepth 1 ! -name '.*' 2>/dev/null | wc -l)
  plans=$(find "$root/.stockade/plans" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  idmap=$(find /run/stockade/rootfs -mindepth 3 -maxdepth 3 -name 'soak-*' 2>/dev/null | wc -l)
  locks=$(find "$root/.stockade/locks" -mindepth 1 2>/dev/null | wc -l)
  journal=$(find "$root/.stockade/journal" -mindepth 1 2>/dev/null | wc -l)
  procs=$(pgrep -fc -- "--root $root" || true)
  fds=$(find /proc/$$/fd -mindepth 1 | wc -l)
  echo "mounts=$mounts cgroups=$cgroups ranges=$ranges states=$states plans=$plans idmap=$idmap locks=$locks journal=$journal procs=$procs fds=$fds"
}

before=$(snapshot)
echo "before: $before"
start=$(date +%s)
failures=0
for i in $(seq 1 "$n"); do
  id=soak-$i
  case $((i % 10)) in
    3) # create killed half-way (-9 after a random short delay)
      rt_bg create --bundle "$work/bundle" "$id"
      sleep "0.0$((RANDOM % 9 + 1))"; kill -9 $! 2>/dev/null || true; wait $! 2>/dev/null || true
      rt delete --force "$id" >/dev/null 2>&1 || failures=$((failures + 1)) ;;
    7) # start killed half-way
      rt create --bundle "$work/bundle" "$id" >/dev/null 2>&1 || failures=$((failures + 1))
      rt_bg start "$id"
      sleep "0.00$((RANDOM % 9 + 1))"; kill -9 $! 2>/dev/null || true; wait $! 2>/dev/null || true
      rt delete --force "$id" >/dev/null 2>&1 || failures=$((failures + 1)) ;;
    *)
      rt run --bundle "$work/bundle" "$id" >/dev/null 2>&1 || failures=$((failures + 1)) ;;
  esac
  if ((i % 100 == 0)); then echo "$i lifecycles, $failures failed verbs: $(snapshot)"; fi
done
after=$(snapshot)
echo "after:  $after"
echo "$n lifecycles in $(($(date +%s) - start)) s, $failures failed verbs"
# fds of this shell and gc's own run are not leaks of the runtime; compare the rest.
if [ "${before% fds=*}" != "${after% fds=*}" ]; then
  echo "LEAK: before [$before] after [$after]" >&2
  exit 1
fi
echo "no leaks"
