#!/usr/bin/env bash
# Starts or stops a rootless Podman API service for tests and by-hand
# reproduction, with the same start/stop contract as podman-service.sh.
# Run as root: start creates a dedicated unprivileged user (USER, default
# srrootless) unless it exists, gives it a subordinate id range in
# /etc/subuid and /etc/subgid, and runs `podman system service` as that user
# with everything under DIR (which it then owns):
#   DIR/home             the user's HOME
#   DIR/run              its XDG_RUNTIME_DIR; the socket is DIR/run/podman/podman.sock
#   DIR/storage, runroot vfs storage
#   DIR/*.conf           named by CONTAINERS_CONF, CONTAINERS_STORAGE_CONF,
#                        CONTAINERS_REGISTRIES_CONF: nothing of the user's own is read
# The service runs in a network and pid namespace of its own (unshare), as
# the rootful one does: only lo, so slirp4netns gives containers no way out;
# when the namespace's init ends, every process of the service goes with it.
# stop ends it, removes DIR, and removes the user and the id ranges that
# start added (a user that existed before is kept).
#
# SIBLING_RUN_ROOTLESS_NETWORK_CMD sets containers.conf's network_cmd_path
# (slirp4netns's path): a missing one reproduces an engine network failure.
#
# Usage: scripts/podman-rootless-service.sh start DIR [USER]  (prints DOCKER_HOST's value)
#        scripts/podman-rootless-service.sh stop DIR
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=namespaced-service.sh
. "$(dirname "$0")/namespaced-service.sh"

usage() {
  echo "usage: $0 start DIR [USER] | stop DIR" >&2
  exit 2
}
[ $# -ge 2 ] || usage
action=$1
dir=$2
user=${3:-srrootless}
# For a user that has no range yet: far above the ranges useradd hands out
# (100000 + 65536 n), so that it never collides with a real user's.
subid_start=2100000000
subid_count=65536

start() {
  [ "$(id -u)" = 0 ] || { echo "podman-rootless-service.sh: run as root (it creates the test user)" >&2; exit 1; }
  for cmd in podman catatonit conmon newuidmap newgidmap slirp4netns unshare runuser; do
    command -v "$cmd" >/dev/null || { echo "podman-rootless-service.sh: $cmd is missing: apt-get install podman catatonit uidmap slirp4netns" >&2; exit 1; }
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ ! -e "$dir/pid" ] || { echo "podman-rootless-service.sh: $dir/pid exists: a service may be running; stop it first" >&2; exit 1; }
  : >"$dir/created"
  # Before useradd, which makes both files (with a range of its choosing)
  # where login.defs says so; userdel then removes that range.
  for f in /etc/subuid /etc/subgid; do
    [ -e "$f" ] || { : >"$f"; echo "file $f" >>"$dir/created"; }
  done
  if ! id -u "$user" >/dev/null 2>&1; then
    useradd --no-create-home --home-dir "$dir/home" --shell /usr/sbin/nologin --user-group "$user"
    echo "user $user" >>"$dir/created"
  fi
  if ! grep -q "^$user:" /etc/subuid; then
    usermod --add-subuids "$subid_start-$((subid_start + subid_count - 1))" "$user"
    echo "subuid $user" >>"$dir/created"
  fi
  if ! grep -q "^$user:" /etc/subgid; then
    usermod --add-subgids "$subid_start-$((subid_start + subid_count - 1))" "$user"
    echo "subgid $user" >>"$dir/created"
  fi
  mkdir -p "$dir/home" "$dir/run/podman" "$dir/storage" "$dir/runroot" "$dir/libpod" "$dir/tmp" "$dir/networks"
  chmod 0700 "$dir/run"

  netcmd=""
  if [ -n "${SIBLING_RUN_ROOTLESS_NETWORK_CMD:-}" ]; then
    netcmd="network_cmd_path = \"$SIBLING_RUN_ROOTLESS_NETWORK_CMD\""
  fi
  nofile=$(ulimit -Hn)
  [ "$nofile" != unlimited ] || nofile=1048576
  cat >"$dir/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/libpod/events.log"
runtime = "runc"
tmp_dir = "$dir/libpod"
$netcmd

[network]
network_config_dir = "$dir/networks"
EOF
  cat >"$dir/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$dir/storage"
runroot = "$dir/runroot"
EOF
  printf 'unqualified-search-registries = []\n' >"$dir/registries.conf"
  chown -R "$user:" "$dir"

  cd "$dir"
  # The namespaces are made as root, then runuser drops to the user, whose
  # Podman makes its own user namespace from the subordinate ranges.
  # shellcheck disable=SC2016 # $1 and $2 are the inner shell's
  setsid unshare --net --pid --fork --mount-proc --propagation unchanged --kill-child \
    catatonit -- /bin/sh -c '
      set -e
      ip link set lo up
      exec runuser -u "$2" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        HOME="$1/home" USER="$2" XDG_RUNTIME_DIR="$1/run" TMPDIR="$1/tmp" \
        CONTAINERS_CONF="$1/containers.conf" \
        CONTAINERS_STORAGE_CONF="$1/storage.conf" \
        CONTAINERS_REGISTRIES_CONF="$1/registries.conf" \
        podman system service --time=0 "unix://$1/run/podman/podman.sock"
    ' sh "$dir" "$user" </dev/null >"$dir/service.log" 2>&1 &
  echo $! >"$dir/pid"

  sock="$dir/run/podman/podman.sock"
  for _ in $(seq 1 150); do
    if [ -S "$sock" ] && podman --url "unix://$sock" version >/dev/null 2>&1; then
      echo "unix://$sock"
      return 0
    fi
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "podman-rootless-service.sh: the service did not answer on $sock; its log:" >&2
  cat "$dir/service.log" >&2 || true
  stop
  exit 1
}

stop() {
  [ -d "$dir" ] || return 0
  # Every process in the namespace goes with it: conmon, the pause
  # process, the containers.
  end_service "$dir"
  # Files the user's namespace made belong to subordinate ids; root removes
  # them all the same.
  if [ -f "$dir/created" ]; then
    while read -r kind what; do
      case "$kind" in
        subuid) usermod --del-subuids "$subid_start-$((subid_start + subid_count - 1))" "$what" 2>/dev/null || true ;;
        subgid) usermod --del-subgids "$subid_start-$((subid_start + subid_count - 1))" "$what" 2>/dev/null || true ;;
      esac
    done <"$dir/created"
    while read -r kind what; do
      case "$kind" in
        user) userdel "$what" 2>/dev/null || echo "podman-rootless-service.sh: could not remove user $what" >&2 ;;
      esac
    done <"$dir/created"
    # Last, once userdel has taken the user's range out: the files and
    # the backups (FILE-) that the shadow tools wrote beside them.
    while read -r kind what; do
      [ "$kind" = file ] || continue
      [ -s "$what" ] || rm -f "$what" "$what-"
    done <"$dir/created"
  fi
  rm -rf "$dir"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
