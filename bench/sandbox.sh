#!/usr/bin/env bash
# The I/O wrapper's launch overhead (issue 5; goal: at most 5 ms per chunk).
#
# A. The wrapper alone: `frameflow-wrap` running /bin/true with a render
#    server's usual options (read-only /usr and /etc files, an input dir, a
#    tmpfs output collected afterwards, memory and process limits), against
#    /bin/true run bare, interleaved, N times each. Also the wrapper's own
#    "launch" figure: from its start to the program's exec (its report).
#    When /sys/kernel/rcu_expedited is writable, the wrapped runs are
#    repeated with it set to 1 (restored after): each cgroup v1 join waits
#    for an RCU grace period, and that switch shows how much of the time
#    that is.
# B. Through a site: one render server with one slot runs a job of CHUNKS
#    one-frame chunks of /bin/true, the site's local jobs wrapped, against
#    the same job run plain (sandbox.local_jobs = "plain"), RUNS times each,
#    interleaved: the per-chunk difference is what wrapping costs a chunk
#    end to end (secure location, wrapper, report).
#
# Usage: bench/sandbox.sh [--quick] build/frameflow
#   N=200 (--quick: 40)  RUNS=3 (--quick: 1)  CHUNKS=200 (--quick: 50)
# Ends with: RESULT sandbox_launch ...  and  RESULT sandbox_chunk ...
set -euo pipefail
source "$(dirname "$0")/_lib.sh"
bench_init "$@"
n=${N:-200}
runs=${RUNS:-3}
chunks=${CHUNKS:-200}
if [ "$BENCH_QUICK" = 1 ]; then
  n=${N:-40}
  runs=${RUNS:-1}
  chunks=${CHUNKS:-50}
fi
[ "$(id -u)" = 0 ] || bench_die "the I/O wrapper needs root"
wrap=$(dirname "$BENCH_BIN")/frameflow-wrap
[ -x "$wrap" ] || bench_die "$wrap: not built"
w=$BENCH_WORK
mkdir -p "$w/input" "$w/collect"
echo scene > "$w/input/scene.txt"

usec() { # EPOCHREALTIME difference in microseconds
  local a=${1/./} b=${2/./}
  echo $((10#$b - 10#$a))
}
median_ms() { awk '{ print $1 / 1000 }' | bench_stats | awk '{ print $1 }'; }

wrapped_true() { # NAME
  "$wrap" --name "bench-$1" --uid 2099999001 --gid 2099999001 --ro /usr --ro /etc/ld.so.cache \
    --input "$w/input" --output /out --collect-to "$w/collect" --memory 1G --processes 256 \
    --report "$w/report.json" -- /bin/true
}

# ---------------------------------------------------------------- part A ---
part_a() { # LABEL: N interleaved pairs; prints "bare_ms wrapped_ms launch_ms"
  : > "$w/bare.$1"
  : > "$w/wrapped.$1"
  : > "$w/launch.$1"
  local i t0 t1
  for i in $(seq "$n"); do
    t0=$EPOCHREALTIME
    /bin/true
    t1=$EPOCHREALTIME
    usec "$t0" "$t1" >> "$w/bare.$1"
    t0=$EPOCHREALTIME
    wrapped_true "$1-$i"
    t1=$EPOCHREALTIME
    usec "$t0" "$t1" >> "$w/wrapped.$1"
    sed -n 's/.*"launch_us": \([0-9]*\).*/\1/p' "$w/report.json" >> "$w/launch.$1"
  done
  echo "$(median_ms < "$w/bare.$1") $(median_ms < "$w/wrapped.$1") $(median_ms < "$w/launch.$1")"
}
spaced() { # LABEL: median ms of wrapped runs one every 0.3 s
  local i t0 t1
  : > "$w/spaced.$1"
  for i in $(seq $((n / 4 > 10 ? n / 4 : 10))); do
    sleep 0.3
    t0=$EPOCHREALTIME
    wrapped_true "spaced-$1-$i"
    t1=$EPOCHREALTIME
    usec "$t0" "$t1" >> "$w/spaced.$1"
  done
  median_ms < "$w/spaced.$1"
}
read -r bare_ms wrapped_ms launch_ms < <(part_a default)
overhead_ms=$(awk -v a="$wrapped_ms" -v b="$bare_ms" 'BEGIN { printf "%.2f", a - b }')
rcu_line=""
if [ -w /sys/kernel/rcu_expedited ]; then
  old=$(cat /sys/kernel/rcu_expedited)
  echo 1 > /sys/kernel/rcu_expedited
  trap 'echo "$old" > /sys/kernel/rcu_expedited; bench_cleanup' EXIT
  read -r xbare_ms xwrapped_ms xlaunch_ms < <(part_a expedited)
  xspaced_ms=$(spaced expedited)
  echo "$old" > /sys/kernel/rcu_expedited
  xspaced_overhead_ms=$(awk -v a="$xspaced_ms" -v b="$xbare_ms" 'BEGIN { printf "%.2f", a - b }')
  xoverhead_ms=$(awk -v a="$xwrapped_ms" -v b="$xbare_ms" 'BEGIN { printf "%.2f", a - b }')
  rcu_line="| wrapped, rcu_expedited=1 | $xbare_ms | $xwrapped_ms | $xlaunch_ms | **$xoverhead_ms** |
| wrapped, rcu_expedited=1, one launch every 0.3 s | $xbare_ms | $xspaced_ms | | **$xspaced_overhead_ms** |"
fi

# A farm launching chunks back to back keeps the kernel's cgroup
# migration path warm; a launch after a quiet spell waits for an RCU grace
# period when it joins its cgroup (cgroup v1). Spaced runs show that case.
spaced_ms=$(spaced default)
spaced_overhead_ms=$(awk -v a="$spaced_ms" -v b="$bare_ms" 'BEGIN { printf "%.2f", a - b }')

# ---------------------------------------------------------------- part B ---
BENCH_RS_EXTRA='[[packages]]
name = "true"
version = "1"
command = "/bin/true {frame}"'
export BENCH_RS_EXTRA
cat > "$w/job.toml" << TOML
name = "trues"
frames = "1-$chunks"
chunk_size = 1
[package]
name = "true"
[render]
scene = "scene.txt"
TOML
cp "$w/input/scene.txt" "$w/scene.txt"
run_site() { # MODE: prints seconds for the job
  BENCH_SANDBOX=$1 bench_site_start 1 1 1 - > /dev/null
  local t0 t1 id
  t0=$(bench_now)
  id=$("$BENCH_BIN" submit "$w/job.toml" --site "$BENCH_SITE")
  "$BENCH_BIN" wait "$id" --site "$BENCH_SITE" > /dev/null ||
    bench_die "job $id ($1) did not complete; logs in $BENCH_WORK/logs"
  t1=$(bench_now)
  bench_site_stop
  bench_elapsed "$t0" "$t1"
}
: > "$w/site.plain"
: > "$w/site.wrapped"
for _ in $(seq "$runs"); do
  run_site plain >> "$w/site.plain"
  run_site wrapped >> "$w/site.wrapped"
done
read -r plain_s plain_min plain_max < <(bench_stats < "$w/site.plain")
read -r wrapped_s wrapped_min wrapped_max < <(bench_stats < "$w/site.wrapped")
per_plain=$(awk -v s="$plain_s" -v c="$chunks" 'BEGIN { printf "%.2f", 1000 * s / c }')
per_wrapped=$(awk -v s="$wrapped_s" -v c="$chunks" 'BEGIN { printf "%.2f", 1000 * s / c }')
per_overhead=$(awk -v a="$per_wrapped" -v b="$per_plain" 'BEGIN { printf "%.2f", a - b }')

cat << MD | bench_md
## I/O wrapper launch overhead (\`bench/sandbox.sh\`)

\`bench/sandbox.sh$([ "$BENCH_QUICK" = 1 ] && echo " --quick") build/frameflow\` on $(bench_machine); kernel $(uname -r); \`frameflow-wrap --check\`: $("$wrap" --check | tr '\n' ';' | sed 's/;$//; s/;/; /g').

**A. The wrapper alone**, /bin/true, $n interleaved runs each, medians in ms
(launch = wrapper start to the program's exec, from its report):

| case | bare /bin/true | wrapped | launch | overhead |
|---|---|---|---|---|
| wrapped, kernel defaults | $bare_ms | $wrapped_ms | $launch_ms | **$overhead_ms** |
| wrapped, one launch every 0.3 s | $bare_ms | $spaced_ms | | **$spaced_overhead_ms** |
$rcu_line

**B. Per chunk through a site** (1 render server, 1 slot, $chunks one-frame chunks of /bin/true, RUNS=$runs, medians):

| site | job s (min–max) | ms per chunk |
|---|---|---|
| plain (\`local_jobs = "plain"\`) | $plain_s ($plain_min–$plain_max) | $per_plain |
| wrapped | $wrapped_s ($wrapped_min–$wrapped_max) | $per_wrapped |
| **wrapping costs** | | **$per_overhead** |

\`\`\`
RESULT sandbox_launch runs=$n bare_ms=$bare_ms wrapped_ms=$wrapped_ms launch_ms=$launch_ms overhead_ms=$overhead_ms spaced_overhead_ms=$spaced_overhead_ms${rcu_line:+ expedited_overhead_ms=$xoverhead_ms expedited_spaced_overhead_ms=$xspaced_overhead_ms}
RESULT sandbox_chunk chunks=$chunks runs=$runs plain_ms_per_chunk=$per_plain wrapped_ms_per_chunk=$per_wrapped overhead_ms_per_chunk=$per_overhead
\`\`\`
MD
echo "RESULT sandbox_launch runs=$n bare_ms=$bare_ms wrapped_ms=$wrapped_ms launch_ms=$launch_ms overhead_ms=$overhead_ms spaced_overhead_ms=$spaced_overhead_ms${rcu_line:+ expedited_overhead_ms=$xoverhead_ms expedited_spaced_overhead_ms=$xspaced_overhead_ms}"
echo "RESULT sandbox_chunk chunks=$chunks runs=$runs plain_ms_per_chunk=$per_plain wrapped_ms_per_chunk=$per_wrapped overhead_ms_per_chunk=$per_overhead"
