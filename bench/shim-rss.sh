#!/bin/sh
# Per-container memory of containerd-shim-stockade-v2 vs containerd-shim-runc-v2.
#
# Starts a private containerd, runs 1, 10 and 50 sleeping busybox containers with each
# shim (runc as the runtime binary for both, so only the shims differ), and sums
# Rss/Pss of the shim processes from /proc/<pid>/smaps_rollup. Benchmark, not a test.
#
# Usage (root): bench/shim-rss.sh [path/to/containerd-shim-stockade-v2]
# Default shim: the one `cargo build-shim` makes (release-shim profile, static), then
# release, then debug.
set -eu

COUNTS="${COUNTS:-1 10 50}"
# Cgroup parent of the benchmark containers (as the tests: one per checkout).
cgparent="${STOCKADE_TEST_CGROUP_PARENT:-stockade-test}"
RUNTIME_BINARY="${STOCKADE_RUNTIME_BINARY:-/usr/sbin/runc}"
here=$(cd "$(dirname "$0")/.." && pwd)
target="${CARGO_TARGET_DIR:-$here/target}"
shim="${1:-}"
for cand in "$target/release-shim/containerd-shim-stockade-v2" "$target/release/containerd-shim-stockade-v2" "$target/debug/containerd-shim-stockade-v2"; do
    [ -n "$shim" ] && break
    [ -x "$cand" ] && shim="$cand"
done
[ -x "$shim" ] || { echo "build the shim first: cargo build-shim" >&2; exit 1; }

tmp=$(mktemp -d /tmp/stockade-rss.XXXXXX)
sock="$tmp/containerd.sock"
ns=stockade-bench
ctrd_pid=""

cleanup() {
    set +e
    for id in $(ctr -a "$sock" -n "$ns" task ls -q 2>/dev/null); do
        ctr -a "$sock" -n "$ns" task kill -s SIGKILL "$id" >/dev/null 2>&1
    done
    sleep 1
    for id in $(ctr -a "$sock" -n "$ns" task ls -q 2>/dev/null); do
        ctr -a "$sock" -n "$ns" task rm -f "$id" >/dev/null 2>&1
    done
    for id in $(ctr -a "$sock" -n "$ns" container ls -q 2>/dev/null); do
        ctr -a "$sock" -n "$ns" container rm "$id" >/dev/null 2>&1
    done
    [ -n "$ctrd_pid" ] && kill "$ctrd_pid" 2>/dev/null && wait "$ctrd_pid" 2>/dev/null
    for c in /sys/fs/cgroup/*/$cgparent/bench-*; do [ -d "$c" ] && rmdir "$c" 2>/dev/null; done
    grep -o " $tmp[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# busybox rootfs shared read-only by all containers (ctr --rootfs, no image needed)
rootfs="$tmp/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/dev" "$rootfs/sys" "$rootfs/tmp"
cp /usr/bin/busybox "$rootfs/bin/busybox"
ln -s busybox "$rootfs/bin/sleep"
ln -s busybox "$rootfs/bin/sh"

printf 'binary_name = "%s"\nroot = "%s/stockade-root"\n' "$RUNTIME_BINARY" "$tmp" > "$tmp/stockade.toml"
cat > "$tmp/config.toml" <<EOF
version = 2
root = "$tmp/root"
state = "$tmp/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$sock"
EOF
PATH="$(dirname "$shim"):/usr/sbin:/usr/bin:/sbin:/bin" containerd --config "$tmp/config.toml" >"$tmp/containerd.log" 2>&1 &
ctrd_pid=$!
i=0
until ctr -a "$sock" version >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "containerd did not start" >&2; exit 1; }
    sleep 0.1
done

# Sum of a smaps_rollup field (kB) over the shims of this containerd.
shim_kb() {
    field=$1 total=0
    for p in /proc/[0-9]*; do
        cmd=$( (tr '\0' ' ' < "$p/cmdline") 2>/dev/null) || continue
        case "$cmd" in *containerd-shim*"$sock"*) ;; *) continue ;; esac
        v=$(awk -v f="$field:" '$1 == f { print $2 }' "$p/smaps_rollup" 2>/dev/null)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

shim_count() {
    n=0
    for p in /proc/[0-9]*; do
        cmd=$( (tr '\0' ' ' < "$p/cmdline") 2>/dev/null) || continue
        case "$cmd" in *containerd-shim*"$sock"*) n=$((n + 1)) ;; esac
    done
    echo "$n"
}

# RSS_DETAIL=1: where one stockade shim's resident memory is (kB per mapping, by
# smaps), and its thread count, on stderr.
detail() {
    for p in /proc/[0-9]*; do
        cmd=$( (tr '\0' ' ' < "$p/cmdline") 2>/dev/null) || continue
        case "$cmd" in *containerd-shim-stockade*"$sock"*) ;; *) continue ;; esac
        echo "shim ${p#/proc/}: $(ls "$p/task" | wc -l) threads: $(cat "$p"/task/*/comm | sort | uniq -c | tr -s ' \n' ' ')"
        awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6 ($6 ~ /^\// ? " " $2 : "")) }
             $1 == "Rss:" { rss[name] += $2 }
             END { for (n in rss) if (rss[n] > 0) printf "  %6d kB  %s\n", rss[n], n }' "$p/smaps" | sort -rn
        awk '$1 ~ /^(Anonymous|Private_Dirty|Shared_Clean|Private_Clean):$/ { printf "  %s %d kB\n", $1, $2 }' "$p/smaps_rollup"
        return
    done
}

# measure RUNTIME N -> prints "rss_kb pss_kb"
measure() {
    rt=$1 n=$2
    i=1
    while [ $i -le "$n" ]; do
        if [ "$rt" = io.containerd.stockade.v2 ]; then
            opts="--runtime-config-path $tmp/stockade.toml"
        else
            opts="--runc-binary $RUNTIME_BINARY"
        fi
        # shellcheck disable=SC2086
        ctr -a "$sock" -n "$ns" run -d --null-io --runtime "$rt" $opts \
            --cgroup "/$cgparent/bench-$i" --rootfs "$rootfs" "bench-$i" /bin/sleep 100000 >/dev/null
        i=$((i + 1))
    done
    sleep 2
    [ "$(shim_count)" -eq "$n" ] || echo "warning: $(shim_count) shims for $n containers" >&2
    [ -n "${RSS_DETAIL:-}" ] && [ "$rt" = io.containerd.stockade.v2 ] && detail >&2
    echo "$(shim_kb Rss) $(shim_kb Pss)"
    for id in $(ctr -a "$sock" -n "$ns" task ls -q); do
        ctr -a "$sock" -n "$ns" task kill -s SIGKILL "$id" >/dev/null
    done
    for id in $(ctr -a "$sock" -n "$ns" container ls -q); do
        until ctr -a "$sock" -n "$ns" task rm "$id" >/dev/null 2>&1; do sleep 0.1; done
        ctr -a "$sock" -n "$ns" container rm "$id" >/dev/null
    done
    for c in /sys/fs/cgroup/*/$cgparent/bench-*; do [ -d "$c" ] && rmdir "$c" 2>/dev/null || true; done
}

# A shim with a program interpreter is dynamically linked (not what `cargo build-shim`
# ships): say so, its numbers include libc.so, the loader and libgcc_s.
if readelf -l "$shim" 2>/dev/null | grep -q 'Requesting program interpreter'; then linking=dynamic; else linking=static; fi
echo "shim: $shim ($linking, $(stat -c %s "$shim") bytes)"
echo "runtime binary: $RUNTIME_BINARY"
printf '%-11s %-28s %-28s %s\n' containers "stockade RSS/PSS per ctr kB" "runc-v2 RSS/PSS per ctr kB" "ratio RSS / PSS"
for n in $COUNTS; do
    set -- $(measure io.containerd.stockade.v2 "$n")
    s_rss=$(( $1 / n )) s_pss=$(( $2 / n ))
    set -- $(measure io.containerd.runc.v2 "$n")
    r_rss=$(( $1 / n )) r_pss=$(( $2 / n ))
    printf '%-11s %-28s %-28s %s / %s\n' "$n" "$s_rss / $s_pss" "$r_rss / $r_pss" \
        "$(awk -v a="$s_rss" -v b="$r_rss" 'BEGIN { printf "%.2f", a / b }')" \
        "$(awk -v a="$s_pss" -v b="$r_pss" 'BEGIN { printf "%.2f", a / b }')"
done
