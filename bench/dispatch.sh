#!/usr/bin/env bash
# Dispatch throughput and latency of the schedule server (issue 3, item 2).
#
#   bench/dispatch.sh [--quick] BUILD_DIR/frameflow
#
# Runs build/bench/dispatch_load (simulated render servers speaking the real
# render-server protocol to a real `frameflow schedule-server` with its real
# SQLite database; see bench/dispatch_load.cc) in two modes:
#   saturation  every slot reports its chunk done the moment it arrives
#               (a no-op package): dispatches/s is the server's capacity;
#   at load     every slot holds a chunk for a fixed time, so the offered
#               load is slots / hold; latency (slot reports done -> its next
#               assignment arrives) is measured there. Under saturation that
#               latency is slots / throughput by Little's law, whatever the
#               server does, so it is reported but not judged.
# Medians and min-max over RUNS runs (default 3; the 1,000,000-frame points
# run once each). --quick: one run of the small points only.
# BENCH_MD=<file>: the markdown section is appended to it. The last lines on
# stdout are RESULT lines (everything else goes to stderr).
set -euo pipefail

quick=0
if [[ "${1:-}" == "--quick" ]]; then
  quick=1
  shift
fi
ff="${1:?usage: bench/dispatch.sh [--quick] BUILD_DIR/frameflow}"
load="$(dirname "$ff")/bench/dispatch_load"
[[ -x "$load" ]] || { echo "dispatch.sh: $load not built (cmake --build ... --target dispatch_load)" >&2; exit 1; }
runs="${RUNS:-3}"
out="$(mktemp -d /tmp/ff-bench-dispatch-XXXXXX)"
trap 'rm -rf "$out"' EXIT

# name servers slots-per-server frames hold-ms runs jobs
points=()
if ((quick)); then
  points+=("sat-1000-10k 100 10 10000 0 1 1" "load-1000-5k 100 10 10000 200 1 1")
else
  points+=(
    "sat-100-10k 10 10 10000 0 $runs 1"
    "sat-1000-10k 100 10 10000 0 $runs 1"
    "sat-10000-10k 250 40 10000 0 $runs 1"
    "sat-100-1M 10 10 1000000 0 1 1"
    "sat-1000-1M 100 10 1000000 0 1 1"
    "sat-10000-1M 250 40 1000000 0 1 1"
    "sat-1000-100k-1000jobs 100 10 100000 0 $runs 1000"
    "load-100-5k 10 10 20000 20 $runs 1"
    "load-1000-5k 100 10 20000 200 $runs 1"
    "load-1000-20k 100 10 60000 50 $runs 1"
    "load-10000-5k 250 40 40000 2000 $runs 1"
  )
fi

# stats FIELD FILE -> "median min max" of key FIELD over the RESULT lines.
stats() {
  grep -o " $1=[0-9.]*" "$2" | cut -d= -f2 | sort -g |
    awk '{v[NR]=$1} END {m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2;
                         printf "%s %s %s", m, v[1], v[NR]}'
}
fmt() {  # "median min max" -> "median (min-max)"
  read -r m lo hi <<<"$1"
  if [[ "$lo" == "$hi" ]]; then printf "%s" "$m"; else printf "%s (%s-%s)" "$m" "$lo" "$hi"; fi
}

results=()
table="| point | slots | queued frames | jobs | hold ms | dispatches/s | latency p50 ms | p99 ms | max ms | server CPU s | peak RSS MiB |
|---|---|---|---|---|---|---|---|---|---|---|"
for p in "${points[@]}"; do
  read -r name servers slots frames hold n jobs <<<"$p"
  f="$out/$name.txt"
  : >"$f"
  for ((i = 1; i <= n; i++)); do
    echo "dispatch: $name run $i/$n ($servers servers x $slots slots, $frames frames in $jobs job(s), hold $hold ms)" >&2
    "$load" --frameflow "$ff" --servers "$servers" --slots "$slots" --frames "$frames" \
      --jobs "$jobs" --hold-ms "$hold" | tee -a "$f" | grep -v '^RESULT' >&2
  done
  per_s=$(stats per_s "$f"); p50=$(stats p50_ms "$f"); p99=$(stats p99_ms "$f")
  max=$(stats max_ms "$f"); cpu=$(stats cpu_s "$f"); rss=$(stats rss_mib "$f")
  table+=$'\n'"| $name | $((servers * slots)) | $frames | $jobs | $hold | $(fmt "$per_s") | $(fmt "$p50") | $(fmt "$p99") | $(fmt "$max") | $(fmt "$cpu") | $(fmt "$rss") |"
  read -r per_s_m _ <<<"$per_s"; read -r p99_m _ <<<"$p99"; read -r p50_m _ <<<"$p50"; read -r rss_m _ <<<"$rss"
  results+=("RESULT dispatch_${name} slots=$((servers * slots)) frames=$frames jobs=$jobs hold_ms=$hold runs=$n per_s=$per_s_m p50_ms=$p50_m p99_ms=$p99_m rss_mib=$rss_m")
done

quick_flag=""
if ((quick)); then quick_flag="--quick "; fi
machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(($(grep MemTotal /proc/meminfo | awk '{print $2}') / 1024 / 1024)) GiB"
md="## Dispatch throughput and latency

Command: \`bench/dispatch.sh $quick_flag$ff\` (RUNS=$runs; the 1,000,000-frame points run once).
Machine: $machine. Load generator and schedule server share the machine.

$table

Points: \`sat-*\` = saturation (no-op package, a slot reports done at once);
\`load-*\` = each slot holds a chunk for a random time, uniform in [0, 2 x
*hold*] ms, so the offered load is slots/hold chunks/s (5k or 20k in the
name). Latency = a slot's result sent -> its next assignment received.
Published anchors (not run here): Slurm ~500 jobs/s, Tractor >500 tasks/s,
OpenCue stress test ~975 frames/s."
echo "$md" >&2
md+=$'\n\n```\n'"$(printf '%s\n' "${results[@]}")"$'\n```'
if [[ -n "${BENCH_MD:-}" ]]; then printf '%s\n\n' "$md" >>"$BENCH_MD"; fi
printf '%s\n' "${results[@]}"
