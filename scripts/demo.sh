#!/usr/bin/env bash
# One command from a fresh machine to a hardened container: installs the Debian
# packages, builds Stockade, makes a busybox rootfs and runs a container from a bare
# spec, printing what the container sees of its own confinement.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: containers need it" >&2; exit 1; }

scripts/install-deps.sh
cargo build --release -p stockade
stockade=$PWD/target/release/stockade

demo=$PWD/.work/demo
rm -rf "$demo"
mkdir -p "$demo/bundle/rootfs"/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$demo/bundle/rootfs/bin/"
for a in sh cat grep touch id echo mount unshare head; do ln -s busybox "$demo/bundle/rootfs/bin/$a"; done

"$stockade" spec --bundle "$demo/bundle"
python3 - "$demo/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
spec = json.load(open(p))
spec["process"]["terminal"] = False
spec["process"]["args"] = ["sh", "-c", """
echo '--- inside a Stockade container ---'
id
grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status
echo "uid_map: $(cat /proc/self/uid_map)"
touch /written 2>/dev/null && echo 'rootfs: WRITABLE' || echo 'rootfs: read-only (write refused)'
unshare -U true 2>/dev/null && echo 'unshare: ALLOWED' || echo 'unshare: refused'
"""]
spec["linux"]["cgroupsPath"] = "/stockade-demo/demo"
json.dump(spec, open(p, "w"), indent=2)
PY
"$stockade" --root "$demo/state" run --bundle "$demo/bundle" demo
rmdir /sys/fs/cgroup/*/stockade-demo 2>/dev/null || true
