#!/usr/bin/env bash
# One command from a fresh machine to a hardened container: installs the Debian
# packages, builds Stockade, makes a busybox rootfs, and runs a container from a bare
# spec (no seccomp, no user namespace, no limits) under the node's default profile,
# printing what the container sees of the hardening Stockade injected. Then the same
# spec is asked to run under `restricted` and is refused with the list of violations.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: containers need it" >&2; exit 1; }

scripts/install-deps.sh
cargo build-runtime   # static PIE (.cargo/config.toml)
stockade=$PWD/target/release/stockade

demo=$PWD/.work/demo
rm -rf "$demo"
mkdir -p "$demo/bundle/rootfs"/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$demo/bundle/rootfs/bin/"
for a in sh cat grep touch id echo ls unshare head; do ln -s busybox "$demo/bundle/rootfs/bin/$a"; done
cat > "$demo/config.toml" <<TOML
schema = 1
profiles_dir = "$PWD/profiles"
default_profile = "default"
annotation_allowed = ["restricted"]
TOML
export STOCKADE_CONFIG=$demo/config.toml STOCKADE_USERNS_DB=$demo/userns.json

# A bare spec: runc's shape, nothing hardened.
"$stockade" spec --profile unconfined --bundle "$demo/bundle"
python3 - "$demo/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
spec = json.load(open(p))
spec["process"]["terminal"] = False
spec["process"]["noNewPrivileges"] = False
spec["root"]["readonly"] = False
spec["process"]["args"] = ["sh", "-c", """
echo '--- inside a Stockade container (profile: default) ---'
id
grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
echo "uid_map: $(cat /proc/self/uid_map)"
echo "image files: $(ls -ln /bin/busybox | head -c 40)"
touch /written 2>/dev/null && echo 'rootfs: WRITABLE' || echo 'rootfs: read-only (write refused)'
touch /tmp/scratch && echo '/tmp: writable scratch tmpfs'
unshare -U true 2>/dev/null && echo 'unshare: ALLOWED' || echo 'unshare: refused by seccomp'
echo "memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
"""]
spec["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
spec["linux"]["cgroupsPath"] = "/stockade-demo/demo"
json.dump(spec, open(p, "w"), indent=2)
PY
"$stockade" --root "$demo/state" run --bundle "$demo/bundle" demo

echo
echo '--- the same spec checked against the restricted profile ---'
"$stockade" profile check --profile restricted "$demo/bundle/config.json" || true
rmdir /sys/fs/cgroup/*/stockade-demo 2>/dev/null || true
