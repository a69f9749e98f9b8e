# shellcheck shell=bash
# What the tests' private engines (docker29-service.sh, podman-service.sh)
# share: each runs as `setsid unshare --net --mount --pid --fork
# --kill-child catatonit -- …` with its pid in DIR/pid. Sourced, not run.

# cgroup_dirs_named NAME lists the directory cgroupfs makes for a parent
# NAME: one in each cgroup v1 hierarchy, or one in v2.
cgroup_dirs_named() {
  if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
    echo "/sys/fs/cgroup/$1"
  else
    for h in /sys/fs/cgroup/*/; do
      [ -L "${h%/}" ] || echo "${h}$1"
    done
  fi
}

# service_netns DIR prints the network namespace of the service started
# for DIR: that of unshare's child, catatonit, the namespace's init.
service_netns() {
  local pid child
  pid=$(cat "$1/pid")
  child=$(awk '{print $1}' "/proc/$pid/task/$pid/children" 2>/dev/null)
  [ -n "$child" ] || { echo "$(basename "$0"): no service runs for $1" >&2; return 1; }
  echo "/proc/$child/ns/net"
}

# end_service DIR ends the service started for DIR: unshare --kill-child
# takes the namespace's init along, and the kernel every other process in
# the namespace; setsid made unshare a group leader.
end_service() {
  local pid
  [ -s "$1/pid" ] || return 0
  pid=$(cat "$1/pid")
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
}

# remove_trees PATH... removes directory trees deepest first, each within
# about 5 s: a cgroup goes only once it has no children, and its processes
# end a moment after the namespace's init.
remove_trees() {
  local path
  for path in "$@"; do
    for _ in $(seq 1 25); do
      [ -d "$path" ] || break
      find "$path" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$path" ] || break
      sleep 0.2
    done
    [ ! -d "$path" ] || echo "$(basename "$0"): could not remove $path" >&2
  done
}
