#!/bin/sh
# Runs one fuzz target: replays the seed corpus, then fuzzes for SECONDS
# (one process, one worker). New inputs go to WORK/corpus, never to the
# seeds; crashes to WORK/artifacts/. WORK/corpus starts empty unless
# FUZZ_KEEP_CORPUS=1 (then a run resumes from the last one's corpus).
# FRAMEFLOW_FUZZ_SECONDS overrides SECONDS. Prints the executions, speed
# and coverage of the run.
#   run.sh BINARY SEEDS WORK SECONDS [libFuzzer flags...]
set -eu
bin=$1 seeds=$2 work=$3 seconds=${FRAMEFLOW_FUZZ_SECONDS:-$4}
shift 4
name=$(basename "$bin")
[ "${FUZZ_KEEP_CORPUS:-0}" = 1 ] || rm -rf "$work/corpus"
mkdir -p "$work/corpus" "$work/artifacts"
log="$work/$name.log"
start=$(date +%s)
rc=0
"$bin" -max_total_time="$seconds" -timeout=30 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" "$seeds" >"$log" 2>&1 || rc=$?
took=$(($(date +%s) - start))
if [ "$rc" -ne 0 ]; then
  tail -n 80 "$log"
  echo "$name: FAILED (exit $rc) after $took s; crash input in $work/artifacts/, log $log"
  exit "$rc"
fi
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
echo "$name: ${execs:-?} execs in $took s (${speed:-?}/s), cov ${cov:-?}, ft ${ft:-?}," \
  "corpus $(ls "$work/corpus" | wc -l) + $(ls "$seeds" | wc -l) seeds, no crash"
