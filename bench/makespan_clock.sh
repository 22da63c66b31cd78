#!/usr/bin/env bash
# Farm makespan on real frames: the clock example (24 POV-Ray frames,
# 320x240) on a local site with 2 render servers of one 1-core slot each,
# against two baselines on the same machine, run side by side:
#   single   one povray process rendering every frame (+WT<cores>)
#   xargs    one povray process per frame, <cores> at a time (xargs -P)
# Prints one line per run and a RESULT line with medians.
# Usage: bench/makespan_clock.sh [path/to/frameflow] (RUNS=5 by default)
set -euo pipefail
bin=$(realpath "${1:-build/frameflow}")
runs=${RUNS:-5}
cores=$(nproc)
src=$(cd "$(dirname "$0")/.." && pwd)/examples/clock
work=$(mktemp -d /tmp/frameflow-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cat > "$work/site.toml" <<TOML
[site]
root = "$work/site"
[schedule_server]
listen = "127.0.0.1:0"
TOML
"$bin" schedule-server --config "$work/site.toml" > "$work/ss.log" 2>&1 & pids+=($!)
for i in 1 2; do
  cat > "$work/rs$i.toml" <<TOML
name = "rs$i"
root = "$work/rs$i"
schedule_server_file = "$work/site/schedule-server.addr"
probe = ["povray"]
[[slots]]
cores = 1
TOML
  "$bin" render-server --config "$work/rs$i.toml" > "$work/rs$i.log" 2>&1 & pids+=($!)
done
for _ in $(seq 200); do [ -f "$work/site/schedule-server.addr" ] && break; sleep 0.05; done
for _ in $(seq 200); do
  [ "$("$bin" hosts --site "$work/site" 2>/dev/null | grep -c ': up')" = 2 ] && break; sleep 0.05
done

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -a farm single xargs_
for r in $(seq "$runs"); do
  t0=$(now); "$bin" submit --wait --site "$work/site" "$src/clock.toml" > /dev/null 2>&1; t1=$(now)
  farm+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')")

  d="$work/single$r"; mkdir -p "$d/out"; cp -r "$src/." "$d/"
  t0=$(now); (cd "$d" && povray +Iclock.pov +KFI1 +KFF24 +KI0 +KF1 -D +W320 +H240 +FN \
      "+O$d/out/f.png" "+WT$cores" > /dev/null 2>&1); t1=$(now)
  single+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')")

  d="$work/xargs$r"; mkdir -p "$d/out"; cp -r "$src/." "$d/"
  t0=$(now); seq 1 24 | (cd "$d" && xargs -P "$cores" -I{} povray +Iclock.pov +KFI1 +KFF24 +KI0 \
      +KF1 -D +W320 +H240 +FN +SF{} +EF{} "+O$d/out/f.png" +WT1 > /dev/null 2>&1); t1=$(now)
  xargs_+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')")
  echo "run $r: farm ${farm[-1]} s, single ${single[-1]} s, xargs ${xargs_[-1]} s"
done
mf=$(printf '%s\n' "${farm[@]}" | median)
ms=$(printf '%s\n' "${single[@]}" | median)
mx=$(printf '%s\n' "${xargs_[@]}" | median)
best=$(printf '%s\n%s\n' "$ms" "$mx" | sort -g | head -1)
echo "RESULT makespan_clock runs=$runs cores=$cores farm_s=$mf single_s=$ms xargs_s=$mx" \
     "farm_vs_best=$(awk -v a="$mf" -v b="$best" 'BEGIN{printf "%.3f", a/b}')"
