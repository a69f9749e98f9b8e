#!/usr/bin/env bash
# Runs Bamboo agent number N on this host as a pair of containers:
#
#   bamboo-agent-data.N  the data container: created once from the data image,
#                        never run; its volume holds the agent's build
#                        directory and outlives every agent container
#   bamboo-agent.N       the agent: the engine's socket mounted, the data
#                        container's volumes (--volumes-from), the socket's
#                        group added (--group-add) so that its non-root user
#                        may use the socket, and a restart policy
#
# Builds run in sibling containers through sibling-run, which the agent image
# carries; the agent's SIBLING_RUN_VOLUMES_FROM names the data container, so a
# build sees the build directory and nothing else of the agent's.
#
# Usage: scripts/agent.sh up|upgrade|stop|down|status N
#   up       create what is missing and start the agent; what runs is left alone
#   upgrade  recreate the agent from AGENT_IMAGE if that is a newer image (the
#            data container, and with it every build directory, stays)
#   stop     remove the agent, keep the data container
#   down     remove the agent and the data container with its volume
#   status   show both containers
# Every command is idempotent: run twice, the second run changes nothing.
#
# Environment:
#   BAMBOO_SERVER     the Bamboo server's URL (required by up and upgrade);
#                     passed to the agent as BAMBOO_SERVER, as the agent base
#                     image expects
#   SECURITY_TOKEN    the agent security token, when the server verifies it;
#                     passed by name only, so it shows in no command line
#   AGENT_IMAGE       default sibling-run/bamboo-agent:local
#   AGENT_DATA_IMAGE  default sibling-run/bamboo-agent-data:local
#   AGENT_PULL        upgrade pulls AGENT_IMAGE first unless this is "never";
#                     a failed pull is reported and the local image used
#   AGENT_RESTART     the agent's restart policy, default unless-stopped
#   AGENT_STOP_TIMEOUT  seconds the agent gets to stop, default 60
#   AGENT_LABELS      extra labels for both containers: KEY=VALUE, space-separated
#   DOCKER_SOCKET     the engine's socket on this host, default /var/run/docker.sock
#   SIBLING_RUN_MEMORY, SIBLING_RUN_CPUS, SIBLING_RUN_PIDS_LIMIT
#                     limits for every build of the agent, passed to the agent
#                     by name when set (see sibling-run --help)
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die() { printf 'agent.sh: %s\n' "$*" >&2; exit 1; }
say() { printf 'agent.sh: %s\n' "$*"; }

action=${1:-}
case $action in
  up | upgrade | stop | down | status) ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
n=${2:-}
[[ $n =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] ||
  die "$action needs the agent's number (letters, digits, . _ -), e.g.: agent.sh $action 1"
[ $# -le 2 ] || die "too many arguments: $*"

agent=bamboo-agent.$n
data=bamboo-agent-data.$n
agent_image=${AGENT_IMAGE:-sibling-run/bamboo-agent:local}
data_image=${AGENT_DATA_IMAGE:-sibling-run/bamboo-agent-data:local}
socket=${DOCKER_SOCKET:-/var/run/docker.sock}
stop_timeout=${AGENT_STOP_TIMEOUT:-60}
labels=()
for label in ${AGENT_LABELS:-}; do
  [[ $label == *=* ]] || die "AGENT_LABELS entry $label is not KEY=VALUE"
  labels+=(--label "$label")
done

if [ "$action" = up ] || [ "$action" = upgrade ]; then
  [ -n "${BAMBOO_SERVER:-}" ] || die "BAMBOO_SERVER is not set; set it to the Bamboo server's URL, e.g. https://bamboo.example.com"
fi
command -v docker >/dev/null || die "no docker command on PATH; install the Docker CLI"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  die "cannot reach the Docker engine (${DOCKER_HOST:-unix://$socket}); start it, or run as a user that may use its socket"
if [ "$action" = up ] || [ "$action" = upgrade ]; then
  [ -S "$socket" ] || die "$socket is not a socket; set DOCKER_SOCKET to the engine's socket on this host"
fi

# state NAME prints running, stopped or absent.
state() {
  local running
  if ! running=$(docker container inspect --format '{{.State.Running}}' "$1" 2>/dev/null); then
    echo absent
  elif [ "$running" = true ]; then
    echo running
  else
    echo stopped
  fi
}

image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null; }

ensure_data() {
  if [ "$(state "$data")" != absent ]; then
    say "data container $data exists: kept"
    return
  fi
  image_id "$data_image" >/dev/null || die "data image $data_image is not on the engine; build or pull it first"
  docker create --name "$data" "${labels[@]}" "$data_image" >/dev/null
  say "created data container $data from $data_image"
}

start_agent() {
  image_id "$agent_image" >/dev/null || die "agent image $agent_image is not on the engine; build or pull it first"
  local gid env=(-e BAMBOO_SERVER -e "SIBLING_RUN_VOLUMES_FROM=$data")
  gid=$(stat -c %g "$socket")
  [ -z "${SECURITY_TOKEN:-}" ] || env+=(-e SECURITY_TOKEN)
  local limit
  for limit in SIBLING_RUN_MEMORY SIBLING_RUN_CPUS SIBLING_RUN_PIDS_LIMIT; do
    [ -z "${!limit:-}" ] || env+=(-e "$limit")
  done
  docker run -d --name "$agent" --restart "${AGENT_RESTART:-unless-stopped}" \
    -v "$socket:/var/run/docker.sock" --volumes-from "$data" --group-add "$gid" \
    "${env[@]}" "${labels[@]}" "$agent_image" >/dev/null
  say "started agent $agent from $agent_image (socket group $gid, build directory from $data)"
}

remove() {
  [ "$(state "$1")" != absent ] || return 0
  docker stop -t "$stop_timeout" "$1" >/dev/null 2>&1 || true
  # -v removes the container's anonymous volumes (the agent's home) but never
  # a volume that another container still uses, such as the data volume.
  docker rm -f -v "$1" >/dev/null
  say "removed $1"
}

case $action in
  up)
    ensure_data
    case $(state "$agent") in
      running) say "agent $agent runs already: left alone (upgrade switches images)" ;;
      stopped) docker start "$agent" >/dev/null && say "started the existing agent $agent" ;;
      absent) start_agent ;;
    esac
    ;;
  upgrade)
    if [ "${AGENT_PULL:-always}" != never ] && ! docker pull -q "$agent_image" >/dev/null 2>&1; then
      say "could not pull $agent_image; using the image on the engine"
    fi
    ensure_data
    want=$(image_id "$agent_image") || die "agent image $agent_image is not on the engine; build or pull it first"
    have=$(docker container inspect --format '{{.Image}}' "$agent" 2>/dev/null || true)
    if [ "$have" = "$want" ] && [ "$(state "$agent")" = running ]; then
      say "agent $agent runs $agent_image already: left alone"
    else
      remove "$agent"
      start_agent
    fi
    ;;
  stop)
    remove "$agent"
    ;;
  down)
    remove "$agent"
    remove "$data"
    ;;
  status)
    printf '%s: %s\n' "$data" "$(state "$data")" "$agent" "$(state "$agent")"
    ;;
esac
