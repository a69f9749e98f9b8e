#!/usr/bin/env bash
# Measures copying artifacts out of a sibling against `docker cp` of the same
# container path, and what a build's passwd entry costs, on this machine:
#
#   artifacts   BENCH_ROUNDS rounds, in alternating order, of
#                 sibling-run --artifact /out  (its own log gives the copy's
#                   bytes and time, the build's time excluded), and
#                 docker run (untimed) then `docker cp CONTAINER:/out DIR`,
#               where the build writes BENCH_ARTIFACT_MIB MiB to /out with
#               dd from /dev/urandom, in files of 64 MiB. Each copy goes to a
#               fresh directory, and is checked for its byte count.
#   user        BENCH_PAIRS alternating pairs of `sibling-run --user 0:0 true`
#               (no passwd round trip) and `--user 4242:4343 true` (the image
#               lacks the uid: read /etc/passwd, write it back with an entry
#               and a HOME): the median of the per-pair differences.
#
# Progress goes to stderr, a Markdown table to stdout. Every container carries
# this run's label, and only those are ever removed.
#
# Usage: scripts/bench-artifacts.sh > bench-artifacts.md
# Environment: BENCH_ROUNDS (5), BENCH_ARTIFACT_MIB (1024), BENCH_PAIRS (21),
#   BENCH_IMAGE (sibling-run/busybox:local, built if missing), GO.
set -euo pipefail

case ${1:-} in
  -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
  "") ;;
  *) echo "bench-artifacts.sh: no arguments are taken; see --help" >&2; exit 2 ;;
esac

rounds=${BENCH_ROUNDS:-5}
mib=${BENCH_ARTIFACT_MIB:-1024}
pairs=${BENCH_PAIRS:-21}
image=${BENCH_IMAGE:-sibling-run/busybox:local}
for n in "$rounds" "$mib" "$pairs"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "bench-artifacts.sh: BENCH_* counts must be positive integers, not '$n'" >&2; exit 2; }
done
here=$(cd "$(dirname "$0")/.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

note() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'bench-artifacts.sh: %s\n' "$*" >&2; exit 1; }
now_us() { REPLY=${EPOCHREALTIME//[.,]/}; }
stats() { # median min max of the numbers on stdin
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan nan nan"; exit }
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}
calc() { awk "BEGIN { print $1 }"; }
fmt() { awk -v p="$1" -v n="$2" 'BEGIN { printf "%.*f\n", p, n }'; }

command -v docker >/dev/null || fail "docker is not installed"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || fail "cannot reach the Docker engine"

run_id=sibling-run-bench-artifacts-$$-$RANDOM
label=sibling-run-bench=$run_id
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sibling-run-bench-artifacts.XXXXXX")
cleanup() {
  local status=$? left
  left=$(docker ps -aq --filter "label=$label" 2>/dev/null || true)
  # shellcheck disable=SC2086 # one id a word
  [ -z "$left" ] || docker rm -f -v $left >/dev/null || status=1
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

note "building sibling-run"
(cd "$here" && CGO_ENABLED=0 "$GO" build -o "$tmp/sibling-run" ./cmd/sibling-run)
if ! docker image inspect "$image" >/dev/null 2>&1; then
  [ "$image" = sibling-run/busybox:local ] || fail "image $image is not on the engine"
  note "building the busybox image $image"
  "$here/scripts/busybox-image.sh" "$image" >/dev/null
fi
work=$tmp/work
mkdir "$work"
cd "$work"

files=$(((mib + 63) / 64))
make_out="mkdir /out; i=0; while [ \$i -lt $files ]; do dd if=/dev/urandom of=/out/f\$i bs=1048576 count=64 2>/dev/null; i=\$((i + 1)); done"
expected=$((files * 64 * 1048576))
sr=("$tmp/sibling-run" --image "$image" --label "$label")

# took_ms DURATION: a Go duration as sibling-run logs it (850ms, 1.5s, 1m2.5s) in ms.
took_ms() {
  awk -v d="$1" 'BEGIN { ms = 0
    while (match(d, /^[0-9.]+(ms|µs|us|ns|h|m|s)/)) {
      n = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
      v = n + 0; u = n; sub(/^[0-9.]+/, "", u)
      ms += u == "h" ? v * 3600000 : u == "m" ? v * 60000 : u == "s" ? v * 1000 : u == "ms" ? v : v / 1000
    }
    print ms }'
}
bytes_in() { du -sb --apparent-size "$1" | cut -f1; }

copy_sr() { # appends MB/s of sibling-run's copy to $tmp/rate.sr
  local dest=$work/sr log bytes took
  rm -rf "$dest"
  log=$("${sr[@]}" --user 0:0 --log-format json --artifact "/out:sr" sh -c "$make_out" 2>&1 >/dev/null) || { echo "$log" >&2; fail "sibling-run failed"; }
  bytes=$(echo "$log" | sed -n 's/.*"bytes":\([0-9]*\).*/\1/p')
  took=$(echo "$log" | grep '"copied the artifact"' | sed -n 's/.*"took":"\([^"]*\)".*/\1/p')
  if [ "$bytes" != "$expected" ] || [ "$(bytes_in "$dest/out")" -lt "$expected" ]; then
    fail "sibling-run copied $bytes bytes, want $expected"
  fi
  calc "$bytes / ($(took_ms "$took") * 1000)" >>"$tmp/rate.sr"
  rm -rf "$dest"
}
copy_dk() { # appends MB/s of docker cp to $tmp/rate.dk
  local dest=$work/dk id t0 t1
  rm -rf "$dest"; mkdir "$dest"
  id=$(docker create --label "$label" --log-driver none "$image" sh -c "$make_out")
  docker start -a "$id" >/dev/null
  now_us; t0=$REPLY
  docker cp "$id:/out" "$dest/" 2>/dev/null
  now_us; t1=$REPLY
  docker rm -v "$id" >/dev/null
  [ "$(bytes_in "$dest/out")" -ge "$expected" ] || fail "docker cp copied $(bytes_in "$dest/out") bytes, want $expected"
  calc "$expected / ($t1 - $t0)" >>"$tmp/rate.dk"
  rm -rf "$dest"
}

note "artifacts: $rounds rounds of $((expected / 1048576)) MiB, sibling-run and docker cp alternating"
: >"$tmp/rate.sr"; : >"$tmp/rate.dk"
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then copy_sr; copy_dk; else copy_dk; copy_sr; fi
  printf '.' >&2
done
printf '\n' >&2

note "user: $pairs alternating pairs of --user 0:0 and --user 4242:4343"
: >"$tmp/user.diff"
once_ms() { # USER: runs true as USER, prints wall ms
  local t0
  now_us; t0=$REPLY
  "${sr[@]}" --user "$1" true >/dev/null 2>&1 || fail "sibling-run --user $1 true failed"
  now_us
  calc "($REPLY - $t0) / 1000"
}
once_ms 0:0 >/dev/null; once_ms 4242:4343 >/dev/null
for ((i = 1; i <= pairs; i++)); do
  if ((i % 2)); then a=$(once_ms 0:0); b=$(once_ms 4242:4343); else b=$(once_ms 4242:4343); a=$(once_ms 0:0); fi
  echo "$a" >>"$tmp/user.root"; echo "$b" >>"$tmp/user.uid"; calc "$b - $a" >>"$tmp/user.diff"
  printf '.' >&2
done
printf '\n' >&2

read -r s smin smax < <(stats <"$tmp/rate.sr")
read -r d dmin dmax < <(stats <"$tmp/rate.dk")
read -r ur _ _ < <(stats <"$tmp/user.root")
read -r uu _ _ < <(stats <"$tmp/user.uid")
read -r ud udmin udmax < <(stats <"$tmp/user.diff")
cat <<EOF
## Artifacts and the build's user: $(date -u '+%Y-%m-%d %H:%M UTC')

Machine: $(nproc) CPUs, Docker engine $(docker version --format '{{.Server.Version}}') ($(docker info --format '{{.Driver}}' 2>/dev/null)), kernel $(uname -r). Image \`$image\`.

| measure | sibling-run | docker cp | ratio |
| --- | ---: | ---: | ---: |
| copy $((expected / 1048576)) MiB ($files files) out of an exited container, MB/s, median (min–max) of $rounds | $(fmt 0 "$s") ($(fmt 0 "$smin")–$(fmt 0 "$smax")) | $(fmt 0 "$d") ($(fmt 0 "$dmin")–$(fmt 0 "$dmax")) | $(fmt 2 "$(calc "$s / $d")")× |

| measure | \`--user 0:0\` | \`--user 4242:4343\` | added by the passwd entry |
| --- | ---: | ---: | ---: |
| whole run of \`true\`, ms, median of $pairs pairs | $(fmt 0 "$ur") | $(fmt 0 "$uu") | $(fmt 0 "$ud") ($(fmt 0 "$udmin")–$(fmt 0 "$udmax")), median of per-pair differences |

sibling-run's copy time is the one it logs for the artifact (from the request to the last byte on disk); docker cp's is its whole command. Both copy /out of an exited container into a new directory on the same filesystem.
EOF
