#!/usr/bin/env bash
# Measures sibling-run against docker doing the same work with the same image,
# on this machine and in one run, and prints one Markdown table (medians with
# min–max, ratios, the goals and whether they are met) under a header naming
# the machine, the engine, the date and the load average.
#
#   lifecycle     BENCH_PAIRS alternating pairs of `sibling-run --image IMG
#                 true` and `docker run --rm IMG true`: the wall time of each
#                 and the median of the per-pair ratios.
#   non-root      the same in a working directory owned by BENCH_USER, which
#                 sibling-run's build then runs as (it adds a passwd entry and
#                 a HOME to the sibling), against `docker run --rm --user
#                 BENCH_USER IMG true` (which adds no passwd entry).
#   concurrency   BENCH_CONCURRENCY builds at once on the engine, sibling-run
#                 against docker run --rm, BENCH_CONCURRENCY_ROUNDS alternating
#                 rounds: total wall time. Each build runs
#                 `sh -c 'echo start; sleep 1; echo done'` (a second of work
#                 and some output), and every one's exit code and output are
#                 checked.
#   output        the build writes BENCH_OUTPUT_MIB MiB of 64-byte text lines
#                 to stdout, counted by `wc -c` on the host, through
#                 sibling-run (its default --log-driver none), docker run --rm
#                 (the engine's default logging) and docker run --rm
#                 --log-driver none, BENCH_RUNS rounds in rotating order: MB/s
#                 of wall time, client CPU, and each client's peak RSS (GNU
#                 time), also at BENCH_RSS_MIB MiB to show it stays flat.
#   artifacts     the build writes BENCH_ARTIFACT_MIB MiB (files of 64 MiB,
#                 from /dev/urandom) to /out; sibling-run --artifact /out
#                 against `docker cp` of /out from an exited container,
#                 BENCH_ARTIFACT_ROUNDS alternating rounds: MB/s of the copy
#                 alone (sibling-run's own logged time for it; docker cp's
#                 whole command), byte counts checked.
#   cache         the demo project (scripts/demo/hello) built with `go vet
#                 ./... && go test ./... && go build` in the Go image
#                 (BENCH_GO_IMAGE), BENCH_CACHE_ROUNDS rounds in rotating
#                 order: sibling-run without a cache, sibling-run --cache
#                 with the image's GOCACHE (warm after one build, which is
#                 timed too), `docker run --rm` with that same cache volume,
#                 and the same build on this host with a warm GOCACHE of its
#                 own; the build runs as BENCH_USER, as an agent's does. Its
#                 table is printed after the others.
#
# Progress goes to stderr, the table to stdout. Every container carries this
# run's label, and only those are removed, on every exit path.
#
# Usage: scripts/bench.sh > bench.md      (10–15 minutes with the defaults)
#        BENCH_QUICK=1 scripts/bench.sh   (small sizes, about a minute: a try)
#        BENCH_ROWS=cache scripts/bench.sh   (only the sections named)
#        DOCKER_HOST=unix:///path/docker.sock scripts/bench.sh   (another
#        engine: both tools use it; scripts/docker29-service.sh starts one)
# Environment (defaults; BENCH_QUICK=1 changes those in brackets):
#   BENCH_PAIRS (21 [4])                lifecycle pairs, for each lifecycle row
#   BENCH_USER (4242:4343)              uid:gid of the non-root row; without
#                                       root, your own uid:gid
#   BENCH_CONCURRENCY (8)               builds at once
#   BENCH_CONCURRENCY_ROUNDS (5 [2])    rounds of each
#   BENCH_OUTPUT_MIB (1024 [64])        output of the throughput rows
#   BENCH_RSS_MIB (64 [16])             output of the small memory row
#   BENCH_RUNS (5 [2])                  rounds of each output size
#   BENCH_ARTIFACT_MIB (1024 [64])      size of the artifact tree
#   BENCH_ARTIFACT_ROUNDS (5 [2])       rounds of the artifact copy
#   BENCH_IMAGE (sibling-run/busybox:local, built if missing)
#   BENCH_ROWS (all)                    sections to run, comma-separated:
#                                       lifecycle, concurrency, output,
#                                       artifacts, cache, remote
#   BENCH_CACHE_ROUNDS (5 [2])          rounds of the cache section
#   BENCH_GO_IMAGE (sibling-run/go:local, built from BENCH_IMAGE if missing)
#   BENCH_REMOTE_FILES (100000 [2000])  small files (1 KiB) of the remote rows
#   BENCH_REMOTE_MIB (1024 [64])        size of their big tree (64 MiB files)
#   BENCH_REMOTE_ROUNDS (3 [2])         alternating rounds of each remote row
#   GO (go on PATH, else /usr/local/go/bin/go)   to build sibling-run
set -euo pipefail

case ${1:-} in
  -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
  "") ;;
  *) echo "bench.sh: no arguments are taken; see --help" >&2; exit 2 ;;
esac

if [ "${BENCH_QUICK:-}" = 1 ]; then q=true; else q=false; fi
pick() { if $q; then echo "$2"; else echo "$1"; fi; } # FULL QUICK
pairs=${BENCH_PAIRS:-$(pick 21 4)}
conc=${BENCH_CONCURRENCY:-8}
conc_rounds=${BENCH_CONCURRENCY_ROUNDS:-$(pick 5 2)}
mib=${BENCH_OUTPUT_MIB:-$(pick 1024 64)}
rss_mib=${BENCH_RSS_MIB:-$(pick 64 16)}
runs=${BENCH_RUNS:-$(pick 5 2)}
art_mib=${BENCH_ARTIFACT_MIB:-$(pick 1024 64)}
art_rounds=${BENCH_ARTIFACT_ROUNDS:-$(pick 5 2)}
image=${BENCH_IMAGE:-sibling-run/busybox:local}
cache_rounds=${BENCH_CACHE_ROUNDS:-$(pick 5 2)}
go_image=${BENCH_GO_IMAGE:-sibling-run/go:local}
remote_files=${BENCH_REMOTE_FILES:-$(pick 100000 2000)}
remote_mib=${BENCH_REMOTE_MIB:-$(pick 1024 64)}
remote_rounds=${BENCH_REMOTE_ROUNDS:-$(pick 3 2)}
rows=${BENCH_ROWS:-all}
sections='lifecycle|concurrency|output|artifacts|cache|remote'
[[ $rows =~ ^(all|($sections)(,($sections))*)$ ]] ||
  { echo "bench.sh: BENCH_ROWS is all or a comma-separated list of ${sections//|/, }; not '$rows'" >&2; exit 2; }
want() { [ "$rows" = all ] || [[ ,$rows, == *,$1,* ]]; } # want SECTION: is it to run?
for n in "$pairs" "$conc" "$conc_rounds" "$mib" "$rss_mib" "$runs" "$art_mib" "$art_rounds" "$cache_rounds" "$remote_files" "$remote_mib" "$remote_rounds"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: BENCH_* counts must be positive integers, not '$n'" >&2; exit 2; }
done
if [ "$(id -u)" = 0 ]; then
  build_user=${BENCH_USER:-4242:4343}
else
  build_user=${BENCH_USER:-$(id -u):$(id -g)}
fi
[[ $build_user =~ ^[1-9][0-9]*:[0-9]+$ ]] || { echo "bench.sh: BENCH_USER must be uid:gid with a uid other than 0, not '$build_user'" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

note() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'bench.sh: %s\n' "$*" >&2; exit 1; }
dot() { printf '.' >&2; }

# --- arithmetic and statistics ----------------------------------------------

# stamp: microseconds since the epoch in REPLY; bash 5's EPOCHREALTIME costs
# no fork.
stamp() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then REPLY=${EPOCHREALTIME//[.,]/}; else REPLY=$(($(date +%s%N) / 1000)); fi
}
calc() { awk "BEGIN { print $1 }"; } # calc EXPR: awk arithmetic
# record NAME VALUE: one more sample of NAME.
record() { echo "$2" >>"$tmp/samples.$1"; }
# stats NAME: "median min max" of NAME's samples.
stats() {
  [ -s "$tmp/samples.$1" ] || { echo nan nan nan; return; }
  sort -g "$tmp/samples.$1" | awk '{ v[NR] = $1 }
    END { if (NR == 0) { print "nan nan nan"; exit }
          m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          print m, v[1], v[NR] }'
}
# cell NAME PRECISION: "median (min–max)" of NAME's samples, rounded.
cell() {
  stats "$1" | awk -v p="$2" '$1 == "nan" { print "n/a"; exit } { printf "%.*f (%.*f–%.*f)\n", p, $1, p, $2, p, $3 }'
}
median() { stats "$1" | cut -d' ' -f1; }
# met CONDITION: yes or **no**, for the table; n/a when a value is missing.
met() {
  case $1 in *nan*) echo n/a; return ;; esac
  if awk "BEGIN { exit !($1) }"; then echo yes; else echo '**no**'; fi
}

# --- setting up ---------------------------------------------------------------

command -v docker >/dev/null || fail "docker is not installed"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || fail "cannot reach the Docker engine"
[ -x "$GO" ] || fail "no go command; set GO=/path/to/go"
if [ -x /usr/bin/time ] && /usr/bin/time -f %M -o /dev/null true 2>/dev/null; then
  gnu_time=true
else
  gnu_time=false
  note "GNU time is missing, so client memory and CPU are not measured; install it with: apt-get install -y time"
fi

run_id=sibling-run-bench-$$-$RANDOM
label=sibling-run-bench=$run_id
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sibling-run-bench.XXXXXX")
cleanup() {
  local status=$? jobs left
  trap - INT TERM
  jobs=$(jobs -p)
  # shellcheck disable=SC2086 # one pid a word
  [ -z "$jobs" ] || kill $jobs 2>/dev/null || true
  wait 2>/dev/null || true
  left=$(docker ps -aq --filter "label=$label" 2>/dev/null || true)
  if [ -n "$left" ]; then
    note "removing this run's leftover containers: $(echo "$left" | tr '\n' ' ')"
    # shellcheck disable=SC2086 # one id a word
    docker rm -f -v $left >/dev/null || status=1
  fi
  # The cache section's caches carry the label too; they outlive their runs.
  left=$(docker volume ls -q --filter "label=$label" 2>/dev/null || true)
  # shellcheck disable=SC2086 # one name a word
  [ -z "$left" ] || docker volume rm $left >/dev/null || status=1
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

# Two working directories: one owned by whoever runs this (root, on a build
# host's agent: the goal's row), one owned by BENCH_USER.
work=$tmp/work
work_user=$tmp/work-user
mkdir "$work" "$work_user"
if [ "$(stat -c %u:%g "$work_user")" != "$build_user" ]; then
  chown "$build_user" "$work_user" 2>/dev/null || fail "cannot give $work_user to $build_user; run as root or set BENCH_USER=$(id -u):$(id -g)"
fi
cd "$work"
# sibling-run remembers images' /etc/passwd by image id; the cache is this
# run's, filled by the non-root row's warm-up, as on an agent after its first
# build with an image.
export XDG_CACHE_HOME=$tmp/cache

# The tools. sibling-run shares its working directory with the build; every
# container carries this run's label, for cleanup only.
# The functions below take a tool's name and use its array through local -n.
# shellcheck disable=SC2034 # used by name
{
  sr=("$tmp/sibling-run" --image "$image" --label "$label" --workdir "$work")
  [ "$(id -u)" = 0 ] || sr+=(--user 0:0) # the goal's row runs as root, like docker run
  sr_user=("$tmp/sibling-run" --image "$image" --label "$label" --workdir "$work_user")
  # The remote mode forced on this engine: the working directory goes through a volume of the run's own.
  sr_remote=("$tmp/sibling-run" --image "$image" --label "$label" --workdir "$work" --remote=true)
  dk=(docker run --rm --label "$label" "$image")
  dk_user=(docker run --rm --label "$label" --user "$build_user" "$image")
  dn=(docker run --rm --label "$label" --log-driver none "$image")
}
declare -A tool_name=([sr]=sibling-run [sr_remote]="sibling-run --remote=true" [sr_user]="sibling-run as $build_user" [dk]="docker run --rm"
  [dk_user]="docker run --rm --user $build_user" [dn]="docker run --rm --log-driver none")

loads=()
sample_load() { loads+=("$(cut -d' ' -f1 /proc/loadavg)"); }
others() { # containers running on the engine that are not this run's
  docker ps -q --filter status=running | grep -cvxF -f <(docker ps -q --filter "label=$label") || true
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
others_before=$(others)
if awk -v l="${load_before%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  note "the machine is busy (load $load_before on $(nproc) CPUs): expect noisy numbers"
fi
bench_start=$(date +%s)

# --- lifecycle ------------------------------------------------------------------

# once TOOL: runs `true` with TOOL; the wall time in ms is in LAST_MS.
once() {
  local -n cmd=$1
  local t0
  stamp; t0=$REPLY
  "${cmd[@]}" true >>"$tmp/life.log" 2>&1 || { tail -n 20 "$tmp/life.log" >&2; fail "${tool_name[$1]} true failed"; }
  stamp
  LAST_MS=$(calc "($REPLY - $t0) / 1000")
}
# lifecycle NAME A B: a warm-up of each, then alternating pairs of A and B.
lifecycle() {
  local name=$1 a=$2 b=$3 i ta tb
  once "$a"; once "$b"
  for ((i = 1; i <= pairs; i++)); do
    if ((i % 2)); then once "$a"; ta=$LAST_MS; once "$b"; tb=$LAST_MS
    else once "$b"; tb=$LAST_MS; once "$a"; ta=$LAST_MS; fi
    record "$name.a" "$ta"; record "$name.b" "$tb"; record "$name.ratio" "$(calc "$ta / $tb")"
    dot
  done
  printf '\n' >&2
  sample_load
}
if want lifecycle; then
note "lifecycle: $pairs alternating pairs of \`true\`, as root"
lifecycle life sr dk
note "lifecycle: $pairs alternating pairs of \`true\`, as $build_user"
lifecycle user sr_user dk_user
note "lifecycle: $pairs alternating pairs of \`true\`, --remote=true against the default"
lifecycle remote sr_remote sr
fi

# --- concurrency ----------------------------------------------------------------

conc_script='echo start; sleep 1; echo done'
# concurrent TOOL: runs BENCH_CONCURRENCY builds with TOOL at once, checks
# each one's exit code and output, and records the total wall time in s.
concurrent() {
  local -n cmd=$1
  local i t0 pids=() rc
  stamp; t0=$REPLY
  for ((i = 1; i <= conc; i++)); do
    "${cmd[@]}" sh -c "$conc_script" >"$tmp/conc.$i.out" 2>"$tmp/conc.$i.err" &
    pids+=($!)
  done
  for ((i = 1; i <= conc; i++)); do
    rc=0
    wait "${pids[i - 1]}" || rc=$?
    [ "$rc" = 0 ] || { cat "$tmp/conc.$i.err" >&2; fail "${tool_name[$1]} build $i of $conc at once exited with $rc"; }
    [ "$(cat "$tmp/conc.$i.out")" = "$(printf 'start\ndone')" ] || fail "${tool_name[$1]} build $i of $conc at once printed: $(head -c 200 "$tmp/conc.$i.out")"
  done
  stamp
  record "conc.$1" "$(calc "($REPLY - $t0) / 1000000")"
}
if want concurrency; then
note "concurrency: $conc_rounds alternating rounds of $conc builds at once"
for ((r = 1; r <= conc_rounds; r++)); do
  if ((r % 2)); then concurrent sr; concurrent dk; else concurrent dk; concurrent sr; fi
  record conc.ratio "$(calc "$(tail -n 1 "$tmp/samples.conc.sr") / $(tail -n 1 "$tmp/samples.conc.dk")")"
  dot
done
printf '\n' >&2
sample_load
fi

# --- output and memory ------------------------------------------------------------

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
# stream TOOL MIB: MIB MiB through TOOL into wc -c; records MB/s, the byte
# count, peak RSS in KiB and CPU seconds.
stream() {
  local -n cmd=$1
  local t0 bytes rss=nan user=0 sys=0 timer=()
  $gnu_time && timer=(/usr/bin/time -f '%M %U %S' -o "$tmp/time")
  stamp; t0=$REPLY
  if ! "${timer[@]}" "${cmd[@]}" sh -c "$(producer "$2")" 2>>"$tmp/out.log" | wc -c >"$tmp/count"; then
    tail -n 20 "$tmp/out.log" >&2
    fail "${tool_name[$1]} failed while writing $2 MiB"
  fi
  stamp
  bytes=$(tr -d ' ' <"$tmp/count")
  [ "$bytes" = $(($2 * 1048576)) ] || fail "${tool_name[$1]} passed on $bytes bytes of $(($2 * 1048576))"
  record "out$2.$1" "$(calc "$bytes / ($REPLY - $t0)")"
  $gnu_time && read -r rss user sys <"$tmp/time"
  record "rss$2.$1" "$rss"
  $gnu_time && record "cpu$2.$1" "$(calc "$user + $sys")"
  return 0
}
# output MIB: BENCH_RUNS rounds of the three tools in rotating order.
output() {
  local order=(sr dn dk) r k
  for ((r = 0; r < runs; r++)); do
    for k in 0 1 2; do stream "${order[(r + k) % 3]}" "$1"; done
    record "out$1.ratio_none" "$(calc "$(tail -n 1 "$tmp/samples.out$1.sr") / $(tail -n 1 "$tmp/samples.out$1.dn")")"
    record "out$1.ratio_default" "$(calc "$(tail -n 1 "$tmp/samples.out$1.sr") / $(tail -n 1 "$tmp/samples.out$1.dk")")"
    dot
  done
  printf '\n' >&2
  sample_load
}
if want output; then
note "output: $runs rounds of $rss_mib MiB, then $runs rounds of $mib MiB (docker run's default logging is the slow one)"
output "$rss_mib"
[ "$mib" = "$rss_mib" ] || output "$mib"
fi

# --- artifacts --------------------------------------------------------------------

files=$(((art_mib + 63) / 64))
art_bytes=$((files * 64 * 1048576))
make_out="mkdir /out; i=0; while [ \$i -lt $files ]; do dd if=/dev/urandom of=/out/f\$i bs=1048576 count=64 2>/dev/null; i=\$((i + 1)); done"
bytes_in() { du -sb --apparent-size "$1" | cut -f1; }
# took_ms DURATION: a Go duration as sibling-run logs it (850ms, 1.5s, 1m2.5s), in ms.
took_ms() {
  awk -v d="$1" 'BEGIN { ms = 0
    while (match(d, /^[0-9.]+(ms|µs|us|ns|h|m|s)/)) {
      n = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
      v = n + 0; u = n; sub(/^[0-9.]+/, "", u)
      ms += u == "h" ? v * 3600000 : u == "m" ? v * 60000 : u == "s" ? v * 1000 : u == "ms" ? v : v / 1000
    }
    print ms }'
}
copy_sr() { # sibling-run --artifact; the copy's time from its own log
  local log bytes took
  rm -rf "$work/sr"
  log=$("${sr[@]}" --log-format json --artifact "/out:sr" sh -c "$make_out" 2>&1 >/dev/null) || { echo "$log" >&2; fail "sibling-run --artifact failed"; }
  bytes=$(echo "$log" | grep '"copied the artifact"' | sed -n 's/.*"bytes":\([0-9]*\).*/\1/p')
  took=$(echo "$log" | grep '"copied the artifact"' | sed -n 's/.*"took":"\([^"]*\)".*/\1/p')
  if [ "$bytes" != "$art_bytes" ] || [ "$(bytes_in "$work/sr/out")" -lt "$art_bytes" ]; then
    fail "sibling-run copied $bytes bytes ($(bytes_in "$work/sr/out") on disk), want $art_bytes"
  fi
  record art.sr "$(calc "$bytes / ($(took_ms "$took") * 1000)")"
  rm -rf "$work/sr"
}
copy_dk() { # docker cp from an exited container; the copy command's time
  local id t0
  rm -rf "$work/dk"; mkdir "$work/dk"
  id=$(docker create --label "$label" --log-driver none "$image" sh -c "$make_out")
  docker start -a "$id" >/dev/null
  stamp; t0=$REPLY
  docker cp "$id:/out" "$work/dk/" 2>/dev/null
  stamp
  docker rm -v "$id" >/dev/null
  [ "$(bytes_in "$work/dk/out")" -ge "$art_bytes" ] || fail "docker cp copied $(bytes_in "$work/dk/out") bytes, want $art_bytes"
  record art.dk "$(calc "$art_bytes / ($REPLY - $t0)")"
  rm -rf "$work/dk"
}
if want artifacts; then
note "artifacts: $art_rounds alternating rounds of $((art_bytes / 1048576)) MiB in $files files"
for ((r = 1; r <= art_rounds; r++)); do
  if ((r % 2)); then copy_sr; copy_dk; else copy_dk; copy_sr; fi
  record art.ratio "$(calc "$(tail -n 1 "$tmp/samples.art.sr") / $(tail -n 1 "$tmp/samples.art.dk")")"
  dot
done
printf '\n' >&2
sample_load
fi

# --- warm builds: --cache ---------------------------------------------------------

go_build='go vet ./... && go test ./... && go build -o hello .'
# timed NAME CMD...: runs CMD and records its wall time in s as NAME.
timed() {
  local name=$1 t0
  shift
  stamp; t0=$REPLY
  "$@" >>"$tmp/cache.log" 2>&1 || { tail -n 20 "$tmp/cache.log" >&2; fail "the demo's build failed ($name)"; }
  stamp
  record "$name" "$(calc "($REPLY - $t0) / 1000000")"
}
# host_build: the demo's build on this host, with a GOCACHE of its own and
# the Go image's settings.
host_build() {
  (cd "$tmp/hello-host" && export GOCACHE=$tmp/host-gocache GOPATH=$tmp/host-gopath GOFLAGS='' GOTOOLCHAIN=local &&
    "$GO" vet ./... && "$GO" test ./... && "$GO" build -o hello .)
}
if want cache; then
  if ! docker image inspect "$go_image" >/dev/null 2>&1; then
    [ "$go_image" = sibling-run/go:local ] || fail "image $go_image is not on the engine"
    note "building the Go image $go_image from $image"
    GO=$GO "$here/scripts/go-image.sh" "$go_image" >/dev/null
  fi
  gocache=$(docker image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$go_image" | sed -n 's/^GOCACHE=//p')
  [ -n "$gocache" ] || fail "image $go_image sets no GOCACHE"
  for d in hello-nocache hello-cache hello-docker hello-host; do
    mkdir "$tmp/$d"
    cp -R "$here/scripts/demo/hello/." "$tmp/$d/"
  done
  chown -R "$build_user" "$tmp/hello-nocache" "$tmp/hello-cache" "$tmp/hello-docker" 2>/dev/null || fail "cannot give the demo's copies to $build_user"
  # The job's key, as Bamboo sets it, names the cache.
  # shellcheck disable=SC2034 # used by name
  {
    sr_nocache=("$tmp/sibling-run" --image "$go_image" --label "$label" --workdir "$tmp/hello-nocache" sh -c "$go_build")
    sr_cache=(env "bamboo_buildKey=BENCH-CACHE-$$" "$tmp/sibling-run" --image "$go_image" --label "$label" --workdir "$tmp/hello-cache" --cache "$gocache" sh -c "$go_build")
  }
  note "cache: the first build with a fresh cache, a warm-up on the host, then $cache_rounds rounds of the demo's build in rotating order"
  timed cache.cold "${sr_cache[@]}"
  cache_volume=$(docker volume ls -q --filter "label=$label" --filter "label=sibling-run.cache.path=$gocache")
  [ "$(echo "$cache_volume" | wc -w)" = 1 ] || fail "sibling-run --cache made the volumes '$cache_volume', want one"
  # shellcheck disable=SC2034 # used by name
  dk_cache=(docker run --rm --label "$label" --user "$build_user" -v "$cache_volume:$gocache" -v "$tmp/hello-docker:$tmp/hello-docker"
    -w "$tmp/hello-docker" "$go_image" sh -c "$go_build")
  timed cache.docker_warmup "${dk_cache[@]}"
  host_build >>"$tmp/cache.log" 2>&1 || { tail -n 20 "$tmp/cache.log" >&2; fail "the demo's build failed on the host"; }
  order=(nocache cache docker host)
  for ((r = 0; r < cache_rounds; r++)); do
    for k in 0 1 2 3; do
      case ${order[(r + k) % 4]} in
        nocache) timed cache.nocache "${sr_nocache[@]}" ;;
        cache) timed cache.warm "${sr_cache[@]}" ;;
        docker) timed cache.docker "${dk_cache[@]}" ;;
        host) timed cache.host host_build ;;
      esac
    done
    record cache.ratio_host "$(calc "$(tail -n 1 "$tmp/samples.cache.warm") / $(tail -n 1 "$tmp/samples.cache.host")")"
    record cache.ratio_docker "$(calc "$(tail -n 1 "$tmp/samples.cache.warm") / $(tail -n 1 "$tmp/samples.cache.docker")")"
    record cache.ratio_nocache "$(calc "$(tail -n 1 "$tmp/samples.cache.nocache") / $(tail -n 1 "$tmp/samples.cache.warm")")"
    dot
  done
  printf '\n' >&2
  sample_load
fi

# --- remote engine: the working directory copied in and back --------------------

# The copy mode (--remote=true) on this engine, against docker cp of the same
# tree into and out of a volume. sibling-run's times are the ones it logs for
# each copy; docker cp's are its whole command. Copy in: the tree is in the
# working directory before the build; copy back: the build deletes it and
# writes another as big, which comes back, and the deletion is applied
# (for docker cp, by rm -rf after it). Each copy starts from written-back
# disks (sync before it, and at the build's end), so that neither tool pays
# for the writeback of what the other, or the round before, wrote.
remote_tree() { # KIND DIR: a script for sh that writes the small or the big tree into DIR
  case $1 in
    # printf is a builtin: no fork per file, so the tree is written in seconds.
    small) printf '%s\n' "mkdir -p $2 && cd $2 && s=\$(head -c 768 /dev/urandom | base64 | tr -d '\\n') && i=0; while [ \$i -lt $remote_files ]; do d=d\$((i / 1000)); [ -d \$d ] || mkdir \$d; printf %s \"\$s\" > \$d/f\$i; i=\$((i + 1)); done" ;;
    big) printf '%s\n' "mkdir -p $2 && i=0; while [ \$i -lt $(((remote_mib + 63) / 64)) ]; do dd if=/dev/urandom of=$2/f\$i bs=1048576 count=64 2>/dev/null; i=\$((i + 1)); done" ;;
  esac
}
remote_work=$tmp/remote-work
logged_ms() { # MESSAGE LOG: the took of MESSAGE's line in LOG (JSON lines), in ms
  took_ms "$(echo "$2" | grep "\"$1" | sed -n 's/.*"took":"\([^"]*\)".*/\1/p')"
}
remote_sr() { # KIND: one copy in and one copy back by sibling-run, the times it logs
  local log
  rm -rf "$remote_work"; mkdir -p "$remote_work"
  sh -c "$(remote_tree "$1" "$remote_work/in")"
  sync
  log=$("$tmp/sibling-run" --image "$image" --label "$label" --workdir "$remote_work" --remote=true --network none \
    --log-format json sh -c "rm -rf in && $(remote_tree "$1" out) && sync" 2>&1 >/dev/null) || { echo "$log" >&2; fail "sibling-run --remote=true failed"; }
  record "remote.$1.in.sr" "$(logged_ms "copied the working directory in" "$log")"
  record "remote.$1.back.sr" "$(logged_ms "copied the working directory back" "$log")"
  if [ ! -d "$remote_work/out" ] || [ -e "$remote_work/in" ]; then fail "the build's tree did not come back, or its deletion was not applied"; fi
  [ "$(find "$remote_work/out" -type f | wc -l)" = "$remote_count" ] || fail "sibling-run brought back $(find "$remote_work/out" -type f | wc -l) files, want $remote_count"
  rm -rf "$remote_work"
}
remote_dk() { # KIND: docker cp of the same tree into a volume and out of it
  local id t0 vol=sibling-run-bench-$$-remote
  rm -rf "$remote_work"; mkdir -p "$remote_work"
  sh -c "$(remote_tree "$1" "$remote_work/in")"
  docker volume create --label "$label" "$vol" >/dev/null
  id=$(docker create --label "$label" --network none -v "$vol:/w" "$image" sh -c "rm -rf /w/in && $(remote_tree "$1" /w/out) && sync")
  sync
  stamp; t0=$REPLY
  docker cp "$remote_work/in" "$id:/w/"
  stamp; record "remote.$1.in.dk" "$(calc "($REPLY - $t0) / 1000")"
  docker start -a "$id" >/dev/null
  # The same work as the copy back: the tree the build wrote, and the one it
  # deleted deleted here too (docker cp cannot; rm -rf does it).
  stamp; t0=$REPLY
  docker cp "$id:/w/out" "$remote_work/" && rm -rf "$remote_work/in"
  stamp; record "remote.$1.back.dk" "$(calc "($REPLY - $t0) / 1000")"
  [ "$(find "$remote_work/out" -type f | wc -l)" = "$remote_count" ] || fail "docker cp brought back a different number of files"
  docker rm -v "$id" >/dev/null; docker volume rm "$vol" >/dev/null
  rm -rf "$remote_work"
}
if want remote; then
  for kind in small big; do
    if [ $kind = small ]; then remote_count=$remote_files; else remote_count=$(((remote_mib + 63) / 64)); fi
    note "remote: $remote_rounds alternating rounds of the $kind tree"
    for ((r = 1; r <= remote_rounds; r++)); do
      if ((r % 2)); then remote_sr $kind; remote_dk $kind; else remote_dk $kind; remote_sr $kind; fi
      for way in in back; do # docker cp's time over sibling-run's: sibling-run's speed in docker cp's
        record "remote.$kind.$way.ratio" "$(calc "$(tail -n 1 "$tmp/samples.remote.$kind.$way.dk") / $(tail -n 1 "$tmp/samples.remote.$kind.$way.sr")")"
      done
      dot
    done
    printf '\n' >&2
  done
  sample_load
fi

# --- the table ----------------------------------------------------------------------

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
load_max=$(printf '%s\n' "${loads[@]}" | sort -g | tail -n 1)
others_after=$(others)
took=$(($(date +%s) - bench_start))
mem_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
engine=$(docker version --format '{{.Server.Version}}, API {{.Server.APIVersion}}')
driver=$(docker info --format '{{.Driver}}, cgroup v{{.CgroupVersion}}, default log driver {{.LoggingDriver}}' 2>/dev/null || echo '?')
mib_cell() { # NAME: peak RSS in MiB, median (min–max)
  if $gnu_time; then stats "$1" | awk '{ printf "%.1f (%.1f–%.1f)\n", $1 / 1024, $2 / 1024, $3 / 1024 }'; else echo n/a; fi
}
read -r _ _ rss_small_max < <(stats "rss$rss_mib.sr")
read -r _ _ rss_max < <(stats "rss$mib.sr")
rss_growth=nan
want output && $gnu_time && rss_growth=$(calc "$rss_max / $rss_small_max")

show_main=false
want lifecycle || want concurrency || want output || want artifacts && show_main=true
if $show_main; then
cat <<EOF
## sibling-run vs docker: $(date -u '+%Y-%m-%d %H:%M UTC')

Machine: $(nproc) CPUs, ${mem_gib} GiB memory, Docker engine $engine ($driver), kernel $(uname -r); $("$tmp/sibling-run" version), image \`$image\`. Load average $load_before before, $load_after after (1-minute, at most $load_max between sections); $others_before other containers running at the start, $others_after at the end. The run took ${took} s.

| measure | sibling-run | docker | sibling-run / docker | goal | met |
| --- | ---: | ---: | ---: | --- | --- |
| lifecycle of \`true\` as root, wall ms, median (min–max) of $pairs alternating pairs; docker: \`docker run --rm\` | $(cell life.a 0) | $(cell life.b 0) | $(cell life.ratio 2) | ≤ 1.0 | $(met "$(median life.ratio) <= 1.0") |
| lifecycle of \`true\` as $build_user (the working directory's owner), wall ms, the same; docker: \`docker run --rm --user $build_user\` ¹ | $(cell user.a 0) | $(cell user.b 0) | $(cell user.ratio 2) | | |
| lifecycle of \`true\` with \`--remote=true\` (copy in and back through a volume of the run's own), wall ms, the same; against sibling-run's default (the directory mounted) | $(cell remote.a 0) | $(cell remote.b 0) | $(cell remote.ratio 2) | | |
| $conc builds at once (\`$conc_script\`), total wall s, median (min–max) of $conc_rounds alternating rounds; docker: \`docker run --rm\` ² | $(cell conc.sr 2) | $(cell conc.dk 2) | $(cell conc.ratio 2) | | |
| output of $mib MiB to stdout, MB/s of wall time, median (min–max) of $runs rounds; docker: \`docker run --rm --log-driver none\` ³ | $(cell "out$mib.sr" 0) | $(cell "out$mib.dn" 0) | $(cell "out$mib.ratio_none" 2) | ≥ 0.95 | $(met "$(median "out$mib.ratio_none") >= 0.95") |
| the same; docker: \`docker run --rm\`, the engine's default logging | $(cell "out$mib.sr" 0) | $(cell "out$mib.dk" 0) | $(cell "out$mib.ratio_default" 2) | ≥ 4 | $(met "$(median "out$mib.ratio_default") >= 4") |
| client CPU s (user + sys) for $mib MiB, median (min–max); docker: \`--log-driver none\` | $(cell "cpu$mib.sr" 2) | $(cell "cpu$mib.dn" 2) | | | |
| client peak RSS streaming $rss_mib MiB, MiB, median (min–max); docker: \`--log-driver none\` | $(mib_cell "rss$rss_mib.sr") | $(mib_cell "rss$rss_mib.dn") | | ≤ 20 | $(met "$rss_small_max <= 20480") |
| client peak RSS streaming $mib MiB, MiB, the same | $(mib_cell "rss$mib.sr") | $(mib_cell "rss$mib.dn") | largest: $(awk -v g="$rss_growth" 'BEGIN { printf "%.2f", g }')× of $rss_mib MiB's | ≤ 20, flat | $(met "$rss_max <= 20480 && ($rss_growth <= 1.1 || $rss_max - $rss_small_max <= 2048)") |
| copy $((art_bytes / 1048576)) MiB ($files files) out of an exited container, MB/s, median (min–max) of $art_rounds alternating rounds; docker: \`docker cp\` ⁴ | $(cell art.sr 0) | $(cell art.dk 0) | $(cell art.ratio 2) | ≥ 1.0 | $(met "$(median art.ratio) >= 1.0") |

Ratios are medians of per-pair (per-round) ratios, with their min–max. Every byte count was checked: each output run passed on exactly $mib MiB (or $rss_mib MiB) to \`wc -c\`, each artifact copy wrote $art_bytes bytes, each concurrent build exited 0 and printed exactly its two lines. sibling-run runs with its defaults (\`--init\`, \`--log-driver none\`, the working directory bind-mounted); docker run with its own (no init, no mount, the engine's default log driver unless named).

1. sibling-run gives a uid the image lacks a passwd entry and a HOME: an inspect and one archive call to the engine before the start, once the image's /etc/passwd is remembered (the first run with an image reads it, a second archive call); \`docker run --user\` writes no passwd entry, so the build there has no HOME of its own.
2. Every build creates, starts, waits for and removes its container through the one engine; the ratio is the total wall time of all $conc.
3. Every tool writes to the same consumer, a pipe into \`wc -c\`; the build writes 64-byte lines from /dev/shm with busybox cat. The rounds rotate the order of the three tools.
4. sibling-run's time is the one it logs for the artifact (from the request to the last byte on disk), with the build (\`dd\` from /dev/urandom) not counted; docker cp's is its whole command. Both copy into a new directory on the same filesystem.
EOF
fi

if want cache; then
  cat <<EOF

## Warm builds with --cache: $(date -u '+%Y-%m-%d %H:%M UTC')

Machine: $(nproc) CPUs, ${mem_gib} GiB memory, Docker engine $engine ($driver); $("$tmp/sibling-run" version), image \`$go_image\`. Load average $load_before before, $load_after after (1-minute, at most $load_max between sections). The build, of scripts/demo/hello as $build_user: \`$go_build\`.

| measure | sibling-run --cache $gocache | other | ratio | goal | met |
| --- | ---: | ---: | ---: | --- | --- |
| warm build, wall s, median (min–max) of $cache_rounds rounds in rotating order; other: the same on this host, warm ¹ | $(cell cache.warm 2) | $(cell cache.host 2) | $(cell cache.ratio_host 2) (--cache / host) | ≤ 1.5 | $(met "$(median cache.ratio_host) <= 1.5") |
| the same; other: \`docker run --rm --user $build_user -v CACHE:$gocache\`, the same cache volume ² | $(cell cache.warm 2) | $(cell cache.docker 2) | $(cell cache.ratio_docker 2) (--cache / docker) | | |
| the same; other: sibling-run without a cache | $(cell cache.warm 2) | $(cell cache.nocache 2) | $(cell cache.ratio_nocache 1) (no cache / --cache) | ≥ 5 | $(met "$(median cache.ratio_nocache) >= 5") |
| the first build with a fresh cache (seeded from the image's $gocache), wall s, one run | $(cell cache.cold 2) | | | | |

1. The host runs the Go toolchain the image was made from ($("$GO" version | cut -d' ' -f3)), with a GOCACHE of its own in the bench's directory, warmed by one build before the rounds. Every build is the demo's whole build: vet, test (cached test results count, as they would on an agent) and the binary.
2. What the engine itself costs for the same warm build: the container's start and removal, and the toolchain read from the image's layers through the engine's storage driver.
EOF
fi

if want remote; then
  cat <<EOF

## Remote engine, the working directory copied: $(date -u '+%Y-%m-%d %H:%M UTC')

Machine: $(nproc) CPUs, ${mem_gib} GiB memory, Docker engine $engine ($driver); $("$tmp/sibling-run" version), image \`$image\`. Load average $load_before before, $load_after after (1-minute, at most $load_max between sections). sibling-run runs with \`--remote=true\` on this engine (the copy of a remote engine, without a network between); docker: \`docker cp\` of the same tree into and out of the volume of a created container.

| measure | sibling-run | docker cp | docker cp / sibling-run (speed) | goal | met |
| --- | ---: | ---: | ---: | --- | --- |
| copy in: $remote_files files of 1 KiB in $(((remote_files + 999) / 1000)) directories, ms, median (min–max) of $remote_rounds alternating rounds | $(cell remote.small.in.sr 0) | $(cell remote.small.in.dk 0) | $(cell remote.small.in.ratio 2) | ≥ 0.9 | $(met "$(median remote.small.in.ratio) >= 0.9") |
| copy back: a tree as big, written by the build, which deleted the first | $(cell remote.small.back.sr 0) | $(cell remote.small.back.dk 0) | $(cell remote.small.back.ratio 2) | ≥ 0.9 | $(met "$(median remote.small.back.ratio) >= 0.9") |
| copy in: $((((remote_mib + 63) / 64) * 64)) MiB in files of 64 MiB, ms, the same | $(cell remote.big.in.sr 0) | $(cell remote.big.in.dk 0) | $(cell remote.big.in.ratio 2) | ≥ 0.9 | $(met "$(median remote.big.in.ratio) >= 0.9") |
| copy back: a tree as big, written by the build, which deleted the first | $(cell remote.big.back.sr 0) | $(cell remote.big.back.dk 0) | $(cell remote.big.back.ratio 2) | ≥ 0.9 | $(met "$(median remote.big.back.ratio) >= 0.9") |

sibling-run's times are those it logs for each copy; docker cp's are its whole command, and for the copy back also the \`rm -rf\` of the deleted tree that sibling-run's copy back applies (deleting 100 000 small files is seconds of it). Each round checks that the whole tree came back and that the build's deletion of the copied-in tree was applied.
EOF
fi
