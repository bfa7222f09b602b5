#!/usr/bin/env bash
# The VM lane: runs a chosen subset of the integration tests on a real-node platform,
# Debian's own kernel (linux-image-amd64, 6.1 on bookworm) under qemu TCG (no KVM
# needed) with a pure cgroup v2 hierarchy, optionally with systemd as PID 1.
#
#   scripts/vm-lane.sh setup
#       Installs qemu and friends, unpacks the kernel package and builds the
#       initramfs into $VM_DIR. Idempotent and cached: reruns only redo what changed.
#   scripts/vm-lane.sh run [--systemd|--systemd-v1] [SELECTION...]
#       Boots the VM and runs each SELECTION inside, as root. A SELECTION is
#       `TESTFILE` (every test of integration-tests/tests/TESTFILE.rs) or
#       `TESTFILE::FILTER` (libtest's substring filter; `TESTFILE::NAME::exact` for one
#       test). Without SELECTIONs the lane's default list for that boot is run.
#       --systemd boots /lib/systemd/systemd as PID 1 and runs the tests from a
#       unit (the systemd cgroup driver's tests need a systemd to talk to).
#       --systemd-v1 does the same on cgroup v1: systemd mounts the hybrid layout
#       (v1 controllers, its own tracking in v2 at /sys/fs/cgroup/unified), as on
#       nodes that have not moved to cgroup v2 (and on this project's dev machines).
#       Exit status: 0 when every selection passed.
#   scripts/vm-lane.sh ci
#       setup, then the cgroup v2 boot and the two systemd boots (v2, v1) with their
#       defaults.
#
# The tests run the host's build unchanged: build first (`cargo build --workspace
# --bins && cargo test -p stockade-integration-tests --no-run`). Inside the VM the
# host's /usr and /etc, and this checkout (sources, profiles, target/) are shared
# read-only over virtio-9p at their host paths; the root is a tmpfs; TMPDIR,
# /var/lib and the test rootfs cache live on a fresh ext4 scratch disk (bundles
# there can be idmapped: tmpfs cannot be before Linux 6.3). Console output, with a
# `LANE <PASS|FAIL> <selection>` line per selection, is kept in
# $VM_DIR/out/<time>-<shell|systemd>-<pid>/ (one directory per boot).
#
# Environment: VM_DIR (default /var/tmp/stockade-vm-lane), VM_MEM (2G), VM_SMP (2),
# VM_TIMEOUT seconds per boot (900), VM_SELECTION_TIMEOUT seconds per selection
# (300: a hung selection is reported, with every process's kernel stack and the
# file locks, and killed), VM_TEST_THREADS (2), VM_OUT (the boot's output
# directory). Every STOCKADE_* variable (STOCKADE_TEST_CGROUP_PARENT, default
# stockade-vm-lane; STOCKADE_TEST_RUNTIME, ...) is passed into the VM.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VM_DIR=${VM_DIR:-/var/tmp/stockade-vm-lane}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}

# What each boot runs by default: cgroup limits and stats, device rules, the
# cgroup namespace, user namespaces and idmapped mounts, Landlock on this kernel's
# ABI, the shim's v2 stats and OOM events, and one `ctr run` through the shim.
# TCG makes a container start ~25x slower than the host: keep the lane <= 15 min.
DEFAULT_V2=(
  runtime_spec_honoured::devices_cgroup
  runtime_spec_honoured::block_io_weight
  runtime_confinement::memory_and_pids_limits_are_visible
  runtime_confinement::pids_limit_is_in_effect
  runtime_confinement::user_namespace
  runtime_verbs::update_resources_from_stdin_changes_the_limits
  runtime_verbs::events_stats_prints_once_and_exits
  runtime_verbs::features_report_seccomp_actions_and_the_kernels_landlock_abi
  runtime_lifecycle::pause_and_resume
  # How the container joins its cgroup (v2: cgroup.procs; v1 moves the one thread).
  runtime_work::run_joins_cgroup_v1_without_the_threadgroup_lock
  # Without a user namespace the init is forked by the runtime and joins its cgroup
  # itself (`0` in cgroup.procs); a limit the kernel refuses (cpu.max) is named.
  runtime_work::only_a_container_with_a_user_namespace_takes_an_intermediate_process
  # Delete of an exited container: one rmdir of its v2 cgroup (no kill, no listing);
  # no process of a run reads the mount table or makes a private procfs on v2.
  runtime_work::delete_of_an_exited_container_removes_each_cgroup_with_one_rmdir
  runtime_work::a_run_reads_the_mount_table_only_when_its_cgroup_mounts_changed
  runtime_work::run_reads_proc_self_cgroup_without_a_private_procfs
  # Another kernel: the entry point re-executes from the read-only copy of the binary
  # (a writable copy of the build, which the VM shares read-only), never from a
  # foreign file at that path.
  runtime_work::an_entering_verb_re_executes_from_the_protected_copy_before_main
  runtime_escapes::a_foreign_file_at_the_protected_path_is_never_executed
  runtime_bad_input::a_limit_the_kernel_refuses_names_the_cgroup_file_and_errno
  profile_injection::bare_spec_runs_hardened_under_the_node_default
  profile_injection::node_default_gives_a_silent_spec_its_own_cgroup_namespace
  profile_injection::bind_mounted_volume_is_idmapped_into_the_containers_range
  # Three user-namespaced containers created at once, deleted at once (cgroup v2 removal
  # waits for "populated 0", not only an empty cgroup.procs).
  profile_injection::concurrent_containers
  userns_idmap
  # Landlock on this kernel's ABI (2 on 6.1): filesystem rules enforced; TCP rules
  # (ABI 4) and scopes (ABI 6) refused at admission, naming the ABI; a best_effort
  # profile needing ABI 6 admitted with every right not enforced named, a hard one
  # refused.
  runtime_landlock
  containerd_shim::run_prints_output_and_exit_code_with_events_in_order
  containerd_shim::exec_kill_pause_resume
  containerd_shim::memory_hog_is_oom_killed_with_event
  profile_injection::tmpfs_volume_is_idmapped_or_refused_naming_the_kernel
  runtime_cgroup_driver
  # What `stockade doctor` says of a cgroup v2 node with an older kernel, and owner
  # Landlock rules judged against the ABI this kernel has (2 on 6.1).
  doctor
  policy_gate::owner_landlock_rules_the_kernel_cannot_enforce_are_refused_at_admission
  # disableOOMKiller: no cgroup v2 equivalent, said at admission.
  runc_parity_spec::oom_killer_setting_is_enforced_or_reported
  # cgroup parity with runc on v2: a pre-frozen cgroup (cgroup.freeze), sub-cgroups
  # at exec and delete, every update flag (cpuset on v2).
  runc_parity::create_in_a_frozen_cgroup_fails_instead_of_hanging
  runc_parity::exec_into_a_missing_sub_cgroup_fails_and_makes_nothing
  runc_parity::delete_force_removes_sub_cgroups
  runc_parity::update_flags_are_all_applied
)
# With systemd as PID 1 (the systemd cgroup driver's tests join this list).
DEFAULT_SYSTEMD=(
  runtime_confinement::memory_and_pids_limits_are_visible
  runtime_confinement::pids_limit_is_in_effect
  containerd_shim::run_prints_output_and_exit_code_with_events_in_order
  runtime_cgroup_driver
  containerd_shim::systemd_cgroup_option_runs_the_task_in_its_scope
)
# With systemd as PID 1 on cgroup v1 (hybrid): the systemd driver's v1 half (systemd
# creates the scope in its controllers, the runtime joins cpuset, freezer, ...).
DEFAULT_SYSTEMD_V1=(
  runtime_cgroup_driver
  runtime_confinement::memory_and_pids_limits_are_visible
  # a hybrid host with misc and rdma hierarchies: the container's own cgroup in each
  runc_parity_spec::cgroup_v1_ro_mount_is_read_only_and_the_containers_own
  # cgroup v1 on a kernel without unique mount ids (6.1): every run reads the mount
  # table (no snapshot), by path; comounted cpu,cpuacct removed once at delete.
  runtime_work::a_run_reads_the_mount_table_only_when_its_cgroup_mounts_changed
  runtime_work::run_reads_proc_self_cgroup_without_a_private_procfs
  runtime_work::delete_of_an_exited_container_removes_each_cgroup_with_one_rmdir
  runc_parity::delete_force_removes_sub_cgroups
)

log() { echo "vm-lane: $*" >&2; }
die() { log "$*"; exit 2; }

kernel_dir() { echo "$VM_DIR/kernel"; }

setup() {
  [ "$(id -u)" = 0 ] || die "setup needs root (apt-get)"
  "$REPO/scripts/install-deps.sh"
  mkdir -p "$VM_DIR"
  # The kernel: whatever linux-image-amd64 depends on in this machine's apt sources.
  local pkg kdir
  pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -1)
  [ -n "$pkg" ] || die "apt-cache knows no linux-image-amd64 dependency"
  kdir=$(kernel_dir)
  if [ "$(cat "$kdir/.package" 2>/dev/null)" != "$pkg" ]; then
    log "fetching $pkg"
    local dl
    dl=$(mktemp -d "$VM_DIR/download.XXXXXX")
    chown _apt "$dl" 2>/dev/null || true  # apt fetches as _apt
    (cd "$dl" && apt-get download -qq "$pkg")
    rm -rf "$kdir.new" && dpkg-deb -x "$dl"/*.deb "$kdir.new"
    rm -rf "$dl" "$kdir" && mv "$kdir.new" "$kdir"
    echo "$pkg" >"$kdir/.package"
  fi
  # The initramfs is rebuilt when its init or module list changes (stamped by hash).
  local stamp
  stamp=$( (initramfs_init; echo "$pkg" "${MODULES[*]}") | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$VM_DIR/initramfs.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -f "$VM_DIR/initramfs.gz" ]; then
    build_initramfs
    echo "$stamp" >"$VM_DIR/initramfs.stamp"
  fi
  log "ready: $pkg in $VM_DIR"
}

# Modules the VM needs before it can mount anything (Debian builds them as modules).
MODULES=(virtio_pci virtio_blk virtio_rng 9pnet_virtio 9p ext4 crc32c_generic overlay veth bridge)

build_initramfs() {
  local kdir kver mdir work
  kdir=$(kernel_dir)
  kver=$(ls "$kdir/lib/modules")
  mdir=$kdir/lib/modules/$kver
  busybox depmod -b "$kdir" "$kver"
  work=$(mktemp -d "$VM_DIR/initramfs.XXXXXX")
  mkdir -p "$work"/{bin,dev,proc,sys,newroot,modules}
  cp /bin/busybox "$work/bin/"
  local applet
  for applet in $(busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$work/bin/$applet"
  done
  # Modules in dependency order (modules.dep lists a module's dependencies).
  local -A added=()
  local order=()
  add_module() {
    local name=$1 line dep
    line=$(grep -E "(^|/)${name//_/[_-]}\.ko(\.[a-z]+)?:" "$mdir/modules.dep" | head -1) ||
      die "module $name not in $kver"
    [ -z "${added[${line%%:*}]:-}" ] || return 0
    added[${line%%:*}]=1
    for dep in ${line#*:}; do add_module "$(basename "${dep%%.ko*}")"; done
    order+=("${line%%:*}")
  }
  local m
  for m in "${MODULES[@]}"; do add_module "$m"; done
  for m in "${order[@]}"; do
    cp "$mdir/$m" "$work/modules/"
    echo "$(basename "$m")" >>"$work/modules/order"
  done
  initramfs_init >"$work/init"
  chmod 755 "$work/init"
  (cd "$work" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$VM_DIR/initramfs.gz.new")
  mv "$VM_DIR/initramfs.gz.new" "$VM_DIR/initramfs.gz"
  rm -rf "$work"
  log "initramfs: kernel $kver, ${#order[@]} modules"
}

# The initramfs's /init: loads modules, builds the root (tmpfs + 9p shares + ext4
# scratch) and hands over to either a shell stage (plain boot, cgroup2 mounted by
# hand) or systemd (which mounts cgroup2 itself and starts stockade-lane.service).
initramfs_init() {
  cat <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t devtmpfs dev /dev
while read -r m; do insmod "/modules/$m" || echo "vm-lane: insmod $m failed"; done </modules/order
cmdline=$(cat /proc/cmdline)
arg() { echo "$cmdline" | sed -n "s/.*lane\.$1=\([^ ]*\).*/\1/p"; }
R=/newroot
mount -t tmpfs -o mode=755,size=1g root $R
for d in usr etc proc sys dev run tmp var/tmp var/lib var/log root scratch; do mkdir -p $R/$d; done
chmod 1777 $R/tmp $R/var/tmp
for l in bin sbin lib lib64; do ln -s usr/$l $R/$l; done
ln -s /run $R/var/run
# Shares are tag:path pairs; read-only ones are cached (they do not change while
# the VM runs), the output share is not.
opts=trans=virtio,version=9p2000.L,msize=512000
for s in $(arg ro | tr , ' '); do
  mkdir -p "$R${s#*:}" && mount -t 9p -o $opts,cache=loose,ro "${s%%:*}" "$R${s#*:}" || echo "vm-lane: share $s failed"
done
mkdir -p $R/lane-out && mount -t 9p -o $opts,cache=none out $R/lane-out
# ext4 scratch (formatted by the host): TMPDIR (bundles), /var/lib (containerd), the
# test rootfs cache.
mount -t ext4 /dev/vda $R/scratch || echo "vm-lane: no scratch disk"
mkdir -p $R/scratch/tmp $R/scratch/varlib $R/scratch/rootfs-cache && chmod 1777 $R/scratch/tmp
mount --bind $R/scratch/varlib $R/var/lib
cache=$(arg rootfs_cache)
[ -z "$cache" ] || mount --bind $R/scratch/rootfs-cache "$R$cache"
mount -t tmpfs -o mode=755 run $R/run
mount --move /proc $R/proc && mount --move /sys $R/sys && mount --move /dev $R/dev
if [ "$(arg init)" = systemd ]; then
  mkdir -p $R/run/systemd/system
  cat >$R/run/systemd/system/stockade-lane.target <<UNIT
[Unit]
Description=Stockade VM lane
Requires=stockade-lane.service
AllowIsolate=yes
UNIT
  cat >$R/run/systemd/system/stockade-lane.service <<UNIT
[Unit]
Description=Stockade VM lane tests
Wants=dbus.service
After=dbus.service basic.target
[Service]
Type=oneshot
Environment=HOME=/root TMPDIR=/scratch/tmp PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ExecStart=/bin/sh -c '/bin/bash /lane-out/lane.sh; echo "VM-EXIT \$\$?"; sync; echo o >/proc/sysrq-trigger'
StandardOutput=tty
StandardError=tty
TTYPath=/dev/console
UNIT
  exec switch_root $R /lib/systemd/systemd
fi
exec switch_root $R /bin/sh -c '
  export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/scratch/tmp
  mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
  for c in $(cat /sys/fs/cgroup/cgroup.controllers); do echo +$c >/sys/fs/cgroup/cgroup.subtree_control; done
  mkdir -p /dev/pts /dev/shm /dev/mqueue
  mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts && ln -sf pts/ptmx /dev/ptmx
  mount -t tmpfs shm /dev/shm; mount -t mqueue mqueue /dev/mqueue
  mount -t securityfs securityfs /sys/kernel/security; mount -t bpf bpf /sys/fs/bpf
  ip link set lo up
  bash /lane-out/lane.sh; echo "VM-EXIT $?"; sync; echo o >/proc/sysrq-trigger
  while :; do sleep 1 2>/dev/null; done'
INIT
}

# The newest built test executable of integration-tests/tests/NAME.rs.
test_binary() {
  local name=$1 bin
  bin=$(find "$TARGET/debug/deps" -maxdepth 1 -type f -executable -regex ".*/${name}-[0-9a-f]+" \
    -printf '%T@ %p\n' 2>/dev/null | sort -rn | head -1 | cut -d' ' -f2-)
  [ -n "$bin" ] || die "no built test binary for $name: cargo test -p stockade-integration-tests --test $name --no-run"
  echo "$bin"
}

# Writes the script the VM runs: one libtest invocation per selection.
write_lane_script() {
  local out=$1
  shift
  {
    echo '#!/bin/bash'
    echo "# generated by scripts/vm-lane.sh $(date -u +%FT%TZ)"
    echo "export STOCKADE_TEST_CGROUP_PARENT=${STOCKADE_TEST_CGROUP_PARENT:-stockade-vm-lane}"
    # The harness's other settings (e.g. STOCKADE_TEST_RUNTIME) pass through as set.
    local var
    for var in $(compgen -e | grep '^STOCKADE_' | grep -v '^STOCKADE_TEST_CGROUP_PARENT$'); do
      printf 'export %s=%q\n' "$var" "${!var}"
    done
    echo "export RUST_BACKTRACE=1"
    echo "cd /"
    echo 'echo "VM-UP $(cut -d" " -f1 /proc/uptime)s kernel $(uname -r) pid1 $(cat /proc/1/comm)"'
    echo 'echo "cgroup: $(stat -fc %T /sys/fs/cgroup) controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || ls /sys/fs/cgroup)"'
    echo 'failed=0'
    # A selection that hangs is reported, with what every process waits on and
    # who holds which file lock, then killed: the boot goes on with the next
    # selection instead of dying silently at VM_TIMEOUT.
    cat <<'LANE_FUNCS'
hang_report() {
  echo "LANE HUNG $1: no result after $2 s; processes, kernel stacks, file locks:"
  ps -eo pid,ppid,stat,etimes,wchan:28,args --forest | grep -v ' \[.*\]$'
  local p
  for p in $(pgrep -f 'stockade|containerd|ctr |runc|crun'); do
    [ -r /proc/$p/cmdline ] || continue
    echo "--- $p $(tr '\0' ' ' </proc/$p/cmdline | cut -c1-200)"
    cat /proc/$p/stack 2>/dev/null
  done
  echo "--- /proc/locks"; cat /proc/locks
  # The tests' containerds (ours, in this VM) log their goroutines on SIGUSR1.
  for p in $(pgrep -x containerd); do kill -USR1 $p; done
  sleep 2
  local log
  for log in /scratch/tmp/*/containerd.log; do
    [ -f "$log" ] && { echo "--- $log (last 300 lines)"; tail -n 300 "$log"; }
  done
}
# run_selection SELECTION LIMIT CMD...: CMD's output streams to the console.
run_selection() {
  local sel=$1 limit=$2 waited=0; shift 2
  "$@" >/scratch/tmp/selection.log 2>&1 &
  local pid=$!
  tail -n +1 -f --pid=$pid /scratch/tmp/selection.log &
  local tailer=$!
  while kill -0 $pid 2>/dev/null; do
    if ((waited >= limit)); then
      hang_report "$sel" "$limit"
      kill -KILL $pid
      break
    fi
    sleep 1; waited=$((waited + 1))
  done
  wait $pid; local rc=$?
  wait $tailer
  return $rc
}
LANE_FUNCS
    local sel file filter bin exact
    for sel in "$@"; do
      file=${sel%%::*}
      filter=
      exact=
      [ "$file" = "$sel" ] || filter=${sel#*::}
      if [ "${filter%::exact}" != "$filter" ]; then filter=${filter%::exact}; exact=--exact; fi
      bin=$(test_binary "$file")
      printf 'echo "LANE START %s"; start=$(date +%%s)\n' "$sel"
      # A selection that matches no test is a failure, not a silent pass.
      printf 'run_selection %q %s %q --test-threads=%s %s %q\n' \
        "$sel" "${VM_SELECTION_TIMEOUT:-300}" "$bin" "${VM_TEST_THREADS:-2}" "$exact" "$filter"
      printf 'if [ $? = 0 ] && ! grep -q "^running 0 tests" /scratch/tmp/selection.log; then r=PASS; else r=FAIL; failed=1; fi\n'
      printf 'echo "LANE $r %s ($(( $(date +%%s) - start ))s)"\n' "$sel"
    done
    echo 'exit $failed'
  } >"$out"
}

run() {
  local systemd=0 cgroup=v2
  case ${1:-} in
    --systemd) systemd=1; shift ;;
    --systemd-v1) systemd=1; cgroup=v1; shift ;;
  esac
  local selections=("$@")
  if ((${#selections[@]} == 0)); then
    if ((!systemd)); then selections=("${DEFAULT_V2[@]}")
    elif [ $cgroup = v1 ]; then selections=("${DEFAULT_SYSTEMD_V1[@]}")
    else selections=("${DEFAULT_SYSTEMD[@]}"); fi
  fi
  local kdir
  kdir=$(kernel_dir)
  [ -f "$VM_DIR/initramfs.gz" ] && [ -d "$kdir/boot" ] || die "not set up: scripts/vm-lane.sh setup"
  [ -x "$TARGET/debug/stockade" ] || die "build first: cargo build --workspace --bins"

  local init=shell boot_args="" cgroup_args="cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
  if ((systemd)); then
    init=systemd
    boot_args="systemd.unit=stockade-lane.target systemd.show_status=error"
  fi
  if [ $cgroup = v1 ]; then
    # systemd mounts the hybrid layout (systemd >= 256 also wants
    # SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1 on the command line; bookworm has 252).
    cgroup_args="systemd.unified_cgroup_hierarchy=0 SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1"
    init=systemd-v1
  fi
  # One directory per boot, so several checkouts can share VM_DIR.
  local out
  out=${VM_OUT:-$VM_DIR/out/$(date -u +%Y%m%dT%H%M%S)-$init-$$}
  mkdir -p "$out"
  write_lane_script "$out/lane.sh" "${selections[@]}"
  # The harness builds its template rootfs under target/; inside, that directory is
  # a bind of scratch space over the read-only share.
  mkdir -p "$TARGET/stockade-test-rootfs"

  local img=$VM_DIR/scratch-$init-$$.img
  trap "rm -f '$img'" EXIT
  truncate -s "${VM_DISK:-8G}" "$img"
  mkfs.ext4 -q -F -E lazy_itable_init=1 "$img"
  local ro="usr:/usr,etc:/etc,repo:$REPO" shares=(
    -virtfs "local,path=/usr,mount_tag=usr,security_model=none,readonly=on"
    -virtfs "local,path=/etc,mount_tag=etc,security_model=none,readonly=on"
    -virtfs "local,path=$REPO,mount_tag=repo,security_model=none,readonly=on"
    -virtfs "local,path=$out,mount_tag=out,security_model=none"
  )
  case $TARGET in
    "$REPO"/*) ;;
    *) ro+=",target:$TARGET"
       shares+=(-virtfs "local,path=$TARGET,mount_tag=target,security_model=none,readonly=on") ;;
  esac
  log "booting ($init as PID 1): ${selections[*]}"
  local rc=0
  timeout --foreground -k 10 "${VM_TIMEOUT:-900}" \
    qemu-system-x86_64 -accel tcg -cpu max -m "${VM_MEM:-2G}" -smp "${VM_SMP:-2}" \
    -nographic -no-reboot \
    -kernel "$(ls "$kdir"/boot/vmlinuz-*)" -initrd "$VM_DIR/initramfs.gz" \
    -append "console=ttyS0 loglevel=4 panic=-1 edd=off $cgroup_args lane.ro=$ro lane.rootfs_cache=$TARGET/stockade-test-rootfs lane.init=${init%-v1} $boot_args" \
    "${shares[@]}" \
    -drive "file=$img,if=virtio,format=raw,cache=unsafe" -device virtio-rng-pci \
    </dev/null | tee "$out/console.log" || rc=$?
  rm -f "$img"
  ((rc == 0)) || log "qemu exited with $rc (124: timed out after ${VM_TIMEOUT:-900}s)"
  local vm_rc
  vm_rc=$(sed -n 's/^VM-EXIT \([0-9]*\).*/\1/p' "$out/console.log" | tail -1)
  grep -a '^LANE \(PASS\|FAIL\)' "$out/console.log" >&2 || true
  [ -n "$vm_rc" ] || die "the VM never reported an exit status (see $out/console.log)"
  return "$vm_rc"
}

ci() {
  setup
  local rc=0
  run || rc=1
  run --systemd || rc=1
  run --systemd-v1 || rc=1
  return $rc
}

case ${1:-} in
  setup) setup ;;
  run) shift; run "$@" ;;
  ci) ci ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
