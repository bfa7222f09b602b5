#!/usr/bin/env bash
# Installs Stockade on the node whose root filesystem is mounted at $HOST_ROOT, or
# removes it again. Run by the `stockade-deploy` DaemonSet (deploy/stockade-deploy.yaml),
# or by hand on a node (HOST_ROOT=/).
#
#   stockade-node-install.sh install     binaries, profiles, node config, shim options,
#                                        containerd runtime handlers; restart containerd;
#                                        label the node
#   stockade-node-install.sh uninstall   exactly reverses `install`
#   stockade-node-install.sh run         install, then wait for SIGTERM (the DaemonSet's
#                                        container; its preStop hook runs uninstall)
#
# Environment:
#   HOST_ROOT        the node's / (default /host, the DaemonSet's hostPath mount)
#   ARTIFACTS        dir holding bin/stockade, bin/containerd-shim-stockade-v2 and
#                    profiles/ (default: /opt/stockade-artifacts)
#   PROFILES_SRC     profiles to install (default $ARTIFACTS/profiles; the DaemonSet
#                    mounts the stockade-profiles ConfigMap here instead)
#   NODE_NAME        node to label (the DaemonSet passes spec.nodeName); unset: no label
#   NODE_LABEL       label set on install, removed on uninstall
#                    (default org.stockade/runtime=installed)
#   RESTART_CONTAINERD  command that restarts the node's containerd (default: systemctl
#                    in the host's namespaces through nsenter -t 1; the DaemonSet has
#                    hostPID). Empty: do not restart.
#   KUBECTL          kubectl binary (default kubectl on PATH)
#   KUBELET_ROOT_DIR the kubelet's --root-dir, for the node config's [paths]
#                    (default /var/lib/kubelet; containerd's root and state are read
#                    from its config.toml)
#   METRICS_FILE     the Prometheus text file the runtime keeps for node_exporter's
#                    textfile collector, for the node config's [audit] metrics
#                    (default /var/lib/node_exporter/textfile_collector/stockade.prom;
#                    point node_exporter's --collector.textfile.directory at its dir).
#                    Empty: no metrics. The audit log is /var/log/stockade/audit.jsonl.
#
# What it changes, and how uninstall puts it back:
# - Files it installs are listed in $HOST_ROOT/var/lib/stockade/deploy/installed; a file
#   that existed before is saved under .../deploy/saved/ first and restored on uninstall.
# - containerd's config: containerd 1.x merges an imported file's plugin section by
#   *replacing* the main file's section (containerd#5837), so a drop-in that names the
#   CRI plugin would silently drop the operator's CRI settings. The runtime handlers are
#   therefore appended to config.toml itself, between "# BEGIN stockade" and
#   "# END stockade" markers (TOML lets a later table extend the CRI plugin's table),
#   in the syntax of the file's `version` (2: containerd 1.6/1.7, 3: containerd 2.x).
#   The original file is saved and restored byte for byte.
# - The existing /etc/stockade/config.toml of an operator is never overwritten.
set -euo pipefail

HOST_ROOT=${HOST_ROOT:-/host}
ARTIFACTS=${ARTIFACTS:-/opt/stockade-artifacts}
PROFILES_SRC=${PROFILES_SRC:-$ARTIFACTS/profiles}
NODE_LABEL=${NODE_LABEL:-org.stockade/runtime=installed}
KUBECTL=${KUBECTL:-kubectl}
DEFAULT_RESTART="nsenter -t 1 -m -u -i -n -p -- systemctl restart containerd"
RESTART_CONTAINERD=${RESTART_CONTAINERD-$DEFAULT_RESTART}
METRICS_FILE=${METRICS_FILE-/var/lib/node_exporter/textfile_collector/stockade.prom}

# One handler per shipped profile: runtime handler name -> profile.
HANDLERS=(stockade:default stockade-baseline:baseline stockade-restricted:restricted
  stockade-unconfined:unconfined)

STATE=/var/lib/stockade/deploy          # host path of the installer's own records
CONTAINERD_CONFIG=/etc/containerd/config.toml

die() { echo "stockade-node-install: $*" >&2; exit 1; }
say() { echo "stockade-node-install: $*"; }
host() { printf '%s%s' "${HOST_ROOT%/}" "$1"; }

# Creates host directory $1 and the parents it lacks, recording each one it made, so
# uninstall removes exactly those.
mkdirs() {
  local d=$1 missing=()
  while [ ! -d "$(host "$d")" ]; do
    missing=("$d" "${missing[@]}")
    d=$(dirname "$d")
  done
  for d in "${missing[@]}"; do
    mkdir "$(host "$d")"
    echo "dir:$d" >> "$(host "$STATE/installed")"
  done
}

# Records that host path $1 is ours; saves what was there before, once.
claim() {
  local p=$1 rec
  rec=$(host "$STATE/installed")
  grep -qxF "$p" "$rec" 2>/dev/null && return 0
  mkdirs "$(dirname "$p")"
  if [ -e "$(host "$p")" ]; then
    mkdir -p "$(dirname "$(host "$STATE/saved$p")")"
    cp -a "$(host "$p")" "$(host "$STATE/saved$p")"
  fi
  echo "$p" >> "$rec"
}

# Installs file $1 at host path $2 with mode $3, atomically (a running containerd or
# kubelet never sees half a binary).
put() {
  local src=$1 p=$2 mode=$3 dst
  dst=$(host "$p")
  claim "$p"
  cp "$src" "$dst.stockade-tmp"
  chmod "$mode" "$dst.stockade-tmp"
  mv -f "$dst.stockade-tmp" "$dst"
}

# Like put, from standard input.
put_text() {
  local tmp
  tmp=$(mktemp)
  cat > "$tmp"
  put "$tmp" "$1" "$2"
  rm -f "$tmp"
}

config_version() {
  local f
  f=$(host "$CONTAINERD_CONFIG")
  [ -f "$f" ] || { echo 2; return; }
  sed -n 's/^[[:space:]]*version[[:space:]]*=[[:space:]]*\([0-9]\+\).*/\1/p' "$f" | head -1 | grep . || echo 1
}

# The runtime-handler tables for config version $1.
handler_block() {
  local plugin h name profile
  case $1 in
    2) plugin='plugins."io.containerd.grpc.v1.cri".containerd.runtimes' ;;
    3) plugin='plugins."io.containerd.cri.v1.runtime".containerd.runtimes' ;;
  esac
  echo "# BEGIN stockade (added by stockade-node-install.sh; uninstall removes it)"
  for h in "${HANDLERS[@]}"; do
    name=${h%%:*} profile=${h#*:}
    cat <<EOF
[$plugin.$name]
  runtime_type = "io.containerd.stockade.v2"
  # Stockade's profile and Landlock annotations reach the runtime.
  pod_annotations = ["org.stockade.*"]
  [$plugin.$name.options]
    ConfigPath = "/etc/containerd/stockade-$profile.toml"
EOF
  done
  echo "# END stockade"
}

# A config.toml for a node that has none (containerd ran on built-in defaults): the
# CRI plugin stays enabled and runc stays the default runtime. With the handlers added,
# this is byte for byte the shipped deploy/containerd/config-v2.toml.
default_containerd_config() {
  cat <<'EOF'
# containerd 1.6/1.7 (and 2.x): /etc/containerd/config.toml with Stockade's handlers,
# as stockade-node-install.sh writes it on a node without one (shipped as
# deploy/containerd/config-v2.toml, generated by scripts/gen-containerd-configs.sh).
version = 2

[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
EOF
}

# containerd's config without our block (what install found, or what a re-install
# starts from).
config_without_ours() {
  local f
  f=$(host "$CONTAINERD_CONFIG")
  if [ -f "$f" ]; then
    sed '/^# BEGIN stockade/,/^# END stockade/d' "$f"
  else
    default_containerd_config
  fi
}

# Refuses, before anything is changed, a config the handlers cannot be added to.
check_containerd_config() {
  local version
  version=$(config_version)
  case $version in
    2|3) ;;
    *) die "$CONTAINERD_CONFIG has config version $version; Stockade's handlers need version 2 (containerd 1.6/1.7) or 3 (2.x): migrate it with 'containerd config migrate'" ;;
  esac
  if config_without_ours | grep -q 'runtimes\.stockade[]."-]'; then
    die "$CONTAINERD_CONFIG already defines a stockade runtime handler outside our markers; remove it first"
  fi
}

install_containerd_handlers() {
  local version tmp
  version=$(config_version)
  claim "$CONTAINERD_CONFIG"
  tmp=$(mktemp)
  config_without_ours > "$tmp"
  [ -z "$(tail -c1 "$tmp")" ] || echo >> "$tmp"
  handler_block "$version" >> "$tmp"
  put "$tmp" "$CONTAINERD_CONFIG" 0644
  rm -f "$tmp"
}

# Options of runtime handler $1 (profile $2): the handler's name reaches the runtime,
# so a node config's [[handler]] mapping applies to it.
shim_options() {
  cat <<EOF
# Options of the containerd runtime handler "$1" (Stockade profile "$2"),
# installed by stockade-node-install.sh.
binary_name = "/usr/local/bin/stockade"
root = "/run/containerd/stockade"
config = "/etc/stockade/config.toml"
handler = "$1"
profile = "$2"
EOF
}

# Top-level string key $1 of the host's containerd config (before its first table),
# or $2 when it is not set there.
containerd_top_key() {
  local f v=
  f=$(host "$CONTAINERD_CONFIG")
  [ -f "$f" ] && v=$(sed -n -e '/^[[:space:]]*\[/q' \
    -e "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\([^\"]*\)\".*/\1/p" "$f" | head -1)
  printf '%s' "${v:-$2}"
}

node_config() {
  cat <<'EOF'
# Stockade node config (installed by stockade-node-install.sh; an existing one is kept).
schema = 1
profiles_dir = "/etc/stockade/profiles"
default_profile = "default"
annotation_allowed = ["restricted"]

# This node's directories, which the profiles name as ${containerd_root} etc.:
# containerd's root and state from its config.toml, the kubelet's --root-dir from
# KUBELET_ROOT_DIR (default /var/lib/kubelet).
[paths]
EOF
  echo "containerd_root = \"$(containerd_top_key root /var/lib/containerd)\""
  echo "containerd_state = \"$(containerd_top_key state /run/containerd)\""
  echo "kubelet_root = \"${KUBELET_ROOT_DIR:-/var/lib/kubelet}\""
  echo
  echo "# Every decision goes to /var/log/stockade/audit.jsonl (the default log); the"
  if [ -n "$METRICS_FILE" ]; then
    echo "# metrics file is for node_exporter's textfile collector (METRICS_FILE)."
    echo "[audit]"
    echo "metrics = \"$METRICS_FILE\""
  else
    echo "# installer was told to keep no metrics file (METRICS_FILE empty)."
  fi
}

restart_containerd() {
  if [ -z "$RESTART_CONTAINERD" ]; then
    say "not restarting containerd (RESTART_CONTAINERD is empty)"
    return
  fi
  say "restarting containerd: $RESTART_CONTAINERD"
  sh -c "$RESTART_CONTAINERD" || die "restarting containerd failed: $RESTART_CONTAINERD"
}

label_node() {
  [ -n "${NODE_NAME:-}" ] || { say "NODE_NAME unset: node not labelled"; return; }
  "$KUBECTL" label node "$NODE_NAME" "$@" --overwrite >/dev/null \
    || die "kubectl label node $NODE_NAME $* failed"
}

do_install() {
  local f p h
  [ -d "$HOST_ROOT" ] || die "HOST_ROOT $HOST_ROOT is not a directory"
  for f in bin/stockade bin/containerd-shim-stockade-v2; do
    [ -x "$ARTIFACTS/$f" ] || die "missing artifact $ARTIFACTS/$f"
  done
  ls "$PROFILES_SRC"/*.toml >/dev/null 2>&1 || die "no profiles (*.toml) in $PROFILES_SRC"
  check_containerd_config
  if [ ! -f "$(host "$STATE/installed")" ]; then
    # The record lives inside the directories it records: list them once it exists.
    local made=() d=$STATE
    while [ ! -d "$(host "$d")" ]; do made=("$d" "${made[@]}"); d=$(dirname "$d"); done
    mkdir -p "$(host "$STATE")"
    for d in "${made[@]}"; do echo "dir:$d"; done > "$(host "$STATE/installed")"
  fi

  put "$ARTIFACTS/bin/stockade" /usr/local/bin/stockade 0755
  put "$ARTIFACTS/bin/containerd-shim-stockade-v2" /usr/local/bin/containerd-shim-stockade-v2 0755
  # ConfigMap keys cannot hold '/': seccomp data arrives as seccomp--NAME.toml.
  for f in "$PROFILES_SRC"/*.toml; do
    p=$(basename "$f")
    case $p in
      seccomp--*) put "$f" "/etc/stockade/profiles/seccomp/${p#seccomp--}" 0644 ;;
      *) put "$f" "/etc/stockade/profiles/$p" 0644 ;;
    esac
  done
  if [ -d "$PROFILES_SRC/seccomp" ]; then
    for f in "$PROFILES_SRC"/seccomp/*.toml; do
      put "$f" "/etc/stockade/profiles/seccomp/$(basename "$f")" 0644
    done
  fi
  if [ -e "$(host /etc/stockade/config.toml)" ] \
    && ! grep -qxF /etc/stockade/config.toml "$(host "$STATE/installed")"; then
    say "keeping the existing /etc/stockade/config.toml"
  else
    node_config | put_text /etc/stockade/config.toml 0644
  fi
  for h in "${HANDLERS[@]}"; do
    shim_options "${h%%:*}" "${h#*:}" | put_text "/etc/containerd/stockade-${h#*:}.toml" 0644
  done
  install_containerd_handlers
  restart_containerd
  label_node "$NODE_LABEL"
  say "installed into $HOST_ROOT"
}

# True when directory $1 is the record dir or one of its parents.
holds_state() { [ "$STATE" = "$1" ] || [ "${STATE#"$1"/}" != "$STATE" ]; }

do_uninstall() {
  local rec p entries=()
  rec=$(host "$STATE/installed")
  if [ ! -f "$rec" ]; then
    say "nothing installed in $HOST_ROOT"
  else
    mapfile -t entries < <(tac "$rec")
    # Newest first: files are put back (or removed) before the directories made for
    # them are looked at; a directory that holds anything else stays.
    for p in "${entries[@]}"; do
      case $p in
        dir:*) holds_state "${p#dir:}" || rmdir "$(host "${p#dir:}")" 2>/dev/null || true ;;
        *)
          if [ -e "$(host "$STATE/saved$p")" ]; then
            mv -f "$(host "$STATE/saved$p")" "$(host "$p")"
          else
            rm -f "$(host "$p")"
          fi
          ;;
      esac
    done
    rm -rf "$(host "$STATE/saved")"
    rm -f "$rec"
    for p in "${entries[@]}"; do
      case $p in
        dir:*) ! holds_state "${p#dir:}" || rmdir "$(host "${p#dir:}")" 2>/dev/null || true ;;
      esac
    done
    restart_containerd
  fi
  label_node "${NODE_LABEL%%=*}-"
  say "uninstalled from $HOST_ROOT"
}

case ${1:-} in
  install) do_install ;;
  uninstall) do_uninstall ;;
  run)
    do_install
    trap 'exit 0' TERM INT
    sleep infinity &
    wait
    ;;
  *) echo "usage: $0 install|uninstall|run" >&2; exit 2 ;;
esac
