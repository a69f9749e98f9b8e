#!/usr/bin/env bash
# Starts or stops a Docker Engine 29 of the tests' own, for the integration
# tests' third engine: API 1.56, volume subpaths, the engine Bamboo admins
# run today beside the machine's 20.10. No registry is needed: its daemon
# and a runc new enough for it are built from Go modules, once, into a cache
# directory (build), and containerd is Debian's.
#
# The daemon runs in namespaces of its own (unshare), as podman-service.sh's:
#   - network: only lo, up, until dockerd adds its bridge; its bridge and
#     firewall rules never reach the host's, nor the main engine's;
#   - mount: tmpfs over /run, where dockerd, containerd and runc keep state
#     outside the exec root; everything else is the host's view, so a bind
#     of a host path means the same directory as for the main engine;
#   - pid: catatonit is its init; when it ends, every process in it ends.
# Its data root, exec root, configuration and socket live under DIR; its
# containers' cgroups under a parent named after DIR, removed by stop.
#
# Usage: scripts/docker29-service.sh build        (prints the binaries' directory)
#        scripts/docker29-service.sh start DIR    (prints DOCKER_HOST's value)
#        scripts/docker29-service.sh stop DIR     (ends the daemon, removes DIR)
#        scripts/docker29-service.sh netns DIR    (prints the daemon's network namespace)
# SIBLING_RUN_ENGINE_CACHE is where the built binaries are kept (default
# ~/.cache/sibling-run/engines).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=namespaced-service.sh
. "$(dirname "$0")/namespaced-service.sh"

dockerd_module=github.com/moby/moby/v2/cmd/dockerd@v2.0.0-beta.24 # Docker Engine 29
dockerd_version=29.0.0-moby-v2.0.0-beta.24
runc_module=github.com/opencontainers/runc@v1.5.3                 # Debian's 1.1.5 lacks the time namespace this daemon asks for
cache=${SIBLING_RUN_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sibling-run/engines}
bin=$cache/docker-${dockerd_version}-runc-${runc_module##*@} # a new version builds anew

usage() {
  echo "usage: $0 build | start DIR | stop DIR | netns DIR" >&2
  exit 2
}

# build compiles dockerd and runc into $bin unless they are there. Each is
# written under a temporary name and renamed, so an interrupted build is
# never taken for a finished one.
build() {
  mkdir -p "$bin"
  if [ ! -x "$bin/dockerd" ]; then
    echo "==> building Docker Engine 29's dockerd ($dockerd_module) into $bin; once, about 6 minutes on 2 cores" >&2
    tmp=$(mktemp -d "$bin/.build.XXXXXX")
    # The version it reports; a library build would say "library-import".
    GOBIN=$tmp GOFLAGS=-mod=mod CGO_ENABLED=0 go install \
      -ldflags "-X github.com/moby/moby/v2/dockerversion.Version=$dockerd_version" "$dockerd_module" >&2
    mv "$tmp/dockerd" "$bin/dockerd"
    rm -rf "$tmp"
  fi
  if [ ! -x "$bin/runc" ]; then
    [ -e /usr/include/seccomp.h ] || {
      echo "==> installing libseccomp-dev (runc is built with seccomp)" >&2
      apt-get install -y -qq libseccomp-dev >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libseccomp-dev >/dev/null; }
    }
    echo "==> building runc ($runc_module) into $bin" >&2
    tmp=$(mktemp -d "$bin/.build.XXXXXX")
    GOBIN=$tmp CGO_ENABLED=1 go install -tags seccomp "$runc_module" >&2
    mv "$tmp/runc" "$bin/runc"
    rm -rf "$tmp"
  fi
  echo "$bin"
}

cgroup_parent() { echo "sibling-run-docker29-$(basename "$dir")"; }
cgroup_dirs() { cgroup_dirs_named "$(cgroup_parent)"; }

start() {
  [ "$(id -u)" = 0 ] || { echo "docker29-service.sh: run as root (a rootful engine, like an agent host's)" >&2; exit 1; }
  for cmd in containerd containerd-shim-runc-v2 catatonit unshare ip iptables; do
    command -v "$cmd" >/dev/null || { echo "docker29-service.sh: $cmd is missing: apt-get install containerd catatonit iptables iproute2" >&2; exit 1; }
  done
  build >/dev/null
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ ! -e "$dir/pid" ] || { echo "docker29-service.sh: $dir/pid exists: a daemon may be running; stop it first" >&2; exit 1; }
  mkdir -p "$dir/data" "$dir/exec" "$dir/bin"
  # dockerd looks for runc on PATH before its configured runtime; the built
  # one comes first, and registered as the default below.
  ln -sf "$bin/runc" "$dir/bin/runc"
  # Its own configuration, so /etc/docker/daemon.json (the main engine's
  # data root and storage driver) is not read. overlay2, Docker's default
  # and what its users run; its mounts live in the daemon's mount namespace.
  nofile=$(ulimit -Hn)
  [ "$nofile" != unlimited ] || nofile=1048576
  cat >"$dir/daemon.json" <<EOF
{
  "storage-driver": "overlay2",
  "cgroup-parent": "/$(cgroup_parent)",
  "runtimes": {"runc-built": {"path": "$bin/runc"}},
  "default-runtime": "runc-built",
  "default-ulimits": {"nofile": {"Name": "nofile", "Hard": $nofile, "Soft": $nofile}},
  "features": {"containerd-snapshotter": false}
}
EOF
  : >"$dir/created"
  for path in $(cgroup_dirs); do
    [ -e "$path" ] || echo "$path" >>"$dir/created"
  done

  # shellcheck disable=SC2016 # $1 and $2 are the inner shell's
  PATH="$dir/bin:$PATH" setsid unshare --net --mount --pid --fork --mount-proc --kill-child \
    catatonit -- /bin/sh -c '
      set -e
      ip link set lo up
      mount -t tmpfs -o mode=0755 tmpfs /run
      exec "$2/dockerd" --config-file "$1/daemon.json" --host "unix://$1/docker.sock" \
        --data-root "$1/data" --exec-root "$1/exec" --pidfile "$1/docker.pid"
    ' sh "$dir" "$bin" </dev/null >"$dir/dockerd.log" 2>&1 &
  echo $! >"$dir/pid"

  for _ in $(seq 1 150); do
    if [ -S "$dir/docker.sock" ] && DOCKER_HOST="unix://$dir/docker.sock" timeout 5 docker version >/dev/null 2>&1; then
      echo "unix://$dir/docker.sock"
      return 0
    fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.2
  done
  echo "docker29-service.sh: the daemon did not answer on $dir/docker.sock; its log:" >&2
  tail -n 40 "$dir/dockerd.log" >&2 || true
  stop
  exit 1
}

netns() { service_netns "$dir"; }

stop() {
  [ -d "$dir" ] || return 0
  end_service "$dir"
  # The containers' cgroups; overlay2's mounts were in the daemon's mount
  # namespace, gone with it.
  # shellcheck disable=SC2046 # one path a word
  remove_trees $(cgroup_dirs)
  rm -rf "$dir"
}

[ $# -ge 1 ] || usage
action=$1
case "$action" in
  build) [ $# = 1 ] || usage; build ;;
  start | stop | netns)
    [ $# = 2 ] || usage
    dir=$2
    "$action"
    ;;
  *) usage ;;
esac
