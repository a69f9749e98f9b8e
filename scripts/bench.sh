#!/usr/bin/env bash
# Measures sibling-run against docker run doing the same work in the same
# busybox image, on this machine and in one run, and prints a Markdown table:
#
#   lifecycle   BENCH_PAIRS alternating pairs of `sibling-run --image IMG true`
#               and `docker run --rm IMG true`: wall time of each, and the
#               median of the per-pair ratios sibling-run / docker run.
#   output      the build writes BENCH_OUTPUT_MIB MiB of 64-byte text lines to
#               stdout, which `wc -c` on the host counts for every tool:
#               sibling-run (its default --log-driver none), docker run --rm
#               (the engine's default logging) and docker run --rm
#               --log-driver none, BENCH_RUNS rounds in rotating order.
#               The same is done with BENCH_RSS_MIB MiB for the memory row.
#   memory      peak RSS of each client while it streams, from GNU time.
#
# Progress goes to stderr, the table to stdout. Containers are labelled with
# this run's id and only those are ever removed; nothing else is touched.
#
# Usage: scripts/bench.sh > bench.md
# Environment: BENCH_PAIRS (21), BENCH_OUTPUT_MIB (1024), BENCH_RUNS (3),
#   BENCH_RSS_MIB (64), BENCH_IMAGE (sibling-run/busybox:local, built if
#   missing), GO (default: go on PATH, else /usr/local/go/bin/go).
set -euo pipefail

case ${1:-} in
  -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
  "") ;;
  *) echo "bench.sh: no arguments are taken; see --help" >&2; exit 2 ;;
esac

pairs=${BENCH_PAIRS:-21}
mib=${BENCH_OUTPUT_MIB:-1024}
runs=${BENCH_RUNS:-3}
rss_mib=${BENCH_RSS_MIB:-64}
image=${BENCH_IMAGE:-sibling-run/busybox:local}
for n in "$pairs" "$mib" "$runs" "$rss_mib"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: BENCH_* counts must be positive integers, not '$n'" >&2; exit 2; }
done
here=$(cd "$(dirname "$0")/.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

note() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'bench.sh: %s\n' "$*" >&2; exit 1; }

# Microseconds since the epoch; bash 5's EPOCHREALTIME costs no fork.
stamp() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    REPLY=${EPOCHREALTIME//[.,]/}
  else
    REPLY=$(($(date +%s%N) / 1000))
  fi
}

# median min max of the numbers on stdin, one a line.
stats() {
  sort -g | awk '{ v[NR] = $1 }
    END { if (NR == 0) { print "nan nan nan"; exit }
          m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          print m, v[1], v[NR] }'
}
# fmt PRECISION NUMBER...: the numbers, rounded.
fmt() { local p=$1; shift; awk -v p="$p" 'BEGIN { for (i = 1; i < ARGC; i++) printf "%s%.*f", (i > 1 ? " " : ""), p, ARGV[i]; print "" }' "$@"; }
# calc EXPR: awk arithmetic.
calc() { awk "BEGIN { print $1 }"; }

command -v docker >/dev/null || fail "docker is not installed"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || fail "cannot reach the Docker engine"
[ -x "$GO" ] || fail "no go command; set GO=/path/to/go"
if [ -x /usr/bin/time ] && /usr/bin/time -f %M -o /dev/null true 2>/dev/null; then
  timer_ok=true
else
  timer_ok=false
  note "GNU time is missing, so peak memory is not measured; install it with: apt-get install -y time"
fi

run_id=sibling-run-bench-$$-$RANDOM
label=sibling-run-bench=$run_id
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sibling-run-bench.XXXXXX")
cleanup() {
  local status=$? left
  left=$(docker ps -aq --filter "label=$label" 2>/dev/null || true)
  if [ -n "$left" ]; then
    note "removing this run's leftover containers: $(echo "$left" | tr '\n' ' ')"
    # shellcheck disable=SC2086 # one id a word
    docker rm -f $left >/dev/null || status=1
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

note "building sibling-run (static, CGO_ENABLED=0)"
(cd "$here" && CGO_ENABLED=0 "$GO" build -o "$tmp/sibling-run" ./cmd/sibling-run)
if ! docker image inspect "$image" >/dev/null 2>&1; then
  [ "$image" = sibling-run/busybox:local ] || fail "image $image is not on the engine"
  note "building the busybox image $image"
  "$here/scripts/busybox-image.sh" "$image" >/dev/null
fi
work=$tmp/work
mkdir "$work"
cd "$work"

# The three ways to run a build. sibling-run runs in $work, which it shares
# with the build; every container carries this run's label, for cleanup only.
sr=("$tmp/sibling-run" --image "$image" --label "$label")
dk=(docker run --rm --label "$label" "$image")
dn=(docker run --rm --label "$label" --log-driver none "$image")
declare -A tool_name=([sr]=sibling-run [dk]="docker run --rm" [dn]="docker run --rm --log-driver none")

# The build's output: 64-byte lines, made once in /dev/shm (a tmpfs in every
# container) and written with cat, so that the build itself is not what limits
# the rate; busybox yes alone manages only about 100 MB/s here.
line='sibling-run bench: 64 bytes of build output per line, 012345678'
[ ${#line} -eq 63 ] || fail "the output line must be 63 characters and a newline"
producer() { # MIB: the shell script that writes MIB MiB
  printf '%s' "set -e; yes '$line' | head -c 1048576 > /dev/shm/c1
for j in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do cat /dev/shm/c1; done > /dev/shm/c16
i=0; while [ \$i -lt $(($1 / 16)) ]; do cat /dev/shm/c16; i=\$((i + 1)); done
i=0; while [ \$i -lt $(($1 % 16)) ]; do cat /dev/shm/c1; i=\$((i + 1)); done"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${load_before%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n) }'; then
  note "the machine is busy (load $load_before on $(nproc) CPUs): expect noisy numbers"
fi
bench_start=$(date +%s)

# --- lifecycle -------------------------------------------------------------
note "lifecycle: 1 warm-up + $pairs alternating pairs of \`true\`"
life_once() { # KIND: runs `true`, appends the wall time in ms to $tmp/life.KIND
  local -n cmd=$1
  local t0
  stamp; t0=$REPLY
  "${cmd[@]}" true >>"$tmp/life.log" 2>&1 || { tail -n 20 "$tmp/life.log" >&2; fail "${tool_name[$1]} true failed"; }
  stamp
  LAST_MS=$(calc "($REPLY - $t0) / 1000")
  echo "$LAST_MS" >>"$tmp/life.$1"
}
life_once sr; life_once dk
: >"$tmp/life.sr"; : >"$tmp/life.dk"; : >"$tmp/life.ratio"
for ((i = 1; i <= pairs; i++)); do
  if ((i % 2)); then life_once sr; s=$LAST_MS; life_once dk; d=$LAST_MS
  else life_once dk; d=$LAST_MS; life_once sr; s=$LAST_MS; fi
  calc "$s / $d" >>"$tmp/life.ratio"
  printf '.' >&2
done
printf '\n' >&2

# --- output and memory ----------------------------------------------------
# out_once KIND MIB: streams MIB MiB through KIND into wc -c and appends
# "MB/s bytes rss_kib cpu_s wall_ms" to $tmp/out.MIB.KIND.
out_once() {
  local -n cmd=$1
  local t0 wall bytes rss=nan cpu=nan u s tm=()
  $timer_ok && tm=(/usr/bin/time -f '%M %U %S' -o "$tmp/time")
  stamp; t0=$REPLY
  if ! "${tm[@]}" "${cmd[@]}" sh -c "$(producer "$2")" 2>>"$tmp/out.log" | wc -c >"$tmp/count"; then
    tail -n 20 "$tmp/out.log" >&2
    fail "${tool_name[$1]} failed while writing $2 MiB"
  fi
  stamp
  wall=$((REPLY - t0))
  bytes=$(tr -d ' ' <"$tmp/count")
  if $timer_ok; then
    read -r rss u s <"$tmp/time"
    cpu=$(calc "$u + $s")
  fi
  echo "$(calc "$bytes / $wall") $bytes $rss $cpu $((wall / 1000))" >>"$tmp/out.$2.$1"
}
out_rounds() { # MIB
  local order=(sr dn dk) r k
  for ((r = 0; r < runs; r++)); do
    for k in 0 1 2; do
      out_once "${order[(r + k) % 3]}" "$1"
      printf '.' >&2
    done
  done
  printf '\n' >&2
}
note "output: $runs rounds of $rss_mib MiB, then $runs rounds of $mib MiB (docker run's default logging is the slow one)"
out_rounds "$rss_mib"
[ "$mib" -eq "$rss_mib" ] || out_rounds "$mib"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
took=$(($(date +%s) - bench_start))

# --- the table ---------------------------------------------------------------
col() { cut -d' ' -f"$1" "$2"; } # field FIELD of FILE, one a line
read -r ls lsmin lsmax < <(stats <"$tmp/life.sr")
read -r ld ldmin ldmax < <(stats <"$tmp/life.dk")
read -r lr lrmin lrmax < <(stats <"$tmp/life.ratio")
expected=$((mib * 1048576))
all_bytes() { awk -v e="$2" '$2 != e { bad = 1 } END { exit bad }' "$1"; } # FILE BYTES
declare -A rate rmin rmax cpu rss rss_small bytes_ok
for k in sr dk dn; do
  read -r "rate[$k]" "rmin[$k]" "rmax[$k]" < <(col 1 "$tmp/out.$mib.$k" | stats)
  read -r "cpu[$k]" _ _ < <(col 4 "$tmp/out.$mib.$k" | stats)
  read -r _ _ "rss[$k]" < <(col 3 "$tmp/out.$mib.$k" | stats)
  read -r _ _ "rss_small[$k]" < <(col 3 "$tmp/out.$rss_mib.$k" | stats)
  if all_bytes "$tmp/out.$mib.$k" "$expected" && all_bytes "$tmp/out.$rss_mib.$k" "$((rss_mib * 1048576))"; then
    bytes_ok[$k]=yes
  else
    bytes_ok[$k]="**no**: $(col 2 "$tmp/out.$mib.$k" | tr '\n' ' ')"
  fi
done
# MB/s once each tool's median start-up and tear-down (the lifecycle row) is
# taken out of the wall time: the streaming rate alone.
net() { # KIND LIFECYCLE_MS
  col 5 "$tmp/out.$mib.$1" | stats | awk -v l="$2" -v b="$expected" \
    '{ if ($1 > l) printf "%.0f\n", b / (($1 - l) * 1000); else print "n/a" }'
}
yesno() { awk "BEGIN { exit !($1) }" && echo yes || echo '**no**'; }
mibf() { if [ "$1" = nan ]; then echo n/a; else fmt 1 "$(calc "$1 / 1024")"; fi; }
ratio_none=$(calc "${rate[sr]} / ${rate[dn]}")
ratio_default=$(calc "${rate[sr]} / ${rate[dk]}")

mem_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
engine=$(docker version --format '{{.Server.Version}}')
driver=$(docker info --format '{{.Driver}}, cgroup v{{.CgroupVersion}}, default log driver {{.LoggingDriver}}' 2>/dev/null || echo '?')

cat <<EOF
## sibling-run vs docker run: $(date -u '+%Y-%m-%d %H:%M UTC')

Machine: $(nproc) CPUs (\`nproc\`), ${mem_gib} GiB memory, Docker engine $engine ($driver), kernel $(uname -r), $("$tmp/sibling-run" version). Load average $load_before before, $load_after after; the run took ${took}s. Image \`$image\`.

| measure | sibling-run | docker run --rm | docker run --rm --log-driver none | sibling-run / docker | goal | met |
| --- | ---: | ---: | ---: | ---: | --- | --- |
| lifecycle \`true\`, wall ms, median (min–max) of $pairs | $(fmt 0 "$ls") ($(fmt 0 "$lsmin")–$(fmt 0 "$lsmax")) | $(fmt 0 "$ld") ($(fmt 0 "$ldmin")–$(fmt 0 "$ldmax")) | | $(fmt 2 "$lr") ($(fmt 2 "$lrmin")–$(fmt 2 "$lrmax")), median of per-pair ratios | ≤ 1.0 | $(yesno "$lr <= 1.0") |
| output $mib MiB, MB/s of wall time, median (min–max) of $runs | $(fmt 0 "${rate[sr]}") ($(fmt 0 "${rmin[sr]}")–$(fmt 0 "${rmax[sr]}")) | $(fmt 0 "${rate[dk]}") ($(fmt 0 "${rmin[dk]}")–$(fmt 0 "${rmax[dk]}")) | $(fmt 0 "${rate[dn]}") ($(fmt 0 "${rmin[dn]}")–$(fmt 0 "${rmax[dn]}")) | $(fmt 2 "$ratio_none")× of --log-driver none | ≥ 0.95× | $(yesno "$ratio_none >= 0.95") |
| | | | | $(fmt 2 "$ratio_default")× of default logging | ≥ 4× | $(yesno "$ratio_default >= 4") |
| output MB/s net of the lifecycle median | $(net sr "$ls") | $(net dk "$ld") | $(net dn "$ld") | | | |
| client CPU s (user+sys) for $mib MiB, median | $(fmt 2 "${cpu[sr]}") | $(fmt 2 "${cpu[dk]}") | $(fmt 2 "${cpu[dn]}") | | | |
| byte count checked by \`wc -c\` ($mib MiB = $expected) | ${bytes_ok[sr]} | ${bytes_ok[dk]} | ${bytes_ok[dn]} | | must match | ${bytes_ok[sr]%%:*} |
| client peak RSS streaming $rss_mib MiB, MiB, max of $runs | $(mibf "${rss_small[sr]}") | $(mibf "${rss_small[dk]}") | $(mibf "${rss_small[dn]}") | | ≤ 20 | $($timer_ok && yesno "${rss_small[sr]} <= 20480" || echo n/a) |
| client peak RSS streaming $mib MiB, MiB, max of $runs | $(mibf "${rss[sr]}") | $(mibf "${rss[dk]}") | $(mibf "${rss[dn]}") | $($timer_ok && fmt 2 "$(calc "${rss[sr]} / ${rss_small[sr]}")" || echo n/a)× of $rss_mib MiB | ≤ 20, flat (+10% or +2 MiB at most) | $($timer_ok && yesno "${rss[sr]} <= 20480 && (${rss[sr]} <= 1.1 * ${rss_small[sr]} || ${rss[sr]} - ${rss_small[sr]} <= 2048)" || echo n/a) |

Every tool writes to the same consumer, a pipe into \`wc -c\`. The build writes 64-byte lines from /dev/shm with busybox cat. Runs alternate: lifecycle pairs swap their order each time; output rounds rotate it. sibling-run runs with its defaults (\`--init\`, \`--log-driver none\`, the working directory bind-mounted); docker run with its own (no init, no mount).
EOF

[ "${bytes_ok[sr]}" = yes ] || fail "sibling-run lost or added output bytes"
