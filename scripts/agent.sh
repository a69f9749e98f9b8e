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
# Usage: scripts/agent.sh up|upgrade|idle|stop|down|status [--wait D] [--force] N
#   up       create what is missing and start the agent; what runs is left alone
#   upgrade  recreate the agent from AGENT_IMAGE when that image's id differs
#            from the one the agent runs (newer or older alike: a rollback is
#            an upgrade to the old tag). It first waits until the agent runs
#            no build (--wait, default 30m), then replaces the agent.
#            Stays: the data container with every build directory in it, and
#            the builds' --cache volumes. Goes: the agent container and its
#            home (an anonymous volume: the agent's own configuration is made
#            anew), and, with --force (no wait), a running build, which fails.
#            A wait that ends with builds still running changes nothing and
#            exits 3.
#   idle     wait until agent N runs no build (--wait, default 30m; exit 3 if
#            one still runs then), e.g. before `systemctl restart bamboo-agent@N`
#   stop     remove the agent, keep the data container
#   down     remove the agent and the data container with its volume
#   status   show both containers and the builds the agent runs
# A running build is one of the agent's siblings: a running container that
# sibling-run created from inside the agent (its labels sibling-run.managed
# and sibling-run.owner=container:<the agent's id>). stop and down do not
# wait unless given --wait; they name the builds they stop. --force: do not
# wait, stop what runs. To drain an agent for sure, disable it in Bamboo
# first: a build that Bamboo hands it after the wait ended is stopped too.
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
#                     a failed pull is reported with docker's reason, and the
#                     image on the engine used if there is one
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

# How often a wait for the agent's builds looks again, and how often it says
# that it still waits: a build's end is noticed within a poll, and a long
# wait shows in the log at least once a minute.
poll_seconds=5
report_seconds=60
# Exit code when the wait ends with builds still running: not 1, so that a
# caller can tell "still busy, nothing changed" from a failure.
busy_exit=3

action=${1:-}
case $action in
  up | upgrade | idle | stop | down | status) shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
wait_arg="" force=false n=""
while [ $# -gt 0 ]; do
  case $1 in
    --wait) [ $# -ge 2 ] || die "--wait needs a duration, e.g. --wait 30m"; wait_arg=$2; shift 2 ;;
    --wait=*) wait_arg=${1#--wait=}; shift ;;
    --force) force=true; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown flag $1 (see agent.sh --help)" ;;
    *) [ -z "$n" ] || die "too many arguments: $n $1"; n=$1; shift ;;
  esac
done
[[ $n =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] ||
  die "$action needs the agent's number (letters, digits, . _ -), e.g.: agent.sh $action 1"

# seconds DURATION prints DURATION (N, Ns, Nm or Nh) in seconds.
seconds() {
  [[ $1 =~ ^([0-9]+)([smh]?)$ ]] || die "--wait $1 is not a duration such as 90s, 30m or 2h"
  case ${BASH_REMATCH[2]} in
    h) echo $((BASH_REMATCH[1] * 3600)) ;;
    m) echo $((BASH_REMATCH[1] * 60)) ;;
    *) echo "${BASH_REMATCH[1]}" ;;
  esac
}
case $action in
  upgrade | idle) wait_seconds=$(seconds "${wait_arg:-30m}") ;;
  *) wait_seconds=$(seconds "${wait_arg:-0}") ;;
esac

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

# running_builds prints the agent's running siblings (builds, and their
# services), one "NAME (BUILD KEY)" a line: the containers that sibling-run,
# run inside the agent, labelled with the agent's container id as owner.
running_builds() {
  local id
  id=$(docker container inspect --format '{{.Id}}' "$agent" 2>/dev/null) || return 0
  docker ps --filter label=sibling-run.managed=true --filter "label=sibling-run.owner=container:$id" \
    --format '{{.Names}} ({{or (.Label "sibling-run.build-key") "no build key"}})'
}

# builds_of_agent prints running_builds, or dies when the engine does not answer.
builds_of_agent() {
  local builds
  builds=$(running_builds) || die "cannot list the running builds of $agent"
  printf '%s' "$builds"
}

# one_line joins lines with ", ".
one_line() { paste -sd, - | sed 's/,/, /g'; }

# wait_for_builds waits up to wait_seconds until the agent runs no build, and
# says so at its start and then once a minute. It fails when builds still run.
wait_for_builds() {
  local builds deadline=$((SECONDS + wait_seconds)) next_report=$SECONDS
  builds=$(builds_of_agent)
  [ -n "$builds" ] || return 0
  [ "$wait_seconds" -gt 0 ] || return 1
  while [ -n "$builds" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      return 1
    fi
    if [ "$SECONDS" -ge "$next_report" ]; then
      say "waiting for $(wc -l <<<"$builds") running build(s) of $agent to end, at most $((deadline - SECONDS))s more: $(one_line <<<"$builds")"
      next_report=$((SECONDS + report_seconds))
    fi
    sleep "$poll_seconds"
    builds=$(builds_of_agent)
  done
  say "$agent runs no build now"
}

# make_idle waits for the agent's builds (see wait_for_builds); with --force
# it goes on regardless and names the builds that stopping the agent stops.
# Without --force, builds still running end the script with busy_exit.
make_idle() {
  local builds
  [ "$(state "$agent")" = running ] || return 0
  if ! $force && wait_for_builds; then
    return 0
  fi
  builds=$(builds_of_agent)
  [ -n "$builds" ] || return 0
  if $force || [ "$action" = stop ] || [ "$action" = down ]; then
    say "stopping $agent stops $(wc -l <<<"$builds") running build(s), which fail: $(one_line <<<"$builds")"
    return 0
  fi
  printf 'agent.sh: %s still runs %s build(s) after %ss: %s; nothing changed. Wait longer (--wait 2h), or stop them with --force\n' \
    "$agent" "$(wc -l <<<"$builds")" "$wait_seconds" "$(one_line <<<"$builds")" >&2
  exit "$busy_exit"
}

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
    if [ "${AGENT_PULL:-always}" != never ]; then
      if reason=$(docker pull -q "$agent_image" 2>&1 >/dev/null); then
        say "pulled $agent_image"
      else
        reason=$(tr '\n' ' ' <<<"$reason")
        image_id "$agent_image" >/dev/null ||
          die "could not pull $agent_image, and the engine has no such image: ${reason% }"
        say "could not pull $agent_image (${reason% }); using the image on the engine"
      fi
    fi
    ensure_data
    want=$(image_id "$agent_image") || die "agent image $agent_image is not on the engine; build or pull it first"
    have=$(docker container inspect --format '{{.Image}}' "$agent" 2>/dev/null || true)
    if [ "$have" = "$want" ] && [ "$(state "$agent")" = running ]; then
      say "agent $agent runs $agent_image already: left alone"
    else
      [ -z "$have" ] || say "$agent runs image ${have#sha256:}, $agent_image is ${want#sha256:}: replacing the agent"
      make_idle
      remove "$agent"
      start_agent
    fi
    ;;
  idle)
    make_idle
    ;;
  stop)
    make_idle
    remove "$agent"
    ;;
  down)
    make_idle
    remove "$agent"
    remove "$data"
    ;;
  status)
    printf '%s: %s\n' "$data" "$(state "$data")" "$agent" "$(state "$agent")"
    builds=$(builds_of_agent)
    printf 'running builds: %s\n' "${builds:+$(one_line <<<"$builds")}"
    ;;
esac
