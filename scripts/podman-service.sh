#!/usr/bin/env bash
# Starts or stops a Podman API service of the tests' own, for the integration
# tests' second engine. Everything it uses lives under DIR: the storage (vfs),
# the configuration (named by CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and
# CONTAINERS_REGISTRIES_CONF, so nothing system-wide is read or changed), the
# socket DIR/podman.sock, and the log DIR/service.log.
#
# The service runs in namespaces of its own (unshare):
#   - network: only lo, up; it cannot touch the host's interfaces or firewall,
#     nor the Docker engine's networks;
#   - mount: tmpfs over /run, /dev/shm and /var/lib/cni, where rootful Podman,
#     runc and the CNI plugins keep their state, so none of it reaches the host;
#   - pid: catatonit is its init; when it ends, the kernel ends every process
#     in it (conmon, the containers), so stop leaves nothing running.
# The socket is a file under DIR, which the host reaches across namespaces.
#
# Usage: scripts/podman-service.sh start DIR   (prints DOCKER_HOST's value)
#        scripts/podman-service.sh stop DIR    (ends the service, removes DIR)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=namespaced-service.sh
. "$(dirname "$0")/namespaced-service.sh"

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}
[ $# = 2 ] || usage
action=$1
dir=$2

# cgroupfs makes this parent in each cgroup v1 hierarchy (or once in v2);
# stop removes the ones that start found missing.
cgroup_parents() { cgroup_dirs_named libpod_parent; }

start() {
  [ "$(id -u)" = 0 ] || { echo "podman-service.sh: run as root (a rootful service, like an agent host's)" >&2; exit 1; }
  for cmd in podman catatonit conmon runc unshare ip; do
    command -v "$cmd" >/dev/null || { echo "podman-service.sh: $cmd is missing: apt-get install podman catatonit" >&2; exit 1; }
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ ! -e "$dir/pid" ] || { echo "podman-service.sh: $dir/pid exists: a service may be running; stop it first" >&2; exit 1; }
  mkdir -p "$dir/storage" "$dir/runroot" "$dir/libpod" "$dir/networks" "$dir/tmp"

  # Podman's containers inherit these limits; the engine's defaults exceed
  # this machine's hard limits, and the runtime then refuses to start them.
  nofile=$(ulimit -Hn)
  [ "$nofile" != unlimited ] || nofile=1048576
  cat >"$dir/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/libpod/events.log"
runtime = "runc"
tmp_dir = "$dir/libpod"

[network]
network_config_dir = "$dir/networks"
EOF
  cat >"$dir/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$dir/storage"
runroot = "$dir/runroot"
EOF
  # No registry: the tests build every image FROM scratch.
  printf 'unqualified-search-registries = []\n' >"$dir/registries.conf"

  # Mount points that must exist on the host for the private tmpfs; what
  # start creates, stop removes.
  : >"$dir/created"
  for path in /var/lib/cni $(cgroup_parents); do
    [ -e "$path" ] || echo "$path" >>"$dir/created"
  done
  [ -e /var/lib/cni ] || mkdir /var/lib/cni

  # No --log-level debug: conmon's cleanup then logs to syslog, which this
  # machine lacks, and the exits of containers are never recorded.
  # The service runs in DIR: conmon writes files into its working directory
  # (an "oom" file when the kernel kills a container for memory).
  cd "$dir"
  # shellcheck disable=SC2016 # $1 is the inner shell's
  CONTAINERS_CONF="$dir/containers.conf" \
    CONTAINERS_STORAGE_CONF="$dir/storage.conf" \
    CONTAINERS_REGISTRIES_CONF="$dir/registries.conf" \
    TMPDIR="$dir/tmp" \
    setsid unshare --net --mount --pid --fork --mount-proc --kill-child \
    catatonit -- /bin/sh -c '
      set -e
      ip link set lo up
      mount -t tmpfs -o mode=0755 tmpfs /run
      mount -t tmpfs -o mode=1777 tmpfs /dev/shm
      mount -t tmpfs -o mode=0755 tmpfs /var/lib/cni
      exec podman system service --time=0 "unix://$1/podman.sock"
    ' sh "$dir" </dev/null >"$dir/service.log" 2>&1 &
  echo $! >"$dir/pid"

  for _ in $(seq 1 100); do
    if [ -S "$dir/podman.sock" ] && podman --url "unix://$dir/podman.sock" version >/dev/null 2>&1; then
      # The service makes its socket 0600; podman.socket's SocketMode makes
      # it 0660, which a non-root build given the engine (--docker) needs.
      chmod 660 "$dir/podman.sock"
      echo "unix://$dir/podman.sock"
      return 0
    fi
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "podman-service.sh: the service did not answer on $dir/podman.sock; its log:" >&2
  cat "$dir/service.log" >&2 || true
  stop
  exit 1
}

stop() {
  [ -d "$dir" ] || return 0
  end_service "$dir"
  # The cgroups of the containers the service still had (cgroupfs names
  # them libpod-<id>), and the mount points start made.
  leftover=()
  if [ -d "$dir/storage/vfs-containers" ]; then
    for entry in "$dir"/storage/vfs-containers/*; do
      id=$(basename "$entry")
      [[ $id =~ ^[0-9a-f]{64}$ ]] || continue
      for parent in $(cgroup_parents); do
        [ ! -d "$parent/libpod-$id" ] || leftover+=("$parent/libpod-$id")
      done
    done
  fi
  if [ -f "$dir/created" ]; then
    while read -r path; do leftover+=("$path"); done <"$dir/created"
  fi
  remove_trees "${leftover[@]}"
  rm -rf "$dir"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
