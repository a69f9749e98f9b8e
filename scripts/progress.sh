# shellcheck shell=bash
# What agent-images.sh and go-image.sh share for their long steps. Sourced,
# not run: the caller defines say and die, sets context (a directory for
# the log) and progress_seconds, and kills $progress_pid in its cleanup.

# run_with_progress WHAT COMMAND... runs COMMAND with its output in a log;
# every progress_seconds it says that WHAT still runs, with the log's last
# line, and at the end how long it took. On failure it prints the log's end
# and dies.
# shellcheck disable=SC2154 # context and progress_seconds are the caller's
run_with_progress() {
  local what=$1 log=$context/progress.log t0=$SECONDS next status=0
  shift
  "$@" >"$log" 2>&1 &
  progress_pid=$!
  next=$((SECONDS + progress_seconds))
  while kill -0 "$progress_pid" 2>/dev/null; do
    sleep 1
    if [ "$SECONDS" -ge "$next" ]; then
      say "$what: $((SECONDS - t0))s so far; $(tail -n 1 "$log" | cut -c1-100)"
      next=$((SECONDS + progress_seconds))
    fi
  done
  wait "$progress_pid" || status=$?
  progress_pid=""
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    die "$what failed (exit $status)"
  fi
  say "$what: done in $((SECONDS - t0))s"
}
